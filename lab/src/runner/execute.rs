//! Executes one job: boots its target and runs its steps under deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{BuiltImages, ImageSource, Job};
use crate::console::ConsoleError;
use crate::report::{RunResult, Status, StepResult};
use crate::scenario::{ExpectExit, ImageRef, Step, WaitSerial};
use crate::target::{BootImage, GuestExit, QemuLaunch, QemuTarget, Target, TargetError};

/// After the console closes, how long QEMU gets to report its exit.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Why a step did not pass.
#[derive(Debug)]
struct StepFailure {
    status: Status,
    message: String,
}

impl StepFailure {
    fn new(status: Status, message: impl Into<String>) -> Self {
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
    images: &BuiltImages,
    cancel: &CancellationToken,
) -> RunResult {
    let started = Instant::now();
    let scenario = &job.scenario;
    let mut result = RunResult {
        scenario: scenario.name.clone(),
        file: scenario.file.display().to_string(),
        variant: job.variant.clone(),
        board: job.board.name.clone(),
        target: job.target.as_str().to_owned(),
        run: job.run,
        status: Status::Passed,
        duration_ms: 0.0,
        metrics: BTreeMap::new(),
        steps: Vec::new(),
        error: None,
    };
    let outcome = match boot_image(job, images) {
        Ok(image) => {
            let launch = QemuLaunch {
                board: job.board.clone(),
                image,
                clock: scenario.clock,
                args: job.args.clone(),
            };
            match QemuTarget::new(launch) {
                Ok(mut target) => {
                    let outcome = run_steps(job, &mut target, &mut result, started, cancel).await;
                    target.shutdown().await;
                    outcome
                }
                Err(e) => Err(e.into()),
            }
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

/// The files to boot: a workspace image's build, or the scenario's own files.
fn boot_image(job: &Job, images: &BuiltImages) -> Result<BootImage, StepFailure> {
    match &job.image {
        ImageSource::Built(name) => match images.get(&(name.clone(), job.board.name.clone())) {
            Some(Ok(path)) => Ok(BootImage::Elf(path.clone())),
            Some(Err(message)) => Err(StepFailure::new(Status::Error, message.clone())),
            None => Err(StepFailure::new(
                Status::Error,
                format!("image `{name}` was not built for `{}`", job.board.name),
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

async fn run_steps(
    job: &Job,
    target: &mut dyn Target,
    result: &mut RunResult,
    started: Instant,
    cancel: &CancellationToken,
) -> Result<(), StepFailure> {
    let timeout = job.scenario.timeout;
    let deadline = started + timeout;
    for (index, step) in job.scenario.steps.iter().enumerate() {
        let step_started = Instant::now();
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, run_step(&step.value, target, &mut result.metrics)) => {
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
        result.steps.push(StepResult {
            step: step.value.key().to_owned(),
            status: outcome
                .as_ref()
                .map_or_else(|f| f.status, |_| Status::Passed),
            at_ms: ms(step_started - started),
            duration_ms: ms(step_started.elapsed()),
            detail: None,
        });
        outcome?;
    }
    Ok(())
}

async fn run_step(
    step: &Step,
    target: &mut dyn Target,
    metrics: &mut BTreeMap<String, f64>,
) -> Result<(), StepFailure> {
    match step {
        Step::Boot(boot) => Ok(target.boot(boot.halted).await?),
        Step::WaitSerial(WaitSerial { pattern, timeout }) => {
            // Without a timeout of its own, the scenario's deadline bounds the wait.
            match target.console()?.wait_for(pattern, *timeout).await {
                Ok(found) => {
                    for (name, text) in found.captures {
                        let value = parse_metric(&text).ok_or_else(|| {
                            StepFailure::new(
                                Status::Failed,
                                format!(
                                    "capture `{name}` is {text:?}, not a number; metrics are \
                                     numeric (decimal, or hex with 0x)"
                                ),
                            )
                        })?;
                        metrics.insert(name, value);
                    }
                    Ok(())
                }
                Err(closed @ ConsoleError::Closed { .. }) => Err(ended_early(target, closed).await),
                Err(other) => Err(TargetError::from(other).into()),
            }
        }
        Step::SendSerial(text) => {
            let console = target.console()?;
            match console.send(text.as_bytes()).await {
                Ok(()) => Ok(()),
                Err(e) => Err(ended_early(target, e).await),
            }
        }
        Step::ExpectExit(ExpectExit { code, timeout }) => match target.wait_exit(*timeout).await? {
            GuestExit::Code(got) => match code {
                Some(want) if *want != got => Err(StepFailure::new(
                    Status::Failed,
                    format!("the target exited with code {got}, expected {want}"),
                )),
                _ => Ok(()),
            },
            GuestExit::Crashed(reason) => Err(StepFailure::new(Status::Error, reason)),
        },
        other => Err(StepFailure::new(
            Status::Error,
            format!("`{}` is not wired into the runner yet", other.key()),
        )),
    }
}

/// The console failed: tell a crash from a clean exit from a broken pipe.
async fn ended_early(target: &mut dyn Target, cause: ConsoleError) -> StepFailure {
    match target.exited(EXIT_GRACE).await {
        Some(GuestExit::Crashed(reason)) => StepFailure::new(Status::Error, reason),
        Some(GuestExit::Code(code)) => StepFailure::new(
            Status::Failed,
            format!("the target exited with code {code}: {cause}"),
        ),
        None => StepFailure::new(Status::Error, cause.to_string()),
    }
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
    use super::parse_metric;

    #[test]
    fn metrics_parse_decimal_and_hex() {
        assert_eq!(parse_metric("42"), Some(42.0));
        assert_eq!(parse_metric(" 1.5 "), Some(1.5));
        assert_eq!(parse_metric("0x00010000"), Some(65536.0));
        assert_eq!(parse_metric("abc"), None);
        assert_eq!(parse_metric("inf"), None);
    }
}
