//! Scenario files: the model, loading with source positions, validation.

mod model;

pub use model::*;
