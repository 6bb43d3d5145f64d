//! Power cycles with nonvolatile storage on QEMU's bare-metal boards.
//!
//! QEMU's MPS2 boards have no flash controller, so a board's storage is a
//! RAM region of its memory map (`kind: nvm` in the profile) that the lab
//! keeps across power cycles itself:
//! - **At power-on** (every cold start, the first of a run included) the
//!   region is written from the storage file through QEMU's gdbstub while
//!   the CPU is still held by `-S`. A run's file starts erased (`0xFF`).
//!   A restore from a snapshot does not: the snapshot holds the region.
//! - **At a power cut** the machine is stopped where it is (`stop`), the
//!   region is saved to the file (`pmemsave`) and QEMU is killed: what the
//!   firmware had not yet written is lost, as it would be.
//! - **A warning first** (`power-cut: {mode: graceful}`): the board's
//!   power-fail interrupt is set pending in the NVIC, through the gdbstub,
//!   as a supply supervisor would raise it.
//!
//! A guest reset (SYSRESETREQ) keeps the region: QEMU does not clear RAM,
//! and the region is written only at a cold start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::TargetError;
use crate::gdb::{GdbClient, GdbError};

/// NVIC_ISPR0: writing bit `n` sets external interrupt `n` pending.
const NVIC_ISPR0: u64 = 0xE000_E200;
/// How long the gdbstub may take to answer.
const STUB_TIMEOUT: Duration = Duration::from_secs(5);
/// The value of erased flash.
const ERASED: u8 = 0xFF;

/// A board's nonvolatile region, as the board profile places it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonvolatile {
    /// Start address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What a power cut did.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerCut {
    /// The bytes of storage kept for the next power-on (0 without storage).
    pub kept_bytes: u64,
    /// How long stopping, saving and ending the machine took.
    pub duration: Duration,
}

/// The storage of one target: its region and the file that holds it
/// between power cycles.
#[derive(Debug)]
pub(super) struct Storage {
    pub(super) region: Nonvolatile,
    pub(super) file: PathBuf,
}

impl Storage {
    /// Storage in `dir`, erased.
    pub(super) fn erased(region: Nonvolatile, dir: &Path) -> Result<Self, TargetError> {
        let file = dir.join("storage.bin");
        let size = usize::try_from(region.size).map_err(|_| {
            TargetError::Storage(format!("a region of {} bytes is too large", region.size))
        })?;
        std::fs::write(&file, vec![ERASED; size]).map_err(|source| TargetError::Io {
            context: format!("cannot create the storage file {}", file.display()),
            source,
        })?;
        Ok(Storage { region, file })
    }

    /// Writes the file into the region of the machine behind `socket`
    /// (QEMU's gdbstub), which must be paused and stays so.
    pub(super) async fn load(&self, socket: &Path) -> Result<(), TargetError> {
        let data = std::fs::read(&self.file).map_err(|source| TargetError::Io {
            context: format!("cannot read the storage file {}", self.file.display()),
            source,
        })?;
        if data.len() as u64 != self.region.size {
            return Err(TargetError::Storage(format!(
                "{} holds {} bytes, the region {}",
                self.file.display(),
                data.len(),
                self.region.size
            )));
        }
        let base = self.region.base;
        with_stub(socket, move |core| core.write_memory(base, &data))
            .await
            .map_err(TargetError::Storage)
    }
}

/// Sets external interrupt `irq` pending through the gdbstub at `socket`.
/// Connecting pauses the machine; the caller resumes it.
pub(super) async fn raise_irq(socket: &Path, irq: u32) -> Result<(), TargetError> {
    let register = NVIC_ISPR0 + 4 * u64::from(irq / 32);
    let bit = 1u32 << (irq % 32);
    with_stub(socket, move |core| core.write_u32(register, bit))
        .await
        .map_err(TargetError::PowerFailWarning)
}

/// Runs `op` on a fresh connection to the gdbstub at `socket`, on a
/// blocking thread; what failed, in words. The connection is dropped
/// without a detach, which would resume the machine: it stays paused.
async fn with_stub(
    socket: &Path,
    op: impl FnOnce(&mut GdbClient<std::os::unix::net::UnixStream>) -> Result<(), GdbError>
    + Send
    + 'static,
) -> Result<(), String> {
    let socket = socket.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut core = GdbClient::connect_unix(&socket, STUB_TIMEOUT)?;
        core.halt_reason()?;
        op(&mut core)
    })
    .await
    .map_err(|e| format!("the lab failed while using QEMU's gdbstub: {e}"))?
    .map_err(|e| format!("through QEMU's gdbstub: {e}"))
}
