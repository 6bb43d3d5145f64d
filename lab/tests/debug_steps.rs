//! Debugger steps and `lab debug` end to end: the lab's client and real
//! gdb-multiarch through the GDB bridge, against real QEMU and firmware.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    ScenarioYaml, copy_elf, lab, lab_run, qemu_processes_with, repo, step_detail, wait_timeout,
};

/// A scenario on mps2-an385 that boots a copy of the debuggee in `dir`,
/// held at reset.
fn halted_debuggee(dir: &Path) -> ScenarioYaml {
    ScenarioYaml::elf(
        "mps2-an385",
        copy_elf(dir, "cortex-m/debuggee", "mps2-an385"),
    )
    .step("boot: {halted: true}")
}

/// [`halted_debuggee`] with the debugger attached, all within 20 s.
fn attached_debuggee(dir: &Path) -> ScenarioYaml {
    halted_debuggee(dir)
        .with("timeout: 20s")
        .step("attach-debugger: {}")
}

/// Starts `lab debug` with `args`, and returns it and its stdout.
fn lab_debug(args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut lab = lab()
        .arg("debug")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(lab.stdout.take().unwrap());
    (lab, stdout)
}

/// Runs a batch gdb-multiarch on `target remote ADDR`, then `commands`,
/// with `elf` loaded if given, and returns its stdout then stderr.
fn gdb_batch(addr: &str, elf: Option<&Path>, commands: &[&str]) -> String {
    let mut gdb = Command::new("gdb-multiarch");
    gdb.args(["-nx", "-batch", "-ex", &format!("target remote {addr}")]);
    for command in commands {
        gdb.args(["-ex", command]);
    }
    if let Some(elf) = elf {
        gdb.arg(elf);
    }
    let out = gdb.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_debug_attach_scenario_changes_the_exit_code_through_a_global() {
    let dir = tempfile::tempdir().unwrap();
    let ran = lab_run(dir.path(), &repo().join("scenarios/debug-attach.yaml"), &[]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let r = ran.first();
    assert!(r["metrics"]["attach_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["metrics"]["breakpoint_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["metrics"]["done_code"], 42.0);
    let stop = step_detail(r, 3, "continue");
    assert_eq!(stop["reason"], "breakpoint");
    assert_eq!(stop["function"], "main");
    assert!(
        stop["file"].as_str().unwrap().ends_with("debuggee/main.c"),
        "{stop}"
    );
}

#[test]
fn registers_memory_lines_and_single_steps() {
    let dir = tempfile::tempdir().unwrap();
    // `work` is on a source line of its own; break there by file:line, by
    // address and by name, and look around.
    let (code, r) = attached_debuggee(dir.path())
        .step("break: work")
        .step("continue: {stop-at: work, timeout: 5s}")
        .step("read-register: {name: r0, metric: first_arg, expect: 1}")
        .step("read-register: {name: pc, metric: pc}")
        .step("step: {count: 3}")
        .step("read-memory: {address: lab_signed, length: 4, expect: [0xfb, 0xff, 0xff, 0xff]}")
        .step("write-memory: {address: lab_exit_code, bytes: [9, 0, 0, 0]}")
        .step("read-symbol: {name: lab_float, metric: float, expect: 1.5}")
        .step("read-symbol: {name: lab_exit_code, expect: 9}")
        .step("detach: {}")
        .step("expect-exit: {code: 9, timeout: 5s}")
        .run(dir.path(), "steps.yaml");
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["metrics"]["first_arg"], 1.0);
    assert_eq!(r["metrics"]["float"], 1.5);
    let pc = r["metrics"]["pc"].as_f64().unwrap() as u64;
    let stepped = step_detail(&r, 6, "step");
    assert_ne!(
        stepped["pc"].as_u64().unwrap(),
        pc,
        "three instructions moved the pc"
    );
    assert_eq!(stepped["function"], "work");
}

#[test]
fn a_stop_somewhere_else_fails_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = attached_debuggee(dir.path())
        .step("break: main")
        .step("continue: {stop-at: work, timeout: 5s}")
        .run(dir.path(), "elsewhere.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "failed");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.starts_with("expected a stop at `work`, but it stopped (breakpoint) at main"),
        "{error}"
    );
}

#[test]
fn an_unknown_symbol_is_an_error_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = attached_debuggee(dir.path())
        .step("read-symbol: lab_exit_cod")
        .run(dir.path(), "typo.yaml");
    assert_eq!(code, Some(1));
    assert_eq!(r["status"], "error");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `lab_exit_code`"),
        "{r}"
    );
}

#[test]
fn a_debugger_step_without_attach_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = halted_debuggee(dir.path())
        .step("break: main")
        .run(dir.path(), "noattach.yaml");
    assert_eq!(code, Some(1));
    assert_eq!(
        r["error"],
        "the debugger is not attached: add an `attach-debugger` step first"
    );
}

#[test]
fn lab_debug_serves_gdb_multiarch_and_stops_cleanly_on_ctrl_c() {
    // A private copy of the ELF, so that no other test's QEMU shares its path.
    let dir = tempfile::tempdir().unwrap();
    let file = halted_debuggee(dir.path()).write(dir.path(), "serve.yaml");
    let elf = dir.path().join("debuggee.elf");
    let (mut lab, mut stdout) = lab_debug(&[file.to_str().unwrap()]);
    let mut line = String::new();
    let mut gdb_line = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while gdb_line.is_none() && Instant::now() < deadline {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.trim_start().starts_with("gdb-multiarch ") {
            gdb_line = Some(line.trim().to_owned());
        }
    }
    let gdb_line = gdb_line.expect("lab debug printed the gdb command");
    let addr = gdb_line
        .split("target remote ")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'');
    assert!(addr.starts_with("127.0.0.1:"), "{gdb_line}");
    assert!(gdb_line.contains(elf.to_str().unwrap()), "{gdb_line}");

    let out = gdb_batch(
        addr,
        Some(&elf),
        &[
            "break main",
            "continue",
            "info registers pc xpsr msp psp",
            "print lab_exit_code",
            "set var lab_exit_code = 5",
            "print lab_exit_code",
            "stepi",
            "detach",
        ],
    );
    assert!(out.contains("Breakpoint 1, main"), "{out}");
    assert!(
        out.contains("xpsr") && out.contains("msp") && out.contains("psp"),
        "{out}"
    );
    assert!(out.contains("$1 = 0") && out.contains("$2 = 5"), "{out}");
    // After the detach the guest runs on and exits with the value gdb set;
    // `lab debug` notices and ends by itself.
    let Some(status) = wait_timeout(&mut lab, Duration::from_secs(10)) else {
        common::ctrl_c(&lab);
        panic!("lab debug did not end when the guest exited");
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("DONE code=5"), "{rest}");
    assert_eq!(status.code(), Some(0));
    assert!(qemu_processes_with(elf.to_str().unwrap()).is_empty());
}

#[test]
fn lab_debug_ends_on_ctrl_c_and_leaves_no_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let file = halted_debuggee(dir.path()).write(dir.path(), "halted.yaml");
    let mine = dir.path().join("debuggee.elf");
    let (mut lab, mut stdout) = lab_debug(&["--gdb-port", "0", file.to_str().unwrap()]);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("GDB bridge on 127.0.0.1:"), "{line}");
    assert_eq!(qemu_processes_with(mine.to_str().unwrap()).len(), 1);
    common::ctrl_c(&lab);
    assert!(
        wait_timeout(&mut lab, Duration::from_secs(10)).is_some(),
        "lab debug ignored Ctrl-C"
    );
    assert!(
        qemu_processes_with(mine.to_str().unwrap()).is_empty(),
        "QEMU left running"
    );
}

#[test]
fn lab_debug_serves_an_aarch64_linux_board() {
    let file = repo().join("scenarios/raspi/boot.yaml");
    let (mut lab, mut stdout) = lab_debug(&["--variant", "virt", file.to_str().unwrap()]);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    let out = gdb_batch(
        &addr,
        None,
        &[
            "info registers pc cpsr",
            "stepi",
            "info registers pc",
            "detach",
        ],
    );
    // The bridge forwards QEMU's aarch64 description: gdb needs no `set architecture`.
    assert!(out.contains("pc             0x40000000"), "{out}");
    assert!(out.contains("pc             0x40000004"), "{out}");
    assert!(out.contains("cpsr"), "{out}");
    // Detached, the kernel boots on and powers off; `lab debug` ends with it.
    let status = wait_timeout(&mut lab, Duration::from_secs(30));
    if status.is_none() {
        common::ctrl_c(&lab);
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}
