//! The bridge's cost, side by side against one QEMU: a register read's
//! round trip and 64 KiB memory reads, directly on QEMU's gdbstub and
//! through the bridge, with the same client; then gdb-multiarch itself.
//!
//! `cargo bench --bench gdb_bridge`

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use lab::gdb::{BridgeServer, DebugBackend, GdbClient, Transport};

const REG_ROUNDS: usize = 2000;
const READ_REPEATS: usize = 40;
const TIMEOUT: Duration = Duration::from_secs(5);
const READ_LEN: usize = 64 * 1024;
/// Cortex-M's pc register number.
const PC: usize = 15;
/// Code RAM: readable and not cached by gdb (no ELF loaded).
const READ_ADDR: u64 = 0;

fn main() {
    let elf = firmware();
    let qemu = Qemu::start(&elf);
    let sock = qemu.sock.clone();

    // (1) direct
    let mut direct = GdbClient::connect_unix(&sock, TIMEOUT).expect("QEMU's gdbstub");
    let direct_reg = register_rtt(&mut direct);
    let direct_read = read_64k(&mut direct);
    drop(direct);

    // (2) through the bridge
    let server = BridgeServer::start(
        0,
        Box::new(move || {
            Ok(Box::new(GdbClient::connect_unix(&sock, TIMEOUT)?) as Box<dyn DebugBackend>)
        }),
    )
    .expect("bridge");
    let addr = server.local_addr();
    let mut bridged = GdbClient::new(TcpStream::connect(addr).expect("bridge")).expect("bridge");
    let bridge_reg = register_rtt(&mut bridged);
    let bridge_read = read_64k(&mut bridged);
    drop(bridged);

    // (3) gdb-multiarch, timed inside gdb
    std::thread::sleep(Duration::from_millis(100));
    let gdb_bridge = gdb_read_64k(&format!("{addr}"));
    server.shutdown();
    std::thread::sleep(Duration::from_millis(100));
    let gdb_direct = gdb_read_64k(&format!("{}", qemu.sock.display()));

    println!();
    println!(
        "{:<36} {:>12} {:>12} {:>8}",
        "", "direct", "bridge", "ratio"
    );
    row("`p` pc round trip (median)", direct_reg, bridge_reg);
    row("64 KiB read, GdbClient (median)", direct_read, bridge_read);
    row(
        "64 KiB read, gdb-multiarch (median)",
        gdb_direct,
        gdb_bridge,
    );
    println!(
        "added per register packet: {:.1} µs; 64 KiB throughput direct {:.1} MB/s, bridge {:.1} MB/s ({:.0}%)",
        (bridge_reg.as_secs_f64() - direct_reg.as_secs_f64()) * 1e6,
        mbps(direct_read),
        mbps(bridge_read),
        100.0 * direct_read.as_secs_f64() / bridge_read.as_secs_f64()
    );
}

fn row(what: &str, direct: Duration, bridge: Duration) {
    println!(
        "{what:<36} {:>12} {:>12} {:>7.2}x",
        format!("{:.1} µs", direct.as_secs_f64() * 1e6),
        format!("{:.1} µs", bridge.as_secs_f64() * 1e6),
        bridge.as_secs_f64() / direct.as_secs_f64()
    );
}

fn mbps(d: Duration) -> f64 {
    READ_LEN as f64 / d.as_secs_f64() / 1e6
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median round trip of reading pc (`p f`).
fn register_rtt(client: &mut GdbClient<impl Transport>) -> Duration {
    for _ in 0..50 {
        client.read_register(PC).expect("p");
    }
    median(
        (0..REG_ROUNDS)
            .map(|_| {
                let t = Instant::now();
                client.read_register(PC).expect("p");
                t.elapsed()
            })
            .collect(),
    )
}

/// Median time of reading 64 KiB, in requests of the stub's packet size.
fn read_64k(client: &mut GdbClient<impl Transport>) -> Duration {
    let mut buf = vec![0; READ_LEN];
    let mut round = || {
        let t = Instant::now();
        assert_eq!(
            client.read_memory(READ_ADDR, &mut buf).expect("m"),
            READ_LEN
        );
        t.elapsed()
    };
    round();
    median((0..READ_REPEATS).map(|_| round()).collect())
}

/// Median time of `read_memory(0, 64 KiB)` inside gdb's python.
fn gdb_read_64k(target: &str) -> Duration {
    let script = format!(
        "import time, gdb\n\
         inf = gdb.selected_inferior()\n\
         ts = []\n\
         for i in range({}):\n\
         \x20   t = time.perf_counter(); inf.read_memory({READ_ADDR}, {READ_LEN}); ts.append(time.perf_counter() - t)\n\
         ts.sort()\n\
         print('MEDIAN', ts[len(ts) // 2])\n",
        READ_REPEATS + 1
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let py = dir.path().join("t.py");
    std::fs::write(&py, script).expect("script");
    let out = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", "set architecture armv7e-m", "-ex"])
        .arg(format!("target remote {target}"))
        .args(["-ex", &format!("source {}", py.display()), "-ex", "detach"])
        .output()
        .expect("gdb-multiarch");
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MEDIAN "))
        .unwrap_or_else(|| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
        .parse()
        .expect("seconds");
    Duration::from_secs_f64(secs)
}

struct Qemu {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Qemu {
    fn start(elf: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("gdb.sock");
        let child = Command::new("qemu-system-arm")
            .args([
                "-M",
                "mps2-an385",
                "-cpu",
                "cortex-m3",
                "-m",
                "16M",
                "-nodefaults",
            ])
            .args(["-display", "none", "-monitor", "none", "-S", "-kernel"])
            .arg(elf)
            .args([
                "-semihosting-config",
                "enable=on,target=native,arg=debuggee,arg=spin",
            ])
            .arg("-chardev")
            .arg(format!(
                "socket,id=gdb0,path={},server=on,wait=off",
                sock.display()
            ))
            .args(["-gdb", "chardev:gdb0"])
            .spawn()
            .expect("qemu-system-arm");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "QEMU's gdb socket did not appear"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Qemu {
            child,
            sock,
            _dir: dir,
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The debuggee firmware for mps2-an385, built by the lab.
fn firmware() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .env("LAB_ROOT", &root)
        .args([
            "images",
            "build",
            "cortex-m/debuggee",
            "--board",
            "mps2-an385",
        ])
        .output()
        .expect("lab images build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.join("build/images/mps2-an385/cortex-m/debuggee/debuggee.elf")
}
