//! The report renderers: statistics, JSON, JUnit and the terminal table.

use std::collections::BTreeMap;
use std::fs;

use lab::report::{
    Column, Report, ReportError, RunResult, Statistic, Stats, Status, StepResult, TableSpec,
    Tables, read_json, render_comparison, render_markdown, render_table, stats, summarize,
    to_json_string, to_junit_string, write_json, write_junit,
};

fn result(
    scenario: &str,
    variant: Option<&str>,
    run: u32,
    status: Status,
    duration_ms: f64,
    metrics: &[(&str, f64)],
) -> RunResult {
    let error = match status {
        Status::Passed => None,
        Status::Failed => Some(format!("expected serial output \"ready\" (run {run})")),
        Status::Timeout => Some("no match for \"booted\" within 5s".to_owned()),
        Status::Error => Some("QEMU exited with signal 6 (SIGABRT)".to_owned()),
    };
    RunResult {
        scenario: scenario.to_owned(),
        file: format!("scenarios/{scenario}.yaml"),
        variant: variant.map(str::to_owned),
        board: if scenario.starts_with("hello") {
            "mps2-an385".to_owned()
        } else {
            "raspi3b".to_owned()
        },
        target: "qemu".to_owned(),
        run,
        job: 0,
        status,
        duration_ms,
        metrics: metrics
            .iter()
            .map(|&(name, value)| (name.to_owned(), value))
            .collect(),
        series: BTreeMap::new(),
        steps: vec![StepResult {
            step: "boot".to_owned(),
            status,
            at_ms: 0.0,
            duration_ms: 3.1,
            detail: None,
        }],
        // A timed-out run keeps what the target printed last.
        console: (status == Status::Timeout)
            .then(|| "Booting Linux\n\nLAB init t_ms=812\n".to_owned()),
        error,
        start: None,
        snapshot: None,
        recording: None,
    }
}

fn report(results: Vec<RunResult>) -> Report {
    Report {
        lab_version: "0.1.0".to_owned(),
        started_at: "2026-11-27T14:00:00Z".to_owned(),
        seed: 7,
        summaries: summarize(&results),
        results,
        tables: Tables::new(),
    }
}

/// One run per scenario x variant: one row per result.
fn single_runs() -> Report {
    report(vec![
        result(
            "hello-cortex-m",
            Some("m3"),
            1,
            Status::Passed,
            61.2,
            &[("t_ms", 12.0)],
        ),
        result(
            "hello-cortex-m",
            Some("m4"),
            1,
            Status::Failed,
            1523.456,
            &[("t_ms", 0.000123)],
        ),
        result(
            "gc-pressure",
            None,
            1,
            Status::Passed,
            812.0,
            &[
                ("gc_count", 41.0),
                ("gc_max_pause_ms", 4.56789),
                ("heap_kb", 2048.0),
                ("rss_kb", 9120.5),
                ("start_ms", 120.0),
                ("total_ms", 800.0),
            ],
        ),
        result("panic-fault", None, 1, Status::Error, 5.0, &[]),
    ])
}

/// Several runs of the same scenario x variant: one summary row each.
fn multi_runs() -> Report {
    report(vec![
        result(
            "cold-start",
            Some("go"),
            1,
            Status::Passed,
            410.0,
            &[("boot_ms", 400.0)],
        ),
        result(
            "cold-start",
            Some("node"),
            1,
            Status::Passed,
            1900.0,
            &[("boot_ms", 1850.0), ("rss_kb", 40000.0)],
        ),
        result(
            "cold-start",
            Some("go"),
            2,
            Status::Passed,
            430.0,
            &[("boot_ms", 420.5)],
        ),
        result("cold-start", Some("node"), 2, Status::Timeout, 5000.0, &[]),
        result(
            "cold-start",
            Some("go"),
            3,
            Status::Passed,
            420.0,
            &[("boot_ms", 410.0)],
        ),
        result(
            "cold-start",
            Some("node"),
            3,
            Status::Failed,
            2100.0,
            &[("boot_ms", 2050.0), ("rss_kb", 40000.0)],
        ),
        result("hello-cortex-m", None, 1, Status::Passed, 60.0, &[]),
    ])
}

// --- stats ------------------------------------------------------------------

/// Asserts `actual`'s order statistics (min, median, p95, max) exactly, and
/// its mean and standard deviation to within rounding.
fn assert_stats(actual: Option<Stats>, order: [f64; 4], mean: f64, stddev: Option<f64>) {
    let actual = actual.expect("statistics of some values");
    assert_eq!(
        [actual.min, actual.median, actual.p95, actual.max],
        order,
        "{actual:?}"
    );
    assert!((actual.mean - mean).abs() < 1e-9, "mean: {actual:?}");
    match (actual.stddev, stddev) {
        (Some(a), Some(e)) => assert!((a - e).abs() < 1e-9, "stddev: {actual:?}"),
        (a, e) => assert_eq!(a, e, "stddev: {actual:?}"),
    }
}

#[test]
fn stats_of_an_odd_count() {
    let expected = [1.0, 3.0, 9.0, 9.0];
    assert_stats(
        stats(&[9.0, 1.0, 3.0, 2.0, 5.0]),
        expected,
        4.0,
        Some(3.1622776601683795),
    );
}

#[test]
fn stats_of_an_even_count_takes_the_mean_of_the_middle_two() {
    let expected = [1.0, 2.5, 4.0, 4.0];
    assert_stats(
        stats(&[4.0, 1.0, 3.0, 2.0]),
        expected,
        2.5,
        Some(1.2909944487358056),
    );
}

#[test]
fn stats_of_a_single_value() {
    let expected = [7.5, 7.5, 7.5, 7.5];
    assert_stats(stats(&[7.5]), expected, 7.5, None);
}

#[test]
fn stats_of_nothing_is_none() {
    assert_eq!(stats(&[]), None);
    assert_eq!(stats(&[f64::NAN, f64::NAN]), None);
}

#[test]
fn stats_ignore_nan() {
    let expected = [1.0, 2.0, 3.0, 3.0];
    assert_stats(stats(&[3.0, f64::NAN, 1.0, 2.0]), expected, 2.0, Some(1.0));
}

#[test]
fn p95_is_the_nearest_rank() {
    let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(stats(&twenty).map(|s| s.p95), Some(19.0));
    let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(stats(&hundred).map(|s| s.p95), Some(95.0));
    let twenty_one: Vec<f64> = (1..=21).map(f64::from).collect();
    assert_eq!(stats(&twenty_one).map(|s| s.p95), Some(20.0));
}

// --- summarize --------------------------------------------------------------

#[test]
fn summarize_groups_by_scenario_file_and_variant_in_first_seen_order() {
    let summaries = summarize(&multi_runs().results);
    let keys: Vec<(&str, Option<&str>, u32, u32)> = summaries
        .iter()
        .map(|s| (s.scenario.as_str(), s.variant.as_deref(), s.runs, s.passed))
        .collect();
    assert_eq!(
        keys,
        [
            ("cold-start", Some("go"), 3, 3),
            ("cold-start", Some("node"), 3, 1),
            ("hello-cortex-m", None, 1, 1),
        ]
    );
    assert_eq!(summaries[0].board, "raspi3b");
}

#[test]
fn summarize_aggregates_each_metric_over_the_runs_that_reported_it() {
    let summaries = summarize(&multi_runs().results);
    let go = &summaries[0].metrics;
    assert_eq!(go.keys().collect::<Vec<_>>(), ["boot_ms"]);
    assert_stats(
        go.get("boot_ms").copied(),
        [400.0, 410.0, 420.5, 420.5],
        1230.5 / 3.0,
        Some(10.251_016_209_787_855),
    );
    // The timed-out run reported nothing: two values, not three.
    let node = &summaries[1].metrics;
    assert_stats(
        node.get("boot_ms").copied(),
        [1850.0, 1950.0, 2050.0, 2050.0],
        1950.0,
        Some(141.421_356_237_309_5),
    );
    assert_eq!(node.get("rss_kb").map(|s| s.median), Some(40000.0));
    assert!(summaries[2].metrics.is_empty());
}

#[test]
fn summarize_keeps_the_same_scenario_in_different_files_apart() {
    let mut other = result("hello-cortex-m", None, 1, Status::Failed, 1.0, &[]);
    other.file = "elsewhere/hello.yaml".to_owned();
    let results = vec![
        result("hello-cortex-m", None, 1, Status::Passed, 1.0, &[]),
        other,
    ];
    let summaries = summarize(&results);
    assert_eq!(summaries.len(), 2);
    assert_eq!((summaries[0].passed, summaries[1].passed), (1, 0));
}

#[test]
fn summarize_nothing_is_empty() {
    assert!(summarize(&[]).is_empty());
}

// --- model helpers ----------------------------------------------------------

#[test]
fn all_passed_only_when_every_result_passed() {
    assert!(report(Vec::new()).all_passed());
    assert!(report(vec![result("a", None, 1, Status::Passed, 1.0, &[])]).all_passed());
    assert!(!single_runs().all_passed());
}

#[test]
fn case_names_carry_variant_and_run() {
    let with = result("hello-cortex-m", Some("m3"), 2, Status::Passed, 1.0, &[]);
    let without = result("hello-cortex-m", None, 1, Status::Passed, 1.0, &[]);
    assert_eq!(with.case_name(), "hello-cortex-m[m3]#2");
    assert_eq!(without.case_name(), "hello-cortex-m#1");
}

// --- JSON -------------------------------------------------------------------

/// The keys of JSON object `value`, in order.
fn keys(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn json_uses_the_field_names_of_the_design() {
    let json = to_json_string(&single_runs()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();

    // Parsed back in written order: DESIGN.md's order.
    assert_eq!(
        keys(&value),
        ["lab_version", "started_at", "seed", "results", "summaries"]
    );
    assert_eq!(value["lab_version"], "0.1.0");
    assert_eq!(value["started_at"], "2026-11-27T14:00:00Z");

    let first = &value["results"][0];
    assert_eq!(
        keys(first),
        [
            "scenario",
            "file",
            "variant",
            "board",
            "target",
            "run",
            "status",
            "duration_ms",
            "metrics",
            "steps",
            "error",
            "job",
        ]
    );
    assert_eq!(first["scenario"], "hello-cortex-m");
    assert_eq!(first["file"], "scenarios/hello-cortex-m.yaml");
    assert_eq!(first["variant"], "m3");
    assert_eq!(first["board"], "mps2-an385");
    assert_eq!(first["target"], "qemu");
    assert_eq!(first["run"], 1);
    assert_eq!(first["status"], "passed");
    assert_eq!(first["duration_ms"], 61.2);
    assert_eq!(first["metrics"]["t_ms"], 12.0);
    assert_eq!(first["error"], serde_json::Value::Null);
    let step = &first["steps"][0];
    assert_eq!(keys(step), ["step", "status", "at_ms", "duration_ms"]);
    assert_eq!(step["step"], "boot");
    assert_eq!(step["duration_ms"], 3.1);

    assert_eq!(value["results"][1]["status"], "failed");
    assert_eq!(value["results"][2]["variant"], serde_json::Value::Null);
    assert_eq!(value["results"][3]["status"], "error");
    assert_eq!(
        value["results"][3]["error"],
        "QEMU exited with signal 6 (SIGABRT)"
    );

    let summary = &value["summaries"][0];
    assert_eq!(summary["runs"], 1);
    assert_eq!(summary["passed"], 1);
    assert_eq!(summary["metrics"]["t_ms"]["median"], 12.0);
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(to_json_string(&multi_runs()).unwrap());
}

// --- JUnit ------------------------------------------------------------------

#[test]
fn junit_snapshot() {
    let mut report = single_runs();
    report.results.extend(multi_runs().results);
    insta::assert_snapshot!(to_junit_string(&report).unwrap());
}

// --- table ------------------------------------------------------------------

#[test]
fn table_of_single_runs() {
    insta::assert_snapshot!(render_table(&single_runs(), None));
}

#[test]
fn table_summarises_multiple_runs_in_one_row() {
    insta::assert_snapshot!(render_table(&multi_runs(), None));
}

#[test]
fn table_wraps_to_a_given_width() {
    insta::assert_snapshot!(render_table(&multi_runs(), Some(90)));
}

#[test]
fn table_totals_line_starts_with_passed_and_failed() {
    let all_good = report(vec![result("a", None, 1, Status::Passed, 1.0, &[])]);
    let table = render_table(&all_good, None);
    assert!(table.ends_with("\n1 passed, 0 failed\n"), "{table}");

    let table = render_table(&multi_runs(), None);
    assert!(
        table.contains("\n5 passed, 1 failed, 1 timeout\n"),
        "{table}"
    );
}

#[test]
fn table_of_nothing() {
    let table = render_table(&report(Vec::new()), None);
    assert!(table.ends_with("\n0 passed, 0 failed\n"), "{table}");
}

// --- writing files ----------------------------------------------------------

#[test]
fn writes_json_and_junit_files_and_no_temporary_ones() {
    let dir = tempfile::tempdir().unwrap();
    let report = single_runs();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("junit.xml");
    // Twice: the second write replaces the first.
    for _ in 0..2 {
        write_json(&report, &json).unwrap();
        write_junit(&report, &junit).unwrap();
    }
    assert_eq!(
        fs::read_to_string(&json).unwrap(),
        to_json_string(&report).unwrap()
    );
    assert_eq!(
        fs::read_to_string(&junit).unwrap(),
        to_junit_string(&report).unwrap()
    );
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["junit.xml", "report.json"]);
}

#[cfg(unix)]
#[test]
fn written_reports_are_not_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    write_json(&single_runs(), &json).unwrap();
    let mode = fs::metadata(&json).unwrap().permissions().mode();
    // 0o666 minus the umask: at least the owner can read and write, and it is
    // not tempfile's 0o600 unless the umask says so.
    assert_eq!(mode & 0o600, 0o600);
}

#[test]
fn writing_into_a_missing_folder_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-folder").join("report.json");
    for result in [
        write_json(&single_runs(), &path),
        write_junit(&single_runs(), &path),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, ReportError::Write { path: p, .. } if *p == path),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.starts_with("could not write the report to "),
            "{message}"
        );
        assert!(message.contains("No such file or directory"), "{message}");
    }
    assert!(!path.exists());
}

// --- comparison -------------------------------------------------------------

#[test]
fn comparison_puts_variants_side_by_side_with_medians() {
    let text = render_comparison(&multi_runs());
    insta::assert_snapshot!(text);
    // go's boot_ms runs were 400, 420.5 and 410: the median is in the cell.
    assert!(text.contains("410"), "{text}");
}

#[test]
fn comparison_splits_per_board_when_each_board_has_several_variants() {
    let mut results = multi_runs().results;
    let on_m7: Vec<RunResult> = results
        .iter()
        .filter(|r| r.variant.is_some())
        .cloned()
        .map(|mut r| {
            r.board = "mps2-an500".to_owned();
            r.variant = r.variant.map(|v| format!("{v}-m7"));
            r
        })
        .collect();
    results.extend(on_m7);
    let text = render_comparison(&report(results));
    assert!(text.contains("cold-start on raspi3b\n"), "{text}");
    assert!(text.contains("cold-start on mps2-an500\n"), "{text}");
}

#[test]
fn comparison_is_empty_without_a_matrix() {
    let only = report(vec![result(
        "solo",
        None,
        1,
        Status::Passed,
        1.0,
        &[("x", 1.0)],
    )]);
    assert_eq!(render_comparison(&only), "");
}

#[test]
fn markdown_has_the_summary_each_experiment_and_the_failures() {
    let reports = [
        ("base.json".to_owned(), single_runs()),
        ("new.json".to_owned(), multi_runs()),
    ];
    let markdown = render_markdown(&reports);
    insta::assert_snapshot!(markdown);
}

// --- declared tables and the order of metrics ---------------------------------

/// A column of a declared table.
fn column(metric: &str, label: &str, unit: Option<&str>) -> Column {
    Column::new(metric, label, unit.map(str::to_owned))
}

/// `multi_runs` with its cold start's table declared: RSS before boot
/// time (the reverse of the order the steps produced them), a metric no
/// run reported, and `hello-cortex-m` (no matrix) with a table too.
fn declared() -> Report {
    let mut report = multi_runs();
    report.tables.insert(
        "cold-start".to_owned(),
        TableSpec {
            columns: vec![
                column("rss_kb", "resident", Some("KiB")),
                column("boot_ms", "boot", Some("ms")),
                column("gc_count", "collections", None),
            ],
        },
    );
    report.results.push(result(
        "hello-cortex-m",
        None,
        2,
        Status::Passed,
        61.0,
        &[("t_ms", 12.0), ("boot_us", 2190.0)],
    ));
    report.summaries = summarize(&report.results);
    report.tables.insert(
        "hello-cortex-m".to_owned(),
        TableSpec {
            columns: vec![column("boot_us", "boot", Some("µs"))],
        },
    );
    report
}

#[test]
fn a_declared_column_shows_its_statistic_in_its_unit_through_json() {
    let mut report = declared();
    let mut boot = column("boot_ms", "boot", Some("s"));
    boot.stat = Statistic::Mean;
    boot.scale = lab::report::conversion("ms", "s").unwrap();
    report.tables.get_mut("cold-start").unwrap().columns[1] = boot;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    write_json(&report, &path).unwrap();
    let text = render_comparison(&read_json(&path).unwrap());
    assert!(text.contains("boot (s, mean ± sd)"), "{text}");
    // go: 400, 420.5 and 410 ms; node: 1850 and 2050 ms.
    assert!(text.contains("0.41 ± 0.01"), "{text}");
    assert!(text.contains("1.95 ± 0.141"), "{text}");
}

#[test]
fn metrics_keep_the_order_the_steps_produced_them_through_json() {
    let produced = [("ready_us", 9.0), ("boot_us", 3.0), ("alpha", 1.0)];
    let mut report = report(vec![
        result("order", Some("a"), 1, Status::Passed, 1.0, &produced),
        result("order", Some("b"), 1, Status::Passed, 1.0, &produced[1..]),
    ]);
    report.tables.insert(
        "other".to_owned(),
        TableSpec {
            columns: vec![column("x_us", "x", Some("µs"))],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    write_json(&report, &path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let at = |name: &str| text.find(&format!("\"{name}\"")).unwrap();
    assert!(at("ready_us") < at("boot_us") && at("boot_us") < at("alpha"));

    let back = read_json(&path).unwrap();
    let names: Vec<&str> = back.results[0].metrics.keys().map(String::as_str).collect();
    assert_eq!(names, ["ready_us", "boot_us", "alpha"]);
    let names: Vec<&str> = back.summaries[0]
        .metrics
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["ready_us", "boot_us", "alpha"]);
    assert_eq!(back.tables, report.tables);

    // Without a declared table, the comparison's rows take that order too.
    let text = render_comparison(&back);
    let row = |name: &str| text.find(&format!("│ {name} ")).unwrap();
    assert!(
        row("ready_us") < row("boot_us") && row("boot_us") < row("alpha"),
        "{text}"
    );
}

#[test]
fn reports_without_tables_load_and_write_none() {
    let json = to_json_string(&multi_runs()).unwrap();
    assert!(!json.contains("\"tables\""), "{json}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    fs::write(&path, json).unwrap();
    assert!(read_json(&path).unwrap().tables.is_empty());
}

#[test]
fn json_carries_each_declared_table() {
    let value: serde_json::Value =
        serde_json::from_str(&to_json_string(&declared()).unwrap()).unwrap();
    let hello = &value["tables"]["hello-cortex-m"]["columns"][0];
    assert_eq!(keys(hello), ["metric", "label", "unit"]);
    assert_eq!(hello["unit"], "µs");
    // No unit, no key.
    let gc = &value["tables"]["cold-start"]["columns"][2];
    assert_eq!(keys(gc), ["metric", "label"]);
}

#[test]
fn a_declared_table_has_a_row_per_variant_and_its_columns_in_order() {
    let report = declared();
    let text = render_comparison(&report);
    insta::assert_snapshot!(text);
    // Medians: go's boot 400, 420.5, 410; node's 1850 and 2050 (its
    // timed-out run reported nothing).
    let go = text.lines().find(|l| l.contains(" go ")).unwrap();
    assert!(go.contains("410"), "{go}");
    let header = text.lines().nth(2).unwrap();
    assert!(
        header.find("resident (KiB)") < header.find("boot (ms)")
            && header.find("boot (ms)") < header.find("collections"),
        "{header}"
    );
    // A scenario without a matrix gets its declared table: one row.
    assert!(text.contains("hello-cortex-m\n"), "{text}");
    assert!(text.contains("boot (µs)"), "{text}");
}

#[test]
fn the_run_table_lists_declared_metrics_first() {
    let text = render_table(&declared(), None);
    // node's runs produced boot_ms then rss_kb; the table declares rss_kb first.
    assert!(text.contains("rss_kb=40000, boot_ms=1950"), "{text}");
    assert!(text.contains("boot_us=2190, t_ms=12"), "{text}");
}

#[test]
fn markdown_renders_a_declared_table_with_labels_and_units() {
    let markdown = render_markdown(&[("r.json".to_owned(), declared())]);
    insta::assert_snapshot!(markdown);
    assert!(
        markdown.contains("| variant | resident (KiB) | boot (ms) | collections |"),
        "{markdown}"
    );
}
