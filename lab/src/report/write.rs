//! Atomic file writes: a temporary file in the target's folder, then a rename.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use tempfile::Builder;

use super::ReportError;

/// Writes `contents` to `path` so that readers see either the old file or the
/// whole new one, never a partial write.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    write_via_temp(path, contents).map_err(|reason| ReportError::Write {
        path: path.to_path_buf(),
        reason,
    })
}

fn write_via_temp(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // A hidden `.NAME.XXXXXX.tmp` next to the target, so the rename stays on
    // one file system.
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut builder = Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Reports are meant to be shared: ask for 0o666 minus the umask rather
    // than tempfile's private 0o600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(folder)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}
