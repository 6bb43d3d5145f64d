//! The soak: hundreds of runs of the real `lab` binary at `-j 2`, mixing
//! short Cortex-M scenarios, scripted campaigns, debugger sessions, faults,
//! timeouts and Linux guests, with seeded random Ctrl-C, SIGTERM and
//! SIGKILL of the lab itself. It counts what must never happen:
//!
//! - a run that did not end in the status it should have;
//! - a QEMU left behind once its lab has ended;
//! - a scratch folder left behind by a lab that ended on its own, by Ctrl-C
//!   or SIGTERM (a SIGKILLed lab cannot clean up: the next lab must sweep its
//!   folder, and a folder still there after that counts too);
//! - a report missing or invalid after an interruption.
//!
//! `cargo bench --bench soak` runs it; `SOAK_RUNS` (default 500) sets how
//! many runs at least, `SOAK_SEED` the seed. It exits non-zero when any
//! count is above 0.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use common::{qemu_processes_with, scratch_folders, wait_timeout};

/// What the soak checks each run against: why a result other than the
/// expected one is still right after an interruption.
const INTERRUPTED: &str = "interrupted (Ctrl-C)";
/// The longest a lab batch may take before the soak calls it hung.
const BATCH_LIMIT: Duration = Duration::from_secs(300);
/// How long a QEMU may outlive its lab before it counts as left behind.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// A scenario the soak draws from, with the status each of its runs must end in.
struct Entry {
    /// Where it comes from: a repository scenario or one the soak writes.
    source: Source,
    /// The file name the batch gives its copy (the stem names a `.rhai` scenario).
    name: &'static str,
    /// The status every one of its results must have.
    expect: &'static str,
    /// How often it is drawn, relative to the others.
    weight: u32,
}

enum Source {
    Repo(&'static str),
    Text(&'static str),
}

/// The mix. Linux guests are rare: each costs seconds where the others cost
/// a few hundred milliseconds.
fn mix() -> Vec<Entry> {
    use Source::{Repo, Text};
    vec![
        Entry {
            source: Repo("scenarios/echo.yaml"),
            name: "echo.yaml",
            expect: "passed",
            weight: 6,
        },
        Entry {
            source: Repo("scenarios/hello.yaml"),
            name: "hello.yaml",
            expect: "passed",
            weight: 3,
        },
        Entry {
            source: Repo("scenarios/debug-attach.yaml"),
            name: "debug-attach.yaml",
            expect: "passed",
            weight: 4,
        },
        Entry {
            source: Repo("scenarios/faults/undefined-instruction.yaml"),
            name: "undef.yaml",
            expect: "passed",
            weight: 3,
        },
        Entry {
            source: Repo("scenarios/faults/bus-fault.yaml"),
            name: "bus.yaml",
            expect: "passed",
            weight: 3,
        },
        Entry {
            source: Repo("scenarios/faults/lockup.yaml"),
            name: "lockup.yaml",
            expect: "passed",
            weight: 2,
        },
        Entry {
            source: Repo("scenarios/faults/user-firmware.yaml"),
            name: "user-fault.yaml",
            expect: "passed",
            weight: 3,
        },
        Entry {
            source: Repo("scenarios/scripted/echo-lines.rhai"),
            name: "echo_lines.rhai",
            expect: "passed",
            weight: 5,
        },
        Entry {
            source: Repo("scenarios/scripted/reset-campaign.rhai"),
            name: "reset_campaign.rhai",
            expect: "passed",
            weight: 2,
        },
        Entry {
            source: Text(TIMEOUT),
            name: "times-out.yaml",
            expect: "timeout",
            weight: 3,
        },
        Entry {
            source: Text(FAILS),
            name: "fails.yaml",
            expect: "failed",
            weight: 2,
        },
        Entry {
            source: Text(SCRIPT_TIMEOUT),
            name: "script_times_out.rhai",
            expect: "timeout",
            weight: 1,
        },
        Entry {
            source: Repo("scenarios/raspi/boot.yaml"),
            name: "linux-boot.yaml",
            expect: "passed",
            weight: 1,
        },
    ]
}

/// Waits for a line the echo firmware never prints.
const TIMEOUT: &str = "version: 1\nname: times-out\nboard: mps2-an385\nimage: cortex-m/echo\n\
timeout: 30s\nsteps:\n  - boot: {}\n  - wait-serial: {match: 'never printed', timeout: 1500ms}\n";
/// Expects the wrong exit code of the hello firmware.
const FAILS: &str = "version: 1\nname: fails\nboard: mps2-an385\nimage: cortex-m/hello\n\
timeout: 10s\nsteps:\n  - boot: {}\n  - expect-exit: {code: 9, timeout: 5s}\n";
/// A script whose wait outlasts the scenario's deadline.
const SCRIPT_TIMEOUT: &str = "const BOARD = \"mps2-an385\";\nconst IMAGE = \"cortex-m/echo\";\n\
const TIMEOUT = \"2s\";\nboot();\nwait_serial(\"never printed\", \"10s\");\n";

/// How a batch ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The lab runs to the end.
    Natural,
    /// Ctrl-C (SIGINT) or a CI runner's SIGTERM after the delay: the lab
    /// must stop cleanly.
    Stop(Signal, Duration),
    /// SIGKILL after the delay.
    Kill(Duration),
}

#[derive(Debug, Default)]
struct Counts {
    batches: usize,
    runs: usize,
    stops: BTreeMap<&'static str, usize>,
    kills: usize,
    wrong_status: usize,
    qemu_left: usize,
    folders_left: usize,
    reports_bad: usize,
    swept_after_kill: usize,
    by_status: BTreeMap<String, usize>,
}

fn main() {
    let target_runs: usize = env_or("SOAK_RUNS", 500);
    let seed: u64 = env_or("SOAK_SEED", 11);
    let repo = common::repo();
    let work = tempfile::Builder::new().prefix("soak-").tempdir().unwrap();
    // The soak's labs keep their scratch folders here, so that what they
    // leave is told apart from everything else on the machine.
    let tmp = work.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mix = mix();
    let total_weight: u32 = mix.iter().map(|e| e.weight).sum();

    println!(
        "soak: at least {target_runs} runs, seed {seed}, lab {}",
        env!("CARGO_BIN_EXE_lab")
    );
    prebuild();
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut killed_before = false;
    while counts.runs < target_runs {
        let batch = work.path().join(format!("batch-{:04}", counts.batches));
        fs::create_dir(&batch).unwrap();
        let size = rng.usize(4..=10);
        let mut files = Vec::new();
        for i in 0..size {
            let mut pick = rng.u32(0..total_weight);
            let entry = mix.iter().find(|e| {
                let hit = pick < e.weight;
                pick = pick.saturating_sub(e.weight);
                hit
            });
            let entry = entry.expect("the weights cover the draw");
            let (stem, ext) = entry.name.rsplit_once('.').unwrap();
            let file = batch.join(format!("{stem}_{i}.{ext}"));
            match entry.source {
                Source::Repo(path) => fs::copy(repo.join(path), &file).map(drop).unwrap(),
                Source::Text(text) => fs::write(&file, text).unwrap(),
            }
            files.push((file, entry.expect));
        }
        let ending = match rng.u32(0..100) {
            0..8 => Ending::Stop(Signal::SIGINT, Duration::from_millis(rng.u64(250..4000))),
            8..12 => Ending::Stop(Signal::SIGTERM, Duration::from_millis(rng.u64(250..4000))),
            12..22 => Ending::Kill(Duration::from_millis(rng.u64(250..4000))),
            _ => Ending::Natural,
        };
        let json = batch.join("report.json");
        let seed = rng.u64(..);
        let mut child = common::lab()
            .env("TMPDIR", &tmp)
            .args(["run", "-j", "2", "--seed", &seed.to_string(), "--json"])
            .arg(&json)
            .args(files.iter().map(|(f, _)| f))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lab runs");
        match ending {
            Ending::Natural => {}
            Ending::Stop(sig, after) => {
                std::thread::sleep(after);
                common::signal(&child, sig);
                *counts.stops.entry(sig.as_str()).or_default() += 1;
            }
            Ending::Kill(after) => {
                std::thread::sleep(after);
                let _ = child.kill();
                counts.kills += 1;
            }
        }
        if wait_timeout(&mut child, BATCH_LIMIT).is_none() {
            println!("batch {}: the lab hung; killed", counts.batches);
            let _ = child.kill();
            let _ = child.wait();
            counts.wrong_status += files.len();
        }
        check_batch(&mut counts, &batch, &files, &json, ending);

        // QEMUs must go with their lab, whatever ended it.
        let needle = tmp.to_string_lossy().into_owned();
        let deadline = Instant::now() + REAP_GRACE;
        while !qemu_processes_with(&needle).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in qemu_processes_with(&needle) {
            counts.qemu_left += 1;
            println!("batch {}: QEMU {pid} left behind", counts.batches);
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        // A lab that ended on its own or by Ctrl-C leaves no folder, and it
        // swept what a killed lab before it left.
        let left = scratch_folders(&tmp);
        match ending {
            Ending::Kill(_) => killed_before = true,
            _ => {
                if killed_before {
                    counts.swept_after_kill += 1;
                    killed_before = false;
                }
                if !left.is_empty() {
                    println!("batch {}: folders left: {left:?}", counts.batches);
                    counts.folders_left += left.len();
                    for name in left {
                        let _ = fs::remove_dir_all(tmp.join(name));
                    }
                }
            }
        }
        counts.batches += 1;
    }
    let elapsed = started.elapsed();
    println!();
    println!(
        "soak: {} runs in {} batches, {:.0} s (stopped by {:?}, {} SIGKILL of the lab; statuses {:?})",
        counts.runs,
        counts.batches,
        elapsed.as_secs_f64(),
        counts.stops,
        counts.kills,
        counts.by_status
    );
    println!(
        "  runs not in the status they should have: {}",
        counts.wrong_status
    );
    println!(
        "  QEMU processes left behind:              {}",
        counts.qemu_left
    );
    println!(
        "  scratch folders left behind:             {}",
        counts.folders_left
    );
    println!(
        "  reports missing or invalid:              {}",
        counts.reports_bad
    );
    println!(
        "  (a SIGKILLed lab's folders were swept by the next lab {} times)",
        counts.swept_after_kill
    );
    let bad = counts.wrong_status + counts.qemu_left + counts.folders_left + counts.reports_bad;
    if bad > 0 {
        println!("soak: FAIL");
        std::process::exit(1);
    }
    println!("soak: PASS");
}

/// Builds every image the mix boots, so the first batches measure runs,
/// not builds.
fn prebuild() {
    let out = common::run(&[
        "images",
        "build",
        "cortex-m/echo",
        "cortex-m/hello",
        "cortex-m/fault",
        "cortex-m/user-fault",
        "cortex-m/debuggee",
        "raspi/busybox",
    ]);
    assert!(
        out.status.success(),
        "image builds failed: {}",
        common::text(&out)
    );
    for board in ["mps2-an386", "mps2-an500"] {
        for image in ["cortex-m/hello", "cortex-m/fault"] {
            common::built_image_dir(image, board);
        }
    }
}

/// Checks one batch's report against what each run should have ended in.
fn check_batch(
    counts: &mut Counts,
    batch: &Path,
    files: &[(PathBuf, &str)],
    json: &Path,
    ending: Ending,
) {
    let report: Option<Value> = fs::read_to_string(json)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let Some(report) = report else {
        counts.reports_bad += 1;
        counts.runs += files.len();
        println!(
            "{}: report missing or invalid ({ending:?})",
            batch.display()
        );
        return;
    };
    let results = report["results"].as_array().cloned().unwrap_or_default();
    for result in &results {
        counts.runs += 1;
        let status = result["status"].as_str().unwrap_or("?").to_owned();
        *counts.by_status.entry(status.clone()).or_default() += 1;
        let file = result["file"].as_str().unwrap_or_default();
        let Some((_, expect)) = files.iter().find(|(f, _)| f.to_string_lossy() == file) else {
            counts.wrong_status += 1;
            println!(
                "{}: a result for a file not in the batch: {file}",
                batch.display()
            );
            continue;
        };
        let error = result["error"].as_str().unwrap_or_default();
        let excused = match ending {
            Ending::Natural => false,
            Ending::Stop(..) => status == "error" && error.ends_with(INTERRUPTED),
            Ending::Kill(_) => {
                status == "error"
                    && (error == lab::report::UNFINISHED || error.ends_with(INTERRUPTED))
            }
        };
        if status != *expect && !excused {
            counts.wrong_status += 1;
            println!(
                "{}: {} [{}] ended {status}, expected {expect} ({ending:?}): {error}",
                batch.display(),
                result["scenario"],
                result["variant"]
            );
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
