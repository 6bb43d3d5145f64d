//! Reports: the result model and its renderings (JSON, JUnit, terminal
//! table, markdown, and an HTML page with plots).
//!
//! Every renderer is pure or writes only the file it is given; none of them
//! looks at or prints to the terminal. The CLI prints what they return.

mod ab;
mod checkpoint;
mod compare;
mod error;
mod figures;
mod html;
mod json;
mod junit;
mod layout;
mod markdown;
mod merge;
mod model;
mod plots;
pub mod series;
mod stats;
mod table;
mod write;

pub use ab::{ALPHA, Change, Evidence, Threshold, compare, render_changes};
pub use checkpoint::{Checkpoint, UNFINISHED};
pub use compare::render_comparison;
pub use error::ReportError;
pub use html::{render_html, write_html};
pub use json::{read_json, to_json_string, write_json};
pub use junit::{to_junit_string, write_junit};
pub use layout::{Column, Statistic, TableSpec, Tables, conversion, known_units};
pub use markdown::render_markdown;
pub use merge::{MergeError, merge};
pub use model::{
    CONSOLE_TAIL, Metrics, Report, RunResult, Start, Stats, Status, StepResult, Summary, case,
};
pub use stats::{stats, summarize};
pub use table::render_table;
