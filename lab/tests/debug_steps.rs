//! Debugger steps and `lab debug` end to end: the lab's client and real
//! gdb-multiarch through the GDB bridge, against real QEMU and firmware.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{built_image, qemu_processes_with, report, run, run_scenario, scenario, text};

#[test]
fn the_debug_attach_scenario_changes_the_exit_code_through_a_global() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let file = common::repo().join("scenarios/debug-attach.yaml");
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = &report(&json)["results"][0];
    assert!(r["metrics"]["attach_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["metrics"]["breakpoint_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["metrics"]["done_code"], 42.0);
    let stop = &r["steps"][3];
    assert_eq!(stop["step"], "continue");
    assert_eq!(stop["detail"]["reason"], "breakpoint");
    assert_eq!(stop["detail"]["function"], "main");
    assert!(
        stop["detail"]["file"]
            .as_str()
            .unwrap()
            .ends_with("debuggee/main.c"),
        "{stop}"
    );
}

#[test]
fn registers_memory_lines_and_single_steps() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/debuggee", "mps2-an385");
    std::fs::copy(&elf, dir.path().join("debuggee.elf")).unwrap();
    // `work` is on a source line of its own; break there by file:line, by
    // address and by name, and look around.
    let (code, r) = run_scenario(
        dir.path(),
        "steps.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: debuggee.elf}\ntimeout: 20s\nsteps:\n  \
         - boot: {halted: true}\n  - attach-debugger: {}\n  - break: work\n  \
         - continue: {stop-at: work, timeout: 5s}\n  - read-register: {name: r0, metric: first_arg, expect: 1}\n  \
         - read-register: {name: pc, metric: pc}\n  - step: {count: 3}\n  \
         - read-memory: {address: lab_signed, length: 4, expect: [0xfb, 0xff, 0xff, 0xff]}\n  \
         - write-memory: {address: lab_exit_code, bytes: [9, 0, 0, 0]}\n  \
         - read-symbol: {name: lab_float, metric: float, expect: 1.5}\n  \
         - read-symbol: {name: lab_exit_code, expect: 9}\n  - detach: {}\n  \
         - expect-exit: {code: 9, timeout: 5s}\n",
    );
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["metrics"]["first_arg"], 1.0);
    assert_eq!(r["metrics"]["float"], 1.5);
    let pc = r["metrics"]["pc"].as_f64().unwrap() as u64;
    let stepped = r["steps"][6]["detail"]["pc"].as_u64().unwrap();
    assert_ne!(stepped, pc, "three instructions moved the pc");
    assert_eq!(r["steps"][6]["detail"]["function"], "work");
}

#[test]
fn a_stop_somewhere_else_fails_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/debuggee", "mps2-an385");
    std::fs::copy(&elf, dir.path().join("debuggee.elf")).unwrap();
    let (code, r) = run_scenario(
        dir.path(),
        "elsewhere.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: debuggee.elf}\ntimeout: 20s\nsteps:\n  \
         - boot: {halted: true}\n  - attach-debugger: {}\n  - break: main\n  \
         - continue: {stop-at: work, timeout: 5s}\n",
    );
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
    let elf = built_image("cortex-m/debuggee", "mps2-an385");
    std::fs::copy(&elf, dir.path().join("debuggee.elf")).unwrap();
    let (code, r) = run_scenario(
        dir.path(),
        "typo.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: debuggee.elf}\ntimeout: 20s\nsteps:\n  \
         - boot: {halted: true}\n  - attach-debugger: {}\n  - read-symbol: lab_exit_cod\n",
    );
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
    let elf = built_image("cortex-m/debuggee", "mps2-an385");
    std::fs::copy(&elf, dir.path().join("debuggee.elf")).unwrap();
    let (code, r) = run_scenario(
        dir.path(),
        "noattach.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: debuggee.elf}\nsteps:\n  - boot: {halted: true}\n  - break: main\n",
    );
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
    let elf = dir.path().join("debuggee.elf");
    std::fs::copy(built_image("cortex-m/debuggee", "mps2-an385"), &elf).unwrap();
    let file = scenario(
        dir.path(),
        "serve.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: debuggee.elf}\nsteps:\n  - boot: {halted: true}\n",
    );
    let mut lab = common::lab()
        .args(["debug", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(lab.stdout.take().unwrap());
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

    let gdb = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", &format!("target remote {addr}")])
        .args([
            "-ex",
            "break main",
            "-ex",
            "continue",
            "-ex",
            "info registers pc xpsr msp psp",
        ])
        .args([
            "-ex",
            "print lab_exit_code",
            "-ex",
            "set var lab_exit_code = 5",
            "-ex",
            "print lab_exit_code",
        ])
        .args(["-ex", "stepi", "-ex", "detach"])
        .arg(&elf)
        .output()
        .unwrap();
    let out =
        String::from_utf8_lossy(&gdb.stdout).into_owned() + &String::from_utf8_lossy(&gdb.stderr);
    assert!(out.contains("Breakpoint 1, main"), "{out}");
    assert!(
        out.contains("xpsr") && out.contains("msp") && out.contains("psp"),
        "{out}"
    );
    assert!(out.contains("$1 = 0") && out.contains("$2 = 5"), "{out}");
    // After the detach the guest runs on and exits with the value gdb set;
    // `lab debug` notices and ends by itself.
    let Some(status) = common::wait_timeout(&mut lab, Duration::from_secs(10)) else {
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
    let elf = built_image("cortex-m/debuggee", "mps2-an385");
    let mine = dir.path().join("debuggee.elf");
    std::fs::copy(&elf, &mine).unwrap();
    let file = scenario(
        dir.path(),
        "halted.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: debuggee.elf}\nsteps:\n  - boot: {halted: true}\n",
    );
    let mut lab = common::lab()
        .args(["debug", "--gdb-port", "0", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(lab.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("GDB bridge on 127.0.0.1:"), "{line}");
    assert_eq!(qemu_processes_with(mine.to_str().unwrap()).len(), 1);
    common::ctrl_c(&lab);
    assert!(
        common::wait_timeout(&mut lab, Duration::from_secs(10)).is_some(),
        "lab debug ignored Ctrl-C"
    );
    assert!(
        qemu_processes_with(mine.to_str().unwrap()).is_empty(),
        "QEMU left running"
    );
}

#[test]
fn lab_debug_serves_an_aarch64_linux_board() {
    let file = common::repo().join("scenarios/raspi/boot.yaml");
    let mut lab = common::lab()
        .args(["debug", "--variant", "virt", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(lab.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    let gdb = Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", &format!("target remote {addr}")])
        .args([
            "-ex",
            "info registers pc cpsr",
            "-ex",
            "stepi",
            "-ex",
            "info registers pc",
            "-ex",
            "detach",
        ])
        .output()
        .unwrap();
    let out =
        String::from_utf8_lossy(&gdb.stdout).into_owned() + &String::from_utf8_lossy(&gdb.stderr);
    // The bridge forwards QEMU's aarch64 description: gdb needs no `set architecture`.
    assert!(out.contains("pc             0x40000000"), "{out}");
    assert!(out.contains("pc             0x40000004"), "{out}");
    assert!(out.contains("cpsr"), "{out}");
    // Detached, the kernel boots on and powers off; `lab debug` ends with it.
    let status = common::wait_timeout(&mut lab, Duration::from_secs(30));
    if status.is_none() {
        common::ctrl_c(&lab);
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}
