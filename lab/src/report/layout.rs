//! The shape of an experiment's table: the columns a scenario declares
//! (`table:`), carried in the report so that `lab report` renders them
//! without the scenario file, and the order metrics take in every table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The tables scenarios declare, by scenario name.
pub type Tables = BTreeMap<String, TableSpec>;

/// The table a scenario declares with `table:`: one column per metric, in
/// this order, and one row per variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    /// The columns, in order; never empty in a loaded scenario.
    pub columns: Vec<Column>,
}

/// One column of a declared table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The metric it shows (its median over a variant's runs).
    pub metric: String,
    /// Its heading: `label:`, or the metric's name.
    pub label: String,
    /// The unit of the metric's values (`µs`, `B`, `%`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl Column {
    /// The heading as tables print it: `label (unit)`, or the label alone.
    pub fn heading(&self) -> String {
        match &self.unit {
            Some(unit) => format!("{} ({unit})", self.label),
            None => self.label.clone(),
        }
    }
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
            columns: metrics
                .iter()
                .map(|m| Column {
                    metric: (*m).to_owned(),
                    label: (*m).to_owned(),
                    unit: None,
                })
                .collect(),
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
        let mut column = Column {
            metric: "heap_peak".into(),
            label: "peak heap".into(),
            unit: Some("B".into()),
        };
        assert_eq!(column.heading(), "peak heap (B)");
        column.unit = None;
        assert_eq!(column.heading(), "peak heap");
    }
}
