//! Snapshots on real QEMU with the project's own firmware and Linux images:
//! a running machine saved to a file, started again from it (more than
//! once), guest time under icount carried across, and clear errors for
//! files that are not snapshots. Each test prints the figures it measured
//! (run with `--nocapture` to see them).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::backend::{
    BootImage, GuestExit, QemuLaunch, QemuTarget, SnapshotRestored, SnapshotSaved, Target,
    TargetError,
};
use lab::board::BoardCatalog;
use lab::scenario::Clock;
use regex::bytes::Regex;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn launch(board: &str, image: BootImage, clock: Clock, args: &[&str]) -> QemuLaunch {
    let boards = BoardCatalog::builtin();
    QemuLaunch {
        board: boards.get(board).unwrap().unwrap().clone(),
        image,
        clock,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        disk: None,
    }
}

fn elf(image: &str) -> BootImage {
    BootImage::Elf(common::built_image(image, "mps2-an385"))
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

/// Waits for `pattern` on the target's console and returns the match.
async fn expect(target: &mut QemuTarget, pattern: &str, wait: Option<Duration>) -> String {
    let found = target.console().unwrap().wait_for(&re(pattern), wait).await;
    found
        .unwrap_or_else(|e| panic!("waiting for {pattern:?}: {e}"))
        .text
}

/// Sends `line` and waits for the echo firmware to send it back.
async fn echoed(target: &mut QemuTarget, line: &str) {
    let console = target.console().unwrap();
    console.send(format!("{line}\n").as_bytes()).await.unwrap();
    expect(target, &format!("(?m)^{line}$"), WAIT).await;
}

fn transcript(target: &mut QemuTarget) -> String {
    String::from_utf8_lossy(&target.console().unwrap().transcript()).into_owned()
}

fn report_save(what: &str, s: &SnapshotSaved) {
    println!(
        "{what}: save {:.1} ms, file {} KiB apparent, {} KiB on disk",
        s.duration.as_secs_f64() * 1e3,
        s.file.apparent_bytes >> 10,
        s.file.disk_bytes >> 10
    );
}

fn report_restore(what: &str, r: &SnapshotRestored) {
    println!(
        "{what}: restore {:.1} ms (load {:.1} ms)",
        r.duration.as_secs_f64() * 1e3,
        r.load.as_secs_f64() * 1e3
    );
}

/// No QEMU of `target`'s (its socket folder is on QEMU's command line) runs.
fn assert_no_qemu(target: &QemuTarget) {
    let dir = target.socket_dir().to_string_lossy().into_owned();
    assert_eq!(
        common::qemu_processes_with(&dir),
        Vec::<u32>::new(),
        "{dir}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_firmware_answers_after_a_restore_and_after_a_second_restore_of_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("cache/echo.snap");
    let echo = launch("mps2-an385", elf("cortex-m/echo"), Clock::Wall, &[]);

    let mut original = QemuTarget::new(echo.clone()).unwrap();
    original.boot(false).await.unwrap();
    expect(&mut original, "READY", WAIT).await;
    echoed(&mut original, "before-save").await;
    let saved = original.save_snapshot(&snap).await.unwrap();
    report_save("mps2-an385 echo", &saved);
    assert!(saved.resumed, "the guest was running, so it runs on");
    assert!(
        snap.is_file(),
        "the folder is made and the file renamed into place"
    );
    assert!(!dir.path().join("cache/echo.snap.partial").exists());
    assert!(saved.file.disk_bytes > 0 && saved.file.disk_bytes <= saved.file.apparent_bytes);
    // The original runs on after the save, and its console still works.
    echoed(&mut original, "after-save").await;
    original.shutdown().await;

    // A warm start: a target never booted starts from the file.
    let mut warm = QemuTarget::new(echo).unwrap();
    let restored = warm.restore_snapshot(&snap, false).await.unwrap();
    report_restore("mps2-an385 echo, warm start", &restored);
    assert_eq!(restored.file, saved.file);
    assert!(restored.load <= restored.duration);
    echoed(&mut warm, "first-restore").await;

    // Back to the same point inside the run: a fresh QEMU, fresh console.
    let again = warm.restore_snapshot(&snap, false).await.unwrap();
    report_restore("mps2-an385 echo, restore inside a run", &again);
    echoed(&mut warm, "second-restore").await;
    let seen = transcript(&mut warm);
    assert!(!seen.contains("first-restore"), "{seen:?}");
    // The restored guest never printed READY again: it was past it.
    assert!(!seen.contains("READY"), "{seen:?}");
    warm.console().unwrap().send(b"exit\n").await.unwrap();
    assert_eq!(
        warm.wait_exit(WAIT).await.unwrap(),
        GuestExit::Code(0),
        "the restored firmware exits through semihosting as usual"
    );
    warm.shutdown().await;
    assert_no_qemu(&warm);
}

/// The `HEAP t_us=N` timestamps of a transcript (SysTick time since reset).
fn heap_times(text: &str) -> Vec<u64> {
    let heap = regex::Regex::new(r"(?m)^HEAP t_us=(\d+) ").unwrap();
    heap.captures_iter(text)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

/// Runs a paused target on until its guest exits; returns its transcript.
async fn run_to_exit(target: &mut QemuTarget) -> String {
    target.qmp("cont", None).await.unwrap();
    let exit = target.wait_exit(Some(Duration::from_secs(20))).await;
    assert_eq!(exit.unwrap(), GuestExit::Code(0), "{}", transcript(target));
    transcript(target)
}

/// The machine's RAM and registers as the monitor shows them.
async fn machine_state(target: &mut QemuTarget) -> String {
    let mut state = String::new();
    for command in [
        "info registers",
        "xp /64wx 0x20000000",
        "xp /64wx 0x21000000",
    ] {
        state.push_str(&target.monitor(command).await.unwrap());
    }
    state
}

/// MicroQuickJS running its `leak` workload prints `HEAP t_us=...` lines on
/// its own, from SysTick, for about 4 s of guest time (0.25 s of wall
/// time). It is paused after its first such line and saved; the original
/// and two restores then run on without any input. Under icount guest time
/// must go on from the saved instant, and all three must print the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_icount_restores_go_on_in_guest_time_and_print_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("leak.snap");
    let leak = launch(
        "mps2-an385",
        elf("cortex-m/mquickjs"),
        Clock::Virtual,
        &["leak"],
    );

    let mut original = QemuTarget::new(leak.clone()).unwrap();
    original.boot(false).await.unwrap();
    expect(&mut original, r"(?m)^HEAP t_us=\d+ ", WAIT).await;
    original.qmp("stop", None).await.unwrap();
    let before = transcript(&mut original);
    let state = machine_state(&mut original).await;
    let saved = original.save_snapshot(&snap).await.unwrap();
    report_save("mps2-an385 mquickjs (paused)", &saved);
    assert!(!saved.resumed, "a paused guest stays paused");
    assert_eq!(
        machine_state(&mut original).await,
        state,
        "saving changes nothing"
    );

    // A restore that stays halted holds exactly the saved machine.
    let mut first = QemuTarget::new(leak.clone()).unwrap();
    let restored = first.restore_snapshot(&snap, true).await.unwrap();
    report_restore("mps2-an385 mquickjs, halted", &restored);
    assert_eq!(machine_state(&mut first).await, state);

    let mut second = QemuTarget::new(leak).unwrap();
    second.restore_snapshot(&snap, true).await.unwrap();

    let original_all = run_to_exit(&mut original).await;
    let first_out = run_to_exit(&mut first).await;
    let second_out = run_to_exit(&mut second).await;
    assert_eq!(first_out, second_out, "two restores of one snapshot differ");
    assert!(
        original_all.ends_with(&first_out),
        "the original's output after the save differs from a restore's:\n--- original\n{original_all}\n--- restored\n{first_out}"
    );
    assert!(first_out.contains("READY us="), "{first_out}");
    // Guest time went on from the saved instant: the restored guest's first
    // timestamps come after the last one printed before the save.
    let last_before = *heap_times(&before).last().unwrap();
    let after = heap_times(&first_out);
    assert!(after.len() > 10, "{first_out}");
    assert!(after[0] > last_before, "{last_before} then {after:?}");
    println!(
        "icount: last stamp before the save t_us={last_before}, first after a restore t_us={}; {} identical lines after it",
        after[0],
        first_out.lines().count()
    );
}

/// The Node.js image on virt-a53, booted to its message loop, answers a
/// message, is saved, and answers again after each of two restores; each
/// restore starts from one message received, never from what a later run
/// added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_guest_on_virt_is_restored_with_its_process_alive() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("node.snap");
    let out = common::built_image_dir("raspi/node", "virt-a53");
    let image = BootImage::Linux {
        kernel: out.join("Image"),
        dtb: None,
        initrd: Some(out.join("initrd.cpio.gz")),
        disk: None,
    };
    let node = launch(
        "virt-a53",
        image,
        Clock::Virtual,
        &[
            "lab.run=/bin/supervise",
            "--",
            "0",
            "/usr/bin/node",
            "/app/app.js",
            "msg",
        ],
    );
    let long = Some(Duration::from_secs(60));

    let cold = std::time::Instant::now();
    let mut original = QemuTarget::new(node.clone()).unwrap();
    original.boot(false).await.unwrap();
    expect(&mut original, r"NODE ready mode=msg", long).await;
    let booted = cold.elapsed();
    let console = original.console().unwrap();
    console.send(b"MSG 1\n").await.unwrap();
    expect(&mut original, r"ACK 1 rss_kb=\d+", WAIT).await;
    let saved = original.save_snapshot(&snap).await.unwrap();
    report_save("virt-a53 node", &saved);
    println!(
        "virt-a53 node: cold boot to the message loop {:.1} s",
        booted.as_secs_f64()
    );
    assert!(
        saved.file.disk_bytes < saved.file.apparent_bytes,
        "the file is sparse"
    );
    original.shutdown().await;

    let mut warm = QemuTarget::new(node).unwrap();
    for round in 1..=2 {
        let restored = warm.restore_snapshot(&snap, false).await.unwrap();
        report_restore(&format!("virt-a53 node, restore {round}"), &restored);
        let answered = std::time::Instant::now();
        let console = warm.console().unwrap();
        console.send(b"MSG 2\n").await.unwrap();
        expect(&mut warm, r"ACK 2 rss_kb=\d+", WAIT).await;
        println!(
            "virt-a53 node, restore {round}: answered {:.1} ms after the restore",
            (restored.duration + answered.elapsed()).as_secs_f64() * 1e3
        );
        warm.console().unwrap().send(b"QUIT\n").await.unwrap();
        expect(&mut warm, r"NODE done received=2\b", WAIT).await;
        assert_eq!(warm.wait_exit(WAIT).await.unwrap(), GuestExit::Code(0));
    }
    warm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_foreign_or_truncated_snapshot_is_refused_and_leaves_no_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let echo = launch("mps2-an385", elf("cortex-m/echo"), Clock::Wall, &[]);
    let reason = |e: TargetError| match e {
        TargetError::SnapshotRestore { reason, .. } => reason,
        e => panic!("not a restore error: {e}"),
    };

    let mut target = QemuTarget::new(echo.clone()).unwrap();
    let missing = target
        .restore_snapshot(&dir.path().join("none.snap"), false)
        .await
        .unwrap_err();
    let text = missing.to_string();
    assert!(
        text.contains("none.snap") && text.contains("does not exist"),
        "{text}"
    );
    assert!(!target.booted());

    let foreign = dir.path().join("foreign.snap");
    std::fs::write(&foreign, vec![0x5a; 4096]).unwrap();
    let text = reason(target.restore_snapshot(&foreign, false).await.unwrap_err());
    assert!(text.contains("not a QEMU snapshot"), "{text}");

    // A real snapshot cut short: QEMU starts, fails to load it, and is gone.
    let good = dir.path().join("good.snap");
    target.boot(false).await.unwrap();
    expect(&mut target, "READY", WAIT).await;
    target.save_snapshot(&good).await.unwrap();
    let truncated = dir.path().join("truncated.snap");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let failed = target
        .restore_snapshot(&truncated, false)
        .await
        .unwrap_err();
    println!("a truncated snapshot: {failed}");
    let text = reason(failed);
    assert!(!text.is_empty());
    assert!(
        !target.booted(),
        "a failed restore leaves the target not booted"
    );
    assert_no_qemu(&target);

    // The target is still usable: the good file restores.
    target.restore_snapshot(&good, false).await.unwrap();
    echoed(&mut target, "still-good").await;
    target.shutdown().await;
    assert_no_qemu(&target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_needs_a_running_guest() {
    let dir = tempfile::tempdir().unwrap();
    let snap: PathBuf = dir.path().join("hello.snap");
    let hello = launch("mps2-an385", elf("cortex-m/hello"), Clock::Wall, &[]);
    let mut target = QemuTarget::new(hello).unwrap();
    let unbooted = target.save_snapshot(&snap).await.unwrap_err();
    assert!(matches!(unbooted, TargetError::NotBooted), "{unbooted}");
    target.boot(false).await.unwrap();
    assert_eq!(target.wait_exit(WAIT).await.unwrap(), GuestExit::Code(0));
    let ended = target.save_snapshot(&snap).await.unwrap_err().to_string();
    assert!(
        ended.contains("hello.snap") && ended.contains("already ended (exited with code 0)"),
        "{ended}"
    );
    assert!(!Path::new(&snap).exists());
}

/// A snapshot taken at reset (QEMU paused before the first instruction)
/// restores into a target with a HardFault catch armed: the catch is armed
/// on the restored machine as on a cold boot and catches the fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hardfault_catch_is_armed_on_a_restored_machine() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("reset.snap");
    let fault = launch(
        "mps2-an385",
        elf("cortex-m/fault"),
        Clock::Virtual,
        &["undef"],
    );
    let mut original = QemuTarget::new(fault.clone()).unwrap();
    original.boot(true).await.unwrap();
    let saved = original.save_snapshot(&snap).await.unwrap();
    assert!(!saved.resumed);
    original.shutdown().await;

    let mut caught = QemuTarget::new(fault).unwrap();
    assert!(caught.arm_fault_catch());
    caught.restore_snapshot(&snap, false).await.unwrap();
    let fault = caught
        .caught_fault(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the fault is caught");
    assert!(fault.status.cfsr & (1 << 16) != 0, "UNDEFINSTR: {fault:?}");
    expect(&mut caught, "READY", WAIT).await;
    caught.shutdown().await;
}

/// A save that QEMU cannot write leaves no file behind and the guest
/// running on as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_says_why_and_the_guest_runs_on() {
    let echo = launch("mps2-an385", elf("cortex-m/echo"), Clock::Wall, &[]);
    let mut target = QemuTarget::new(echo).unwrap();
    target.boot(false).await.unwrap();
    expect(&mut target, "READY", WAIT).await;
    // Nobody, root included, can make a file in /proc.
    let failed = target
        .save_snapshot(Path::new("/proc/lab.snap"))
        .await
        .unwrap_err();
    println!("a save into /proc: {failed}");
    assert!(
        matches!(&failed, TargetError::SnapshotSave { path, .. } if path == Path::new("/proc/lab.snap")),
        "{failed}"
    );
    echoed(&mut target, "still-running").await;
    target.shutdown().await;
}
