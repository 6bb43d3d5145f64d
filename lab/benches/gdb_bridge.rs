//! The bridge's cost, side by side against one QEMU: a register read's
//! round trip (`p`) and 64 KiB memory reads, directly on QEMU's gdbstub and
//! through the bridge, first with the lab's GdbClient, then with
//! gdb-multiarch itself (timed inside gdb's python). Direct and bridged
//! sessions alternate over several rounds so that load changes hit both.
//!
//! `cargo bench --bench gdb_bridge`

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use lab::gdb::{BridgeServer, DebugBackend, GdbClient, Transport};

/// Alternating rounds of direct and bridged sessions.
const ROUNDS: usize = 5;
/// `p` round trips per session.
const REG_ROUNDS: usize = 400;
/// 64 KiB reads per session.
const READ_REPEATS: usize = 12;
const TIMEOUT: Duration = Duration::from_secs(5);
const READ_LEN: usize = 64 * 1024;
/// Cortex-M's pc register number.
const PC: usize = 15;
/// Code RAM: readable and not cached by gdb (no ELF loaded).
const READ_ADDR: u64 = 0;
/// The promises of "Debug attach".
const MIN_THROUGHPUT: f64 = 0.90;
const MAX_ADDED_US: f64 = 50.0;

#[derive(Default)]
struct Samples {
    reg: Vec<Duration>,
    read: Vec<Duration>,
}

impl Samples {
    fn add(&mut self, (reg, read): (Vec<Duration>, Vec<Duration>)) {
        self.reg.extend(reg);
        self.read.extend(read);
    }
}

fn main() {
    let elf = firmware();
    let qemu = Qemu::start(&elf);
    let sock = qemu.sock.clone();
    let backend_sock = sock.clone();
    let server = BridgeServer::start(
        0,
        Box::new(move || {
            Ok(Box::new(GdbClient::connect_unix(&backend_sock, TIMEOUT)?) as Box<dyn DebugBackend>)
        }),
    )
    .expect("bridge");
    let addr = server.local_addr();

    let mut client_direct1 = Samples::default();
    let mut client_direct = Samples::default();
    let mut client_bridge = Samples::default();
    let mut gdb_direct = Samples::default();
    let mut gdb_bridge = Samples::default();
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        let mut direct = GdbClient::connect_unix(&sock, TIMEOUT).expect("QEMU's gdbstub");
        direct.set_read_window(1);
        client_direct1.add(measure_client(&mut direct));
        direct.set_read_window(lab::gdb::DEFAULT_READ_WINDOW);
        client_direct.add(measure_client(&mut direct));
        drop(direct);

        let stream = TcpStream::connect(addr).expect("bridge");
        let mut bridged = GdbClient::new(stream).expect("bridge");
        client_bridge.add(measure_client(&mut bridged));
        drop(bridged);
        // The bridge lets go of QEMU when its session thread notices.
        std::thread::sleep(Duration::from_millis(50));

        gdb_direct.add(measure_gdb(&sock.display().to_string()));
        gdb_bridge.add(measure_gdb(&addr.to_string()));
    }
    server.shutdown();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "{ROUNDS} alternating rounds; per round and client: {REG_ROUNDS} `p` round trips, {READ_REPEATS} reads of 64 KiB at {READ_ADDR:#x}. loadavg: {}",
        load.trim()
    );
    println!(
        "{:<46} {:>11} {:>11} {:>11} {:>8}",
        "", "direct", "bridge", "added", "ratio"
    );
    let c_reg = row(
        "`p` pc round trip, GdbClient",
        &client_direct.reg,
        &client_bridge.reg,
    );
    let c_read1 = row(
        "64 KiB read, GdbClient (direct: window 1)",
        &client_direct1.read,
        &client_bridge.read,
    );
    let c_read = row(
        "64 KiB read, GdbClient (direct: window 8)",
        &client_direct.read,
        &client_bridge.read,
    );
    let g_reg = row(
        "`p` pc round trip, gdb-multiarch (maint packet)",
        &gdb_direct.reg,
        &gdb_bridge.reg,
    );
    let g_read = row(
        "64 KiB read, gdb-multiarch (read_memory)",
        &gdb_direct.read,
        &gdb_bridge.read,
    );
    println!();
    verdict("GdbClient", c_reg, c_read);
    println!(
        "  (GdbClient against the old one-at-a-time direct client: throughput {:.0}% of direct)",
        100.0 * c_read1.0 / c_read1.1
    );
    verdict("gdb-multiarch (the real user-facing client)", g_reg, g_read);
}

/// Prints medians and the ratio bridge/direct; returns the medians in seconds.
fn row(what: &str, direct: &[Duration], bridge: &[Duration]) -> (f64, f64) {
    let d = median(direct).as_secs_f64();
    let b = median(bridge).as_secs_f64();
    println!(
        "{what:<46} {:>11} {:>11} {:>11} {:>7.2}x   (n={}/{})",
        us(d),
        us(b),
        us(b - d),
        b / d,
        direct.len(),
        bridge.len()
    );
    (d, b)
}

fn verdict(client: &str, reg: (f64, f64), read: (f64, f64)) {
    let added = (reg.1 - reg.0) * 1e6;
    let share = read.0 / read.1;
    println!(
        "{} {client}: added per packet {added:.1} µs (promise < {MAX_ADDED_US} µs)",
        pass(added < MAX_ADDED_US)
    );
    println!(
        "{} {client}: 64 KiB throughput {:.1} MB/s direct, {:.1} MB/s bridge = {:.0}% of direct (promise >= {:.0}%)",
        pass(share >= MIN_THROUGHPUT),
        mbps(read.0),
        mbps(read.1),
        100.0 * share,
        100.0 * MIN_THROUGHPUT
    );
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn us(secs: f64) -> String {
    format!("{:.1} µs", secs * 1e6)
}

fn mbps(secs: f64) -> f64 {
    READ_LEN as f64 / secs / 1e6
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// `p` round trips and 64 KiB reads with the lab's client.
fn measure_client(client: &mut GdbClient<impl Transport>) -> (Vec<Duration>, Vec<Duration>) {
    for _ in 0..20 {
        client.read_register(PC).expect("p");
    }
    let reg = (0..REG_ROUNDS)
        .map(|_| {
            let t = Instant::now();
            client.read_register(PC).expect("p");
            t.elapsed()
        })
        .collect();
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
    let read = (0..READ_REPEATS).map(|_| round()).collect();
    (reg, read)
}

/// `p` round trips (`maint packet pf`, which bypasses gdb's register cache)
/// and `read_memory` of 64 KiB, timed inside gdb's python.
fn measure_gdb(target: &str) -> (Vec<Duration>, Vec<Duration>) {
    let script = format!(
        "import time, gdb\n\
         inf = gdb.selected_inferior()\n\
         for i in range(20): gdb.execute('maint packet pf', to_string=True)\n\
         for i in range({REG_ROUNDS}):\n\
         \x20   t = time.perf_counter(); gdb.execute('maint packet pf', to_string=True); print('REG', time.perf_counter() - t)\n\
         inf.read_memory({READ_ADDR}, {READ_LEN})\n\
         for i in range({READ_REPEATS}):\n\
         \x20   t = time.perf_counter(); inf.read_memory({READ_ADDR}, {READ_LEN}); print('READ', time.perf_counter() - t)\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let py = dir.path().join("t.py");
    std::fs::write(&py, script).expect("script");
    let out = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", "set architecture armv7e-m"])
        .args(["-ex", "set code-cache off", "-ex", "set stack-cache off"])
        .arg("-ex")
        .arg(format!("target remote {target}"))
        .args([
            "-ex",
            &format!("source {}", py.display()),
            "-ex",
            "disconnect",
        ])
        .output()
        .expect("gdb-multiarch");
    let text = String::from_utf8_lossy(&out.stdout);
    let take = |tag: &str| -> Vec<Duration> {
        text.lines()
            .filter_map(|l| l.strip_prefix(tag))
            .map(|s| Duration::from_secs_f64(s.trim().parse().expect("seconds")))
            .collect()
    };
    let (reg, read) = (take("REG "), take("READ "));
    assert!(
        reg.len() == REG_ROUNDS && read.len() == READ_REPEATS,
        "gdb on {target}:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (reg, read)
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
