//! Scratch folders (a run's QEMU sockets) that never outlive the lab for long.
//!
//! A folder is removed when its owner drops it. A lab killed with SIGKILL
//! cannot do that, so each folder holds a lock file that its owner keeps
//! locked (`flock`) for as long as the folder is in use; the kernel releases
//! the lock when the owner dies, however it dies. The first scratch folder a
//! lab process makes sweeps the system's temporary folder for the unlocked
//! folders of dead labs and removes them.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Every scratch folder's name starts with this.
const PREFIX: &str = "lab-";
/// The lock file inside each scratch folder.
const LOCK: &str = ".lab-lock";

/// A scratch folder, locked while this value lives and removed when it drops.
#[derive(Debug)]
pub struct ScratchDir {
    // Field order matters: the folder goes before its lock is released, so
    // a sweeper never finds it unlocked while it is still in use.
    dir: tempfile::TempDir,
    _lock: File,
}

impl ScratchDir {
    /// A new scratch folder in the system's temporary folder, named
    /// `lab-<what>-XXXXXX`.
    pub fn new(what: &str) -> io::Result<Self> {
        sweep_once();
        let root = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{what}-"))
            .tempdir_in(&root)?;
        // The lock is taken under a temporary name and then renamed into
        // place, so a sweeper never sees `LOCK` exist unlocked.
        let pending = tempfile::Builder::new()
            .prefix(".lab-lock-")
            .tempfile_in(dir.path())?;
        pending.as_file().lock()?;
        let lock = pending.persist(dir.path().join(LOCK))?;
        Ok(ScratchDir { dir, _lock: lock })
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the scratch folders of dead labs from the system's temporary
/// folder, once per process: the first scratch folder a lab makes calls it,
/// after [`sweep_in_background`] has done the work or while it does.
pub fn sweep_once() {
    SWEEP.call_once(|| sweep(&std::env::temp_dir()));
}

/// Starts [`sweep_once`] on a thread of its own, so that a lab process can
/// call it as it starts without waiting for the system's temporary folder
/// to be listed.
pub fn sweep_in_background() {
    if !SWEEP.is_completed() {
        // Without a thread, the first scratch folder sweeps instead.
        let _ = std::thread::Builder::new()
            .name("lab-sweep".into())
            .spawn(sweep_once);
    }
}

/// The one sweep of this process.
static SWEEP: Once = Once::new();

/// Removes the scratch folders in `root` whose owners are gone. A folder
/// without a lock file is left alone: it is someone else's, or one being
/// made right now.
pub fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let is_ours = entry.file_name().to_string_lossy().starts_with(PREFIX)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if is_ours && abandoned(&entry.path()) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::debug!(dir = %entry.path().display(), "removed a dead lab's scratch folder")
                }
                Err(e) => {
                    tracing::debug!(dir = %entry.path().display(), "cannot remove a dead lab's scratch folder: {e}")
                }
            }
        }
    }
}

/// Whether `dir` holds a lock file that nobody holds.
fn abandoned(dir: &Path) -> bool {
    let lock: PathBuf = dir.join(LOCK);
    let Ok(file) = File::open(&lock) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_in_use_survives_a_sweep_and_goes_when_dropped() {
        let scratch = ScratchDir::new("test").unwrap();
        let path = scratch.path().to_owned();
        sweep(path.parent().unwrap());
        assert!(path.is_dir(), "a live folder was swept");
        drop(scratch);
        assert!(!path.exists(), "a dropped folder stays");
    }

    #[test]
    fn an_abandoned_folder_is_swept_and_a_foreign_one_is_not() {
        let root = tempfile::tempdir().unwrap();
        let dead = root.path().join("lab-qemu-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("qmp.sock"), b"").unwrap();
        let foreign = root.path().join("lab-something-else");
        std::fs::create_dir(&foreign).unwrap();
        sweep(root.path());
        assert!(!dead.exists(), "an unlocked folder was left");
        assert!(foreign.exists(), "a folder without a lock file was removed");
    }
}
