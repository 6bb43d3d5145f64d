//! Executes one job: boots its target and runs its steps under deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Detail;
use super::Job;
use super::context::{JobResources, RunContext, prepare_target};
use super::crash;
use super::debugger::{Debugger, load_elf};
use super::faults;
use super::footprint::Footprint;
use super::gc_trace;
use super::layout;
use super::load;
use super::outcome::{StepFailure, ended_early, metric_value};
use super::script_host;
use super::trend;
use crate::backend::{GuestExit, TargetError};
use crate::console::ConsoleError;
use crate::report::{RunResult, Status, StepResult};
use crate::scenario::{ExpectExit, Step, WaitSerial};

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

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
