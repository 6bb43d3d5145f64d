//! The runtime steps on real QEMU and a real Linux guest on virt-a53:
//! `gc-trace` reads the Go runtime's own GC trace from the go-cold-start
//! image; `expect-crash` classifies the crashes of a real Go program under
//! the crash-test image's supervisor and times its restarts.

mod common;

use common::{ScenarioYaml, find_step_detail, metric, step_detail};

/// The go-cold-start image on virt-a53 with init running its Go program
/// (/bin/app), booted.
fn go_program() -> ScenarioYaml {
    ScenarioYaml::image("virt-a53", "raspi/go-cold-start")
        .with("clock: virtual")
        .with("timeout: 90s")
        .with("args: [lab.run=/bin/app]")
        .step("boot: {}")
}

/// The crash-test image: the supervisor runs /bin/app three times, which
/// panics, then kills itself with SIGKILL, then exits 3.
fn supervised() -> ScenarioYaml {
    ScenarioYaml::image("virt-a53", "raspi/crash-test")
        .with("clock: virtual")
        .with("timeout: 90s")
        .with("args: [lab.run=/bin/supervise, --, '3', /bin/app, 'panic,kill,exit']")
        .step("boot: {}")
}

/// A result for assertion messages.
fn text_of(r: &serde_json::Value) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

#[test]
fn gc_trace_counts_every_collection_the_go_runtime_reports() {
    let dir = tempfile::tempdir().unwrap();
    // GODEBUG reaches the guest through the kernel command line; the Go
    // program ends with its own count of collections (runtime.MemStats.NumGC).
    let (code, r) = go_program()
        .with("name: go-gc-trace")
        .with("env: {GODEBUG: gctrace=1}")
        .step("wait-serial: {match: 'LAB init', timeout: 60s}")
        .step(r"gc-trace: {format: go, until: 'GO done gc=(?P<num_gc>\d+) .* t_us=(?P<run_us>\d+)', timeout: 30s}")
        .step("expect-exit: {code: 0, timeout: 10s}")
        .run(dir.path(), "go-gc.yaml");
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["status"], "passed", "{r}");
    let count = metric(&r, "gc_count");
    assert!(count >= 1.0, "the workload collects: {r}");
    assert_eq!(count, metric(&r, "num_gc"), "one trace line per collection");
    let (total, max) = (
        metric(&r, "gc_pause_total_us"),
        metric(&r, "gc_pause_max_us"),
    );
    assert!(max > 0.0 && max <= total, "{r}");
    assert_eq!(
        metric(&r, "gc_share_ppm"),
        (total / metric(&r, "run_us") * 1e6).round(),
        "{r}"
    );
    let cpu = metric(&r, "gc_cpu_percent");
    assert!((0.0..=100.0).contains(&cpu), "{r}");
    let trace = find_step_detail(&r, "gc-trace");
    assert_eq!(trace["format"], "go", "{trace}");
    assert_eq!(trace["collections"].as_f64(), Some(count), "{trace}");
}

#[test]
fn gc_trace_without_a_trace_ends_at_its_marker_with_no_collections() {
    let dir = tempfile::tempdir().unwrap();
    // No GODEBUG: the program prints no trace, so nothing is counted, and
    // the end marker still ends the step.
    let (code, r) = go_program()
        .step(r"gc-trace: {format: go, until: 'GO done .* t_us=(?P<run_us>\d+)', timeout: 60s}")
        .step("gc-trace: {format: go, until: 'never printed', timeout: 20s}")
        .run(dir.path(), "no-trace.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["metrics"]["gc_count"], 0.0, "{r}");
    assert_eq!(r["metrics"]["gc_pause_total_us"], 0.0, "{r}");
    assert!(metric(&r, "run_us") > 0.0, "{r}");
    // The second step waits past the program's exit: the console closes.
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("never printed") && error.contains("exited with code 0"),
        "{}",
        text_of(&r)
    );
}

#[test]
fn expect_crash_classifies_a_go_panic_a_signal_and_an_exit_and_times_the_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = supervised()
        .step(r"expect-crash: {kind: go-panic, restart: 'APP ready t_ms=(?P<t_ms>\d+)', timeout: 60s}")
        .step("expect-crash: {kind: signal, restart: 'APP ready', timeout: 20s}")
        .step("expect-crash: {timeout: 20s}")
        .step("wait-serial: {match: 'LAB exit status=0', timeout: 10s}")
        .step("expect-exit: {code: 0, timeout: 10s}")
        .run(dir.path(), "crashes.yaml");
    assert_eq!(code, Some(0), "{}", text_of(&r));
    let panic = step_detail(&r, 1, "expect-crash");
    assert_eq!(panic["kind"], "go-panic", "{panic}");
    assert_eq!(panic["status"], 2, "{panic}");
    assert_eq!(panic["message"], "sensor 3 returned no data", "{panic}");
    assert_eq!(panic["function"], "main.(*service).handle", "{panic}");
    let location = panic["location"].as_str().unwrap_or_default();
    assert!(location.starts_with("lab/crashtest/main.go:"), "{panic}");
    let recover = panic["recover_ms"].as_f64().unwrap();
    let ready = panic["recover_ready_ms"].as_f64().unwrap();
    assert!(recover >= 0.0 && ready >= recover, "{panic}");

    let killed = step_detail(&r, 2, "expect-crash");
    assert_eq!(killed["kind"], "signal", "{killed}");
    assert_eq!(
        (&killed["status"], &killed["signal"]),
        (&137.into(), &"SIGKILL".into()),
        "{killed}"
    );
    assert!(killed["recover_ms"].as_f64().unwrap() >= 0.0, "{killed}");

    let exited = step_detail(&r, 3, "expect-crash");
    assert_eq!(exited["kind"], "exit", "{exited}");
    assert_eq!(exited["message"], "config missing", "{exited}");
    assert!(
        exited.get("recover_ms").is_none(),
        "no restart asked: {exited}"
    );
    // The last crash's metrics; recover_ms from the last restart measured.
    assert_eq!(metric(&r, "exit_status"), 3.0, "{r}");
    assert_eq!(
        metric(&r, "recover_ms"),
        killed["recover_ms"].as_f64().unwrap()
    );
}

#[test]
fn expect_crash_fails_on_another_kind_and_says_what_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = supervised()
        .step("expect-crash: {kind: uncaught-exception, timeout: 60s}")
        .run(dir.path(), "wrong-kind.yaml");
    assert_eq!(code, Some(1), "{}", text_of(&r));
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("expected `uncaught-exception`, but the service crashed with go-panic (status 2): \"sensor 3 returned no data\" in main.(*service).handle at lab/crashtest/main.go:"),
        "{error}"
    );
}
