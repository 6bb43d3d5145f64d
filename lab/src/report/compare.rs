//! Experiment view: each scenario's metrics with its variants side by side
//! (`native | duktape | mquickjs`), per board, as medians over the runs.

use std::collections::BTreeSet;

use comfy_table::{CellAlignment, Table, presets};

use super::table::format_number;
use super::{Report, Summary};

/// Renders one table per scenario that has two or more variants: a row per
/// metric, a column per variant, medians in the cells (`-` where a variant
/// did not report the metric). When every board of a scenario has two or
/// more variants, each board gets its own table. Empty when no scenario has
/// a matrix; otherwise it ends with a newline.
pub fn render_comparison(report: &Report) -> String {
    let mut out = String::new();
    let mut scenarios: Vec<&str> = Vec::new();
    for s in &report.summaries {
        if s.variant.is_some() && !scenarios.contains(&s.scenario.as_str()) {
            scenarios.push(&s.scenario);
        }
    }
    for scenario in scenarios {
        let variants: Vec<&Summary> = report
            .summaries
            .iter()
            .filter(|s| s.scenario == scenario && s.variant.is_some())
            .collect();
        if variants.len() < 2 {
            continue;
        }
        let mut boards: Vec<&str> = Vec::new();
        for v in &variants {
            if !boards.contains(&v.board.as_str()) {
                boards.push(&v.board);
            }
        }
        let on = |board: &str| variants.iter().filter(|v| v.board == board).count();
        if boards.len() > 1 && boards.iter().all(|b| on(b) >= 2) {
            for board in boards {
                let group: Vec<&Summary> = variants
                    .iter()
                    .copied()
                    .filter(|v| v.board == board)
                    .collect();
                out.push_str(&format!("{scenario} on {board}\n"));
                out.push_str(&side_by_side(&group, false));
            }
        } else {
            out.push_str(&format!("{scenario}\n"));
            out.push_str(&side_by_side(&variants, boards.len() > 1));
        }
    }
    out
}

/// A metric-by-variant table; `with_board` adds the board under each name.
fn side_by_side(group: &[&Summary], with_board: bool) -> String {
    let mut table = Table::new();
    table
        .force_no_tty()
        .load_style(presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["metric".to_owned()];
    header.extend(group.iter().map(|s| {
        let name = s.variant.clone().unwrap_or_default();
        if with_board {
            format!("{name}\n{}", s.board)
        } else {
            name
        }
    }));
    table.set_header(header);
    let metrics: BTreeSet<&str> = group
        .iter()
        .flat_map(|s| s.metrics.keys().map(String::as_str))
        .collect();
    for metric in metrics {
        let mut row = vec![metric.to_owned()];
        row.extend(group.iter().map(|s| {
            s.metrics
                .get(metric)
                .map_or_else(|| "-".to_owned(), |stats| format_number(stats.median))
        }));
        table.add_row(row);
    }
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    format!("{table}\n")
}
