//! The report's data model, serialised as the `--json` report of DESIGN.md.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::layout::Tables;

/// A run's metrics by name, in the order its steps produced them (a
/// metric produced again keeps its place and takes the new value).
pub type Metrics = IndexMap<String, f64>;

/// How much of a failed run's console its result keeps, in bytes.
pub const CONSOLE_TAIL: usize = 4096;

/// A whole invocation of `lab run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The lab's version.
    pub lab_version: String,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// The seed of scripts' random numbers (`lab run --seed` repeats a run).
    pub seed: u64,
    /// One entry per scenario x variant x run, in a stable order.
    pub results: Vec<RunResult>,
    /// Per scenario x variant: every numeric metric aggregated over its runs.
    #[serde(default)]
    pub summaries: Vec<Summary>,
    /// The tables the scenarios declare (`table:`), by scenario name: what
    /// `lab report` needs to print them without the scenario files. Absent
    /// when none declares one, and from reports written before it.
    #[serde(default, skip_serializing_if = "Tables::is_empty")]
    pub tables: Tables,
}

impl Report {
    /// Whether every result passed (also true when there are none).
    pub fn all_passed(&self) -> bool {
        self.results.iter().all(|r| r.status == Status::Passed)
    }
}

/// The outcome of one run of one variant of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file as given on the command line.
    pub file: String,
    /// The matrix variant, `null` when the scenario has no matrix.
    pub variant: Option<String>,
    /// The board profile.
    pub board: String,
    /// The backend that ran it: `qemu` or `hardware`.
    pub target: String,
    /// The run number, from 1.
    pub run: u32,
    /// The verdict.
    pub status: Status,
    /// Wall time of the run in milliseconds.
    pub duration_ms: f64,
    /// Numeric metrics (named regex groups and the like), in the order the
    /// steps produced them.
    pub metrics: Metrics,
    /// Raw samples behind some metrics, for plots: name -> `[x, y]` points
    /// (their names, units and cap: [`crate::report::series`]).
    /// Absent from the JSON when empty, and from reports written before it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, Vec<[f64; 2]>>,
    /// Per-step outcomes, in order; steps never reached are absent.
    pub steps: Vec<StepResult>,
    /// A one-line reason for anything but `passed`.
    pub error: Option<String>,
    /// For a run that did not pass: the end of what the target last
    /// printed on its serial console (at most [`CONSOLE_TAIL`] bytes, the
    /// current power cycle's), so a failure can be read without a rerun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
    /// How a run of a scenario with `warm-up` started; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Start>,
    /// The warm-up's snapshot the run restored or saved, when it used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The folder of the run's recording (`lab run --record`, `record:`),
    /// when it kept one: `lab debug --replay` plays it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// The job's place in the whole run, from 0 (before `--shard` cut it):
    /// `lab report merge` puts shards' results back in this order.
    #[serde(default)]
    pub job: usize,
}

/// How a run of a scenario with `warm-up` started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Restored from the warm-up's snapshot.
    Warm,
    /// Booted and ran the warm-up (and saved its snapshot when it could).
    Cold,
}

impl RunResult {
    /// The name of this run in tables and JUnit: `scenario[variant]#run`,
    /// without the brackets when there is no variant (`hello-cortex-m[m3]#1`).
    pub fn case_name(&self) -> String {
        format!(
            "{}#{}",
            case(&self.scenario, self.variant.as_deref()),
            self.run
        )
    }
}

/// A scenario's variant as `-k` matches it and comparisons name it:
/// `scenario[variant]`, or the scenario alone when it has no matrix.
pub fn case(scenario: &str, variant: Option<&str>) -> String {
    match variant {
        Some(variant) => format!("{scenario}[{variant}]"),
        None => scenario.to_owned(),
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's key (`boot`, `wait-serial`, ...).
    pub step: String,
    /// The step's verdict.
    pub status: Status,
    /// When the step started, in ms since the run started.
    pub at_ms: f64,
    /// How long the step took, in ms.
    pub duration_ms: f64,
    /// What the step found, for steps that observe something: a debugger
    /// stop's reason and location, a value read. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<BTreeMap<String, serde_json::Value>>,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every step held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// A deadline passed.
    Timeout,
    /// The lab or the target broke (QEMU crashed, image missing, ...).
    Error,
}

impl Status {
    /// The lowercase name used in reports and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::Error => "error",
        }
    }
}

/// Numeric metrics of one scenario x variant aggregated over its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// The matrix variant, `null` when the scenario has no matrix.
    pub variant: Option<String>,
    /// The board profile.
    pub board: String,
    /// How many runs there were.
    pub runs: u32,
    /// How many of them passed.
    pub passed: u32,
    /// Per metric: min, median, p95 and max over the runs that reported it,
    /// in the order the runs produced the metrics (first seen first).
    pub metrics: IndexMap<String, Stats>,
}

/// Statistics of one metric over a variant's runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean. (Reports written before it existed read as 0; `lab
    /// report` computes summaries again from the results.)
    #[serde(default)]
    pub mean: f64,
    /// Sample standard deviation (n - 1); absent for a single value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
}
