//! Debug probes and the real boards behind them: the seams that the
//! hardware target and the GDB bridge's probe backend are written against.
//!
//! [`ProbeLister`] finds probes and opens sessions; [`ProbeSession`] flashes
//! a board and reads its RTT console; [`CoreAccess`] halts, runs and reads a
//! Cortex-M core. probe-rs implements them (the `hardware` feature); tests
//! implement them with fakes, since no probe is attached where they run.

#[cfg(feature = "hardware")]
mod probe_rs;
pub mod semihost;

#[cfg(feature = "hardware")]
pub use probe_rs::{ProbeRsLister, ProbeRsSession};

use std::path::Path;
use std::sync::Arc;

use crate::board::BoardProfile;

/// Errors of a debug probe or the board behind it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No attached probe answered for the board's chip.
    #[error(
        "no debug probe answered for chip `{chip}` of board `{board}` (looked for {looked_for}; attached probes: {})",
        if attached.is_empty() { "none".to_owned() } else { attached.join(", ") }
    )]
    NotFound {
        /// The board.
        board: String,
        /// The probe-rs chip name.
        chip: String,
        /// What was looked for: any probe, or a serial number.
        looked_for: String,
        /// The probes that were found, as `identifier (serial)`.
        attached: Vec<String>,
    },
    /// The lab was built without the `hardware` feature.
    #[error("this lab was built without hardware support (cargo feature `hardware`)")]
    Unsupported,
    /// The probe or the core refused an operation.
    #[error("{operation}: {message}")]
    Failed {
        /// What was being done (`flash`, `halt`, `read 0x20000000`).
        operation: String,
        /// probe-rs's message.
        message: String,
    },
    /// A serial console could not be used.
    #[error("serial port {port}: {message}")]
    Serial {
        /// The host's serial port.
        port: String,
        /// What went wrong.
        message: String,
    },
    /// The core did not halt in time.
    #[error("the core did not halt within {0:?}")]
    HaltTimeout(std::time::Duration),
}

impl ProbeError {
    /// A failure of `operation` with `message`.
    pub fn failed(operation: impl Into<String>, message: impl ToString) -> Self {
        ProbeError::Failed {
            operation: operation.into(),
            message: message.to_string(),
        }
    }
}

/// One attached debug probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// The probe's name (`STLink V3`, `J-Link`).
    pub identifier: String,
    /// Its USB serial number, when it has one.
    pub serial: Option<String>,
    /// `VID:PID[:SERIAL]`, which opens exactly this probe.
    pub selector: String,
}

impl ProbeInfo {
    /// `identifier (serial)` for messages.
    pub fn describe(&self) -> String {
        match &self.serial {
            Some(serial) => format!("{} ({serial})", self.identifier),
            None => self.identifier.clone(),
        }
    }
}

/// Progress of a flash download, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashEvent {
    /// Erasing and programming begins; `total` bytes will be programmed.
    Started {
        /// Bytes to program.
        total: u64,
    },
    /// `bytes` more were programmed.
    Programmed {
        /// Bytes in this chunk.
        bytes: u64,
    },
    /// The download finished.
    Finished,
}

/// Why a halted core stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltCause {
    /// A breakpoint or a `BKPT` instruction (semihosting calls are these).
    Breakpoint,
    /// A single step finished.
    Step,
    /// The debugger asked it to halt.
    Request,
    /// A vector catch or an exception.
    Exception,
    /// Something else, or more than one reason.
    Other,
}

/// What a core is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreState {
    /// Running (or sleeping in WFI).
    Running,
    /// Halted in debug state.
    Halted(HaltCause),
    /// Locked up (a fault it could not escalate).
    LockedUp,
}

/// Debug access to one Cortex-M core. Registers are named by their ARMv7-M
/// DCRSR selector: 0-15 R0..PC, 16 xPSR, 17 MSP, 18 PSP, 20
/// CONTROL/FAULTMASK/BASEPRI/PRIMASK, 33 FPSCR, 64-95 S0..S31.
pub trait CoreAccess: Send {
    /// Reads a core register.
    fn read_reg(&mut self, regsel: u16) -> Result<u32, ProbeError>;
    /// Writes a core register (the core must be halted).
    fn write_reg(&mut self, regsel: u16, value: u32) -> Result<(), ProbeError>;
    /// Reads memory into `buf`.
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), ProbeError>;
    /// Writes memory.
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), ProbeError>;
    /// Halts the core and waits until it is halted.
    fn halt(&mut self) -> Result<(), ProbeError>;
    /// Lets a halted core run.
    fn run(&mut self) -> Result<(), ProbeError>;
    /// Executes one instruction of a halted core.
    fn step(&mut self) -> Result<(), ProbeError>;
    /// What the core is doing now.
    fn state(&mut self) -> Result<CoreState, ProbeError>;
    /// Resets the core; `halt` stops it at the reset vector.
    fn reset(&mut self, halt: bool) -> Result<(), ProbeError>;
    /// Sets a hardware breakpoint (FPB comparator).
    fn set_breakpoint(&mut self, addr: u64) -> Result<(), ProbeError>;
    /// Clears a hardware breakpoint.
    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), ProbeError>;
    /// Whether the core has a floating-point unit (S0..S31, FPSCR).
    fn has_fpu(&mut self) -> Result<bool, ProbeError>;
    /// Turns the HardFault vector catch on or off: when on, the core halts
    /// (cause [`HaltCause::Exception`]) on entry to its HardFault handler.
    fn catch_hardfault(&mut self, on: bool) -> Result<(), ProbeError>;
}

/// A core behind a probe, as [`crate::fault`] reads a caught fault.
pub struct FaultReader<'a, C: CoreAccess + ?Sized>(pub &'a mut C);

impl<C: CoreAccess + ?Sized> crate::fault::HaltedCore for FaultReader<'_, C> {
    type Error = ProbeError;

    fn register(&mut self, name: &str) -> Result<u64, ProbeError> {
        let regsel = match name {
            "lr" => 14,
            "msp" => 17,
            "psp" => 18,
            other => {
                return Err(ProbeError::failed(
                    "read a register",
                    format!("no register `{other}`"),
                ));
            }
        };
        self.0.read_reg(regsel).map(u64::from)
    }

    fn word(&mut self, addr: u64) -> Result<u32, ProbeError> {
        let mut word = [0u8; 4];
        self.0.read_memory(addr, &mut word)?;
        Ok(u32::from_le_bytes(word))
    }
}

/// A session with one board through one probe: its core, flashing and the
/// RTT console.
pub trait ProbeSession: CoreAccess {
    /// Erases and programs the ELF's loadable sections into flash.
    fn flash(&mut self, elf: &Path, progress: &mut dyn FnMut(FlashEvent))
    -> Result<(), ProbeError>;
    /// Looks for the RTT control block at `address`; `Ok(false)` while the
    /// firmware has not set it up yet.
    fn rtt_attach(&mut self, address: u64) -> Result<bool, ProbeError>;
    /// Appends what the firmware wrote to RTT up channel 0.
    fn rtt_read(&mut self, into: &mut Vec<u8>) -> Result<(), ProbeError>;
    /// Writes to RTT down channel 0; returns how many bytes fitted.
    fn rtt_write(&mut self, data: &[u8]) -> Result<usize, ProbeError>;
}

/// Finds attached debug probes and opens sessions on them.
pub trait ProbeLister: Send + Sync {
    /// The probes attached now.
    fn list(&self) -> Vec<ProbeInfo>;
    /// Opens `probe` and attaches to `chip`: the probe answers for the chip.
    fn open(&self, probe: &ProbeInfo, chip: &str) -> Result<Box<dyn ProbeSession>, ProbeError>;
}

/// A lister that never finds a probe: a lab built without hardware support.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProbes;

impl ProbeLister for NoProbes {
    fn list(&self) -> Vec<ProbeInfo> {
        Vec::new()
    }

    fn open(&self, _probe: &ProbeInfo, _chip: &str) -> Result<Box<dyn ProbeSession>, ProbeError> {
        Err(ProbeError::Unsupported)
    }
}

/// The lister of this build: probe-rs's USB probes with the `hardware`
/// feature, none without it.
pub fn system_lister() -> Arc<dyn ProbeLister> {
    #[cfg(feature = "hardware")]
    {
        Arc::new(probe_rs::ProbeRsLister)
    }
    #[cfg(not(feature = "hardware"))]
    {
        Arc::new(NoProbes)
    }
}

/// Whether this build can drive real boards.
pub const HARDWARE_SUPPORT: bool = cfg!(feature = "hardware");

/// The first probe in `probes` that may run a board wanting `serial`
/// (any probe when `None`) and answers for `chip`.
pub fn find_probe(
    lister: &dyn ProbeLister,
    probes: &[ProbeInfo],
    chip: &str,
    serial: Option<&str>,
) -> Option<ProbeInfo> {
    probes
        .iter()
        .filter(|p| serial.is_none_or(|want| p.serial.as_deref() == Some(want)))
        .find(|p| match lister.open(p, chip) {
            Ok(_) => true,
            Err(e) => {
                tracing::info!("probe {} does not answer for {chip}: {e}", p.describe());
                false
            }
        })
        .cloned()
}

/// Each attached probe with the boards it can run: the boards with a
/// `hardware:` section whose chip it answers for (and whose `probe:`
/// serial, if any, is its own).
pub fn survey<'b>(
    lister: &dyn ProbeLister,
    boards: impl IntoIterator<Item = &'b BoardProfile>,
) -> Vec<(ProbeInfo, Vec<String>)> {
    let boards: Vec<&BoardProfile> = boards
        .into_iter()
        .filter(|b| b.hardware.is_some())
        .collect();
    lister
        .list()
        .into_iter()
        .map(|probe| {
            let mut chips: Vec<(String, bool)> = Vec::new();
            let runs = boards
                .iter()
                .filter_map(|b| {
                    let hw = b.hardware.as_ref()?;
                    let serial_ok = hw
                        .probe
                        .as_deref()
                        .is_none_or(|want| probe.serial.as_deref() == Some(want));
                    let answers = match chips.iter().find(|(chip, _)| *chip == hw.chip) {
                        Some((_, answers)) => *answers,
                        None => {
                            let answers =
                                find_probe(lister, std::slice::from_ref(&probe), &hw.chip, None)
                                    .is_some();
                            chips.push((hw.chip.clone(), answers));
                            answers
                        }
                    };
                    (serial_ok && answers).then(|| b.name.clone())
                })
                .collect();
            (probe, runs)
        })
        .collect()
}
