//! What the HTML report plots, taken out of a report: pure data, no
//! drawing. Each function looks at one experiment (a scenario's results)
//! and returns nothing when the experiment has no such data, so that the
//! page leaves the section out.
//!
//! **Boot phases.** A `wait-serial` step records the names of the metrics
//! it captured, in its pattern's order (its detail's `captured`). A run's
//! phase metrics are those names, across its `wait-serial` steps in step
//! order, that are times in microseconds (ending in `_us`). Their medians
//! over a variant's passed runs are read as one of two shapes:
//!
//! - *durations*, when the last one is `total_us` (or ends in `_total_us`)
//!   and the others add up to it within 1%: each of the others is a phase
//!   of its own length, in capture order (`kernel_us`, `init_us`, ...);
//! - *marks*, otherwise, when they strictly increase: each is the time
//!   since a common start at which a phase ended, and the phase runs from
//!   the mark before it, or from 0 (`reset_to_main_us`, `engine_created_us`,
//!   ...).
//!
//! An experiment gets a timeline when each variant with a passed run has
//! two or more phases, all of one shape and with the same names.

use std::collections::BTreeMap;

use super::series::{FIT, GC_PAUSES, LATENCY, TREND};
use super::{Report, RunResult, Status, stats};

/// One scenario's results in a report.
#[derive(Debug)]
pub(crate) struct Experiment<'a> {
    /// The scenario's name.
    pub(crate) scenario: &'a str,
    /// Its file.
    pub(crate) file: &'a str,
    /// Its results, in report order.
    pub(crate) results: Vec<&'a RunResult>,
}

impl<'a> Experiment<'a> {
    /// The experiment's variants in report order, each with its results;
    /// a scenario without a matrix has one, named after its board.
    pub(crate) fn variants(&self) -> Vec<(String, Vec<&'a RunResult>)> {
        let mut out: Vec<(String, Vec<&'a RunResult>)> = Vec::new();
        for &result in &self.results {
            let name = label(result);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, runs)) => runs.push(result),
                None => out.push((name, vec![result])),
            }
        }
        out
    }
}

/// A result's variant, or its board when the scenario has no matrix.
pub(crate) fn label(result: &RunResult) -> String {
    result
        .variant
        .clone()
        .unwrap_or_else(|| result.board.clone())
}

/// The report's experiments: its results grouped by scenario and file, in
/// the order they first appear.
pub(crate) fn experiments(report: &Report) -> Vec<Experiment<'_>> {
    let mut out: Vec<Experiment<'_>> = Vec::new();
    for result in &report.results {
        match out
            .iter_mut()
            .find(|e| e.scenario == result.scenario && e.file == result.file)
        {
            Some(e) => e.results.push(result),
            None => out.push(Experiment {
                scenario: &result.scenario,
                file: &result.file,
                results: vec![result],
            }),
        }
    }
    out
}

/// How a timeline's phase metrics are read (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Each metric is a phase's length; the last one was their total.
    Durations,
    /// Each metric is when a phase ended.
    Marks,
}

/// Boot phases as stacked bars, one per variant.
#[derive(Debug, PartialEq)]
pub(crate) struct Timeline {
    /// How the metrics were read.
    pub(crate) shape: Shape,
    /// The phases' metric names, in order.
    pub(crate) phases: Vec<String>,
    /// Per variant, each phase's length in µs, in the order of `phases`.
    pub(crate) bars: Vec<(String, Vec<f64>)>,
}

/// The boot timeline of `experiment`, if it has one (see the module's doc).
pub(crate) fn timeline(experiment: &Experiment<'_>) -> Option<Timeline> {
    let mut shape = None;
    let mut phases: Option<Vec<String>> = None;
    let mut bars = Vec::new();
    for (variant, runs) in experiment.variants() {
        let passed: Vec<&RunResult> = runs
            .into_iter()
            .filter(|r| r.status == Status::Passed)
            .collect();
        let Some(first) = passed.first() else {
            continue;
        };
        let names = captured_times(first);
        let medians: Vec<f64> = names
            .iter()
            .map(|name| {
                let values: Vec<f64> = passed
                    .iter()
                    .filter_map(|r| r.metrics.get(name).copied())
                    .collect();
                stats(&values).map(|s| s.median)
            })
            .collect::<Option<_>>()?;
        let (this_shape, these, lengths) = read_phases(&names, &medians)?;
        if shape.is_some_and(|s| s != this_shape) || phases.as_ref().is_some_and(|p| *p != these) {
            return None;
        }
        shape = Some(this_shape);
        phases = Some(these);
        bars.push((variant, lengths));
    }
    Some(Timeline {
        shape: shape?,
        phases: phases?,
        bars,
    })
}

/// The `_us` metrics that `result`'s `wait-serial` steps captured, in
/// capture order, each once.
fn captured_times(result: &RunResult) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let captured = result
        .steps
        .iter()
        .filter(|s| s.step == "wait-serial")
        .filter_map(|s| s.detail.as_ref()?.get("captured")?.as_array())
        .flatten()
        .filter_map(|name| name.as_str());
    for name in captured {
        if name.ends_with("_us")
            && result.metrics.contains_key(name)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// How much the durations may differ from their total, as a share of it.
const TOTAL_TOLERANCE: f64 = 0.01;

/// Reads `names` with their `values` as phases: the shape, the phases'
/// names and their lengths; `None` when they fit neither shape or make
/// fewer than two phases.
fn read_phases(names: &[String], values: &[f64]) -> Option<(Shape, Vec<String>, Vec<f64>)> {
    if let (Some((last, parts)), Some((&total, lengths))) =
        (names.split_last(), values.split_last())
        && (last == "total_us" || last.ends_with("_total_us"))
        && parts.len() >= 2
        && total > 0.0
        && lengths.iter().all(|&l| l >= 0.0)
        && (lengths.iter().sum::<f64>() - total).abs() <= total * TOTAL_TOLERANCE
    {
        return Some((Shape::Durations, parts.to_vec(), lengths.to_vec()));
    }
    let increasing =
        values.first().is_some_and(|&v| v >= 0.0) && values.windows(2).all(|w| w[0] < w[1]);
    if names.len() < 2 || !increasing {
        return None;
    }
    let lengths = values
        .iter()
        .scan(0.0, |before, &mark| {
            let length = mark - *before;
            *before = mark;
            Some(length)
        })
        .collect();
    Some((Shape::Marks, names.to_vec(), lengths))
}

/// One run's points of a series, with the run's number.
pub(crate) type RunPoints = (u32, Vec<[f64; 2]>);

/// GC pauses per collector kind: `[start µs, pause µs]` points.
pub(crate) type Pauses = BTreeMap<String, Vec<[f64; 2]>>;

/// `gc-trace`'s pauses per variant: for each, per collector kind, the
/// `[start µs, pause µs]` points of every run that recorded them.
pub(crate) fn gc_pauses(experiment: &Experiment<'_>) -> Vec<(String, Pauses)> {
    experiment
        .variants()
        .into_iter()
        .filter_map(|(variant, runs)| {
            let mut kinds = Pauses::new();
            for run in runs {
                for (name, points) in &run.series {
                    if let Some(kind) = name.strip_prefix(GC_PAUSES) {
                        kinds.entry(kind.to_owned()).or_default().extend(points);
                    }
                }
            }
            (!kinds.is_empty()).then_some((variant, kinds))
        })
        .collect()
}

/// `serial-load`'s round trips per variant, in µs, sorted, from every run
/// that recorded them.
pub(crate) fn latencies(experiment: &Experiment<'_>) -> Vec<(String, Vec<f64>)> {
    experiment
        .variants()
        .into_iter()
        .filter_map(|(variant, runs)| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.series.get(LATENCY))
                .flatten()
                .map(|p| p[1])
                .filter(|v| v.is_finite())
                .collect();
            values.sort_by(f64::total_cmp);
            (!values.is_empty()).then_some((variant, values))
        })
        .collect()
}

/// One trend of one variant: each run's samples and fitted line.
#[derive(Debug, PartialEq)]
pub(crate) struct Trend {
    /// The trend's metric (its slope's name).
    pub(crate) metric: String,
    /// The variant.
    pub(crate) variant: String,
    /// Per run: its samples and its line's two ends.
    pub(crate) runs: Vec<(RunPoints, Vec<[f64; 2]>)>,
}

/// `trend`'s samples and lines, per trend metric and variant.
pub(crate) fn trends(experiment: &Experiment<'_>) -> Vec<Trend> {
    let mut out: Vec<Trend> = Vec::new();
    for (variant, runs) in experiment.variants() {
        for run in runs {
            for (name, points) in &run.series {
                let Some(metric) = name.strip_prefix(TREND) else {
                    continue;
                };
                if metric.ends_with(FIT) {
                    continue;
                }
                let fit = run
                    .series
                    .get(&format!("{name}{FIT}"))
                    .cloned()
                    .unwrap_or_default();
                let entry = ((run.run, points.clone()), fit);
                match out
                    .iter_mut()
                    .find(|t| t.metric == metric && t.variant == variant)
                {
                    Some(t) => t.runs.push(entry),
                    None => out.push(Trend {
                        metric: metric.to_owned(),
                        variant: variant.clone(),
                        runs: vec![entry],
                    }),
                }
            }
        }
    }
    out
}

/// A success rate with its 95% interval, in percent.
#[derive(Debug, PartialEq)]
pub(crate) struct Rate {
    /// The variant.
    pub(crate) variant: String,
    /// The share of trials that succeeded.
    pub(crate) percent: f64,
    /// The interval's low end.
    pub(crate) low: f64,
    /// The interval's high end.
    pub(crate) high: f64,
}

/// Success rates with their intervals per variant, from the metrics
/// `success_ppm`, `success_low_ppm` and `success_high_ppm` (medians over
/// the passed runs that have all three).
pub(crate) fn success_rates(experiment: &Experiment<'_>) -> Vec<Rate> {
    experiment
        .variants()
        .into_iter()
        .filter_map(|(variant, runs)| {
            let median = |name: &str| {
                let values: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.status == Status::Passed)
                    .filter_map(|r| r.metrics.get(name).copied())
                    .collect();
                stats(&values).map(|s| s.median / 10_000.0)
            };
            Some(Rate {
                variant,
                percent: median("success_ppm")?,
                low: median("success_low_ppm")?,
                high: median("success_high_ppm")?,
            })
        })
        .collect()
}

/// The results that did not pass, in report order.
pub(crate) fn failures(report: &Report) -> impl Iterator<Item = &RunResult> {
    report.results.iter().filter(|r| r.status != Status::Passed)
}

/// A report's results counted by status, and their run time.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Totals {
    /// Results that passed.
    pub(crate) passed: usize,
    /// Results that failed.
    pub(crate) failed: usize,
    /// Results that timed out.
    pub(crate) timeout: usize,
    /// Results that broke.
    pub(crate) error: usize,
    /// The runs' durations added up, in ms (runs side by side under `-j`
    /// count each).
    pub(crate) run_ms: f64,
}

/// The totals of `report`.
pub(crate) fn totals(report: &Report) -> Totals {
    let mut t = Totals::default();
    for r in &report.results {
        *match r.status {
            Status::Passed => &mut t.passed,
            Status::Failed => &mut t.failed,
            Status::Timeout => &mut t.timeout,
            Status::Error => &mut t.error,
        } += 1;
        t.run_ms += r.duration_ms;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StepResult, summarize};

    /// A result of `variant` whose `wait-serial` steps captured `captured`
    /// (one step per slice), with those values.
    fn run(variant: &str, status: Status, captured: &[&[(&str, f64)]]) -> RunResult {
        let steps = captured
            .iter()
            .map(|names| StepResult {
                step: "wait-serial".into(),
                status,
                at_ms: 0.0,
                duration_ms: 1.0,
                detail: Some(
                    [(
                        "captured".to_owned(),
                        names.iter().map(|(n, _)| *n).collect::<Vec<_>>().into(),
                    )]
                    .into(),
                ),
            })
            .collect();
        RunResult {
            scenario: "cold-start".into(),
            file: "cold-start.yaml".into(),
            variant: Some(variant.into()),
            board: "mps2-an385".into(),
            target: "qemu".into(),
            run: 1,
            job: 0,
            status,
            duration_ms: 100.0,
            metrics: captured
                .iter()
                .flat_map(|c| c.iter())
                .map(|&(n, v)| (n.to_owned(), v))
                .collect(),
            series: BTreeMap::new(),
            steps,
            error: None,
            console: None,
            start: None,
            snapshot: None,
            recording: None,
        }
    }

    fn report(results: Vec<RunResult>) -> Report {
        Report {
            lab_version: "0.1.0".into(),
            started_at: "2026-11-29T00:00:00Z".into(),
            seed: 1,
            summaries: summarize(&results),
            results,
            tables: Default::default(),
        }
    }

    fn timeline_of(results: Vec<RunResult>) -> Option<Timeline> {
        let report = report(results);
        let experiments = experiments(&report);
        timeline(experiments.first()?)
    }

    #[test]
    fn durations_that_add_up_to_the_total_are_phases_in_capture_order() {
        let phases: &[(&str, f64)] = &[
            ("kernel_us", 871_404.0),
            ("init_us", 2840.0),
            ("runtime_us", 2107.0),
            ("first_output_us", 16.0),
            ("total_us", 876_367.0),
        ];
        let t = timeline_of(vec![run(
            "go",
            Status::Passed,
            &[&[("init_ms", 843.0)], phases],
        )])
        .expect("a timeline");
        assert_eq!(t.shape, Shape::Durations);
        assert_eq!(
            t.phases,
            ["kernel_us", "init_us", "runtime_us", "first_output_us"]
        );
        assert_eq!(
            t.bars,
            [("go".to_owned(), vec![871_404.0, 2840.0, 2107.0, 16.0])]
        );
    }

    #[test]
    fn increasing_marks_are_phases_from_the_mark_before() {
        let native: [&[(&str, f64)]; 3] = [
            &[("reset_to_main_us", 2423.0)],
            &[("engine_created_us", 2539.0)],
            &[("ready_us", 2881.0)],
        ];
        let duktape: [&[(&str, f64)]; 3] = [
            &[("reset_to_main_us", 4390.0)],
            &[("engine_created_us", 207_813.0)],
            &[("ready_us", 216_217.0)],
        ];
        let t = timeline_of(vec![
            run("native", Status::Passed, &native),
            run("duktape", Status::Passed, &duktape),
            // A variant that never passed has no bar and does not stop the others'.
            run("broken", Status::Failed, &[]),
        ])
        .expect("a timeline");
        assert_eq!(t.shape, Shape::Marks);
        assert_eq!(
            t.phases,
            ["reset_to_main_us", "engine_created_us", "ready_us"]
        );
        assert_eq!(
            t.bars,
            [
                ("native".to_owned(), vec![2423.0, 116.0, 342.0]),
                ("duktape".to_owned(), vec![4390.0, 203_423.0, 8404.0]),
            ]
        );
    }

    #[test]
    fn other_time_metrics_make_no_timeline() {
        // Statistics that do not increase in capture order (gc-pressure).
        let stats: &[(&str, f64)] = &[
            ("gc_total_us", 5000.0),
            ("gc_max_us", 900.0),
            ("run_us", 80_000.0),
        ];
        assert_eq!(timeline_of(vec![run("a", Status::Passed, &[stats])]), None);
        // One time alone is no timeline.
        assert_eq!(
            timeline_of(vec![run("a", Status::Passed, &[&[("boot_us", 2190.0)]])]),
            None
        );
        // Durations that do not add up to their total are not phases.
        let off: &[(&str, f64)] = &[("a_us", 10.0), ("b_us", 10.0), ("total_us", 30.0)];
        assert_eq!(timeline_of(vec![run("a", Status::Passed, &[off])]), None);
        // Variants must agree on the shape.
        let up: &[(&str, f64)] = &[("a_us", 1.0), ("b_us", 2.0)];
        let down: &[(&str, f64)] = &[("a_us", 2.0), ("b_us", 1.0)];
        assert_eq!(
            timeline_of(vec![
                run("up", Status::Passed, &[up]),
                run("down", Status::Passed, &[down])
            ]),
            None
        );
        // A report from before `captured` has no order to read.
        let mut old = run("a", Status::Passed, &[up]);
        old.steps.clear();
        assert_eq!(timeline_of(vec![old]), None);
    }

    #[test]
    fn series_are_gathered_per_variant_from_every_run() {
        let mut a = run("go", Status::Passed, &[]);
        a.series.insert("gc_pause_us/gc".into(), vec![[1.0, 10.0]]);
        a.series
            .insert("latency_us".into(), vec![[0.0, 30.0], [1.0, 20.0]]);
        a.series
            .insert("trend/heap_slope".into(), vec![[0.0, 1.0], [1.0, 2.0]]);
        a.series
            .insert("trend/heap_slope/fit".into(), vec![[0.0, 1.0], [1.0, 2.0]]);
        let mut b = run("go", Status::Failed, &[]);
        b.run = 2;
        b.series
            .insert("gc_pause_us/forced".into(), vec![[2.0, 5.0]]);
        b.series.insert("latency_us".into(), vec![[0.0, 25.0]]);
        let report = report(vec![a, b, run("node", Status::Passed, &[])]);
        let e = &experiments(&report)[0];
        let pauses = gc_pauses(e);
        assert_eq!(pauses.len(), 1);
        assert_eq!(pauses[0].0, "go");
        assert_eq!(
            pauses[0].1.keys().map(String::as_str).collect::<Vec<_>>(),
            ["forced", "gc"]
        );
        assert_eq!(latencies(e), [("go".to_owned(), vec![20.0, 25.0, 30.0])]);
        let trends = trends(e);
        assert_eq!(trends.len(), 1);
        assert_eq!(
            (trends[0].metric.as_str(), trends[0].runs.len()),
            ("heap_slope", 1)
        );
        assert_eq!(trends[0].runs[0].1, [[0.0, 1.0], [1.0, 2.0]]);
    }

    #[test]
    fn success_rates_need_all_three_metrics_and_are_in_percent() {
        let mut ab = run("ab", Status::Passed, &[]);
        ab.metrics = [
            ("success_ppm", 1e6),
            ("success_low_ppm", 992_400.0),
            ("success_high_ppm", 1e6),
        ]
        .map(|(n, v)| (n.to_owned(), v))
        .into();
        let mut partial = run("inplace", Status::Passed, &[]);
        partial.metrics.insert("success_ppm".into(), 750_000.0);
        let report = report(vec![ab, partial]);
        assert_eq!(
            success_rates(&experiments(&report)[0]),
            [Rate {
                variant: "ab".into(),
                percent: 100.0,
                low: 99.24,
                high: 100.0
            }]
        );
    }
}
