//! Statistics of a metric over runs and per scenario x variant summaries.

use std::collections::HashMap;

use indexmap::IndexMap;
use statrs::statistics::Statistics;

use super::{RunResult, Stats, Status, Summary};

/// Min, median, 95th percentile (nearest rank), max, mean and sample
/// standard deviation of `values`.
///
/// NaN values are ignored; `None` when nothing else is left.
pub fn stats(values: &[f64]) -> Option<Stats> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let (&min, &max) = (sorted.first()?, sorted.last()?);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        *sorted.get(n / 2)?
    } else {
        sorted.get(n / 2 - 1)?.midpoint(*sorted.get(n / 2)?)
    };
    // Nearest rank: the smallest value with at least 95% of the values at or
    // below it, i.e. rank ceil(0.95 n), counted from 1. In integers to stay exact.
    let rank = (95 * n).div_ceil(100).max(1);
    let p95 = *sorted.get(rank - 1)?;
    Some(Stats {
        min,
        median,
        p95,
        max,
        mean: sorted.iter().mean(),
        stddev: (n > 1).then(|| sorted.iter().std_dev()),
    })
}

/// One [`Summary`] per scenario x file x variant, in the order the groups
/// first appear in `results`.
///
/// Each metric is aggregated over the runs that reported it, in the order
/// the runs produced them; metrics with no usable (non-NaN) value are left
/// out.
pub fn summarize(results: &[RunResult]) -> Vec<Summary> {
    group_runs(results)
        .iter()
        .map(|runs| summarize_group(runs))
        .collect()
}

/// Groups `results` by scenario, file and variant, keeping first-seen order
/// for the groups and the results within them.
pub(crate) fn group_runs<'a>(
    results: impl IntoIterator<Item = &'a RunResult>,
) -> Vec<Vec<&'a RunResult>> {
    let mut index: HashMap<(&'a str, &'a str, Option<&'a str>), usize> = HashMap::new();
    let mut groups: Vec<Vec<&RunResult>> = Vec::new();
    for result in results {
        let key = (
            result.scenario.as_str(),
            result.file.as_str(),
            result.variant.as_deref(),
        );
        let slot = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        if let Some(group) = groups.get_mut(slot) {
            group.push(result);
        }
    }
    groups
}

/// Summarises one group as made by [`group_runs`]; scenario, variant and board
/// come from its first run (an empty group gives an empty summary).
pub(crate) fn summarize_group(runs: &[&RunResult]) -> Summary {
    let mut values: IndexMap<&str, Vec<f64>> = IndexMap::new();
    for run in runs {
        for (name, &value) in &run.metrics {
            values.entry(name.as_str()).or_default().push(value);
        }
    }
    let metrics = values
        .into_iter()
        .filter_map(|(name, values)| Some((name.to_owned(), stats(&values)?)))
        .collect();
    let first = runs.first();
    Summary {
        scenario: first.map(|r| r.scenario.clone()).unwrap_or_default(),
        variant: first.and_then(|r| r.variant.clone()),
        board: first.map(|r| r.board.clone()).unwrap_or_default(),
        runs: count(runs.len()),
        passed: count(runs.iter().filter(|r| r.status == Status::Passed).count()),
        metrics,
    }
}

/// A count as `u32`, saturating (no report has four billion runs).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
