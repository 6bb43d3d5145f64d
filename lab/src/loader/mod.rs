//! The building blocks of loading an untrusted file: its errors with file,
//! line and column, the raw values serde keeps as written, and the
//! validation that turns them into checked values. The scenario loader and
//! every step kind are built from these; this module knows no step.

mod error;
pub(crate) mod location;
pub(crate) mod pattern;
pub(crate) mod raw;
mod validate;

pub use crate::source::{At, Loc};
pub use error::{ErrorKind, ScenarioError};
pub(crate) use error::{found_in_words, loc};
pub use location::{CodeLocation, DataLocation, parse_code_location};
pub(crate) use validate::{Validator, at};

/// The most jobs (runs × matrix variants) a scenario may have: far more
/// than a lab runs in a day, and few enough that planning them takes no
/// time. `runs: 4000000000` would have `lab check` plan jobs until memory
/// runs out.
pub const MAX_JOBS: u32 = 10_000;

/// A step kind's key and an example of its value, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSyntax {
    /// The key as written in YAML (`wait-serial`).
    pub key: &'static str,
    /// A valid value, shown when the value is missing (`{match: 'READY'}`).
    pub example: &'static str,
}
