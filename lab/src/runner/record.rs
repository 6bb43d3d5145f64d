//! Recordings of runs (`lab run --record`, `record:`): which runs can be
//! recorded, where each recording goes, the manifest that says what was
//! run, keeping only failing runs' under `failed`, and making the target
//! that replays one (`lab debug --replay`, `lab run --replay`).
//!
//! A recording is a folder: QEMU's replay log and the qcow2 disk with its
//! start snapshot ([`crate::backend::replay`]), QEMU's command line
//! ([`COMMAND_FILE`]), a copy of the firmware ELF, and [`MANIFEST_FILE`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Job;
use super::plan;
use crate::backend::{
    BootImage, COMMAND_FILE, QemuLaunch, QemuTarget, ReplayLog, ReplayMode, TargetKind,
};
use crate::board::BoardProfile;
use crate::report::Status;
use crate::scenario::{Clock, ImageRef, RecordMode};
use crate::workspace::Workspace;

/// The manifest's file name in a recording.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The folder under the workspace's `build/` that holds recordings when
/// the run writes no `--json` report to keep them beside.
pub const RECORDINGS_DIR: &str = "recordings";

/// Errors of recordings.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The folder is not a recording (no manifest), or its manifest does not read.
    #[error("{} is not a recording ({reason}): give the folder `lab run --record` wrote, named in the report's `recording`", .folder.display())]
    NotARecording {
        /// The folder.
        folder: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file the recording booted has changed since.
    #[error("{} is not the file the recording booted (its SHA-256 differs from the manifest's): the replay would not follow the log; record the run again", .0.display())]
    Changed(PathBuf),
    /// The recording's board is unknown here.
    #[error("the recording ran on board `{board}`, which this workspace does not have: {reason}")]
    Board {
        /// The board's name.
        board: String,
        /// Why it is not available.
        reason: String,
    },
    /// The recording ran on another board than the scenario's.
    #[error(
        "the recording ran on board `{recorded}` and this job runs on `{job}`: replay it with a scenario (or variant) on `{recorded}`, or `lab debug --replay`"
    )]
    OtherBoard {
        /// The recording's board.
        recorded: String,
        /// The job's board.
        job: String,
    },
    /// The target could not be made.
    #[error(transparent)]
    Target(#[from] crate::backend::TargetError),
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How a job takes part in record and replay.
#[derive(Debug, Clone, PartialEq)]
pub enum JobRecording {
    /// The run records itself into a folder under `root`, kept as `mode` says.
    Record {
        /// Which runs keep their recording.
        mode: RecordMode,
        /// The folder that holds the run's recording folder.
        root: PathBuf,
    },
    /// The run replays this recording instead of booting afresh.
    Replay(PathBuf),
}

/// What a recording holds, written beside it as [`MANIFEST_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The lab that recorded it.
    pub lab_version: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file.
    pub file: String,
    /// The matrix variant, if any.
    pub variant: Option<String>,
    /// The run's number.
    pub run: u32,
    /// The board profile's name.
    pub board: String,
    /// The image as the scenario named it (`cortex-m/fault`, or a path).
    pub image: String,
    /// Each file QEMU booted: its role (`elf`, `kernel`, `dtb`, `initrd`),
    /// where it is and its SHA-256. An ELF is copied into the recording.
    pub files: Vec<RecordedFile>,
    /// The guest's arguments.
    pub args: Vec<String>,
    /// The guest's environment.
    pub env: BTreeMap<String, String>,
    /// The run's seed (`lab run --seed`).
    pub seed: u64,
    /// The run's outcome.
    pub status: Status,
    /// Why it did not pass.
    pub error: Option<String>,
    /// The file with QEMU's exact command line.
    pub command: String,
}

/// One booted file of a recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedFile {
    /// `elf`, `kernel`, `dtb` or `initrd`.
    pub role: String,
    /// Its path: an ELF's relative to the recording (copied into it), else
    /// where it was booted from.
    pub path: PathBuf,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

/// What a finished run tells its recording.
pub(super) struct Outcome<'a> {
    /// The run's seed.
    pub seed: u64,
    /// Its status.
    pub status: Status,
    /// Why it did not pass.
    pub error: Option<&'a str>,
}

/// Whether runs on `board` under `clock` on `kind` can be recorded; what
/// is wrong and a hint otherwise. QEMU records only with icount.
pub fn recordable(
    board: &BoardProfile,
    clock: Clock,
    kind: TargetKind,
    storage: bool,
) -> Result<(), (String, String)> {
    if kind != TargetKind::Qemu {
        return Err((
            format!(
                "board `{}` runs on a debug probe, and only QEMU records a run",
                board.name
            ),
            "run it with `--target qemu`, or without recording".into(),
        ));
    }
    match board.icount {
        None => {
            return Err((
                format!(
                    "board `{}` has no `icount:` in its profile, and QEMU records only with instruction counting",
                    board.name
                ),
                "give the board profile `icount: {shift: N}`, or run without recording".into(),
            ));
        }
        Some(icount) if !icount.record => {
            return Err((
                format!(
                    "board `{}` cannot be recorded (its profile says `icount: {{record: false}}`: QEMU records only machines with one CPU)",
                    board.name
                ),
                "record the scenario on a single-CPU board such as virt-a53 or an MPS2 board, or run without recording".into(),
            ));
        }
        Some(_) => {}
    }
    if clock != Clock::Virtual {
        return Err((
            "recording needs `clock: virtual` (QEMU's instruction counting), and this scenario runs on `clock: wall`".into(),
            "add `clock: virtual` to the scenario, or run without recording".into(),
        ));
    }
    if storage {
        return Err((
            "a recorded run cannot have `storage:`: QEMU replays a disk only through its blkreplay driver, and the lab does not attach one".into(),
            "remove `storage:`, or run without recording".into(),
        ));
    }
    Ok(())
}

/// The folder of `job`'s recording under `root`: its label in file-name
/// characters (`hello[m3]#1` -> `hello-m3-1`).
pub fn folder(root: &Path, job: &Job) -> PathBuf {
    let mut name = String::new();
    for c in job.label().chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' => name.push(c),
            _ if !name.ends_with('-') => name.push('-'),
            _ => {}
        }
    }
    root.join(name.trim_matches('-'))
}

/// Where recordings go for a run that writes its report to `json`:
/// `r.json` keeps them in `r.recordings/` beside it.
pub fn beside_report(json: &Path) -> PathBuf {
    let stem = json
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    json.with_file_name(format!("{stem}.recordings"))
}

/// Ends a run's recording: removes it when only failing runs keep theirs
/// and this one passed; otherwise copies the ELF in, writes the manifest
/// and returns the folder.
pub(super) fn finish(
    job: &Job,
    folder: &Path,
    mode: RecordMode,
    image: &BootImage,
    outcome: &Outcome<'_>,
) -> Result<Option<PathBuf>, RecordError> {
    let io = |context: String| move |source| RecordError::Io { context, source };
    if !folder.join(crate::backend::replay::LOG_FILE).is_file() {
        // QEMU never started: nothing was recorded.
        let _ = std::fs::remove_dir_all(folder);
        return Ok(None);
    }
    if mode == RecordMode::Failed && outcome.status == Status::Passed {
        std::fs::remove_dir_all(folder).map_err(io(format!(
            "cannot remove the passed run's recording {}",
            folder.display()
        )))?;
        return Ok(None);
    }
    let mut files = Vec::new();
    let booted: Vec<(&str, &PathBuf)> = match image {
        BootImage::Elf(elf) => vec![("elf", elf)],
        BootImage::Linux {
            kernel,
            dtb,
            initrd,
            disk: _,
        } => std::iter::once(("kernel", kernel))
            .chain(dtb.iter().map(|d| ("dtb", d)))
            .chain(initrd.iter().map(|i| ("initrd", i)))
            .collect(),
    };
    for (role, path) in booted {
        // The ELF goes into the recording and is named relative to it.
        let (kept, named) = match role {
            "elf" => {
                let name = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
                let copy = folder.join(&name);
                std::fs::copy(path, &copy).map_err(io(format!(
                    "cannot copy {} into the recording",
                    path.display()
                )))?;
                (copy, name)
            }
            _ => (path.clone(), path.clone()),
        };
        files.push(RecordedFile {
            role: role.to_owned(),
            sha256: sha256(&kept)?,
            path: named,
        });
    }
    let manifest = Manifest {
        lab_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: job.scenario.name.clone(),
        file: job.scenario.file.display().to_string(),
        variant: job.variant.clone(),
        run: job.run,
        board: job.board.name.clone(),
        image: match &job.image {
            plan::ImageSource::Built(name) => name.clone(),
            plan::ImageSource::Files(ImageRef::Named(name)) => name.clone(),
            plan::ImageSource::Files(ImageRef::Elf(elf)) => elf.display().to_string(),
            plan::ImageSource::Files(ImageRef::Linux { kernel, .. }) => {
                kernel.display().to_string()
            }
        },
        files,
        args: job.args.clone(),
        env: job.env.clone(),
        seed: outcome.seed,
        status: outcome.status,
        error: outcome.error.map(str::to_owned),
        command: COMMAND_FILE.to_owned(),
    };
    let path = folder.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(io(format!("cannot write {}", path.display())))?;
    Ok(Some(folder.to_owned()))
}

/// Reads a recording's manifest.
pub fn load(folder: &Path) -> Result<Manifest, RecordError> {
    let not = |reason: String| RecordError::NotARecording {
        folder: folder.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(folder.join(MANIFEST_FILE))
        .map_err(|e| not(format!("cannot read its {MANIFEST_FILE}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| not(format!("its {MANIFEST_FILE}: {e}")))
}

/// A target that replays the recording in `folder` on `board`, with the
/// ELF its symbols come from.
pub fn replay_target(
    folder: &Path,
    manifest: &Manifest,
    board: BoardProfile,
) -> Result<(QemuTarget, Option<PathBuf>), RecordError> {
    let image = replay_image(folder, manifest)?;
    let elf = match &image {
        BootImage::Elf(elf) => Some(elf.clone()),
        BootImage::Linux { .. } => None,
    };
    let mut target = QemuTarget::new(QemuLaunch {
        board,
        image,
        clock: Clock::Virtual,
        args: manifest.args.clone(),
        env: manifest.env.clone(),
        disk: None,
    })?;
    target.set_replay(replay_log(folder));
    Ok((target, elf))
}

/// What QEMU replays: the recording in `folder`.
pub(super) fn replay_log(folder: &Path) -> ReplayLog {
    ReplayLog {
        mode: ReplayMode::Replay,
        folder: folder.to_owned(),
    }
}

/// The files a recording booted; each must still be the one recorded.
pub(super) fn replay_image(folder: &Path, manifest: &Manifest) -> Result<BootImage, RecordError> {
    let mut paths: BTreeMap<&str, PathBuf> = BTreeMap::new();
    for file in &manifest.files {
        // An ELF travels with the recording: found beside the manifest,
        // wherever the folder was moved to.
        let path = match file.role.as_str() {
            "elf" => folder.join(file.path.file_name().unwrap_or(file.path.as_os_str())),
            _ => file.path.clone(),
        };
        if sha256(&path)? != file.sha256 {
            return Err(RecordError::Changed(path));
        }
        paths.insert(file.role.as_str(), path);
    }
    Ok(match paths.remove("elf") {
        Some(elf) => BootImage::Elf(elf),
        None => BootImage::Linux {
            kernel: paths
                .remove("kernel")
                .ok_or_else(|| RecordError::NotARecording {
                    folder: folder.to_owned(),
                    reason: "its manifest names no ELF and no kernel".into(),
                })?,
            dtb: paths.remove("dtb"),
            initrd: paths.remove("initrd"),
            disk: None,
        },
    })
}

/// The recording's board from `workspace`.
pub fn recorded_board(
    workspace: &Workspace,
    manifest: &Manifest,
) -> Result<BoardProfile, RecordError> {
    plan::resolve_board(workspace, &manifest.board).map_err(|(message, hint)| RecordError::Board {
        board: manifest.board.clone(),
        reason: format!("{message} ({hint})"),
    })
}

/// The SHA-256 of a file.
fn sha256(path: &Path) -> Result<String, RecordError> {
    let io = |source| RecordError::Io {
        context: format!("cannot read {}", path.display()),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    crate::image::hash_reader(&mut file).map_err(io)
}

/// Applies `lab run`'s flags to planned jobs: `--replay FOLDER` replays
/// that recording in every job; `--record[=failed]` records every job
/// (each must be recordable, else the error names the flag and the job);
/// `--json FILE` keeps the recordings beside the report.
pub fn apply_flags(
    jobs: &mut [Job],
    record: Option<RecordMode>,
    replay: Option<&Path>,
    json: Option<&Path>,
    workspace: &Workspace,
) -> Result<(), String> {
    let root = json.map_or_else(|| workspace.build_dir.join(RECORDINGS_DIR), beside_report);
    for job in jobs {
        if let Some(folder) = replay {
            if job.target != TargetKind::Qemu {
                return Err(format!(
                    "--replay: {} runs on a debug probe; only QEMU replays (add `--target qemu`)",
                    job.label()
                ));
            }
            job.recording = Some(JobRecording::Replay(folder.to_owned()));
            continue;
        }
        if let Some(mode) = record {
            recordable(
                &job.board,
                job.scenario.clock,
                job.target,
                job.scenario.storage.is_some(),
            )
            .map_err(|(message, hint)| {
                format!(
                    "--record: {} ({}): {message}\n  hint: {hint}",
                    job.label(),
                    job.scenario.file.display()
                )
            })?;
            job.recording = Some(JobRecording::Record {
                mode,
                root: root.clone(),
            });
        } else if let Some(JobRecording::Record { root: r, .. }) = &mut job.recording {
            r.clone_from(&root);
        }
    }
    Ok(())
}
