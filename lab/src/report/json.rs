//! The `--json` report of DESIGN.md.

use std::path::Path;

use super::write::write_atomically;
use super::{Report, ReportError};

/// Renders `report` as pretty-printed JSON, ending with a newline.
pub fn to_json_string(report: &Report) -> Result<String, ReportError> {
    let mut json = serde_json::to_string_pretty(report).map_err(ReportError::Json)?;
    json.push('\n');
    Ok(json)
}

/// Writes `report` as pretty-printed JSON to `path`, atomically: an
/// interrupted write leaves the previous file (or none), never half a file.
pub fn write_json(report: &Report, path: &Path) -> Result<(), ReportError> {
    write_atomically(path, to_json_string(report)?.as_bytes())
}
