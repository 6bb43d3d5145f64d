//! The `--json` report of DESIGN.md.

use std::path::Path;

use super::write::write_atomically;
use super::{Report, ReportError, summarize};

/// Renders `report` as pretty-printed JSON, ending with a newline.
pub fn to_json_string(report: &Report) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(report).map_err(ReportError::Json)?;
    json.push('\n');
    Ok(json)
}

/// Reads a report that `lab run --json` wrote. Its summaries are computed
/// again from its results, so that a report written by an older lab gets
/// the statistics this one shows.
pub fn read_json(path: &Path) -> Result<Report, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ReportError::Read {
        path: path.to_owned(),
        reason,
    })?;
    let mut report: Report = serde_json::from_str(&text).map_err(|e| ReportError::NotAReport {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        // serde_json says where after its message; the position is above.
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned(),
    })?;
    report.summaries = summarize(&report.results);
    Ok(report)
}

/// Writes `report` as pretty-printed JSON to `path`, atomically: an
/// interrupted write leaves the previous file (or none), never half a file.
pub fn write_json(report: &Report, path: &Path) -> Result<(), ReportError> {
    write_atomically(path, to_json_string(report)?.as_bytes())
}
