//! What scenario files and scripts share about the text users write: source
//! positions, one-line diagnostics with hints, "did you mean" suggestions and
//! durations with units. It sits below `scenario` and `script`, which both
//! use it, so that neither needs the other for these.

pub(crate) mod diagnostic;
pub mod duration;
mod position;
pub(crate) mod suggest;

pub use duration::DurationError;
pub use position::{At, Loc};
