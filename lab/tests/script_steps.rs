//! `script:` steps against real QEMU: every host function a script can call,
//! seeded random numbers, and how script failures end a run.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use common::{
    ScenarioYaml, built_image_dir, copy_elf, lab_run, qemu_processes_with, refused_by_check, repo,
    run_scenario, scenario,
};

/// A scenario on mps2-an385 that boots a copy of `image`'s ELF in `dir`.
fn an385(dir: &Path, image: &str) -> ScenarioYaml {
    ScenarioYaml::elf("mps2-an385", copy_elf(dir, image, "mps2-an385"))
}

/// Runs `script`, from a file beside a scenario on mps2-an385 that boots
/// `image` (held at reset if `halted`) and then runs the script, with `lab
/// run` arguments `args`; returns (exit code, result).
fn run_script(image: &str, halted: bool, script: &str, args: &[&str]) -> (Option<i32>, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("test.rhai"), script).unwrap();
    let file = an385(dir, image)
        .with("timeout: 20s")
        .step(format!("boot: {{halted: {halted}}}"))
        .step("script: {file: test.rhai}")
        .write(dir, "script.yaml");
    let ran = lab_run(dir, &file, args);
    (ran.code(), ran.first().clone())
}

/// A scenario on mps2-an385 whose echo firmware boots, then runs the script
/// in file `script`, for `lab check`.
fn echo_then(script: &str) -> ScenarioYaml {
    ScenarioYaml::image("mps2-an385", "cortex-m/echo")
        .step("boot: {}")
        .step(format!("script: {{file: {script}}}"))
}

#[test]
fn serial_qmp_hmp_and_run_control_from_a_script() {
    let (code, r) = run_script(
        "cortex-m/echo",
        false,
        r#"
        wait_serial("READY", "5s");
        send_serial("ping\n");
        let echoed = wait_serial("(?m)^(?P<word>p[a-z]+)$", "2s");
        assert(echoed.word == "ping", "the echo came back");
        assert(qmp("query-status").status == "running", "running");
        pause();
        assert(qmp("query-status").status == "paused", "paused");
        resume();
        assert(hmp("info mtree").contains("ssram"), "the memory map");
        metric("answer", 42);
        metric("dice", random_int(1, 6));
        sleep("10ms");
        send_serial("exit\n");
        assert(expect_exit("5s") == 0, "a clean exit");
        "#,
        &["--seed", "5"],
    );
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["metrics"]["answer"], 42.0);
    let dice = r["metrics"]["dice"].as_f64().unwrap();
    assert!((1.0..=6.0).contains(&dice), "{dice}");
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    let rolls = |seed: &str| {
        let (code, r) = run_script(
            "cortex-m/echo",
            false,
            "for i in 0..5 { metric(`roll${i}`, random_int(1, 1000000)); }",
            &["--seed", seed],
        );
        assert_eq!(code, Some(0), "{r}");
        (0..5)
            .map(|i| r["metrics"][format!("roll{i}")].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(rolls("11"), rolls("11"));
    assert_ne!(rolls("11"), rolls("12"));
}

#[test]
fn the_debugger_from_a_script() {
    let (code, r) = run_script(
        "cortex-m/debuggee",
        true,
        r#"
        attach_debugger("5s");
        break_at("main");
        let stop = continue_to("5s");
        assert(stop.function == "main", "stopped in main");
        assert(read_symbol("lab_exit_code") == 0, "starts at 0");
        write_symbol("lab_exit_code", 9);
        let pc = read_register("pc");
        assert(pc == stop.pc, "pc is where it stopped");
        let code = read_memory(pc, 4);
        assert(code.len() == 4, "four bytes of code");
        step(2);
        assert(read_register("pc") != pc, "stepping moves the pc");
        write_memory(0x20000000, [1, 2, 3, 4]);
        assert(read_memory(0x20000000, 4) == [1, 2, 3, 4], "memory written");
        detach();
        assert(expect_exit("5s") == 9, "the exit code shows the write");
        "#,
        &[],
    );
    assert_eq!(code, Some(0), "{r}");
    assert!(r["metrics"]["attach_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_failed_assert_fails_the_run_at_its_position() {
    let (code, r) = run_script(
        "cortex-m/echo",
        false,
        "wait_serial(\"READY\", \"5s\");\nassert(1 == 2, \"one is not two\");\n",
        &[],
    );
    assert_eq!(code, Some(1));
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("test.rhai:2:") && error.contains("one is not two"),
        "{error}"
    );
}

#[test]
fn a_host_error_is_an_error_and_names_the_call() {
    let (code, r) = run_script(
        "cortex-m/echo",
        false,
        "wait_serial(\"NEVER\", \"200ms\");\n",
        &[],
    );
    assert_eq!(code, Some(1));
    assert_eq!(r["status"], "error", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("`NEVER` did not appear"),
        "{r}"
    );
}

#[test]
fn a_script_that_loops_forever_ends_at_the_deadline_with_no_qemu_left() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = an385(dir.path(), "cortex-m/echo")
        .with("timeout: 2s")
        .step("boot: {}")
        .step(r#"script: {source: 'loop { sleep("50ms"); }'}"#)
        .run(dir.path(), "forever.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "timeout", "{r}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(qemu_processes_with(dir.path().to_str().unwrap()).is_empty());
}

#[test]
fn lab_check_catches_an_unknown_host_function() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.rhai"),
        "wait_serail(\"READY\", \"1s\");\n",
    )
    .unwrap();
    let file = echo_then("typo.rhai").write(dir.path(), "typo.yaml");
    let stderr = refused_by_check(&file);
    assert!(
        stderr.contains("typo.rhai:1:1: unknown function `wait_serail`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `wait_serial`"), "{stderr}");
}

#[test]
fn lab_check_catches_a_script_booting_an_unknown_board_or_a_foreign_image() {
    let dir = tempfile::tempdir().unwrap();
    let check = |script: &str| {
        std::fs::write(dir.path().join("swap.rhai"), script).unwrap();
        refused_by_check(&echo_then("swap.rhai").write(dir.path(), "swap.yaml"))
    };
    let stderr = check("wait_serial(\"READY\");\nboot(#{board: \"mps2-an999\"});\n");
    assert!(
        stderr.contains("swap.rhai:2:1: unknown board `mps2-an999`")
            && stderr.contains("mps2-an500"),
        "{stderr}"
    );
    let stderr = check("boot(#{board: \"virt-a53\", image: \"cortex-m/hello\"});\n");
    assert!(
        stderr.contains("swap.rhai:1:1: image `cortex-m/hello` is built for armv7m, but board `virt-a53` is aarch64"),
        "{stderr}"
    );
}

#[test]
fn a_spinning_script_hits_the_operations_limit_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    // The deadline is only a safety net here: in a debug build on a loaded
    // machine, 10 million operations took longer than 20 s.
    let (code, r) = an385(dir.path(), "cortex-m/echo")
        .with("timeout: 120s")
        .step("boot: {}")
        .step("script: {source: 'let n = 0; loop { n += 1; }'}")
        .run(dir.path(), "spin.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "error", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(error.contains("spin.yaml (inline script):1:"), "{error}");
    assert!(error.contains("max_operations"), "{error}");
}

#[test]
fn the_seeded_reset_campaign_comes_back_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = repo().join("scenarios/scripted/reset-campaign.rhai");
    let ran = lab_run(dir.path(), &campaign, &["--seed", "3"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.json["seed"], 3);
    let r = ran.first();
    assert_eq!(r["metrics"]["healthy"], 10.0);
    assert_eq!(r["metrics"]["rounds"], 10.0);
}

#[test]
fn a_rhai_file_is_a_scenario_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let script = repo().join("scenarios/scripted/echo-lines.rhai");
    let ran = lab_run(dir.path(), &script, &["--seed", "8"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let r = ran.first();
    assert_eq!(r["scenario"], "echo-lines");
    assert_eq!(r["board"], "mps2-an385");
    let lines = r["metrics"]["lines"].as_f64().unwrap();
    assert!((5.0..=20.0).contains(&lines), "{lines}");
}

#[test]
fn a_rhai_scenario_without_its_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "bare.rhai", "boot();\n");
    let stderr = refused_by_check(&file);
    assert!(
        stderr.contains("bare.rhai:1:1: a .rhai scenario declares `const BOARD"),
        "{stderr}"
    );
}

#[test]
fn bisecting_the_smallest_js_heap_over_boots_repeats_exactly() {
    let smallest = || {
        let dir = tempfile::tempdir().unwrap();
        let script = repo().join("scenarios/scripted/smallest-js-heap.rhai");
        let ran = lab_run(dir.path(), &script, &[]);
        assert_eq!(ran.code(), Some(0), "{ran}");
        let r = ran.first();
        assert!(r["metrics"]["boots"].as_f64().unwrap() >= 3.0, "{r}");
        r["metrics"]["smallest_arena"].as_f64().unwrap()
    };
    let first = smallest();
    assert!(first > 1024.0 && first <= 262_144.0, "{first}");
    assert_eq!(first, smallest(), "icount makes every boot behave the same");
}

#[test]
fn boot_from_a_script_power_cycles_with_new_arguments() {
    let (code, r) = run_script(
        "cortex-m/fault",
        false,
        r#"
        // The scenario booted `fault` without arguments: it prints its usage.
        wait_serial("usage", "5s");
        boot(#{args: ["undef"]});
        wait_serial("HARDFAULT", "5s");
        assert(expect_exit("5s") == 70, "the fault report's exit code");
        "#,
        &[],
    );
    assert_eq!(code, Some(0), "{r}");
}

#[test]
fn sleep_guest_waits_for_guest_time_as_icount_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    // `echo` polls its UART without sleeping, so under icount (shift 7 on
    // mps2-an385) guest time is exactly 128 ns per instruction: QEMU's own
    // instruction counter checks the board's counter.
    std::fs::write(
        dir.path().join("test.rhai"),
        r#"
        wait_serial("READY", "5s");
        let before = qmp("query-replay").icount;
        let slept = sleep_guest("100ms");
        let after = qmp("query-replay").icount;
        metric("slept_us", slept);
        metric("icount_us", (after - before) * 128 / 1000);
        pause();
        let refused = "";
        try { sleep_guest("1ms"); } catch (e) { refused = e.message; }
        assert(refused.contains("paused"), "a paused guest's time stands still: " + refused);
        resume();
        send_serial("exit\n");
        expect_exit("5s");
        "#,
    )
    .unwrap();
    let (code, r) = an385(dir.path(), "cortex-m/echo")
        .with("clock: virtual")
        .with("timeout: 20s")
        .step("boot: {}")
        .step("script: {file: test.rhai}")
        .run(dir.path(), "guest-sleep.yaml");
    assert_eq!(code, Some(0), "{r}");
    let slept = r["metrics"]["slept_us"].as_f64().unwrap();
    let counted = r["metrics"]["icount_us"].as_f64().unwrap();
    assert!(slept >= 100_000.0, "slept {slept} µs of guest time");
    assert!(
        counted >= slept,
        "icount saw {counted} µs around a sleep of {slept} µs"
    );
}

#[test]
fn boot_from_a_script_switches_board_and_image() {
    common::built_image("cortex-m/hello", "mps2-an500");
    let (code, r) = run_script(
        "cortex-m/echo",
        false,
        r#"
        wait_serial("READY", "5s");
        boot(#{board: "mps2-an500", image: "cortex-m/hello", halted: true});
        assert(hmp("info qom-tree").contains("cortex-m7-arm-cpu"), "an M7 runs now");
        resume();
        wait_serial("READY boot_us=(?P<us>[0-9]+)", "5s");
        assert(expect_exit("5s") == 0, "hello exits cleanly");
        boot(#{image: "cortex-m/echo"});
        wait_serial("READY", "5s");
        let refused = "";
        // A name computed at run time is checked when the call is made.
        let board = "mps2-an" + 999;
        try { boot(#{board: board}); } catch (e) { refused = e.message; }
        assert(refused.contains("unknown board `mps2-an999`")
               && refused.contains("mps2-an500"), refused);
        send_serial("exit\n");
        assert(expect_exit("5s") == 0, "echo exits cleanly");
        "#,
        &[],
    );
    assert_eq!(code, Some(0), "{r}");
}

#[test]
fn sleep_guest_on_a_board_without_a_guest_clock_says_so() {
    let dir = tempfile::tempdir().unwrap();
    built_image_dir("raspi/busybox", "virt-a53");
    let (code, r) = run_scenario(
        dir.path(),
        "test.rhai",
        r#"
        const BOARD = "virt-a53";
        const IMAGE = "raspi/busybox";
        boot();
        sleep_guest("1ms");
        "#,
    );
    assert_eq!(code, Some(1), "{r}");
    let error = r["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("board `virt-a53` has no guest clock") && error.contains("test.rhai:5:"),
        "{error}"
    );
}

/// `sleep:` as a YAML step is the same operation as the script functions:
/// guest time from the board's counter, wall time from the host.
#[test]
fn the_sleep_step_lets_guest_time_and_wall_time_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = an385(dir.path(), "cortex-m/echo")
        .with("clock: virtual")
        .with("timeout: 20s")
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step("sleep: {guest: 100ms}")
        .step("sleep: 20ms")
        .step("send-serial: \"exit\\n\"")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .run(dir.path(), "sleep.yaml");
    assert_eq!(code, Some(0), "{r}");
    let guest = common::step_detail(&r, 2, "sleep");
    assert_eq!(guest["clock"], "guest", "{r}");
    let slept = guest["slept_us"].as_f64().unwrap();
    assert!(slept >= 100_000.0, "slept {slept} µs of guest time");
    assert_eq!(common::step_detail(&r, 3, "sleep")["clock"], "wall");
    assert!(
        r["steps"][3]["duration_ms"].as_f64().unwrap() >= 20.0,
        "{r}"
    );
}

/// The script functions check their arguments before anything reaches the
/// target: a script that never boots gets each error, catchable, through a
/// real `lab run`.
#[test]
fn script_functions_refuse_bad_arguments_with_what_to_write() {
    let cases = [
        ("sleep(5)", "needs a unit"),
        ("sleep(0.5)", "needs a unit"),
        ("sleep(\"5\")", "unit"),
        ("sleep_guest(1)", "needs a unit"),
        ("wait_serial(\"x\", 5)", "needs a unit"),
        ("expect_exit(\"10\")", "unit"),
        ("boot(#{bord: \"x\"})", "did you mean `board`?"),
        ("boot(#{halted: 1})", "`halted` must be true or false"),
        ("wait_serial(\"(\", \"1s\")", "invalid pattern"),
        ("step(0)", "1 or more"),
        ("read_memory(-1, 4)", "0 or more"),
        ("write_memory(0, [256])", "0 to 255"),
        ("break_at(-2)", "0 or more"),
    ];
    let mut script = String::from(
        "const BOARD = \"mps2-an385\";\nconst IMAGE = \"cortex-m/echo\";\nlet got = [];\n",
    );
    for (call, _) in &cases {
        script.push_str(&format!(
            "try {{ {call}; got.push(\"no error\"); }} catch (e) {{ got.push(`${{e}}`); }}\n"
        ));
    }
    script.push_str("throw got.reduce(|all, e| all + \" | \" + e, \"\");\n");
    let dir = tempfile::tempdir().unwrap();
    built_image_dir("cortex-m/echo", "mps2-an385");
    let (code, r) = run_scenario(dir.path(), "api.rhai", &script);
    assert_eq!(code, Some(1), "{r}");
    let errors = r["error"].as_str().unwrap().to_owned();
    // The thrown text starts with an empty item: the errors follow, in order.
    let got: Vec<&str> = errors.split(" | ").skip(1).collect();
    assert_eq!(got.len(), cases.len(), "{errors}");
    for ((call, needle), error) in cases.iter().zip(got) {
        assert!(
            error.contains(needle),
            "`{call}` should fail with `{needle}`: {error}"
        );
    }
}
