//! How a job's targets are made: the job's own, and the ones a script
//! boots in its place (another board or image, built on demand).

use std::sync::Arc;

use super::plan;
use super::record::{self, JobRecording};
use super::{BuiltImages, ImageSource, Job};
use crate::backend::{
    BootImage, HardwareLaunch, HardwareTarget, Nonvolatile, QemuLaunch, QemuTarget, ReplayLog,
    ReplayMode, StorageMedium, Target, TargetKind,
};
use crate::board::{Arch, BoardProfile};
use crate::image::BuiltFiles;
use crate::report::Status;
use crate::scenario::{At, Clock, ImageRef, Step};
use crate::steps::{Launched, Launcher, StepFailure};
use crate::workspace::Workspace;

/// Makes a job's targets.
pub(super) struct JobLauncher {
    /// The job.
    pub(super) job: Arc<Job>,
    /// Boards and images, to build more on demand.
    pub(super) workspace: Arc<Workspace>,
    /// Images built for the plan's jobs.
    pub(super) images: Arc<BuiltImages>,
}

impl JobLauncher {
    /// The job's own target, not yet booted.
    pub(super) fn prepare(&self) -> Result<Launched, StepFailure> {
        prepare_target(&self.job, &self.images)
    }
}

/// The job's target (QEMU or a board behind its probe), not yet booted;
/// one that records itself, or replays a recording, as the job says.
pub(super) fn prepare_target(job: &Job, images: &BuiltImages) -> Result<Launched, StepFailure> {
    let failed = |e: record::RecordError| StepFailure::new(Status::Error, e.to_string());
    match &job.recording {
        Some(JobRecording::Replay(folder)) => {
            let manifest = record::load(folder).map_err(failed)?;
            if manifest.board != job.board.name {
                return Err(failed(record::RecordError::OtherBoard {
                    recorded: manifest.board,
                    job: job.board.name.clone(),
                }));
            }
            let image = record::replay_image(folder, &manifest).map_err(failed)?;
            let replay = record::replay_log(folder);
            launch(job, &job.board, image, manifest.args, Some(replay))
        }
        Some(JobRecording::Record { root, .. }) => {
            let image = boot_image(&job.image, &job.board, images)?;
            let record = ReplayLog {
                mode: ReplayMode::Record,
                folder: record::folder(root, job),
            };
            launch(job, &job.board, image, job.args.clone(), Some(record))
        }
        None => {
            let image = boot_image(&job.image, &job.board, images)?;
            launch(job, &job.board, image, job.args.clone(), None)
        }
    }
}

impl Launcher for JobLauncher {
    fn launch(
        &self,
        current: &BoardProfile,
        board: Option<&str>,
        image: Option<&str>,
        args: Vec<String>,
    ) -> Result<Launched, StepFailure> {
        let workspace = &*self.workspace;
        let invalid = |(message, hint): (String, String)| {
            StepFailure::new(Status::Error, format!("{message} ({hint})"))
        };
        let board = match board {
            Some(name) => plan::resolve_board(workspace, name).map_err(invalid)?,
            None => current.clone(),
        };
        let source = match image {
            Some(name) => plan::resolve_image(workspace, &board, &ImageRef::Named(name.into()))
                .map_err(invalid)?,
            None => self.job.image.clone(),
        };
        let boot = match &source {
            ImageSource::Built(name)
                if !self
                    .images
                    .contains_key(&(name.clone(), board.name.clone())) =>
            {
                let manifest = workspace
                    .images
                    .get(name)
                    .map_err(|e| StepFailure::new(Status::Error, e.to_string()))?
                    .ok_or_else(|| {
                        StepFailure::new(Status::Error, format!("unknown image `{name}`"))
                    })?;
                let built = workspace
                    .builder
                    .build(manifest, &board)
                    .map_err(|e| StepFailure::new(Status::Error, e.to_string()))?;
                boot_files(&built.files, &board)?
            }
            source => boot_image(source, &board, &self.images)?,
        };
        let args = if args.is_empty() {
            self.job.args.clone()
        } else {
            args
        };
        launch(&self.job, &board, boot, args, None)
    }
}

/// A target for `board` booting `image`, and the ELF its symbols come
/// from: the job's board behind its probe when the job runs on hardware,
/// QEMU with the job's clock and environment otherwise, recording or
/// replaying under `replay` (which counts instructions, whatever the clock).
fn launch(
    job: &Job,
    board: &BoardProfile,
    image: BootImage,
    args: Vec<String>,
    replay: Option<ReplayLog>,
) -> Result<Launched, StepFailure> {
    let clock = match replay {
        Some(_) => Clock::Virtual,
        None => job.scenario.clock,
    };
    let elf = match &image {
        BootImage::Elf(path) => Some(path.clone()),
        BootImage::Linux { .. } => None,
    };
    let mut target: Box<dyn Target> = match (&job.probe, &elf) {
        (Some(probe), Some(elf)) if board.name == job.board.name => {
            Box::new(HardwareTarget::new(HardwareLaunch {
                board: board.clone(),
                elf: elf.clone(),
                args,
                probe: probe.info.clone(),
                lister: probe.lister.clone(),
                lock: probe.lock.clone(),
                on_flash: probe.on_flash.clone(),
            })?)
        }
        _ => {
            let mut qemu = QemuTarget::new(QemuLaunch {
                board: board.clone(),
                image: image.clone(),
                clock,
                args,
                env: job.env.clone(),
                disk: None,
            })?;
            if let Some(replay) = replay {
                qemu.set_replay(replay);
            }
            Box::new(qemu)
        }
    };
    if elf.is_some() && board.arch == Arch::Armv7m && catches_faults(job.scenario.all_steps()) {
        target.arm_fault_catch();
    }
    if job.scenario.storage.is_some() {
        // The plan has checked that the board and image have storage.
        let medium = match (board.nonvolatile(), &image) {
            (Some(region), _) => Some(StorageMedium::Region(Nonvolatile {
                base: region.base,
                size: region.size,
            })),
            (None, BootImage::Linux { disk, .. }) => disk.clone().map(StorageMedium::Disk),
            (None, BootImage::Elf(_)) => None,
        };
        if let Some(medium) = medium {
            target.attach_storage(medium)?;
        }
    }
    let icount = matches!(target.kind(), TargetKind::Qemu)
        && clock == Clock::Virtual
        && board.icount.is_some();
    Ok(Launched {
        target,
        image,
        board: board.clone(),
        elf,
        icount,
    })
}

/// Whether a run needs the target's HardFault catch: it expects a fault,
/// and no debugger of its own holds the core (QEMU's gdbstub serves one
/// client, a probe's core one debugger; scripts may attach one at any time).
fn catches_faults<'s>(steps: impl Iterator<Item = &'s At<Step>>) -> bool {
    let (mut expects, mut debugs) = (false, false);
    for step in steps {
        expects |= matches!(step.value, Step::ExpectFault(_));
        debugs |= matches!(step.value, Step::AttachDebugger(_) | Step::Script(_));
    }
    expects && !debugs
}

/// The files to boot on `board`: a workspace image's build, or the
/// scenario's own files.
fn boot_image(
    image: &ImageSource,
    board: &BoardProfile,
    images: &BuiltImages,
) -> Result<BootImage, StepFailure> {
    match image {
        ImageSource::Built(name) => match images.get(&(name.clone(), board.name.clone())) {
            Some(Ok(files)) => boot_files(files, board),
            Some(Err(message)) => Err(StepFailure::new(Status::Error, message.clone())),
            None => Err(StepFailure::new(
                Status::Error,
                format!("image `{name}` was not built for `{}`", board.name),
            )),
        },
        ImageSource::Files(ImageRef::Elf(path)) => Ok(BootImage::Elf(path.clone())),
        ImageSource::Files(ImageRef::Linux {
            kernel,
            dtb,
            initrd,
        }) => Ok(BootImage::Linux {
            kernel: kernel.clone(),
            dtb: dtb.clone(),
            initrd: initrd.clone(),
            disk: None,
        }),
        ImageSource::Files(ImageRef::Named(name)) => Err(StepFailure::new(
            Status::Error,
            format!("image `{name}` was not resolved"),
        )),
    }
}

/// A workspace build as boot files for `board`: a Linux image's device tree
/// is the one the board profile names, from the image's `dtbs` folder.
fn boot_files(files: &BuiltFiles, board: &BoardProfile) -> Result<BootImage, StepFailure> {
    match files {
        BuiltFiles::Elf(path) => Ok(BootImage::Elf(path.clone())),
        BuiltFiles::Linux {
            kernel,
            initrd,
            dtbs,
            disk,
        } => {
            let dtb = match (board.linux.as_ref().and_then(|l| l.dtb.as_ref()), dtbs) {
                (None, _) => None,
                (Some(name), Some(dtbs)) => Some(dtbs.join(name)),
                (Some(name), None) => {
                    return Err(StepFailure::new(
                        Status::Error,
                        format!(
                            "board `{}` boots with device tree `{name}`, and the image has no \
                             `dtbs` output",
                            board.name
                        ),
                    ));
                }
            };
            Ok(BootImage::Linux {
                kernel: kernel.clone(),
                dtb,
                initrd: initrd.clone(),
                disk: disk.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{BuiltFiles, boot_files};
    use crate::backend::BootImage;
    use crate::board::BoardCatalog;

    #[test]
    fn a_linux_build_boots_with_the_device_tree_its_board_names() {
        let boards = BoardCatalog::builtin();
        let built = |dtbs: Option<&str>| BuiltFiles::Linux {
            kernel: PathBuf::from("/o/Image"),
            initrd: Some(PathBuf::from("/o/initrd.cpio.gz")),
            dtbs: dtbs.map(PathBuf::from),
            disk: None,
        };
        let dtb = |board: &str, files: &BuiltFiles| match boot_files(
            files,
            boards.get(board).unwrap().unwrap(),
        ) {
            Ok(BootImage::Linux { dtb, .. }) => Ok(dtb),
            Ok(other) => panic!("{other:?}"),
            Err(f) => Err(f.message),
        };
        assert_eq!(
            dtb("raspi3b", &built(Some("/o/dtbs"))),
            Ok(Some(PathBuf::from("/o/dtbs/broadcom/bcm2837-rpi-3-b.dtb")))
        );
        assert_eq!(dtb("virt-a53", &built(Some("/o/dtbs"))), Ok(None));
        let err = dtb("raspi3b", &built(None)).unwrap_err();
        assert!(err.contains("no `dtbs` output"), "{err}");
    }
}
