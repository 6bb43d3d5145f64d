//! A HardFault vector catch on QEMU, through its own gdbstub.
//!
//! QEMU's gdbstub has no vector catch of its own, so the catch is a
//! breakpoint on the entry of the firmware's HardFault handler, found through
//! VTOR and the vector table, not by a symbol name: any firmware's handler is
//! caught, whatever it does next (prints, resets, exits through semihosting).
//! The catch is armed while QEMU is still paused before the first
//! instruction, so no fault can outrun it.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fault::{self, CaughtFault};
use crate::gdb::{BreakKind, GdbClient, GdbError, StopReason};

/// What a wait on the catch saw.
#[derive(Debug)]
pub(super) enum Watch {
    /// The core entered the HardFault handler; it runs on, and the catch is spent.
    Caught(CaughtFault),
    /// No fault yet; the catch stays armed.
    Running,
    /// The machine ended (or its gdbstub went away) without a fault.
    Ended,
}

/// A breakpoint on the HardFault handler, held through QEMU's gdbstub.
pub(super) struct FaultCatch {
    core: GdbClient<UnixStream>,
    handler: u64,
}

impl FaultCatch {
    /// Connects to the gdbstub at `socket` of a QEMU paused before its
    /// first instruction and arms the catch. With `run` the machine is then
    /// resumed through the stub; otherwise it stays paused for its owner.
    pub(super) fn arm(socket: &Path, run: bool, timeout: Duration) -> Result<Self, GdbError> {
        let mut core = GdbClient::connect_unix(socket, timeout)?;
        core.halt_reason()?;
        let handler = fault::hardfault_handler(&mut core)?;
        if !core.insert_break(BreakKind::Hardware, handler, 2)? {
            return Err(GdbError::Unsupported("Z1 (hardware breakpoint)".into()));
        }
        if run {
            core.resume(false)?;
        }
        Ok(FaultCatch { core, handler })
    }

    /// Waits up to `wait` for the core to enter the HardFault handler. A
    /// stop elsewhere (a QMP `stop` from a script) is someone else's: the
    /// wait goes on, and the machine resumes when its owner says so.
    pub(super) fn wait(&mut self, wait: Duration) -> Result<Watch, GdbError> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let stop = match self.core.wait_next_stop(left) {
                Ok(Some(stop)) => stop,
                Ok(None) => return Ok(Watch::Running),
                Err(GdbError::Connection(_) | GdbError::Gone(_)) => return Ok(Watch::Ended),
                Err(e) => return Err(e),
            };
            match stop {
                StopReason::Signal { .. } => {
                    if self.core.read_register_by_name("pc")? == self.handler {
                        let caught = fault::read_caught(&mut self.core)?;
                        // Let the firmware's own handler run: disarm, detach.
                        self.core
                            .remove_break(BreakKind::Hardware, self.handler, 2)?;
                        self.core.detach()?;
                        return Ok(Watch::Caught(caught));
                    }
                    if left.is_zero() {
                        return Ok(Watch::Running);
                    }
                }
                StopReason::Exited(_) | StopReason::Terminated(_) => return Ok(Watch::Ended),
            }
        }
    }
}
