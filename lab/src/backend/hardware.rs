//! The hardware backend: a real board through a debug probe.
//!
//! Boot opens a session on the job's probe, flashes the ELF (with progress
//! events), resets the core and lets it run. A pump thread then polls the
//! board: it copies RTT up channel 0 to the console (or a UART thread reads
//! the board's serial port), writes console input to RTT down channel 0,
//! answers semihosting calls (the command line) and ends the run on a
//! semihosting exit, a lockup or a stray breakpoint, and reads a HardFault
//! caught by the core's vector catch when one is armed. Shutdown resets the
//! board and leaves it halted at its reset vector. Features of the emulator
//! (QMP, HMP, icount, snapshots) are refused with a clear error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedMutexGuard, mpsc, watch};

use super::probe::semihost::{self, Call};
use super::probe::{
    CoreAccess, CoreState, FaultReader, FlashEvent, HaltCause, ProbeError, ProbeInfo, ProbeLister,
    ProbeSession,
};
use super::{GuestExit, Target, TargetError, TargetKind};
use crate::board::{BoardProfile, HardwareConsole};
use crate::console::Console;
use crate::elf::ElfInfo;
use crate::fault::{self, CaughtFault};
use crate::gdb::bridge::BackendFactory;
use crate::gdb::{DebugBackend, DebugHost, ProbeBackend};

/// How often the pump polls the board.
const POLL: Duration = Duration::from_millis(5);
/// The RTT control block's symbol in the lab's runtime (SEGGER's name).
pub const RTT_SYMBOL: &str = "_SEGGER_RTT";
/// How long a serial port read waits before the pump looks at other work.
#[cfg(feature = "hardware")]
const UART_READ_TIMEOUT: Duration = Duration::from_millis(20);

/// Receives flash progress for a progress bar.
pub type FlashSink = Arc<dyn Fn(FlashEvent) + Send + Sync>;

/// Everything needed to run one job on a real board.
#[derive(Clone)]
pub struct HardwareLaunch {
    /// The board profile (with its `hardware:` section).
    pub board: BoardProfile,
    /// The firmware.
    pub elf: PathBuf,
    /// Guest program arguments (the semihosting command line).
    pub args: Vec<String>,
    /// The probe that answered for the board's chip.
    pub probe: ProbeInfo,
    /// Opens the session.
    pub lister: Arc<dyn ProbeLister>,
    /// Held from boot to shutdown: one run at a time per probe.
    pub lock: Arc<tokio::sync::Mutex<()>>,
    /// Flash progress, when someone shows it.
    pub on_flash: Option<FlashSink>,
}

impl std::fmt::Debug for HardwareLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HardwareLaunch")
            .field("board", &self.board.name)
            .field("elf", &self.elf)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

/// What the pump, the target and debug sessions share.
struct Shared {
    session: Arc<Mutex<Box<dyn ProbeSession>>>,
    stop: AtomicBool,
    debugging: AtomicBool,
    exit: watch::Sender<Option<GuestExit>>,
    cmdline: String,
    /// Whether the HardFault vector catch is armed and not yet spent.
    catching: AtomicBool,
    /// The fault the vector catch caught.
    caught: watch::Sender<Option<CaughtFault>>,
}

impl Shared {
    fn session(&self) -> MutexGuard<'_, Box<dyn ProbeSession>> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_exit(&self, exit: GuestExit) {
        self.exit.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(exit);
                true
            } else {
                false
            }
        });
    }
}

impl DebugHost for Shared {
    fn debugging(&self, attached: bool) {
        self.debugging.store(attached, Ordering::SeqCst);
    }

    fn exited(&self, code: i32) {
        self.set_exit(GuestExit::Code(code));
    }

    fn command_line(&self) -> String {
        self.cmdline.clone()
    }
}

struct Running {
    shared: Arc<Shared>,
    exit: watch::Receiver<Option<GuestExit>>,
    caught: watch::Receiver<Option<CaughtFault>>,
    console: Console,
    threads: Vec<JoinHandle<()>>,
    _probe: OwnedMutexGuard<()>,
}

/// A real board behind a debug probe.
pub struct HardwareTarget {
    launch: HardwareLaunch,
    running: Option<Running>,
    exit: Option<GuestExit>,
    /// Whether each boot arms the HardFault vector catch.
    catch_faults: bool,
}

impl std::fmt::Debug for HardwareTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HardwareTarget")
            .field("launch", &self.launch)
            .finish_non_exhaustive()
    }
}

impl HardwareTarget {
    /// Prepares a target; nothing touches the board until [`Target::boot`].
    pub fn new(launch: HardwareLaunch) -> Result<Self, TargetError> {
        if launch.board.hardware.is_none() {
            return Err(TargetError::NotHardware(launch.board.name.clone()));
        }
        Ok(Self {
            launch,
            running: None,
            exit: None,
            catch_faults: false,
        })
    }

    fn not_on_hardware(feature: &str) -> TargetError {
        TargetError::NotOnHardware(feature.to_owned())
    }

    async fn start(&mut self, halted: bool) -> Result<Running, TargetError> {
        let launch = self.launch.clone();
        let Some(hw) = launch.board.hardware.clone() else {
            return Err(TargetError::NotHardware(launch.board.name.clone()));
        };
        if !launch.elf.is_file() {
            return Err(TargetError::MissingImage(launch.elf.clone()));
        }
        let rtt = match hw.console {
            HardwareConsole::Rtt => Some(rtt_address(&launch.elf)?),
            HardwareConsole::Uart { .. } => None,
        };
        let probe_lock = Arc::clone(&launch.lock).lock_owned().await;
        let program = launch
            .elf
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let cmdline = semihost::command_line(&program, &launch.args);
        let catch_faults = self.catch_faults;
        let session = tokio::task::spawn_blocking(move || -> Result<_, ProbeError> {
            let mut session = launch.lister.open(&launch.probe, &hw.chip)?;
            let mut progress = |event| {
                if let Some(sink) = &launch.on_flash {
                    sink(event);
                }
            };
            session.flash(&launch.elf, &mut progress)?;
            session.reset(true)?;
            session.catch_hardfault(catch_faults)?;
            if !halted {
                session.run()?;
            }
            Ok(session)
        })
        .await
        .map_err(|e| TargetError::Probe(ProbeError::failed("boot", e)))??;

        let (exit_tx, exit_rx) = watch::channel(None);
        let (caught_tx, caught_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            session: Arc::new(Mutex::new(session)),
            stop: AtomicBool::new(false),
            debugging: AtomicBool::new(false),
            exit: exit_tx,
            cmdline,
            catching: AtomicBool::new(catch_faults),
            caught: caught_tx,
        });
        let (console, up, down) = console_pipe();
        let mut threads = Vec::new();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(body)
                .map_err(|source| TargetError::Io {
                    context: format!("cannot start the {name} thread"),
                    source,
                })
        };
        match &self.launch.board.hardware.as_ref().map(|h| &h.console) {
            Some(HardwareConsole::Uart { port, baud }) => {
                let serial = open_serial(port, *baud)?;
                let pump_shared = Arc::clone(&shared);
                threads.push(spawn(
                    "lab-probe",
                    Box::new(move || pump(&pump_shared, None, None)),
                )?);
                let uart_shared = Arc::clone(&shared);
                threads.push(spawn(
                    "lab-uart",
                    Box::new(move || uart_pump(&uart_shared, serial, &up, &down)),
                )?);
            }
            _ => {
                let pump_shared = Arc::clone(&shared);
                threads.push(spawn(
                    "lab-probe",
                    Box::new(move || pump(&pump_shared, rtt, Some((&up, &down)))),
                )?);
            }
        }
        Ok(Running {
            shared,
            exit: exit_rx,
            caught: caught_rx,
            console,
            threads,
            _probe: probe_lock,
        })
    }
}

/// The RTT control block's address in the firmware.
fn rtt_address(elf: &std::path::Path) -> Result<u64, TargetError> {
    let info = ElfInfo::load(elf).map_err(|e| TargetError::Crashed(e.to_string()))?;
    info.symbol(RTT_SYMBOL)
        .map(|s| s.address)
        .ok_or_else(|| TargetError::NoRttBlock(elf.to_owned()))
}

/// The console's two ends: the [`Console`] the runner reads, a sender for
/// bytes from the board and a receiver of bytes for it.
fn console_pipe() -> (
    Console,
    mpsc::UnboundedSender<Vec<u8>>,
    std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let (lab_side, board_side) = tokio::io::duplex(64 << 10);
    let (up_tx, mut up_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (down_tx, down_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (mut from_lab, mut to_lab) = tokio::io::split(board_side);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                bytes = up_rx.recv() => match bytes {
                    Some(bytes) => {
                        if to_lab.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    // The pump ended: the console closes.
                    None => break,
                },
                n = from_lab.read(&mut buf) => match n {
                    Ok(n) if n > 0 => {
                        if down_tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    _ => break,
                },
            }
        }
        let _ = to_lab.shutdown().await;
    });
    (Console::new(lab_side), up_tx, down_rx)
}

/// Console plumbing of the pump: bytes to the lab, bytes for the board.
type ConsoleEnds<'a> = (
    &'a mpsc::UnboundedSender<Vec<u8>>,
    &'a std::sync::mpsc::Receiver<Vec<u8>>,
);

/// Polls the board until told to stop or the program ends: RTT console
/// (when `rtt` gives the control block), semihosting, lockups.
fn pump(shared: &Shared, rtt: Option<u64>, console: Option<ConsoleEnds<'_>>) {
    let mut attached = false;
    let mut pending = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let outcome = (|| -> Result<Option<GuestExit>, ProbeError> {
            let mut session = shared.session();
            if let (Some(addr), Some((up, down))) = (rtt, console) {
                if !attached {
                    attached = session.rtt_attach(addr)?;
                }
                if attached {
                    move_rtt(&mut **session, up, down, &mut pending)?;
                }
            }
            if shared.debugging.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let catching = shared.catching.load(Ordering::SeqCst);
            let exit = match poll_core(&mut **session, &shared.cmdline, catching)? {
                Polled::Running => None,
                Polled::Caught(fault) => {
                    shared.catching.store(false, Ordering::SeqCst);
                    shared.caught.send_replace(Some(fault));
                    None
                }
                Polled::Ended(exit) => Some(exit),
            };
            if exit.is_some()
                && attached
                && let Some((up, down)) = console
            {
                // What the program wrote just before it ended.
                move_rtt(&mut **session, up, down, &mut pending)?;
            }
            Ok(exit)
        })();
        match outcome {
            Ok(None) => std::thread::sleep(POLL),
            Ok(Some(exit)) => {
                shared.set_exit(exit);
                return;
            }
            Err(e) => {
                shared.set_exit(GuestExit::Crashed(format!("the debug probe failed: {e}")));
                return;
            }
        }
    }
}

/// Copies RTT up channel 0 to the lab and pending input to down channel 0.
fn move_rtt(
    session: &mut dyn ProbeSession,
    up: &mpsc::UnboundedSender<Vec<u8>>,
    down: &std::sync::mpsc::Receiver<Vec<u8>>,
    pending: &mut Vec<u8>,
) -> Result<(), ProbeError> {
    let mut bytes = Vec::new();
    session.rtt_read(&mut bytes)?;
    if !bytes.is_empty() {
        let _ = up.send(bytes);
    }
    while let Ok(more) = down.try_recv() {
        pending.extend(more);
    }
    if !pending.is_empty() {
        let n = session.rtt_write(pending)?;
        pending.drain(..n.min(pending.len()));
    }
    Ok(())
}

/// What one look at a core found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// The program runs on (a semihosting call was answered, if any).
    Running,
    /// The armed vector catch halted the core on entry to its HardFault
    /// handler: the fault, read; the catch is off and the core runs on.
    Caught(CaughtFault),
    /// The program ended.
    Ended(GuestExit),
}

/// One look at a core that no debugger holds: how the program ended, if
/// it did. Semihosting calls other than exit are answered and the core
/// runs on. With `catching`, a halt on the HardFault vector catch is read
/// and the core let go into its handler.
pub fn poll_core<C: CoreAccess + ?Sized>(
    core: &mut C,
    cmdline: &str,
    catching: bool,
) -> Result<Polled, ProbeError> {
    match core.state()? {
        CoreState::Running => Ok(Polled::Running),
        CoreState::LockedUp => Ok(Polled::Ended(GuestExit::Crashed(
            "the core locked up (a fault inside the HardFault handler)".into(),
        ))),
        CoreState::Halted(HaltCause::Breakpoint) => match semihost::serve(core, cmdline)? {
            Call::Exit(code) => Ok(Polled::Ended(GuestExit::Code(code))),
            Call::Answered | Call::Unsupported(_) => {
                core.run()?;
                Ok(Polled::Running)
            }
            Call::NotSemihosting => {
                let pc = core.read_reg(15)?;
                Ok(Polled::Ended(GuestExit::Crashed(format!(
                    "the core stopped on a breakpoint at {pc:#010x} with no debugger attached"
                ))))
            }
        },
        CoreState::Halted(HaltCause::Exception) if catching => {
            let caught = fault::read_caught(&mut FaultReader(core))?;
            core.catch_hardfault(false)?;
            core.run()?;
            Ok(Polled::Caught(caught))
        }
        // Halted at boot for a debugger, or by one that left: wait.
        CoreState::Halted(_) => Ok(Polled::Running),
    }
}

#[cfg(feature = "hardware")]
type SerialPort = Box<dyn serialport::SerialPort>;
#[cfg(not(feature = "hardware"))]
type SerialPort = std::convert::Infallible;

#[cfg(feature = "hardware")]
fn open_serial(port: &str, baud: u32) -> Result<SerialPort, TargetError> {
    serialport::new(port, baud)
        .timeout(UART_READ_TIMEOUT)
        .open()
        .map_err(|e| {
            TargetError::Probe(ProbeError::Serial {
                port: port.to_owned(),
                message: e.to_string(),
            })
        })
}

#[cfg(not(feature = "hardware"))]
fn open_serial(_port: &str, _baud: u32) -> Result<SerialPort, TargetError> {
    Err(TargetError::Probe(ProbeError::Unsupported))
}

/// Copies a serial port to and from the console until told to stop.
#[cfg(feature = "hardware")]
fn uart_pump(
    shared: &Shared,
    mut serial: SerialPort,
    up: &mpsc::UnboundedSender<Vec<u8>>,
    down: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        match serial.read(&mut buf) {
            Ok(n) if n > 0 => {
                let _ = up.send(buf[..n].to_vec());
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => {
                shared.set_exit(GuestExit::Crashed(format!("the serial port failed: {e}")));
                return;
            }
        }
        while let Ok(bytes) = down.try_recv() {
            if let Err(e) = serial.write_all(&bytes) {
                shared.set_exit(GuestExit::Crashed(format!("the serial port failed: {e}")));
                return;
            }
        }
    }
}

#[cfg(not(feature = "hardware"))]
fn uart_pump(
    _shared: &Shared,
    serial: SerialPort,
    _up: &mpsc::UnboundedSender<Vec<u8>>,
    _down: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    match serial {}
}

#[async_trait]
impl Target for HardwareTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Hardware
    }

    async fn boot(&mut self, halted: bool) -> Result<(), TargetError> {
        if self.running.is_some() || self.exit.is_some() {
            return Err(TargetError::AlreadyBooted);
        }
        let running = self.start(halted).await?;
        self.running = Some(running);
        Ok(())
    }

    async fn restart(
        &mut self,
        halted: bool,
        args: Option<Vec<String>>,
    ) -> Result<(), TargetError> {
        self.shutdown().await;
        self.exit = None;
        if let Some(args) = args {
            self.launch.args = args;
        }
        self.boot(halted).await
    }

    fn console(&mut self) -> Result<&mut Console, TargetError> {
        self.running
            .as_mut()
            .map(|r| &mut r.console)
            .ok_or(TargetError::NotBooted)
    }

    fn booted(&self) -> bool {
        self.running.is_some() || self.exit.is_some()
    }

    async fn exited(&mut self, grace: Duration) -> Option<GuestExit> {
        if let Some(exit) = &self.exit {
            return Some(exit.clone());
        }
        let running = self.running.as_mut()?;
        let exit = tokio::time::timeout(grace, running.exit.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?
            .clone()?;
        self.exit = Some(exit.clone());
        Some(exit)
    }

    async fn qmp(
        &mut self,
        _command: &str,
        _args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, TargetError> {
        Err(Self::not_on_hardware("QMP commands"))
    }

    async fn monitor(&mut self, _command: &str) -> Result<String, TargetError> {
        Err(Self::not_on_hardware("QEMU monitor (HMP) commands"))
    }

    fn arm_fault_catch(&mut self) -> bool {
        self.catch_faults = true;
        true
    }

    async fn caught_fault(&mut self, wait: Duration) -> Result<Option<CaughtFault>, TargetError> {
        if !self.catch_faults {
            return Err(TargetError::NoFaultCatch);
        }
        let running = self.running.as_mut().ok_or(TargetError::NotBooted)?;
        let (caught, exit) = (&mut running.caught, &mut running.exit);
        let outcome = tokio::time::timeout(wait, async {
            tokio::select! {
                biased;
                fault = caught.wait_for(Option::is_some) => fault.ok().and_then(|f| *f),
                _ = exit.wait_for(Option::is_some) => None,
            }
        })
        .await;
        // The program may end right after its handler ran: a catch made
        // before the exit still counts.
        Ok(outcome.ok().flatten().or(*running.caught.borrow()))
    }

    async fn debug_connector(&mut self) -> Result<BackendFactory, TargetError> {
        let running = self.running.as_ref().ok_or(TargetError::NotBooted)?;
        let shared = Arc::clone(&running.shared);
        Ok(Box::new(move || {
            let host: Arc<dyn DebugHost> = Arc::clone(&shared) as Arc<dyn DebugHost>;
            let backend = ProbeBackend::attach(Arc::clone(&shared.session), host)?;
            Ok(Box::new(backend) as Box<dyn DebugBackend>)
        }))
    }

    async fn shutdown(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.shared.stop.store(true, Ordering::SeqCst);
        let shared = Arc::clone(&running.shared);
        let threads = running.threads;
        let reset = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    tracing::error!("a hardware pump thread panicked");
                }
            }
            // Back into a known state: reset, halted at the reset vector.
            if let Err(e) = shared.session().reset(true) {
                tracing::warn!("cannot reset the board after the run: {e}");
            }
        });
        if reset.await.is_err() {
            tracing::error!("resetting the board panicked");
        }
        if self.exit.is_none() {
            self.exit = running.exit.borrow().clone();
        }
    }
}

impl Drop for HardwareTarget {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shared.stop.store(true, Ordering::SeqCst);
        }
    }
}
