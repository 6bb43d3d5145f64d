//! Warm starts and snapshots against real QEMU: a `warm-up` saved once and
//! restored by later runs (in another process too), the cache key, `--cold`,
//! identical metrics from one snapshot under `clock: virtual`, and
//! `snapshot-save`/`snapshot-restore` inside a run.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{RunReport, ScenarioYaml, built_image, copy_elf, lab_run_with, refused_by_check};

/// A scenario on mps2-an385 booting a copy of `image`'s ELF in `dir`, whose
/// `warm-up` (YAML lines, without dashes) comes first.
fn warm(dir: &Path, image: &str, warm_up: &[&str]) -> ScenarioYaml {
    let mut yaml =
        ScenarioYaml::elf("mps2-an385", copy_elf(dir, image, "mps2-an385")).with("warm-up:");
    for step in warm_up {
        yaml = yaml.with(format!("  - {step}"));
    }
    yaml
}

/// `lab run FILE ARGS` with the snapshot cache in `dir/snapshots`, so that
/// each test starts from an empty cache of its own.
fn run(dir: &Path, file: &Path, args: &[&str]) -> RunReport {
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.join("snapshots"));
    lab_run_with(&mut lab, dir, file, args)
}

/// The step names of a result.
fn steps(result: &Value) -> Vec<&str> {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect()
}

#[test]
fn the_first_run_saves_the_warm_up_and_later_runs_restore_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = warm(
        dir,
        "cortex-m/echo",
        &["boot: {}", "wait-serial: {match: READY, timeout: 5s}"],
    )
    .with("runs: 3")
    .step("send-serial: \"ping\\n\"")
    .step("wait-serial: {match: '(?m)^ping$', timeout: 5s}")
    .step("send-serial: \"exit\\n\"")
    .step("expect-exit: {code: 0, timeout: 5s}")
    .write(dir, "warm.yaml");

    let first = run(dir, &file, &["-j", "2"]);
    assert_eq!(first.code(), Some(0), "{first}");
    let starts = first.each("start");
    assert_eq!(
        starts.iter().filter(|s| **s == "cold").count(),
        1,
        "{first}"
    );
    assert_eq!(
        starts.iter().filter(|s| **s == "warm").count(),
        2,
        "{first}"
    );
    let snapshot = first.first()["snapshot"].as_str().unwrap().to_owned();
    assert!(first.each("snapshot").iter().all(|s| *s == snapshot));
    assert!(Path::new(&snapshot).is_file(), "{snapshot}");
    assert!(snapshot.starts_with(&*dir.join("snapshots").to_string_lossy()));
    let cold = first.result_with("start", "cold");
    assert_eq!(
        steps(cold),
        [
            "boot",
            "wait-serial",
            "warm-up",
            "send-serial",
            "wait-serial",
            "send-serial",
            "expect-exit"
        ]
    );
    let warm_run = first.result_with("start", "warm");
    assert_eq!(
        steps(warm_run),
        [
            "warm-up",
            "send-serial",
            "wait-serial",
            "send-serial",
            "expect-exit"
        ]
    );
    assert_eq!(warm_run["steps"][0]["detail"]["start"], "warm");

    // Another process restores the same snapshot; `--cold` ignores it.
    let again = run(dir, &file, &[]);
    assert_eq!(again.each("start"), ["warm", "warm", "warm"], "{again}");
    let cold = run(dir, &file, &["--cold"]);
    assert_eq!(cold.code(), Some(0), "{cold}");
    assert_eq!(cold.each("start"), ["cold", "cold", "cold"], "{cold}");
    assert!(cold.first()["snapshot"].is_null(), "{cold}");
}

#[test]
fn a_snapshot_stays_only_once_the_run_that_saved_it_passed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scenario = |answer: &str| {
        warm(
            dir,
            "cortex-m/echo",
            &["boot: {}", "wait-serial: {match: READY, timeout: 5s}"],
        )
        .with("runs: 2")
        .step("send-serial: \"ping\\n\"")
        .step(format!(
            "wait-serial: {{match: '(?m)^{answer}$', timeout: 1s}}"
        ))
        .write(dir, "probation.yaml")
    };
    let snapshots = || {
        std::fs::read_dir(dir.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".snap"))
            .count()
    };

    // Each failed run takes its snapshot with it: the other run of the
    // key, which waited, saves afresh, and nothing is left to restore.
    let failed = run(dir, &scenario("pong"), &["-j", "2"]);
    assert_eq!(failed.code(), Some(1), "{failed}");
    assert_eq!(failed.each("start"), ["cold", "cold"], "{failed}");
    assert_eq!(snapshots(), 0, "{failed}");
    // A failed run's result carries what the target printed last.
    let console = failed.first()["console"].as_str().unwrap();
    assert!(console.contains("ping"), "{failed}");

    // A run that passes keeps its snapshot for the next.
    let passed = run(dir, &scenario("ping"), &["-j", "2"]);
    assert_eq!(passed.code(), Some(0), "{passed}");
    // Under `-j 2` either run may be the one that boots cold.
    let mut starts = passed.each("start");
    starts.sort_unstable();
    assert_eq!(starts, ["cold", "warm"], "{passed}");
    assert!(
        passed.results().iter().all(|r| r["console"].is_null()),
        "{passed}"
    );
    assert_eq!(snapshots(), 1, "{passed}");
}

#[test]
fn a_changed_input_is_a_new_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scenario = |args: &str| {
        warm(
            dir,
            "cortex-m/echo",
            &["boot: {}", "wait-serial: {match: READY, timeout: 5s}"],
        )
        .with(format!("args: [{args}]"))
        .step("send-serial: \"exit\\n\"")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .write(dir, "key.yaml")
    };
    let a = run(dir, &scenario("a"), &[]);
    let b = run(dir, &scenario("b"), &[]);
    let a_again = run(dir, &scenario("a"), &[]);
    assert_eq!(a.each("start"), ["cold"], "{a}");
    assert_eq!(b.each("start"), ["cold"], "{b}");
    assert_eq!(a_again.each("start"), ["warm"], "{a_again}");
    assert_ne!(a.first()["snapshot"], b.first()["snapshot"]);
    assert_eq!(a.first()["snapshot"], a_again.first()["snapshot"]);
}

#[test]
fn runs_restored_from_one_snapshot_measure_the_same_under_icount() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The native leak workload prints its heap over guest time; nothing
    // reaches it from outside, so each restored run replays the same
    // instructions from the saved instant.
    let file = warm(
        dir,
        "cortex-m/native",
        &[
            "boot: {}",
            "wait-serial: {match: 'HEAP t_us=\\d+', timeout: 20s}",
        ],
    )
    .with("clock: virtual")
    .with("args: [leak]")
    .with("runs: 3")
    .with("timeout: 60s")
    .step("wait-serial: {match: 'HEAP t_us=(?P<t_us>\\d+) used=(?P<used>\\d+)', timeout: 20s}")
    .step("wait-serial: {match: 'HEAP t_us=(?P<t2_us>\\d+) used=(?P<used2>\\d+)', timeout: 20s}")
    .write(dir, "icount.yaml");
    let ran = run(dir, &file, &["-j", "1"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let mut starts = ran.each("start");
    starts.sort_unstable();
    assert_eq!(starts, ["cold", "warm", "warm"], "{ran}");
    let metrics: Vec<&Value> = ran.results().iter().map(|r| &r["metrics"]).collect();
    assert!(metrics[0]["t_us"].as_f64().unwrap() > 0.0, "{ran}");
    assert_eq!(metrics[1], metrics[2], "{ran}");
    assert_eq!(
        metrics[0], metrics[1],
        "the cold run goes on from the saved instant too: {ran}"
    );
}

#[test]
fn a_run_goes_back_to_a_named_snapshot_even_after_the_guest_exited() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (code, r) = ScenarioYaml::elf("mps2-an385", copy_elf(dir, "cortex-m/echo", "mps2-an385"))
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step("snapshot-save: ready")
        .step("send-serial: \"exit\\n\"")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .step("snapshot-restore: ready")
        .step("send-serial: \"ping\\n\"")
        .step("wait-serial: {match: '(?m)^ping$', timeout: 5s}")
        .step("script: {source: 'snapshot_restore(\"ready\"); send_serial(\"exit\\n\"); expect_exit(\"5s\");'}")
        .run(dir, "named.yaml");
    assert_eq!(code, Some(0), "{r}");
    let saved = common::step_detail(&r, 2, "snapshot-save");
    assert_eq!(saved["name"], "ready");
    assert!(saved["disk_bytes"].as_u64().unwrap() > 0, "{r}");
    let restored = common::step_detail(&r, 5, "snapshot-restore");
    assert!(restored["restore_ms"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn restoring_a_name_never_saved_says_how_to_save_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, r) = ScenarioYaml::built("mps2-an385", "cortex-m/echo")
        .step("boot: {}")
        .step("snapshot-restore: nowhere")
        .run(tmp.path(), "unsaved.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(
        r["error"],
        "no snapshot `nowhere` was saved in this run: add `snapshot-save: nowhere` before this step"
    );
}

#[test]
fn a_warm_up_must_boot_and_must_not_debug() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let elf = built_image("cortex-m/echo", "mps2-an385");
    let no_boot = ScenarioYaml::elf("mps2-an385", &elf)
        .with("warm-up:\n  - footprint: {}")
        .step("boot: {}")
        .write(dir, "no-boot.yaml");
    let message = refused_by_check(&no_boot);
    assert!(
        message.contains("no-boot.yaml:5:5: `warm-up` does not boot the target")
            && message.contains("hint: start `warm-up` with `- boot: {}`"),
        "{message}"
    );
    let debugs = ScenarioYaml::elf("mps2-an385", &elf)
        .with("warm-up:\n  - boot: {}\n  - attach-debugger: {}")
        .step("detach: {}")
        .write(dir, "debugs.yaml");
    let message = refused_by_check(&debugs);
    assert!(
        message.contains("debugs.yaml:6:5: a debugger session does not survive a snapshot"),
        "{message}"
    );
    let booted_twice = ScenarioYaml::elf("mps2-an385", &elf)
        .with("warm-up:\n  - boot: {}")
        .step("boot: {}")
        .write(dir, "twice.yaml");
    assert!(refused_by_check(&booted_twice).contains("booted twice"));
    let empty = ScenarioYaml::elf("mps2-an385", &elf)
        .with("warm-up: []")
        .step("boot: {}")
        .write(dir, "empty.yaml");
    assert!(refused_by_check(&empty).contains("empty.yaml:4:10: `warm-up` is empty"));
}
