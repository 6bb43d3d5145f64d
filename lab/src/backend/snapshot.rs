//! Snapshots: a running machine saved to a file, and machines started again
//! from it.
//!
//! # How
//! QEMU migrates the machine into a file ([`crate::qmp`]'s migration
//! commands, with `mapped-ram`):
//!
//! - **Save** ([`Target::save_snapshot`](super::Target::save_snapshot)):
//!   `stop` (at an instant when the board's `snapshot.quiet` registers
//!   read zero: [`pause_quiet`]), migrate into `PATH.partial`, rename it to `PATH` once QEMU
//!   reports `completed`, then `cont` if the guest was running. A failed or
//!   timed-out save leaves no file at `PATH` (an older one there stays).
//! - **Restore** ([`Target::restore_snapshot`](super::Target::restore_snapshot)):
//!   whatever QEMU runs is killed; a fresh one starts from the same command
//!   line plus `-incoming defer`, in the same socket folder with fresh
//!   sockets, loads the file (`migrate-incoming`), then resumes unless
//!   asked to stay halted. The old console transcript, QMP connection and
//!   debug sessions end with the old QEMU.
//!
//! The file holds the CPU, the RAM, every device's state and the guest's
//! clocks, but not the command line: a restore must use the same board,
//! image files, clock and arguments as the save. QEMU checks only what the
//! stream describes. A snapshot of another board is refused ("Machine type
//! received is 'mps2-an385' and local is 'mps2-an386'"), but one restored
//! with another ELF, other arguments or the other clock (saved under
//! `clock: virtual`, restored under `wall`) loads without a word: the
//! restored RAM replaces the image, and the guest read its arguments long
//! before the snapshot. A cache of snapshots must key on all of that.
//!
//! # The file
//! With `mapped-ram` every RAM page has a fixed offset in the file, so the
//! file's apparent size is about the machine's RAM, while only the pages
//! the guest ever wrote take disk blocks. Measured (QEMU 10.0.2, the
//! `snapshots` tests): virt-a53 with the Node.js image in its message loop,
//! 677 MB apparent, 197 MB on disk, saved in 1.7 s, restored in 270-340 ms;
//! mps2-an385 with the echo firmware, 29 MB apparent, 104 KB on disk, saved
//! in 14 ms, restored in 60 ms. Copy the file with a sparse-aware tool.
//!
//! # Guest time under `clock: virtual`
//! QEMU's `timer` section carries the virtual clock and, with `-icount`,
//! its instruction counter (`qemu_icount` and its bias), so guest time
//! does not restart at zero after a restore: it continues from the saved
//! instant. Checked by the `snapshots` tests: on mps2-an385 a restored
//! guest's SysTick timestamps continue from those printed before the save,
//! and two restores of one file print byte-identical output, which is also
//! what the original machine printed after the save. What does not survive
//! is the host side: wall time (a restore happens whenever it happens), and
//! input timing. Under `-icount sleep=off` an idle guest's clock jumps to
//! its next timer while it waits, so *when* (in guest time) a line sent to
//! the console arrives depends on the host, in a restored run as in a cold
//! one. Runs are identical only while nothing from outside reaches them.
//!
//! # Disks
//! The migration stream holds no disk contents. A Linux guest booted
//! without `storage:` has no block device (see
//! [`BootImage::Linux`](super::BootImage)), so the snapshot file is the
//! whole guest. With `storage:` the run's disk is a raw file in its scratch
//! folder (see `power.rs`), and a snapshot carries a copy of it:
//! - save: once the migration has completed (QEMU has flushed the drive
//!   and the guest is paused), the disk is copied to `PATH.disk` beside the
//!   snapshot, before the snapshot itself is renamed into place, so no
//!   snapshot is ever without its disk;
//! - restore: once the old QEMU is gone, `PATH.disk` is copied over the
//!   run's disk, and the new QEMU opens it with `-incoming defer`. The
//!   restored run writes only on its own copy, so a second restore never
//!   sees those writes.
//!
//! Why a copy, not a qcow2 overlay per run and `blockdev-snapshot-sync`
//! at each save: the images' disks are small and sparse (64 MiB, about
//! 4 MiB of it written), and a copy that skips the holes takes 4-18 ms
//! and 4 MiB (a full copy, 60-120 ms and 64 MiB; `qemu-img create` of an
//! overlay alone, 10-30 ms), needs no `qemu-img`, no chain of backing
//! files that name each other by path (a cache that moves would need
//! `qemu-img rebase -u`), and no second node name on the command line. A
//! disk of gigabytes would want the overlays.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::qmp::{QmpClient, xp};

/// The longest a save or a restore may take (QEMU's migration alone). The
/// largest machine the lab runs (virt-a53 with 512 MiB) takes under 2 s.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest a save waits for the board's quiet registers to read zero
/// (see [`pause_quiet`]).
const QUIET_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the guest runs between two looks at them.
const QUIET_RUN: Duration = Duration::from_millis(1);
/// How long one monitor command may take.
const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);

/// The first bytes of every QEMU migration stream (`QEVM`).
const MAGIC: &[u8; 4] = b"QEVM";

/// A snapshot file's two sizes: it is sparse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFile {
    /// The file's length (about the machine's RAM).
    pub apparent_bytes: u64,
    /// The disk space it takes: allocated blocks only.
    pub disk_bytes: u64,
}

impl SnapshotFile {
    /// The sizes of the file at `path`.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(SnapshotFile {
            apparent_bytes: meta.len(),
            disk_bytes: meta.blocks() * 512,
        })
    }
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSaved {
    /// The snapshot file.
    pub path: PathBuf,
    /// Its sizes.
    pub file: SnapshotFile,
    /// Wall time from pausing the guest until the file was complete.
    pub duration: Duration,
    /// Whether the guest was running, and so was resumed after the save.
    pub resumed: bool,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRestored {
    /// The snapshot file.
    pub path: PathBuf,
    /// Its sizes.
    pub file: SnapshotFile,
    /// Wall time from the call until the guest ran again (or was ready,
    /// halted): stopping the old QEMU, starting the new one, loading.
    pub duration: Duration,
    /// Of that, the load alone: `migrate-incoming` until it completed.
    pub load: Duration,
}

/// Removes the snapshot at `path` and the disk saved with it, if any; a
/// file already gone is no error.
pub fn remove(path: &Path) -> std::io::Result<()> {
    for file in [path.to_owned(), super::power::disk_path(path)] {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Where a snapshot is written before it is complete: beside `path`, so the
/// final rename stays on one file system.
pub(super) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Leaves the paused guest at an instant when every register in `quiet`
/// reads zero (a board profile's `snapshot.quiet`), so that the snapshot
/// holds no interrupt that a restore would lose; `Ok` at once when `quiet`
/// is empty. While one is set, a guest that was running runs
/// [`QUIET_RUN`] more and is paused again, for at most [`QUIET_TIMEOUT`];
/// a guest paused by the scenario is not resumed, so the save fails
/// instead. The guest is paused on return either way.
///
/// Why: QEMU migrates each device's own registers, but the level of an
/// interrupt line between two devices only where the receiving model
/// stores it in its migrated state. The Pi 2/3's per-core interrupt router
/// (`bcm2836-control`, QEMU 10) does not: its `timerirqs` (the cores'
/// generic timer lines), `gpu_irq` and `gpu_fiq` inputs restart at zero,
/// and the CPU's timer, whose output is already high, never raises it
/// again. A core whose timer interrupt was pending at the save gets no
/// timer interrupt after a restore (`arch_timer` stops counting for it in
/// `/proc/interrupts`), so its sleeps and timeouts never end: Linux hangs
/// in whatever waits on that core, `poweroff` included. Its `IRQSRC` and
/// `FIQSRC` registers show every such pending line.
pub(super) async fn pause_quiet(
    qmp: &QmpClient,
    quiet: &[u64],
    was_running: bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + QUIET_TIMEOUT;
    loop {
        let Some((address, value)) = first_set(qmp, quiet).await? else {
            return Ok(());
        };
        let pending = format!(
            "register {address:#x} (in the board's `snapshot.quiet`) reads {value:#010x}: an \
             interrupt is pending that a restore would lose"
        );
        if !was_running {
            return Err(format!(
                "{pending}; the guest is paused, so it cannot settle: save it while it runs"
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{pending}, still after {QUIET_TIMEOUT:?} of retries"
            ));
        }
        let step = async {
            qmp.execute(qapi::qmp::cont {}, MONITOR_TIMEOUT).await?;
            tokio::time::sleep(QUIET_RUN).await;
            qmp.execute(qapi::qmp::stop {}, MONITOR_TIMEOUT).await
        };
        step.await.map_err(|e| e.to_string())?;
    }
}

/// The first register of `quiet` that does not read zero, with its value.
async fn first_set(qmp: &QmpClient, quiet: &[u64]) -> Result<Option<(u64, u32)>, String> {
    for &address in quiet {
        let answer =
            (qmp.hmp(&xp::command(address), MONITOR_TIMEOUT).await).map_err(|e| e.to_string())?;
        let value = xp::word(&answer).ok_or_else(|| {
            format!("cannot read register {address:#x}: the monitor said {answer:?}")
        })?;
        if value != 0 {
            return Ok(Some((address, value)));
        }
    }
    Ok(None)
}

/// Checks that `path` is a QEMU migration file before any QEMU is started
/// or stopped for it; the reason when it is not.
pub(super) fn check_file(path: &Path) -> Result<SnapshotFile, String> {
    use std::io::Read;
    let file = SnapshotFile::of(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "the file does not exist: save it first (snapshot-save, or a warm-up)".to_owned()
        }
        _ => format!("cannot read the file: {e}"),
    })?;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if &magic != MAGIC {
        return Err(
            "the file is not a QEMU snapshot (it does not start with QEMU's migration header)"
                .to_owned(),
        );
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_snapshot_sits_beside_the_final_one() {
        assert_eq!(
            partial_path(Path::new("/c/warm.snap")),
            Path::new("/c/warm.snap.partial")
        );
    }

    #[test]
    fn removing_a_snapshot_takes_its_disk_and_tolerates_either_gone() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("warm.snap");
        std::fs::write(&snap, b"QEVM").unwrap();
        std::fs::write(dir.path().join("warm.snap.disk"), b"disk").unwrap();
        std::fs::write(dir.path().join("other.snap"), b"QEVM").unwrap();
        remove(&snap).unwrap();
        remove(&snap).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["other.snap"]);
    }

    #[test]
    fn a_missing_or_foreign_file_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let missing = check_file(&dir.path().join("none")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        let foreign = dir.path().join("foreign");
        std::fs::write(&foreign, b"hello world").unwrap();
        let foreign = check_file(&foreign).unwrap_err();
        assert!(foreign.contains("not a QEMU snapshot"), "{foreign}");
        let short = dir.path().join("short");
        std::fs::write(&short, b"QE").unwrap();
        assert!(check_file(&short).unwrap_err().contains("cannot read"));
        let good = dir.path().join("good");
        std::fs::write(&good, b"QEVM\0\0\0\x03").unwrap();
        assert_eq!(check_file(&good).unwrap().apparent_bytes, 8);
    }
}
