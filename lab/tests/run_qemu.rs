//! `lab run` end to end: real QEMU, real firmware built by the project.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    ScenarioYaml, built_image, find_step_detail, lab, lab_run, lab_run_with, metric,
    qemu_processes_with, repo, step_detail, step_names,
};

/// A scenario that boots the silent firmware (see [`common::silent_elf`],
/// built into the scenario's folder) and waits for a line it never prints,
/// until the scenario's `timeout`.
fn silent(timeout: &str) -> ScenarioYaml {
    ScenarioYaml::elf("mps2-an385", "silent.elf")
        .with(format!("timeout: {timeout}"))
        .step("boot: {}")
        .step("wait-serial: {match: 'READY'}")
}

#[test]
fn hello_passes_on_every_board_with_identical_virtual_boot_times() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let hello = repo().join("scenarios/hello.yaml");
    let ran = lab_run(
        dir.path(),
        &hello,
        &["-j", "2", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    let results = ran.results();
    assert_eq!(results.len(), 9, "3 boards x 3 runs");
    for r in results {
        assert_eq!(r["status"], "passed", "{r}");
        assert_eq!(r["target"], "qemu");
        assert_eq!(step_names(r), ["boot", "wait-serial", "expect-exit"]);
        assert!(metric(r, "boot_us") > 0.0, "{r}");
    }
    // clock: virtual makes guest time repeat exactly, run after run.
    for s in ran.json["summaries"].as_array().unwrap() {
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
    let table = ran.stdout();
    assert!(table.contains("passed 3/3"), "{table}");
}

#[test]
fn echo_round_trips_a_line_over_the_serial_port() {
    let dir = tempfile::tempdir().unwrap();
    let ran = lab_run(dir.path(), &repo().join("scenarios/echo.yaml"), &[]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(
        step_names(ran.first()),
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
    let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/hello")
        .step("boot: {}")
        .step("expect-exit: {code: 3, timeout: 5s}")
        .run(dir.path(), "wrong-exit.yaml");
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
    let mine = ScenarioYaml::elf("mps2-an500", "mine.elf").with("clock: virtual");
    // A capture that is not a number fails the step with a clear message.
    let (code, r) = mine
        .clone()
        .step("boot: {}")
        .step("wait-serial: {match: 'hello from (?P<x>mps2)?', timeout: 5s}")
        .step(r"wait-serial: {match: 'READY boot_us=(?P<boot_us>\d+)', timeout: 5s}")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .run(dir.path(), "mine.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("capture `x` is \"mps2\", not a number")
    );
    let (code, r) = mine
        .step("boot: {}")
        .step(r"wait-serial: {match: 'READY boot_us=(?P<boot_us>\d+)', timeout: 5s}")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .run(dir.path(), "mine.yaml");
    assert_eq!(code, Some(0), "{r}");
    assert!(metric(&r, "boot_us") > 0.0);
}

#[test]
fn a_silent_firmware_times_out_on_schedule_and_leaves_no_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let elf = common::silent_elf(dir.path());
    let started = Instant::now();
    let (code, r) = silent("2s").run(dir.path(), "silent.yaml");
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{r}");
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
    let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/fault")
        .with("args: [lockup]")
        .with("timeout: 10s")
        .step("boot: {}")
        .step("wait-serial: {match: 'never printed'}")
        .run(dir.path(), "lockup.yaml");
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
    let ran = lab_run(dir.path(), &repo().join("scenarios/faults"), &[]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let caught = |scenario| find_step_detail(ran.result_with("scenario", scenario), "expect-fault");
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
    let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/user-fault")
        .with("args: [undef]")
        .step("boot: {}")
        .step("expect-fault: {kind: hardfault, timeout: 5s}")
        .step("expect-exit: {code: 3, timeout: 5s}")
        .run(dir.path(), "user.yaml");
    assert_eq!(code, Some(0), "{r}");
    let detail = step_detail(&r, 1, "expect-fault");
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
    let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/hello")
        .step("boot: {}")
        .step("expect-fault: {kind: hardfault, timeout: 5s}")
        .run(dir.path(), "no-fault.yaml");
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
    let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/fault")
        .with("args: [undef]")
        .step("boot: {}")
        .step("expect-fault: {kind: hardfault, cause: PRECISERR, timeout: 5s}")
        .run(dir.path(), "wrong-cause.yaml");
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
    let (code, r) = ScenarioYaml::elf("mps2-an385", "nowhere.elf")
        .step("boot: {}")
        .run(dir.path(), "missing.yaml");
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
    let profile = std::fs::read_to_string(repo().join("qemu-configs/mps2-an385.yaml"))
        .unwrap()
        .replace(
            "  memory: 16M\n",
            "  memory: 16M\n  args: [-device, no-such-device]\n",
        );
    std::fs::write(ws.path().join("qemu-configs/mps2-an385.yaml"), profile).unwrap();
    let file = ScenarioYaml::built("mps2-an385", "cortex-m/hello")
        .step("boot: {}")
        .write(ws.path(), "s.yaml");
    let ran = lab_run_with(lab().env("LAB_ROOT", ws.path()), ws.path(), &file, &[]);
    assert_eq!(ran.code(), Some(1), "{ran}");
    let error = ran.first()["error"].as_str().unwrap();
    assert!(
        error.contains("'no-such-device' is not a valid device model name"),
        "{error}"
    );
}

#[test]
fn a_missing_qemu_names_the_package_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let file = ScenarioYaml::built("mps2-an385", "cortex-m/hello")
        .step("boot: {}")
        .write(dir.path(), "noqemu.yaml");
    let empty = tempfile::tempdir().unwrap();
    let ran = lab_run_with(lab().env("PATH", empty.path()), dir.path(), &file, &[]);
    assert_eq!(ran.code(), Some(1), "{ran}");
    let error = ran.first()["error"].as_str().unwrap();
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
    let file = silent("60s").write(dir.path(), "forever.yaml");
    let mut child = lab()
        .arg("run")
        .arg(&file)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let needle = elf.to_str().unwrap();
    common::wait_until(Duration::from_secs(20), "QEMU starts", || {
        !qemu_processes_with(needle).is_empty()
    });
    common::ctrl_c(&child);
    let Some(status) = common::wait_timeout(&mut child, Duration::from_secs(10)) else {
        let _ = child.kill();
        panic!("lab did not stop after Ctrl-C");
    };
    assert_eq!(status.code(), Some(1));
    let r = &common::report(&json)["results"][0];
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["error"], "interrupted (Ctrl-C)");
    assert!(qemu_processes_with(needle).is_empty(), "QEMU left running");
}

#[test]
fn footprint_matches_the_toolchain_size_report() {
    let dir = tempfile::tempdir().unwrap();
    let elf = built_image("cortex-m/hello", "mps2-an385");
    let (code, r) = ScenarioYaml::elf("mps2-an385", &elf)
        .step("footprint: {}")
        .run(dir.path(), "footprint.yaml");
    assert_eq!(code, Some(0), "{r}");
    let metrics = &r["metrics"];
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
        let (code, r) = ScenarioYaml::built(board, "cortex-m/hello")
            .step("boot: {halted: true}")
            .step("memory-layout: {}")
            .run(dir.path(), &format!("{board}.yaml"));
        assert_eq!(code, Some(0), "{r}");
        let detail = step_detail(&r, 1, "memory-layout");
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
    let elf = common::copy_elf(dir.path(), "cortex-m/echo", "mps2-an385");
    let echo = ScenarioYaml::elf("mps2-an385", elf).with("timeout: 10s");
    // The echo firmware sends back each line: a rising and a flat series.
    let rising: String = (1..=8)
        .map(|i| format!("S x={i} y={}\\n", 100 * i))
        .collect();
    let flat: String = (1..=8)
        .map(|i| format!("S x={i} y={}\\n", 500 + (i % 2) * 10))
        .collect();
    let file = echo
        .clone()
        .with("matrix:\n  - {name: leak, args: [leak]}\n  - {name: clean, args: [clean]}")
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step(format!("send-serial: \"{rising}DONE\\n\""))
        .step(
            r"trend: {match: 'S x=(?P<x>\d+) y=(?P<y>\d+)', until: DONE, metric: growth, expect: {leak: rising, clean: flat}}",
        )
        .write(dir.path(), "trend.yaml");
    let ran = lab_run(dir.path(), &file, &[]);
    // The same rising series in both variants: `leak` passes, `clean` fails.
    assert_eq!(ran.code(), Some(1), "{ran}");
    let leak = ran.result_with("variant", "leak");
    let clean = ran.result_with("variant", "clean");
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
    let (code, r) = echo
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step(format!("send-serial: \"{flat}DONE\\n\""))
        .step(r"trend: {match: 'S x=(?P<x>\d+) y=(?P<y>\d+)', until: DONE, expect: flat}")
        .run(dir.path(), "flat.yaml");
    assert_eq!(code, Some(0), "{r}");
}

#[test]
fn a_reader_that_goes_away_loses_no_result() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    // Like `lab run ... | head -1`: read one line, then close the pipe.
    let mut child = lab()
        .arg("run")
        .arg(repo().join("scenarios/hello.yaml"))
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    let results = common::report(&json)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 9);
    assert!(results.iter().all(|r| r["status"] == "passed"));
}
