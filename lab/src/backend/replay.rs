//! QEMU's record and replay: the options that make a run deterministic and
//! recorded (`-icount ...,rr=record`), and the same run played back
//! (`rr=replay`), with the folder that holds the recording's log and the
//! qcow2 disk that only holds its start snapshot.
//!
//! QEMU records every input to the machine (interrupts, clock reads,
//! console input) into the log, starting from a snapshot it saves at
//! start-up (`rrsnapshot=init`); a replay loads that snapshot and feeds
//! the log back, instruction for instruction, and its gdbstub can then run
//! backwards (`bs`, `bc`) by loading the snapshot and replaying up to the
//! instruction before.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::child;
use crate::deps::{HostTool, MissingTool};

/// The replay log's file name in a recording.
pub const LOG_FILE: &str = "replay.bin";
/// The qcow2 disk that holds the start snapshot, in a recording.
pub const SNAPSHOT_DISK: &str = "snapshot.qcow2";
/// The snapshot's name inside [`SNAPSHOT_DISK`].
const SNAPSHOT_NAME: &str = "init";
/// The drive id of [`SNAPSHOT_DISK`]: no device uses it.
const DRIVE_ID: &str = "lab-rr";
/// The snapshot disk's virtual size: it only ever holds the snapshot's
/// RAM and device state, which qcow2 stores beside the (unused) disk.
const SNAPSHOT_DISK_SIZE: &str = "8M";
/// How long `qemu-img create` may take.
const QEMU_IMG_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of recording and replaying.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Record and replay count instructions: the run needs `clock: virtual`
    /// on a board with an icount shift.
    #[error(
        "recording needs QEMU's instruction counting (-icount): give the scenario `clock: virtual` on a board whose profile has `icount:`"
    )]
    NoIcount,
    /// `qemu-img` is missing.
    #[error(transparent)]
    MissingTool(#[from] MissingTool),
    /// The snapshot disk could not be made.
    #[error("cannot create the recording's snapshot disk {}: {reason}; check that the folder is writable", .path.display())]
    SnapshotDisk {
        /// The disk.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file of a recording is missing.
    #[error("{} is not a complete recording: {} is missing; record the run again with `lab run --record`", .folder.display(), .file)]
    Incomplete {
        /// The recording.
        folder: PathBuf,
        /// The missing file's name.
        file: &'static str,
    },
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Whether QEMU records a run or replays one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// `rr=record`: the run writes the log.
    Record,
    /// `rr=replay`: the run follows the log; inputs from outside are ignored.
    Replay,
}

/// A recording folder and what QEMU does with it.
#[derive(Debug, Clone)]
pub struct ReplayLog {
    /// Record or replay.
    pub mode: ReplayMode,
    /// The recording's folder.
    pub folder: PathBuf,
}

impl ReplayLog {
    /// The replay log file.
    pub fn log(&self) -> PathBuf {
        self.folder.join(LOG_FILE)
    }

    /// The snapshot disk.
    pub fn snapshot_disk(&self) -> PathBuf {
        self.folder.join(SNAPSHOT_DISK)
    }

    /// Adds the record or replay options to QEMU's argument vector: `rr`,
    /// `rrfile` and `rrsnapshot` to its `-icount`, the snapshot's drive,
    /// and `-net none` (a NIC's host side is not recorded).
    pub fn apply(&self, argv: &mut Vec<OsString>) -> Result<(), ReplayError> {
        let at = argv
            .iter()
            .position(|a| a == "-icount")
            .and_then(|i| (i + 1 < argv.len()).then_some(i + 1))
            .ok_or(ReplayError::NoIcount)?;
        let mode = match self.mode {
            ReplayMode::Record => "record",
            ReplayMode::Replay => "replay",
        };
        let mut icount = argv[at].clone();
        icount.push(format!(
            ",rr={mode},rrfile={},rrsnapshot={SNAPSHOT_NAME}",
            escape(&self.log())
        ));
        argv[at] = icount;
        argv.extend([
            "-drive".into(),
            format!(
                "if=none,id={DRIVE_ID},format=qcow2,file={}",
                escape(&self.snapshot_disk())
            )
            .into(),
            "-net".into(),
            "none".into(),
        ]);
        Ok(())
    }

    /// Readies the folder before QEMU starts: a recording gets a fresh
    /// folder with an empty snapshot disk (`qemu-img create`); a replay
    /// checks that the log and the disk are there.
    pub async fn prepare(&self) -> Result<(), ReplayError> {
        match self.mode {
            ReplayMode::Replay => {
                for (file, path) in [
                    (LOG_FILE, self.log()),
                    (SNAPSHOT_DISK, self.snapshot_disk()),
                ] {
                    if !path.is_file() {
                        return Err(ReplayError::Incomplete {
                            folder: self.folder.clone(),
                            file,
                        });
                    }
                }
                Ok(())
            }
            ReplayMode::Record => {
                if self.folder.exists() {
                    std::fs::remove_dir_all(&self.folder).map_err(|source| ReplayError::Io {
                        context: format!(
                            "cannot replace the earlier recording {}",
                            self.folder.display()
                        ),
                        source,
                    })?;
                }
                std::fs::create_dir_all(&self.folder).map_err(|source| ReplayError::Io {
                    context: format!("cannot create the recording {}", self.folder.display()),
                    source,
                })?;
                create_snapshot_disk(&self.snapshot_disk()).await
            }
        }
    }
}

/// `qemu-img create -f qcow2 PATH 8M`, within [`QEMU_IMG_TIMEOUT`].
async fn create_snapshot_disk(path: &Path) -> Result<(), ReplayError> {
    let failed = |reason: String| ReplayError::SnapshotDisk {
        path: path.to_owned(),
        reason,
    };
    let binary = HostTool::new("qemu-img", "qemu-utils").locate()?;
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(SNAPSHOT_DISK_SIZE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = child::spawn(cmd).map_err(|e| failed(format!("cannot start qemu-img: {e}")))?;
    let output = tokio::time::timeout(QEMU_IMG_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            failed(format!(
                "qemu-img did not finish within {QEMU_IMG_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| failed(format!("cannot wait for qemu-img: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

/// A path inside a QEMU option list (commas doubled).
fn escape(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_join_the_icount_and_add_the_snapshot_drive() {
        let mut argv: Vec<OsString> = ["-kernel", "x.elf", "-icount", "shift=7,align=off", "-S"]
            .map(OsString::from)
            .to_vec();
        let log = ReplayLog {
            mode: ReplayMode::Replay,
            folder: PathBuf::from("/r/a,b"),
        };
        log.apply(&mut argv).unwrap();
        let line = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            line,
            "-kernel x.elf -icount shift=7,align=off,rr=replay,rrfile=/r/a,,b/replay.bin,rrsnapshot=init -S -drive if=none,id=lab-rr,format=qcow2,file=/r/a,,b/snapshot.qcow2 -net none"
        );
    }

    #[test]
    fn a_run_without_icount_cannot_be_recorded() {
        let mut argv: Vec<OsString> = vec!["-kernel".into(), "x.elf".into()];
        let log = ReplayLog {
            mode: ReplayMode::Record,
            folder: PathBuf::from("/r"),
        };
        assert!(matches!(log.apply(&mut argv), Err(ReplayError::NoIcount)));
    }
}
