//! The runtime steps on real QEMU and a real Linux guest: `gc-trace` reads
//! the Go runtime's own GC trace from the go-cold-start image on virt-a53.

mod common;

use common::run_scenario;

/// A metric of a result, or a panic that shows the result.
fn metric(r: &serde_json::Value, name: &str) -> f64 {
    r["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("metric {name} in {r}"))
}

#[test]
fn gc_trace_counts_every_collection_the_go_runtime_reports() {
    let dir = tempfile::tempdir().unwrap();
    // GODEBUG reaches the guest through the kernel command line; the Go
    // program ends with its own count of collections (runtime.MemStats.NumGC).
    let (code, r) = run_scenario(
        dir.path(),
        "go-gc.yaml",
        "version: 1\n\
         name: go-gc-trace\n\
         board: virt-a53\n\
         image: raspi/go-cold-start\n\
         clock: virtual\n\
         timeout: 90s\n\
         args: [lab.run=/bin/app]\n\
         env: {GODEBUG: gctrace=1}\n\
         steps:\n\
         \x20 - boot: {}\n\
         \x20 - wait-serial: {match: 'LAB init', timeout: 60s}\n\
         \x20 - gc-trace: {format: go, until: 'GO done gc=(?P<num_gc>\\d+) .* t_us=(?P<run_us>\\d+)', timeout: 30s}\n\
         \x20 - expect-exit: {code: 0, timeout: 10s}\n",
    );
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
    let step = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "gc-trace")
        .unwrap_or_else(|| panic!("a gc-trace step in {r}"));
    assert_eq!(step["detail"]["format"], "go", "{step}");
    assert_eq!(
        step["detail"]["collections"].as_f64(),
        Some(count),
        "{step}"
    );
}

#[test]
fn gc_trace_without_a_trace_ends_at_its_marker_with_no_collections() {
    let dir = tempfile::tempdir().unwrap();
    // No GODEBUG: the program prints no trace, so nothing is counted, and
    // the end marker still ends the step.
    let (code, r) = run_scenario(
        dir.path(),
        "no-trace.yaml",
        "version: 1\n\
         board: virt-a53\n\
         image: raspi/go-cold-start\n\
         clock: virtual\n\
         timeout: 90s\n\
         args: [lab.run=/bin/app]\n\
         steps:\n\
         \x20 - boot: {}\n\
         \x20 - gc-trace: {format: go, until: 'GO done .* t_us=(?P<run_us>\\d+)', timeout: 60s}\n\
         \x20 - gc-trace: {format: go, until: 'never printed', timeout: 20s}\n",
    );
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

/// A result for assertion messages.
fn text_of(r: &serde_json::Value) -> String {
    serde_json::to_string_pretty(r).unwrap()
}
