//! Warm starts: a scenario's `warm-up` runs once, cold, and the machine it
//! leaves is saved as a snapshot under `build/snapshots/`; every later run
//! of the same inputs, in this process or the next, restores it instead.
//!
//! The cache key covers everything that shapes the saved state: the lab's
//! version, the QEMU binary (its path, size and modification time: a new
//! QEMU package is a new binary), the board profile's file, the contents of
//! the files booted, `storage:` and the contents of the disk image it
//! starts from, the guest's arguments and environment, the clock, and
//! the warm-up steps. A snapshot with a disk keeps the disk as it was at
//! the save beside it (`KEY.snap.disk`). A changed input is a new key and a cold start, never
//! a stale restore. QEMU itself checks only the machine type (see
//! `backend/snapshot.rs`), so the key must.
//!
//! `$LAB_SNAPSHOTS` puts the cache elsewhere (a CI cache, a test's own
//! folder).
//!
//! Jobs of one key take turns through a lock file beside the snapshot: the
//! first saves while the others wait, then they restore. The lock is an
//! `flock`, so two `lab run` processes take turns too, and a lab that dies
//! holding it releases it.
//!
//! A new snapshot is on probation ([`Probation`]): the job that saved it
//! goes on from it (it restores it at once, as the others will) and keeps
//! the lock until its own steps end. Only a pass lets the snapshot into the
//! cache; a failed run removes it, and the next job of the key saves
//! afresh. A save that captured a machine which cannot run on (on the
//! raspi boards an interrupt lost in the round trip can leave the restored
//! guest without a timer, see `backend/snapshot.rs`) so fails one run, not
//! every later run in this process and the next.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::Job;
use crate::backend::BootImage;
use crate::deps::HostTool;
use crate::image::{hash_reader, hex};
use crate::report::Status;
use crate::steps::StepFailure;

/// How often a job waiting for another's warm-up looks at the lock.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// What a job does about its warm-up.
pub(super) enum Claim {
    /// Restore the snapshot at this path.
    Restore(PathBuf),
    /// Run the warm-up cold and save its snapshot at this path; the lock
    /// keeps the other jobs of the key waiting until it drops.
    Save {
        /// Where the snapshot goes.
        path: PathBuf,
        /// Held until the snapshot is saved (or the warm-up failed).
        lock: File,
    },
}

/// A snapshot this job has just saved, held back from the other jobs of its
/// key until the job ends: see the module's doc.
pub(super) struct Probation {
    /// The snapshot.
    path: PathBuf,
    /// The key's lock, held until [`Probation::end`].
    lock: File,
}

impl Probation {
    /// A probation for the snapshot at `path`, saved under `lock`.
    pub(super) fn new(path: PathBuf, lock: File) -> Self {
        Self { path, lock }
    }

    /// Ends the probation of a job that `passed` or not: a failed job's
    /// snapshot is removed, then the others of the key may claim.
    pub(super) fn end(self, passed: bool) {
        if !passed {
            match crate::backend::remove_snapshot(&self.path) {
                Ok(()) => tracing::info!(
                    "removed the warm-up snapshot {}: the run that saved it failed",
                    self.path.display()
                ),
                Err(e) => tracing::warn!(
                    "cannot remove the warm-up snapshot {} of a failed run: {e}",
                    self.path.display()
                ),
            }
        }
        drop(self.lock);
    }
}

/// The warm-up snapshots of a workspace.
pub(super) struct SnapshotCache {
    /// `snapshots/` in the build folder.
    dir: PathBuf,
    /// Content hashes of booted files, by path, size and modification time.
    hashes: Mutex<HashMap<(PathBuf, u64, SystemTime), String>>,
}

impl SnapshotCache {
    /// The cache in `snapshots/` of the workspace's build folder
    /// (`build/`), or the folder `$LAB_SNAPSHOTS` names.
    pub(super) fn new(build_dir: &Path) -> Self {
        let dir = std::env::var_os("LAB_SNAPSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| build_dir.join("snapshots"));
        Self {
            dir,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of `job` booting `image` (hex), from everything that
    /// shapes the state its warm-up leaves. Blocking: it hashes files.
    pub(super) fn key(&self, job: &Job, image: &BootImage) -> io::Result<String> {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &[u8]| {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value);
        };
        field("lab", env!("CARGO_PKG_VERSION").as_bytes());
        if let Some(qemu) = &job.board.qemu {
            field(
                "qemu",
                qemu_identity(&qemu.binary, &qemu.package).as_bytes(),
            );
        }
        field("board", job.board.yaml.as_bytes());
        let files: Vec<&PathBuf> = match image {
            BootImage::Elf(elf) => vec![elf],
            BootImage::Linux {
                kernel,
                dtb,
                initrd,
                disk: _,
            } => std::iter::once(kernel)
                .chain(dtb.as_ref())
                .chain(initrd.as_ref())
                .collect(),
        };
        for file in files {
            field("file", self.file_hash(file)?.as_bytes());
        }
        // With `storage:` the machine has a disk (a drive on its command
        // line, the image's disk in its first state); the snapshot keeps a
        // copy of it.
        if job.scenario.storage.is_some() {
            field("storage", b"");
            if let BootImage::Linux {
                disk: Some(disk), ..
            } = image
            {
                field("disk", self.file_hash(disk)?.as_bytes());
            }
        }
        for arg in &job.args {
            field("arg", arg.as_bytes());
        }
        for (key, value) in &job.env {
            field("env", format!("{key}={value}").as_bytes());
        }
        field("clock", format!("{:?}", job.scenario.clock).as_bytes());
        for step in &job.scenario.warm_up {
            field("warm-up", format!("{:?}", step.value).as_bytes());
        }
        Ok(hex(&h.finalize()))
    }

    /// Waits for the key's lock, at most until `deadline`: the snapshot to
    /// restore if one is saved (and out of probation), else the lock to
    /// save one under.
    pub(super) async fn claim(&self, key: &str, deadline: Instant) -> Result<Claim, StepFailure> {
        let failure = |what: &str, e: io::Error| {
            StepFailure::new(
                Status::Error,
                format!("cannot {what} in {}: {e}", self.dir.display()),
            )
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| failure("make the snapshot cache", e))?;
        let path = self.dir.join(format!("{key}.snap"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(format!("{key}.lock")))
            .map_err(|e| failure("open the snapshot lock", e))?;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StepFailure::new(
                        Status::Timeout,
                        "another run held the warm-up's snapshot for longer than the \
                         scenario's timeout; if another `lab run` is stuck on this \
                         workspace, end it",
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(failure("lock the snapshot", e)),
            }
        }
        if path.exists() {
            Ok(Claim::Restore(path))
        } else {
            Ok(Claim::Save { path, lock })
        }
    }

    /// The SHA-256 of the file at `path` (hex), hashed once per version of it.
    fn file_hash(&self, path: &Path) -> io::Result<String> {
        let meta = std::fs::metadata(path)?;
        let id = (path.to_owned(), meta.len(), meta.modified()?);
        if let Some(hash) = self.hashes.lock().ok().and_then(|h| h.get(&id).cloned()) {
            return Ok(hash);
        }
        let hash = hash_reader(&mut File::open(path)?)?;
        if let Ok(mut hashes) = self.hashes.lock() {
            hashes.insert(id, hash.clone());
        }
        Ok(hash)
    }
}

/// The QEMU binary's identity: where it is, its size and its modification
/// time, or its name alone when it cannot be found (the boot then fails
/// with a clear error of its own).
fn qemu_identity(binary: &str, package: &str) -> String {
    let Ok(path) = HostTool::new(binary, package).locate() else {
        return binary.to_owned();
    };
    match std::fs::metadata(&path) {
        Ok(meta) => format!(
            "{} {} {:?}",
            path.display(),
            meta.len(),
            meta.modified().ok()
        ),
        Err(_) => path.display().to_string(),
    }
}
