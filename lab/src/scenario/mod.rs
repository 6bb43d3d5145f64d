//! Scenario files: the model, loading with source positions, validation.

mod discover;
mod error;
mod load;
mod location;
mod model;
mod pattern;
mod raw;

pub use discover::discover;
pub use error::{ErrorKind, ScenarioError};
pub use load::{DEFAULT_DRAIN, DEFAULT_TIMEOUT, MAX_FILE_SIZE, MAX_JOBS, load, load_str};
pub use model::*;
pub use raw::STEP_KEYS;

/// Parses a code location as scenarios write it (`main`, `0x1a4`,
/// `main.c:42`); the error says what is wrong.
pub fn parse_code_location(text: &str) -> Result<CodeLocation, String> {
    location::code(&raw::RawScalar::Text(text.to_owned())).map_err(|kind| kind.to_string())
}
