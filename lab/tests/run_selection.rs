//! The test-runner habits of `lab run`: `--list`, `-k`, `--board`,
//! `--runs`, `--repeat`, `--shard` and `--fail-fast`, on real QEMU where
//! something runs.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{ScenarioYaml, lab, lab_run, scenario, text};

/// A scenario with a matrix over three Cortex-M boards, each booting the
/// hello firmware to its exit: fast, and real.
const MATRIX: &str = "version: 1\nname: hello\nimage: cortex-m/hello\ntimeout: 20s\nmatrix:\n  \
     - {name: m3, board: mps2-an385}\n  - {name: m4, board: mps2-an386}\n  \
     - {name: m7, board: mps2-an500}\nsteps:\n  - boot: {}\n  \
     - wait-serial: {match: 'READY', timeout: 10s}\n  - expect-exit: {code: 0, timeout: 10s}\n";

/// `lab run --list ARGS` on `file`: its exit code and stdout.
fn list(dir: &Path, file: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = lab()
        .current_dir(dir)
        .args(["run", "--list"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn list_prints_the_jobs_a_selection_would_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "hello.yaml", MATRIX);
    let (code, all) = list(dir.path(), &file, &[]);
    assert_eq!(code, Some(0), "{all}");
    insta::assert_snapshot!(all);

    let (_, picked) = list(
        dir.path(),
        &file,
        &["-k", "[m7]", "-k", "[m3]", "--runs", "2", "--repeat", "2"],
    );
    insta::assert_snapshot!(picked);

    let (_, on_board) = list(dir.path(), &file, &["--board", "mps2-an386"]);
    assert!(
        on_board.contains("hello[m4]#1") && on_board.ends_with("1 job\n"),
        "{on_board}"
    );
}

#[test]
fn a_filter_that_matches_nothing_exits_2_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "hello.yaml", MATRIX);
    let out = lab()
        .args(["run", "-k", "m9", "--board", "mps2-an385"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}

#[test]
fn shards_split_the_jobs_into_disjoint_parts_that_cover_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "hello.yaml", MATRIX);
    let jobs = |args: &[&str]| -> Vec<String> {
        let (code, out) = list(dir.path(), &file, args);
        assert_eq!(code, Some(0), "{out}");
        out.lines()
            .skip(1)
            .filter(|l| !l.ends_with(" job") && !l.ends_with(" jobs"))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let whole = jobs(&["--runs", "3"]);
    assert_eq!(whole.len(), 9);
    let mut seen = BTreeSet::new();
    let mut sizes = Vec::new();
    for k in 1..=4 {
        let part = jobs(&["--runs", "3", "--shard", &format!("{k}/4")]);
        sizes.push(part.len());
        for job in part {
            assert!(seen.insert(job.clone()), "{job} is in two shards");
        }
    }
    assert_eq!(seen, whole.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(sizes, [3, 2, 2, 2]);
    // Stable: the same shard twice is the same jobs.
    assert_eq!(
        jobs(&["--runs", "3", "--shard", "2/4"]),
        jobs(&["--runs", "3", "--shard", "2/4"])
    );
}

#[test]
fn a_shard_runs_only_its_part_and_reports_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "hello.yaml", MATRIX);
    let run = lab_run(dir.path(), &file, &["-j", "2", "--shard", "2/2"]);
    assert_eq!(run.code(), Some(0), "{run}");
    assert_eq!(run.each("variant"), ["m4"]);
    assert_eq!(run.first()["status"], "passed", "{run}");
}

#[test]
fn fail_fast_starts_nothing_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    ScenarioYaml::image("mps2-an385", "cortex-m/hello")
        .with("name: first")
        .with("timeout: 20s")
        .step("boot: {}")
        .step("wait-serial: {match: 'READY', timeout: 10s}")
        .step("expect-exit: {code: 3, timeout: 10s}")
        .write(dir.path(), "a-first.yaml");
    ScenarioYaml::image("mps2-an385", "cortex-m/hello")
        .with("name: second")
        .with("timeout: 20s")
        .step("boot: {}")
        .step("expect-exit: {code: 0, timeout: 10s}")
        .write(dir.path(), "b-second.yaml");
    // Runs the folder one job at a time with `flags`; both runs fail.
    let run = |flags: &[&str]| {
        let report = dir.path().join("report.json");
        let out = lab()
            .args(["run", "-j", "1"])
            .args(flags)
            .arg("--json")
            .arg(&report)
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        common::report(&report)
    };
    let json = run(&["--fail-fast"]);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{json}");
    assert_eq!(results[0]["scenario"], "first");
    assert_eq!(results[0]["status"], "failed", "{json}");
    assert_eq!(results[1]["scenario"], "second");
    assert_eq!(results[1]["status"], "error", "{json}");
    assert_eq!(
        results[1]["error"],
        "not run: --fail-fast stopped the run when first#1 did not pass"
    );
    assert_eq!(results[1]["steps"].as_array().unwrap().len(), 0, "{json}");

    // Without the flag, the second runs and passes.
    let json = run(&[]);
    assert_eq!(json["results"][1]["status"], "passed", "{json}");
}

/// `report` without what differs between two runs of the same jobs: when
/// they started and how long each part took.
fn without_timings(mut report: serde_json::Value) -> serde_json::Value {
    report["started_at"] = serde_json::Value::Null;
    for result in report["results"].as_array_mut().unwrap() {
        result["duration_ms"] = serde_json::Value::Null;
        for step in result["steps"].as_array_mut().unwrap() {
            step["at_ms"] = serde_json::Value::Null;
            step["duration_ms"] = serde_json::Value::Null;
        }
    }
    report
}

#[test]
fn merged_shards_make_the_report_of_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "hello.yaml", MATRIX);
    let whole = lab_run(
        dir.path(),
        &file,
        &["-j", "2", "--runs", "2", "--seed", "7"],
    );
    assert_eq!(whole.code(), Some(0), "{whole}");
    assert_eq!(whole.results().len(), 6);

    let mut parts = Vec::new();
    for k in 1..=3 {
        let out = dir.path().join(format!("shard-{k}.json"));
        let run = lab()
            .args(["run", "-j", "2", "--runs", "2", "--seed", "7", "--shard"])
            .arg(format!("{k}/3"))
            .arg("--json")
            .arg(&out)
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
        parts.push(out);
    }
    // Given out of order: the merge orders by the jobs' places in the run.
    parts.reverse();
    let merged = dir.path().join("merged.json");
    let out = lab()
        .args(["report", "merge", "-o"])
        .arg(&merged)
        .args(&parts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        without_timings(common::report(&merged)),
        without_timings(whole.json.clone())
    );

    // The merged report renders as a run's does.
    let shown = lab().arg("report").arg(&merged).output().unwrap();
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("6 passed, 0 failed"),
        "{}",
        text(&shown)
    );

    // A shard given twice, or shards of differently seeded runs, are refused.
    let twice = lab()
        .args(["report", "merge", "-o"])
        .arg(&merged)
        .args([&parts[0], &parts[0]])
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("is in both"));
    let other_seed = dir.path().join("other-seed.json");
    let run = lab()
        .args([
            "run", "--seed", "8", "--shard", "1/3", "--runs", "2", "--json",
        ])
        .arg(&other_seed)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let mixed = lab()
        .args(["report", "merge", "-o"])
        .arg(&merged)
        .args([&parts[0], &other_seed])
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("same `--seed`"));
}
