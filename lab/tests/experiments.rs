//! The Cortex-M experiment library (`scenarios/cortex-m/`) end to end: native
//! C against Duktape and Micro QuickJS on both boards, under icount. The
//! scenarios assert what each variant must do; these tests assert what must
//! hold between variants, on real output.

mod common;

use std::sync::OnceLock;

use serde_json::Value;

use common::{find_step_detail, lab_run, repo};

/// Runs the whole library once per test binary and returns its report.
fn library() -> &'static Value {
    static REPORT: OnceLock<Value> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ran = lab_run(dir.path(), &repo().join("scenarios/cortex-m"), &["-j", "2"]);
        assert_eq!(ran.code(), Some(0), "{ran}");
        ran.json
    })
}

/// The median of `metric` for `scenario` and `variant`.
fn metric(scenario: &str, variant: &str, metric: &str) -> f64 {
    let summary = library()["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scenario"] == scenario && s["variant"] == variant)
        .unwrap_or_else(|| panic!("no {scenario}[{variant}]"));
    summary["metrics"][metric]["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {metric} in {scenario}[{variant}]: {summary}"))
}

#[test]
fn native_code_starts_faster_than_either_engine() {
    for board in ["m3", "m7"] {
        let native = metric("cold-start", &format!("native-{board}"), "ready_us");
        for engine in ["duktape", "mquickjs"] {
            let js = metric("cold-start", &format!("{engine}-{board}"), "ready_us");
            assert!(native < js, "{board}: native {native} µs, {engine} {js} µs");
        }
        // Phases are in order.
        let phases = [
            "reset_to_main_us",
            "engine_created_us",
            "script_parsed_us",
            "first_line_us",
            "ready_us",
        ];
        for variant in ["native", "duktape", "mquickjs"].map(|e| format!("{e}-{board}")) {
            let times: Vec<f64> = phases
                .iter()
                .map(|p| metric("cold-start", &variant, p))
                .collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "{variant}: {times:?}"
            );
        }
    }
}

#[test]
fn every_footprint_figure_is_positive_and_matches_the_elf() {
    for (board, suffix) in [("mps2-an385", "m3"), ("mps2-an500", "m7")] {
        for engine in ["native", "duktape", "mquickjs"] {
            let variant = format!("{engine}-{suffix}");
            let elf = repo().join(format!(
                "build/images/{board}/cortex-m/{engine}/{engine}.elf"
            ));
            let size = std::process::Command::new("arm-none-eabi-size")
                .arg(&elf)
                .output()
                .unwrap();
            let size = String::from_utf8(size.stdout).unwrap();
            // Berkeley format: text (text + rodata), data, bss.
            let numbers: Vec<f64> = size
                .lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .take(3)
                .map(|n| n.parse().unwrap())
                .collect();
            let text =
                metric("footprint", &variant, "text") + metric("footprint", &variant, "rodata");
            assert_eq!(text, numbers[0], "{variant} text");
            assert_eq!(
                metric("footprint", &variant, "data"),
                numbers[1],
                "{variant} data"
            );
            assert_eq!(
                metric("footprint", &variant, "bss"),
                numbers[2],
                "{variant} bss"
            );
            for m in ["text", "bss", "flash", "static_ram", "stack_used"] {
                assert!(metric("footprint", &variant, m) > 0.0, "{variant} {m}");
            }
        }
        for engine in ["duktape", "mquickjs"] {
            assert!(metric("footprint", &format!("{engine}-{suffix}"), "heap_peak") > 0.0);
        }
    }
}

#[test]
fn engines_collect_garbage_and_native_code_does_not() {
    for board in ["m3", "m7"] {
        assert_eq!(
            metric("gc-pressure", &format!("native-{board}"), "gc_count"),
            0.0
        );
        for engine in ["duktape", "mquickjs"] {
            let variant = format!("{engine}-{board}");
            assert!(
                metric("gc-pressure", &variant, "gc_count") > 0.0,
                "{variant}"
            );
            let max = metric("gc-pressure", &variant, "gc_max_us");
            let total = metric("gc-pressure", &variant, "gc_total_us");
            assert!(
                max > 0.0 && max <= total,
                "{variant}: max {max}, total {total}"
            );
            let share = metric("gc-pressure", &variant, "gc_share_ppm");
            let expected = (total * 1e6 / metric("gc-pressure", &variant, "run_us")).floor();
            assert_eq!(share, expected, "{variant}");
        }
    }
}

#[test]
fn the_leak_is_found_only_where_there_is_one() {
    let results = library()["results"].as_array().unwrap();
    for r in results.iter().filter(|r| r["scenario"] == "leak") {
        assert_eq!(r["status"], "passed", "{r}");
        let trend = find_step_detail(r, "trend");
        let leaking = r["variant"].as_str().unwrap().ends_with("-leak");
        assert_eq!(
            trend["direction"],
            if leaking { "rising" } else { "flat" },
            "{r}"
        );
    }
}

#[test]
fn the_seed_leak_runs_out_of_memory_and_its_clean_variant_stays_flat() {
    let results = library()["results"].as_array().unwrap();
    let runs: Vec<&Value> = results
        .iter()
        .filter(|r| r["scenario"] == "leak-seed")
        .collect();
    assert_eq!(runs.len(), 6, "{runs:?}");
    let budget = 256.0 * 1024.0;
    for r in runs {
        assert_eq!(r["status"], "passed", "{r}");
        let leaking = r["variant"].as_str().unwrap().ends_with("-leak");
        let trend = find_step_detail(r, "trend");
        assert_eq!(
            trend["direction"],
            if leaking { "rising" } else { "flat" },
            "{r}"
        );
        let m = &r["metrics"];
        let number = |name: &str| m[name].as_f64().unwrap_or_else(|| panic!("no {name}: {r}"));
        if leaking {
            // A 4 KiB buffer and its closure every 10 ms: at least 0.1 B/µs
            // even with an engine's slower ticks.
            assert!(number("heap_slope") > 0.1, "{r}");
            // The allocator refused once the heap was nearly all used, and
            // the engine's error came at or after that refusal.
            let used = number("alloc_fail_used");
            assert!(used > 0.9 * budget && used <= budget, "{r}");
            let fail = number("alloc_fail_us");
            assert!(fail > 0.0 && number("oom_error_us") >= fail, "{r}");
            assert!(number("alloc_refusals") >= 1.0, "{r}");
        } else {
            assert!(m.get("alloc_fail_us").is_none(), "{r}");
            assert!(number("heap_peak") < budget / 2.0, "{r}");
        }
    }
}

#[test]
fn a_register_write_costs_more_through_an_engine() {
    for board in ["m3", "m7"] {
        let native = metric("peripheral-poke", &format!("native-{board}"), "poke_us");
        for engine in ["duktape", "mquickjs"] {
            let js = metric("peripheral-poke", &format!("{engine}-{board}"), "poke_us");
            assert!(native < js, "{board}: native {native} µs, {engine} {js} µs");
        }
    }
}

#[test]
fn js_errors_are_classified_by_what_the_engine_does() {
    let results = library()["results"].as_array().unwrap();
    for name in ["js-uncaught-exception", "js-out-of-memory"] {
        let runs: Vec<&Value> = results.iter().filter(|r| r["scenario"] == name).collect();
        assert_eq!(runs.len(), 3, "{name}");
        assert!(runs.iter().all(|r| r["status"] == "passed"), "{runs:?}");
    }
    // Micro QuickJS stops at its fixed arena, the others at the 1 MiB cap.
    assert!(metric("js-out-of-memory", "mquickjs", "heap_peak") <= 256.0 * 1024.0);
    assert!(metric("js-out-of-memory", "duktape", "heap_peak") <= 1024.0 * 1024.0);
}

#[test]
fn a_fatal_error_resets_the_board_in_every_runtime() {
    let results = library()["results"].as_array().unwrap();
    let runs: Vec<&Value> = results
        .iter()
        .filter(|r| r["scenario"] == "js-abort-reset")
        .collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in runs {
        assert_eq!(run["status"], "passed", "{run}");
        // One reset, then two more of the loop, all asked for by the guest.
        assert_eq!(run["metrics"]["resets"], 3.0, "{run}");
        assert_eq!(find_step_detail(run, "expect-reset")["resets"], 1, "{run}");
    }
}

#[test]
fn a_reset_the_lab_makes_is_not_one_the_guest_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = common::ScenarioYaml::image("mps2-an385", "cortex-m/echo")
        .with("timeout: 30s")
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
        .step("script: {source: 'reset(); wait_serial(\"READY\", \"5s\");'}")
        .step("expect-reset: {timeout: 500ms}")
        .run(dir.path(), "lab-reset.yaml");
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["status"], "timeout", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("no reset within 500ms after 0 of the 1"),
        "{error}"
    );
}
