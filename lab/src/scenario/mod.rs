//! Scenario files: the model, loading with source positions, validation.
//! The steps' own options are the step kinds' (`crate::steps`); the
//! building blocks of loading are the loader's (`crate::loader`).

mod discover;
mod load;
mod model;
mod raw;

pub use discover::discover;
pub use load::{DEFAULT_TIMEOUT, MAX_FILE_SIZE, load, load_str};
pub use model::*;

pub use crate::loader::{
    CodeLocation, DataLocation, ErrorKind, MAX_JOBS, ScenarioError, parse_code_location,
};
/// The step kinds are part of the model: every kind, its options and
/// [`Step`] itself.
pub use crate::steps::*;
