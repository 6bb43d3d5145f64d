//! The terminal table printed after `lab run`.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width, presets};

use super::layout::ordered;
use super::stats::{group_runs, stats, summarize_group};
use super::{Report, RunResult, Stats, Status, Tables};

/// How many metrics a row shows before eliding the rest as `+N more`.
const MAX_METRICS: usize = 4;

/// When wrapping, the scenario column stays at least this wide (or as wide as
/// its longest name, if that is shorter).
const MIN_SCENARIO_WIDTH: u16 = 24;

/// Column positions.
const SCENARIO: usize = 0;
const VARIANT: usize = 1;
const BOARD: usize = 2;
const DURATION: usize = 4;

/// Renders `report` as a plain-text table (no colours, no terminal lookups),
/// followed by a totals line and one line per result that did not pass.
///
/// A scenario x variant with several runs gets one row: its status counts
/// (`passed 3/3`, or the worst status first: `failed 1/3, passed 2/3`), the
/// median duration and each metric as `name=median (min..max)`. Metrics
/// come in the order of the scenario's declared table (`table:`), then in
/// the order the steps produced them. The totals
/// line starts with `N passed, N failed` and adds `, N timeout` and
/// `, N error` when those are not zero. With `width`, the table wraps its
/// cells to fit; without, it never wraps. The text ends with a newline.
pub fn render_table(report: &Report, width: Option<u16>) -> String {
    let mut table = Table::new();
    table
        .force_no_tty()
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_header(HEADER);
    for row in rows(&report.results, &report.tables, MAX_METRICS) {
        table.add_row(row);
    }
    if let Some(column) = table.column_mut(DURATION) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    if let Some(width) = width {
        // Let status and metrics wrap, and keep the short columns whole
        // (boundaries count the padding, hence the `+ 2`).
        let widths = table.column_max_content_widths();
        let scenario = widths.get(SCENARIO).copied().unwrap_or(0);
        let scenario = ColumnConstraint::LowerBoundary(Width::Fixed(
            scenario.min(MIN_SCENARIO_WIDTH).saturating_add(2),
        ));
        for (index, constraint) in [
            (SCENARIO, scenario),
            (VARIANT, ColumnConstraint::ContentWidth),
            (BOARD, ColumnConstraint::ContentWidth),
            (DURATION, ColumnConstraint::ContentWidth),
        ] {
            if let Some(column) = table.column_mut(index) {
                column.set_constraint(constraint);
            }
        }
        table
            .set_width(width)
            .set_content_arrangement(ContentArrangement::Dynamic);
    }

    let mut out = table.to_string();
    out.push('\n');
    out.push_str(&totals_line(&report.results));
    out.push('\n');
    for result in report.results.iter().filter(|r| r.status != Status::Passed) {
        let reason = result.error.as_deref().unwrap_or("no reason given");
        // One line per result, even if a reason slipped in a line break.
        let reason = reason.lines().collect::<Vec<_>>().join(" ");
        let _ = writeln!(
            out,
            "{} {}: {}",
            result.case_name(),
            result.status.as_str(),
            reason
        );
        if let Some(console) = &result.console {
            let shown = last_lines(console, CONSOLE_LINES);
            if !shown.is_empty() {
                let _ = writeln!(out, "  the console's last lines:");
            }
            for line in shown {
                let _ = writeln!(out, "  | {}", line.trim_end());
            }
        }
    }
    out
}

/// The columns of [`rows`].
pub(crate) const HEADER: [&str; 6] = [
    "scenario", "variant", "board", "status", "duration", "metrics",
];

/// The table's rows: one per result, or one per scenario x variant that ran
/// several times, with at most `max_metrics` metrics each, in the order of
/// the scenario's table in `tables`, then in the order they were produced.
pub(crate) fn rows<'a>(
    results: impl IntoIterator<Item = &'a RunResult>,
    tables: &Tables,
    max_metrics: usize,
) -> Vec<[String; 6]> {
    group_runs(results)
        .iter()
        .map(|runs| match runs.as_slice() {
            [single] => single_row(single, tables, max_metrics),
            _ => summary_row(runs, tables, max_metrics),
        })
        .collect()
}

/// How many of a failed run's last console lines the table prints under
/// its reason (the report keeps more).
pub(crate) const CONSOLE_LINES: usize = 8;

/// The last `n` lines of `console` that are not blank, in order.
pub(crate) fn last_lines(console: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The cells of a row for a scenario x variant that ran once.
fn single_row(result: &RunResult, tables: &Tables, max_metrics: usize) -> [String; 6] {
    let declared = tables.get(&result.scenario);
    let names = ordered(declared, result.metrics.keys().map(String::as_str));
    let metrics = names.into_iter().filter_map(|name| {
        let value = result.metrics.get(name)?;
        Some(format!("{name}={}", format_number(*value)))
    });
    [
        result.scenario.clone(),
        variant_cell(result.variant.as_deref()),
        result.board.clone(),
        result.status.as_str().to_owned(),
        format_duration(result.duration_ms),
        metrics_cell(metrics, result.metrics.len(), max_metrics),
    ]
}

/// The cells of the one row summarising a scenario x variant that ran several
/// times.
fn summary_row(runs: &[&RunResult], tables: &Tables, max_metrics: usize) -> [String; 6] {
    let summary = summarize_group(runs);
    let durations: Vec<f64> = runs.iter().map(|r| r.duration_ms).collect();
    let duration = stats(&durations).map_or_else(|| "-".to_owned(), |s| format_duration(s.median));
    let declared = tables.get(&summary.scenario);
    let names = ordered(declared, summary.metrics.keys().map(String::as_str));
    let metrics = names.into_iter().filter_map(|name| {
        let stats = summary.metrics.get(name)?;
        Some(format!("{name}={}", format_spread(stats)))
    });
    [
        summary.scenario.clone(),
        variant_cell(summary.variant.as_deref()),
        summary.board.clone(),
        status_counts(runs),
        duration,
        metrics_cell(metrics, summary.metrics.len(), max_metrics),
    ]
}

fn variant_cell(variant: Option<&str>) -> String {
    variant.unwrap_or("-").to_owned()
}

/// At most `max` of `metrics` joined, then `+N more` for the rest.
fn metrics_cell(metrics: impl Iterator<Item = String>, total: usize, max: usize) -> String {
    let mut shown: Vec<String> = metrics.take(max).collect();
    if total > max {
        shown.push(format!("+{} more", total - max));
    }
    if shown.is_empty() {
        "-".to_owned()
    } else {
        shown.join(", ")
    }
}

/// `median (min..max)`, or just the value when every run agreed.
fn format_spread(stats: &Stats) -> String {
    if stats.min == stats.max {
        format_number(stats.median)
    } else {
        format!(
            "{} ({}..{})",
            format_number(stats.median),
            format_number(stats.min),
            format_number(stats.max)
        )
    }
}

/// Each status that occurred, worst first, as `status count/runs`.
fn status_counts(runs: &[&RunResult]) -> String {
    let total = runs.len();
    [
        Status::Error,
        Status::Timeout,
        Status::Failed,
        Status::Passed,
    ]
    .into_iter()
    .filter_map(|status| {
        let n = runs.iter().filter(|r| r.status == status).count();
        (n > 0).then(|| format!("{} {n}/{total}", status.as_str()))
    })
    .collect::<Vec<_>>()
    .join(", ")
}

/// `N passed, N failed`, then `, N timeout` and `, N error` when not zero.
pub(crate) fn totals_line(results: &[RunResult]) -> String {
    let count = |status: Status| results.iter().filter(|r| r.status == status).count();
    let mut line = format!(
        "{} passed, {} failed",
        count(Status::Passed),
        count(Status::Failed)
    );
    for status in [Status::Timeout, Status::Error] {
        let n = count(status);
        if n > 0 {
            let _ = write!(line, ", {n} {}", status.as_str());
        }
    }
    line
}

/// Milliseconds below a second, seconds from there on: `61.2 ms`, `1.5 s`.
pub(crate) fn format_duration(ms: f64) -> String {
    if ms.abs() < 1000.0 {
        format!("{} ms", format_number(ms))
    } else {
        format!("{} s", format_number(ms / 1000.0))
    }
}

/// Integers without decimals, other numbers with at most three decimals, or
/// three significant digits when smaller than one: `12`, `61.2`, `3.142`,
/// `0.000123`.
pub(crate) fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    let decimals = if magnitude == 0.0 || magnitude >= 1.0 {
        3
    } else {
        // Leading zeros after the point, plus three significant digits;
        // capped, since the table is for people, not for round trips.
        let leading = (-magnitude.log10()).floor();
        if leading >= 12.0 {
            12
        } else {
            leading as usize + 3
        }
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}
