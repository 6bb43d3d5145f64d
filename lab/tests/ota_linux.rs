//! The OTA power-loss experiment's guest programs on a Linux board
//! (virt-a53, real QEMU, real images), with the lines of
//! images/cortex-m/ota: `READY version=V`, `UPDATE writing bytes=N`,
//! `UPDATE done`, `COMMIT version=V`, `ROLLBACK ...`, `BRICKED ...`.
//!
//! - Go (`/bin/app ota`, images/raspi/go/ota.go): an A/B update of a 4 MiB
//!   image in /data/ota, fsynced, verified, renamed, started on trial and
//!   committed. Committed, it survives a cut; cut in the middle of its
//!   write, version 1 comes back intact and a new update goes through.
//! - Node (`node /app/ota.js`, images/raspi/node/ota.js): a hot swap of
//!   /data/app/app.js, written in place without fsync. Cut at once, the
//!   disk holds whatever ext4 had written (any protocol outcome); cut after
//!   ext4's 5 s journal commit, version 2 is there.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{RunReport, ScenarioYaml, lab_run, metric};

/// After a power-on: waits for the disk, then sorts the start as the
/// Cortex-M campaign does. Metrics: `after_version` (0 bricked),
/// `after_ready_ms` (guest ms since kernel start at READY),
/// `after_rollback` and `after_recover` (1 when the start printed them).
const AFTER_POWER_ON: &str = r#"
let start = wait_serial("(?s)^.*?(?:READY version=(?P<v>\\d+) t_ms=(?P<ms>\\d+)|BRICKED)", "120s");
if start.text.contains("BRICKED") {
    metric("after_version", 0);
} else {
    metric("after_version", parse_int(start.v));
    metric("after_ready_ms", parse_int(start.ms));
}
metric("after_rollback", if start.text.contains("ROLLBACK") { 1 } else { 0 });
metric("after_recover", if start.text.contains("RECOVER") { 1 } else { 0 });
"#;

/// A scenario on virt-a53 with `image`'s disk, running `args`, booted to
/// `READY version=1`; it writes the classifying script beside it.
fn booted(dir: &Path, image: &str, args: &str) -> ScenarioYaml {
    std::fs::write(dir.join("after.rhai"), AFTER_POWER_ON).unwrap();
    ScenarioYaml::image("virt-a53", image)
        .with("timeout: 300s")
        .with("storage: {}")
        .with(format!("args: {args}"))
        .step("boot: {}")
        .step("wait-serial: {match: 'LAB disk /data t_ms=(?P<mount_ms>\\d+)', timeout: 120s}")
        .step("wait-serial: {match: 'READY version=1 t_ms=(?P<ready_ms>\\d+)', timeout: 120s}")
}

/// `UPDATE 2` sent and its first write to the disk seen.
fn update_started(scenario: ScenarioYaml) -> ScenarioYaml {
    scenario.step("send-serial: \"UPDATE 2\\n\"").step(
        "wait-serial: {match: 'UPDATE writing bytes=(?P<bytes>\\d+) \
             t_us=(?P<writing_us>\\d+)', timeout: 60s}",
    )
}

/// [`update_started`], then version 2 running.
fn updated(scenario: ScenarioYaml) -> ScenarioYaml {
    update_started(scenario).step(
        "wait-serial: {match: 'READY version=2 t_ms=\\d+ t_us=(?P<ready2_us>\\d+)', timeout: 60s}",
    )
}

/// The cut, the power-on, the disk mounted again and the start sorted.
fn cut_and_power_on(scenario: ScenarioYaml) -> ScenarioYaml {
    scenario
        .step("power-cut: {mode: abrupt}")
        .step("power-on: {}")
        .step("wait-serial: {match: 'LAB disk /data t_ms=(?P<remount_ms>\\d+)', timeout: 120s}")
        .step("script: {file: after.rhai, timeout: 150s}")
}

/// Runs the scenario at `-j 1`, expects it to pass, prints its metrics
/// (for the record: `cargo test -- --nocapture`) and returns them.
fn passed(dir: &Path, scenario: &ScenarioYaml, name: &str) -> Value {
    let file = scenario.write(dir, name);
    let report: RunReport = lab_run(dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
    let result = report.first().clone();
    println!("{name}: {}", result["metrics"]);
    result
}

const GO: &str = "[lab.run=/bin/app, --, ota]";
const NODE: &str = "[lab.run=/usr/bin/node, --, /app/ota.js]";

#[test]
fn go_s_committed_update_survives_a_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = updated(booted(dir, "raspi/go", GO))
        .step("wait-serial: {match: 'COMMIT version=2', timeout: 30s}");
    let r = passed(dir, &cut_and_power_on(s), "go-commit.yaml");
    assert_eq!(metric(&r, "bytes"), (4 << 20) as f64, "{r}");
    assert!(metric(&r, "ready2_us") > metric(&r, "writing_us"), "{r}");
    assert_eq!(metric(&r, "after_version"), 2.0, "{r}");
    assert_eq!(metric(&r, "after_rollback"), 0.0, "{r}");
}

#[test]
fn go_cut_in_the_middle_of_its_write_starts_version_1_intact_and_updates_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = cut_and_power_on(update_started(booted(dir, "raspi/go", GO)))
        // What the cut left (app.new) is cleared: the update goes through.
        .step("send-serial: \"UPDATE 2\\n\"")
        .step("wait-serial: {match: 'READY version=2', timeout: 60s}")
        .step("wait-serial: {match: 'COMMIT version=2', timeout: 30s}");
    let r = passed(dir, &s, "go-torn.yaml");
    assert_eq!(metric(&r, "after_version"), 1.0, "{r}");
    assert_eq!(
        metric(&r, "after_rollback"),
        0.0,
        "checked, not rolled back: {r}"
    );
    assert_eq!(metric(&r, "after_recover"), 0.0, "{r}");
}

#[test]
fn node_s_hot_swap_cut_at_once_starts_whatever_ext4_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = cut_and_power_on(updated(booted(dir, "raspi/node", NODE)));
    let r = passed(dir, &s, "node-now.yaml");
    let bytes = metric(&r, "bytes");
    assert!((150e3..300e3).contains(&bytes), "about 200 KiB: {r}");
    let after = metric(&r, "after_version");
    assert!([0.0, 1.0, 2.0].contains(&after), "bricked, old or new: {r}");
}

#[test]
fn node_s_hot_swap_is_on_the_disk_after_ext4_s_journal_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // ext4 commits every 5 s: past that, the new module is on the disk.
    let s = updated(booted(dir, "raspi/node", NODE)).step("sleep: 6s");
    let r = passed(dir, &cut_and_power_on(s), "node-synced.yaml");
    assert_eq!(metric(&r, "after_version"), 2.0, "{r}");
}
