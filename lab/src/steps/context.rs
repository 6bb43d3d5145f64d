//! What the steps of one run share: the run's target, board, debugger,
//! metrics and deadline, and the way to another target when a script boots
//! one. The runner makes the context; step kinds only use it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::debugger::Debugger;
use super::failure::StepFailure;
use crate::backend::{BootImage, Target};
use crate::board::BoardProfile;
use crate::report::{Metrics, Status};
use crate::scratch::ScratchDir;
use crate::script::HostError;

/// What a step observed, for the step's `detail` in the report.
pub type Detail = BTreeMap<String, serde_json::Value>;

/// A target made for a run, not yet booted.
pub(crate) struct Launched {
    /// The target.
    pub(crate) target: Box<dyn Target>,
    /// What it boots.
    pub(crate) image: BootImage,
    /// The board it runs.
    pub(crate) board: BoardProfile,
    /// The ELF its symbols come from, when the image is one.
    pub(crate) elf: Option<PathBuf>,
    /// Whether guest time is counted in instructions (`clock: virtual` on a
    /// board with `icount`), not by the host's clock.
    pub(crate) icount: bool,
}

/// Makes the targets of a run: the runner's side of a script's
/// `boot(#{board, image})`, which resolves names, builds images and
/// chooses QEMU or a probe as the run's own target was chosen.
pub(crate) trait Launcher: Send + Sync {
    /// A target for `board` (by default `current`) booting `image` (by
    /// default the run's), with guest `args` (empty: the run's). Blocking:
    /// an image may be built first.
    fn launch(
        &self,
        current: &BoardProfile,
        board: Option<&str>,
        image: Option<&str>,
        args: Vec<String>,
    ) -> Result<Launched, StepFailure>;
}

/// What the steps of one run share.
pub(crate) struct RunContext {
    /// The running target; a script's `boot()` may replace it.
    pub(crate) target: Box<dyn Target>,
    /// The board the target runs.
    pub(crate) board: BoardProfile,
    /// The run's metrics so far, in the order the steps produced them.
    pub(crate) metrics: Metrics,
    /// The run's raw samples so far (see [`crate::report::series`]).
    pub(crate) series: BTreeMap<String, Vec<[f64; 2]>>,
    /// The ELF that symbols come from, when the image is one.
    pub(crate) elf: Option<PathBuf>,
    /// Whether the target counts guest time in instructions (see [`Launched`]).
    pub(crate) icount: bool,
    /// The debugger, from the first `attach-debugger` on.
    pub(crate) debugger: Option<Debugger>,
    /// When the run began.
    pub(crate) started: Instant,
    /// The scenario's deadline.
    pub(crate) deadline: Instant,
    /// Seeds scripts' random numbers.
    pub(crate) seed: u64,
    /// The matrix variant being run, if any.
    pub(crate) variant: Option<String>,
    /// Cancelled on Ctrl-C: steps that block in place (scripts) watch it.
    pub(crate) cancel: CancellationToken,
    /// Makes other targets for the run.
    pub(crate) launcher: Box<dyn Launcher>,
    /// Whether a script is running, so that advice names its functions.
    pub(crate) in_script: bool,
    /// The power cuts so far, which seed the next cut's draw.
    pub(crate) power_cuts: u64,
    /// The run's named snapshots, from the first `snapshot-save` on.
    snapshots: Option<ScratchDir>,
}

impl RunContext {
    /// A context for a run of `launched`, which must end by `deadline`.
    pub(crate) fn new(
        launched: Launched,
        launcher: Box<dyn Launcher>,
        deadline: Instant,
        seed: u64,
        variant: Option<String>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            target: launched.target,
            board: launched.board,
            metrics: Metrics::new(),
            series: BTreeMap::new(),
            elf: launched.elf,
            icount: launched.icount,
            debugger: None,
            started: Instant::now(),
            deadline,
            seed,
            variant,
            cancel,
            launcher,
            in_script: false,
            power_cuts: 0,
            snapshots: None,
        }
    }

    /// The run's debugger, or a failure that says how to get one.
    pub(crate) fn debugger(&mut self) -> Result<&mut Debugger, StepFailure> {
        let advice = if self.in_script {
            "call attach_debugger() first"
        } else {
            "add an `attach-debugger` step first"
        };
        self.debugger.as_mut().ok_or_else(|| {
            StepFailure::new(
                Status::Error,
                format!("the debugger is not attached: {advice}"),
            )
        })
    }

    /// Where the run's snapshot `name` is saved; the run's snapshot folder
    /// is made on first use and removed with the run.
    pub(crate) fn snapshot_path(&mut self, name: &str) -> Result<PathBuf, StepFailure> {
        if self.snapshots.is_none() {
            let dir = ScratchDir::new("snapshots").map_err(|e| {
                StepFailure::new(
                    Status::Error,
                    format!("cannot make a folder for the run's snapshots: {e}"),
                )
            })?;
            self.snapshots = Some(dir);
        }
        let dir = self.snapshots.as_ref().map(ScratchDir::path);
        Ok(dir.unwrap_or(Path::new("")).join(format!("{name}.snap")))
    }

    /// The run's saved snapshot `name`, or a failure that says how to save it.
    pub(crate) fn saved_snapshot(&self, name: &str) -> Result<PathBuf, StepFailure> {
        self.snapshots
            .as_ref()
            .map(|dir| dir.path().join(format!("{name}.snap")))
            .filter(|path| path.exists())
            .ok_or_else(|| {
                let how = if self.in_script {
                    format!("call snapshot_save(\"{name}\") first")
                } else {
                    format!("add `snapshot-save: {name}` before this step")
                };
                StepFailure::new(
                    Status::Error,
                    format!("no snapshot `{name}` was saved in this run: {how}"),
                )
            })
    }

    /// The time left until the scenario's deadline.
    pub(crate) fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Replaces the target with `board` (default: the current one) booting
    /// `image` (default: the run's), built now if the plan did not build it.
    /// Blocking (an image build may run): call it under `block_in_place`.
    pub(crate) async fn switch_target(
        &mut self,
        board: Option<&str>,
        image: Option<&str>,
        args: Vec<String>,
    ) -> Result<(), StepFailure> {
        let next = self.launcher.launch(&self.board, board, image, args)?;
        // A debugger session belongs to the QEMU it attached to.
        drop(self.debugger.take());
        self.target.shutdown().await;
        self.target = next.target;
        self.board = next.board;
        self.elf = next.elf;
        self.icount = next.icount;
        Ok(())
    }

    /// Runs `op` on this context to completion from a script's thread (in
    /// the runtime's context, not one of its workers), or gives up when the
    /// run is interrupted.
    pub(crate) fn block_on<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut RunContext) -> Result<T, StepFailure>,
    ) -> Result<T, StepFailure> {
        let cancel = self.cancel.clone();
        Handle::current().block_on(async {
            tokio::select! {
                done = op(self) => done,
                _ = cancel.cancelled() => Err(StepFailure::interrupted()),
            }
        })
    }

    /// [`Self::block_on`] for a script's call: a failure is a host error
    /// that the script can catch.
    pub(crate) fn host_call<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut RunContext) -> Result<T, StepFailure>,
    ) -> Result<T, HostError> {
        self.block_on(op).map_err(HostError::from)
    }
}
