//! The bridge's cost as an A/B test: two identical QEMUs, halted on the same
//! firmware, one reached directly on its gdbstub (A) and one through the
//! bridge (B). Each client holds both sessions at once and alternates short
//! batches between them, so that whatever else the machine is doing hits A
//! and B alike; the added cost is the median of the per-batch differences.
//! Measured: a register read's round trip (`p`) and 64 KiB memory reads,
//! with gdb-multiarch (the client users attach, timed inside its python,
//! one inferior per session) and with the lab's own GdbClient.
//!
//! `cargo bench --bench gdb_bridge`

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::HaltedQemu;
use lab::gdb::{BridgeServer, DebugBackend, GdbClient, Transport};

/// Alternating A/B batches per measurement.
const BATCHES: usize = 40;
/// `p` round trips per batch.
const REGS_PER_BATCH: usize = 50;
/// 64 KiB reads per batch.
const READS_PER_BATCH: usize = 2;
const TIMEOUT: Duration = Duration::from_secs(5);
const READ_LEN: usize = 64 * 1024;
/// Cortex-M's pc register number.
const PC: usize = 15;
/// Code RAM: readable and not cached by gdb (no ELF loaded).
const READ_ADDR: u64 = 0;
/// The promises of "Debug attach".
const MIN_THROUGHPUT: f64 = 0.90;
const MAX_ADDED_US: f64 = 50.0;

/// One measurement: per batch, the median of A's and of B's samples.
#[derive(Default)]
struct Paired {
    direct: Vec<Duration>,
    bridge: Vec<Duration>,
}

impl Paired {
    /// Adds one batch of samples from each side.
    fn add(&mut self, direct: Vec<Duration>, bridge: Vec<Duration>) {
        self.direct.push(median(&direct));
        self.bridge.push(median(&bridge));
    }

    /// Median of A, median of B, and the median of the per-batch
    /// differences (B - A), in seconds.
    fn summary(&self) -> (f64, f64, f64) {
        let mut added: Vec<f64> = self
            .direct
            .iter()
            .zip(&self.bridge)
            .map(|(d, b)| b.as_secs_f64() - d.as_secs_f64())
            .collect();
        added.sort_by(f64::total_cmp);
        (
            median(&self.direct).as_secs_f64(),
            median(&self.bridge).as_secs_f64(),
            added[added.len() / 2],
        )
    }
}

fn main() {
    let direct_qemu = HaltedQemu::start("mps2-an385", &["spin"]);
    let bridged_qemu = HaltedQemu::start("mps2-an385", &["spin"]);
    let backend_sock = bridged_qemu.sock.clone();
    let server = BridgeServer::start(
        0,
        Box::new(move || {
            Ok(Box::new(GdbClient::connect_unix(&backend_sock, TIMEOUT)?) as Box<dyn DebugBackend>)
        }),
    )
    .expect("bridge");
    let addr = server.local_addr();

    eprintln!("gdb-multiarch: {BATCHES} alternating batches");
    let (gdb_reg, gdb_read) = measure_gdb(&direct_qemu.sock, addr);
    eprintln!("GdbClient: {BATCHES} alternating batches");
    let (client_reg, client_read) = measure_client(&direct_qemu.sock, addr);
    server.shutdown();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "{BATCHES} alternating A/B batches of {REGS_PER_BATCH} `p` round trips and \
         {READS_PER_BATCH} reads of 64 KiB at {READ_ADDR:#x}; A: QEMU's gdbstub directly, \
         B: through the bridge. loadavg: {}",
        load.trim()
    );
    println!(
        "{:<40} {:>11} {:>11} {:>15} {:>7}",
        "", "direct (A)", "bridge (B)", "added (paired)", "B/A"
    );
    let g_reg = row("`p` pc round trip, gdb-multiarch", &gdb_reg);
    let g_read = row("64 KiB read, gdb-multiarch", &gdb_read);
    let c_reg = row("`p` pc round trip, GdbClient", &client_reg);
    let c_read = row("64 KiB read, GdbClient", &client_read);
    println!();
    verdict("gdb-multiarch (the client users attach)", g_reg, g_read);
    verdict("GdbClient (the lab's own client)", c_reg, c_read);
}

/// Prints one measurement; returns (direct, bridge, added) in seconds.
fn row(what: &str, paired: &Paired) -> (f64, f64, f64) {
    let (d, b, added) = paired.summary();
    println!(
        "{what:<40} {:>11} {:>11} {:>15} {:>6.2}x",
        us(d),
        us(b),
        us(added),
        b / d
    );
    (d, b, added)
}

fn verdict(client: &str, reg: (f64, f64, f64), read: (f64, f64, f64)) {
    let added = reg.2 * 1e6;
    let share = read.0 / read.1;
    println!(
        "{} {client}: added per packet {added:.1} µs (promise < {MAX_ADDED_US} µs)",
        pass(added < MAX_ADDED_US)
    );
    println!(
        "{} {client}: 64 KiB throughput {:.1} MB/s direct, {:.1} MB/s bridge = {:.0}% of \
         direct (promise >= {:.0}%)",
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

/// Times `op` `n` times.
fn timed(n: usize, mut op: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed()
        })
        .collect()
}

/// `p` round trips and 64 KiB reads with the lab's client, directly on
/// `direct` and through the bridge at `bridge`, batch by batch.
fn measure_client(direct: &Path, bridge: SocketAddr) -> (Paired, Paired) {
    let mut a = GdbClient::connect_unix(direct, TIMEOUT).expect("QEMU's gdbstub");
    let mut b = GdbClient::new(TcpStream::connect(bridge).expect("bridge")).expect("bridge");
    // Warm both paths first.
    regs_of(&mut a);
    regs_of(&mut b);
    let mut regs = Paired::default();
    for batch in 0..BATCHES {
        let (d, br) = alternate(batch, || regs_of(&mut a), || regs_of(&mut b));
        regs.add(d, br);
    }
    let (mut buf_a, mut buf_b) = (vec![0; READ_LEN], vec![0; READ_LEN]);
    let mut read_a = || timed(READS_PER_BATCH, || read_all(&mut a, &mut buf_a));
    let mut read_b = || timed(READS_PER_BATCH, || read_all(&mut b, &mut buf_b));
    read_a();
    read_b();
    let mut reads = Paired::default();
    for batch in 0..BATCHES {
        let (d, br) = alternate(batch, &mut read_a, &mut read_b);
        reads.add(d, br);
    }
    (regs, reads)
}

/// One batch of `p` round trips.
fn regs_of(client: &mut GdbClient<impl Transport>) -> Vec<Duration> {
    timed(REGS_PER_BATCH, || {
        client.read_register(PC).expect("p");
    })
}

/// Reads all of `buf` at [`READ_ADDR`].
fn read_all(client: &mut GdbClient<impl Transport>, buf: &mut [u8]) {
    assert_eq!(client.read_memory(READ_ADDR, buf).expect("m"), READ_LEN);
}

/// Runs `a` then `b` on even batches and `b` then `a` on odd ones, so that
/// neither side always goes first; returns (a's result, b's result).
fn alternate<T>(batch: usize, mut a: impl FnMut() -> T, mut b: impl FnMut() -> T) -> (T, T) {
    if batch.is_multiple_of(2) {
        let x = a();
        (x, b())
    } else {
        let y = b();
        (a(), y)
    }
}

/// `p` round trips (`maint packet pf`, which bypasses gdb's register cache)
/// and `read_memory` of 64 KiB, timed inside one gdb-multiarch's python,
/// with inferior 1 on QEMU's gdbstub and inferior 2 on the bridge.
fn measure_gdb(direct: &Path, bridge: SocketAddr) -> (Paired, Paired) {
    let script = format!(
        "import time, gdb\n\
         gdb.execute('add-inferior', to_string=True)\n\
         gdb.execute('inferior 2', to_string=True)\n\
         gdb.execute('target remote {bridge}', to_string=True)\n\
         def use(k):\n\
         \x20   gdb.execute('inferior %d' % k, to_string=True)\n\
         \x20   return gdb.selected_inferior()\n\
         def regs(k, n):\n\
         \x20   use(k)\n\
         \x20   for i in range(n):\n\
         \x20       t = time.perf_counter(); gdb.execute('maint packet pf', to_string=True)\n\
         \x20       print('REG', k, time.perf_counter() - t)\n\
         def reads(k, n):\n\
         \x20   inf = use(k)\n\
         \x20   for i in range(n):\n\
         \x20       t = time.perf_counter(); inf.read_memory({READ_ADDR}, {READ_LEN})\n\
         \x20       print('READ', k, time.perf_counter() - t)\n\
         for k in (1, 2):\n\
         \x20   use(k)\n\
         \x20   for i in range(20): gdb.execute('maint packet pf', to_string=True)\n\
         \x20   gdb.selected_inferior().read_memory({READ_ADDR}, {READ_LEN})\n\
         for b in range({BATCHES}):\n\
         \x20   order = (1, 2) if b % 2 == 0 else (2, 1)\n\
         \x20   for k in order: regs(k, {REGS_PER_BATCH})\n\
         \x20   print('BATCH')\n\
         for b in range({BATCHES}):\n\
         \x20   order = (1, 2) if b % 2 == 0 else (2, 1)\n\
         \x20   for k in order: reads(k, {READS_PER_BATCH})\n\
         \x20   print('BATCH')\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let py = dir.path().join("t.py");
    std::fs::write(&py, script).expect("script");
    let out = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", "set architecture armv7e-m"])
        .args(["-ex", "set code-cache off", "-ex", "set stack-cache off"])
        .arg("-ex")
        .arg(format!("target remote {}", direct.display()))
        .args(["-ex", &format!("source {}", py.display())])
        .args(["-ex", "inferior 1", "-ex", "disconnect"])
        .args(["-ex", "inferior 2", "-ex", "disconnect"])
        .output()
        .expect("gdb-multiarch");
    let text = String::from_utf8_lossy(&out.stdout);
    let parse = |tag: &str, per_batch: usize| -> Paired {
        let mut paired = Paired::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for line in text.lines() {
            if line == "BATCH" && !a.is_empty() {
                paired.add(std::mem::take(&mut a), std::mem::take(&mut b));
                continue;
            }
            let Some(rest) = line.strip_prefix(tag) else {
                continue;
            };
            let (side, secs) = rest.trim().split_once(' ').expect("`k secs`");
            let secs = Duration::from_secs_f64(secs.parse().expect("seconds"));
            match side {
                "1" => a.push(secs),
                _ => b.push(secs),
            }
        }
        assert!(
            paired.direct.len() == BATCHES && a.is_empty(),
            "gdb-multiarch ({tag}, {per_batch} per batch):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        paired
    };
    (
        parse("REG ", REGS_PER_BATCH),
        parse("READ ", READS_PER_BATCH),
    )
}
