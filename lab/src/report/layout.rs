//! The shape of an experiment's table: the columns a scenario declares
//! (`table:`), carried in the report so that `lab report` renders them
//! without the scenario file, and the order metrics take in every table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Stats;
use super::table::format_number;

/// The tables scenarios declare, by scenario name.
pub type Tables = BTreeMap<String, TableSpec>;

/// The table a scenario declares with `table:`: one column per metric, in
/// this order, and one row per variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    /// The columns, in order; never empty in a loaded scenario.
    pub columns: Vec<Column>,
}

/// One column of a declared table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The metric it shows.
    pub metric: String,
    /// Its heading: `label:`, or the metric's name.
    pub label: String,
    /// The unit the column shows values in (`µs`, `B`, `%`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Which statistic of a variant's runs it shows (`stat:`).
    #[serde(default, skip_serializing_if = "Statistic::is_median")]
    pub stat: Statistic,
    /// What the metric's values are multiplied by to show them in `unit`:
    /// the factor from the unit the metric is measured in (`from:`) to it.
    #[serde(default = "unscaled", skip_serializing_if = "is_unscaled")]
    pub scale: f64,
}

/// Which statistic of a metric's values over a variant's runs a column
/// shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    /// The median (the default).
    #[default]
    Median,
    /// The mean and the sample standard deviation, `mean ± sd`, as
    /// `perf stat -r N` reports repeated runs.
    Mean,
    /// The smallest value.
    Min,
    /// The 95th percentile (nearest rank).
    P95,
    /// The largest value.
    Max,
}

impl Statistic {
    /// Every statistic by the name `stat:` takes.
    pub const NAMES: [(&'static str, Self); 5] = [
        ("median", Self::Median),
        ("mean", Self::Mean),
        ("min", Self::Min),
        ("p95", Self::P95),
        ("max", Self::Max),
    ];

    /// How a heading names it: `mean ± sd`, `p95`.
    fn heading(self) -> &'static str {
        match self {
            Self::Median => "median",
            Self::Mean => "mean ± sd",
            Self::Min => "min",
            Self::P95 => "p95",
            Self::Max => "max",
        }
    }

    fn is_median(&self) -> bool {
        *self == Self::Median
    }
}

fn unscaled() -> f64 {
    1.0
}

fn is_unscaled(scale: &f64) -> bool {
    *scale == 1.0
}

impl Column {
    /// A column showing the median of `metric` as measured.
    pub fn new(metric: impl Into<String>, label: impl Into<String>, unit: Option<String>) -> Self {
        Self {
            metric: metric.into(),
            label: label.into(),
            unit,
            stat: Statistic::Median,
            scale: 1.0,
        }
    }

    /// The heading as tables print it: `label (unit)`, the label alone,
    /// and a statistic other than the median after the unit: `label (ms,
    /// mean ± sd)`.
    pub fn heading(&self) -> String {
        let stat = (!self.stat.is_median()).then(|| self.stat.heading());
        match (&self.unit, stat) {
            (Some(unit), Some(stat)) => format!("{} ({unit}, {stat})", self.label),
            (Some(unit), None) => format!("{} ({unit})", self.label),
            (None, Some(stat)) => format!("{} ({stat})", self.label),
            (None, None) => self.label.clone(),
        }
    }

    /// A cell: the column's statistic of `stats`, scaled into its unit
    /// (`mean ± sd`, or the mean alone from a single run).
    pub fn cell(&self, stats: &Stats) -> String {
        let shown = |value: f64| format_number(value * self.scale);
        match self.stat {
            Statistic::Median => shown(stats.median),
            Statistic::Mean => match stats.stddev {
                Some(sd) => format!("{} ± {}", shown(stats.mean), shown(sd)),
                None => shown(stats.mean),
            },
            Statistic::Min => shown(stats.min),
            Statistic::P95 => shown(stats.p95),
            Statistic::Max => shown(stats.max),
        }
    }
}

/// Units a column can show a metric in, by family, with their size in the
/// family's smallest unit (whole numbers, so that factors come out exact):
/// a value in one converts to another by the ratio of their sizes.
const UNITS: &[&[(&str, f64)]] = &[
    &[
        ("ns", 1.0),
        ("µs", 1e3),
        ("us", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
    ],
    &[
        ("B", 1.0),
        ("kB", 1e3),
        ("KiB", 1024.0),
        ("MB", 1e6),
        ("MiB", 1_048_576.0),
        ("GB", 1e9),
        ("GiB", 1_073_741_824.0),
    ],
    &[("ppm", 1.0), ("%", 1e4)],
];

/// The factor that converts a value in unit `from` into unit `to`, when
/// both are units [`UNITS`] knows in the same family (`ppm` to `%`:
/// 0.0001; `µs` to `ms`: 0.001).
pub fn conversion(from: &str, to: &str) -> Option<f64> {
    UNITS.iter().find_map(|family| {
        let size = |unit: &str| family.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s);
        Some(size(from)? / size(to)?)
    })
}

/// The units [`conversion`] knows, for an error message.
pub fn known_units() -> String {
    UNITS
        .iter()
        .map(|family| {
            family
                .iter()
                .map(|(u, _)| *u)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The names of `present` in table order: the metrics `declared` lists
/// first, in its order, then the others in the order `present` gives
/// (the order the steps produced them in).
pub(crate) fn ordered<'a>(
    declared: Option<&TableSpec>,
    present: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let present: Vec<&str> = present.into_iter().collect();
    let Some(declared) = declared else {
        return present;
    };
    let rank = |name: &str| {
        declared
            .columns
            .iter()
            .position(|c| c.metric == name)
            .unwrap_or(declared.columns.len())
    };
    let mut out = present;
    // A stable sort keeps the produced order among the undeclared ones.
    out.sort_by_key(|name| rank(name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(metrics: &[&str]) -> TableSpec {
        TableSpec {
            columns: metrics.iter().map(|m| Column::new(*m, *m, None)).collect(),
        }
    }

    #[test]
    fn declared_metrics_come_first_in_their_order_then_the_rest_as_produced() {
        let present = ["zeta", "boot_us", "alpha", "ready_us"];
        let declared = spec(&["ready_us", "missing", "boot_us"]);
        assert_eq!(
            ordered(Some(&declared), present),
            ["ready_us", "boot_us", "zeta", "alpha"]
        );
        assert_eq!(ordered(None, present), present);
    }

    #[test]
    fn a_heading_carries_its_unit_in_brackets() {
        let mut column = Column::new("heap_peak", "peak heap", Some("B".into()));
        assert_eq!(column.heading(), "peak heap (B)");
        column.stat = Statistic::Mean;
        assert_eq!(column.heading(), "peak heap (B, mean ± sd)");
        column.unit = None;
        assert_eq!(column.heading(), "peak heap (mean ± sd)");
        column.stat = Statistic::Median;
        assert_eq!(column.heading(), "peak heap");
    }

    #[test]
    fn a_cell_shows_its_statistic_scaled_into_its_unit() {
        let stats = crate::report::stats(&[2_000.0, 4_000.0, 9_000.0]).unwrap();
        let mut column = Column::new("boot_us", "boot", Some("ms".into()));
        column.scale = conversion("µs", "ms").unwrap();
        assert_eq!(column.cell(&stats), "4");
        column.stat = Statistic::Mean;
        // Mean 5000 µs, sample standard deviation sqrt(13e6) = 3605.55 µs.
        assert_eq!(column.cell(&stats), "5 ± 3.606");
        column.stat = Statistic::Max;
        assert_eq!(column.cell(&stats), "9");
        let single = crate::report::stats(&[2_000.0]).unwrap();
        column.stat = Statistic::Mean;
        assert_eq!(column.cell(&single), "2", "no spread from one run");
    }

    #[test]
    fn units_convert_within_their_family_only() {
        assert_eq!(conversion("ppm", "%"), Some(1e-4));
        assert_eq!(conversion("us", "µs"), Some(1.0));
        assert_eq!(conversion("KiB", "B"), Some(1024.0));
        assert_eq!(conversion("ms", "B"), None);
        assert_eq!(conversion("furlong", "m"), None);
    }
}
