//! Experiment view: each scenario's metrics with its variants side by side
//! (`native | duktape | mquickjs`), per board, as medians over the runs.

use std::collections::BTreeSet;

use comfy_table::{CellAlignment, Table, presets};

use super::table::format_number;
use super::{Report, Summary};

/// One side-by-side table of a scenario: its variants (on one board, or
/// on all of them) as columns, their metrics as rows.
#[derive(Debug)]
pub(crate) struct Comparison<'a> {
    /// The scenario's name.
    pub(crate) scenario: &'a str,
    /// The board when the scenario's variants are split by board.
    pub(crate) board: Option<&'a str>,
    /// The variants, in report order.
    pub(crate) variants: Vec<&'a Summary>,
    /// Whether the column headers name each variant's board too.
    pub(crate) with_board: bool,
    /// Every metric any of the variants reported, sorted by name.
    pub(crate) metrics: Vec<&'a str>,
}

impl Comparison<'_> {
    /// The table's title: `scenario`, or `scenario on board`.
    pub(crate) fn title(&self) -> String {
        match self.board {
            Some(board) => format!("{} on {board}", self.scenario),
            None => self.scenario.to_owned(),
        }
    }

    /// A column's header: the variant, with its board when asked.
    pub(crate) fn header(&self, variant: &Summary, separator: &str) -> String {
        let name = variant.variant.clone().unwrap_or_default();
        if self.with_board {
            format!("{name}{separator}{}", variant.board)
        } else {
            name
        }
    }

    /// A cell: the median of `metric` in `variant`, `-` when absent.
    pub(crate) fn cell(variant: &Summary, metric: &str) -> String {
        variant
            .metrics
            .get(metric)
            .map_or_else(|| "-".to_owned(), |stats| format_number(stats.median))
    }
}

/// The side-by-side tables of `report`: one per scenario that has two or
/// more variants, or, when every board of a scenario has two or more
/// variants, one per board. Empty when no scenario has a matrix.
pub(crate) fn comparisons(report: &Report) -> Vec<Comparison<'_>> {
    let mut out = Vec::new();
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
                let group = variants
                    .iter()
                    .copied()
                    .filter(|v| v.board == board)
                    .collect();
                out.push(comparison(scenario, Some(board), group, false));
            }
        } else {
            out.push(comparison(scenario, None, variants, boards.len() > 1));
        }
    }
    out
}

fn comparison<'a>(
    scenario: &'a str,
    board: Option<&'a str>,
    variants: Vec<&'a Summary>,
    with_board: bool,
) -> Comparison<'a> {
    let metrics: BTreeSet<&str> = variants
        .iter()
        .flat_map(|s| s.metrics.keys().map(String::as_str))
        .collect();
    Comparison {
        scenario,
        board,
        variants,
        with_board,
        metrics: metrics.into_iter().collect(),
    }
}

/// Renders one table per scenario that has two or more variants: a row per
/// metric, a column per variant, medians in the cells (`-` where a variant
/// did not report the metric). When every board of a scenario has two or
/// more variants, each board gets its own table. Empty when no scenario has
/// a matrix; otherwise it ends with a newline.
pub fn render_comparison(report: &Report) -> String {
    let mut out = String::new();
    for comparison in comparisons(report) {
        out.push_str(&comparison.title());
        out.push('\n');
        out.push_str(&side_by_side(
            &comparison,
            presets::UTF8_FULL_CONDENSED,
            "\n",
        ));
    }
    out
}

/// A comparison as a metric-by-variant table in `style`; `separator` goes
/// between a variant and its board in the headers.
pub(crate) fn side_by_side(
    comparison: &Comparison<'_>,
    style: comfy_table::TableStyle,
    separator: &str,
) -> String {
    let mut table = Table::new();
    table.force_no_tty().load_style(style);
    let mut header = vec!["metric".to_owned()];
    header.extend(
        comparison
            .variants
            .iter()
            .map(|s| comparison.header(s, separator)),
    );
    table.set_header(header);
    for metric in &comparison.metrics {
        let mut row = vec![(*metric).to_owned()];
        row.extend(
            comparison
                .variants
                .iter()
                .map(|s| Comparison::cell(s, metric)),
        );
        table.add_row(row);
    }
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    format!("{table}\n")
}
