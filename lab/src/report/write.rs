//! Atomic report writes: a temporary file in the target's folder, then a rename.

use std::path::Path;

use super::ReportError;

/// Writes `contents` to `path` so that readers see either the old file or the
/// whole new one, never a partial write, and no temporary file is left
/// behind when it fails.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    crate::durable::write_atomically(path, contents).map_err(|reason| ReportError::Write {
        path: path.to_path_buf(),
        reason,
    })
}
