//! Experiment view: each scenario's variants side by side, per board, as
//! medians over the runs. A scenario that declares its table (`table:`)
//! gets that table: a row per variant, a column per declared metric, with
//! labels and units. Any other scenario with two or more variants gets a
//! row per metric (in the order its steps produced them) and a column per
//! variant (`native | duktape | mquickjs`).

use std::fmt::Write as _;

use comfy_table::{CellAlignment, Table, presets};

use super::table::format_number;
use super::{Report, Statistic, Summary, TableSpec};

/// One side-by-side table of a scenario's variants (on one board, or on
/// all of them).
#[derive(Debug)]
pub(crate) struct Comparison<'a> {
    /// The scenario's name.
    pub(crate) scenario: &'a str,
    /// The board when the scenario's variants are split by board.
    pub(crate) board: Option<&'a str>,
    /// The variants, in report order.
    pub(crate) variants: Vec<&'a Summary>,
    /// Whether the variants' names carry their board too.
    pub(crate) with_board: bool,
    /// The metrics shown: the declared columns' or, without a declaration,
    /// every metric of the variants in the order the runs produced them.
    pub(crate) metrics: Vec<&'a str>,
    /// The table the scenario declares: its columns, variants as rows.
    pub(crate) declared: Option<&'a TableSpec>,
}

/// A comparison's cells as text: the header and the rows. The first
/// column names a variant (declared tables) or a metric; the others hold
/// numbers.
#[derive(Debug, PartialEq)]
pub(crate) struct Grid {
    /// The header row.
    pub(crate) header: Vec<String>,
    /// The rows, each as long as the header.
    pub(crate) rows: Vec<Vec<String>>,
}

impl Comparison<'_> {
    /// The table's title: `scenario`, or `scenario on board`.
    pub(crate) fn title(&self) -> String {
        match self.board {
            Some(board) => format!("{} on {board}", self.scenario),
            None => self.scenario.to_owned(),
        }
    }

    /// The caption of the table under an experiment's heading (markdown,
    /// HTML): `Variants (medians)`, `Variants on BOARD (medians)`, or
    /// `Medians` for a scenario without a matrix.
    pub(crate) fn caption(&self) -> String {
        let other_statistics = self
            .declared
            .is_some_and(|d| d.columns.iter().any(|c| c.stat != Statistic::Median));
        let medians = if other_statistics {
            "medians unless a heading names another statistic"
        } else {
            "medians"
        };
        match self.board {
            _ if self.without_matrix() && other_statistics => format!("Runs ({medians})"),
            _ if self.without_matrix() => "Medians".to_owned(),
            Some(board) => format!("Variants on {board} ({medians})"),
            None => format!("Variants ({medians})"),
        }
    }

    /// Whether the scenario has no matrix: its one row is named by its board.
    fn without_matrix(&self) -> bool {
        self.variants.iter().all(|v| v.variant.is_none())
    }

    /// A variant's name, with its board when asked (`-` for a scenario
    /// without a matrix).
    pub(crate) fn header(&self, variant: &Summary, separator: &str) -> String {
        let name = variant.variant.as_deref().unwrap_or("-");
        if self.with_board {
            format!("{name}{separator}{}", variant.board)
        } else {
            name.to_owned()
        }
    }

    /// An undeclared table's cell: the median of `metric` in `variant`,
    /// `-` when absent.
    fn cell(variant: &Summary, metric: &str) -> String {
        variant
            .metrics
            .get(metric)
            .map_or_else(|| "-".to_owned(), |stats| format_number(stats.median))
    }

    /// Whether any variant reported any of the metrics shown.
    pub(crate) fn has_values(&self) -> bool {
        self.variants
            .iter()
            .any(|v| self.metrics.iter().any(|m| v.metrics.contains_key(*m)))
    }

    /// The cells: with a declaration, a row per variant (per board for a
    /// scenario without a matrix) and a column per declared metric headed
    /// `label (unit)`, each showing its statistic (`stat:`, the median by
    /// default) in its unit; without, a row per metric and a column per
    /// variant, medians.
    /// `separator` goes between a variant and its board.
    pub(crate) fn grid(&self, separator: &str) -> Grid {
        match self.declared {
            Some(declared) => {
                let by_board = self.without_matrix();
                let first = if by_board { "board" } else { "variant" };
                let mut header = vec![first.to_owned()];
                header.extend(declared.columns.iter().map(|c| c.heading()));
                let rows = self
                    .variants
                    .iter()
                    .map(|v| {
                        let name = if by_board {
                            v.board.clone()
                        } else {
                            self.header(v, separator)
                        };
                        let mut row = vec![name];
                        row.extend(declared.columns.iter().map(|c| {
                            v.metrics
                                .get(&c.metric)
                                .map_or_else(|| "-".to_owned(), |stats| c.cell(stats))
                        }));
                        row
                    })
                    .collect();
                Grid { header, rows }
            }
            None => {
                let mut header = vec!["metric".to_owned()];
                header.extend(self.variants.iter().map(|v| self.header(v, separator)));
                let rows = self
                    .metrics
                    .iter()
                    .map(|m| {
                        let mut row = vec![(*m).to_owned()];
                        row.extend(self.variants.iter().map(|v| Self::cell(v, m)));
                        row
                    })
                    .collect();
                Grid { header, rows }
            }
        }
    }
}

/// The side-by-side tables of `report`: one per scenario that declares a
/// table or has two or more variants, or, when every board of such a
/// scenario has two or more variants, one per board.
pub(crate) fn comparisons(report: &Report) -> Vec<Comparison<'_>> {
    let mut out = Vec::new();
    let mut scenarios: Vec<&str> = Vec::new();
    for s in &report.summaries {
        let shown = s.variant.is_some() || report.tables.contains_key(&s.scenario);
        if shown && !scenarios.contains(&s.scenario.as_str()) {
            scenarios.push(&s.scenario);
        }
    }
    for scenario in scenarios {
        let declared = report.tables.get(scenario);
        let variants: Vec<&Summary> = report
            .summaries
            .iter()
            .filter(|s| s.scenario == scenario && (s.variant.is_some() || declared.is_some()))
            .collect();
        if variants.len() < 2 && declared.is_none() {
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
                out.push(comparison(scenario, Some(board), group, false, declared));
            }
        } else {
            out.push(comparison(
                scenario,
                None,
                variants,
                boards.len() > 1,
                declared,
            ));
        }
    }
    out
}

/// A table of `variants` showing the `declared` columns' metrics, or
/// every metric of the variants in the order they first appear.
fn comparison<'a>(
    scenario: &'a str,
    board: Option<&'a str>,
    variants: Vec<&'a Summary>,
    with_board: bool,
    declared: Option<&'a TableSpec>,
) -> Comparison<'a> {
    let mut metrics: Vec<&str> = Vec::new();
    match declared {
        Some(declared) => metrics.extend(declared.columns.iter().map(|c| c.metric.as_str())),
        None => {
            for name in variants.iter().flat_map(|s| s.metrics.keys()) {
                if !metrics.contains(&name.as_str()) {
                    metrics.push(name);
                }
            }
        }
    }
    Comparison {
        scenario,
        board,
        variants,
        with_board,
        metrics,
        declared,
    }
}

/// Renders each side-by-side table of `report` under its title: a
/// scenario's declared table (`table:`) with a row per variant, or a row
/// per metric and a column per variant for a scenario with two or more
/// variants; medians in the cells (`-` where a variant did not report the
/// metric). Tables without a single value are left out. Empty when no
/// table is left; otherwise it ends with a newline.
pub fn render_comparison(report: &Report) -> String {
    let mut out = String::new();
    for comparison in comparisons(report).iter().filter(|c| c.has_values()) {
        out.push_str(&comparison.title());
        out.push('\n');
        // Headers may take two lines; a row's name stays on one.
        let separator = if comparison.declared.is_some() {
            " on "
        } else {
            "\n"
        };
        let Grid { header, rows } = comparison.grid(separator);
        let mut table = Table::new();
        table
            .force_no_tty()
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_header(header);
        for row in rows {
            table.add_row(row);
        }
        for column in table.column_iter_mut().skip(1) {
            column.set_cell_alignment(CellAlignment::Right);
        }
        let _ = writeln!(out, "{table}");
    }
    out
}
