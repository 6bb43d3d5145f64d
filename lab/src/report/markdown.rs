//! `lab report --markdown`: what the HTML page says, without its plots, as
//! GitHub-flavoured markdown for a pull request comment.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, Table, presets};

use super::Report;
use super::compare::{Comparison, Grid, comparisons};
use super::figures::{self, Totals};
use super::table::{CONSOLE_LINES, HEADER, format_duration, last_lines, rows};

/// Renders `reports` (each with the file it came from) as markdown: a
/// summary table, then per report and scenario the variants side by side
/// and the runs, then each run that did not pass with its reason and the
/// last lines of its console. Ends with a newline.
pub fn render_markdown(reports: &[(String, Report)]) -> String {
    let mut out = String::from("## lab report\n\n");
    let mut summary = markdown_table();
    summary.set_header([
        "report", "lab", "seed", "started", "passed", "failed", "timeout", "error", "run time",
    ]);
    for (file, report) in reports {
        let Totals {
            passed,
            failed,
            timeout,
            error,
            run_ms,
        } = figures::totals(report);
        summary.add_row([
            cell(file),
            cell(&report.lab_version),
            report.seed.to_string(),
            cell(&report.started_at),
            passed.to_string(),
            failed.to_string(),
            timeout.to_string(),
            error.to_string(),
            format_duration(run_ms),
        ]);
    }
    right_align(&mut summary, 4..9);
    let _ = writeln!(out, "{summary}\n");
    for (file, report) in reports {
        if reports.len() > 1 {
            let _ = writeln!(out, "### {}\n", cell(file));
        }
        let tables = comparisons(report);
        for experiment in figures::experiments(report) {
            let _ = writeln!(
                out,
                "#### {} (`{}`)\n",
                cell(experiment.scenario),
                experiment.file.replace('`', "'")
            );
            for table in tables
                .iter()
                .filter(|t| t.scenario == experiment.scenario && t.has_values())
            {
                out.push_str(&comparison(table));
                out.push('\n');
            }
            let mut runs = markdown_table();
            runs.set_header(&HEADER[1..]);
            for row in rows(
                experiment.results.iter().copied(),
                &report.tables,
                usize::MAX,
            ) {
                runs.add_row(row[1..].iter().map(|c| cell(c)));
            }
            right_align(&mut runs, 3..4);
            let _ = writeln!(out, "{runs}\n");
        }
        failures(&mut out, report);
    }
    out
}

/// A comparison as a markdown table under its title.
fn comparison(table: &Comparison<'_>) -> String {
    let Grid { header, rows } = table.grid(" on ");
    let mut t = markdown_table();
    t.set_header(header.iter().map(|h| cell(h)));
    for row in rows {
        t.add_row(row.iter().map(|c| cell(c)));
    }
    right_align(&mut t, 1..header.len());
    format!("{}:\n\n{t}\n", cell(&table.caption()))
}

/// Each result that did not pass: its name, status and reason, and the
/// last lines of its console in a collapsed block.
fn failures(out: &mut String, report: &Report) {
    let mut failed = figures::failures(report).peekable();
    if failed.peek().is_none() {
        return;
    }
    out.push_str("#### Failures\n\n");
    for result in failed {
        let reason = result.error.as_deref().unwrap_or("no reason given");
        let _ = writeln!(
            out,
            "- **{}** {}: {}",
            cell(&result.case_name()),
            result.status.as_str(),
            cell(reason)
        );
        let lines = result
            .console
            .as_deref()
            .map(|c| last_lines(c, CONSOLE_LINES))
            .unwrap_or_default();
        if lines.is_empty() {
            continue;
        }
        let text = lines
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n");
        let fence = fence(&text);
        let _ = writeln!(
            out,
            "\n  <details><summary>the console's last lines</summary>\n\n  {fence}\n{}\n  {fence}\n\n  </details>\n",
            text.lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    out.push('\n');
}

/// A code fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// A markdown table as `lab compare --markdown` makes one.
fn markdown_table() -> Table {
    let mut table = Table::new();
    table.force_no_tty().load_style(presets::ASCII_MARKDOWN);
    table
}

/// Aligns `columns` of `table` to the right.
fn right_align(table: &mut Table, columns: std::ops::Range<usize>) {
    for column in columns {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// `text` made safe for a table cell or a line: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_keep_their_pipes_out_of_the_table() {
        assert_eq!(cell("a | b\n  c"), "a \\| b c");
        assert_eq!(cell("plain"), "plain");
    }

    #[test]
    fn a_fence_is_longer_than_any_backticks_inside() {
        assert_eq!(fence("no ticks"), "```");
        assert_eq!(fence("a ``` b"), "````");
        assert_eq!(fence("`````"), "``````");
    }
}
