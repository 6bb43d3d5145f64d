//! `lab run` end to end: real QEMU, real firmware built by the project.

mod common;

use std::time::{Duration, Instant};

use common::{built_image, qemu_processes_with, report, run, run_scenario, scenario, text};

#[test]
fn hello_passes_on_every_board_with_identical_virtual_boot_times() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("junit.xml");
    let hello = common::repo().join("scenarios/hello.yaml");
    let out = run(&[
        "run",
        hello.to_str().unwrap(),
        "-j",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = report(&json);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 9, "3 boards x 3 runs");
    for r in results {
        assert_eq!(r["status"], "passed", "{r}");
        assert_eq!(r["target"], "qemu");
        let steps: Vec<&str> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["boot", "wait-serial", "expect-exit"]);
        assert!(r["metrics"]["boot_us"].as_f64().unwrap() > 0.0, "{r}");
    }
    // clock: virtual makes guest time repeat exactly, run after run.
    for s in report["summaries"].as_array().unwrap() {
        let boot = &s["metrics"]["boot_us"];
        assert_eq!(s["runs"], 3);
        assert_eq!(
            boot["min"], boot["max"],
            "boot time varies under icount: {s}"
        );
    }
    let boards: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["board"].as_str().unwrap())
        .collect();
    assert_eq!(
        boards.into_iter().collect::<Vec<_>>(),
        ["mps2-an385", "mps2-an386", "mps2-an500"]
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 9, "{xml}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("passed 3/3"), "{table}");
}

#[test]
fn echo_round_trips_a_line_over_the_serial_port() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let echo = common::repo().join("scenarios/echo.yaml");
    let out = run(&[
        "run",
        echo.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = &report(&json)["results"][0];
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "boot",
            "wait-serial",
            "send-serial",
            "wait-serial",
            "send-serial",
            "expect-exit"
        ]
    );
}

#[test]
fn a_wrong_exit_code_fails_and_names_both_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = run_scenario(
        dir.path(),
        "wrong-exit.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nsteps:\n  - boot: {{}}\n  - expect-exit: {{code: 3, timeout: 5s}}\n",
            built_image("cortex-m/hello", "mps2-an385").display()
        ),
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"], "the target exited with code 0, expected 3");
}

#[test]
fn a_user_elf_given_by_relative_path_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        built_image("cortex-m/hello", "mps2-an500"),
        dir.path().join("mine.elf"),
    )
    .unwrap();
    let json = dir.path().join("report.json");
    let file = scenario(
        dir.path(),
        "mine.yaml",
        "version: 1\nboard: mps2-an500\nimage: {elf: mine.elf}\nclock: virtual\nsteps:\n  - boot: {}\n  - wait-serial: {match: 'hello from (?P<x>mps2)?', timeout: 5s}\n  - wait-serial: {match: 'READY boot_us=(?P<boot_us>\\d+)', timeout: 5s}\n  - expect-exit: {code: 0, timeout: 5s}\n",
    );
    // A capture that is not a number fails the step with a clear message.
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        report(&json)["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("capture `x` is \"mps2\", not a number")
    );
    let file = scenario(
        dir.path(),
        "mine.yaml",
        "version: 1\nboard: mps2-an500\nimage: {elf: mine.elf}\nclock: virtual\nsteps:\n  - boot: {}\n  - wait-serial: {match: 'READY boot_us=(?P<boot_us>\\d+)', timeout: 5s}\n  - expect-exit: {code: 0, timeout: 5s}\n",
    );
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        report(&json)["results"][0]["metrics"]["boot_us"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn a_silent_firmware_times_out_on_schedule_and_leaves_no_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let elf = common::silent_elf(dir.path());
    let json = dir.path().join("report.json");
    let file = scenario(
        dir.path(),
        "silent.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: silent.elf}\ntimeout: 2s\nsteps:\n  - boot: {}\n  - wait-serial: {match: 'READY'}\n",
    );
    let started = Instant::now();
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = &report(&json)["results"][0];
    assert_eq!(r["status"], "timeout", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("scenario timeout of 2s"),
        "{r}"
    );
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}, beyond timeout + 1 s"
    );
    assert!(
        qemu_processes_with(elf.to_str().unwrap()).is_empty(),
        "QEMU left running"
    );
}

#[test]
fn a_lockup_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/fault", "mps2-an385");
    let (code, r) = run_scenario(
        dir.path(),
        "lockup.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nargs: [lockup]\ntimeout: 10s\nsteps:\n  - boot: {{}}\n  - wait-serial: {{match: 'never printed'}}\n",
            elf.display()
        ),
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "error", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("SIGABRT") && error.contains("qemu: fatal: Lockup"),
        "{error}"
    );
}

#[test]
fn faults_are_caught_decoded_and_placed_in_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let faults = common::repo().join("scenarios/faults");
    let out = run(&[
        "run",
        faults.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = report(&json)["results"].as_array().unwrap().clone();
    let caught = |scenario: &str| {
        let r = results.iter().find(|r| r["scenario"] == scenario).unwrap();
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "expect-fault")
            .unwrap()["detail"]
            .clone()
    };
    let undef = caught("fault-undefined-instruction");
    assert_eq!(undef["source"], "vector-catch");
    assert_eq!(undef["causes"], serde_json::json!(["UNDEFINSTR", "FORCED"]));
    assert_eq!(undef["function"], "fault_undef");
    let bus = caught("fault-bus");
    assert_eq!(bus["source"], "debugger");
    assert_eq!(bus["function"], "fault_bus");
    assert_eq!(bus["fault_address"], 0xF000_0000u32);
    let lockup = caught("fault-lockup");
    assert_eq!(lockup["kind"], "lockup");
    assert!(lockup["reason"].as_str().unwrap().contains("Lockup"));
    assert_eq!(lockup["source"], "vector-catch");
    assert_eq!(lockup["function"], "fault_undef");
    let user = caught("fault-user-firmware");
    assert_eq!(user["source"], "vector-catch");
    assert_eq!(user["function"], "crash_bus");
    assert_eq!(
        user["causes"],
        serde_json::json!(["PRECISERR", "BFARVALID", "FORCED"])
    );
}

/// A user's own ELF, with its own HardFault handler that prints its own
/// line and exits through semihosting with code 3: the lab catches the
/// fault from outside, without a debugger step and without the lab's
/// runtime reporting anything.
#[test]
fn a_users_own_hardfault_handler_is_caught_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/user-fault", "mps2-an385");
    let (code, r) = run_scenario(
        dir.path(),
        "user.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nargs: [undef]\nsteps:\n  - boot: {{}}\n  \
             - expect-fault: {{kind: hardfault, timeout: 5s}}\n  - expect-exit: {{code: 3, timeout: 5s}}\n",
            elf.display()
        ),
    );
    assert_eq!(code, Some(0), "{r}");
    let detail = &r["steps"][1]["detail"];
    assert_eq!(detail["source"], "vector-catch", "{r}");
    assert_eq!(
        detail["causes"],
        serde_json::json!(["UNDEFINSTR", "FORCED"])
    );
    assert_eq!(detail["cfsr"], 0x0001_0000);
    assert_eq!(detail["hfsr"], 0x4000_0000);
    assert_eq!(detail["function"], "crash_undefined");
    assert!(
        detail["location"]
            .as_str()
            .unwrap()
            .starts_with("crash_undefined"),
        "{detail}"
    );
}

/// Without a fault, an armed catch neither holds the firmware up nor
/// invents a fault: the step fails and says what happened instead.
#[test]
fn an_expected_fault_that_never_comes_names_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/hello", "mps2-an385");
    let (code, r) = run_scenario(
        dir.path(),
        "no-fault.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nsteps:\n  - boot: {{}}\n  \
             - expect-fault: {{kind: hardfault, timeout: 5s}}\n",
            elf.display()
        ),
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "failed");
    assert_eq!(
        r["error"],
        "expected a HardFault, but the target exited with code 0"
    );
}

#[test]
fn a_fault_with_another_cause_fails_and_names_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/fault", "mps2-an385");
    let (code, r) = run_scenario(
        dir.path(),
        "wrong-cause.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nargs: [undef]\nsteps:\n  - boot: {{}}\n  \
             - expect-fault: {{kind: hardfault, cause: PRECISERR, timeout: 5s}}\n",
            elf.display()
        ),
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "failed");
    assert_eq!(
        r["error"],
        "the fault's causes are UNDEFINSTR, FORCED, not PRECISERR"
    );
}

#[test]
fn a_missing_image_file_is_an_error_result() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = run_scenario(
        dir.path(),
        "missing.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: nowhere.elf}\nsteps:\n  - boot: {}\n",
    );
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "error");
    let error = r["error"].as_str().unwrap();
    assert!(error.contains("nowhere.elf does not exist"), "{error}");
}

#[test]
fn an_option_qemu_refuses_after_connecting_is_named_in_the_error() {
    // QEMU connects its QMP and serial sockets before it creates devices,
    // so a bad device closes the QMP connection: its stderr is the error.
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("qemu-configs")).unwrap();
    let profile = std::fs::read_to_string(common::repo().join("qemu-configs/mps2-an385.yaml"))
        .unwrap()
        .replace(
            "  memory: 16M\n",
            "  memory: 16M\n  args: [-device, no-such-device]\n",
        );
    std::fs::write(ws.path().join("qemu-configs/mps2-an385.yaml"), profile).unwrap();
    let elf = built_image("cortex-m/hello", "mps2-an385");
    let file = scenario(
        ws.path(),
        "s.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nsteps:\n  - boot: {{}}\n",
            elf.display()
        ),
    );
    let json = ws.path().join("report.json");
    let out = common::lab()
        .env("LAB_ROOT", ws.path())
        .args([
            "run",
            file.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let error = report(&json)["results"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("'no-such-device' is not a valid device model name"),
        "{error}"
    );
}

#[test]
fn a_missing_qemu_names_the_package_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let elf = built_image("cortex-m/hello", "mps2-an385");
    let file = scenario(
        dir.path(),
        "noqemu.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nsteps:\n  - boot: {{}}\n",
            elf.display()
        ),
    );
    let empty = tempfile::tempdir().unwrap();
    let out = common::lab()
        .env("PATH", empty.path())
        .args([
            "run",
            file.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let error = report(&json)["results"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("`qemu-system-arm` is not installed")
            && error.contains("Debian package `qemu-system-arm`"),
        "{error}"
    );
}

#[test]
fn ctrl_c_stops_qemu_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let elf = common::silent_elf(dir.path());
    let json = dir.path().join("report.json");
    let file = scenario(
        dir.path(),
        "forever.yaml",
        "version: 1\nboard: mps2-an385\nimage: {elf: silent.elf}\ntimeout: 60s\nsteps:\n  - boot: {}\n  - wait-serial: {match: 'READY'}\n",
    );
    let mut child = common::lab()
        .args([
            "run",
            file.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = elf.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while qemu_processes_with(needle).is_empty() {
        assert!(Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    common::ctrl_c(&child);
    let Some(status) = common::wait_timeout(&mut child, Duration::from_secs(10)) else {
        let _ = child.kill();
        panic!("lab did not stop after Ctrl-C");
    };
    assert_eq!(status.code(), Some(1));
    let r = &report(&json)["results"][0];
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["error"], "interrupted (Ctrl-C)");
    assert!(qemu_processes_with(needle).is_empty(), "QEMU left running");
}

#[test]
fn footprint_matches_the_toolchain_size_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let elf = built_image("cortex-m/hello", "mps2-an385");
    let file = scenario(
        dir.path(),
        "footprint.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: {}}}\nsteps:\n  - footprint: {{}}\n",
            elf.display()
        ),
    );
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let metrics = report(&json)["results"][0]["metrics"].clone();
    let size = std::process::Command::new("arm-none-eabi-size")
        .arg("-A")
        .arg(&elf)
        .output()
        .unwrap();
    let size = String::from_utf8(size.stdout).unwrap();
    let section = |name: &str| -> f64 {
        size.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .map_or(0.0, |n| n.parse().unwrap())
    };
    assert_eq!(metrics["text"], section(".text"));
    assert_eq!(metrics["bss"], section(".bss"));
    assert_eq!(metrics["data"], section(".data"));
    assert!(metrics["text"].as_f64().unwrap() > 0.0);
    assert_eq!(
        metrics["flash"].as_f64().unwrap(),
        metrics["text"].as_f64().unwrap()
            + metrics["rodata"].as_f64().unwrap()
            + metrics["data"].as_f64().unwrap()
    );
}

#[test]
fn memory_layout_places_the_heap_in_each_boards_psram() {
    let dir = tempfile::tempdir().unwrap();
    for (board, psram) in [("mps2-an385", 0x2100_0000u64), ("mps2-an500", 0x6000_0000)] {
        let json = dir.path().join(format!("{board}.json"));
        let elf = built_image("cortex-m/hello", board);
        let file = scenario(
            dir.path(),
            &format!("{board}.yaml"),
            &format!(
                "version: 1\nboard: {board}\nimage: {{elf: {}}}\nsteps:\n  - boot: {{halted: true}}\n  - memory-layout: {{}}\n",
                elf.display()
            ),
        );
        let out = run(&[
            "run",
            file.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let r = &report(&json)["results"][0];
        let detail = &r["steps"][1]["detail"];
        assert_eq!(detail["areas"]["heap"]["start"], psram, "{detail}");
        assert_eq!(detail["areas"]["heap"]["region"], "psram");
        assert_eq!(detail["areas"]["stack"]["region"], "sram");
        let text_section = detail["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == ".text")
            .unwrap();
        assert_eq!(text_section["region"], "code");
        assert!(
            detail["mtree"].as_str().unwrap().contains("mps.ssram"),
            "QEMU's own map is beside it"
        );
        assert_eq!(r["metrics"]["stack_size"], 16384.0);
    }
}

#[test]
fn trend_fits_a_series_from_the_console_and_checks_it_per_variant() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let elf = built_image("cortex-m/echo", "mps2-an385");
    std::fs::copy(&elf, dir.path().join("echo.elf")).unwrap();
    // The echo firmware sends back each line: a rising and a flat series.
    let rising: String = (1..=8)
        .map(|i| format!("S x={i} y={}\\n", 100 * i))
        .collect();
    let flat: String = (1..=8)
        .map(|i| format!("S x={i} y={}\\n", 500 + (i % 2) * 10))
        .collect();
    let file = scenario(
        dir.path(),
        "trend.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: echo.elf}}\ntimeout: 10s\n\
             matrix:\n  - {{name: leak, args: [leak]}}\n  - {{name: clean, args: [clean]}}\n\
             steps:\n  - boot: {{}}\n  - wait-serial: {{match: READY, timeout: 5s}}\n  \
             - send-serial: \"{rising}DONE\\n\"\n  \
             - trend: {{match: 'S x=(?P<x>\\d+) y=(?P<y>\\d+)', until: DONE, metric: growth, expect: {{leak: rising, clean: flat}}}}\n"
        ),
    );
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    // The same rising series in both variants: `leak` passes, `clean` fails.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = report(&json)["results"].as_array().unwrap().clone();
    let leak = results.iter().find(|r| r["variant"] == "leak").unwrap();
    let clean = results.iter().find(|r| r["variant"] == "clean").unwrap();
    assert_eq!(leak["status"], "passed", "{leak}");
    assert_eq!(leak["metrics"]["growth"], 100.0);
    assert_eq!(leak["metrics"]["growth_samples"], 8.0);
    assert_eq!(clean["status"], "failed");
    assert!(
        clean["error"]
            .as_str()
            .unwrap()
            .starts_with("the series is rising"),
        "{clean}"
    );
    // And a flat series is flat.
    let file = scenario(
        dir.path(),
        "flat.yaml",
        &format!(
            "version: 1\nboard: mps2-an385\nimage: {{elf: echo.elf}}\ntimeout: 10s\nsteps:\n  - boot: {{}}\n  \
             - wait-serial: {{match: READY, timeout: 5s}}\n  - send-serial: \"{flat}DONE\\n\"\n  \
             - trend: {{match: 'S x=(?P<x>\\d+) y=(?P<y>\\d+)', until: DONE, expect: flat}}\n"
        ),
    );
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_reader_that_goes_away_loses_no_result() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let hello = common::repo().join("scenarios/hello.yaml");
    // Like `lab run ... | head -1`: read one line, then close the pipe.
    let mut child = common::lab()
        .args([
            "run",
            hello.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let status = common::wait_timeout(&mut child, Duration::from_secs(30)).expect("lab ends");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let results = report(&json)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 9);
    assert!(results.iter().all(|r| r["status"] == "passed"));
}
