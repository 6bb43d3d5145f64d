//! `script:` steps: a rhai script drives the run's target through
//! [`ScriptHost`]. The script engine is synchronous; it runs in place on the
//! runtime's worker (`block_in_place`) and each host call blocks on the
//! async target. The engine's own deadline (the scenario's) bounds it all,
//! and Ctrl-C stops it at once: a host call that waits gives up, and the
//! script stops at its next operation.

use std::time::Duration;

use regex::bytes::Regex;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::context::RunContext;
use super::debugger::Debugger;
use super::guest_clock;
use super::outcome::StepFailure;
use crate::scenario::{
    Break, Continue, ReadRegister, ReadSymbol, Script, WriteMemory, WriteSymbol,
};
use crate::script::{self, BootOptions, HostError, Interrupt, Limits, Match, ScriptHost, Stop};

/// Runs `step`'s script against the run's target.
pub(super) fn run(step: &Script, ctx: &mut RunContext<'_>) -> Result<(), StepFailure> {
    let deadline = match step.timeout {
        Some(t) => ctx.deadline.min(Instant::now() + t),
        None => ctx.deadline,
    };
    let seed = ctx.seed;
    let cancel = ctx.cancel.clone();
    let interrupt = Interrupt::default();
    // The script runs in place on this worker; a task of its own watches
    // for Ctrl-C.
    let watch = {
        let (cancel, interrupt) = (cancel.clone(), interrupt.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            interrupt.raise();
        })
    };
    let outcome = tokio::task::block_in_place(|| {
        let waiter = Waiter {
            handle: Handle::current(),
            cancel,
        };
        let mut host = RunnerHost { ctx, waiter };
        script::run(
            &step.file,
            &step.source,
            &mut host,
            &Limits::default(),
            seed,
            deadline.into_std(),
            &interrupt,
        )
    });
    watch.abort();
    outcome.map_err(|e| StepFailure::new(e.status(), e.to_string().replace('\n', " ")))
}

/// The run's target, debugger and metrics, as a script sees them.
struct RunnerHost<'c, 'a> {
    ctx: &'c mut RunContext<'a>,
    waiter: Waiter,
}

/// Blocks a host call on the async runtime, until the run is interrupted.
struct Waiter {
    handle: Handle,
    cancel: CancellationToken,
}

impl Waiter {
    /// Runs `work` to completion, or gives up when the run is interrupted.
    fn wait<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>>,
        error: impl FnOnce(E) -> HostError,
    ) -> Result<T, HostError> {
        self.handle.block_on(async {
            tokio::select! {
                done = work => done.map_err(error),
                _ = self.cancel.cancelled() => Err(HostError::new("interrupted (Ctrl-C)")),
            }
        })
    }
}

/// A step failure as a host error the script can catch.
fn host_error(f: StepFailure) -> HostError {
    HostError::new(f.message)
}

/// The error of a debugger call without a debugger: it says how to get one.
fn no_debugger() -> HostError {
    HostError::new("the debugger is not attached: call attach_debugger() first")
}

/// A target error as a host error.
fn target_error(e: crate::backend::TargetError) -> HostError {
    HostError::new(e.to_string())
}

impl RunnerHost<'_, '_> {
    /// Runs a debugger operation to completion.
    fn with_debugger<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut Debugger) -> Result<T, StepFailure>,
    ) -> Result<T, HostError> {
        let debugger = self.ctx.debugger.as_mut().ok_or_else(no_debugger)?;
        self.waiter.wait(op(debugger), host_error)
    }

    /// Runs a QMP command for its effect.
    fn qmp_effect(&mut self, command: &str) -> Result<(), HostError> {
        self.qmp(command, None).map(drop)
    }
}

impl ScriptHost for RunnerHost<'_, '_> {
    fn boot(&mut self, options: BootOptions) -> Result<(), HostError> {
        let BootOptions {
            board,
            image,
            args,
            halted,
        } = options;
        if board.is_some() || image.is_some() {
            self.waiter.wait(
                self.ctx
                    .switch_target(board.as_deref(), image.as_deref(), args),
                host_error,
            )?;
            return self.waiter.wait(self.ctx.target.boot(halted), target_error);
        }
        // A debugger session belongs to the QEMU it attached to.
        drop(self.ctx.debugger.take());
        let args = (!args.is_empty()).then_some(args);
        self.waiter
            .wait(self.ctx.target.restart(halted, args), target_error)
    }

    fn wait_serial(&mut self, pattern: &str, timeout: Duration) -> Result<Match, HostError> {
        let pattern =
            Regex::new(pattern).map_err(|e| HostError::new(format!("invalid regex: {e}")))?;
        let console = self.ctx.target.console().map_err(target_error)?;
        let found = self
            .waiter
            .wait(console.wait_for(&pattern, Some(timeout)), |e| {
                HostError::new(e.to_string())
            })?;
        Ok(Match {
            text: found.text,
            captures: found.captures,
        })
    }

    fn send_serial(&mut self, text: &str) -> Result<(), HostError> {
        let console = self.ctx.target.console().map_err(target_error)?;
        self.waiter.wait(console.send(text.as_bytes()), |e| {
            HostError::new(e.to_string())
        })
    }

    fn qmp(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, HostError> {
        self.waiter
            .wait(self.ctx.target.qmp(command, args), target_error)
    }

    fn hmp(&mut self, command: &str) -> Result<String, HostError> {
        self.waiter
            .wait(self.ctx.target.monitor(command), target_error)
    }

    fn pause(&mut self) -> Result<(), HostError> {
        self.qmp_effect("stop")
    }

    fn resume(&mut self) -> Result<(), HostError> {
        self.qmp_effect("cont")
    }

    fn reset(&mut self) -> Result<(), HostError> {
        self.qmp_effect("system_reset")
    }

    fn expect_exit(&mut self, timeout: Duration) -> Result<i64, HostError> {
        match self
            .waiter
            .wait(self.ctx.target.wait_exit(Some(timeout)), target_error)?
        {
            crate::backend::GuestExit::Code(code) => Ok(i64::from(code)),
            crate::backend::GuestExit::Crashed(reason) => Err(HostError::new(reason)),
        }
    }

    fn attach(&mut self, timeout: Duration) -> Result<(), HostError> {
        if self.ctx.debugger.is_none() {
            let debugger =
                Debugger::start(&*self.ctx.target, self.ctx.elf.clone()).map_err(host_error)?;
            self.ctx.debugger = Some(debugger);
        }
        let latency = self.with_debugger(async |d| d.attach(Some(timeout)).await)?;
        self.ctx.metrics.insert("attach_ms".into(), latency);
        Ok(())
    }

    fn set_break(&mut self, location: &str) -> Result<(), HostError> {
        let at = crate::scenario::parse_code_location(location).map_err(HostError::new)?;
        let step = Break {
            at,
            hardware: false,
        };
        self.with_debugger(async |d| d.set_break(&step).await)
            .map(drop)
    }

    fn continue_(&mut self, timeout: Duration) -> Result<Stop, HostError> {
        let step = Continue {
            timeout: Some(timeout),
            stop_at: None,
        };
        let detail = self.with_debugger(async |d| d.resume(&step, timeout).await)?;
        let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Stop {
            reason: text("reason").unwrap_or_default(),
            function: text("function"),
            file: text("file"),
            line: detail
                .get("line")
                .and_then(|v| v.as_u64())
                .and_then(|l| u32::try_from(l).ok()),
            pc: detail
                .get("pc")
                .and_then(|v| v.as_u64())
                .unwrap_or_default(),
        })
    }

    fn step(&mut self, count: u32) -> Result<(), HostError> {
        self.with_debugger(async |d| d.step(count).await).map(drop)
    }

    fn read_register(&mut self, name: &str) -> Result<u64, HostError> {
        let step = ReadRegister {
            name: name.to_owned(),
            metric: None,
            expect: None,
        };
        self.with_debugger(async |d| d.read_register(&step).await)
            .map(|(v, _)| v)
    }

    fn read_memory(&mut self, addr: u64, len: u32) -> Result<Vec<u8>, HostError> {
        self.with_debugger(async |d| d.read_bytes(addr, len as usize).await)
    }

    fn read_symbol(&mut self, name: &str) -> Result<f64, HostError> {
        let step = ReadSymbol {
            name: name.to_owned(),
            metric: None,
            expect: None,
        };
        self.with_debugger(async |d| d.read_symbol(&step).await)
            .map(|(v, _)| v)
    }

    fn write_memory(&mut self, addr: u64, bytes: &[u8]) -> Result<(), HostError> {
        let step = WriteMemory {
            address: crate::scenario::DataLocation::Address(addr),
            bytes: bytes.to_vec(),
        };
        self.with_debugger(async |d| d.write_memory(&step).await)
    }

    fn write_symbol(&mut self, name: &str, value: f64) -> Result<(), HostError> {
        let step = WriteSymbol {
            name: name.to_owned(),
            value,
        };
        self.with_debugger(async |d| d.write_symbol(&step).await)
    }

    fn detach(&mut self) -> Result<(), HostError> {
        self.with_debugger(async |d| d.detach().await)
    }

    fn metric(&mut self, name: &str, value: f64) -> Result<(), HostError> {
        self.ctx.metrics.insert(name.to_owned(), value);
        Ok(())
    }

    fn sleep(&mut self, duration: Duration) -> Result<(), HostError> {
        self.waiter.wait(
            async {
                tokio::time::sleep(duration).await;
                Ok(())
            },
            |never: std::convert::Infallible| match never {},
        )
    }

    fn sleep_guest(
        &mut self,
        duration: Duration,
        timeout: Duration,
    ) -> Result<Duration, HostError> {
        let limit = Instant::now() + timeout;
        let ctx = &mut *self.ctx;
        self.waiter.wait(
            guest_clock::sleep_guest(&mut *ctx.target, &ctx.board, duration, limit),
            |e| HostError::new(e.to_string()),
        )
    }
}
