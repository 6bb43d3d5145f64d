//! Executes one job: boots its target and runs its steps under deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::Job;
use super::launch::JobLauncher;
use crate::report::{RunResult, Status, StepResult};
use crate::steps::{RunContext, StepFailure};

/// Runs one job to completion and returns its result. Never panics on a
/// target's behaviour; always stops the target before returning.
pub(super) async fn execute(
    launcher: JobLauncher,
    cancel: &CancellationToken,
    seed: u64,
) -> RunResult {
    let job = Arc::clone(&launcher.job);
    let started = Instant::now();
    let mut result = RunResult {
        status: Status::Passed,
        ..unfinished(&job)
    };
    let outcome = match launcher.prepare() {
        Ok(launched) => {
            let mut ctx = RunContext::new(
                launched,
                Box::new(launcher),
                started + job.scenario.timeout,
                seed,
                job.variant.clone(),
                cancel.clone(),
            );
            let outcome = run_steps(&job, &mut ctx, &mut result, started, cancel).await;
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

async fn run_steps(
    job: &Job,
    ctx: &mut RunContext,
    result: &mut RunResult,
    started: Instant,
    cancel: &CancellationToken,
) -> Result<(), StepFailure> {
    let timeout = job.scenario.timeout;
    let mut steps = Vec::with_capacity(job.scenario.steps.len());
    let mut outcome = Ok(());
    for (index, step) in job.scenario.steps.iter().enumerate() {
        let step_started = Instant::now();
        let deadline = ctx.deadline;
        let step_outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, step.value.run(ctx)) => {
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
            _ = cancel.cancelled() => Err(StepFailure::interrupted()),
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

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
