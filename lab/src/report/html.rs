//! `lab report --html`: reports as one self-contained HTML page (inline
//! CSS, plots as inline SVG from [`super::plots`], no script, nothing
//! fetched), with a summary, each experiment's tables and plots, and each
//! failed run's error and console.

use std::fmt::Write as _;
use std::path::Path;

use super::compare::{Comparison, Grid, comparisons};
use super::figures::{self, Experiment, Totals};
use super::table::{HEADER, format_duration, rows};
use super::write::write_atomically;
use super::{Report, ReportError, Tables, plots};

/// The page's style: system fonts, readable tables, plots in a grid.
const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;
margin:0 auto;padding:1.5rem 2rem 3rem;max-width:1180px;color:#1f2328;background:#fff;line-height:1.45}
h1{font-size:1.7rem;margin:.2rem 0 1rem}
h2{font-size:1.35rem;border-bottom:2px solid #d0d7de;padding-bottom:.3rem;margin-top:2.2rem}
h3{font-size:1.15rem;margin:1.8rem 0 .3rem}
h4{font-size:1rem;margin:1.2rem 0 .4rem;color:#444}
.file{color:#57606a;font-size:.9rem;margin:0 0 .6rem}
table{border-collapse:collapse;margin:.3rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
tr:nth-child(even) td{background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.passed{color:#1a7f37}.failed,.error{color:#cf222e}.timeout{color:#9a6700}
.status{font-weight:600}
figure{margin:.4rem 0 1rem;overflow-x:auto}
.grid{display:flex;flex-wrap:wrap;gap:.6rem}
.grid figure{margin:0}
svg{display:block;max-width:100%;height:auto}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;font-size:.8rem;overflow:auto;max-height:22rem;white-space:pre-wrap}
article.failure{border-left:4px solid #cf222e;padding:.1rem 0 .1rem 1rem;margin:1rem 0}
.note{color:#57606a;font-size:.85rem}
";

/// Renders `reports` (each with the file it came from) as one HTML page.
pub fn render_html(reports: &[(String, Report)]) -> Result<String, ReportError> {
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        page,
        "<title>lab report: {}</title>",
        escape(&files(reports))
    );
    let _ = writeln!(page, "<style>{STYLE}</style>\n</head>\n<body>");
    page.push_str("<h1>lab report</h1>\n");
    summary(&mut page, reports);
    for (file, report) in reports {
        let _ = writeln!(
            page,
            "<section class=\"report\">\n<h2>{}</h2>",
            escape(file)
        );
        let tables = comparisons(report);
        for experiment in figures::experiments(report) {
            self::experiment(&mut page, &experiment, &tables, &report.tables)?;
        }
        failures(&mut page, report);
        page.push_str("</section>\n");
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

/// Writes the page of `reports` to `path`, atomically.
pub fn write_html(reports: &[(String, Report)], path: &Path) -> Result<(), ReportError> {
    write_atomically(path, render_html(reports)?.as_bytes())
}

/// The reports' file names, joined.
fn files(reports: &[(String, Report)]) -> String {
    reports
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary table: a row per report.
fn summary(page: &mut String, reports: &[(String, Report)]) {
    page.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table>\n<thead><tr>");
    for h in [
        "report", "lab", "seed", "started", "passed", "failed", "timeout", "error", "run time",
    ] {
        let _ = write!(page, "<th>{h}</th>");
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for (file, report) in reports {
        let Totals {
            passed,
            failed,
            timeout,
            error,
            run_ms,
        } = figures::totals(report);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num passed\">{passed}</td><td class=\"num failed\">{failed}</td>\
             <td class=\"num timeout\">{timeout}</td><td class=\"num error\">{error}</td>\
             <td class=\"num\">{}</td></tr>",
            escape(file),
            escape(&report.lab_version),
            report.seed,
            escape(&report.started_at),
            format_duration(run_ms),
        );
    }
    page.push_str("</tbody>\n</table>\n");
    page.push_str(
        "<p class=\"note\">Run time adds up the runs' durations; runs that ran side by side \
         (<code>-j</code>) each count.</p>\n</section>\n",
    );
}

/// One experiment: its tables (`declared`: the scenarios' own), then each
/// plot it has data for.
fn experiment(
    page: &mut String,
    experiment: &Experiment<'_>,
    tables: &[Comparison<'_>],
    declared: &Tables,
) -> Result<(), ReportError> {
    let _ = writeln!(
        page,
        "<section class=\"experiment\">\n<h3>{}</h3>\n<p class=\"file\">{}</p>",
        escape(experiment.scenario),
        escape(experiment.file)
    );
    for table in tables
        .iter()
        .filter(|t| t.scenario == experiment.scenario && t.has_values())
    {
        let _ = writeln!(page, "<h4>{}</h4>", escape(&table.caption()));
        comparison(page, table);
    }
    page.push_str("<h4>Runs</h4>\n");
    runs(page, experiment, declared);
    if let Some(timeline) = figures::timeline(experiment) {
        page.push_str("<h4>Boot phases</h4>\n");
        figure(page, "boot-timeline", &plots::timeline(&timeline)?);
    }
    let pauses = figures::gc_pauses(experiment);
    if !pauses.is_empty() {
        page.push_str("<h4>GC pauses</h4>\n<div class=\"grid\">\n");
        for (variant, kinds) in &pauses {
            figure(
                page,
                "gc-histogram",
                &plots::pause_histogram(variant, kinds)?,
            );
            figure(page, "gc-timeline", &plots::pause_timeline(variant, kinds)?);
        }
        page.push_str("</div>\n");
    }
    let latencies = figures::latencies(experiment);
    if !latencies.is_empty() {
        page.push_str("<h4>Round-trip latency (CDF)</h4>\n");
        figure(page, "latency-cdf", &plots::latency_cdf(&latencies)?);
    }
    let trends = figures::trends(experiment);
    if !trends.is_empty() {
        page.push_str("<h4>Trends, with the fitted line</h4>\n<div class=\"grid\">\n");
        for trend in &trends {
            figure(page, "trend", &plots::trend(trend)?);
        }
        page.push_str("</div>\n");
    }
    let rates = figures::success_rates(experiment);
    if !rates.is_empty() {
        page.push_str("<h4>Power-loss success rate</h4>\n");
        figure(page, "success-rates", &plots::success_rates(&rates)?);
    }
    page.push_str("</section>\n");
    Ok(())
}

/// A plot in a `<figure>` named by `data-plot`, for tests and styles.
fn figure(page: &mut String, name: &str, svg: &str) {
    let _ = writeln!(page, "<figure data-plot=\"{name}\">\n{svg}\n</figure>");
}

/// A comparison as an HTML table.
fn comparison(page: &mut String, table: &Comparison<'_>) {
    let Grid { header, rows } = table.grid(" on ");
    page.push_str("<table class=\"comparison\">\n<thead><tr>");
    for h in &header {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        let mut cells = row.iter();
        if let Some(name) = cells.next() {
            let _ = write!(page, "<tr><td>{}</td>", escape(name));
        }
        for value in cells {
            let _ = write!(page, "<td class=\"num\">{}</td>", escape(value));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

/// The experiment's results as the terminal table has them, every metric
/// shown, without the scenario column.
fn runs(page: &mut String, experiment: &Experiment<'_>, tables: &Tables) {
    page.push_str("<table class=\"runs\">\n<thead><tr>");
    for h in &HEADER[1..] {
        let _ = write!(page, "<th>{h}</th>");
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for [_, variant, board, status, duration, metrics] in
        rows(experiment.results.iter().copied(), tables, usize::MAX)
    {
        let class = status.split_whitespace().next().unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"status {}\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&variant),
            escape(&board),
            escape(class),
            escape(&status),
            escape(&duration),
            escape(&metrics)
        );
    }
    page.push_str("</tbody>\n</table>\n");
}

/// Each result that did not pass: its reason and its console's end.
fn failures(page: &mut String, report: &Report) {
    let mut failed = figures::failures(report).peekable();
    if failed.peek().is_none() {
        return;
    }
    page.push_str("<section class=\"failures\">\n<h3>Failures</h3>\n");
    for result in failed {
        let status = result.status.as_str();
        let _ = writeln!(
            page,
            "<article class=\"failure\">\n<h4>{} <span class=\"status {status}\">{status}</span></h4>\n\
             <p>{}</p>",
            escape(&result.case_name()),
            escape(result.error.as_deref().unwrap_or("no reason given")),
        );
        if let Some(console) = result.console.as_deref().filter(|c| !c.trim().is_empty()) {
            let _ = writeln!(
                page,
                "<p class=\"note\">The end of the console:</p>\n<pre>{}</pre>",
                escape(console.trim_end())
            );
        }
        page.push_str("</article>\n");
    }
    page.push_str("</section>\n");
}

/// `text` with HTML's special characters escaped, for text and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => {}
            // Control characters other than tab and newline are not
            // allowed in HTML text; a console may print them.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{RunResult, Status, summarize};

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

    fn result(status: Status) -> RunResult {
        RunResult {
            scenario: "hello".into(),
            file: "hello.yaml".into(),
            variant: None,
            board: "mps2-an385".into(),
            target: "qemu".into(),
            run: 1,
            job: 0,
            status,
            duration_ms: 61.2,
            metrics: [("boot_us".to_owned(), 2190.0)].into(),
            series: BTreeMap::new(),
            steps: Vec::new(),
            error: (status != Status::Passed).then(|| "expected <READY> & \"more\"".into()),
            console: (status != Status::Passed)
                .then(|| "boot\r\n<script>alert(1)</script>\n".into()),
            start: None,
            snapshot: None,
            recording: None,
        }
    }

    #[test]
    fn a_declared_table_is_printed_with_its_labels_and_units() {
        let mut report = report(vec![result(Status::Passed)]);
        let column = |metric: &str, label: &str, unit: Option<&str>| {
            crate::report::Column::new(metric, label, unit.map(Into::into))
        };
        report.tables.insert(
            "hello".into(),
            crate::report::TableSpec {
                columns: vec![
                    column("ready_us", "ready <1>", Some("µs")),
                    column("boot_us", "boot", Some("µs")),
                ],
            },
        );
        let page = render_html(&[("r.json".into(), report)]).unwrap();
        assert!(
            page.contains(
                "<h4>Medians</h4>\n<table class=\"comparison\">\n<thead><tr><th>board</th>\
                 <th>ready &lt;1&gt; (µs)</th><th>boot (µs)</th></tr></thead>\n<tbody>\n\
                 <tr><td>mps2-an385</td><td class=\"num\">-</td><td class=\"num\">2190</td></tr>"
            ),
            "{page}"
        );
    }

    #[test]
    fn sections_without_data_are_left_out() {
        let page = render_html(&[("r.json".into(), report(vec![result(Status::Passed)]))]).unwrap();
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{page}"
        );
        assert!(page.contains("<td>boot_us=2190</td>"), "{page}");
        for absent in ["<figure", "<svg", "Failures", "Variants"] {
            assert!(!page.contains(absent), "{absent} in {page}");
        }
        assert!(page.trim_end().ends_with("</html>"));
    }

    #[test]
    fn a_failure_shows_its_reason_and_console_escaped() {
        let mut with_latency = result(Status::Failed);
        with_latency
            .series
            .insert("latency_us".into(), vec![[0.0, 1500.0], [1.0, 2500.0]]);
        let page = render_html(&[("r.json".into(), report(vec![with_latency]))]).unwrap();
        assert!(
            page.contains("expected &lt;READY&gt; &amp; &quot;more&quot;"),
            "{page}"
        );
        assert!(
            page.contains("<pre>boot\n&lt;script&gt;alert(1)&lt;/script&gt;</pre>"),
            "{page}"
        );
        assert!(!page.contains("<script"), "{page}");
        // The failed run's samples are still plotted.
        assert_eq!(
            page.matches("<figure data-plot=\"latency-cdf\">").count(),
            1
        );
    }
}
