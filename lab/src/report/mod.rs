//! Reports: the result model and its renderings (JSON, JUnit, terminal table).

mod model;

pub use model::{Report, RunResult, Stats, Status, StepResult, Summary};
