//! The gdbstub [`Target`] over a [`DebugBackend`]: every request is
//! forwarded; the bridge only keeps what it needs to leave the target clean
//! when a session ends (the breakpoints it set, whether the target runs).

use std::cell::RefCell;
use std::time::Duration;

use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::reverse_exec::{
    ReverseCont, ReverseContOps, ReverseStep, ReverseStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};

use super::arch::{OpaqueArch, RawRegisters, RegNum};
use crate::gdb::{BackendError, BreakKind, DebugBackend, StopReason};

/// gdb's errno for a refused request (EFAULT, as QEMU answers).
const EFAULT: u8 = 0x0e;
/// gdb's signal number for a trap (a breakpoint, a step).
const SIGTRAP: u8 = 5;
/// How long session cleanup waits for a running target to stop.
const CLEANUP_STOP_WAIT: Duration = Duration::from_secs(1);

/// How a session ended, as far as the target is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// gdb detached (`D`): the target runs on.
    Detach,
    /// gdb killed (`k`): the target stays halted.
    Kill,
    /// The target exited; nothing to clean up.
    Exited,
    /// gdb went away or the session failed: the target is left as it was.
    Lost,
}

/// One session's view of the backend.
pub(crate) struct BridgeTarget {
    /// A `RefCell` only because gdbstub reads the target XML through `&self`.
    backend: RefCell<Box<dyn DebugBackend>>,
    /// Target description documents fetched this session, by annex.
    xml: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Breakpoints and watchpoints gdb set and has not removed.
    breaks: Vec<(BreakKind, u64, u64)>,
    /// Whether the target was resumed and has not reported a stop yet.
    running: bool,
}

impl BridgeTarget {
    /// Wraps a freshly connected backend.
    pub(crate) fn new(backend: Box<dyn DebugBackend>) -> Self {
        Self {
            backend: RefCell::new(backend),
            xml: RefCell::new(Vec::new()),
            breaks: Vec::new(),
            running: false,
        }
    }

    fn backend(&mut self) -> &mut dyn DebugBackend {
        self.backend.get_mut().as_mut()
    }

    /// Waits up to `timeout` for a stop of the running target.
    pub(crate) fn wait_stop(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<SingleThreadStopReason<u64>>, BackendError> {
        let stop = match self.backend().wait_stop(timeout) {
            // A reverse request refused at once (QEMU's `E14`: no way back
            // from here) leaves the target where it was: gdb sees it stop.
            Err(BackendError::Refused { request, reply }) if request.starts_with('b') => {
                tracing::info!("gdb bridge: `{request}` refused with {reply}");
                Some(StopReason::Signal {
                    signal: SIGTRAP,
                    watch: None,
                    breakpoint: None,
                })
            }
            other => other?,
        };
        if stop.is_some() {
            self.running = false;
        }
        Ok(stop.map(stop_reason))
    }

    /// Forwards gdb's Ctrl-C to a running target; the stop follows through
    /// [`Self::wait_stop`].
    pub(crate) fn interrupt(&mut self) -> Result<(), BackendError> {
        if self.running {
            self.backend().interrupt()?;
        }
        Ok(())
    }

    /// Leaves the target clean for the next session: removes what this
    /// session inserted, then detaches (target runs) or just lets go (target
    /// stays halted). Best effort: a failing backend is only logged.
    pub(crate) fn finish(mut self, end: SessionEnd) {
        if end == SessionEnd::Exited {
            return;
        }
        let was_running = self.running;
        if let Err(e) = self.cleanup(end, was_running) {
            tracing::warn!("gdb bridge: cleaning up after the session failed: {e}");
        }
    }

    fn cleanup(&mut self, end: SessionEnd, was_running: bool) -> Result<(), BackendError> {
        if was_running {
            self.backend().interrupt()?;
            self.backend().wait_stop(CLEANUP_STOP_WAIT)?;
        }
        for (kind, addr, len) in std::mem::take(&mut self.breaks) {
            self.backend().remove_break(kind, addr, len)?;
        }
        let run_on = match end {
            SessionEnd::Detach => true,
            SessionEnd::Lost => was_running,
            SessionEnd::Kill | SessionEnd::Exited => false,
        };
        if run_on {
            self.backend().detach()?;
        }
        Ok(())
    }

    fn insert(&mut self, kind: BreakKind, addr: u64, len: u64) -> TargetResult<bool, Self> {
        let done = self
            .backend()
            .insert_break(kind, addr, len)
            .map_err(target_error)?;
        if done {
            self.breaks.push((kind, addr, len));
        }
        Ok(done)
    }

    fn remove(&mut self, kind: BreakKind, addr: u64, len: u64) -> TargetResult<bool, Self> {
        let done = self
            .backend()
            .remove_break(kind, addr, len)
            .map_err(target_error)?;
        if let Some(i) = self.breaks.iter().position(|b| *b == (kind, addr, len)) {
            self.breaks.swap_remove(i);
        }
        Ok(done)
    }

    fn resume_backend(&mut self, step: bool) -> Result<(), BackendError> {
        self.backend().resume(step)?;
        self.running = true;
        Ok(())
    }

    fn reverse_backend(&mut self, step: bool) -> Result<(), BackendError> {
        self.backend().reverse(step)?;
        self.running = true;
        Ok(())
    }
}

/// A lost connection or a timeout ends the session; a refusal is gdb's `Exx`.
fn target_error(e: BackendError) -> TargetError<BackendError> {
    match e {
        BackendError::Refused { .. } | BackendError::Unsupported(_) => {
            tracing::debug!("gdb bridge: {e}");
            TargetError::Errno(EFAULT)
        }
        BackendError::Connection(_) | BackendError::Timeout { .. } => TargetError::Fatal(e),
    }
}

fn watch_kind(kind: WatchKind) -> BreakKind {
    match kind {
        WatchKind::Write => BreakKind::WriteWatch,
        WatchKind::Read => BreakKind::ReadWatch,
        WatchKind::ReadWrite => BreakKind::AccessWatch,
    }
}

/// The backend's stop in gdbstub's terms.
fn stop_reason(stop: StopReason) -> SingleThreadStopReason<u64> {
    match stop {
        StopReason::Exited(code) => SingleThreadStopReason::Exited(code),
        StopReason::Terminated(sig) => SingleThreadStopReason::Terminated(Signal(sig)),
        StopReason::Signal {
            watch: Some((kind, addr)),
            ..
        } => SingleThreadStopReason::Watch {
            tid: (),
            kind: match kind {
                BreakKind::ReadWatch => WatchKind::Read,
                BreakKind::AccessWatch => WatchKind::ReadWrite,
                _ => WatchKind::Write,
            },
            addr,
        },
        StopReason::Signal {
            breakpoint: Some(BreakKind::Software),
            ..
        } => SingleThreadStopReason::SwBreak(()),
        StopReason::Signal {
            breakpoint: Some(BreakKind::Hardware),
            ..
        } => SingleThreadStopReason::HwBreak(()),
        StopReason::Signal { signal, .. } => SingleThreadStopReason::Signal(Signal(signal)),
    }
}

impl Target for BridgeTarget {
    type Arch = OpaqueArch;
    type Error = BackendError;

    /// Run-length encoding costs a branch per byte of every reply and saves
    /// nothing that matters on a local socket.
    fn use_rle(&self) -> bool {
        false
    }

    fn base_ops(&mut self) -> BaseOps<'_, OpaqueArch, BackendError> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for BridgeTarget {
    fn read_registers(&mut self, regs: &mut RawRegisters) -> TargetResult<(), Self> {
        regs.0 = self.backend().read_registers().map_err(target_error)?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &RawRegisters) -> TargetResult<(), Self> {
        self.backend()
            .write_registers(&regs.0)
            .map_err(target_error)
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start_addr: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        self.backend()
            .read_memory(start_addr, data)
            .map_err(target_error)
    }

    fn write_addrs(&mut self, start_addr: u64, data: &[u8]) -> TargetResult<(), Self> {
        self.backend()
            .write_memory(start_addr, data)
            .map_err(target_error)
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<()> for BridgeTarget {
    fn read_register(
        &mut self,
        _tid: (),
        reg: RegNum,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let value = self
            .backend()
            .read_register(reg.0)
            .map_err(target_error)?
            .ok_or(TargetError::Errno(EFAULT))?;
        let dst = buf
            .get_mut(..value.len())
            .ok_or(TargetError::Errno(EFAULT))?;
        dst.copy_from_slice(&value);
        Ok(value.len())
    }

    fn write_register(&mut self, _tid: (), reg: RegNum, val: &[u8]) -> TargetResult<(), Self> {
        self.backend()
            .write_register(reg.0, val)
            .map_err(target_error)
    }
}

impl SingleThreadResume for BridgeTarget {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), BackendError> {
        self.resume_backend(false)
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, (), Self>> {
        if self.backend().supports_reverse() {
            Some(self)
        } else {
            None
        }
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, (), Self>> {
        if self.backend().supports_reverse() {
            Some(self)
        } else {
            None
        }
    }
}

impl ReverseStep<()> for BridgeTarget {
    fn reverse_step(&mut self, _tid: ()) -> Result<(), BackendError> {
        self.reverse_backend(true)
    }
}

impl ReverseCont<()> for BridgeTarget {
    fn reverse_cont(&mut self) -> Result<(), BackendError> {
        self.reverse_backend(false)
    }
}

impl SingleThreadSingleStep for BridgeTarget {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), BackendError> {
        self.resume_backend(true)
    }
}

impl Breakpoints for BridgeTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for BridgeTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        self.insert(BreakKind::Software, addr, kind as u64)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        self.remove(BreakKind::Software, addr, kind as u64)
    }
}

impl HwBreakpoint for BridgeTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        self.insert(BreakKind::Hardware, addr, kind as u64)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, kind: usize) -> TargetResult<bool, Self> {
        self.remove(BreakKind::Hardware, addr, kind as u64)
    }
}

impl HwWatchpoint for BridgeTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.insert(watch_kind(kind), addr, len)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        self.remove(watch_kind(kind), addr, len)
    }
}

impl TargetDescriptionXmlOverride for BridgeTarget {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let mut cache = self.xml.borrow_mut();
        let doc = match cache.iter().position(|(name, _)| name == annex) {
            Some(i) => &cache[i].1,
            None => {
                let name = std::str::from_utf8(annex).map_err(|_| TargetError::Errno(EFAULT))?;
                let doc = self
                    .backend
                    .borrow_mut()
                    .target_xml(name)
                    .map_err(target_error)?;
                cache.push((annex.to_vec(), doc));
                &cache[cache.len() - 1].1
            }
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(doc.len());
        let end = start.saturating_add(length.min(buf.len())).min(doc.len());
        let n = end - start;
        buf[..n].copy_from_slice(&doc[start..end]);
        Ok(n)
    }
}
