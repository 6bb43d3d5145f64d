//! The bridge's backend for a real Cortex-M core behind a debug probe.
//!
//! It serves its own target description (M-profile core, system registers
//! and, when the core has one, the FPU), maps gdb's register numbers to the
//! core's DCRSR selectors, uses FPB comparators for both software and
//! hardware breakpoints (flash cannot take a `BKPT` patch) and answers the
//! firmware's semihosting calls while gdb waits, reporting an exit as
//! gdb's `W` stop. Watchpoints are not offered.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{BackendError, BreakKind, DebugBackend, StopReason};
use crate::backend::probe::semihost::{self, Call};
use crate::backend::probe::{CoreAccess, CoreState, HaltCause, ProbeError};

/// How often a running core is polled for a stop.
const POLL: Duration = Duration::from_millis(2);
/// gdb's signal numbers.
const SIGINT: u8 = 2;
const SIGTRAP: u8 = 5;
const SIGSEGV: u8 = 11;
/// DCRSR selector of CONTROL/FAULTMASK/BASEPRI/PRIMASK, one byte each.
const SPECIAL: u16 = 20;
/// DCRSR selectors of FPSCR and S0.
const FPSCR: u16 = 33;
const S0: u16 = 64;
/// Registers in the `g` packet: r0..r15 and xPSR.
const G_REGISTERS: u16 = 17;
/// The first FPU register number (d0), after the system registers.
const D0: usize = 23;

/// What a debug session tells the target it debugs.
pub trait DebugHost: Send + Sync {
    /// A session took (`true`) or released (`false`) the core.
    fn debugging(&self, attached: bool);
    /// The program exited through semihosting while a session held the core.
    fn exited(&self, code: i32);
    /// The semihosting command line (program name and arguments).
    fn command_line(&self) -> String;
}

/// A gdb session's view of a core behind a probe.
pub struct ProbeBackend<C: CoreAccess + ?Sized> {
    core: Arc<Mutex<Box<C>>>,
    host: Arc<dyn DebugHost>,
    fpu: bool,
    breakpoints: Vec<u64>,
    /// A stop that happened already (a finished single step).
    pending: Option<StopReason>,
}

fn refused(request: impl Into<String>) -> impl FnOnce(ProbeError) -> BackendError {
    let request = request.into();
    move |e| BackendError::Refused {
        request,
        reply: e.to_string(),
    }
}

impl<C: CoreAccess + ?Sized> ProbeBackend<C> {
    /// Takes the core for a session: halts it, as QEMU's gdbstub halts the
    /// guest when gdb connects.
    pub fn attach(
        core: Arc<Mutex<Box<C>>>,
        host: Arc<dyn DebugHost>,
    ) -> Result<Self, BackendError> {
        let fpu = {
            let mut guard = core.lock().unwrap_or_else(PoisonError::into_inner);
            guard.halt().map_err(refused("halt"))?;
            guard.has_fpu().map_err(refused("read the FPU"))?
        };
        host.debugging(true);
        Ok(Self {
            core,
            host,
            fpu,
            breakpoints: Vec::new(),
            pending: None,
        })
    }

    fn core(&self) -> MutexGuard<'_, Box<C>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The target description: registers numbered as this backend serves them.
    fn description(&self) -> String {
        let reg = |name: &str, bits: u32, kind: &str| {
            format!("<reg name=\"{name}\" bitsize=\"{bits}\" type=\"{kind}\"/>")
        };
        let mut xml = String::from(
            "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target>\
             <architecture>arm</architecture><feature name=\"org.gnu.gdb.arm.m-profile\">",
        );
        for n in 0..13 {
            xml.push_str(&reg(&format!("r{n}"), 32, "uint32"));
        }
        xml.push_str(&reg("sp", 32, "data_ptr"));
        xml.push_str(&reg("lr", 32, "int"));
        xml.push_str(&reg("pc", 32, "code_ptr"));
        xml.push_str(&reg("xpsr", 32, "int"));
        xml.push_str("</feature><feature name=\"org.gnu.gdb.arm.m-system\">");
        for name in ["msp", "psp"] {
            xml.push_str(&reg(name, 32, "data_ptr"));
        }
        for name in ["primask", "basepri", "faultmask", "control"] {
            xml.push_str(&reg(name, 32, "int"));
        }
        xml.push_str("</feature>");
        if self.fpu {
            xml.push_str("<feature name=\"org.gnu.gdb.arm.vfp\">");
            for n in 0..16 {
                xml.push_str(&reg(&format!("d{n}"), 64, "ieee_double"));
            }
            xml.push_str(&reg("fpscr", 32, "int"));
            xml.push_str("</feature>");
        }
        xml.push_str("</target>");
        xml
    }

    /// Why a halted core stopped, answering semihosting calls other than
    /// exit (the core then runs on, and `None` says so).
    fn halted(&mut self, cause: HaltCause) -> Result<Option<StopReason>, BackendError> {
        let signal = |signal: u8, breakpoint: Option<BreakKind>| StopReason::Signal {
            signal,
            watch: None,
            breakpoint,
        };
        Ok(Some(match cause {
            HaltCause::Breakpoint => {
                let cmdline = self.host.command_line();
                let mut core = self.core();
                match semihost::serve(&mut **core, &cmdline).map_err(refused("semihosting"))? {
                    Call::Exit(code) => {
                        drop(core);
                        self.host.exited(code);
                        StopReason::Exited(code as u8)
                    }
                    Call::Answered | Call::Unsupported(_) => {
                        core.run().map_err(refused("run"))?;
                        return Ok(None);
                    }
                    Call::NotSemihosting => {
                        let pc = u64::from(core.read_reg(15).map_err(refused("read pc"))?);
                        let hit = self.breakpoints.contains(&pc);
                        signal(SIGTRAP, hit.then_some(BreakKind::Hardware))
                    }
                }
            }
            HaltCause::Request => signal(SIGINT, None),
            HaltCause::Step | HaltCause::Exception | HaltCause::Other => signal(SIGTRAP, None),
        }))
    }

    /// Reads one gdb register by number.
    fn read_gdb_register(&mut self, regnum: usize) -> Result<Option<Vec<u8>>, ProbeError> {
        let mut core = self.core();
        Ok(Some(match regnum {
            0..=18 => core.read_reg(regnum as u16)?.to_le_bytes().to_vec(),
            19..=22 => {
                let byte = (core.read_reg(SPECIAL)? >> (8 * (regnum - 19))) & 0xff;
                byte.to_le_bytes().to_vec()
            }
            n if self.fpu && (D0..D0 + 16).contains(&n) => {
                let s = S0 + 2 * (n - D0) as u16;
                let mut bytes = core.read_reg(s)?.to_le_bytes().to_vec();
                bytes.extend(core.read_reg(s + 1)?.to_le_bytes());
                bytes
            }
            n if self.fpu && n == D0 + 16 => core.read_reg(FPSCR)?.to_le_bytes().to_vec(),
            _ => return Ok(None),
        }))
    }

    /// Writes one gdb register by number; `false` if there is none.
    fn write_gdb_register(&mut self, regnum: usize, bytes: &[u8]) -> Result<bool, ProbeError> {
        let word = |at: usize| {
            let mut w = [0u8; 4];
            for (dst, src) in w.iter_mut().zip(bytes.iter().skip(at)) {
                *dst = *src;
            }
            u32::from_le_bytes(w)
        };
        let mut core = self.core();
        match regnum {
            0..=18 => core.write_reg(regnum as u16, word(0))?,
            19..=22 => {
                let shift = 8 * (regnum - 19);
                let old = core.read_reg(SPECIAL)?;
                let new = (old & !(0xff << shift)) | ((word(0) & 0xff) << shift);
                core.write_reg(SPECIAL, new)?;
            }
            n if self.fpu && (D0..D0 + 16).contains(&n) => {
                let s = S0 + 2 * (n - D0) as u16;
                core.write_reg(s, word(0))?;
                core.write_reg(s + 1, word(4))?;
            }
            n if self.fpu && n == D0 + 16 => core.write_reg(FPSCR, word(0))?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl<C: CoreAccess + ?Sized> Drop for ProbeBackend<C> {
    fn drop(&mut self) {
        self.host.debugging(false);
    }
}

impl<C: CoreAccess + ?Sized> DebugBackend for ProbeBackend<C> {
    fn target_xml(&mut self, annex: &str) -> Result<Vec<u8>, BackendError> {
        match annex {
            "target.xml" => Ok(self.description().into_bytes()),
            other => Err(BackendError::Refused {
                request: format!("qXfer:features:read:{other}"),
                reply: "no such document".into(),
            }),
        }
    }

    fn read_registers(&mut self) -> Result<Vec<u8>, BackendError> {
        let mut core = self.core();
        let mut bytes = Vec::with_capacity(4 * usize::from(G_REGISTERS));
        for regsel in 0..G_REGISTERS {
            let value = core.read_reg(regsel).map_err(refused("g"))?;
            bytes.extend(value.to_le_bytes());
        }
        Ok(bytes)
    }

    fn write_registers(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        let mut core = self.core();
        for (regsel, chunk) in (0..G_REGISTERS).zip(bytes.chunks_exact(4)) {
            let value = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            core.write_reg(regsel, value).map_err(refused("G"))?;
        }
        Ok(())
    }

    fn read_register(&mut self, regnum: usize) -> Result<Option<Vec<u8>>, BackendError> {
        self.read_gdb_register(regnum)
            .map_err(refused(format!("p{regnum:x}")))
    }

    fn write_register(&mut self, regnum: usize, bytes: &[u8]) -> Result<(), BackendError> {
        match self.write_gdb_register(regnum, bytes) {
            Ok(true) => Ok(()),
            Ok(false) => Err(BackendError::Refused {
                request: format!("P{regnum:x}"),
                reply: "no such register".into(),
            }),
            Err(e) => Err(refused(format!("P{regnum:x}"))(e)),
        }
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, BackendError> {
        self.core()
            .read_memory(addr, buf)
            .map_err(refused(format!("m{addr:x},{:x}", buf.len())))?;
        Ok(buf.len())
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), BackendError> {
        self.core()
            .write_memory(addr, data)
            .map_err(refused(format!("M{addr:x},{:x}", data.len())))
    }

    fn insert_break(
        &mut self,
        kind: BreakKind,
        addr: u64,
        _len: u64,
    ) -> Result<bool, BackendError> {
        if !matches!(kind, BreakKind::Software | BreakKind::Hardware) {
            return Ok(false);
        }
        if !self.breakpoints.contains(&addr) {
            self.core()
                .set_breakpoint(addr)
                .map_err(refused(format!("Z1,{addr:x}")))?;
            self.breakpoints.push(addr);
        }
        Ok(true)
    }

    fn remove_break(
        &mut self,
        kind: BreakKind,
        addr: u64,
        _len: u64,
    ) -> Result<bool, BackendError> {
        if !matches!(kind, BreakKind::Software | BreakKind::Hardware) {
            return Ok(false);
        }
        if let Some(i) = self.breakpoints.iter().position(|a| *a == addr) {
            self.core()
                .clear_breakpoint(addr)
                .map_err(refused(format!("z1,{addr:x}")))?;
            self.breakpoints.swap_remove(i);
        }
        Ok(true)
    }

    fn resume(&mut self, step: bool) -> Result<(), BackendError> {
        self.pending = None;
        if step {
            self.core().step().map_err(refused("s"))?;
            self.pending = Some(StopReason::Signal {
                signal: SIGTRAP,
                watch: None,
                breakpoint: None,
            });
            Ok(())
        } else {
            self.core().run().map_err(refused("c"))
        }
    }

    fn wait_stop(&mut self, timeout: Duration) -> Result<Option<StopReason>, BackendError> {
        if let Some(stop) = self.pending.take() {
            return Ok(Some(stop));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.core().state().map_err(refused("status"))?;
            match state {
                CoreState::Halted(cause) => {
                    if let Some(stop) = self.halted(cause)? {
                        return Ok(Some(stop));
                    }
                }
                CoreState::LockedUp => {
                    return Ok(Some(StopReason::Signal {
                        signal: SIGSEGV,
                        watch: None,
                        breakpoint: None,
                    }));
                }
                CoreState::Running => {}
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    fn interrupt(&mut self) -> Result<(), BackendError> {
        self.core().halt().map_err(refused("interrupt"))
    }

    fn halt_reason(&mut self) -> Result<StopReason, BackendError> {
        Ok(StopReason::Signal {
            signal: SIGTRAP,
            watch: None,
            breakpoint: None,
        })
    }

    fn detach(&mut self) -> Result<(), BackendError> {
        let mut core = self.core();
        if matches!(core.state(), Ok(CoreState::Halted(_))) {
            core.run().map_err(refused("D"))?;
        }
        Ok(())
    }
}
