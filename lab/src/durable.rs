//! Crash-safe file-system writes shared by reports and the image cache:
//! temporary names next to the target, atomic renames, syncing.
//!
//! Errors are the operating system's own, without temporary names in them:
//! callers name the file the user asked for.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Attempts at a fresh random name before giving up (each one collides only
/// if a file of that name already exists).
const NAME_ATTEMPTS: usize = 16;

/// Creates something under a fresh hidden name `.PREFIX.XXXXXXXX.SUFFIX` in
/// `folder` with `create`, which must fail with `AlreadyExists` when the name
/// is taken (`create_new`, `create_dir`). Returns the path and what `create`
/// returned.
pub(crate) fn create_unique<T>(
    folder: &Path,
    prefix: &OsStr,
    suffix: &str,
    create: impl Fn(&Path) -> io::Result<T>,
) -> io::Result<(PathBuf, T)> {
    let mut last = None;
    for _ in 0..NAME_ATTEMPTS {
        let mut name = OsStr::new(".").to_owned();
        name.push(prefix);
        name.push(format!(".{:08x}{suffix}", fastrand::u32(..)));
        let path = folder.join(name);
        match create(&path) {
            Ok(made) => return Ok((path, made)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Removes a file or a folder tree when dropped, unless [`Removal::keep`] was
/// called: the clean-up of temporary files on every early return.
#[derive(Debug)]
pub(crate) struct Removal {
    path: Option<PathBuf>,
}

impl Removal {
    /// Removes `path` (a file or a folder with its contents) on drop.
    pub(crate) fn new(path: PathBuf) -> Self {
        Removal { path: Some(path) }
    }

    /// The path that will be removed.
    pub(crate) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Leaves the path alone after all (it was renamed into place).
    pub(crate) fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: whatever is left has a hidden temporary name.
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => drop(fs::remove_dir_all(&path)),
                Ok(_) => drop(fs::remove_file(&path)),
                Err(_) => {}
            }
        }
    }
}

/// Writes `contents` to `path` so that readers see either the old file or the
/// whole new one, never a partial write, and so that the new one survives a
/// crash: a synced temporary file in the same folder, renamed over `path`,
/// then the folder synced. Nothing is left behind on an error.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Meant to be shared: 0o666 minus the umask, like any new file.
    let (temp, mut file) = create_unique(folder, name, ".tmp", |p| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
        options.open(p)
    })?;
    let removal = Removal::new(temp);
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(removal.path(), path)?;
    removal.keep();
    // A file system that cannot sync a folder still has the whole file under
    // one name or the other.
    let _ = sync_dir(folder);
    Ok(())
}

/// Makes a folder's entries (new names, renames, removals) durable.
pub(crate) fn sync_dir(folder: &Path) -> io::Result<()> {
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_the_file_nor_a_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken");
        fs::create_dir(&target).unwrap();
        let err = write_atomically(&target, b"x").unwrap_err();
        // The OS error as it is, without a temporary name in it.
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory, "{err}");
        assert!(!err.to_string().contains(".tmp"), "{err}");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn unique_names_are_hidden_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ()) =
            create_unique(dir.path(), OsStr::new("x"), ".build", |p| fs::create_dir(p)).unwrap();
        let (b, ()) =
            create_unique(dir.path(), OsStr::new("x"), ".build", |p| fs::create_dir(p)).unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".x.") && name.ends_with(".build"),
            "{name}"
        );
        let removal = Removal::new(a.clone());
        fs::write(a.join("inside"), "y").unwrap();
        drop(removal);
        assert!(!a.exists() && b.exists());
    }
}
