//! Power cycles with nonvolatile storage: a RAM region on QEMU's
//! bare-metal boards, a disk on the Linux boards.
//!
//! # Linux boards: a disk
//! A Linux image may build a disk image (`outputs.disk`, ext4); a board
//! profile's `linux.disk` says how QEMU attaches one and which device the
//! guest sees. Each run writes on its own copy in its scratch folder (a
//! sparse copy of the built image: [`copy_sparse`]), attached raw, so
//! every run starts from the built disk:
//! - **At a power cut** the machine is stopped (`stop`, which also
//!   completes QEMU's own pending writes to the file) and QEMU is killed:
//!   the file keeps what QEMU had written, and what the guest's page cache
//!   still held is lost, as on a real power loss.
//! - **At power-on** a fresh QEMU opens the same file.
//! - **A snapshot** copies the file beside the snapshot ([`disk_path`])
//!   while the machine is paused after the migration, and a restore copies
//!   it back before the new QEMU opens it: a restored run never sees writes
//!   made after the save.
//!
//! # Bare-metal boards: a RAM region
//! QEMU's MPS2 boards have no flash controller, so a board's storage is a
//! RAM region of its memory map (`kind: nvm` in the profile) that the lab
//! keeps across power cycles itself:
//! - **At power-on** (every cold start, the first of a run included) the
//!   region is written from the storage file through QEMU's gdbstub while
//!   the CPU is still held by `-S`. A run's file starts erased (`0xFF`).
//!   A restore from a snapshot does not: the snapshot holds the region.
//! - **At a power cut** the machine is stopped where it is (`stop`), the
//!   region is saved to the file (`pmemsave`) and QEMU is killed: what the
//!   firmware had not yet written is lost, as it would be.
//! - **A warning first** (`power-cut: {mode: graceful}`): the board's
//!   power-fail interrupt is set pending in the NVIC, through the gdbstub,
//!   as a supply supervisor would raise it.
//!
//! A guest reset (SYSRESETREQ) keeps the region: QEMU does not clear RAM,
//! and the region is written only at a cold start.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::{Whence, lseek};

use super::TargetError;
use crate::durable::{self, Removal};
use crate::gdb::{GdbClient, GdbError};

/// NVIC_ISPR0: writing bit `n` sets external interrupt `n` pending.
const NVIC_ISPR0: u64 = 0xE000_E200;
/// How long the gdbstub may take to answer.
const STUB_TIMEOUT: Duration = Duration::from_secs(5);
/// The value of erased flash.
const ERASED: u8 = 0xFF;

/// A board's nonvolatile region, as the board profile places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonvolatile {
    /// Start address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The storage a scenario's `storage:` gives a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMedium {
    /// A RAM region of a bare-metal board's memory map, erased.
    Region(Nonvolatile),
    /// A disk image (a Linux image's `disk`): each target writes on its
    /// own copy.
    Disk(PathBuf),
}

/// What a power cut did.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerCut {
    /// The bytes of storage kept for the next power-on (0 without storage).
    pub kept_bytes: u64,
    /// How long stopping, saving and ending the machine took.
    pub duration: Duration,
}

/// The storage of one target.
#[derive(Debug)]
pub(super) enum Storage {
    /// A RAM region the lab saves and loads.
    Region(RegionStorage),
    /// The target's own copy of a disk image, which QEMU opens as a drive.
    Disk(PathBuf),
}

impl Storage {
    /// Storage of `medium` in the scratch folder `dir`: an erased region,
    /// or a fresh copy of the disk image.
    pub(super) fn new(medium: StorageMedium, dir: &Path) -> Result<Self, TargetError> {
        match medium {
            StorageMedium::Region(region) => {
                RegionStorage::erased(region, dir).map(Storage::Region)
            }
            StorageMedium::Disk(image) => {
                let copy = dir.join("disk.img");
                copy_sparse(&image, &copy).map_err(|source| TargetError::Io {
                    context: format!("cannot copy the disk image {}", image.display()),
                    source,
                })?;
                Ok(Storage::Disk(copy))
            }
        }
    }
}

/// A region of the memory map and the file that holds it between power
/// cycles.
#[derive(Debug)]
pub(super) struct RegionStorage {
    pub(super) region: Nonvolatile,
    pub(super) file: PathBuf,
}

impl RegionStorage {
    /// Storage in `dir`, erased.
    fn erased(region: Nonvolatile, dir: &Path) -> Result<Self, TargetError> {
        let file = dir.join("storage.bin");
        let size = usize::try_from(region.size).map_err(|_| {
            TargetError::Storage(format!("a region of {} bytes is too large", region.size))
        })?;
        std::fs::write(&file, vec![ERASED; size]).map_err(|source| TargetError::Io {
            context: format!("cannot create the storage file {}", file.display()),
            source,
        })?;
        Ok(RegionStorage { region, file })
    }

    /// Writes the file into the region of the machine behind `socket`
    /// (QEMU's gdbstub), which must be paused and stays so.
    pub(super) async fn load(&self, socket: &Path) -> Result<(), TargetError> {
        let data = std::fs::read(&self.file).map_err(|source| TargetError::Io {
            context: format!("cannot read the storage file {}", self.file.display()),
            source,
        })?;
        if data.len() as u64 != self.region.size {
            return Err(TargetError::Storage(format!(
                "{} holds {} bytes, the region {}",
                self.file.display(),
                data.len(),
                self.region.size
            )));
        }
        let base = self.region.base;
        with_stub(socket, move |core| core.write_memory(base, &data))
            .await
            .map_err(TargetError::Storage)
    }
}

/// Sets external interrupt `irq` pending through the gdbstub at `socket`.
/// Connecting pauses the machine; the caller resumes it.
pub(super) async fn raise_irq(socket: &Path, irq: u32) -> Result<(), TargetError> {
    let register = NVIC_ISPR0 + 4 * u64::from(irq / 32);
    let bit = 1u32 << (irq % 32);
    with_stub(socket, move |core| core.write_u32(register, bit))
        .await
        .map_err(TargetError::PowerFailWarning)
}

/// Runs `op` on a fresh connection to the gdbstub at `socket`, on a
/// blocking thread; what failed, in words. The connection is dropped
/// without a detach, which would resume the machine: it stays paused.
async fn with_stub(
    socket: &Path,
    op: impl FnOnce(&mut GdbClient<std::os::unix::net::UnixStream>) -> Result<(), GdbError>
    + Send
    + 'static,
) -> Result<(), String> {
    let socket = socket.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut core = GdbClient::connect_unix(&socket, STUB_TIMEOUT)?;
        core.halt_reason()?;
        op(&mut core)
    })
    .await
    .map_err(|e| format!("the lab failed while using QEMU's gdbstub: {e}"))?
    .map_err(|e| format!("through QEMU's gdbstub: {e}"))
}

/// Where a snapshot at `snapshot` keeps the disk it was saved with: beside
/// it, `PATH.disk`.
pub(super) fn disk_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.file_name().unwrap_or_default().to_os_string();
    name.push(".disk");
    snapshot.with_file_name(name)
}

/// Copies the file `from` to `to` (replaced), writing only its data: the
/// holes of a sparse disk image stay holes, so a 64 MiB image that holds a
/// few MiB costs a few MiB to copy and to keep. The copy is written beside
/// `to` under a temporary name and renamed into place, so `to` is never
/// half written; a failed copy leaves nothing behind.
pub(super) fn copy_sparse(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let source = File::open(from)?;
    let len = source.metadata()?.len();
    let name = to.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path does not name a file",
        )
    })?;
    let folder = to.parent().unwrap_or(Path::new("."));
    let (partial, copy) = durable::create_unique(folder, name, ".partial", |p| {
        File::options().write(true).create_new(true).open(p)
    })?;
    let partial = Removal::new(partial);
    copy.set_len(len)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let offset = |from: u64, whence| {
            let from = i64::try_from(from).map_err(|_| nix::errno::Errno::EOVERFLOW)?;
            lseek(source.as_fd(), from, whence).map(|o| o as u64)
        };
        // Past the last data, SEEK_DATA fails with ENXIO: the rest is a hole.
        at = match offset(at, Whence::SeekData) {
            Ok(start) => start,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = offset(at, Whence::SeekHole)?.min(len);
        while at < end {
            let want = usize::try_from(end - at)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = source.read_at(&mut buf[..want], at)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            copy.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
    }
    drop(copy);
    std::fs::rename(partial.path(), to)?;
    partial.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_sparse_copy_keeps_the_bytes_and_the_holes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let file = File::create(&from).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_all_at(b"head", 0).unwrap();
        file.write_all_at(&[7u8; 10000], 5 << 20).unwrap();
        file.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        drop(file);
        let to = dir.path().join("to");
        std::fs::write(&to, b"old").unwrap();
        copy_sparse(&from, &to).unwrap();
        assert!(std::fs::read(&from).unwrap() == std::fs::read(&to).unwrap());
        let blocks = std::fs::metadata(&to).unwrap().blocks() * 512;
        assert!(blocks < 1 << 20, "{blocks} bytes allocated");
        assert!(!dir.path().join("to.partial").exists());
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["from", "to"], "no temporary file is left");
    }

    #[test]
    fn a_snapshots_disk_sits_beside_it() {
        assert_eq!(
            disk_path(Path::new("/c/warm.snap")),
            Path::new("/c/warm.snap.disk")
        );
    }
}
