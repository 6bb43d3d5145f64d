//! Power cuts, power-on and nonvolatile storage against real QEMU: what the
//! firmware wrote to the board's `kind: nvm` region survives a cut and
//! comes back at power-on, what it wrote elsewhere does not; a run starts
//! with the region erased; the cut point is drawn from the seed; the
//! graceful warning reaches the firmware as its power-fail interrupt.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{RunReport, ScenarioYaml, copy_elf, lab_run, refused_by_check};

/// A scenario on mps2-an385 with `storage: {}`, booting a copy of the echo
/// firmware in `dir`, which prints READY and echoes lines.
fn with_storage(dir: &Path) -> ScenarioYaml {
    ScenarioYaml::elf("mps2-an385", copy_elf(dir, "cortex-m/echo", "mps2-an385"))
        .with("clock: virtual")
        .with("storage: {}")
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
}

/// The details of every step called `name` in a result, in order.
fn details<'r>(result: &'r Value, name: &str) -> Vec<&'r Value> {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == name)
        .map(|s| &s["detail"])
        .collect()
}

#[test]
fn storage_survives_a_cut_and_ram_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = with_storage(dir)
        .with("runs: 2")
        .step("attach-debugger: {}")
        // Erased at the start of every run, the second one too.
        .step("read-memory: {address: 0x21ff0000, length: 4, expect: [0xff, 0xff, 0xff, 0xff]}")
        .step("write-memory: {address: 0x21ff0000, bytes: [1, 2, 3, 4]}")
        .step("write-memory: {address: 0x21000000, bytes: [9, 9, 9, 9]}")
        .step("detach: {}")
        .step("power-cut: {mode: abrupt}")
        .step("power-on: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step("attach-debugger: {}")
        .step("read-memory: {address: 0x21ff0000, length: 8, expect: [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]}")
        .step("read-memory: {address: 0x21000000, length: 4, expect: [0, 0, 0, 0]}")
        .step("detach: {}")
        .step("send-serial: \"exit\\n\"")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .write(dir, "nv.yaml");
    let report = lab_run(dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
    for result in report.results() {
        let cut = details(result, "power-cut")[0];
        assert_eq!(cut["mode"], "abrupt", "{cut}");
        assert_eq!(cut["kept_bytes"], 65536, "{cut}");
    }
}

/// The cut points of `runs` runs of a campaign of three drawn cuts.
fn drawn_points(dir: &Path, seed: &str) -> Vec<Value> {
    let file = with_storage(dir)
        .step("power-cut: {at: {between: [1ms, 5ms]}}")
        .step("power-on: {}")
        .step("power-cut: {at: {between: [1ms, 5ms]}}")
        .step("power-on: {}")
        .step("power-cut: {mode: graceful, at: {between: [1ms, 5ms]}, hold-up: 1ms}")
        .write(dir, "drawn.yaml");
    let report = lab_run(dir, &file, &["-j", "1", "--seed", seed]);
    assert_eq!(report.code(), Some(0), "{report}");
    details(report.first(), "power-cut")
        .into_iter()
        .map(|d| d["at_us"].clone())
        .collect()
}

#[test]
fn the_seed_draws_the_same_cut_points_again() {
    let tmp = tempfile::tempdir().unwrap();
    let first = drawn_points(tmp.path(), "41");
    let again = drawn_points(tmp.path(), "41");
    let other = drawn_points(tmp.path(), "42");
    assert_eq!(first, again, "the same seed, the same points");
    assert_ne!(first, other, "another seed, other points");
    let distinct: std::collections::BTreeSet<String> = first.iter().map(Value::to_string).collect();
    assert_eq!(distinct.len(), 3, "each cut draws anew: {first:?}");
    for at in &first {
        let at = at.as_u64().unwrap();
        assert!((1_000..=5_000).contains(&at), "{at} µs is in [1, 5 ms]");
    }
}

#[test]
fn power_on_while_on_is_an_error_that_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = with_storage(dir).step("power-on: {}").write(dir, "on.yaml");
    let report: RunReport = lab_run(dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(1), "{report}");
    let error = report.first()["error"].as_str().unwrap();
    assert!(error.contains("already on: cut its power first"), "{error}");
}

#[test]
fn storage_on_a_board_without_a_nonvolatile_region_is_refused_where_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = ScenarioYaml::image("netduinoplus2", "cortex-m/echo")
        .with("storage: {}")
        .step("boot: {}")
        .write(tmp.path(), "flashless.yaml");
    let stderr = refused_by_check(&file);
    assert!(
        stderr.contains("flashless.yaml:") && stderr.contains("no nonvolatile storage"),
        "{stderr}"
    );
}

#[test]
fn bad_cut_options_are_refused_with_their_place() {
    let tmp = tempfile::tempdir().unwrap();
    for (step, says) in [
        ("power-cut: {mode: sudden}", "sudden"),
        ("power-cut: {at: {between: [5ms]}}", "two durations"),
        (
            "power-cut: {at: {between: [5ms, 1ms]}}",
            "starts after it ends",
        ),
        ("power-cut: {mode: abrupt, hold-up: 2ms}", "mode: graceful"),
        ("power-cut: {at: 5}", "duration"),
        ("power-cut: {at: 5ms, from: soon}", "duration"),
    ] {
        let file = ScenarioYaml::image("mps2-an385", "cortex-m/echo")
            .step("boot: {}")
            .step(step)
            .write(tmp.path(), "bad.yaml");
        let stderr = refused_by_check(&file);
        assert!(
            stderr.contains("bad.yaml:") && stderr.contains(says),
            "{step}: {stderr}"
        );
    }
}

#[test]
fn cuts_fall_on_the_firmware_s_own_time_across_its_reboot() {
    // The A/B update of images/cortex-m/ota, by the firmware's own SysTick
    // from its first flash write: the new image is verified until 225 ms,
    // the boot record switched and the board rebooted at 227.5 ms, the
    // trial boot committed at about 341 ms. The lab counts from the
    // timestamp the firmware printed (`from`), and across the reboot, which
    // restarts the board's counter, through the reset it holds.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("reboot.rhai"),
        r#"
        fn update_and_cut(at) {
            send_serial("UPDATE 2\n");
            let writing = wait_serial("UPDATE writing slot=. pages=\\d+ us=(?P<us>\\d+)", "5s");
            let cut = power_cut(#{mode: "abrupt", at: at, from: `${writing.us}us`});
            assert(cut.late_us < 50000, `the cut fell ${cut.late_us} us late`);
            power_on();
            wait_serial("(?s)^.*?READY version=\\d+", "5s").text
        }
        // During the verify: version 1 stays.
        let boot = update_and_cut("150ms");
        assert(boot.contains("READY version=1") && !boot.contains("TRIAL"), boot);
        // After the reboot, before the commit: the trial boot is pending.
        let boot = update_and_cut("290ms");
        assert(boot.contains("TRIAL version=2"), boot);
        "#,
    )
    .unwrap();
    let file = ScenarioYaml::elf("mps2-an385", copy_elf(dir, "cortex-m/ota", "mps2-an385"))
        .with("clock: virtual")
        .with("storage: {}")
        .with("args: [ab]")
        .with("timeout: 60s")
        .step("boot: {}")
        .step("wait-serial: {match: 'READY version=1', timeout: 10s}")
        .step("script: {file: reboot.rhai}")
        .write(dir, "reboot.yaml");
    let report = lab_run(dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
}
