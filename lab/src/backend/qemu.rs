//! The QEMU backend: builds an argument vector from a board profile, an image
//! and a clock; owns the process, its QMP connection and its serial console.
//!
//! QEMU connects to sockets the lab listens on, in a temporary folder of the
//! run's own, so no output is lost before the lab is ready and no two runs
//! share a socket. QEMU runs in its own process group and is killed on
//! shutdown, drop, timeout and when the lab process dies (see [`crate::child`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::fault_catch::{FaultCatch, Watch};
use super::power::{self, PowerCut, Storage, StorageMedium};
use super::replay::{ReplayLog, ReplayMode};
use super::snapshot::{self, SNAPSHOT_TIMEOUT, SnapshotFile, SnapshotRestored, SnapshotSaved};
use super::{BootImage, GuestExit, Target, TargetError, TargetKind};
use crate::board::{BoardProfile, DISK_FILE, ExitMethod};
use crate::child;
use crate::console::Console;
use crate::deps::HostTool;
use crate::fault::CaughtFault;
use crate::gdb::bridge::BackendFactory;
use crate::gdb::{DebugBackend, GdbClient};
use crate::qmp::{QmpClient, QmpError, QmpEvent, QmpEvents};
use crate::scenario::Clock;
use crate::scratch::ScratchDir;

/// How long QEMU may take to connect its QMP and serial sockets.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the QMP handshake may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a recording or replaying QEMU may take to answer the `cont`
/// that starts its guest.
const REPLAY_QMP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a killed QEMU to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a debug session may take to reach QEMU's gdbstub.
const DEBUG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The file name of QEMU's gdbstub socket in the run's folder.
const GDB_SOCKET: &str = "gdb.sock";
/// QEMU's stderr kept for messages.
const STDERR_CAPACITY: usize = 64 << 10;
/// How long a recording QEMU may take to end on `quit` (and finish its
/// replay log) before it is killed.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The file of a recording that holds QEMU's command line, as JSON.
pub const COMMAND_FILE: &str = "qemu-command.json";

/// Everything needed to start QEMU for one run.
#[derive(Debug, Clone)]
pub struct QemuLaunch {
    /// The board profile.
    pub board: BoardProfile,
    /// What to boot.
    pub image: BootImage,
    /// Guest time: `Virtual` adds `-icount`.
    pub clock: Clock,
    /// Guest program arguments (semihosting command line for bare metal).
    pub args: Vec<String>,
    /// Guest environment (Linux: `KEY=VALUE` words on the kernel command line).
    pub env: BTreeMap<String, String>,
    /// The run's disk (its copy of the image's), attached as the board
    /// profile's `linux.disk` says; set by [`Target::attach_storage`].
    pub disk: Option<PathBuf>,
}

impl QemuLaunch {
    /// QEMU's argument vector (without the binary) for sockets in `dir`.
    ///
    /// QEMU always starts paused (`-S`): the lab connects, then resumes the
    /// CPU, so a guest that exits at once cannot outrun the QMP handshake.
    /// A board without a `qemu:` section gets no machine arguments: it
    /// never gets this far ([`QemuTarget::new`] refuses it).
    pub fn command_line(&self, dir: &Path) -> Vec<OsString> {
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| argv.extend(items.iter().map(OsString::from));
        if let Some(q) = &self.board.qemu {
            push(&["-M", &q.machine, "-cpu", &q.cpu, "-m", &q.memory]);
        }
        push(&["-nodefaults", "-display", "none", "-monitor", "none"]);
        let serial = dir.join("serial.sock");
        let qmp = dir.join("qmp.sock");
        // The machine's UARTs before the console's get a null chardev, so
        // that the lab's socket lands on the console's port. (`-serial null`
        // would name its chardev `serial0`, which is taken.)
        let index = self.board.serial.as_ref().map_or(0, |s| s.index);
        for i in 0..index {
            push(&[
                "-chardev",
                &format!("null,id=unused{i}"),
                "-serial",
                &format!("chardev:unused{i}"),
            ]);
        }
        push(&[
            "-chardev",
            &format!(
                "socket,id=serial0,path={}",
                escape(&serial.to_string_lossy())
            ),
            "-serial",
            "chardev:serial0",
            "-chardev",
            &format!("socket,id=qmp0,path={}", escape(&qmp.to_string_lossy())),
            "-mon",
            "chardev=qmp0,mode=control",
        ]);
        match &self.image {
            BootImage::Elf(elf) => {
                argv.extend(["-kernel".into(), elf.clone().into_os_string()]);
            }
            BootImage::Linux {
                kernel,
                dtb,
                initrd,
                disk: _,
            } => {
                argv.extend(["-kernel".into(), kernel.clone().into_os_string()]);
                if let Some(dtb) = dtb {
                    argv.extend(["-dtb".into(), dtb.clone().into_os_string()]);
                }
                if let Some(initrd) = initrd {
                    argv.extend(["-initrd".into(), initrd.clone().into_os_string()]);
                }
                // The disk, and the device init mounts, before the
                // program's arguments (which may hold `--`).
                let attach = self.board.linux.as_ref().and_then(|l| l.disk.as_ref());
                let mut args = Vec::new();
                if let (Some(disk), Some(attach)) = (&self.disk, attach) {
                    let file = escape(&disk.to_string_lossy());
                    argv.extend(
                        attach
                            .qemu
                            .iter()
                            .map(|a| a.replace(DISK_FILE, &file).into()),
                    );
                    args.push(format!("lab.disk={}", attach.device));
                }
                args.extend(self.args.iter().cloned());
                let cmdline = self.board.kernel_cmdline(&self.env, &args);
                if !cmdline.is_empty() {
                    argv.extend(["-append".into(), cmdline.into()]);
                }
            }
        }
        let mut push = |items: &[&str]| argv.extend(items.iter().map(OsString::from));
        if self.board.exit == ExitMethod::Semihosting {
            let mut config = String::from("enable=on,target=native");
            if let BootImage::Elf(elf) = &self.image {
                let program = elf.file_name().unwrap_or_default().to_string_lossy();
                for arg in
                    std::iter::once(program.as_ref()).chain(self.args.iter().map(String::as_str))
                {
                    config.push_str(",arg=");
                    config.push_str(&escape(arg));
                }
            }
            push(&["-semihosting-config", &config]);
        }
        if let (Clock::Virtual, Some(icount)) = (self.clock, self.board.icount) {
            push(&[
                "-icount",
                &format!("shift={},align=off,sleep=off", icount.shift),
            ]);
        }
        push(&["-S"]);
        if let Some(q) = &self.board.qemu {
            argv.extend(q.args.iter().map(OsString::from));
        }
        argv
    }
}

/// Readies a recording or a replay and adds its options to `argv`; a
/// recording covers one QEMU, so a second start (`started`) is refused.
async fn prepare_replay(
    replay: &ReplayLog,
    started: bool,
    binary: &Path,
    argv: &mut Vec<OsString>,
) -> Result<(), TargetError> {
    if started && replay.mode == ReplayMode::Record {
        return Err(TargetError::Startup {
            reason: "a recording covers one QEMU from its start to its end, and this run starts \
                     another (a power cycle, a snapshot restore or a script's boot): record a \
                     scenario that boots once"
                .into(),
        });
    }
    replay.prepare().await?;
    replay.apply(argv)?;
    if replay.mode == ReplayMode::Record {
        let path = replay.folder.join(COMMAND_FILE);
        let command = serde_json::json!({
            "binary": binary,
            "argv": argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&command).unwrap_or_default();
        std::fs::write(&path, text + "\n").map_err(|source| TargetError::Io {
            context: format!(
                "cannot write the recording's command line {}",
                path.display()
            ),
            source,
        })?;
    }
    Ok(())
}

/// Ends a recording QEMU with QMP `quit`, so that it finishes its replay
/// log; `false` when it did not end within [`QUIT_TIMEOUT`].
async fn quit(running: &mut Running) -> bool {
    // QEMU may close the connection before its reply: the wait tells.
    let _ = running.qmp.execute_raw("quit", None, QMP_TIMEOUT).await;
    let ended = matches!(
        tokio::time::timeout(QUIT_TIMEOUT, running.child.wait()).await,
        Ok(Ok(_))
    );
    if !ended {
        tracing::warn!("a recording QEMU did not end on `quit`; its replay log may be cut short");
    }
    ended
}

/// Escapes a value inside a QEMU option list (commas are doubled).
fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

/// A QEMU process and its connections.
pub struct QemuTarget {
    launch: QemuLaunch,
    dir: ScratchDir,
    running: Option<Running>,
    exit: Option<GuestExit>,
    /// Whether each boot arms a HardFault catch.
    catch_faults: bool,
    /// The board's nonvolatile storage, kept across power cycles.
    storage: Option<Storage>,
    /// Record and replay: the recording QEMU writes or follows.
    replay: Option<ReplayLog>,
    /// Whether a QEMU has started (a recording covers only one).
    started: bool,
}

struct Running {
    child: Child,
    pgid: Pid,
    qmp: QmpClient,
    events: QmpEvents,
    console: Console,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: JoinHandle<()>,
    /// The armed HardFault catch, until it fires.
    fault_catch: Option<FaultCatch>,
    /// Whether QEMU's gdbstub serves the gdb socket yet.
    gdb_stub: bool,
}

impl std::fmt::Debug for QemuTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuTarget")
            .field("board", &self.launch.board.name)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl QemuTarget {
    /// Prepares a target; nothing starts until [`Target::boot`]. A board
    /// that QEMU does not model is refused.
    pub fn new(launch: QemuLaunch) -> Result<Self, TargetError> {
        if launch.board.qemu.is_none() {
            return Err(TargetError::NotEmulated(launch.board.name.clone()));
        }
        let dir = ScratchDir::new("qemu").map_err(|source| TargetError::Io {
            context: "cannot create a temporary folder for QEMU's sockets".into(),
            source,
        })?;
        Ok(QemuTarget {
            launch,
            dir,
            running: None,
            exit: None,
            catch_faults: false,
            storage: None,
            replay: None,
            started: false,
        })
    }

    /// Records the run into, or replays it from, a recording folder (see
    /// [`super::replay`]); the board must run under `clock: virtual`.
    pub fn set_replay(&mut self, replay: ReplayLog) {
        self.replay = Some(replay);
    }

    /// The QMP client of a booted target.
    pub fn qmp_client(&self) -> Result<&QmpClient, TargetError> {
        self.running
            .as_ref()
            .map(|r| &r.qmp)
            .ok_or(TargetError::NotBooted)
    }

    /// The folder that holds this run's sockets.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn image_files(&self) -> Vec<&PathBuf> {
        match &self.launch.image {
            BootImage::Elf(p) => vec![p],
            BootImage::Linux {
                kernel,
                dtb,
                initrd,
                disk: _,
            } => std::iter::once(kernel).chain(dtb).chain(initrd).collect(),
        }
    }

    /// Starts QEMU and connects to it; from a snapshot, QEMU starts with
    /// `-incoming defer` and loads it before anything runs, and the load's
    /// duration comes back with the machine.
    async fn start(
        &mut self,
        halted: bool,
        origin: Origin<'_>,
    ) -> Result<(Running, Option<Duration>), TargetError> {
        let incoming = match origin {
            Origin::Reset => None,
            Origin::Snapshot(path) | Origin::PowerOn(path) => Some(path),
        };
        let q = (self.launch.board.qemu.as_ref())
            .ok_or_else(|| TargetError::NotEmulated(self.launch.board.name.clone()))?;
        let binary = HostTool::new(&q.binary, &q.package).locate()?;
        if let Some(missing) = self.image_files().into_iter().find(|p| !p.is_file()) {
            return Err(TargetError::MissingImage(missing.clone()));
        }
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| TargetError::Io { context, source }
        };
        let serial_listener = UnixListener::bind(self.dir.path().join("serial.sock"))
            .map_err(io("cannot listen for QEMU's serial port"))?;
        let qmp_listener = UnixListener::bind(self.dir.path().join("qmp.sock"))
            .map_err(io("cannot listen for QEMU's QMP connection"))?;

        let mut argv = self.launch.command_line(self.dir.path());
        if let Some(replay) = &self.replay {
            prepare_replay(replay, self.started, &binary, &mut argv).await?;
        }
        let mut cmd = Command::new(&binary);
        cmd.args(&argv);
        if incoming.is_some() {
            cmd.args(["-incoming", "defer"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = child::spawn(cmd).map_err(|source| TargetError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        let pid = child.id().map(|id| Pid::from_raw(id as i32));
        let pgid = pid.ok_or_else(|| TargetError::Startup {
            reason: "QEMU exited before it could be tracked".into(),
        })?;

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = {
            let sink = Arc::clone(&stderr);
            let mut pipe = child.stderr.take();
            tokio::spawn(async move {
                let Some(pipe) = pipe.as_mut() else { return };
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut buf = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    let room = STDERR_CAPACITY.saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk[..n.min(room)]);
                }
            })
        };

        let connect = async {
            let (serial, qmp) = tokio::try_join!(
                accept(&serial_listener, "serial"),
                accept(&qmp_listener, "QMP")
            )?;
            let (qmp, events) = QmpClient::handshake(qmp, QMP_TIMEOUT).await?;
            Ok::<_, TargetError>((serial, qmp, events))
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(STARTUP_TIMEOUT, connect) => r.map_err(|_| None),
            status = child.wait() => Err(Some(status)),
        };
        let stderr_text = || {
            String::from_utf8_lossy(&stderr.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        };
        let (serial, qmp, events) = match outcome {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => {
                // QEMU connects its sockets before it has read the whole
                // command line; when it then refuses an option, the QMP
                // connection closes and its stderr says why.
                let exited = matches!(e, TargetError::Qmp(QmpError::Disconnected { .. }))
                    && tokio::time::timeout(REAP_TIMEOUT, child.wait())
                        .await
                        .is_ok();
                let _ = killpg(pgid, Signal::SIGKILL);
                if exited {
                    let _ = tokio::time::timeout(REAP_TIMEOUT, stderr_task).await;
                    if let Some(line) = telling_line(&stderr_text()) {
                        return Err(TargetError::Startup {
                            reason: line.to_owned(),
                        });
                    }
                }
                return Err(e);
            }
            Err(status) => {
                if status.is_none() {
                    let _ = killpg(pgid, Signal::SIGKILL);
                }
                let _ = tokio::time::timeout(REAP_TIMEOUT, child.wait()).await;
                let _ = tokio::time::timeout(REAP_TIMEOUT, stderr_task).await;
                let reason = match status {
                    None => format!("QEMU did not connect within {STARTUP_TIMEOUT:?}"),
                    Some(_) => telling_line(&stderr_text())
                        .unwrap_or("QEMU exited without a message")
                        .to_owned(),
                };
                return Err(TargetError::Startup { reason });
            }
        };
        let load = match incoming {
            None => None,
            Some(path) => {
                let begun = tokio::time::Instant::now();
                if let Err(e) = qmp.migrate_from_file(path, SNAPSHOT_TIMEOUT).await {
                    // Also after a timeout: nothing of this QEMU may remain.
                    let _ = killpg(pgid, Signal::SIGKILL);
                    let _ = tokio::time::timeout(REAP_TIMEOUT, child.wait()).await;
                    let _ = tokio::time::timeout(REAP_TIMEOUT, stderr_task).await;
                    let mut reason = match e {
                        QmpError::MigrationFailed { desc, .. } => desc,
                        e => e.to_string(),
                    };
                    if let Some(line) = telling_line(&stderr_text()) {
                        reason = format!("{reason} (QEMU: {line})");
                    }
                    return Err(TargetError::SnapshotRestore {
                        path: path.to_owned(),
                        reason,
                    });
                }
                Some(begun.elapsed())
            }
        };
        // A power-on loads the region as the last cut left it; a restored
        // snapshot already holds it. A disk is QEMU's own file.
        let storage = match &self.storage {
            Some(Storage::Region(region)) if !matches!(origin, Origin::Snapshot(_)) => Some(region),
            _ => None,
        };
        let gdb_stub = self.catch_faults || storage.is_some();
        let socket = self.dir.path().join(GDB_SOCKET);
        if gdb_stub {
            let prepared = async {
                start_gdb_stub(&qmp, &socket).await?;
                match storage {
                    Some(storage) => storage.load(&socket).await,
                    None => Ok(()),
                }
            };
            if let Err(e) = prepared.await {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = tokio::time::timeout(REAP_TIMEOUT, child.wait()).await;
                return Err(e);
            }
        }
        let fault_catch = if self.catch_faults {
            let armed = tokio::task::spawn_blocking(move || {
                FaultCatch::arm(&socket, !halted, DEBUG_CONNECT_TIMEOUT)
            })
            .await;
            match armed {
                Ok(Ok(catch)) => Some(catch),
                Ok(Err(e)) => {
                    let _ = killpg(pgid, Signal::SIGKILL);
                    return Err(TargetError::FaultCatch(e));
                }
                Err(e) => {
                    let _ = killpg(pgid, Signal::SIGKILL);
                    return Err(TargetError::Crashed(format!(
                        "the lab failed while arming the HardFault catch: {e}"
                    )));
                }
            }
        } else {
            None
        };
        // An armed catch has already resumed the machine through the stub.
        if !halted && fault_catch.is_none() {
            // A recording or replaying QEMU's monitor waits its turn with the
            // recorded CPU: on a busy host its first reply can take seconds.
            let deadline = if self.replay.is_some() {
                REPLAY_QMP_TIMEOUT
            } else {
                QMP_TIMEOUT
            };
            match qmp.execute(qapi::qmp::cont {}, deadline).await {
                // A guest that exits at once can take QEMU down before the
                // reply is sent; the next step sees how it ended.
                Ok(_) | Err(QmpError::Disconnected { .. }) => {}
                Err(e) => {
                    let _ = killpg(pgid, Signal::SIGKILL);
                    return Err(e.into());
                }
            }
        }
        let running = Running {
            child,
            pgid,
            qmp,
            events,
            console: Console::new(serial),
            stderr,
            stderr_task,
            fault_catch,
            gdb_stub,
        };
        self.started = true;
        Ok((running, load))
    }

    /// Ends the running QEMU, if any, and clears its sockets, so that the
    /// next one starts afresh in the same folder.
    async fn stop_for_restart(&mut self) {
        self.shutdown().await;
        self.exit = None;
        for socket in ["serial.sock", "qmp.sock", GDB_SOCKET] {
            let _ = std::fs::remove_file(self.dir.path().join(socket));
        }
    }

    /// Turns QEMU's exit status into a [`GuestExit`], using its stderr.
    async fn classify(running: &mut Running, status: std::process::ExitStatus) -> GuestExit {
        // stderr ends when QEMU does; wait briefly so the message is complete.
        let _ = tokio::time::timeout(REAP_TIMEOUT, &mut running.stderr_task).await;
        let text = String::from_utf8_lossy(
            &running
                .stderr
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_owned();
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => GuestExit::Code(code),
            (None, Some(signal)) => {
                let name = Signal::try_from(signal)
                    .map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned());
                GuestExit::Crashed(match telling_line(&text) {
                    Some(line) => format!("QEMU died with {name}: {line}"),
                    None => format!("QEMU died with {name}"),
                })
            }
            (None, None) => GuestExit::Crashed("QEMU ended without a status".into()),
        }
    }
}

impl Running {
    /// Starts QEMU's gdbstub on `socket` unless it serves already.
    async fn ensure_gdb_stub(&mut self, socket: &Path) -> Result<(), TargetError> {
        if !self.gdb_stub {
            start_gdb_stub(&self.qmp, socket).await?;
            self.gdb_stub = true;
        }
        Ok(())
    }
}

/// Whether the guest's CPUs run (not paused, not held by `-S`). Read
/// untyped: only `running` matters, whatever run state QEMU names.
async fn guest_running(qmp: &QmpClient) -> Result<bool, QmpError> {
    let status = qmp.execute_raw("query-status", None, QMP_TIMEOUT).await?;
    Ok(status.get("running") == Some(&serde_json::Value::Bool(true)))
}

/// How the guest ended, for messages.
fn how_it_ended(exit: &GuestExit) -> String {
    match exit {
        GuestExit::Code(code) => format!("exited with code {code}"),
        GuestExit::Crashed(why) => why.clone(),
    }
}

/// Where a starting QEMU's machine comes from.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    /// Its reset vector: a cold boot, storage as the last cut left it.
    Reset,
    /// A snapshot, storage (a disk) as the snapshot holds it.
    Snapshot(&'a Path),
    /// A snapshot saved before the guest touched its storage, as a
    /// power-on: storage as the last cut left it.
    PowerOn(&'a Path),
}

/// Starts QEMU's gdbstub on a Unix socket at `socket`. It starts on
/// demand, when a debugger or the HardFault catch first needs it: a QEMU
/// that serves no debugger starts faster without it.
async fn start_gdb_stub(qmp: &QmpClient, socket: &Path) -> Result<(), TargetError> {
    let device = format!(
        "unix:{},server=on,wait=off",
        escape(&socket.to_string_lossy())
    );
    let said = qmp.hmp(&format!("gdbserver {device}"), QMP_TIMEOUT).await?;
    if said.contains("Waiting for gdb connection") {
        Ok(())
    } else {
        Err(TargetError::Crashed(format!(
            "QEMU did not start its gdbstub: {}",
            said.trim()
        )))
    }
}

/// Accepts QEMU's connection on `listener`.
async fn accept(listener: &UnixListener, what: &str) -> Result<UnixStream, TargetError> {
    listener
        .accept()
        .await
        .map(|(stream, _)| stream)
        .map_err(|source| TargetError::Io {
            context: format!("QEMU's {what} connection failed"),
            source,
        })
}

/// The most telling line of QEMU's stderr: a `fatal` line if there is one,
/// else the first line that is not a warning, else the first line.
fn telling_line(stderr: &str) -> Option<&str> {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| l.contains("fatal"))
        .or_else(|| lines().find(|l| !l.contains("warning:")))
        .or_else(|| lines().next())
}

#[async_trait]
impl Target for QemuTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Qemu
    }

    async fn boot(&mut self, halted: bool) -> Result<(), TargetError> {
        if self.running.is_some() || self.exit.is_some() {
            return Err(TargetError::AlreadyBooted);
        }
        let (running, _) = self.start(halted, Origin::Reset).await?;
        self.running = Some(running);
        Ok(())
    }

    async fn restart(
        &mut self,
        halted: bool,
        args: Option<Vec<String>>,
    ) -> Result<(), TargetError> {
        self.stop_for_restart().await;
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
        let status = match tokio::time::timeout(grace, running.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                let exit = GuestExit::Crashed(format!("cannot wait for QEMU: {e}"));
                self.exit = Some(exit.clone());
                return Some(exit);
            }
            Err(_) => return None,
        };
        // What QEMU wrote before it ended belongs to the run: the console
        // reads to the end of its stream before the exit is reported.
        if !running.console.wait_closed(REAP_TIMEOUT).await {
            tracing::debug!("the console did not end with QEMU");
        }
        let exit = Self::classify(running, status).await;
        self.exit = Some(exit.clone());
        Some(exit)
    }

    async fn qmp(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, TargetError> {
        Ok(self
            .qmp_client()?
            .execute_raw(command, args, QMP_TIMEOUT)
            .await?)
    }

    async fn monitor(&mut self, command: &str) -> Result<String, TargetError> {
        Ok(self.qmp_client()?.hmp(command, QMP_TIMEOUT).await?)
    }

    async fn qmp_batch(
        &mut self,
        commands: &[(&str, Option<serde_json::Value>)],
    ) -> Result<Vec<serde_json::Value>, TargetError> {
        Ok(self
            .qmp_client()?
            .execute_batch(commands, QMP_TIMEOUT)
            .await?)
    }

    fn take_events(&mut self) -> Vec<QmpEvent> {
        let Some(running) = self.running.as_mut() else {
            return Vec::new();
        };
        std::iter::from_fn(|| running.events.try_next()).collect()
    }

    async fn next_event(&mut self, wait: Duration) -> Result<Option<QmpEvent>, TargetError> {
        let running = self.running.as_mut().ok_or(TargetError::NotBooted)?;
        Ok(tokio::time::timeout(wait, running.events.next())
            .await
            .ok()
            .flatten())
    }

    fn arm_fault_catch(&mut self) -> bool {
        self.catch_faults = true;
        true
    }

    async fn caught_fault(&mut self, wait: Duration) -> Result<Option<CaughtFault>, TargetError> {
        let running = self.running.as_mut().ok_or(TargetError::NotBooted)?;
        let Some(mut catch) = running.fault_catch.take() else {
            return if self.catch_faults {
                // Spent by an earlier catch, or gone with the machine.
                Ok(None)
            } else {
                Err(TargetError::NoFaultCatch)
            };
        };
        let (catch, watch) = tokio::task::spawn_blocking(move || {
            let watch = catch.wait(wait);
            (catch, watch)
        })
        .await
        .map_err(|e| {
            TargetError::Crashed(format!("the lab failed while waiting for a fault: {e}"))
        })?;
        match watch.map_err(TargetError::FaultCatch)? {
            Watch::Caught(fault) => Ok(Some(fault)),
            Watch::Running => {
                running.fault_catch = Some(catch);
                Ok(None)
            }
            Watch::Ended => Ok(None),
        }
    }

    fn attach_storage(&mut self, medium: StorageMedium) -> Result<(), TargetError> {
        if let StorageMedium::Disk(_) = &medium
            && self
                .launch
                .board
                .linux
                .as_ref()
                .and_then(|l| l.disk.as_ref())
                .is_none()
        {
            return Err(TargetError::Storage(format!(
                "board `{}` takes no disk (no `linux.disk` in its profile)",
                self.launch.board.name
            )));
        }
        let storage = Storage::new(medium, self.dir.path())?;
        if let Storage::Disk(copy) = &storage {
            self.launch.disk = Some(copy.clone());
        }
        self.storage = Some(storage);
        Ok(())
    }

    async fn warn_power_fail(&mut self, irq: u32) -> Result<(), TargetError> {
        let socket = self.dir.path().join(GDB_SOCKET);
        let running = self.running.as_mut().ok_or(TargetError::NotBooted)?;
        if running.fault_catch.is_some() {
            return Err(TargetError::PowerFailWarning(
                "it goes through QEMU's gdbstub, which the HardFault catch of `expect-fault` \
                 holds: cut without a warning (mode: abrupt) in this run"
                    .into(),
            ));
        }
        let was_running = guest_running(&running.qmp).await?;
        running.ensure_gdb_stub(&socket).await?;
        // Connecting to the stub pauses the machine; it runs on after.
        power::raise_irq(&socket, irq).await?;
        if was_running {
            running.qmp.execute(qapi::qmp::cont {}, QMP_TIMEOUT).await?;
        }
        Ok(())
    }

    async fn power_cut(&mut self) -> Result<PowerCut, TargetError> {
        let started = tokio::time::Instant::now();
        if let Some(exit) = self.exited(Duration::ZERO).await {
            return Err(TargetError::Storage(format!(
                "the guest had already ended ({}) before the cut: power-cut needs a running \
                 board",
                how_it_ended(&exit)
            )));
        }
        let running = self.running.as_mut().ok_or(TargetError::NotBooted)?;
        // Stopped first, so that the storage is saved as it was at one instant.
        running.qmp.execute(qapi::qmp::stop {}, QMP_TIMEOUT).await?;
        let mut kept_bytes = 0;
        match &self.storage {
            None => {}
            Some(Storage::Region(storage)) => {
                let args = serde_json::json!({
                    "val": storage.region.base,
                    "size": storage.region.size,
                    "filename": storage.file,
                });
                running
                    .qmp
                    .execute_raw("pmemsave", Some(args), QMP_TIMEOUT)
                    .await
                    .map_err(|e| TargetError::Storage(format!("cannot save it at the cut: {e}")))?;
                kept_bytes = storage.region.size;
            }
            // `stop` has completed QEMU's writes into the file; what the
            // guest had not yet written is lost with it.
            Some(Storage::Disk(file)) => {
                kept_bytes = std::fs::metadata(file).map_or(0, |m| m.len());
            }
        }
        self.stop_for_restart().await;
        Ok(PowerCut {
            kept_bytes,
            duration: started.elapsed(),
        })
    }

    async fn power_on(&mut self, from: Option<&Path>) -> Result<(), TargetError> {
        if self.running.is_some() && self.exited(Duration::ZERO).await.is_none() {
            return Err(TargetError::PoweredOn);
        }
        let origin = match from {
            None => Origin::Reset,
            Some(path) => {
                snapshot::check_file(path).map_err(|reason| TargetError::SnapshotRestore {
                    path: path.to_owned(),
                    reason,
                })?;
                Origin::PowerOn(path)
            }
        };
        self.stop_for_restart().await;
        let (running, _) = self.start(false, origin).await?;
        self.running = Some(running);
        Ok(())
    }

    async fn save_snapshot(&mut self, path: &Path) -> Result<SnapshotSaved, TargetError> {
        let failed = |reason: String| TargetError::SnapshotSave {
            path: path.to_owned(),
            reason,
        };
        if let Some(exit) = self.exited(Duration::ZERO).await {
            return Err(failed(format!(
                "the guest has already ended ({}): save it before it exits",
                how_it_ended(&exit)
            )));
        }
        let qmp = self.qmp_client()?.clone();
        let started = tokio::time::Instant::now();
        let was_running = guest_running(&qmp).await?;
        if was_running {
            qmp.execute(qapi::qmp::stop {}, QMP_TIMEOUT).await?;
        }
        let partial = snapshot::partial_path(path);
        let quiet = (self.launch.board.snapshot.as_ref()).map_or(&[][..], |s| &s.quiet[..]);
        let saved = async {
            snapshot::pause_quiet(&qmp, quiet, was_running).await?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create its folder: {e}"))?;
            }
            qmp.migrate_to_file(&partial, SNAPSHOT_TIMEOUT)
                .await
                .map_err(|e| match e {
                    QmpError::MigrationFailed { desc, .. } => desc,
                    e => e.to_string(),
                })?;
            // The migration has flushed the disk and the guest is paused:
            // its copy goes beside the snapshot before the snapshot is in
            // place, so no snapshot is ever without its disk.
            if let Some(Storage::Disk(disk)) = &self.storage {
                power::copy_sparse(disk, &power::disk_path(path))
                    .map_err(|e| format!("cannot copy its disk {}: {e}", disk.display()))?;
            }
            std::fs::rename(&partial, path).map_err(|e| format!("cannot rename it: {e}"))?;
            SnapshotFile::of(path).map_err(|e| format!("cannot read its size: {e}"))
        }
        .await;
        let duration = started.elapsed();
        let file = match saved {
            Ok(file) => file,
            Err(reason) => {
                // A migration still running (a timeout) must end before the
                // guest can run again.
                let _ = qmp.execute_raw("migrate_cancel", None, QMP_TIMEOUT).await;
                let _ = std::fs::remove_file(&partial);
                if was_running {
                    let _ = qmp.execute(qapi::qmp::cont {}, QMP_TIMEOUT).await;
                }
                return Err(failed(reason));
            }
        };
        if was_running {
            qmp.execute(qapi::qmp::cont {}, QMP_TIMEOUT).await?;
        }
        Ok(SnapshotSaved {
            path: path.to_owned(),
            file,
            duration,
            resumed: was_running,
        })
    }

    async fn restore_snapshot(
        &mut self,
        path: &Path,
        halted: bool,
    ) -> Result<SnapshotRestored, TargetError> {
        // A file that cannot be a snapshot is refused before the running
        // machine is stopped for it.
        let failed = |reason: String| TargetError::SnapshotRestore {
            path: path.to_owned(),
            reason,
        };
        let file = snapshot::check_file(path).map_err(failed)?;
        let saved_disk = power::disk_path(path);
        if let Some(Storage::Disk(_)) = &self.storage
            && !saved_disk.is_file()
        {
            return Err(failed(format!(
                "this run has a disk, and the snapshot's ({}) is missing: it was saved \
                 without `storage:`, or the file was removed; save it again",
                saved_disk.display()
            )));
        }
        let started = tokio::time::Instant::now();
        self.stop_for_restart().await;
        // The disk as it was at the save, in place of the run's, before
        // the new QEMU opens it.
        if let Some(Storage::Disk(disk)) = &self.storage {
            power::copy_sparse(&saved_disk, disk).map_err(|e| {
                failed(format!(
                    "cannot copy its disk {}: {e}",
                    saved_disk.display()
                ))
            })?;
        }
        let (running, load) = self.start(halted, Origin::Snapshot(path)).await?;
        self.running = Some(running);
        Ok(SnapshotRestored {
            path: path.to_owned(),
            file,
            duration: started.elapsed(),
            load: load.unwrap_or_default(),
        })
    }

    async fn debug_connector(&mut self) -> Result<BackendFactory, TargetError> {
        let socket = self.dir.path().join(GDB_SOCKET);
        let running = self.running.as_mut().ok_or(TargetError::NotBooted)?;
        running.ensure_gdb_stub(&socket).await?;
        Ok(Box::new(move || {
            let client = GdbClient::connect_unix(&socket, DEBUG_CONNECT_TIMEOUT)?;
            Ok(Box::new(client) as Box<dyn DebugBackend>)
        }))
    }

    async fn shutdown(&mut self) {
        if let Some(mut running) = self.running.take() {
            if self.exit.is_none()
                && let Some(replay) = &self.replay
                && replay.mode == ReplayMode::Record
                && quit(&mut running).await
            {
                self.exit = Some(GuestExit::Code(0));
            }
            if self.exit.is_none() {
                let _ = killpg(running.pgid, Signal::SIGKILL);
            }
            let _ = tokio::time::timeout(REAP_TIMEOUT, running.child.wait()).await;
            running.stderr_task.abort();
        }
    }
}

impl Drop for QemuTarget {
    fn drop(&mut self) {
        if let (Some(running), None) = (&self.running, &self.exit) {
            let _ = killpg(running.pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::BoardCatalog;

    fn launch(clock: Clock, args: &[&str]) -> QemuLaunch {
        launch_on("mps2-an385", clock, args)
    }

    fn launch_on(board: &str, clock: Clock, args: &[&str]) -> QemuLaunch {
        let boards = BoardCatalog::builtin();
        QemuLaunch {
            board: boards.get(board).unwrap().unwrap().clone(),
            image: BootImage::Elf(PathBuf::from("/img/hello.elf")),
            clock,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            disk: None,
        }
    }

    fn joined(argv: Vec<OsString>) -> String {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_virtual_clock_halted_boot_with_arguments() {
        let argv = launch(Clock::Virtual, &["a,b", "c"]).command_line(Path::new("/run/x"));
        insta::assert_snapshot!(joined(argv), @"-M mps2-an385 -cpu cortex-m3 -m 16M -nodefaults -display none -monitor none -chardev socket,id=serial0,path=/run/x/serial.sock -serial chardev:serial0 -chardev socket,id=qmp0,path=/run/x/qmp.sock -mon chardev=qmp0,mode=control -kernel /img/hello.elf -semihosting-config enable=on,target=native,arg=hello.elf,arg=a,,b,arg=c -icount shift=7,align=off,sleep=off -S");
    }

    #[test]
    fn a_linux_boot_appends_the_scenario_args_to_the_board_cmdline() {
        let boards = BoardCatalog::builtin();
        let launch = QemuLaunch {
            board: boards.get("raspi3b").unwrap().unwrap().clone(),
            image: BootImage::Linux {
                kernel: PathBuf::from("/b/Image"),
                dtb: Some(PathBuf::from("/b/dtbs/pi.dtb")),
                initrd: Some(PathBuf::from("/b/initrd.cpio.gz")),
                disk: Some(PathBuf::from("/b/disk.img")),
            },
            clock: Clock::Virtual,
            args: vec!["lab.run=/bin/hello".into(), "--".into(), "x".into()],
            env: BTreeMap::new(),
            disk: None,
        };
        let argv = launch.command_line(Path::new("/r"));
        let at = argv.iter().position(|a| a == "-append").unwrap();
        assert_eq!(
            argv[at + 1],
            "console=ttyAMA0 rdinit=/init quiet lab.run=/bin/hello -- x"
        );
        let line = joined(argv);
        assert!(
            line.contains("-kernel /b/Image -dtb /b/dtbs/pi.dtb -initrd /b/initrd.cpio.gz"),
            "{line}"
        );
        assert!(
            line.contains("-icount shift=0,align=off,sleep=off"),
            "{line}"
        );
        assert!(!line.contains("semihosting"), "{line}");
        assert!(
            !line.contains("-drive"),
            "the image's disk is attached only with `storage:`: {line}"
        );
    }

    #[test]
    fn a_disk_is_attached_as_the_board_profile_says() {
        let boards = BoardCatalog::builtin();
        let line = |board: &str| {
            let launch = QemuLaunch {
                board: boards.get(board).unwrap().unwrap().clone(),
                image: BootImage::Linux {
                    kernel: PathBuf::from("/b/Image"),
                    dtb: None,
                    initrd: None,
                    disk: Some(PathBuf::from("/b/disk.img")),
                },
                clock: Clock::Wall,
                args: vec!["lab.run=/bin/sh".into(), "--".into(), "-c".into()],
                env: BTreeMap::new(),
                disk: Some(PathBuf::from("/run/a,b/disk.img")),
            };
            joined(launch.command_line(Path::new("/r")))
        };
        let virt = line("virt-a53");
        assert!(
            virt.contains(
                "-drive if=none,id=storage,format=raw,file=/run/a,,b/disk.img -device \
                 virtio-blk-device,drive=storage"
            ),
            "{virt}"
        );
        assert!(
            virt.contains("quiet lab.disk=/dev/vda lab.run=/bin/sh -- -c"),
            "{virt}"
        );
        let pi = line("raspi3b");
        assert!(
            pi.contains("-drive if=sd,format=raw,file=/run/a,,b/disk.img"),
            "{pi}"
        );
        assert!(pi.contains("lab.disk=/dev/mmcblk0 lab.run"), "{pi}");
    }

    #[test]
    fn the_console_lands_on_the_boards_serial_index() {
        let line =
            joined(launch_on("netduinoplus2", Clock::Wall, &[]).command_line(Path::new("/r")));
        assert!(
            line.contains(
                "-monitor none -chardev null,id=unused0 -serial chardev:unused0 -chardev null,id=unused1 -serial chardev:unused1 -chardev null,id=unused2 -serial chardev:unused2 -chardev null,id=unused3 -serial chardev:unused3 -chardev null,id=unused4 -serial chardev:unused4 -chardev socket,id=serial0,path=/r/serial.sock -serial chardev:serial0 -chardev"
            ),
            "USART6 is QEMU's sixth serial port: {line}"
        );
        assert!(
            line.starts_with("-M netduinoplus2 -cpu cortex-m4 "),
            "{line}"
        );
    }

    #[test]
    fn a_wall_clock_boot_has_no_icount() {
        let line = joined(launch(Clock::Wall, &[]).command_line(Path::new("/r")));
        assert!(!line.contains("-icount"), "{line}");
        assert!(line.ends_with("arg=hello.elf -S"), "{line}");
    }
}
