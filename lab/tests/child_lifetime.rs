//! A QEMU's lifetime hangs on the lab process, never on the thread that
//! started it: tokio retires threads (`block_in_place` hands a worker's core
//! to a new thread, idle blocking-pool threads exit), and a QEMU forked on
//! such a thread used to be killed by its parent-death signal mid-run.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use lab::board::BoardCatalog;
use lab::scenario::Clock;
use lab::target::{BootImage, QemuLaunch, QemuTarget, Target};
use regex::bytes::Regex;

#[test]
fn qemu_outlives_the_thread_that_booted_it() {
    let elf = common::built_image("cortex-m/echo", "mps2-an385");
    let boards = BoardCatalog::load(&common::repo().join("qemu-configs")).unwrap();
    let launch = QemuLaunch {
        board: boards.get("mps2-an385").unwrap().clone(),
        image: BootImage::Elf(elf),
        clock: Clock::Wall,
        args: Vec::new(),
        env: BTreeMap::new(),
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
