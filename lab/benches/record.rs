//! What recording costs: the Cortex-M suite (`scenarios/cortex-m/`) run
//! with and without `--record`, side by side, and the size of the
//! recordings it leaves.
//!
//! Each round runs the suite twice with `-j 1`, plain and recorded, the
//! order alternating between rounds, so that whatever else the machine is
//! doing hits both. For every job (scenario × variant) it takes the run's
//! `duration_ms` from the report (the job's wall time: boot to the last
//! step, the recording's snapshot disk and its finishing included) and
//! prints, per scenario, the medians over the rounds summed over its
//! variants, the ratio, and the whole suite's `lab run` wall time. Then the
//! recordings of the last recorded round: the replay log's size, the
//! snapshot disk's size on disk, and the whole folder's.
//!
//! `cargo bench --bench record`. `RECORD_ROUNDS` (default 3) sets the rounds.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{lab, repo};

/// The suite: the experiment library's Cortex-M scenarios.
const SUITE: &[&str] = &[
    "cold-start.yaml",
    "footprint.yaml",
    "gc-pressure.yaml",
    "js-oom.yaml",
    "js-throw.yaml",
    "leak.yaml",
    "memory-layout.yaml",
    "poke.yaml",
];

fn main() {
    let rounds: usize = std::env::var("RECORD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files: Vec<PathBuf> = SUITE
        .iter()
        .map(|f| repo().join("scenarios/cortex-m").join(f))
        .collect();
    // The suite must plan before anything is timed.
    let list = lab()
        .arg("run")
        .args(&files)
        .arg("--list")
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", common::text(&list));

    let mut jobs: BTreeMap<(String, String), [Vec<f64>; 2]> = BTreeMap::new();
    let mut wall = [Vec::new(), Vec::new()];
    let mut not_passed = [0usize, 0usize];
    let mut last_recorded = None;
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let json = dir.path().join(format!("r{round}-{side}.json"));
            let mut cmd = lab();
            cmd.arg("run")
                .args(&files)
                .args(["-j", "1", "--json"])
                .arg(&json);
            if side == 1 {
                cmd.arg("--record");
            }
            let started = Instant::now();
            let out = cmd.output().expect("lab runs");
            wall[side].push(started.elapsed().as_secs_f64());
            let report = common::report(&json);
            for r in report["results"].as_array().expect("results") {
                let key = (
                    r["scenario"].as_str().unwrap_or("?").to_owned(),
                    r["variant"].as_str().unwrap_or("-").to_owned(),
                );
                if r["status"] != "passed" {
                    not_passed[side] += 1;
                    eprintln!(
                        "{} {}[{}]: {} {}",
                        ["plain", "recorded"][side],
                        key.0,
                        key.1,
                        r["status"],
                        r["error"]
                    );
                    continue;
                }
                let ms = r["duration_ms"].as_f64().unwrap_or(f64::NAN);
                jobs.entry(key).or_default()[side].push(ms);
            }
            if side == 1 {
                last_recorded = Some(json.clone());
            }
            if !out.status.success() {
                eprintln!("round {round}: `lab run` exited {:?}", out.status.code());
            }
        }
    }

    println!(
        "Cortex-M suite, {rounds} rounds, -j 1: per scenario the sum over its variants of each job's median duration"
    );
    println!(
        "{:<24} {:>12} {:>12} {:>8}",
        "scenario", "plain ms", "recorded ms", "ratio"
    );
    let mut scenarios: BTreeMap<&str, [f64; 2]> = BTreeMap::new();
    for ((scenario, _), sides) in &jobs {
        let sum = scenarios.entry(scenario).or_default();
        for side in 0..2 {
            sum[side] += median(&sides[side]);
        }
    }
    let mut total = [0.0, 0.0];
    for (scenario, [plain, recorded]) in &scenarios {
        println!(
            "{scenario:<24} {plain:>12.0} {recorded:>12.0} {:>8.2}",
            recorded / plain
        );
        total[0] += plain;
        total[1] += recorded;
    }
    println!(
        "{:<24} {:>12.0} {:>12.0} {:>8.2}",
        "all jobs",
        total[0],
        total[1],
        total[1] / total[0]
    );
    println!(
        "whole `lab run`, median s: plain {:.1}, recorded {:.1}; runs not passed: plain {}, recorded {}",
        median(&wall[0]),
        median(&wall[1]),
        not_passed[0],
        not_passed[1]
    );

    let Some(json) = last_recorded else { return };
    let folders = recordings(&json);
    let sizes =
        |f: &dyn Fn(&Path) -> u64| -> Vec<f64> { folders.iter().map(|p| f(p) as f64).collect() };
    let log = sizes(&|p| file_len(&p.join("replay.bin")));
    let disk = sizes(&|p| on_disk(&p.join("snapshot.qcow2")));
    let folder = sizes(&|p| {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| on_disk(&e.path())).sum())
            .unwrap_or(0)
    });
    println!("recordings: {} folders", folders.len());
    for (name, values) in [
        ("replay log (bytes)", &log),
        ("snapshot disk, on disk (bytes)", &disk),
        ("whole folder, on disk (bytes)", &folder),
    ] {
        println!(
            "{name:<32} median {:>10.0}  max {:>10.0}",
            median(values),
            values.iter().copied().fold(0.0, f64::max)
        );
    }
}

/// The recording folders a report names.
fn recordings(json: &Path) -> Vec<PathBuf> {
    let report = common::report(json);
    report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["recording"].as_str().map(PathBuf::from))
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The space a file takes on disk (a qcow2 is sparse).
fn on_disk(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
