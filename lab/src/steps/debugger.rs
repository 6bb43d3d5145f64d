//! The lab's debugger, shared by the debugger steps: its own GDB client,
//! attached to the target through the target's GDB bridge, so scenario
//! steps exercise exactly the endpoint a user's gdb gets.
//!
//! The client is synchronous; each operation runs it on a blocking thread
//! and the run's deadline still bounds the step.

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Detail;
use super::failure::StepFailure;
use crate::backend::Target;
use crate::elf::{CodeLocation as ElfLocation, ElfInfo};
use crate::fault::{self, CaughtFault};
use crate::gdb::bridge::BridgeServer;
use crate::gdb::{BreakKind, GdbClient, GdbError, StopReason};
use crate::loader::{CodeLocation, DataLocation};
use crate::report::Status;

/// Default wait for a debugger request when the step gives no timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// GDB's signal number for a breakpoint or a finished step.
const SIGTRAP: u8 = 5;

/// A debugger attached to one target for the rest of a run.
pub(crate) struct Debugger {
    bridge: BridgeServer,
    client: Option<GdbClient<TcpStream>>,
    /// Breakpoints this debugger inserted, to step over when resuming.
    breakpoints: Arc<Vec<(BreakKind, u64)>>,
    elf: Option<Arc<ElfInfo>>,
    elf_path: Option<PathBuf>,
}

impl Debugger {
    /// Starts the target's bridge on a free 127.0.0.1 port.
    pub(crate) async fn start(
        target: &mut dyn Target,
        elf_path: Option<PathBuf>,
    ) -> Result<Self, StepFailure> {
        let factory = target.debug_connector().await.map_err(StepFailure::from)?;
        let bridge = BridgeServer::start(0, factory).map_err(|e| {
            StepFailure::new(Status::Error, format!("cannot start the GDB bridge: {e}"))
        })?;
        Ok(Debugger {
            bridge,
            client: None,
            breakpoints: Arc::new(Vec::new()),
            elf: None,
            elf_path,
        })
    }

    /// Connects the lab's client through the bridge; returns the latency in ms.
    pub(crate) async fn attach(&mut self, timeout: Option<Duration>) -> Result<f64, StepFailure> {
        if self.client.is_some() {
            return Err(StepFailure::new(
                Status::Error,
                "the debugger is already attached: add a `detach` step first",
            ));
        }
        let addr = self.bridge.local_addr();
        let timeout = timeout.unwrap_or(REQUEST_TIMEOUT);
        let started = Instant::now();
        let client = blocking(move || {
            let stream = TcpStream::connect_timeout(&addr, timeout)
                .map_err(|e| GdbError::Gone(format!("cannot reach the bridge at {addr}: {e}")))?;
            let mut client = GdbClient::new(stream)?;
            client.set_timeout(timeout);
            client.halt_reason()?;
            Ok(client)
        })
        .await?;
        self.client = Some(client);
        Ok(started.elapsed().as_secs_f64() * 1e3)
    }

    /// Lets the target run on and disconnects the client.
    pub(crate) async fn detach(&mut self) -> Result<(), StepFailure> {
        let mut client = self.take_client()?;
        blocking(move || client.detach()).await
    }

    /// Inserts a breakpoint of `kind` at `address`; returns the insertion's
    /// round trip through the bridge in ms.
    pub(crate) async fn insert_break(
        &mut self,
        kind: BreakKind,
        address: u64,
    ) -> Result<f64, StepFailure> {
        let started = Instant::now();
        let inserted = self
            .with_client(move |c| c.insert_break(kind, address, 2))
            .await?;
        let round_trip = started.elapsed().as_secs_f64() * 1e3;
        if !inserted {
            return Err(StepFailure::new(
                Status::Error,
                format!("the target does not support {kind:?} breakpoints"),
            ));
        }
        Arc::make_mut(&mut self.breakpoints).push((kind, address));
        Ok(round_trip)
    }

    /// Resumes until the target stops or exits, waiting at most `wait`;
    /// returns why it stopped and, when it still runs, where.
    pub(crate) async fn resume(&mut self, wait: Duration) -> Result<Stopped, StepFailure> {
        let breakpoints = Arc::clone(&self.breakpoints);
        self.with_client(move |c| {
            if let Some(ended @ (StopReason::Exited(_) | StopReason::Terminated(_))) =
                step_over_breakpoint(c, &breakpoints)?
            {
                return Ok(Stopped {
                    reason: ended,
                    pc: None,
                });
            }
            c.resume(false)?;
            let reason = c.wait_stop(wait)?.ok_or_else(|| GdbError::Timeout {
                request: "continue".into(),
                after: wait,
            })?;
            stopped(c, reason)
        })
        .await
    }

    /// Executes `count` single instructions; returns where it stopped.
    pub(crate) async fn step(&mut self, count: u32) -> Result<Stopped, StepFailure> {
        let breakpoints = Arc::clone(&self.breakpoints);
        self.with_client(move |c| {
            let mut reason = None;
            for _ in 0..count {
                let r = match step_over_breakpoint(c, &breakpoints)? {
                    Some(exit) => exit,
                    None => c.step()?,
                };
                let done = !matches!(r, StopReason::Signal { .. });
                reason = Some(r);
                if done {
                    break;
                }
            }
            let reason = reason.unwrap_or(StopReason::Signal {
                signal: SIGTRAP,
                watch: None,
                breakpoint: None,
            });
            stopped(c, reason)
        })
        .await
    }

    /// Runs backwards to the last breakpoint or watchpoint hit before
    /// here, or to the start of the recording, waiting at most `wait`;
    /// only a replayed recording runs backwards.
    pub(crate) async fn reverse_continue(
        &mut self,
        wait: Duration,
    ) -> Result<Stopped, StepFailure> {
        self.with_client(move |c| {
            c.reverse(false)?;
            let reason = c.wait_stop(wait)?.ok_or_else(|| GdbError::Timeout {
                request: "reverse-continue".into(),
                after: wait,
            })?;
            stopped(c, reason)
        })
        .await
    }

    /// Executes `count` instructions backwards; returns where it stopped.
    pub(crate) async fn reverse_step(&mut self, count: u32) -> Result<Stopped, StepFailure> {
        self.with_client(move |c| {
            let mut reason = StopReason::Signal {
                signal: SIGTRAP,
                watch: None,
                breakpoint: None,
            };
            for _ in 0..count {
                reason = c.reverse_step()?;
            }
            stopped(c, reason)
        })
        .await
    }

    /// Reads `length` bytes at `address`.
    pub(crate) async fn read_bytes(
        &mut self,
        address: u64,
        length: usize,
    ) -> Result<Vec<u8>, StepFailure> {
        self.with_client(move |c| c.read_memory_vec(address, length))
            .await
    }

    /// Writes `bytes` at `address`.
    pub(crate) async fn write_bytes(
        &mut self,
        address: u64,
        bytes: Vec<u8>,
    ) -> Result<(), StepFailure> {
        self.with_client(move |c| c.write_memory(address, &bytes))
            .await
    }

    /// Reads a register by name.
    pub(crate) async fn read_register(&mut self, name: &str) -> Result<u64, StepFailure> {
        let name = name.to_owned();
        self.with_client(move |c| c.read_register_by_name(&name))
            .await
    }

    /// Runs until the HardFault handler is entered and reads the fault:
    /// the status registers and the PC stacked by the exception entry.
    pub(crate) async fn catch_hardfault(
        &mut self,
        wait: Duration,
    ) -> Result<Option<CaughtFault>, StepFailure> {
        let mut breakpoints = (*self.breakpoints).clone();
        self.with_client(move |c| {
            let handler = fault::hardfault_handler(c)?;
            if !c.insert_break(BreakKind::Software, handler, 2)? {
                return Err(GdbError::Unsupported("Z0".into()));
            }
            breakpoints.push((BreakKind::Software, handler));
            let stop = match step_over_breakpoint(c, &breakpoints)? {
                Some(ended @ (StopReason::Exited(_) | StopReason::Terminated(_))) => ended,
                _ => {
                    c.resume(false)?;
                    c.wait_stop(wait)?.ok_or_else(|| GdbError::Timeout {
                        request: "continue".into(),
                        after: wait,
                    })?
                }
            };
            c.remove_break(BreakKind::Software, handler, 2)?;
            if !matches!(stop, StopReason::Signal { .. })
                || c.read_register_by_name("pc")? != handler
            {
                return Ok(None);
            }
            fault::read_caught(c).map(Some)
        })
        .await
    }

    /// The image's symbols.
    pub(crate) fn elf(&mut self) -> Result<Arc<ElfInfo>, StepFailure> {
        if let Some(elf) = &self.elf {
            return Ok(Arc::clone(elf));
        }
        let path = self.elf_path.as_ref().ok_or_else(|| {
            StepFailure::new(
                Status::Error,
                "symbols need an ELF image; this target boots a kernel without one",
            )
        })?;
        let elf = Arc::new(ElfInfo::load(path).map_err(elf_failure)?);
        self.elf = Some(Arc::clone(&elf));
        Ok(elf)
    }

    fn take_client(&mut self) -> Result<GdbClient<TcpStream>, StepFailure> {
        self.client.take().ok_or_else(|| {
            StepFailure::new(
                Status::Error,
                "the debugger is not attached: add an `attach-debugger` step first",
            )
        })
    }

    /// Runs `f` with the client on a blocking thread.
    pub(crate) async fn with_client<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut GdbClient<TcpStream>) -> Result<T, GdbError> + Send + 'static,
    ) -> Result<T, StepFailure> {
        let mut client = self.take_client()?;
        let (client, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut client);
            (client, result)
        })
        .await
        .map_err(|e| StepFailure::new(Status::Error, format!("the debugger thread failed: {e}")))?;
        self.client = Some(client);
        result.map_err(gdb_failure)
    }
}

/// Why and where the target stopped.
pub(crate) struct Stopped {
    /// Why it stopped.
    pub(crate) reason: StopReason,
    /// The program counter, when the target still runs.
    pub(crate) pc: Option<u64>,
}

impl Stopped {
    /// The stop as a step's detail: the reason, and where in the image.
    pub(crate) fn detail(&self, elf: &ElfInfo) -> Detail {
        stop_detail(elf, &self.reason, self.pc)
    }
}

/// A stop with the program counter, read when the target still runs.
fn stopped(c: &mut GdbClient<TcpStream>, reason: StopReason) -> Result<Stopped, GdbError> {
    let pc = match reason {
        StopReason::Signal { .. } => Some(c.read_register_by_name("pc")?),
        _ => None,
    };
    Ok(Stopped { reason, pc })
}

/// When the target sits on one of our breakpoints, steps one instruction
/// with that breakpoint lifted, as gdb does: QEMU would otherwise report the
/// same breakpoint again at once. Returns the step's stop, or `None` when
/// the target is not on a breakpoint and nothing ran.
fn step_over_breakpoint(
    c: &mut GdbClient<TcpStream>,
    breakpoints: &[(BreakKind, u64)],
) -> Result<Option<StopReason>, GdbError> {
    let pc = c.read_register_by_name("pc")?;
    let here: Vec<_> = breakpoints
        .iter()
        .filter(|(kind, addr)| {
            *addr == pc && matches!(kind, BreakKind::Software | BreakKind::Hardware)
        })
        .collect();
    if here.is_empty() {
        return Ok(None);
    }
    for (kind, addr) in &here {
        c.remove_break(*kind, *addr, 2)?;
    }
    let stop = c.step()?;
    for (kind, addr) in &here {
        c.insert_break(*kind, *addr, 2)?;
    }
    Ok(Some(stop))
}

/// Runs a blocking debugger operation off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GdbError> + Send + 'static,
) -> Result<T, StepFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StepFailure::new(Status::Error, format!("the debugger thread failed: {e}")))?
        .map_err(gdb_failure)
}

fn gdb_failure(e: GdbError) -> StepFailure {
    let status = match e {
        GdbError::Timeout { .. } => Status::Timeout,
        _ => Status::Error,
    };
    StepFailure::new(status, e.to_string())
}

/// Loads the run's ELF for `step`, or says that the step needs one.
pub(crate) fn load_elf(path: Option<&std::path::Path>, step: &str) -> Result<ElfInfo, StepFailure> {
    let path = path
        .ok_or_else(|| StepFailure::new(Status::Error, format!("`{step}` needs an ELF image")))?;
    ElfInfo::load(path).map_err(elf_failure)
}

/// An ELF error as a step failure.
pub(crate) fn elf_failure(e: crate::elf::ElfError) -> StepFailure {
    StepFailure::new(Status::Error, e.to_string())
}

/// The address of a code location.
pub(crate) fn resolve_code(elf: &ElfInfo, at: &CodeLocation) -> Result<u64, StepFailure> {
    match at {
        CodeLocation::Address(a) => Ok(*a),
        CodeLocation::Symbol(name) => elf
            .require_symbol(name)
            .map(|s| s.address)
            .map_err(elf_failure),
        CodeLocation::Line { file, line } => elf.line_address(file, *line).map_err(elf_failure),
    }
}

/// The address of a data location.
pub(crate) fn resolve_data(elf: &ElfInfo, at: &DataLocation) -> Result<u64, StepFailure> {
    match at {
        DataLocation::Address(a) => Ok(*a),
        DataLocation::Symbol(name) => elf
            .require_symbol(name)
            .map(|s| s.address)
            .map_err(elf_failure),
    }
}

pub(crate) fn stop_detail(elf: &ElfInfo, reason: &StopReason, pc: Option<u64>) -> Detail {
    let mut detail = Detail::new();
    match reason {
        StopReason::Signal {
            signal,
            watch,
            breakpoint,
        } => {
            let why = match (watch, breakpoint, *signal) {
                (Some((kind, addr)), _, _) => {
                    detail.insert("watch_address".into(), json!(addr));
                    format!("{kind:?} watchpoint").to_lowercase()
                }
                (None, Some(_), _) | (None, None, SIGTRAP) => "breakpoint".to_owned(),
                (None, None, 2) => "interrupt".to_owned(),
                (None, None, n) => format!("signal {n}"),
            };
            detail.insert("reason".into(), json!(why));
        }
        StopReason::Exited(code) => {
            detail.insert("reason".into(), json!("exited"));
            detail.insert("code".into(), json!(code));
        }
        StopReason::Terminated(signal) => {
            detail.insert("reason".into(), json!("terminated"));
            detail.insert("signal".into(), json!(signal));
        }
    }
    if let Some(pc) = pc {
        detail.insert("pc".into(), json!(pc));
        insert_location(&mut detail, elf.symbolize(pc));
    }
    detail
}

/// Adds a symbolized location's function, file and line to `detail`.
pub(crate) fn insert_location(detail: &mut Detail, loc: Option<ElfLocation>) {
    if let Some(loc) = loc {
        detail.insert("location".into(), json!(loc.to_string()));
        if let Some(f) = loc.function {
            detail.insert("function".into(), json!(f));
        }
        if let (Some(file), Some(line)) = (loc.file, loc.line) {
            detail.insert("file".into(), json!(file));
            detail.insert("line".into(), json!(line));
        }
    }
}
