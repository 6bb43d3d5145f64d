//! Interrupting the lab: Ctrl-C stops even a script that is waiting, and a
//! lab killed outright (SIGKILL) leaves no QEMU, a valid report of what had
//! finished, and a scratch folder that the next lab removes.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{
    ScenarioYaml, built_image, lab, qemu_processes_with, report, scenario, scratch_folders,
    wait_timeout, wait_until,
};
use nix::sys::signal::Signal;

/// Starts `lab run FILE --json REPORT -j 1` with its scratch folders under
/// `tmp`, so that its QEMUs and folders are told apart from other tests'.
fn start(file: &Path, json: &Path, tmp: &Path) -> Child {
    lab()
        .env("TMPDIR", tmp)
        .args(["run", "-j", "1", "--json"])
        .arg(json)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lab runs")
}

#[test]
fn ctrl_c_stops_a_script_that_is_waiting() {
    a_signal_stops_a_script_that_is_waiting(Signal::SIGINT);
}

/// CI runners stop a job with SIGTERM: the lab stops as on Ctrl-C.
#[test]
fn sigterm_stops_a_script_that_is_waiting() {
    a_signal_stops_a_script_that_is_waiting(Signal::SIGTERM);
}

fn a_signal_stops_a_script_that_is_waiting(signal: Signal) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let file = scenario(
        dir.path(),
        "wait.rhai",
        "const BOARD = \"mps2-an385\";\nconst IMAGE = \"cortex-m/echo\";\nconst TIMEOUT = \"120s\";\n\
         boot();\nwait_serial(\"never printed\", \"100s\");\n",
    );
    built_image("cortex-m/echo", "mps2-an385");
    let json = dir.path().join("report.json");
    let mut child = start(&file, &json, &tmp);
    let needle = tmp.to_string_lossy().into_owned();
    wait_until(Duration::from_secs(30), "QEMU starts", || {
        !qemu_processes_with(&needle).is_empty()
    });
    common::signal(&child, signal);
    // The script waits 100 s; an interrupt that reached it ends far sooner.
    let status = wait_timeout(&mut child, Duration::from_secs(20))
        .expect("the lab ends soon after the signal");
    assert_eq!(status.code(), Some(1));
    let result = &report(&json)["results"][0];
    assert_eq!(result["status"], "error");
    let error = result["error"].as_str().unwrap();
    assert!(error.ends_with("interrupted (Ctrl-C)"), "{error}");
    assert!(qemu_processes_with(&needle).is_empty(), "QEMU left behind");
    assert_eq!(scratch_folders(&tmp), Vec::<String>::new());
}

#[test]
fn a_killed_lab_leaves_a_valid_report_no_qemu_and_a_folder_the_next_lab_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let hello = built_image("cortex-m/hello", "mps2-an385");
    let echo = built_image("cortex-m/echo", "mps2-an385");
    let file = scenario(
        dir.path(),
        "two.yaml",
        &format!(
            "version: 1\nname: two\nboard: mps2-an385\ntimeout: 120s\n\
             matrix:\n  - {{name: quick, image: {{elf: {}}}}}\n  - {{name: stuck, image: {{elf: {}}}}}\n\
             steps:\n  - boot: {{}}\n  - wait-serial: {{match: 'READY'}}\n  \
             - wait-serial: {{match: 'never printed', timeout: 100s}}\n",
            hello.display(),
            echo.display()
        ),
    );
    // Both variants wait for a line that never comes. The first ends at
    // once, failed, when the hello firmware exits, and the report says so
    // before the kill; the echo firmware of the second runs on until the
    // lab is killed.
    let json = dir.path().join("report.json");
    let mut child = start(&file, &json, &tmp);
    let finished = || {
        std::fs::read_to_string(&json)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|r| r["results"][0]["error"] != lab::report::UNFINISHED)
    };
    wait_until(Duration::from_secs(30), "the first run ends", finished);
    let needle = tmp.to_string_lossy().into_owned();
    wait_until(Duration::from_secs(30), "the second QEMU starts", || {
        !qemu_processes_with(&needle).is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();

    wait_until(Duration::from_secs(5), "QEMU dies with the lab", || {
        qemu_processes_with(&needle).is_empty()
    });
    let checkpoint = report(&json);
    let results = checkpoint["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["status"], "failed", "{}", results[0]);
    assert_eq!(results[1]["status"], "error");
    assert_eq!(results[1]["error"], lab::report::UNFINISHED);
    assert_eq!(scratch_folders(&tmp).len(), 1, "the killed lab's folder");

    // The next lab finds the dead lab's folder unlocked and removes it.
    let quick = ScenarioYaml::elf("mps2-an385", &hello)
        .step("boot: {}")
        .step("expect-exit: {code: 0, timeout: 10s}")
        .write(dir.path(), "quick.yaml");
    let out = lab()
        .env("TMPDIR", &tmp)
        .arg("run")
        .arg(&quick)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(scratch_folders(&tmp), Vec::<String>::new());
}
