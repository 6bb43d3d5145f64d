//! Executes one job: boots its target and runs its steps under deadlines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::launch::JobLauncher;
use super::record::{self, JobRecording};
use super::warm::{Claim, Probation, SnapshotCache};
use super::{Job, JobSettings};
use crate::backend::{BootImage, TargetKind};
use crate::report::{CONSOLE_TAIL, Metrics, RunResult, Start, Status, StepResult};
use crate::scenario::At;
use crate::steps::ms;
use crate::steps::{Detail, RunContext, Step, StepFailure};

/// How much longer than a scenario's timeout a job waits for another job's
/// warm-up: the time that job takes to stop its target after its deadline.
const CLAIM_GRACE: Duration = Duration::from_secs(30);

/// Runs one job to completion and returns its result. Never panics on a
/// target's behaviour; always stops the target before returning.
pub(super) async fn execute(
    launcher: JobLauncher,
    settings: &JobSettings,
    cancel: &CancellationToken,
    on_step: &(dyn Fn(&str, &str) + Send + Sync),
) -> RunResult {
    let job = Arc::clone(&launcher.job);
    let started = Instant::now();
    let mut result = RunResult {
        status: Status::Passed,
        ..unfinished(&job)
    };
    let outcome = match launcher.prepare() {
        Ok(launched) => {
            let launched_image = launched.image.clone();
            let mut ctx = RunContext::new(
                launched,
                Box::new(launcher),
                started + job.scenario.timeout,
                settings.seed,
                job.variant.clone(),
                cancel.clone(),
            );
            let image = launched_image;
            let mut run = Run {
                ctx: &mut ctx,
                result: &mut result,
                started,
                timeout: job.scenario.timeout,
                cancel,
                on_step,
            };
            let mut outcome = Ok(());
            let mut probation = None;
            if !job.scenario.warm_up.is_empty() {
                // A recording starts at the reset vector: its runs boot cold.
                let cold = settings.cold || job.recording.is_some();
                let cache = (!cold).then_some(&settings.snapshots);
                match warm_up(&job, &image, cache, &mut run).await {
                    Ok(saved) => probation = saved,
                    Err(failure) => outcome = Err(failure),
                }
            }
            if outcome.is_ok() {
                outcome = run_steps(Phase::Steps, &job.scenario.steps, &mut run).await;
            }
            if outcome.is_err() {
                result.console = ctx.target.console().ok().map(|c| tail(&c.transcript()));
            }
            // The bridge goes before the target: its session must not outlive QEMU.
            drop(ctx.debugger.take());
            ctx.target.shutdown().await;
            if let Some(probation) = probation {
                probation.end(outcome.is_ok());
            }
            if let Some(JobRecording::Record { mode, root }) = &job.recording {
                let (status, error) = match &outcome {
                    Ok(()) => (Status::Passed, None),
                    Err(f) => (f.status, Some(f.message.as_str())),
                };
                let ended = record::Outcome {
                    seed: settings.seed,
                    status,
                    error,
                };
                let folder = record::folder(root, &job);
                match record::finish(&job, &folder, *mode, &image, &ended) {
                    Ok(kept) => result.recording = kept.map(|f| f.display().to_string()),
                    Err(e) if outcome.is_ok() => {
                        outcome = Err(StepFailure::new(Status::Error, e.to_string()));
                    }
                    Err(e) => tracing::warn!("{}: the recording: {e}", job.label()),
                }
            }
            result.metrics = ctx.metrics;
            result.series = ctx.series;
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

/// The last [`CONSOLE_TAIL`] bytes of a console transcript, as text, from
/// the start of a line where one begins within them.
fn tail(transcript: &[u8]) -> String {
    let from = transcript.len().saturating_sub(CONSOLE_TAIL);
    let end = &transcript[from..];
    let end = match end.iter().position(|&b| b == b'\n') {
        Some(newline) if from > 0 => &end[newline + 1..],
        _ => end,
    };
    String::from_utf8_lossy(end).into_owned()
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
        job: job.position,
        status: Status::Error,
        duration_ms: 0.0,
        metrics: Metrics::new(),
        series: BTreeMap::new(),
        steps: Vec::new(),
        error: None,
        console: None,
        start: None,
        snapshot: None,
        recording: None,
    }
}

/// Which list of a scenario's steps is running, for messages.
#[derive(Clone, Copy)]
enum Phase {
    /// `warm-up:`.
    WarmUp,
    /// `steps:`.
    Steps,
}

/// Runs `steps` in order under the scenario's deadline and Ctrl-C, and
/// appends their results to `result`; stops at the first that fails.
async fn run_steps(phase: Phase, steps: &[At<Step>], run: &mut Run<'_>) -> Result<(), StepFailure> {
    for (index, step) in steps.iter().enumerate() {
        let which = match phase {
            Phase::WarmUp => format!("warm-up step {}", index + 1),
            Phase::Steps => format!("step {}", index + 1),
        };
        run.timed(step.value.key(), &which, async |ctx: &mut RunContext| {
            step.value.run(ctx).await
        })
        .await?;
    }
    Ok(())
}

/// A job's run in progress: its context, its result so far, and when and
/// how it must end.
struct Run<'a> {
    ctx: &'a mut RunContext,
    result: &'a mut RunResult,
    started: Instant,
    timeout: Duration,
    cancel: &'a CancellationToken,
    /// Told `(which, key)` as each step begins.
    on_step: &'a (dyn Fn(&str, &str) + Send + Sync),
}

impl Run<'_> {
    /// Runs `op` as the step `key` (the `which` of messages) under the
    /// scenario's deadline and Ctrl-C, and records its result.
    async fn timed(
        &mut self,
        key: &str,
        which: &str,
        op: impl AsyncFnOnce(&mut RunContext) -> Result<Option<Detail>, StepFailure>,
    ) -> Result<(), StepFailure> {
        (self.on_step)(which, key);
        let step_started = Instant::now();
        let deadline = self.ctx.deadline;
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, op(&mut *self.ctx)) => {
                r.unwrap_or_else(|_| Err(StepFailure::new(
                    Status::Timeout,
                    format!(
                        "scenario timeout of {} reached in {which} (`{key}`)",
                        humantime::format_duration(self.timeout),
                    ),
                )))
            }
            _ = self.cancel.cancelled() => Err(StepFailure::interrupted()),
        };
        let (status, detail) = match &outcome {
            Ok(detail) => (Status::Passed, detail.clone()),
            Err(f) => (f.status, None),
        };
        self.result.steps.push(StepResult {
            step: key.to_owned(),
            status,
            at_ms: ms(step_started - self.started),
            duration_ms: ms(step_started.elapsed()),
            detail,
        });
        outcome.map(drop)
    }
}

/// Brings the target to where the scenario's runs start: restores the
/// warm-up's snapshot, or runs the warm-up cold, saves one and restores it
/// at once, so that every run goes on from the same instant. A backend
/// without snapshots (a board behind a probe), and `--cold`, run the
/// warm-up cold every time. The snapshot step is recorded as `warm-up`.
/// A snapshot saved here comes back on [`Probation`], to be ended when
/// the job's steps have.
async fn warm_up(
    job: &Job,
    image: &BootImage,
    cache: Option<&SnapshotCache>,
    run: &mut Run<'_>,
) -> Result<Option<Probation>, StepFailure> {
    let warm_up = &job.scenario.warm_up;
    let cache = match cache {
        Some(cache) if run.ctx.target.kind() == TargetKind::Qemu => cache,
        _ => {
            run.result.start = Some(Start::Cold);
            return run_steps(Phase::WarmUp, warm_up, run).await.map(|()| None);
        }
    };
    let key = tokio::task::block_in_place(|| cache.key(job, image)).map_err(|e| {
        StepFailure::new(
            Status::Error,
            format!("cannot compute the warm-up's snapshot key: {e}"),
        )
    })?;
    // The job that saves keeps the key until its run ends (its snapshot's
    // probation), at the latest by its own deadline, which began before
    // this wait did: so the wait is bounded by one timeout, and it does not
    // count against this run's.
    let waiting = Instant::now();
    let claimed = cache
        .claim(&key, waiting + run.timeout + CLAIM_GRACE)
        .await?;
    run.ctx.deadline += waiting.elapsed();
    match claimed {
        Claim::Restore(path) => {
            run.result.start = Some(Start::Warm);
            run.result.snapshot = Some(path.display().to_string());
            run.timed("warm-up", "the warm start", async |ctx: &mut RunContext| {
                let restored = ctx.target.restore_snapshot(&path, false).await?;
                let mut detail = Detail::new();
                detail.insert("start".into(), json!("warm"));
                detail.insert("snapshot".into(), json!(path));
                detail.insert("restore_ms".into(), json!(ms(restored.duration)));
                detail.insert("load_ms".into(), json!(ms(restored.load)));
                Ok(Some(detail))
            })
            .await
            .map(|()| None)
        }
        Claim::Save { path, lock } => {
            run.result.start = Some(Start::Cold);
            run_steps(Phase::WarmUp, warm_up, run).await?;
            let saved = run
                .timed(
                    "warm-up",
                    "the warm-up's snapshot",
                    async |ctx: &mut RunContext| {
                        let saved = ctx.target.save_snapshot(&path).await?;
                        // This run goes on from the snapshot too, as the
                        // warm ones do: what the guest did while it was
                        // saved, and what the console had not read yet, are
                        // part of no run.
                        let restored = ctx.target.restore_snapshot(&path, false).await?;
                        let mut detail = Detail::new();
                        detail.insert("start".into(), json!("cold"));
                        detail.insert("snapshot".into(), json!(path));
                        detail.insert("save_ms".into(), json!(ms(saved.duration)));
                        detail.insert("disk_bytes".into(), json!(saved.file.disk_bytes));
                        detail.insert("restore_ms".into(), json!(ms(restored.duration)));
                        Ok(Some(detail))
                    },
                )
                .await;
            let probation = Probation::new(path.clone(), lock);
            if let Err(failure) = saved {
                probation.end(false);
                return Err(failure);
            }
            run.result.snapshot = Some(path.display().to_string());
            Ok(Some(probation))
        }
    }
}
