//! `script:` steps: a rhai script drives the run's target through
//! [`ScriptHost`]. The script engine is synchronous; it runs in place on the
//! runtime's worker (`block_in_place`) and each host call blocks on the
//! async target. The engine's own deadline (the scenario's) bounds it all.

use std::time::Duration;

use regex::bytes::Regex;
use tokio::runtime::Handle;
use tokio::time::Instant;

use super::debugger::Debugger;
use super::execute::{RunContext, StepFailure};
use super::guest_clock;
use crate::scenario::{
    Break, Continue, ReadRegister, ReadSymbol, Script, WriteMemory, WriteSymbol,
};
use crate::script::{self, BootOptions, HostError, Limits, Match, ScriptHost, Stop};

/// Runs `step`'s script against the run's target.
pub(super) fn run(step: &Script, ctx: &mut RunContext<'_>) -> Result<(), StepFailure> {
    let deadline = match step.timeout {
        Some(t) => ctx.deadline.min(Instant::now() + t),
        None => ctx.deadline,
    };
    let seed = ctx.seed;
    let handle = Handle::current();
    let outcome = tokio::task::block_in_place(|| {
        let mut host = RunnerHost { ctx, handle };
        script::run(
            &step.file,
            &step.source,
            &mut host,
            &Limits::default(),
            seed,
            deadline.into_std(),
        )
    });
    outcome.map_err(|e| StepFailure::new(e.status(), e.to_string().replace('\n', " ")))
}

/// The run's target, debugger and metrics, as a script sees them.
struct RunnerHost<'c, 'a> {
    ctx: &'c mut RunContext<'a>,
    handle: Handle,
}

/// A step failure as a host error the script can catch.
fn host_error(f: StepFailure) -> HostError {
    HostError::new(f.message)
}

/// A target error as a host error.
fn target_error(e: crate::target::TargetError) -> HostError {
    HostError::new(e.to_string())
}

impl RunnerHost<'_, '_> {
    /// The attached debugger, or an error that says how to get one.
    fn debugger(&mut self) -> Result<&mut Debugger, HostError> {
        self.ctx.debugger.as_mut().ok_or_else(|| {
            HostError::new("the debugger is not attached: call attach_debugger() first")
        })
    }

    /// Runs a debugger operation to completion.
    fn with_debugger<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut Debugger) -> Result<T, StepFailure>,
    ) -> Result<T, HostError> {
        let handle = self.handle.clone();
        let debugger = self.debugger()?;
        handle.block_on(op(debugger)).map_err(host_error)
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
            self.handle
                .block_on(
                    self.ctx
                        .switch_target(board.as_deref(), image.as_deref(), args),
                )
                .map_err(host_error)?;
            let target = &mut *self.ctx.target;
            return self
                .handle
                .block_on(target.boot(halted))
                .map_err(target_error);
        }
        // A debugger session belongs to the QEMU it attached to.
        drop(self.ctx.debugger.take());
        let args = (!args.is_empty()).then_some(args);
        let target = &mut *self.ctx.target;
        self.handle
            .block_on(target.restart(halted, args))
            .map_err(target_error)
    }

    fn wait_serial(&mut self, pattern: &str, timeout: Duration) -> Result<Match, HostError> {
        let pattern =
            Regex::new(pattern).map_err(|e| HostError::new(format!("invalid regex: {e}")))?;
        let target = &mut *self.ctx.target;
        let found = self.handle.block_on(async {
            target
                .console()
                .map_err(target_error)?
                .wait_for(&pattern, Some(timeout))
                .await
                .map_err(|e| HostError::new(e.to_string()))
        })?;
        Ok(Match {
            text: found.text,
            captures: found.captures,
        })
    }

    fn send_serial(&mut self, text: &str) -> Result<(), HostError> {
        let target = &mut *self.ctx.target;
        self.handle.block_on(async {
            target
                .console()
                .map_err(target_error)?
                .send(text.as_bytes())
                .await
                .map_err(|e| HostError::new(e.to_string()))
        })
    }

    fn qmp(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, HostError> {
        let target = &mut *self.ctx.target;
        self.handle
            .block_on(target.qmp(command, args))
            .map_err(target_error)
    }

    fn hmp(&mut self, command: &str) -> Result<String, HostError> {
        let target = &mut *self.ctx.target;
        self.handle
            .block_on(target.monitor(command))
            .map_err(target_error)
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
        let target = &mut *self.ctx.target;
        match self
            .handle
            .block_on(target.wait_exit(Some(timeout)))
            .map_err(target_error)?
        {
            crate::target::GuestExit::Code(code) => Ok(i64::from(code)),
            crate::target::GuestExit::Crashed(reason) => Err(HostError::new(reason)),
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
        std::thread::sleep(duration);
        Ok(())
    }

    fn sleep_guest(
        &mut self,
        duration: Duration,
        timeout: Duration,
    ) -> Result<Duration, HostError> {
        let limit = Instant::now() + timeout;
        let ctx = &mut *self.ctx;
        self.handle
            .block_on(guest_clock::sleep_guest(
                &mut *ctx.target,
                &ctx.board,
                duration,
                limit,
            ))
            .map_err(|e| HostError::new(e.to_string()))
    }
}
