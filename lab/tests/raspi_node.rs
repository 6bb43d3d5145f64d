//! Go against Node.js on the Raspberry Pi class Linux images: the Go image
//! (a static Go 1.23 program) and the Node.js image (Debian's Node 18 with
//! its libraries) build from Debian packages, are cached, boot on QEMU's
//! virt board under the guest supervisor and answer messages on the serial
//! console. A faulty request is a logged error to Go's recover and a restart
//! to Node's uncaught exception.

mod common;

use common::{built_and_cached, lab_run, lab_run_with, metric, repo, scenario};

#[test]
fn the_go_and_node_images_build_once_and_then_are_cached() {
    for image in ["raspi/go", "raspi/node"] {
        let out = built_and_cached(image, "virt-a53");
        for file in ["Image", "initrd.cpio.gz"] {
            assert!(out.join(file).is_file(), "{image}: {file} is built");
        }
    }
    let go = repo().join("build/images/virt-a53/raspi/go");
    // ELF e_machine: EM_AARCH64 (183) for app, EM_ARM (40) for app-armv7.
    for (file, machine) in [("app", 183u16), ("app-armv7", 40)] {
        let elf = std::fs::read(go.join(file)).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF", "{file}");
        assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), machine, "{file}");
    }
}

/// Go and Node as matrix variants: the program in `msg` mode under the
/// guest supervisor, one message, then QUIT.
const MESSAGES: &str = r#"version: 1
name: go-node-answer
clock: virtual
timeout: 90s
matrix:
  - {name: go, board: virt-a53, image: raspi/go, args: [lab.run=/bin/supervise, --, "0", /bin/app, msg]}
  - {name: node, board: virt-a53, image: raspi/node, args: [lab.run=/bin/supervise, --, "0", /usr/bin/node, /app/app.js, msg]}
steps:
  - boot: {}
  - wait-serial: {match: 'LAB service started t_ms=(?P<started_ms>\d+)', timeout: 60s}
  - wait-serial: {match: '(?:GO|NODE) start t_us=(?P<start_us>\d+)', timeout: 30s}
  - wait-serial: {match: '(?:GO|NODE) ready mode=msg t_ms=\d+ t_us=(?P<ready_us>\d+)', timeout: 10s}
  - send-serial: "MSG 7\n"
  - wait-serial: {match: 'ACK 7 rss_kb=(?P<rss_kb>\d+)', timeout: 10s}
  - send-serial: "QUIT\n"
  - wait-serial: {match: '(?:GO|NODE) done received=(?P<received>\d+)', timeout: 10s}
  - wait-serial: {match: 'LAB service exited status=(?P<status>\d+) t_ms=(?P<exited_ms>\d+)', timeout: 10s}
  - expect-exit: {code: 0, timeout: 20s}
"#;

#[test]
fn go_and_node_each_boot_and_answer_a_message_on_virt() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "answer.yaml", MESSAGES);
    let ran = lab_run(dir.path(), &file, &["-j", "2"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("variant"), ["go", "node"]);
    for r in ran.results() {
        assert_eq!(r["status"], "passed", "{r}");
        assert_eq!(metric(r, "received"), 1.0, "{r}");
        assert_eq!(metric(r, "status"), 0.0, "{r}");
        assert!(metric(r, "rss_kb") > 0.0, "{r}");
        // Guest time, one clock for the supervisor and the program: the
        // program starts after the supervisor's stamp, is ready after its
        // first line, and exits before the supervisor's second stamp.
        let started_us = metric(r, "started_ms") * 1000.0;
        assert!(metric(r, "start_us") >= started_us, "{r}");
        assert!(metric(r, "ready_us") >= metric(r, "start_us"), "{r}");
        assert!(
            metric(r, "exited_ms") * 1000.0 >= metric(r, "ready_us") - 1000.0,
            "{r}"
        );
    }
}

#[test]
fn gc_traces_of_go_and_node_are_read_by_one_step_on_virt() {
    let dir = tempfile::tempdir().unwrap();
    // The checked-in experiment with its raspi3b variants left out (they
    // run in `make demo`).
    let yaml = std::fs::read_to_string(repo().join("scenarios/raspi/gc-pressure.yaml")).unwrap();
    let virt_only: String = yaml
        .lines()
        .filter(|line| !line.contains("board: raspi3b"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(virt_only.contains("format: auto"), "{virt_only}");
    let file = scenario(dir.path(), "gc-virt.yaml", &virt_only);
    let ran = lab_run(dir.path(), &file, &["-j", "2"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("variant"), ["go-virt", "node-virt"]);
    let results = ran.results();
    for r in results {
        assert_eq!(r["status"], "passed", "{r}");
        // Both runtimes collect under this workload, and each collection
        // pauses the program for some part of its run.
        assert!(metric(r, "gc_count") >= 1.0, "{r}");
        assert!(
            metric(r, "gc_pause_max_us") <= metric(r, "gc_pause_total_us"),
            "{r}"
        );
        assert!(metric(r, "gc_pause_total_us") < metric(r, "run_us"), "{r}");
    }
    // Only Go's trace carries the runtime's own GC CPU share.
    assert!(results[0]["metrics"]["gc_cpu_percent"].is_number());
    assert!(results[1]["metrics"]["gc_cpu_percent"].is_null());
}

#[test]
fn a_recovered_panic_keeps_the_service_and_an_uncaught_exception_restarts_it() {
    // The checked-in experiment, its Go recover and Node uncaught variants.
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/raspi/recover.yaml");
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.path().join("snapshots"));
    let args = ["-k", "[go-recover]", "-k", "[node-uncaught]", "-j", "1"];
    let ran = lab_run_with(&mut lab, dir.path(), &file, &args);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("variant"), ["go-recover", "node-uncaught"]);
    let (go, node) = (&ran.results()[0], &ran.results()[1]);
    // Go logged the panic as an error and the same process answered every
    // request after it, the faulty one with an error: nothing lost.
    assert_eq!(metric(go, "restarts"), 0.0, "{go}");
    assert_eq!(metric(go, "errors"), 1.0, "{go}");
    assert_eq!(metric(go, "served_after_fault"), 199.0, "{go}");
    assert_eq!(metric(go, "lost"), 0.0, "{go}");
    // Node's exception ended the process; the supervisor's restart served
    // again, later, and the faulty request never got an answer.
    assert_eq!(metric(node, "restarts"), 1.0, "{node}");
    assert_eq!(metric(node, "errors"), 0.0, "{node}");
    assert!(metric(node, "served_after_fault") > 0.0, "{node}");
    assert!(metric(node, "lost") >= 1.0, "{node}");
    assert!(
        metric(node, "ready_again_us") > metric(go, "ready_again_us"),
        "{go}\n{node}"
    );
}

/// Node's start splits into load, bootstrap and compile, from its own
/// milestones (`performance.nodeTiming`), and the three add up to the
/// runtime's start as the guest measured it.
#[test]
fn node_s_start_splits_into_load_bootstrap_and_compile() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/raspi/cold-start.yaml");
    let ran = lab_run(dir.path(), &file, &["-j", "1", "-k", "node-virt"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let r = ran.first();
    let parts = ["load_us", "bootstrap_us", "compile_us"].map(|m| metric(r, m));
    assert!(parts.iter().all(|&p| p > 0.0), "{r}");
    // Each part is rounded to the µs on its own.
    let sum: f64 = parts.iter().sum();
    assert!((sum - metric(r, "runtime_us")).abs() <= 2.0, "{r}");
}

/// 3.2: the seed's listener closures, Node traced from its exec (cold, no
/// hold). V8's two collectors are reported apart, the young generation's
/// scavenges and the whole heap's mark-compacts, and they add up to the
/// trace's totals; the pause shares are of the process's whole life.
#[test]
fn node_s_scavenges_and_mark_compacts_are_reported_apart_from_process_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/raspi/gc-listeners.yaml");
    let ran = lab_run(dir.path(), &file, &["-j", "1", "-k", "node-virt"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let r = ran.first();
    assert_eq!(metric(r, "calls"), 1_000_000.0, "{r}");
    let [scavenges, mark_compacts] =
        ["gc_scavenge_count", "gc_mark_compact_count"].map(|m| metric(r, m));
    assert!(scavenges >= 1.0 && mark_compacts >= 1.0, "{r}");
    assert_eq!(scavenges + mark_compacts, metric(r, "gc_count"), "{r}");
    let [scavenge_us, mark_compact_us] = [
        "gc_scavenge_pause_total_us",
        "gc_mark_compact_pause_total_us",
    ]
    .map(|m| metric(r, m));
    assert_eq!(
        scavenge_us + mark_compact_us,
        metric(r, "gc_pause_total_us"),
        "{r}"
    );
    assert!(
        metric(r, "gc_mark_compact_pause_max_us") <= mark_compact_us,
        "{r}"
    );
    // Shares of the whole life, exec to done, which holds the work and
    // Node's start-up before it.
    assert!(metric(r, "run_us") > metric(r, "work_us"), "{r}");
    let share = |us: f64| (us / metric(r, "run_us") * 1e6).round();
    assert_eq!(
        metric(r, "gc_scavenge_share_ppm"),
        share(scavenge_us),
        "{r}"
    );
    assert_eq!(
        metric(r, "gc_mark_compact_share_ppm"),
        share(mark_compact_us),
        "{r}"
    );
    // Go's phases belong to Go's trace only.
    assert!(
        r["metrics"]["gc_mark_termination_pause_total_us"].is_null(),
        "{r}"
    );
}
