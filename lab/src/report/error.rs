//! Errors of the report renderers.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a report could not be rendered or written.
#[derive(Debug, Error)]
pub enum ReportError {
    /// Could not write the report to `path`, with the operating system's reason.
    #[error("could not write the report to {}: {reason}", path.display())]
    Write {
        /// The file the report was meant for.
        path: PathBuf,
        /// What the operating system said.
        reason: io::Error,
    },
    /// Could not read the report at `path`.
    #[error("cannot read the report {}: {reason}", path.display())]
    Read {
        /// The report file.
        path: PathBuf,
        /// What the operating system said.
        reason: io::Error,
    },
    /// The file at `path` is not a report of `lab run --json`.
    #[error(
        "{}:{line}:{column}: not a report of `lab run --json`: {message}",
        path.display()
    )]
    NotAReport {
        /// The file.
        path: PathBuf,
        /// Where it stops being one, from 1 (0 at the end of the file).
        line: usize,
        /// The column there, from 1.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Could not encode the report as JSON.
    #[error("could not encode the report as JSON: {0}")]
    Json(serde_json::Error),
    /// Could not draw a plot of the HTML report.
    #[error(
        "could not draw the {plot} plot of the HTML report: {reason} (a bug in the lab: \
         `lab report` without `--html` still prints the tables)"
    )]
    Plot {
        /// Which plot.
        plot: String,
        /// What the plotting library said.
        reason: String,
    },
    /// Could not encode the report as JUnit XML.
    #[error("could not encode the report as JUnit XML: {0}")]
    Junit(quick_junit::SerializeError),
}
