//! The probe seams implemented with probe-rs: USB probes found by its
//! lister, a session per board, core 0 of the chip.

use std::path::Path;
use std::time::Duration;

use probe_rs::flashing::{
    DownloadOptions, ElfLoader, ElfOptions, FlashProgress, ProgressEvent, ProgressOperation,
};
use probe_rs::probe::list::Lister;
use probe_rs::probe::{DebugProbeSelector, Probe};
use probe_rs::rtt::{Rtt, ScanRegion};
use probe_rs::{
    CoreStatus, HaltReason, MemoryInterface, Permissions, RegisterId, RegisterValue, Session,
    VectorCatchCondition,
};

use super::{
    CoreAccess, CoreState, FlashEvent, HaltCause, ProbeError, ProbeInfo, ProbeLister, ProbeSession,
};

/// How long a halt or a reset-and-halt may take.
const HALT_TIMEOUT: Duration = Duration::from_millis(500);

/// probe-rs's lister of USB debug probes (ST-Link, J-Link, CMSIS-DAP v2,
/// ESP-JTAG, FTDI, ...).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeRsLister;

impl ProbeLister for ProbeRsLister {
    fn list(&self) -> Vec<ProbeInfo> {
        Lister::new()
            .list_all()
            .into_iter()
            .map(|info| ProbeInfo {
                identifier: info.identifier.clone(),
                serial: info.serial_number.clone(),
                selector: DebugProbeSelector::from(&info).to_string(),
            })
            .collect()
    }

    fn open(&self, probe: &ProbeInfo, chip: &str) -> Result<Box<dyn ProbeSession>, ProbeError> {
        let selector: DebugProbeSelector = probe
            .selector
            .parse()
            .map_err(|e| ProbeError::failed(format!("probe selector {}", probe.selector), e))?;
        let opened = Lister::new()
            .open(selector)
            .map_err(|e| ProbeError::failed(format!("open probe {}", probe.describe()), e))?;
        Ok(Box::new(ProbeRsSession::attach(opened, chip)?))
    }
}

/// A probe-rs session on core 0 of a chip, with its RTT channels once the
/// firmware has set them up.
pub struct ProbeRsSession {
    session: Session,
    rtt: Option<Rtt>,
}

impl std::fmt::Debug for ProbeRsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeRsSession")
            .field("rtt", &self.rtt.is_some())
            .finish_non_exhaustive()
    }
}

impl ProbeRsSession {
    /// Attaches `probe` to `chip` (a probe-rs target name).
    pub fn attach(probe: Probe, chip: &str) -> Result<Self, ProbeError> {
        let session = probe
            .attach(chip, Permissions::default())
            .map_err(|e| ProbeError::failed(format!("attach to {chip}"), e))?;
        Ok(Self { session, rtt: None })
    }

    fn core(&mut self, operation: &str) -> Result<probe_rs::Core<'_>, ProbeError> {
        self.session
            .core(0)
            .map_err(|e| ProbeError::failed(operation, e))
    }
}

/// Maps probe-rs's error for `operation`.
fn failed(operation: impl Into<String>) -> impl FnOnce(probe_rs::Error) -> ProbeError {
    let operation = operation.into();
    move |e| ProbeError::failed(operation, e)
}

impl CoreAccess for ProbeRsSession {
    fn read_reg(&mut self, regsel: u16) -> Result<u32, ProbeError> {
        let what = format!("read register {regsel}");
        let value: RegisterValue = self
            .core(&what)?
            .read_core_reg(RegisterId(regsel))
            .map_err(failed(&what))?;
        value.try_into().map_err(failed(what))
    }

    fn write_reg(&mut self, regsel: u16, value: u32) -> Result<(), ProbeError> {
        let what = format!("write register {regsel}");
        self.core(&what)?
            .write_core_reg(RegisterId(regsel), value)
            .map_err(failed(what))
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), ProbeError> {
        let what = format!("read {} bytes at {addr:#x}", buf.len());
        self.core(&what)?.read_8(addr, buf).map_err(failed(what))
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), ProbeError> {
        let what = format!("write {} bytes at {addr:#x}", data.len());
        self.core(&what)?.write_8(addr, data).map_err(failed(what))
    }

    fn halt(&mut self) -> Result<(), ProbeError> {
        self.core("halt")?
            .halt(HALT_TIMEOUT)
            .map(drop)
            .map_err(failed("halt"))
    }

    fn run(&mut self) -> Result<(), ProbeError> {
        self.core("run")?.run().map_err(failed("run"))
    }

    fn step(&mut self) -> Result<(), ProbeError> {
        self.core("step")?.step().map(drop).map_err(failed("step"))
    }

    fn state(&mut self) -> Result<CoreState, ProbeError> {
        let status = self.core("status")?.status().map_err(failed("status"))?;
        Ok(match status {
            CoreStatus::Running | CoreStatus::Sleeping | CoreStatus::Unknown => CoreState::Running,
            CoreStatus::LockedUp => CoreState::LockedUp,
            CoreStatus::Halted(reason) => CoreState::Halted(match reason {
                HaltReason::Breakpoint(_) => HaltCause::Breakpoint,
                HaltReason::Step => HaltCause::Step,
                HaltReason::Request => HaltCause::Request,
                HaltReason::Exception => HaltCause::Exception,
                _ => HaltCause::Other,
            }),
        })
    }

    fn reset(&mut self, halt: bool) -> Result<(), ProbeError> {
        self.rtt = None;
        let mut core = self.core("reset")?;
        if halt {
            core.reset_and_halt(HALT_TIMEOUT)
                .map(drop)
                .map_err(failed("reset and halt"))
        } else {
            core.reset().map_err(failed("reset"))
        }
    }

    fn set_breakpoint(&mut self, addr: u64) -> Result<(), ProbeError> {
        let what = format!("set a breakpoint at {addr:#x}");
        self.core(&what)?
            .set_hw_breakpoint(addr)
            .map_err(failed(what))
    }

    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), ProbeError> {
        let what = format!("clear the breakpoint at {addr:#x}");
        self.core(&what)?
            .clear_hw_breakpoint(addr)
            .map_err(failed(what))
    }

    fn has_fpu(&mut self) -> Result<bool, ProbeError> {
        self.core("read the FPU")?
            .fpu_support()
            .map_err(failed("read the FPU"))
    }

    fn catch_hardfault(&mut self, on: bool) -> Result<(), ProbeError> {
        let what = "set the HardFault vector catch";
        let mut core = self.core(what)?;
        if on {
            core.enable_vector_catch(VectorCatchCondition::HardFault)
        } else {
            core.disable_vector_catch(VectorCatchCondition::HardFault)
        }
        .map_err(failed(what))
    }
}

impl ProbeSession for ProbeRsSession {
    fn flash(
        &mut self,
        elf: &Path,
        progress: &mut dyn FnMut(FlashEvent),
    ) -> Result<(), ProbeError> {
        let mut options = DownloadOptions::default();
        options.progress = FlashProgress::new(|event| match event {
            ProgressEvent::AddProgressBar {
                operation: ProgressOperation::Program,
                total: Some(total),
            } => progress(FlashEvent::Started { total }),
            ProgressEvent::Progress {
                operation: ProgressOperation::Program,
                size,
                ..
            } => progress(FlashEvent::Programmed { bytes: size }),
            ProgressEvent::Finished(ProgressOperation::Program) => progress(FlashEvent::Finished),
            _ => {}
        });
        probe_rs::flashing::download_file_with_options(
            &mut self.session,
            elf,
            ElfLoader(ElfOptions::default()),
            options,
        )
        .map_err(|e| ProbeError::failed(format!("flash {}", elf.display()), e))
    }

    fn rtt_attach(&mut self, address: u64) -> Result<bool, ProbeError> {
        let mut core = self.core("attach RTT")?;
        let rtt = match Rtt::attach_region(&mut core, &ScanRegion::Exact(address)) {
            Ok(rtt) => rtt,
            Err(probe_rs::rtt::Error::ControlBlockNotFound) => return Ok(false),
            Err(e) => return Err(ProbeError::failed("attach RTT", e)),
        };
        drop(core);
        self.rtt = Some(rtt);
        Ok(true)
    }

    fn rtt_read(&mut self, into: &mut Vec<u8>) -> Result<(), ProbeError> {
        let Some(mut rtt) = self.rtt.take() else {
            return Ok(());
        };
        let result = (|| {
            let mut core = self.core("read RTT")?;
            if let Some(up) = rtt.up_channel(0) {
                let mut buf = [0u8; 1024];
                loop {
                    let n = up
                        .read(&mut core, &mut buf)
                        .map_err(|e| ProbeError::failed("read RTT", e))?;
                    into.extend_from_slice(&buf[..n]);
                    if n < buf.len() {
                        break;
                    }
                }
            }
            Ok(())
        })();
        self.rtt = Some(rtt);
        result
    }

    fn rtt_write(&mut self, data: &[u8]) -> Result<usize, ProbeError> {
        let Some(mut rtt) = self.rtt.take() else {
            return Ok(0);
        };
        let result = (|| {
            let mut core = self.core("write RTT")?;
            match rtt.down_channel(0) {
                Some(down) => down
                    .write(&mut core, data)
                    .map_err(|e| ProbeError::failed("write RTT", e)),
                None => Ok(0),
            }
        })();
        self.rtt = Some(rtt);
        result
    }
}
