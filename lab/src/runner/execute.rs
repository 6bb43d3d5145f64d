//! Executes one job: boots its target and runs its steps under deadlines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Detail;
use super::crash;
use super::debugger::{Debugger, load_elf};
use super::faults;
use super::footprint::Footprint;
use super::gc_trace;
use super::layout;
use super::load;
use super::plan;
use super::script_host;
use super::trend;
use super::{BuiltImages, ImageSource, Job};
use crate::board::{Arch, BoardProfile};
use crate::console::ConsoleError;
use crate::image::BuiltFiles;
use crate::report::{RunResult, Status, StepResult};
use crate::scenario::{At, ExpectExit, ImageRef, Step, WaitSerial};
use crate::target::{
    BootImage, GuestExit, HardwareLaunch, HardwareTarget, QemuLaunch, QemuTarget, Target,
    TargetError,
};
use crate::workspace::Workspace;

/// After the console closes, how long QEMU gets to report its exit.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Why a step did not pass.
#[derive(Debug)]
pub(super) struct StepFailure {
    pub(super) status: Status,
    pub(super) message: String,
}

impl StepFailure {
    /// A failure with its verdict and one-line reason.
    pub(super) fn new(status: Status, message: impl Into<String>) -> Self {
        StepFailure {
            status,
            message: message.into(),
        }
    }
}

impl From<TargetError> for StepFailure {
    fn from(e: TargetError) -> Self {
        let status = match &e {
            TargetError::ExitTimeout(_) | TargetError::Console(ConsoleError::Timeout { .. }) => {
                Status::Timeout
            }
            _ => Status::Error,
        };
        StepFailure::new(status, e.to_string())
    }
}

/// Runs one job to completion and returns its result. Never panics on a
/// target's behaviour; always stops the target before returning.
pub(super) async fn execute(
    job: &Job,
    resources: &JobResources<'_>,
    cancel: &CancellationToken,
    seed: u64,
) -> RunResult {
    let started = Instant::now();
    let mut result = RunResult {
        status: Status::Passed,
        ..unfinished(job)
    };
    let outcome = match prepare_target(job, resources.images) {
        Ok((target, elf)) => {
            let mut ctx = RunContext {
                job,
                resources,
                target,
                board: job.board.clone(),
                metrics: BTreeMap::new(),
                elf,
                debugger: None,
                deadline: started + job.scenario.timeout,
                seed,
                cancel: cancel.clone(),
            };
            let outcome = run_steps(&mut ctx, &mut result, started, cancel).await;
            // The bridge goes before the target: its session must not outlive QEMU.
            drop(ctx.debugger.take());
            ctx.target.shutdown().await;
            result.metrics = ctx.metrics;
            outcome
        }
        Err(failure) => Err(failure),
    };
    if let Err(failure) = outcome {
        result.status = failure.status;
        result.error = Some(failure.message);
    }
    result.duration_ms = ms(started.elapsed());
    result
}

/// A result for `job` that says nothing ran yet: status `error`, no steps.
pub fn unfinished(job: &Job) -> RunResult {
    RunResult {
        scenario: job.scenario.name.clone(),
        file: job.scenario.file.display().to_string(),
        variant: job.variant.clone(),
        board: job.board.name.clone(),
        target: job.target.as_str().to_owned(),
        run: job.run,
        status: Status::Error,
        duration_ms: 0.0,
        metrics: BTreeMap::new(),
        steps: Vec::new(),
        error: None,
    }
}

/// The job's target (QEMU or a board behind its probe), not yet booted,
/// and the ELF its symbols come from.
pub(super) fn prepare_target(
    job: &Job,
    images: &BuiltImages,
) -> Result<(Box<dyn Target>, Option<PathBuf>), StepFailure> {
    let image = boot_image(&job.image, &job.board, images)?;
    launch(job, &job.board, image, job.args.clone())
}

/// A target for `board` booting `image`, and the ELF its symbols come
/// from: the job's board behind its probe when the job runs on hardware,
/// QEMU with the job's clock and environment otherwise.
fn launch(
    job: &Job,
    board: &BoardProfile,
    image: BootImage,
    args: Vec<String>,
) -> Result<(Box<dyn Target>, Option<PathBuf>), StepFailure> {
    let elf = match &image {
        BootImage::Elf(path) => Some(path.clone()),
        BootImage::Linux { .. } => None,
    };
    if let (Some(probe), Some(elf), true) = (&job.probe, &elf, board.name == job.board.name) {
        let launch = HardwareLaunch {
            board: board.clone(),
            elf: elf.clone(),
            args,
            probe: probe.info.clone(),
            lister: probe.lister.clone(),
            lock: probe.lock.clone(),
            on_flash: probe.on_flash.clone(),
        };
        return Ok((Box::new(HardwareTarget::new(launch)?), Some(elf.clone())));
    }
    let launch = QemuLaunch {
        board: board.clone(),
        image,
        clock: job.scenario.clock,
        args,
        env: job.env.clone(),
    };
    let mut target: Box<dyn Target> = Box::new(QemuTarget::new(launch)?);
    if elf.is_some() && board.arch == Arch::Armv7m && catches_faults(&job.scenario.steps) {
        target.arm_fault_catch();
    }
    Ok((target, elf))
}

/// Whether a run needs the target's HardFault catch: it expects a fault,
/// and no debugger of its own holds the core (QEMU's gdbstub serves one
/// client; scripts may attach one at any time).
fn catches_faults(steps: &[At<Step>]) -> bool {
    let expects = steps
        .iter()
        .any(|s| matches!(s.value, Step::ExpectFault(_)));
    let debugs = steps
        .iter()
        .any(|s| matches!(s.value, Step::AttachDebugger(_) | Step::Script(_)));
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
            })
        }
    }
}

/// What a job may boot besides its own image: the workspace's boards and
/// images, and the builds made before the run.
pub(super) struct JobResources<'a> {
    /// Boards and images, to build more on demand.
    pub(super) workspace: &'a Workspace,
    /// Images built for the plan's jobs.
    pub(super) images: &'a BuiltImages,
}

/// What steps of one run share.
pub(super) struct RunContext<'a> {
    pub(super) job: &'a Job,
    pub(super) resources: &'a JobResources<'a>,
    /// The running target; a script's `boot()` may replace it.
    pub(super) target: Box<dyn Target>,
    /// The board the target runs.
    pub(super) board: BoardProfile,
    pub(super) metrics: BTreeMap<String, f64>,
    /// The ELF that symbols come from, when the image is one.
    pub(super) elf: Option<PathBuf>,
    /// The debugger, from the first `attach-debugger` on.
    pub(super) debugger: Option<Debugger>,
    /// The scenario's deadline.
    pub(super) deadline: Instant,
    /// Seeds scripts' random numbers.
    pub(super) seed: u64,
    /// Cancelled on Ctrl-C: steps that block in place (scripts) watch it.
    pub(super) cancel: CancellationToken,
}

impl RunContext<'_> {
    /// Replaces the target with `board` (default: the current one) booting
    /// `image` (default: the job's), built now if the plan did not build it.
    /// Blocking (an image build may run): call it off the async runtime's
    /// workers or under `block_in_place`.
    pub(super) async fn switch_target(
        &mut self,
        board: Option<&str>,
        image: Option<&str>,
        args: Vec<String>,
    ) -> Result<(), StepFailure> {
        let workspace = self.resources.workspace;
        let invalid = |(message, hint): (String, String)| {
            StepFailure::new(Status::Error, format!("{message} ({hint})"))
        };
        let board = match board {
            Some(name) => plan::resolve_board(workspace, name).map_err(invalid)?,
            None => self.board.clone(),
        };
        let source = match image {
            Some(name) => plan::resolve_image(workspace, &board, &ImageRef::Named(name.into()))
                .map_err(invalid)?,
            None => self.job.image.clone(),
        };
        let boot = match &source {
            ImageSource::Built(name)
                if !self
                    .resources
                    .images
                    .contains_key(&(name.clone(), board.name.clone())) =>
            {
                let manifest = workspace.images.get(name).ok_or_else(|| {
                    StepFailure::new(Status::Error, format!("unknown image `{name}`"))
                })?;
                let built = workspace
                    .builder
                    .build(manifest, &board)
                    .map_err(|e| StepFailure::new(Status::Error, e.to_string()))?;
                boot_files(&built.files, &board)?
            }
            source => boot_image(source, &board, self.resources.images)?,
        };
        let args = if args.is_empty() {
            self.job.args.clone()
        } else {
            args
        };
        let (next, elf) = launch(self.job, &board, boot, args)?;
        // A debugger session belongs to the QEMU it attached to.
        drop(self.debugger.take());
        self.target.shutdown().await;
        self.target = next;
        self.board = board;
        self.elf = elf;
        Ok(())
    }
}

async fn run_steps(
    ctx: &mut RunContext<'_>,
    result: &mut RunResult,
    started: Instant,
    cancel: &CancellationToken,
) -> Result<(), StepFailure> {
    let job = ctx.job;
    let timeout = job.scenario.timeout;
    let mut steps = Vec::with_capacity(job.scenario.steps.len());
    let mut outcome = Ok(());
    for (index, step) in job.scenario.steps.iter().enumerate() {
        let step_started = Instant::now();
        let deadline = ctx.deadline;
        let step_outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, run_step(&step.value, ctx)) => {
                r.unwrap_or_else(|_| Err(StepFailure::new(
                    Status::Timeout,
                    format!(
                        "scenario timeout of {} reached in step {} (`{}`)",
                        humantime::format_duration(timeout),
                        index + 1,
                        step.value.key()
                    ),
                )))
            }
            _ = cancel.cancelled() => Err(StepFailure::new(Status::Error, "interrupted (Ctrl-C)")),
        };
        let (status, detail) = match &step_outcome {
            Ok(detail) => (Status::Passed, detail.clone()),
            Err(f) => (f.status, None),
        };
        steps.push(StepResult {
            step: step.value.key().to_owned(),
            status,
            at_ms: ms(step_started - started),
            duration_ms: ms(step_started.elapsed()),
            detail,
        });
        if let Err(failure) = step_outcome {
            outcome = Err(failure);
            break;
        }
    }
    result.steps = steps;
    outcome
}

async fn run_step(step: &Step, ctx: &mut RunContext<'_>) -> Result<Option<Detail>, StepFailure> {
    let target = &mut *ctx.target;
    match step {
        Step::Boot(boot) => target.boot(boot.halted).await?,
        Step::WaitSerial(WaitSerial { pattern, timeout }) => {
            // Without a timeout of its own, the scenario's deadline bounds the wait.
            match target.console()?.wait_for(pattern, *timeout).await {
                Ok(found) => {
                    for (name, text) in found.captures {
                        let value = metric_value(&name, &text)?;
                        ctx.metrics.insert(name, value);
                    }
                }
                Err(closed @ ConsoleError::Closed { .. }) => {
                    return Err(ended_early(target, closed).await);
                }
                Err(other) => return Err(TargetError::from(other).into()),
            }
        }
        Step::SendSerial(text) => {
            if let Err(e) = target.console()?.send(text.as_bytes()).await {
                return Err(ended_early(target, e).await);
            }
        }
        Step::ExpectExit(ExpectExit { code, timeout }) => match target.wait_exit(*timeout).await? {
            GuestExit::Code(got) => {
                if let Some(want) = code.filter(|want| *want != got) {
                    return Err(StepFailure::new(
                        Status::Failed,
                        format!("the target exited with code {got}, expected {want}"),
                    ));
                }
            }
            GuestExit::Crashed(reason) => return Err(StepFailure::new(Status::Error, reason)),
        },
        Step::AttachDebugger(attach) => {
            if ctx.debugger.is_none() {
                ctx.debugger = Some(Debugger::start(&*ctx.target, ctx.elf.clone())?);
            }
            let latency = debugger(ctx)?.attach(attach.timeout).await?;
            ctx.metrics.insert("attach_ms".into(), latency);
        }
        Step::Break(b) => {
            let (detail, round_trip) = debugger(ctx)?.set_break(b).await?;
            ctx.metrics.insert("breakpoint_ms".into(), round_trip);
            return Ok(Some(detail));
        }
        Step::Continue(c) => {
            let remaining = ctx.deadline.saturating_duration_since(Instant::now());
            return Ok(Some(debugger(ctx)?.resume(c, remaining).await?));
        }
        Step::Step(s) => return Ok(Some(debugger(ctx)?.step(s.count).await?)),
        Step::ReadRegister(r) => {
            let (value, detail) = debugger(ctx)?.read_register(r).await?;
            if let Some(metric) = &r.metric {
                ctx.metrics.insert(metric.clone(), value as f64);
            }
            return Ok(Some(detail));
        }
        Step::ReadMemory(r) => return Ok(Some(debugger(ctx)?.read_memory(r).await?)),
        Step::ReadSymbol(r) => {
            let (value, detail) = debugger(ctx)?.read_symbol(r).await?;
            if let Some(metric) = &r.metric {
                ctx.metrics.insert(metric.clone(), value);
            }
            return Ok(Some(detail));
        }
        Step::WriteMemory(w) => debugger(ctx)?.write_memory(w).await?,
        Step::WriteSymbol(w) => debugger(ctx)?.write_symbol(w).await?,
        Step::Detach => debugger(ctx)?.detach().await?,
        Step::Footprint => {
            let elf = load_elf(ctx.elf.as_deref(), "footprint")?;
            let footprint = Footprint::of(&elf);
            ctx.metrics.extend(footprint.metrics());
            return Ok(Some(footprint.detail(&elf)));
        }
        Step::Script(script) => {
            script_host::run(script, ctx)?;
        }
        Step::ExpectCrash(c) => {
            return Ok(Some(
                crash::expect_crash(c, target, &mut ctx.metrics).await?,
            ));
        }
        Step::SerialLoad(l) => {
            return Ok(Some(load::serial_load(l, target, &mut ctx.metrics).await?));
        }
        Step::GcTrace(g) => {
            return Ok(Some(gc_trace::gc_trace(g, target, &mut ctx.metrics).await?));
        }
        Step::Trend(t) => {
            let variant = ctx.job.variant.as_deref();
            let detail = trend::sample(t, target.console()?, variant, &mut ctx.metrics).await?;
            return Ok(Some(detail));
        }
        Step::MemoryLayout => {
            let elf = load_elf(ctx.elf.as_deref(), "memory-layout")?;
            let mtree = target.monitor("info mtree -f").await?;
            let (detail, metrics) = layout::layout(&ctx.board, &elf, mtree);
            ctx.metrics.extend(metrics);
            return Ok(Some(detail));
        }
        Step::ExpectFault(f) => {
            let remaining = ctx.deadline.saturating_duration_since(Instant::now());
            let detail = faults::expect_fault(
                f,
                &mut *ctx.target,
                ctx.debugger.as_mut(),
                ctx.elf.as_deref(),
                remaining,
            )
            .await?;
            return Ok(Some(detail));
        }
    }
    Ok(None)
}

/// The run's debugger, or a failure that says how to get one.
fn debugger<'c>(ctx: &'c mut RunContext<'_>) -> Result<&'c mut Debugger, StepFailure> {
    ctx.debugger.as_mut().ok_or_else(|| {
        StepFailure::new(
            Status::Error,
            "the debugger is not attached: add an `attach-debugger` step first",
        )
    })
}

/// The console failed: tell a crash from a clean exit from a broken pipe.
pub(super) async fn ended_early(target: &mut dyn Target, cause: ConsoleError) -> StepFailure {
    match target.exited(EXIT_GRACE).await {
        Some(GuestExit::Crashed(reason)) => StepFailure::new(Status::Error, reason),
        Some(GuestExit::Code(code)) => StepFailure::new(
            Status::Failed,
            format!("the target exited with code {code}: {cause}"),
        ),
        None => StepFailure::new(Status::Error, cause.to_string()),
    }
}

/// Capture `name` as a metric, or a failure that says it is not a number.
pub(super) fn metric_value(name: &str, text: &str) -> Result<f64, StepFailure> {
    parse_metric(text).ok_or_else(|| {
        StepFailure::new(
            Status::Failed,
            format!(
                "capture `{name}` is {text:?}, not a number; metrics are numeric (decimal, or \
                 hex with 0x)"
            ),
        )
    })
}

/// The named groups of `pattern` that took part in a match, as metrics.
pub(super) fn capture_metrics(
    pattern: &regex::bytes::Regex,
    caps: &regex::bytes::Captures<'_>,
) -> Result<Vec<(String, f64)>, StepFailure> {
    pattern
        .capture_names()
        .flatten()
        .filter_map(|name| caps.name(name).map(|m| (name, m.as_bytes())))
        .map(|(name, text)| {
            let value = metric_value(name, &String::from_utf8_lossy(text))?;
            Ok((name.to_owned(), value))
        })
        .collect()
}

/// A capture as a metric: a decimal number, or hex with a `0x` prefix.
fn parse_metric(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => text.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{BuiltFiles, boot_files, parse_metric};
    use crate::board::BoardCatalog;
    use crate::target::BootImage;

    #[test]
    fn a_linux_build_boots_with_the_device_tree_its_board_names() {
        let boards =
            BoardCatalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs"))
                .unwrap();
        let built = |dtbs: Option<&str>| BuiltFiles::Linux {
            kernel: PathBuf::from("/o/Image"),
            initrd: Some(PathBuf::from("/o/initrd.cpio.gz")),
            dtbs: dtbs.map(PathBuf::from),
        };
        let dtb =
            |board: &str, files: &BuiltFiles| match boot_files(files, boards.get(board).unwrap()) {
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

    #[test]
    fn metrics_parse_decimal_and_hex() {
        assert_eq!(parse_metric("42"), Some(42.0));
        assert_eq!(parse_metric(" 1.5 "), Some(1.5));
        assert_eq!(parse_metric("0x00010000"), Some(65536.0));
        assert_eq!(parse_metric("abc"), None);
        assert_eq!(parse_metric("inf"), None);
    }
}
