//! Scenario files: the model, loading with source positions, validation.

mod discover;
pub(crate) mod duration;
mod error;
mod load;
mod location;
mod model;
mod pattern;
mod raw;
pub(crate) mod suggest;

pub use discover::discover;
pub use error::{ErrorKind, ScenarioError};
pub use load::{DEFAULT_TIMEOUT, MAX_FILE_SIZE, load, load_str};
pub use model::*;
