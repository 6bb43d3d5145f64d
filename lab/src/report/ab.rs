//! Two reports side by side (`lab compare BASE NEW`): per scenario x
//! variant x metric, the medians over the passed runs, the change, and
//! whether the runs show that change beyond their noise (a two-sided
//! Mann-Whitney U test, from statrs); and the `--fail-on` rules CI uses to
//! catch a regression.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use comfy_table::{CellAlignment, Table, presets};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

use super::table::format_number;
use super::{Report, Status, stats};

/// The p-value under which a change counts as significant.
pub const ALPHA: f64 = 0.05;

/// One metric of one scenario x variant in both reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `scenario` or `scenario[variant]`.
    pub case: String,
    /// The metric's name.
    pub metric: String,
    /// Its values in the base report (passed runs only); empty when absent.
    pub base: Vec<f64>,
    /// Its values in the new report (passed runs only); empty when absent.
    pub new: Vec<f64>,
    /// What the runs say about the difference.
    pub evidence: Evidence,
}

/// Whether a difference between two sets of runs is real.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evidence {
    /// The metric is in one report only.
    Missing,
    /// A side has a single run: nothing to test, the medians are taken as
    /// they are.
    Untested,
    /// Neither side varies at all (a deterministic metric, under
    /// `clock: virtual`): any difference is real.
    Exact,
    /// The Mann-Whitney U test's two-sided p-value.
    Tested(f64),
}

impl Change {
    /// The base median, if the base report has the metric.
    pub fn base_median(&self) -> Option<f64> {
        stats(&self.base).map(|s| s.median)
    }

    /// The new median, if the new report has the metric.
    pub fn new_median(&self) -> Option<f64> {
        stats(&self.new).map(|s| s.median)
    }

    /// The change of the median in percent of the base's (0 when both are
    /// 0); `None` when a side is missing or the base median is 0 alone.
    pub fn percent(&self) -> Option<f64> {
        let (base, new) = (self.base_median()?, self.new_median()?);
        if base == new {
            Some(0.0)
        } else if base == 0.0 {
            None
        } else {
            Some((new - base) / base.abs() * 100.0)
        }
    }

    /// Whether the change is more than noise: tested below [`ALPHA`],
    /// exact, or untested (one run tells no noise from a change, so it is
    /// taken at its word).
    pub fn significant(&self) -> bool {
        let differs = self.base_median() != self.new_median();
        match self.evidence {
            Evidence::Missing => false,
            Evidence::Untested | Evidence::Exact => differs,
            Evidence::Tested(p) => differs && p < ALPHA,
        }
    }
}

/// Every metric of every scenario x variant of `base` and `new`, in the
/// order they first appear (base first), from their passed runs.
pub fn compare(base: &Report, new: &Report) -> Vec<Change> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut values: BTreeMap<(String, String), [Vec<f64>; 2]> = BTreeMap::new();
    for (side, report) in [base, new].into_iter().enumerate() {
        for result in report.results.iter().filter(|r| r.status == Status::Passed) {
            let case = super::case(&result.scenario, result.variant.as_deref());
            for (metric, &value) in &result.metrics {
                let key = (case.clone(), metric.clone());
                let slot = values.entry(key.clone()).or_insert_with(|| {
                    order.push(key);
                    [Vec::new(), Vec::new()]
                });
                slot[side].push(value);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let [base, new] = values.remove(&key)?;
            let evidence = evidence(&base, &new);
            Some(Change {
                case: key.0,
                metric: key.1,
                base,
                new,
                evidence,
            })
        })
        .collect()
}

fn evidence(base: &[f64], new: &[f64]) -> Evidence {
    let constant = |v: &[f64]| v.iter().all(|x| *x == v[0]);
    match (base.len(), new.len()) {
        (0, _) | (_, 0) => Evidence::Missing,
        (1, _) | (_, 1) => Evidence::Untested,
        _ if constant(base) && constant(new) => Evidence::Exact,
        _ => match mannwhitneyu(
            base,
            new,
            MannWhitneyUMethod::Automatic,
            Alternative::TwoSided,
        ) {
            Ok((_, p)) if p.is_finite() => Evidence::Tested(p),
            // NaN in the data: nothing can be said.
            _ => Evidence::Untested,
        },
    }
}

/// The comparison as a table (or a markdown table, for a PR comment): a
/// row per scenario x variant x metric with both medians and their run
/// counts, the change, the p-value and whether it is significant. Ends with
/// a newline; says so when there is nothing to compare.
pub fn render_changes(changes: &[Change], markdown: bool) -> String {
    if changes.is_empty() {
        return "no metrics to compare: neither report has a passed run with metrics\n".into();
    }
    let mut table = Table::new();
    table.force_no_tty().load_style(if markdown {
        presets::ASCII_MARKDOWN
    } else {
        presets::UTF8_FULL_CONDENSED
    });
    table.set_header([
        "case",
        "metric",
        "base",
        "new",
        "change",
        "p",
        "significant",
    ]);
    for change in changes {
        let median = |values: &[f64], m: Option<f64>| match m {
            Some(m) if values.len() > 1 => format!("{} (n={})", format_number(m), values.len()),
            Some(m) => format_number(m),
            None => "-".into(),
        };
        let percent = match (change.percent(), change.evidence) {
            (_, Evidence::Missing) => "-".into(),
            (Some(p), _) => format!("{p:+.1}%"),
            (None, _) => "from 0".into(),
        };
        let p = match change.evidence {
            Evidence::Missing => "-".into(),
            Evidence::Untested => "1 run".into(),
            Evidence::Exact => "exact".into(),
            Evidence::Tested(p) => format!("{p:.3}"),
        };
        let verdict = if change.significant() { "yes" } else { "" };
        table.add_row([
            change.case.clone(),
            change.metric.clone(),
            median(&change.base, change.base_median()),
            median(&change.new, change.new_median()),
            percent,
            p,
            verdict.into(),
        ]);
    }
    for column in 2..=5 {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}

/// A `--fail-on` rule: `METRIC>+5%` trips when a metric whose name
/// matches METRIC (a glob: `*_us`) rises by more than 5%, `METRIC<-5%` when
/// it falls by more than 5%, in any scenario x variant, significantly.
#[derive(Debug, Clone)]
pub struct Threshold {
    text: String,
    metric: glob::Pattern,
    rise: bool,
    percent: f64,
}

impl Threshold {
    /// Whether `change` breaks this rule: its metric matches, it is
    /// significant, and it moved past the limit in the rule's direction (a
    /// rise from 0 breaks every `>` rule).
    pub fn trips(&self, change: &Change) -> bool {
        if !self.metric.matches(&change.metric) || !change.significant() {
            return false;
        }
        match change.percent() {
            Some(p) if self.rise => p > self.percent,
            Some(p) => p < self.percent,
            None => self.rise && change.new_median().is_some_and(|m| m > 0.0),
        }
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "`{text}` is not a rule like 'boot_us>+5%' (a rise of more than 5%) or \
                 'trials_per_s<-10%' (a fall of more than 10%)"
            )
        };
        let (at, rise) = match (text.find('>'), text.find('<')) {
            (Some(at), None) => (at, true),
            (None, Some(at)) => (at, false),
            _ => return Err(usage()),
        };
        let (name, limit) = (text[..at].trim(), text[at + 1..].trim());
        let number = limit.strip_suffix('%').ok_or_else(usage)?;
        let percent: f64 = number.trim().parse().map_err(|_| usage())?;
        if name.is_empty()
            || !percent.is_finite()
            || (rise && percent < 0.0)
            || (!rise && percent > 0.0)
        {
            return Err(usage());
        }
        let metric = glob::Pattern::new(name).map_err(|e| format!("{}: {e}", usage()))?;
        Ok(Threshold {
            text: text.to_owned(),
            metric,
            rise,
            percent,
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(base: &[f64], new: &[f64]) -> Change {
        Change {
            case: "boot[m3]".into(),
            metric: "boot_us".into(),
            base: base.to_vec(),
            new: new.to_vec(),
            evidence: evidence(base, new),
        }
    }

    #[test]
    fn a_clear_shift_over_ten_runs_is_significant_and_noise_is_not() {
        let base: Vec<f64> = (0..10).map(|i| 100.0 + f64::from(i)).collect();
        let slower: Vec<f64> = (0..10).map(|i| 120.0 + f64::from(i)).collect();
        let shift = change(&base, &slower);
        assert!(
            matches!(shift.evidence, Evidence::Tested(p) if p < 0.001),
            "{shift:?}"
        );
        assert!(shift.significant());
        let interleaved: Vec<f64> = (0..10).map(|i| 100.5 + f64::from(i)).collect();
        let noise = change(&base, &interleaved);
        assert!(
            matches!(noise.evidence, Evidence::Tested(p) if p > 0.5),
            "{noise:?}"
        );
        assert!(!noise.significant());
    }

    #[test]
    fn deterministic_metrics_and_single_runs_are_taken_at_their_word() {
        let exact = change(&[10.0, 10.0, 10.0], &[11.0, 11.0]);
        assert_eq!(exact.evidence, Evidence::Exact);
        assert!(exact.significant());
        assert_eq!(exact.percent(), Some(10.0));
        let single = change(&[10.0], &[10.5, 11.0, 9.0]);
        assert_eq!(single.evidence, Evidence::Untested);
        assert!(single.significant());
        assert!(!change(&[10.0, 10.0], &[10.0, 10.0]).significant());
        assert!(!change(&[], &[10.0]).significant());
    }

    #[test]
    fn rules_read_their_direction_and_trip_only_past_their_limit() {
        let rule: Threshold = "*_us>+5%".parse().unwrap();
        assert!(rule.trips(&change(&[100.0], &[106.0])));
        assert!(!rule.trips(&change(&[100.0], &[104.0])));
        assert!(!rule.trips(&change(&[100.0], &[80.0])));
        let fall: Threshold = "boot_us<-10%".parse().unwrap();
        assert!(fall.trips(&change(&[100.0], &[80.0])));
        assert!(!fall.trips(&change(&[100.0], &[95.0])));
        let from_zero: Threshold = "boot_us>+1%".parse().unwrap();
        assert!(from_zero.trips(&change(&[0.0], &[3.0])));
        for bad in [
            "boot_us",
            "boot_us>5",
            "boot_us>-5%",
            "boot_us<+5%",
            ">5%",
            "a>b%",
            "x>+5%<",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
    }
}
