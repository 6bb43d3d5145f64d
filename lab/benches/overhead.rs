//! The lab's own overhead, each figure measured beside its baseline in the
//! same run (A/B), so that whatever else the machine is doing hits both:
//!
//! 1. **A short scenario, end to end.** The whole `lab run` process of a
//!    scenario that boots the hello firmware on mps2-an385, waits for its
//!    `READY` line and expects its exit, against the bare `qemu-system-arm`
//!    command for the same ELF: the lab's own argument vector
//!    (`QemuLaunch::command_line`) with the serial port on stdout instead of
//!    the lab's socket, and without what needs the lab on the other end
//!    (the QMP monitor, `-S`). Interleaved pairs, the order alternating; the
//!    figure is the median of the per-pair ratios.
//! 2. **A QMP command.** `query-status` to a machine held at reset (a
//!    running firmware that polls its UART would take a core from QEMU's
//!    monitor and from the lab), timed per call:
//!    - from a rhai script: `lab run` of a script making the calls, minus
//!      the same run of a script with an empty loop, divided by the calls
//!      (and `metric()` the same way, for scale);
//!    - from the runner's own client (`QmpClient`, in a task on a
//!      multi-threaded Tokio runtime, as steps run);
//!    - the baseline: a raw client here (write the JSON line, read the
//!      reply line on a `UnixStream`) to a second QMP monitor of the same
//!      QEMU, in batches alternating with the client's.
//!
//! The QMP targets are on the lab's own share, the cost per call above the
//! raw baseline: QEMU alone takes well over 100 µs to answer a command on a
//! busy two-core machine, which no client can beat.
//!
//! `cargo bench --bench overhead`. `OVERHEAD_PAIRS` (default 21) sets the
//! end-to-end pairs, `OVERHEAD_CALLS` (default 2000) the calls per batch and
//! script, `OVERHEAD_ROUNDS` (default 7) the alternating rounds of the QMP
//! figures. It prints a table and exits non-zero when a figure misses its
//! target.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::backend::{BootImage, QemuLaunch};
use lab::board::{BoardCatalog, BoardProfile};
use lab::qmp::QmpClient;
use lab::scenario::Clock;

use common::{built_image, lab, wait_until};

const BOARD: &str = "mps2-an385";
/// Target: `lab run` at most this many times the bare QEMU command.
const MAX_RATIO: f64 = 1.05;
/// Target: what a `qmp()` call from a script adds to the raw round trip, in µs.
const MAX_SCRIPT_US: f64 = 100.0;
/// Target: what the runner's own client adds to the raw round trip, in µs.
const MAX_CLIENT_US: f64 = 60.0;
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    let pairs = setting("OVERHEAD_PAIRS", 21);
    let calls = setting("OVERHEAD_CALLS", 2000);
    let rounds = setting("OVERHEAD_ROUNDS", 7);
    let board = BoardCatalog::builtin()
        .get(BOARD)
        .expect("the board profile reads")
        .expect("the board exists")
        .clone();

    println!("end to end: {pairs} interleaved pairs of `lab run` and bare QEMU");
    let e2e = end_to_end(&board, pairs);
    println!("QMP: {rounds} rounds of {calls} query-status calls");
    let qmp = qmp_calls(&board, calls, rounds);

    let rows = [
        Row {
            figure: "short scenario, whole process".into(),
            value: format!("{:.1} ms", e2e.lab * 1e3),
            baseline: format!("bare QEMU {:.1} ms", e2e.bare * 1e3),
            versus: format!("ratio {:.3}", e2e.ratio),
            target: format!("ratio <= {MAX_RATIO}"),
            pass: e2e.ratio <= MAX_RATIO,
        },
        Row {
            figure: "qmp() from a script, per call".into(),
            value: us(qmp.script),
            baseline: format!("raw socket {}", us(qmp.raw)),
            versus: format!("+{}", us(qmp.script - qmp.raw)),
            target: format!("+<= {MAX_SCRIPT_US} µs"),
            pass: (qmp.script - qmp.raw) * 1e6 <= MAX_SCRIPT_US,
        },
        Row {
            figure: "QmpClient (runner), per call".into(),
            value: us(qmp.client),
            baseline: format!("raw socket {}", us(qmp.raw)),
            versus: format!("+{}", us(qmp.client - qmp.raw)),
            target: format!("+<= {MAX_CLIENT_US} µs"),
            pass: (qmp.client - qmp.raw) * 1e6 <= MAX_CLIENT_US,
        },
        Row {
            figure: "metric() from a script, per call".into(),
            value: us(qmp.metric),
            baseline: "-".into(),
            versus: "-".into(),
            target: "(for scale)".into(),
            pass: true,
        },
    ];
    println!();
    println!(
        "{:<34} {:>11} {:>20} {:>14} {:>15}  verdict",
        "figure", "value", "baseline", "versus", "target"
    );
    for row in &rows {
        println!(
            "{:<34} {:>11} {:>20} {:>14} {:>15}  {}",
            row.figure,
            row.value,
            row.baseline,
            row.versus,
            row.target,
            if row.pass { "PASS" } else { "FAIL" }
        );
    }
    if rows.iter().any(|r| !r.pass) {
        std::process::exit(1);
    }
}

struct Row {
    figure: String,
    value: String,
    baseline: String,
    versus: String,
    target: String,
    pass: bool,
}

/// A positive number from the environment, or `default`.
fn setting(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive number, not {text:?}")),
        Err(_) => default,
    }
}

// --- 1. A short scenario, end to end ---------------------------------------

struct EndToEnd {
    /// Median wall time of `lab run`, in seconds.
    lab: f64,
    /// Median wall time of the bare QEMU command, in seconds.
    bare: f64,
    /// Median of the per-pair ratios.
    ratio: f64,
}

fn end_to_end(board: &BoardProfile, pairs: usize) -> EndToEnd {
    let elf = built_image("cortex-m/hello", BOARD);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("short.yaml");
    std::fs::write(
        &scenario,
        format!(
            "version: 1\nname: short\nboard: {BOARD}\nimage: cortex-m/hello\ntimeout: 10s\n\
             steps:\n  - boot: {{}}\n  - wait-serial: {{match: 'READY', timeout: 5s}}\n  \
             - expect-exit: {{code: 0, timeout: 5s}}\n"
        ),
    )
    .unwrap();
    let sockets = dir.path().join("bare");
    std::fs::create_dir(&sockets).unwrap();
    let (binary, argv) = bare_command(board, &elf, &sockets);

    let run_lab = || {
        let started = Instant::now();
        let status = lab()
            .args(["run", "-j", "1"])
            .arg(&scenario)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("lab runs");
        let took = started.elapsed();
        assert!(status.success(), "lab run failed: {status}");
        took.as_secs_f64()
    };
    let run_bare = || {
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("QEMU starts");
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = child.wait().unwrap();
        let took = started.elapsed();
        assert!(
            status.success() && out.contains("READY"),
            "bare QEMU: {status}: {out}"
        );
        took.as_secs_f64()
    };
    // Warm both up: the page cache, the image cache's stamp, QEMU's libraries.
    for _ in 0..3 {
        run_bare();
        run_lab();
    }
    let (mut labs, mut bares, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        let (l, b) = if pair % 2 == 0 {
            let b = run_bare();
            (run_lab(), b)
        } else {
            let l = run_lab();
            (l, run_bare())
        };
        labs.push(l);
        bares.push(b);
        ratios.push(l / b);
    }
    EndToEnd {
        lab: median(&labs),
        bare: median(&bares),
        ratio: median(&ratios),
    }
}

/// The lab's QEMU command for `elf` on `board`, standing alone: the serial
/// port on stdout instead of the lab's socket, no QMP monitor, no `-S`
/// (nobody would connect to resume the machine). The gdbstub's socket stays,
/// in `sockets`.
fn bare_command(board: &BoardProfile, elf: &Path, sockets: &Path) -> (String, Vec<OsString>) {
    let launch = QemuLaunch {
        board: board.clone(),
        image: BootImage::Elf(elf.to_owned()),
        clock: Clock::Wall,
        args: Vec::new(),
        env: BTreeMap::new(),
        disk: None,
    };
    let lab_argv = launch.command_line(sockets);
    let mut argv = Vec::new();
    let mut items = lab_argv.into_iter().peekable();
    while let Some(item) = items.next() {
        let value = |items: &mut std::iter::Peekable<std::vec::IntoIter<OsString>>| {
            items
                .next()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        match item.to_str() {
            Some("-S") => {}
            Some("-chardev") => {
                let spec = value(&mut items);
                if spec.starts_with("socket,id=serial0,") {
                    argv.extend(["-chardev".into(), "stdio,id=serial0".into()]);
                } else if !spec.starts_with("socket,id=qmp0,") {
                    argv.extend(["-chardev".into(), spec.into()]);
                }
            }
            Some("-mon") => {
                let spec = value(&mut items);
                assert!(spec.starts_with("chardev=qmp0"), "another monitor: {spec}");
            }
            _ => argv.push(item),
        }
    }
    let binary = board
        .qemu
        .as_ref()
        .expect("an emulated board")
        .binary
        .clone();
    (binary, argv)
}

// --- 2. A QMP command ---------------------------------------------------------

struct QmpCalls {
    /// Per call, in seconds: from a script, through the client, raw, and
    /// `metric()` from a script.
    script: f64,
    client: f64,
    raw: f64,
    metric: f64,
}

fn qmp_calls(board: &BoardProfile, calls: usize, rounds: usize) -> QmpCalls {
    let qemu = TwoMonitors::start(board);
    let mut raw = RawQmp::connect(&qemu.raw);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = {
        let path = qemu.client.clone();
        runtime
            .block_on(async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                QmpClient::handshake(stream, TIMEOUT)
                    .await
                    .map(|(client, _events)| client)
                    .map_err(std::io::Error::other)
            })
            .expect("the client connects")
    };
    let batch_client = |client: QmpClient| -> f64 {
        let batch = runtime.spawn(async move {
            let started = Instant::now();
            for _ in 0..calls {
                client
                    .execute_raw("query-status", None, TIMEOUT)
                    .await
                    .expect("query-status");
            }
            started.elapsed().as_secs_f64() / calls as f64
        });
        runtime.block_on(batch).unwrap()
    };

    let scripts = ScriptRuns::new(calls);
    // Warm up each side once.
    raw.batch(calls);
    batch_client(client.clone());
    scripts.run("none");
    let (mut raws, mut clients, mut script_calls, mut metric_calls) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            raws.push(raw.batch(calls));
            clients.push(batch_client(client.clone()));
        } else {
            clients.push(batch_client(client.clone()));
            raws.push(raw.batch(calls));
        }
        let none = scripts.run("none");
        let qmp = scripts.run("qmp");
        let metric = scripts.run("metric");
        script_calls.push((qmp - none) / calls as f64);
        metric_calls.push((metric - none) / calls as f64);
    }
    drop(client);
    drop(runtime);
    QmpCalls {
        script: median(&script_calls),
        client: median(&clients),
        raw: median(&raws),
        metric: median(&metric_calls),
    }
}

/// A QEMU holding the hello firmware at reset, with two QMP monitors on
/// sockets it serves: one for the raw client, one for the lab's.
struct TwoMonitors {
    child: Child,
    raw: PathBuf,
    client: PathBuf,
    _dir: tempfile::TempDir,
}

impl TwoMonitors {
    fn start(board: &BoardProfile) -> Self {
        use std::os::unix::process::CommandExt;
        let elf = built_image("cortex-m/hello", BOARD);
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.sock");
        let client = dir.path().join("client.sock");
        let q = board.qemu.as_ref().expect("an emulated board");
        let mut cmd = Command::new(&q.binary);
        cmd.args(["-M", &q.machine, "-cpu", &q.cpu, "-m", &q.memory])
            .args(["-nodefaults", "-display", "none", "-monitor", "none"])
            .args(["-serial", "null", "-kernel"])
            .arg(&elf)
            .args(["-semihosting-config", "enable=on,target=native", "-S"]);
        for (id, path) in [("raw", &raw), ("client", &client)] {
            cmd.arg("-chardev")
                .arg(format!(
                    "socket,id={id},path={},server=on,wait=off",
                    path.display()
                ))
                .args(["-mon", &format!("chardev={id},mode=control")]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("qemu-system-arm runs");
        let qemu = TwoMonitors {
            child,
            raw,
            client,
            _dir: dir,
        };
        wait_until(TIMEOUT, "QEMU's QMP sockets appear", || {
            qemu.raw.exists() && qemu.client.exists()
        });
        qemu
    }
}

impl Drop for TwoMonitors {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The baseline: one JSON line out, one line back, on a plain socket.
struct RawQmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    line: String,
}

impl RawQmp {
    fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).expect("QMP socket");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut raw = RawQmp {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
            line: String::new(),
        };
        raw.read_line();
        assert!(raw.line.contains("\"QMP\""), "greeting: {}", raw.line);
        raw.command(b"{\"execute\": \"qmp_capabilities\"}\n");
        raw
    }

    fn read_line(&mut self) {
        self.line.clear();
        self.reader.read_line(&mut self.line).expect("a reply line");
    }

    /// Sends `line` and reads up to its reply, skipping events.
    fn command(&mut self, line: &[u8]) {
        self.writer.write_all(line).unwrap();
        loop {
            self.read_line();
            if self.line.contains("\"return\"") {
                return;
            }
            assert!(!self.line.contains("\"error\""), "{}", self.line);
            assert!(!self.line.is_empty(), "QEMU closed the QMP socket");
        }
    }

    /// `calls` query-status round trips; seconds per call.
    fn batch(&mut self, calls: usize) -> f64 {
        let started = Instant::now();
        for _ in 0..calls {
            self.command(b"{\"execute\": \"query-status\"}\n");
        }
        started.elapsed().as_secs_f64() / calls as f64
    }
}

/// `lab run` of scenarios that boot the hello firmware held at reset and
/// run a script looping `calls` times, with a QMP command, a metric or
/// nothing in the loop.
struct ScriptRuns {
    dir: tempfile::TempDir,
}

impl ScriptRuns {
    fn new(calls: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("none", "n += 1;"),
            ("qmp", "n += 1; qmp(\"query-status\");"),
            ("metric", "n += 1; metric(\"n\", n);"),
        ] {
            std::fs::write(
                dir.path().join(format!("{name}.rhai")),
                format!("let n = 0;\nfor i in 0..{calls} {{ {body} }}\nassert(n == {calls});\n"),
            )
            .unwrap();
            std::fs::write(
                dir.path().join(format!("{name}.yaml")),
                format!(
                    "version: 1\nname: {name}\nboard: {BOARD}\nimage: cortex-m/hello\n\
                     timeout: 120s\nsteps:\n  - boot: {{halted: true}}\n  \
                     - script: {{file: {name}.rhai}}\n"
                ),
            )
            .unwrap();
        }
        ScriptRuns { dir }
    }

    /// Wall time of `lab run` of script `name`, in seconds.
    fn run(&self, name: &str) -> f64 {
        let started = Instant::now();
        let out = lab()
            .args(["run", "-j", "1"])
            .arg(self.dir.path().join(format!("{name}.yaml")))
            .stdin(Stdio::null())
            .output()
            .expect("lab runs");
        let took = started.elapsed().as_secs_f64();
        assert!(out.status.success(), "{}", common::text(&out));
        took
    }
}

fn us(secs: f64) -> String {
    format!("{:.1} µs", secs * 1e6)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
