//! `gc-trace:` reads a runtime's GC trace from the console (Go's
//! `GODEBUG=gctrace=1`, V8's `--trace-gc`) until a line matches, and sums
//! the collections' pauses, in all and per collector (V8's Scavenge,
//! Mark-Compact, ...) or, for Go's one collector, per stop-the-world phase.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;
use tokio::time::Instant;

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::failure::{capture_metrics, ended_early};
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::backend::{Target, TargetError};
use crate::console::{ConsoleError, NextLine};
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::{Metrics, Status};
use crate::report::series::{GC_PAUSES, replace_series};

/// Which runtime's GC trace `gc-trace:` parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcFormat {
    /// Go's `GODEBUG=gctrace=1` lines (`gc 1 @0.012s 2%: ...`).
    Go,
    /// V8's `--trace-gc` lines, as Node.js prints them (`[pid:0x...] 42 ms: Scavenge ...`).
    V8,
    /// Either, told apart line by line: Go and Node.js as matrix variants of
    /// one scenario share its steps.
    Auto,
}

impl GcFormat {
    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GcFormat::Go => "go",
            GcFormat::V8 => "v8",
            GcFormat::Auto => "auto",
        }
    }
}

/// Options of `gc-trace:`.
#[derive(Debug, Clone)]
pub struct GcTrace {
    /// The trace format.
    pub format: GcFormat,
    /// Reading ends at the first line this matches; its named groups become
    /// metrics, and `run_us` is the run time the pauses are a share of.
    pub until: regex::bytes::Regex,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// `gc-trace:` as written; `format` and `until` are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawGcTrace {
    format: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for GcTrace {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "gc-trace",
        example: "{format: go, until: 'DONE t_us=(?P<run_us>\\d+)', timeout: 30s}",
    };
    type Raw = Spanned<RawGcTrace>;

    fn load(raw: Spanned<RawGcTrace>, v: &Validator<'_>) -> Result<Self, ScenarioError> {
                let map = loc(&raw.referenced);
        let options = raw.value;
        let format = v.required(options.format, Self::SYNTAX, "format", map)?;
        let until = v.required(options.until, Self::SYNTAX, "until", map)?;
        let format = match format.value.as_str() {
            "go" => GcFormat::Go,
            "v8" => GcFormat::V8,
            "auto" => GcFormat::Auto,
            other => {
                return Err(v.error(
                    loc(&format.referenced),
                    ErrorKind::UnknownValue {
                        value: other.to_owned(),
                        expected: vec!["go", "v8", "auto"],
                    },
                ));
            }
        };
        Ok(GcTrace {
            format,
            until: v.pattern(&until)?,
            timeout: v.optional_duration(options.timeout.as_ref())?,
        })
        }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let detail = gc_trace(self, &mut *ctx.target, &mut ctx.metrics, &mut ctx.series).await?;
        Ok(Some(detail))
    }
}

/// A Go trace line starts like this; one that does and does not parse is an error.
static GO_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^gc \d+ @").expect("valid pattern"));

/// A whole Go 1.19+ trace line (older ones lack stacks and globals):
/// `gc 1 @0.012s 2%: 0.018+0.51+0.003 ms clock, 0.036+0.10/0.42/0.85+0.006
/// ms cpu, 4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)`.
/// The wall-clock terms are sweep termination (stop-the-world), concurrent
/// mark and mark termination (stop-the-world).
static GO_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^gc \d+ @(?P<at>\d+(?:\.\d+)?)s (?P<cpu>\d+)%: (?P<sweep_term>\d+(?:\.\d+)?)\+\d+(?:\.\d+)?\+(?P<mark_term>\d+(?:\.\d+)?) ms clock, [\d.+/]+ ms cpu, \d+->\d+->\d+ MB, \d+ MB goal, (?:\d+ MB stacks, \d+ MB globals, )?\d+ P(?P<forced> \(forced\))?\s*$",
    )
    .expect("valid pattern")
});

/// A V8 trace line starts like this (`[pid:isolate]  <ms> ms: ... -> ...`);
/// `--trace-gc-verbose` statistics lines share the prefix but have no `->`.
static V8_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[\d+:0x[0-9a-fA-F]+\]\s+\d+ ms: .* -> ").expect("valid"));

/// A whole V8 trace line, from Node 18's V8 10.2 (`Mark-sweep`, one decimal)
/// to newer ones (`Mark-Compact`, two decimals, `pooled:`): `[123:0x55d0c0a0]
/// 42 ms: Scavenge 2.3 (3.0) -> 1.9 (4.0) MB, 1.2 / 0.0 ms (average mu = ...`.
/// The pause is the first number of `P / Q ms` (Q is time in embedder callbacks).
static V8_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\[\d+:0x[0-9a-fA-F]+\]\s+(?P<at>\d+) ms: (?P<kind>[A-Z][A-Za-z-]*(?: [A-Z][A-Za-z-]*)*)(?P<reduce> \(reduce\))?(?: \(interleaved\))? \d+(?:\.\d+)? \(\d+(?:\.\d+)?\) -> \d+(?:\.\d+)? \(\d+(?:\.\d+)?\) MB, (?:pooled: \d+(?:\.\d+)? MB, )?(?P<pause>\d+(?:\.\d+)?) / \d+(?:\.\d+)? ms ",
    )
    .expect("valid pattern")
});

/// Errors of GC trace parsing.
#[derive(Debug, thiserror::Error, PartialEq)]
enum GcTraceError {
    /// A line that starts like a trace line but is not one.
    #[error("the line {line:?} looks like a {format} GC trace line but does not parse as one")]
    Malformed {
        /// The trace format.
        format: &'static str,
        /// The line as read.
        line: String,
    },
}

impl From<GcTraceError> for StepFailure {
    fn from(e: GcTraceError) -> Self {
        StepFailure::new(Status::Failed, e.to_string())
    }
}

/// One collection from a trace line.
#[derive(Debug, Clone, PartialEq)]
struct Collection {
    /// When it started, in µs since the runtime started.
    pub at_us: f64,
    /// Stop-the-world time in µs.
    pub pause_us: f64,
    /// The collector (`Scavenge`, `Mark-sweep`, ...) or, for Go, `gc` or `forced`.
    pub kind: String,
    /// Go's cumulative share of CPU time spent in GC so far, in percent.
    pub cpu_percent: Option<f64>,
    /// V8: a memory-reducing full collection (`Mark-Compact (reduce)`).
    pub reduce: bool,
    /// Go: the two stop-the-world phases, sweep termination and mark
    /// termination, in µs (they add up to `pause_us`).
    pub stw: Option<[f64; 2]>,
}

impl Collection {
    /// The name of its collector in metric names (`gc_<collector>_count`),
    /// V8 only: `scavenge`, `mark_compact` (V8 10.2, Node 18's, prints the
    /// same collector as `Mark-sweep`), `mark_compact_reduce`,
    /// `minor_mark_compact` (`Minor Mark-Compact`, later `Minor
    /// Mark-Sweep`), else the kind in lower case with `_` for the rest.
    fn collector(&self) -> String {
        let name = match self.kind.as_str() {
            "Mark-sweep" | "Mark-Compact" => "mark_compact".to_owned(),
            "Minor Mark-Compact" | "Minor Mark-Sweep" | "Minor Mark-sweep" => {
                "minor_mark_compact".to_owned()
            }
            other => other
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
                .collect(),
        };
        if self.reduce {
            format!("{name}_reduce")
        } else {
            name
        }
    }
}

/// Parses one console line; `Ok(None)` for a line that is not a trace line.
fn parse(format: GcFormat, line: &str) -> Result<Option<Collection>, GcTraceError> {
    // `auto` reads a line that starts like a V8 one as V8, any other as Go.
    let v8 = match format {
        GcFormat::Go => false,
        GcFormat::V8 => true,
        GcFormat::Auto => V8_START.is_match(line),
    };
    let (format, start, whole) = if v8 {
        (GcFormat::V8, &*V8_START, &*V8_LINE)
    } else {
        (GcFormat::Go, &*GO_START, &*GO_LINE)
    };
    if !start.is_match(line) {
        return Ok(None);
    }
    let malformed = || GcTraceError::Malformed {
        format: format.as_str(),
        line: line.to_owned(),
    };
    let caps = whole.captures(line).ok_or_else(malformed)?;
    let number = |name: &str| -> Result<f64, GcTraceError> {
        caps.name(name)
            .and_then(|m| m.as_str().parse::<f64>().ok())
            .ok_or_else(malformed)
    };
    let us = |ms: f64| (ms * 1000.0).round();
    Ok(Some(if v8 {
        Collection {
            at_us: number("at")? * 1000.0,
            pause_us: us(number("pause")?),
            kind: caps["kind"].to_owned(),
            cpu_percent: None,
            reduce: caps.name("reduce").is_some(),
            stw: None,
        }
    } else {
        let stw = [us(number("sweep_term")?), us(number("mark_term")?)];
        Collection {
            at_us: (number("at")? * 1e6).round(),
            pause_us: stw[0] + stw[1],
            kind: if caps.name("forced").is_some() {
                "forced"
            } else {
                "gc"
            }
            .to_owned(),
            cpu_percent: Some(number("cpu")?),
            reduce: false,
            stw: Some(stw),
        }
    }))
}

/// Pauses summed: how many, their total and the longest, in µs.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Pauses {
    count: u32,
    total_us: f64,
    max_us: f64,
}

impl Pauses {
    fn add(&mut self, pause_us: f64) {
        self.count += 1;
        self.total_us += pause_us;
        self.max_us = self.max_us.max(pause_us);
    }
}

/// V8's collectors that have metrics in every V8 trace, the issue's
/// "Scavenge against Mark-Compact", also when a run has none of one.
const V8_COLLECTORS: [&str; 2] = ["scavenge", "mark_compact"];

/// Go's stop-the-world phases, as named in metrics.
const GO_PHASES: [&str; 2] = ["sweep_termination", "mark_termination"];

/// The collections of one trace, summed.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    /// How many collections.
    pub count: u32,
    /// Their pauses, summed, in µs.
    pub pause_total_us: f64,
    /// The longest pause in µs.
    pub pause_max_us: f64,
    /// When the last one started, in µs since the runtime started.
    pub last_at_us: Option<f64>,
    /// Go's cumulative GC CPU share from the last line.
    pub cpu_percent: Option<f64>,
    /// Collections per kind.
    pub kinds: BTreeMap<String, u32>,
    /// Each collection's start and pause (µs), per kind, in trace order.
    pub pauses: BTreeMap<String, Vec<[f64; 2]>>,
    /// V8's pauses per collector (see [`Collection::collector`]); empty
    /// when no V8 line was read.
    pub collectors: BTreeMap<String, Pauses>,
    /// Go's pauses per stop-the-world phase ([`GO_PHASES`]), when a Go
    /// line was read.
    pub stw: Option<[Pauses; 2]>,
}

impl Summary {
    /// Adds one collection.
    fn add(&mut self, c: Collection) {
        self.count += 1;
        self.pause_total_us += c.pause_us;
        self.pause_max_us = self.pause_max_us.max(c.pause_us);
        self.last_at_us = Some(c.at_us);
        self.cpu_percent = c.cpu_percent.or(self.cpu_percent);
        if let Some(phases) = c.stw {
            let stw = self.stw.get_or_insert_default();
            stw[0].add(phases[0]);
            stw[1].add(phases[1]);
        } else {
            self.collectors
                .entry(c.collector())
                .or_default()
                .add(c.pause_us);
        }
        self.pauses
            .entry(c.kind.clone())
            .or_default()
            .push([c.at_us, c.pause_us]);
        *self.kinds.entry(c.kind).or_default() += 1;
    }

    /// The pauses as the report's series: `gc_pause_us/<kind>`.
    fn series(&self) -> impl Iterator<Item = (String, Vec<[f64; 2]>)> + '_ {
        self.pauses
            .iter()
            .map(|(kind, points)| (format!("{GC_PAUSES}{kind}"), points.clone()))
    }

    /// The metrics: count, total and longest pause, the pauses' share of
    /// `run_us` (or of the trace's own span) in ppm, and Go's CPU share.
    /// Then, for a V8 trace (`format: v8`, or any V8 line read), the same
    /// four per collector as `gc_<collector>_count`, `..._pause_total_us`,
    /// `..._pause_max_us` and `..._share_ppm` (scavenge and mark_compact
    /// always); they add up to the totals. For a Go trace, whose one
    /// collector pauses twice a cycle, the total and longest of each
    /// stop-the-world phase: `gc_sweep_termination_pause_total_us`,
    /// `..._pause_max_us`, and the same for `mark_termination`.
    fn metrics(&self, format: GcFormat, run_us: Option<f64>) -> Metrics {
        let mut m = Metrics::new();
        m.insert("gc_count".into(), f64::from(self.count));
        m.insert("gc_pause_total_us".into(), self.pause_total_us);
        m.insert("gc_pause_max_us".into(), self.pause_max_us);
        let run = run_us.or(self.last_at_us).filter(|&r| r > 0.0);
        let share = |total: f64| run.map(|run| (total / run * 1e6).round());
        if let Some(share) = share(self.pause_total_us) {
            m.insert("gc_share_ppm".into(), share);
        }
        if let Some(cpu) = self.cpu_percent {
            m.insert("gc_cpu_percent".into(), cpu);
        }
        let mut collectors = self.collectors.clone();
        if format == GcFormat::V8 || !collectors.is_empty() {
            for name in V8_COLLECTORS {
                collectors.entry(name.to_owned()).or_default();
            }
        }
        for (name, p) in &collectors {
            m.insert(format!("gc_{name}_count"), f64::from(p.count));
            m.insert(format!("gc_{name}_pause_total_us"), p.total_us);
            m.insert(format!("gc_{name}_pause_max_us"), p.max_us);
            if let Some(share) = share(p.total_us) {
                m.insert(format!("gc_{name}_share_ppm"), share);
            }
        }
        let stw = match (self.stw, format) {
            (None, GcFormat::Go) => Some([Pauses::default(); 2]),
            (stw, _) => stw,
        };
        for (name, p) in GO_PHASES.iter().zip(stw.iter().flatten()) {
            m.insert(format!("gc_{name}_pause_total_us"), p.total_us);
            m.insert(format!("gc_{name}_pause_max_us"), p.max_us);
        }
        m
    }
}

/// Runs `gc-trace`: parses trace lines until `until` matches a line.
async fn gc_trace(
    step: &GcTrace,
    target: &mut dyn Target,
    metrics: &mut Metrics,
    series: &mut BTreeMap<String, Vec<[f64; 2]>>,
) -> Result<Detail, StepFailure> {
    let started = Instant::now();
    let deadline = step.timeout.map(|t| started + t);
    let mut lines = target.console()?.lines();
    let mut summary = Summary::default();
    let mut last = String::new();
    let ended = loop {
        match lines.next(deadline).await {
            NextLine::Line(line) => {
                if let Some(caps) = step.until.captures(line.text.as_bytes()) {
                    break capture_metrics(&step.until, &caps)?;
                }
                if let Some(collection) = parse(step.format, &line.text)? {
                    summary.add(collection);
                }
                last = line.text;
            }
            NextLine::TimedOut { tail } => {
                return Err(TargetError::from(ConsoleError::Timeout {
                    pattern: step.until.as_str().to_owned(),
                    after: started.elapsed(),
                    tail: if tail.is_empty() { last } else { tail },
                })
                .into());
            }
            NextLine::Closed { tail } => {
                let closed = ConsoleError::Closed {
                    pattern: step.until.as_str().to_owned(),
                    tail: if tail.is_empty() { last } else { tail },
                };
                return Err(ended_early(target, closed).await);
            }
        }
    };
    let run_us = ended
        .iter()
        .find(|(name, _)| name == "run_us")
        .map(|&(_, v)| v);
    metrics.extend(ended);
    metrics.extend(summary.metrics(step.format, run_us));
    replace_series(series, GC_PAUSES, summary.series());
    let mut detail = Detail::new();
    detail.insert("format".into(), json!(step.format.as_str()));
    detail.insert("collections".into(), json!(summary.count));
    detail.insert("kinds".into(), json!(summary.kinds));

    detail.insert("pause_total_us".into(), json!(summary.pause_total_us));
    detail.insert("pause_max_us".into(), json!(summary.pause_max_us));
    if let Some(run) = run_us.or(summary.last_at_us) {
        detail.insert("run_us".into(), json!(run));
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real lines from Go 1.23 (`GODEBUG=gctrace=1`, linux/amd64; the
    /// format is the same on arm64).
    const GO: &[&str] = &[
        "gc 1 @0.006s 39%: 12+17+0.005 ms clock, 24+0/16/1.3+0.010 ms cpu, 4->5->3 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P",
        "gc 2 @0.039s 35%: 0.097+16+0.005 ms clock, 0.19+10/0.96/0.088+0.011 ms cpu, 5->6->3 MB, 7 MB goal, 0 MB stacks, 0 MB globals, 2 P",
        "gc 23 @0.235s 17%: 0.034+0.19+0.001 ms clock, 0.068+0/0.054/0.083+0.002 ms cpu, 5->5->0 MB, 12 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)",
    ];

    /// Real lines from Node 20 (V8 11.3), and lines in Node 18's format
    /// (V8 10.2: `Mark-sweep`, pauses with one decimal), whose printf
    /// format is in V8's gc-tracer.cc.
    const V8: &[&str] = &[
        "[6900:0x314b8ee0]       53 ms: Scavenge 3.8 (4.0) -> 3.5 (5.0) MB, 1.07 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
        "[7035:0x1cc4b470]      859 ms: Mark-Compact 49.3 (76.3) -> 16.6 (50.9) MB, 7.32 / 0.01 ms  (+ 15.2 ms in 6 steps since start of marking, biggest step 9.3 ms, walltime since start of marking 29 ms) (average mu = 1.000, current mu = 1.000) finalize incremental marking via stack guard; GC in old space requested",
        "[412:0xffff8c0a0]      131 ms: Scavenge 2.3 (3.0) -> 1.9 (4.0) MB, 1.2 / 0.0 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
        "[412:0xffff8c0a0]     2210 ms: Mark-sweep (reduce) 12.1 (15.0) -> 8.2 (13.0) MB, 25.5 / 0.1 ms  (+ 3.1 ms in 12 steps since start of marking, biggest step 1.0 ms, walltime since start of marking 40 ms) (average mu = 0.951, current mu = 0.902) finalize incremental marking via task; GC in old space requested",
    ];

    /// Real lines from a cold `app.js listeners` run on virt-a53 (Node 18,
    /// V8 10.2, arm64): two scavenges of Node's own start-up, before the
    /// program's first line, then the workload's collections.
    const NODE18: &[&str] = &[
        "[86:0xaaaaf4a04f30]       95 ms: Scavenge 2.1 (3.2) -> 1.6 (3.5) MB, 2.7 / 0.0 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
        "[86:0xaaaaf4a04f30]      196 ms: Scavenge 2.9 (4.0) -> 2.6 (4.5) MB, 4.0 / 0.0 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
        "NODE start t_us=2509750",
        "NODE ready mode=listeners t_ms=2593 t_us=2593728",
        "[86:0xaaaaf4a04f30]      400 ms: Scavenge 5.3 (6.7) -> 5.2 (7.2) MB, 11.5 / 0.0 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
        "[86:0xaaaaf4a04f30]      633 ms: Mark-sweep 11.1 (12.7) -> 7.0 (12.7) MB, 58.1 / 0.0 ms  (+ 1.2 ms in 4 steps since start of marking, biggest step 0.7 ms, walltime since start of marking 84 ms) (average mu = 1.000, current mu = 1.000) finalize incremental marking via stack guard; GC in old space requested",
        "[86:0xaaaaf4a04f30]      786 ms: Scavenge 14.4 (16.2) -> 13.5 (16.2) MB, 1.0 / 0.0 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
        "[86:0xaaaaf4a04f30]     1829 ms: Mark-sweep 17.3 (19.7) -> 6.8 (17.5) MB, 64.7 / 0.0 ms  (+ 0.0 ms in 2 steps since start of marking, biggest step 0.0 ms, walltime since start of marking 87 ms) (average mu = 0.841, current mu = 0.772) finalize incremental marking via stack guard; GC in old space requested",
        "NODE done mode=listeners listeners=4000 rounds=50 calls=1000000 churned=10000 checksum=499500000 t_us=1873706 since_exec_us=2278039",
    ];

    /// Real lines from the same run of `app listeners` (Go 1.23, arm64,
    /// one P: virt-a53 has one core).
    const GO_LISTENERS: &[&str] = &[
        "gc 1 @0.041s 18%: 0.015+24+0.003 ms clock, 0.015+4.7/7.7/0+0.003 ms cpu, 3->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 1 P",
        "gc 2 @0.090s 21%: 0.015+26+0.003 ms clock, 0.015+8.1/4.2/0+0.003 ms cpu, 3->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 1 P",
        "gc 14 @0.815s 20%: 0.016+31+0.003 ms clock, 0.016+4.6/7.8/0+0.003 ms cpu, 4->4->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 1 P",
        "GO done mode=listeners listeners=4000 rounds=50 calls=1000000 churned=10000 checksum=499500000 t_us=867471 since_exec_us=869724",
    ];

    /// A trace read line by line as `gc-trace` reads it, in `auto`.
    fn summarise(lines: &[&str]) -> Summary {
        let mut s = Summary::default();
        for line in lines {
            if let Some(c) = parse(GcFormat::Auto, line).unwrap() {
                s.add(c);
            }
        }
        s
    }

    #[test]
    fn a_real_node_18_trace_splits_into_scavenges_and_mark_compacts() {
        let m = summarise(NODE18).metrics(GcFormat::Auto, Some(2_278_039.0));
        assert_eq!(m["gc_count"], 6.0);
        assert_eq!(m["gc_scavenge_count"], 4.0);
        assert_eq!(m["gc_scavenge_pause_total_us"], 2700.0 + 4000.0 + 11500.0 + 1000.0);
        assert_eq!(m["gc_scavenge_pause_max_us"], 11500.0);
        assert_eq!(m["gc_mark_compact_count"], 2.0);
        assert_eq!(m["gc_mark_compact_pause_total_us"], 58100.0 + 64700.0);
        assert_eq!(m["gc_mark_compact_pause_max_us"], 64700.0);
        assert_eq!(
            m["gc_scavenge_pause_total_us"] + m["gc_mark_compact_pause_total_us"],
            m["gc_pause_total_us"]
        );
        assert_eq!(m["gc_mark_compact_share_ppm"], (122800.0f64 / 2.278039).round());
    }

    #[test]
    fn a_real_go_listeners_trace_splits_into_its_phases() {
        let m = summarise(GO_LISTENERS).metrics(GcFormat::Auto, Some(869_724.0));
        assert_eq!(m["gc_count"], 3.0);
        assert_eq!(m["gc_sweep_termination_pause_total_us"], 15.0 + 15.0 + 16.0);
        assert_eq!(m["gc_mark_termination_pause_total_us"], 9.0);
        assert_eq!(m["gc_pause_total_us"], 55.0);
        assert_eq!(m["gc_cpu_percent"], 20.0);
    }

    #[test]
    fn go_lines_give_the_two_stop_the_world_phases() {
        let first = parse(GcFormat::Go, GO[0]).unwrap().unwrap();
        assert_eq!(
            first,
            Collection {
                at_us: 6000.0,
                pause_us: 12005.0,
                kind: "gc".into(),
                cpu_percent: Some(39.0),
                reduce: false,
                stw: Some([12000.0, 5.0]),
            }
        );
        let second = parse(GcFormat::Go, GO[1]).unwrap().unwrap();
        assert_eq!((second.at_us, second.pause_us), (39000.0, 102.0));
        let forced = parse(GcFormat::Go, GO[2]).unwrap().unwrap();
        assert_eq!((forced.pause_us, forced.kind.as_str()), (35.0, "forced"));
    }

    #[test]
    fn v8_lines_give_the_main_thread_pause() {
        let pauses: Vec<(f64, f64, String)> = V8
            .iter()
            .map(|l| parse(GcFormat::V8, l).unwrap().unwrap())
            .map(|c| (c.at_us, c.pause_us, c.kind))
            .collect();
        assert_eq!(
            pauses,
            [
                (53000.0, 1070.0, "Scavenge".into()),
                (859000.0, 7320.0, "Mark-Compact".into()),
                (131000.0, 1200.0, "Scavenge".into()),
                (2210000.0, 25500.0, "Mark-sweep".into()),
            ]
        );
    }

    #[test]
    fn v8_pauses_are_split_per_collector_and_add_up_to_the_totals() {
        let mut s = Summary::default();
        for line in V8 {
            s.add(parse(GcFormat::V8, line).unwrap().unwrap());
        }
        let m = s.metrics(GcFormat::V8, Some(10_000_000.0));
        // Node 18's Mark-sweep is V8's Mark-Compact collector; its
        // memory-reducing collection is counted apart.
        let expect = [
            ("scavenge", 2.0, 1070.0 + 1200.0, 1200.0),
            ("mark_compact", 1.0, 7320.0, 7320.0),
            ("mark_compact_reduce", 1.0, 25500.0, 25500.0),
        ];
        for (name, count, total, max) in expect {
            assert_eq!(m[&format!("gc_{name}_count")], count, "{name}");
            assert_eq!(m[&format!("gc_{name}_pause_total_us")], total, "{name}");
            assert_eq!(m[&format!("gc_{name}_pause_max_us")], max, "{name}");
            assert_eq!(m[&format!("gc_{name}_share_ppm")], (total / 10.0).round());
        }
        let counts: f64 = expect.iter().map(|e| e.1).sum();
        let totals: f64 = expect.iter().map(|e| e.2).sum();
        assert_eq!((m["gc_count"], m["gc_pause_total_us"]), (counts, totals));
        assert!(!m.contains_key("gc_sweep_termination_pause_total_us"));
    }

    #[test]
    fn a_v8_trace_without_a_collector_still_reports_it_as_none() {
        let mut s = Summary::default();
        s.add(parse(GcFormat::Auto, V8[0]).unwrap().unwrap());
        for format in [GcFormat::V8, GcFormat::Auto] {
            let m = s.metrics(format, None);
            assert_eq!(m["gc_scavenge_count"], 1.0);
            assert_eq!(m["gc_mark_compact_count"], 0.0);
            assert_eq!(m["gc_mark_compact_pause_total_us"], 0.0);
            assert!(!m.contains_key("gc_mark_compact_reduce_count"));
        }
        // No line at all: only `format: v8` knows the trace is V8's.
        let none = Summary::default();
        assert_eq!(none.metrics(GcFormat::V8, None)["gc_scavenge_count"], 0.0);
        assert!(!none.metrics(GcFormat::Auto, None).contains_key("gc_scavenge_count"));
        assert!(!none.metrics(GcFormat::Auto, None).contains_key("gc_mark_termination_pause_total_us"));
        assert_eq!(none.metrics(GcFormat::Go, None)["gc_mark_termination_pause_total_us"], 0.0);
    }

    #[test]
    fn go_pauses_are_split_into_its_two_stop_the_world_phases() {
        let mut s = Summary::default();
        for line in GO {
            s.add(parse(GcFormat::Auto, line).unwrap().unwrap());
        }
        let m = s.metrics(GcFormat::Auto, None);
        // 12+17+0.005, 0.097+16+0.005 and 0.034+0.19+0.001 ms.
        assert_eq!(m["gc_sweep_termination_pause_total_us"], 12000.0 + 97.0 + 34.0);
        assert_eq!(m["gc_sweep_termination_pause_max_us"], 12000.0);
        assert_eq!(m["gc_mark_termination_pause_total_us"], 5.0 + 5.0 + 1.0);
        assert_eq!(m["gc_mark_termination_pause_max_us"], 5.0);
        assert_eq!(
            m["gc_sweep_termination_pause_total_us"] + m["gc_mark_termination_pause_total_us"],
            m["gc_pause_total_us"]
        );
        assert!(!m.contains_key("gc_scavenge_count"));
    }

    #[test]
    fn other_lines_are_not_trace_lines() {
        for line in [
            "GO done gc=23 heap_alloc=1234 t_us=235000",
            "gc is a word",
            "scav 0 KiB work (bg), 0 KiB work (eager), 1 KiB total, 0% util",
            "LAB init t_ms=1234",
        ] {
            assert_eq!(parse(GcFormat::Go, line), Ok(None), "{line}");
        }
        for line in [
            "NODE done t_us=1",
            "[412:0xffff8c0a0] Memory allocator,       used:   4096 KB, available: 1000 KB",
            "<--- Last few GCs --->",
        ] {
            assert_eq!(parse(GcFormat::V8, line), Ok(None), "{line}");
        }
    }

    #[test]
    fn auto_tells_go_and_v8_lines_apart() {
        for line in GO.iter().chain(V8) {
            let known = if line.starts_with('[') {
                GcFormat::V8
            } else {
                GcFormat::Go
            };
            assert_eq!(parse(GcFormat::Auto, line), parse(known, line), "{line}");
            assert!(parse(known, line).unwrap().is_some(), "{line}");
        }
        for line in [
            "NODE done t_us=1",
            "GO done gc=23 heap_alloc=1234 t_us=235000",
        ] {
            assert_eq!(parse(GcFormat::Auto, line), Ok(None), "{line}");
        }
    }

    #[test]
    fn a_damaged_trace_line_is_an_error_that_names_it() {
        // A trace line cut by the program's own output.
        let cut = "gc 4 @0.073s 26%: 0.060+7.6+0.GO done";
        let err = parse(GcFormat::Go, cut).unwrap_err();
        assert!(err.to_string().contains(cut), "{err}");
        let cut = "[412:0xffff8c0a0]      131 ms: Scavenge 2.3 (3.0) -> 1.9 (4.0) MB, x / 0.0 ms";
        assert!(parse(GcFormat::V8, cut).is_err());
    }

    #[test]
    fn the_share_is_of_the_run_time_or_else_of_the_trace_span() {
        let mut s = Summary::default();
        for line in GO {
            s.add(parse(GcFormat::Go, line).unwrap().unwrap());
        }
        assert_eq!(s.count, 3);
        assert_eq!(s.pause_total_us, 12005.0 + 102.0 + 35.0);
        assert_eq!(s.pause_max_us, 12005.0);
        let m = s.metrics(GcFormat::Go, Some(500_000.0));
        assert_eq!(m["gc_share_ppm"], (12142.0f64 / 500_000.0 * 1e6).round());
        assert_eq!(m["gc_cpu_percent"], 17.0);
        let m = s.metrics(GcFormat::Go, None);
        assert_eq!(m["gc_share_ppm"], (12142.0f64 / 235_000.0 * 1e6).round());
        let series: Vec<(String, Vec<[f64; 2]>)> = s.series().collect();
        assert_eq!(
            series,
            [
                ("gc_pause_us/forced".to_owned(), vec![[235000.0, 35.0]]),
                (
                    "gc_pause_us/gc".to_owned(),
                    vec![[6000.0, 12005.0], [39000.0, 102.0]]
                ),
            ]
        );
        let none = Summary::default().metrics(GcFormat::Auto, None);
        assert_eq!(none["gc_count"], 0.0);
        assert!(!none.contains_key("gc_share_ppm"));
    }
}
