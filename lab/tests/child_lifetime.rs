//! A QEMU's lifetime hangs on the lab process, never on the thread that
//! started it: tokio retires threads (`block_in_place` hands a worker's core
//! to a new thread, idle blocking-pool threads exit), and a QEMU forked on
//! such a thread used to be killed by its parent-death signal mid-run.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use lab::backend::{BootImage, QemuLaunch, QemuTarget, Target};
use lab::board::BoardCatalog;
use lab::scenario::Clock;
use regex::bytes::Regex;

#[test]
fn qemu_outlives_the_thread_that_booted_it() {
    let elf = common::built_image("cortex-m/echo", "mps2-an385");
    let boards = BoardCatalog::builtin();
    let launch = QemuLaunch {
        board: boards.get("mps2-an385").unwrap().unwrap().clone(),
        image: BootImage::Elf(elf),
        clock: Clock::Wall,
        args: Vec::new(),
        env: BTreeMap::new(),
        disk: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut target = QemuTarget::new(launch).unwrap();

    // The churn, forced: boot on a thread of its own, which then exits.
    let handle = runtime.handle().clone();
    let mut target = std::thread::spawn(move || {
        handle.block_on(target.boot(false)).expect("QEMU boots");
        target
    })
    .join()
    .expect("the booting thread ends cleanly");

    runtime.block_on(async {
        // A parent-death signal lands as the thread's exit completes; a
        // QEMU killed by it has its status well within this grace.
        assert_eq!(
            target.exited(Duration::from_millis(500)).await,
            None,
            "QEMU died with the thread that booted it"
        );
        let console = target.console().unwrap();
        let ready = Regex::new("READY").unwrap();
        let echoed = Regex::new("(?m)^still-here$").unwrap();
        console
            .wait_for(&ready, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        console.send(b"still-here\n").await.unwrap();
        console
            .wait_for(&echoed, Some(Duration::from_secs(5)))
            .await
            .expect("the firmware still answers");
        target.shutdown().await;
    });
}

/// The user-level reproduction: a long run that waits for a line that never
/// comes, beside scripted scenarios under `-j 2`. Scripts run in place on a
/// tokio worker (`block_in_place`), which hands the worker's core to a new
/// thread, and the blocking pool retires idle threads after 10 s: a QEMU
/// forked on such a thread was killed about 10 s after the scripts ended,
/// and the long run ended `error: QEMU died with SIGKILL` instead of
/// `timeout`.
#[test]
fn a_long_run_beside_scripts_under_j2_ends_in_its_own_timeout() {
    let dir = tempfile::tempdir().unwrap();
    common::built_image("cortex-m/echo", "mps2-an385");
    let long = common::scenario(
        dir.path(),
        "long.yaml",
        "version: 1\nname: long\nboard: mps2-an385\nimage: cortex-m/echo\ntimeout: 30s\n\
         steps:\n  - boot: {}\n  - wait-serial: {match: 'never printed', timeout: 14s}\n",
    );
    let script = common::repo().join("scenarios/scripted/echo-lines.rhai");
    let json = dir.path().join("report.json");
    let mut args = vec!["run".to_owned(), "-j".into(), "2".into()];
    args.push(long.display().to_string());
    args.extend(std::iter::repeat_n(script.display().to_string(), 5));
    args.extend(["--json".into(), json.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let report = common::report(&json);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let long = &results[0];
    assert_eq!(long["status"], "timeout", "{long}");
    for script in &results[1..] {
        assert_eq!(script["status"], "passed", "{script}");
    }
}
