//! Target backends: one trait, implemented by QEMU and by real boards
//! through a debug probe (probe-rs).
//!
//! A target boots an image, exposes its serial console and reports how the
//! guest ended. It knows nothing of scenarios: the runner drives it.

mod fault_catch;
mod hardware;
mod power;
pub mod probe;
mod qemu;
pub mod replay;
mod snapshot;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

pub use hardware::{FlashSink, HardwareLaunch, HardwareTarget, Polled, RTT_SYMBOL, poll_core};
pub use power::{Nonvolatile, PowerCut, StorageMedium};
pub use qemu::{COMMAND_FILE, QemuLaunch, QemuTarget};
pub use replay::{ReplayError, ReplayLog, ReplayMode};
pub use snapshot::{
    SNAPSHOT_TIMEOUT, SnapshotFile, SnapshotRestored, SnapshotSaved, remove as remove_snapshot,
};

use crate::console::{Console, ConsoleError};
use crate::deps::MissingTool;
use crate::fault::CaughtFault;
use crate::gdb::GdbError;
use crate::gdb::bridge::BackendFactory;
use crate::qmp::{QmpError, QmpEvent};
use probe::ProbeError;

/// Which kind of backend runs a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// QEMU emulation.
    Qemu,
    /// A real board through a debug probe.
    Hardware,
}

impl TargetKind {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Qemu => "qemu",
            TargetKind::Hardware => "hardware",
        }
    }
}

/// What the target boots.
#[derive(Debug, Clone, PartialEq)]
pub enum BootImage {
    /// A bare-metal ELF.
    Elf(PathBuf),
    /// A Linux kernel with optional device tree, initrd and disk.
    Linux {
        /// The kernel image.
        kernel: PathBuf,
        /// The device tree blob.
        dtb: Option<PathBuf>,
        /// The initial ramdisk.
        initrd: Option<PathBuf>,
        /// The disk image a scenario's `storage:` starts from; attached
        /// (as a copy) only with `storage:`.
        disk: Option<PathBuf>,
    },
}

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    /// The guest exited with this code (semihosting exit, power-off).
    Code(i32),
    /// The emulator or board died; the reason is one line.
    Crashed(String),
}

/// Errors of a target backend.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The emulator binary is missing.
    #[error(transparent)]
    MissingTool(#[from] MissingTool),
    /// An image file is missing.
    #[error("image file {0} does not exist: build it with `lab images build` or fix the path")]
    MissingImage(PathBuf),
    /// The emulator could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The emulator ended or stalled while starting up.
    #[error("QEMU failed to start: {reason}")]
    Startup {
        /// What happened, with QEMU's own message when it printed one.
        reason: String,
    },
    /// The guest or emulator died.
    #[error("{0}")]
    Crashed(String),
    /// A step needs a booted target.
    #[error("the target is not booted: add a `boot` step before this one")]
    NotBooted,
    /// The target was already booted.
    #[error("the target is already booted")]
    AlreadyBooted,
    /// The guest did not exit in time.
    #[error("the target did not exit within {0:?}")]
    ExitTimeout(Duration),
    /// A serial console error.
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// A QMP error.
    #[error(transparent)]
    Qmp(#[from] QmpError),
    /// The board has no `qemu:` section: it exists only as hardware.
    #[error(
        "board `{0}` is not emulated (its profile has no `qemu:` section): run it with a debug probe attached"
    )]
    NotEmulated(String),
    /// The board has no `hardware:` section: QEMU only.
    #[error("board `{0}` has no `hardware:` section (no probe-rs chip): it runs in QEMU only")]
    NotHardware(String),
    /// A feature of the emulator was asked of a real board.
    #[error("{0} are not available on hardware: they exist only in QEMU")]
    NotOnHardware(String),
    /// RTT console, and the firmware has no control block.
    #[error(
        "{} has no `_SEGGER_RTT` symbol, and the board's console is RTT: build it for the board (its cflags define LAB_CONSOLE_RTT)",
        .0.display()
    )]
    NoRttBlock(PathBuf),
    /// The debug probe or the board failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// No HardFault catch is armed on this target.
    #[error("no HardFault catch is armed on this target (it needs QEMU and no debugger steps)")]
    NoFaultCatch,
    /// The HardFault catch could not be armed or read.
    #[error(
        "the HardFault catch through QEMU's gdbstub failed: {0}; is the image Cortex-M firmware with a vector table at VTOR?"
    )]
    FaultCatch(GdbError),
    /// Snapshots are not available on hardware: they exist only in QEMU;
    /// run the scenario on an emulated board, or start it cold.
    #[error(
        "snapshots are not available on hardware: they exist only in QEMU; run the scenario on an emulated board, or start it cold"
    )]
    NoSnapshots,
    /// The machine could not be saved to the snapshot file; the reason says
    /// why (QEMU's own words where it gave them).
    #[error("cannot save a snapshot to {}: {reason}", .path.display())]
    SnapshotSave {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The machine could not be started from the snapshot file; the reason
    /// says why (QEMU's own words where it gave them). The target is left
    /// not booted and no QEMU is left running.
    #[error("cannot restore the snapshot {}: {reason}", .path.display())]
    SnapshotRestore {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Power control (cuts, power-on, nonvolatile storage) is not available
    /// on hardware: the lab cannot switch a real board's supply; run the
    /// scenario on an emulated board.
    #[error(
        "power control is not available on hardware: the lab cannot switch a real board's supply; run the scenario on an emulated board"
    )]
    NoPowerControl,
    /// The board's nonvolatile storage could not be saved or loaded.
    #[error("nonvolatile storage: {0}")]
    Storage(String),
    /// The board's power-fail warning could not be raised.
    #[error("the power-fail warning: {0}")]
    PowerFailWarning(String),
    /// Power-on while the board runs.
    #[error("the board is already on: cut its power first (power-cut)")]
    PoweredOn,
    /// Recording or replaying failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// Local I/O failed (temporary folder, sockets).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A board the lab can boot, drive and stop.
#[async_trait]
pub trait Target: Send {
    /// Which backend this is.
    fn kind(&self) -> TargetKind;

    /// Starts the target; `halted` leaves the CPU paused for a debugger.
    async fn boot(&mut self, halted: bool) -> Result<(), TargetError>;

    /// Stops the target if it runs and boots it again, with other guest
    /// arguments when `args` is given: a power cycle.
    async fn restart(&mut self, halted: bool, args: Option<Vec<String>>)
    -> Result<(), TargetError>;

    /// The serial console of a booted target.
    fn console(&mut self) -> Result<&mut Console, TargetError>;

    /// Whether the target has been booted (it may have ended since).
    fn booted(&self) -> bool;

    /// Waits for the guest to end, at most `timeout`; with `None` the caller
    /// bounds the wait.
    async fn wait_exit(&mut self, timeout: Option<Duration>) -> Result<GuestExit, TargetError> {
        if !self.booted() {
            return Err(TargetError::NotBooted);
        }
        match timeout {
            Some(t) => self.exited(t).await.ok_or(TargetError::ExitTimeout(t)),
            None => loop {
                if let Some(exit) = self.exited(Duration::from_secs(3600)).await {
                    break Ok(exit);
                }
            },
        }
    }

    /// How the guest ended, if it has ended within `grace`; `None` while it runs.
    async fn exited(&mut self, grace: Duration) -> Option<GuestExit>;

    /// Runs a QMP command by name and returns its `return` value.
    async fn qmp(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, TargetError>;

    /// Runs a monitor (HMP) command, like `info mtree`, and returns its text.
    async fn monitor(&mut self, command: &str) -> Result<String, TargetError>;

    /// Runs several QMP commands by name and returns their `return`
    /// values in order, or the first failure. QEMU receives them together
    /// and runs them back to back: `cont` then `stop` lets the guest run
    /// only for the moment QEMU takes to read the `stop`. The default runs
    /// them one after the other.
    async fn qmp_batch(
        &mut self,
        commands: &[(&str, Option<serde_json::Value>)],
    ) -> Result<Vec<serde_json::Value>, TargetError> {
        let mut replies = Vec::with_capacity(commands.len());
        for (command, args) in commands {
            replies.push(self.qmp(command, args.clone()).await?);
        }
        Ok(replies)
    }

    /// The QMP events QEMU has sent since the last call (`SHUTDOWN`,
    /// `RESET`, ...), oldest first; an event sent before the reply to a
    /// command is here once that command has returned. None on a backend
    /// without QMP.
    fn take_events(&mut self) -> Vec<QmpEvent> {
        Vec::new()
    }

    /// Waits up to `wait` for the next QMP event; `None` when none came in
    /// time or QEMU's connection has ended. Only QEMU sends events.
    async fn next_event(&mut self, wait: Duration) -> Result<Option<QmpEvent>, TargetError> {
        let _ = wait;
        Err(TargetError::NotOnHardware("QMP events".into()))
    }

    /// Arms a HardFault catch (a vector catch, as probe-rs and OpenOCD call
    /// it) for every later boot: the core halts on entry to the firmware's
    /// HardFault handler, whatever the handler is named or does, until
    /// [`Target::caught_fault`] reads the fault and lets the core run on.
    /// Returns whether this backend can; one that cannot leaves the fault to
    /// other witnesses.
    fn arm_fault_catch(&mut self) -> bool {
        false
    }

    /// Waits up to `wait` for the armed HardFault catch. After a catch the
    /// core runs on into its handler and the catch is spent until the next
    /// boot; `None` while nothing was caught, or when the guest ended
    /// without a fault. [`TargetError::NoFaultCatch`] when none is armed.
    async fn caught_fault(&mut self, wait: Duration) -> Result<Option<CaughtFault>, TargetError> {
        let _ = wait;
        Err(TargetError::NoFaultCatch)
    }

    /// Saves the whole running machine (CPU, RAM, devices, guest clock)
    /// into the file at `path`, replacing any file there, and returns what
    /// it cost and weighs ([`SnapshotSaved`]). The guest is paused while it is saved and left as it was:
    /// a running guest runs on from the same instant, a paused one stays
    /// paused. [`TargetError::NoSnapshots`] on a backend that cannot.
    async fn save_snapshot(&mut self, path: &Path) -> Result<SnapshotSaved, TargetError> {
        let _ = path;
        Err(TargetError::NoSnapshots)
    }

    /// Starts the target from the snapshot at `path` instead of a cold
    /// boot: whatever runs now is stopped first, and a fresh machine
    /// continues from the saved instant (paused with `halted`). Works on a
    /// target never booted (a warm start) as well as inside a run (back to
    /// a named point). The console, QMP and debug connections are new ones:
    /// the console's transcript starts empty at the restore. A failed
    /// restore leaves the target not booted. [`TargetError::NoSnapshots`]
    /// on a backend that cannot.
    async fn restore_snapshot(
        &mut self,
        path: &Path,
        halted: bool,
    ) -> Result<SnapshotRestored, TargetError> {
        let _ = (path, halted);
        Err(TargetError::NoSnapshots)
    }

    /// Gives the board nonvolatile storage for every later power-on of
    /// this target (an erased region, or a fresh copy of a disk image): it
    /// keeps what the guest wrote across [`Target::power_cut`] and
    /// [`Target::power_on`], and a snapshot holds it as it was at the save.
    /// Call it before the first boot. [`TargetError::NoPowerControl`] on a
    /// backend that cannot.
    fn attach_storage(&mut self, medium: StorageMedium) -> Result<(), TargetError> {
        let _ = medium;
        Err(TargetError::NoPowerControl)
    }

    /// Warns the running firmware that power is failing: sets external
    /// interrupt `irq` pending, as a supply supervisor would. The guest
    /// runs on.
    async fn warn_power_fail(&mut self, irq: u32) -> Result<(), TargetError> {
        let _ = irq;
        Err(TargetError::NoPowerControl)
    }

    /// Cuts the power: the machine stops where it is, its storage keeps
    /// what it holds at that instant, and the machine ends, console and
    /// all. [`Target::power_on`] boots it again.
    async fn power_cut(&mut self) -> Result<PowerCut, TargetError> {
        Err(TargetError::NoPowerControl)
    }

    /// Boots the board again after [`Target::power_cut`], with its storage
    /// as the cut left it. [`TargetError::PoweredOn`] while it runs. With
    /// `from`, the machine starts from that snapshot instead of its reset
    /// vector: one saved after a cold boot, before the guest touched its
    /// storage, is the same power-on without the boot's cost; the storage
    /// is still the cut's, not the snapshot's.
    async fn power_on(&mut self, from: Option<&Path>) -> Result<(), TargetError> {
        let _ = from;
        Err(TargetError::NoPowerControl)
    }

    /// Opens debug connections to the booted target's core, one per
    /// debugger session; the GDB bridge serves them.
    async fn debug_connector(&mut self) -> Result<BackendFactory, TargetError>;

    /// Stops the target and releases everything it holds. Idempotent.
    async fn shutdown(&mut self);
}
