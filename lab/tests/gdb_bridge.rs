//! The bridge end to end: real gdb-multiarch, through the bridge, against
//! QEMU's gdbstub running the `debuggee` firmware.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lab::gdb::{BackendError, BreakKind, BridgeServer, DebugBackend, GdbClient, StopReason};

const BOARD: &str = "mps2-an385";

/// QEMU paused at reset with its gdbstub on a unix socket, and a bridge in
/// front of it; QEMU is killed on drop.
struct Rig {
    qemu: common::HaltedQemu,
    elf: PathBuf,
    server: Option<BridgeServer>,
}

impl Rig {
    /// Starts QEMU with the debuggee's arguments and a bridge on a free port.
    fn start(args: &[&str]) -> Self {
        let qemu = common::HaltedQemu::start(BOARD, args);
        let sock = qemu.sock.clone();
        let server = BridgeServer::start(
            0,
            Box::new(move || {
                let client = GdbClient::connect_unix(&sock, Duration::from_secs(5))?;
                Ok(Box::new(client) as Box<dyn DebugBackend>)
            }),
        )
        .unwrap();
        Self {
            elf: qemu.elf.clone(),
            qemu,
            server: Some(server),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    /// A batch gdb connected through the bridge, running `commands`.
    fn gdb_command(&self, commands: &[&str]) -> Command {
        gdb_command(&self.elf, self.addr(), commands)
    }

    /// Runs a batch gdb to its end; stdout then stderr.
    fn gdb(&self, commands: &[&str]) -> String {
        output(
            self.gdb_command(commands)
                .output()
                .expect("gdb-multiarch runs"),
        )
    }

    /// QEMU's exit status, waiting up to `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.qemu.wait_exit(timeout)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The bridge goes first: its session must not outlive QEMU.
        drop(self.server.take());
    }
}

fn gdb_command(elf: &Path, addr: SocketAddr, commands: &[&str]) -> Command {
    let mut cmd = Command::new("gdb-multiarch");
    cmd.args(["-nx", "-batch"])
        .arg(elf)
        .arg("-ex")
        .arg(format!("target remote {addr}"));
    for c in commands {
        cmd.args(["-ex", c]);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn output(out: std::process::Output) -> String {
    format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value gdb printed for the last `print` (`$N = value`).
fn last_value(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.to_string()))
        .next_back()
        .unwrap_or_else(|| panic!("no value printed:\n{text}"))
}

/// gdb's python: Ctrl-C (`interrupt`) from a timer while `continue` blocks.
const INTERRUPT_SOON: &str = "python import threading; threading.Timer(0.3, lambda: gdb.post_event(lambda: gdb.execute('interrupt'))).start()";

#[test]
fn break_at_main_shows_m_profile_registers() {
    let rig = Rig::start(&[]);
    let out = rig.gdb(&["break main", "continue", "info registers"]);
    assert!(out.contains("Breakpoint 1, main"), "{out}");
    for reg in ["pc ", "sp ", "xpsr", "msp", "psp", "control"] {
        assert!(out.contains(reg), "no {reg}:\n{out}");
    }
    assert!(!out.contains("not available"), "{out}");
}

#[test]
fn print_and_set_a_global_choose_the_exit_code() {
    let mut rig = Rig::start(&[]);
    let out = rig.gdb(&[
        "break main",
        "continue",
        "print lab_exit_code",
        "set var lab_exit_code=42",
        "print lab_exit_code",
        "delete",
        "continue",
    ]);
    assert!(out.contains("$1 = 0"), "{out}");
    assert!(out.contains("$2 = 42"), "{out}");
    assert!(out.contains("exited with code 052"), "{out}");
    let status = rig.wait_exit(Duration::from_secs(5)).expect("QEMU exits");
    assert_eq!(status.code(), Some(42));
}

#[test]
fn stepi_moves_the_pc() {
    let rig = Rig::start(&[]);
    let out = rig.gdb(&[
        "break main",
        "continue",
        "print/x $pc",
        "stepi",
        "print/x $pc",
    ]);
    let pcs: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(" = 0x").map(|(_, v)| v))
        .collect();
    assert_eq!(pcs.len(), 2, "{out}");
    assert_ne!(pcs[0], pcs[1], "{out}");
}

#[test]
fn ctrl_c_stops_a_spinning_target() {
    let rig = Rig::start(&["spin"]);
    let out = rig.gdb(&[INTERRUPT_SOON, "continue", "print lab_counter"]);
    assert!(out.contains("received signal SIGINT"), "{out}");
    let counter: u64 = last_value(&out).parse().unwrap();
    assert!(counter > 0, "{out}");
}

#[test]
fn a_write_watchpoint_fires() {
    let rig = Rig::start(&[]);
    let out = rig.gdb(&["watch lab_counter", "continue", "print lab_counter"]);
    assert!(out.contains("Hardware watchpoint 1: lab_counter"), "{out}");
    assert!(out.contains("Old value = 0"), "{out}");
    assert!(out.contains("work ("), "stopped in work():\n{out}");
}

#[test]
fn detach_and_kill_leave_the_target_for_the_next_gdb() {
    let rig = Rig::start(&["spin"]);
    // gdb detaches at the end of a batch: the target runs on.
    let first = rig.gdb(&["print lab_counter"]);
    assert!(first.contains("detached"), "{first}");
    std::thread::sleep(Duration::from_millis(100));
    let second = rig.gdb(&["print lab_counter", "kill"]);
    let (a, b): (u64, u64) = (
        last_value(&first).parse().unwrap(),
        last_value(&second).parse().unwrap(),
    );
    assert!(b > a, "the target ran between the sessions: {a} then {b}");
    // After `kill` the target stays halted: two looks see the same count.
    let third = rig.gdb(&["print lab_counter", "kill"]);
    let fourth = rig.gdb(&["print lab_counter", "kill"]);
    assert_eq!(last_value(&third), last_value(&fourth), "{third}\n{fourth}");
}

#[test]
fn a_second_gdb_is_refused_while_one_is_attached() {
    let rig = Rig::start(&["spin"]);
    let first = rig
        .gdb_command(&["shell sleep 1.5", "print/x $pc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let second = rig.gdb(&["print/x $pc"]);
    assert!(
        second.contains("Remote failure reply: E.the target is busy: another gdb session"),
        "{second}"
    );
    let first = output(first.wait_with_output().unwrap());
    assert!(
        last_value(&first).starts_with("0x"),
        "the first session is unaffected:\n{first}"
    );
    assert!(first.contains("detached"), "{first}");
}

#[test]
fn a_client_that_hangs_up_mid_packet_leaves_the_bridge_usable() {
    let rig = Rig::start(&["spin"]);
    let mut raw = TcpStream::connect(rig.addr()).unwrap();
    raw.write_all(b"+$qSupported:multipro").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(raw);
    let out = rig.gdb(&["print/x $pc"]);
    assert!(out.contains("Reset_Handler ()"), "{out}");
    assert!(last_value(&out).starts_with("0x"), "{out}");
}

#[test]
fn shutdown_disconnects_gdb_and_stops_accepting() {
    let mut rig = Rig::start(&["spin"]);
    let gdb = rig
        .gdb_command(&[
            INTERRUPT_SOON,
            "continue",
            "echo LAB-IDLE\\n",
            "shell sleep 5",
            "print lab_spin",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Shut down once gdb is attached and idle (in `shell sleep 5`), however
    // long a loaded machine takes to get it there.
    let mut gdb = gdb;
    let stdout = gdb.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.contains("LAB-IDLE") {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => out.push_str(&(line + "\n")),
            Err(e) => panic!("gdb did not stop and go idle ({e}):\n{out}"),
        }
    }
    let addr = rig.addr();
    let started = Instant::now();
    rig.server.take().unwrap().shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
    let rest = gdb.wait_with_output().unwrap();
    // The reader ends at gdb's end of output, which closes the channel.
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(5)) {
        out.push_str(&(line + "\n"));
    }
    out.push_str(&output(rest));
    assert!(out.contains("Remote connection closed"), "{out}");
}

/// A backend with zeroed registers and memory whose connection breaks on
/// reads at [`FakeBackend::BROKEN`]: the only way to fail a backend mid-session.
struct FakeBackend;

impl FakeBackend {
    const BROKEN: u64 = 0x1000;
    const XML: &str = r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>arm</architecture><feature name="org.gnu.gdb.arm.m-profile"><reg name="r0" bitsize="32"/><reg name="r1" bitsize="32"/><reg name="r2" bitsize="32"/><reg name="r3" bitsize="32"/><reg name="r4" bitsize="32"/><reg name="r5" bitsize="32"/><reg name="r6" bitsize="32"/><reg name="r7" bitsize="32"/><reg name="r8" bitsize="32"/><reg name="r9" bitsize="32"/><reg name="r10" bitsize="32"/><reg name="r11" bitsize="32"/><reg name="r12" bitsize="32"/><reg name="sp" bitsize="32" type="data_ptr"/><reg name="lr" bitsize="32"/><reg name="pc" bitsize="32" type="code_ptr"/><reg name="xpsr" bitsize="32" regnum="25"/></feature></target>"#;
}

impl DebugBackend for FakeBackend {
    fn target_xml(&mut self, annex: &str) -> Result<Vec<u8>, BackendError> {
        match annex {
            "target.xml" => Ok(Self::XML.as_bytes().to_vec()),
            other => Err(BackendError::Unsupported(other.into())),
        }
    }
    fn read_registers(&mut self) -> Result<Vec<u8>, BackendError> {
        Ok(vec![0; 17 * 4])
    }
    fn write_registers(&mut self, _: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }
    fn read_register(&mut self, _: usize) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(Some(vec![0; 4]))
    }
    fn write_register(&mut self, _: usize, _: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, BackendError> {
        if (addr..addr + buf.len() as u64).contains(&Self::BROKEN) {
            return Err(BackendError::Connection("the fake broke".into()));
        }
        buf.fill(0);
        Ok(buf.len())
    }
    fn write_memory(&mut self, _: u64, _: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }
    fn insert_break(&mut self, _: BreakKind, _: u64, _: u64) -> Result<bool, BackendError> {
        Ok(true)
    }
    fn remove_break(&mut self, _: BreakKind, _: u64, _: u64) -> Result<bool, BackendError> {
        Ok(true)
    }
    fn resume(&mut self, _: bool) -> Result<(), BackendError> {
        Ok(())
    }
    fn wait_stop(&mut self, _: Duration) -> Result<Option<StopReason>, BackendError> {
        Ok(Some(StopReason::Signal {
            signal: 5,
            watch: None,
            breakpoint: None,
        }))
    }
    fn interrupt(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    fn halt_reason(&mut self) -> Result<StopReason, BackendError> {
        self.wait_stop(Duration::ZERO).map(Option::unwrap)
    }
    fn detach(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[test]
fn a_backend_that_fails_mid_session_ends_only_that_session() {
    let server = BridgeServer::start(
        0,
        Box::new(|| Ok(Box::new(FakeBackend) as Box<dyn DebugBackend>)),
    )
    .unwrap();
    let gdb = |commands: &[&str]| {
        let mut cmd = Command::new("gdb-multiarch");
        cmd.args(["-nx", "-batch", "-ex"])
            .arg(format!("target remote {}", server.local_addr()));
        for c in commands {
            cmd.args(["-ex", c]);
        }
        output(cmd.stdin(Stdio::null()).output().unwrap())
    };
    let broken = gdb(&["x/4xw 0x1000", "x/4xw 0"]);
    assert!(broken.contains("Remote connection closed"), "{broken}");
    let next = gdb(&["x/2xw 0x2000"]);
    assert!(next.contains("0x2000:\t0x00000000\t0x00000000"), "{next}");
}
