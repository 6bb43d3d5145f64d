//! Power cuts, power-on and nonvolatile storage against real QEMU: what the
//! firmware wrote to the board's `kind: nvm` region survives a cut and
//! comes back at power-on, what it wrote elsewhere does not; a run starts
//! with the region erased; the cut point is drawn from the seed; the
//! graceful warning reaches the firmware as its power-fail interrupt.
//!
//! On the Linux boards the storage is a disk: a file written and `sync`ed
//! in /data survives a cut and one not synced does not; every run starts
//! from the image's built disk; a snapshot keeps the disk as it was at the
//! save.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{RunReport, ScenarioYaml, copy_elf, lab_run, lab_run_with, refused_by_check};

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

/// A scenario on `board` with the busybox image and `storage: {}`,
/// running /bin/console (see [`shell`]); no steps yet.
fn linux_disk(board: &str) -> ScenarioYaml {
    linux_disk_with(board, "[lab.run=/bin/console]")
}

/// [`linux_disk`] with the kernel arguments `args` (a YAML list).
fn linux_disk_with(board: &str, args: &str) -> ScenarioYaml {
    ScenarioYaml::image(board, "raspi/busybox")
        .with("timeout: 180s")
        .with("storage: {}")
        .with(format!("args: {args}"))
}

/// [`linux_disk`] booted, its disk mounted at /data.
fn linux_with_disk(board: &str) -> ScenarioYaml {
    linux_disk(board)
        .step("boot: {}")
        .step("wait-serial: {match: 'LAB disk /data t_ms=(?P<mount_ms>\\d+)', timeout: 90s}")
}

/// The steps that run `command` in the guest's console shell and wait
/// for `answer` (a regex; its captures become metrics). The console
/// echoes the typed line, so an answer must not be in it as typed: build
/// markers with `$((...))`.
fn shell(scenario: ScenarioYaml, command: &str, answer: &str) -> ScenarioYaml {
    scenario
        .step("wait-serial: {match: 'LAB ready', timeout: 30s}")
        .step(format!("send-serial: \"{command}\\n\""))
        .step(format!("wait-serial: {{match: '{answer}', timeout: 30s}}"))
}

/// Whether /data/NAME exists, as the metric `metric` (0 yes, 1 no).
fn missing(scenario: ScenarioYaml, name: &str, metric: &str) -> ScenarioYaml {
    shell(
        scenario,
        &format!("test -e /data/{name}; echo {metric}=$((0+$?))"),
        &format!("{metric}=(?P<{metric}>\\d)"),
    )
}

/// The disk's own file, and a file written and synced, survive a cut and
/// power-on; one written but never synced stays in the lost page cache.
/// The second run starts from the built disk again.
fn cut_and_keep_synced(board: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = linux_with_disk(board).with("runs: 2");
    s = missing(s, "built.txt", "built_missing");
    s = missing(s, "synced.txt", "fresh_missing");
    s = shell(
        s,
        "echo 42 > /data/synced.txt && sync && echo SYNC$((1+1))",
        "SYNC2",
    );
    s = shell(s, "echo 7 > /data/lost.txt && echo WROTE$((1+1))", "WROTE2");
    s = s
        .step("power-cut: {mode: abrupt}")
        .step("power-on: {}")
        .step("wait-serial: {match: 'LAB disk /data', timeout: 90s}");
    s = shell(
        s,
        "echo KEPT=$(cat /data/synced.txt)",
        "KEPT=(?P<kept>\\d+)",
    );
    s = missing(s, "lost.txt", "lost_missing");
    let file = s.write(dir, "disk.yaml");
    let report = lab_run(dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
    assert_eq!(report.results().len(), 2, "{report}");
    for result in report.results() {
        let metrics = &result["metrics"];
        assert_eq!(metrics["built_missing"], 0.0, "the image's file: {result}");
        assert_eq!(
            metrics["fresh_missing"], 1.0,
            "a fresh disk in every run: {result}"
        );
        assert_eq!(metrics["kept"], 42.0, "{result}");
        assert_eq!(metrics["lost_missing"], 1.0, "never synced: {result}");
        let cut = &details(result, "power-cut")[0];
        assert_eq!(cut["kept_bytes"], 64 << 20, "{cut}");
    }
}

#[test]
fn a_synced_file_on_virt_s_disk_survives_a_cut_and_each_run_starts_from_the_built_disk() {
    cut_and_keep_synced("virt-a53");
}

#[test]
fn a_synced_file_on_the_pi_s_sd_card_survives_a_cut() {
    cut_and_keep_synced("raspi3b");
}

#[test]
fn a_power_on_from_a_snapshot_saved_before_the_disk_was_read_sees_the_cut_s_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = linux_disk_with("virt-a53", "[lab.run=/bin/console, lab.hold=disk]")
        .step("boot: {}")
        .step("wait-serial: {match: 'LAB hold disk', timeout: 90s}")
        .step("snapshot-save: powered_on")
        .step("send-serial: \"\\n\"")
        .step("wait-serial: {match: 'LAB disk /data', timeout: 30s}");
    s = shell(
        s,
        "echo 42 > /data/synced.txt && sync && echo SYNC$((1+1))",
        "SYNC2",
    );
    s = s
        .step("power-cut: {mode: abrupt}")
        .step("power-on: {from: powered_on}")
        .step("send-serial: \"\\n\"")
        .step("wait-serial: {match: 'LAB disk /data', timeout: 30s}");
    s = shell(
        s,
        "echo KEPT=$(cat /data/synced.txt)",
        "KEPT=(?P<kept>\\d+)",
    );
    let file = s.write(dir, "from.yaml");
    let report = lab_run(dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
    let result = report.first();
    // Written after the snapshot, and there after the power-on from it.
    assert_eq!(result["metrics"]["kept"], 42.0, "{result}");
    let on = &details(result, "power-on")[0];
    assert_eq!(on["from"], "powered_on", "{on}");
}

#[test]
fn a_restored_snapshot_never_sees_disk_writes_made_after_the_save() {
    restore_keeps_the_saved_disk("virt-a53");
}

/// On the Pi the restored guest must also still reach its SD card: QEMU 10
/// does not move a card Linux muxed to the SD host back there after a
/// restore, and every write failed (the images keep it on the SDHCI).
#[test]
fn a_restored_pi_writes_to_its_sd_card_and_never_sees_writes_made_after_the_save() {
    restore_keeps_the_saved_disk("raspi3b");
}

/// A disk written and synced before a save, and after it: each restore
/// sees the first write and not the second, and can write and sync again.
fn restore_keeps_the_saved_disk(board: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut s = linux_with_disk(board);
    s = shell(
        s,
        "echo 1 > /data/before.txt && sync && echo SYNC$((1+1))",
        "SYNC2",
    );
    s = s.step("snapshot-save: saved");
    s = shell(
        s,
        "echo 2 > /data/after.txt && sync && echo SYNC$((2+1))",
        "SYNC3",
    );
    for round in 1..=2 {
        // The restored console shell waits in its `read`: no new prompt.
        s = s
            .step("snapshot-restore: saved")
            .step(format!("send-serial: \"test -e /data/after.txt; echo AFTER{round}=$((0+$?)); cat /data/before.txt\\n\""))
            .step(format!("wait-serial: {{match: 'AFTER{round}=(?P<after_missing_{round}>\\d)', timeout: 30s}}"));
        // Written after the restore, gone at the next one.
        s = shell(
            s,
            "echo 3 > /data/after.txt && sync && echo SYNC$((3+1))",
            "SYNC4",
        );
    }
    // What the restored guest synced is on the disk itself: a cold boot
    // after a cut reads it back (`sync` succeeds even when the writes
    // behind it fail, and the page cache still answers `cat`).
    s = s
        .step("power-cut: {mode: abrupt}")
        .step("power-on: {}")
        .step("wait-serial: {match: 'LAB disk /data', timeout: 90s}");
    s = shell(s, "echo KEPT=$(cat /data/after.txt)", "KEPT=(?P<kept>\\d+)");
    let file = s.write(dir, "snap.yaml");
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.join("snapshots"));
    let report = lab_run_with(&mut lab, dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
    let result = report.first();
    assert_eq!(result["metrics"]["after_missing_1"], 1.0, "{result}");
    assert_eq!(result["metrics"]["after_missing_2"], 1.0, "{result}");
    assert_eq!(result["metrics"]["kept"], 3.0, "{result}");
}

#[test]
fn a_warm_up_s_snapshot_carries_its_disk_to_every_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The warm-up writes a file; each run sees it (the snapshot's disk),
    // and never the file the run before wrote after the restore.
    let mut s = linux_disk("virt-a53").with("runs: 2");
    s = s.with(
        "warm-up:\n  - boot: {}\n  - wait-serial: {match: 'LAB ready', timeout: 90s}\n  - \
         send-serial: \"echo 5 > /data/warm.txt && sync && echo WARM$((1+1))\\n\"\n  - \
         wait-serial: {match: WARM2, timeout: 30s}",
    );
    s = s.step("send-serial: \"echo WARMED=$(cat /data/warm.txt)\\n\"");
    s = s.step("wait-serial: {match: 'WARMED=(?P<warm>\\d+)', timeout: 30s}");
    s = missing(s, "run.txt", "run_missing");
    s = shell(
        s,
        "echo 1 > /data/run.txt && sync && echo SYNC$((1+1))",
        "SYNC2",
    );
    let file = s.write(dir, "warm.yaml");
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.join("snapshots"));
    let report = lab_run_with(&mut lab, dir, &file, &["-j", "1"]);
    assert_eq!(report.code(), Some(0), "{report}");
    for result in report.results() {
        assert_eq!(result["metrics"]["warm"], 5.0, "{result}");
        assert_eq!(result["metrics"]["run_missing"], 1.0, "{result}");
    }
    assert_eq!(report.each("start"), ["cold", "warm"], "{report}");
    let disks: Vec<_> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snap.disk"))
        .collect();
    assert_eq!(disks.len(), 1, "the snapshot's disk beside it: {disks:?}");
}

#[test]
fn storage_on_a_linux_image_without_a_disk_is_refused_where_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = ScenarioYaml::image("virt-a53", "raspi/go-cold-start")
        .with("storage: {}")
        .step("boot: {}")
        .write(tmp.path(), "diskless.yaml");
    let stderr = refused_by_check(&file);
    assert!(
        stderr.contains("diskless.yaml:4:10:")
            && stderr.contains("image `raspi/go-cold-start` builds no disk")
            && stderr.contains("`disk:` output"),
        "{stderr}"
    );
}

#[test]
fn a_graceful_cut_on_a_board_without_a_warning_is_refused_where_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = ScenarioYaml::image("virt-a53", "raspi/busybox")
        .with("storage: {}")
        .step("boot: {}")
        .step("power-cut: {mode: graceful}")
        .write(tmp.path(), "graceful.yaml");
    let stderr = refused_by_check(&file);
    assert!(
        stderr.contains("graceful.yaml:7:5:")
            && stderr.contains("no power-fail warning")
            && stderr.contains("mode: abrupt"),
        "{stderr}"
    );
}
