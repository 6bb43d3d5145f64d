//! `trend:` samples a series from the serial console and classifies it by
//! a least-squares line: a steady rise over the window is a leak.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::{Detail, RunContext, StepFailure, StepKind};
use crate::backend::TargetError;
use crate::console::{Console, ConsoleError};
use crate::loader::{ErrorKind, Loc, ScenarioError, StepSyntax, Validator, loc};
use crate::report::{Metrics, Status};
use crate::report::series::{FIT, TREND, thin};

/// The direction of a series, as `trend:` classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Grows steadily over the window.
    Rising,
    /// Neither grows nor shrinks steadily.
    Flat,
    /// Shrinks steadily over the window.
    Falling,
}

impl Direction {
    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Rising => "rising",
            Direction::Flat => "flat",
            Direction::Falling => "falling",
        }
    }
}

/// Options of `trend:`.
#[derive(Debug, Clone)]
pub struct Trend {
    /// A pattern with named groups `x` and `y`; each match is one sample.
    pub pattern: regex::bytes::Regex,
    /// Sampling ends when this matches (or the console closes).
    pub until: Option<regex::bytes::Regex>,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
    /// The slope's metric name (also `<metric>_r2` and `<metric>_samples`).
    pub metric: String,
    /// The expected direction, for every variant or per variant name.
    pub expect: BTreeMap<Option<String>, Direction>,
    /// The smallest fitted change over the window, as a share of the mean,
    /// that counts as rising or falling (`min-change:`, default 10%).
    pub min_change: f64,
}

/// `trend:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawTrend {
    #[serde(rename = "match")]
    pattern: Spanned<String>,
    until: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    metric: Option<Spanned<String>>,
    expect: Option<Spanned<RawTrendExpect>>,
    min_change: Option<Spanned<f64>>,
}

/// `expect:` of `trend:`: one direction, or one per variant name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawTrendExpect {
    /// The same direction for every variant.
    All(String),
    /// A direction per variant name.
    PerVariant(std::collections::BTreeMap<String, String>),
}

impl StepKind for Trend {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "trend",
        example: "{}",
    };
    type Raw = RawTrend;

    fn load(raw: RawTrend, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let sample = v.pattern(&raw.pattern)?;
        for group in ["x", "y"] {
            if !sample.capture_names().flatten().any(|n| n == group) {
                return Err(v.error(
                    loc(&raw.pattern.referenced),
                    ErrorKind::Other(format!(
                        "the trend pattern has no named group `{group}`: write `(?P<x>\\d+)` for \
                         the time and `(?P<y>\\d+)` for the value"
                    )),
                ));
            }
        }
        let direction = |value: &str, at: Loc| match value {
            "rising" => Ok(Direction::Rising),
            "flat" => Ok(Direction::Flat),
            "falling" => Ok(Direction::Falling),
            other => Err(v.error(
                at,
                ErrorKind::UnknownValue {
                    value: other.to_owned(),
                    expected: vec!["rising", "flat", "falling"],
                },
            )),
        };
        let mut expect = BTreeMap::new();
        if let Some(e) = &raw.expect {
            let at = loc(&e.referenced);
            match &e.value {
                RawTrendExpect::All(d) => {
                    expect.insert(None, direction(d, at)?);
                }
                RawTrendExpect::PerVariant(map) => {
                    for (variant, d) in map {
                        expect.insert(Some(variant.clone()), direction(d, at)?);
                    }
                }
            }
        }
        let min_change = match &raw.min_change {
            None => MIN_CHANGE,
            Some(m) if m.value > 0.0 && m.value.is_finite() => m.value,
            Some(m) => {
                return Err(v.error(
                    loc(&m.referenced),
                    ErrorKind::Other(format!(
                        "`min-change` is a share of the series' mean above 0 (0.1 is 10%), \
                         not {}",
                        m.value
                    )),
                ));
            }
        };
        Ok(Trend {
            pattern: sample,
            until: raw.until.as_ref().map(|u| v.pattern(u)).transpose()?,
            timeout: v.optional_duration(raw.timeout.as_ref())?,
            metric: v
                .metric(raw.metric)?
                .unwrap_or_else(|| "slope".to_owned()),
            expect,
            min_change,
        })
        }

    fn check_variants(&self, variants: &[&str]) -> Result<(), (String, &'static str)> {
        match self
            .expect
            .keys()
            .flatten()
            .find(|v| !variants.contains(&v.as_str()))
        {
            Some(unknown) => Err((
                format!("`expect` names variant `{unknown}`, which the matrix does not have"),
                "name the variants of `matrix:`, or give one direction for all",
            )),
            None => Ok(()),
        }
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let variant = ctx.variant.as_deref();
        let console = ctx.target.console()?;
        let detail = sample(self, console, variant, &mut ctx.metrics, &mut ctx.series).await?;
        Ok(Some(detail))
    }
}

/// Fewer samples than this cannot show a trend.
const MIN_SAMPLES: usize = 3;
/// A line explains the series well enough from this R² on.
const MIN_R2: f64 = 0.6;
/// By default the fitted change over the window must be at least this share
/// of the mean value to count as rising or falling (`min-change:`).
const MIN_CHANGE: f64 = 0.1;

/// A least-squares line through the samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    /// Change of y per unit of x.
    pub slope: f64,
    /// The line's y at x = 0.
    pub intercept: f64,
    /// Coefficient of determination, 0..=1.
    pub r2: f64,
    /// The fitted change over the window as a share of the mean of y.
    pub change: f64,
}

impl Fit {
    /// Fits `samples`; `None` for fewer than two distinct x.
    fn of(samples: &[(f64, f64)]) -> Option<Fit> {
        let n = samples.len() as f64;
        let mean_x = samples.iter().map(|s| s.0).sum::<f64>() / n;
        let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / n;
        let sxx: f64 = samples.iter().map(|s| (s.0 - mean_x).powi(2)).sum();
        let sxy: f64 = samples
            .iter()
            .map(|s| (s.0 - mean_x) * (s.1 - mean_y))
            .sum();
        let syy: f64 = samples.iter().map(|s| (s.1 - mean_y).powi(2)).sum();
        if sxx == 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let r2 = if syy == 0.0 {
            1.0
        } else {
            (sxy * sxy) / (sxx * syy)
        };
        let (min_x, max_x) = samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
            (lo.min(s.0), hi.max(s.0))
        });
        let change = if mean_y == 0.0 {
            0.0
        } else {
            slope * (max_x - min_x) / mean_y.abs()
        };
        Some(Fit {
            slope,
            intercept: mean_y - slope * mean_x,
            r2,
            change,
        })
    }

    /// The line's two ends over the samples' range of x.
    fn ends(&self, samples: &[(f64, f64)]) -> Vec<[f64; 2]> {
        let (min_x, max_x) = samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
            (lo.min(s.0), hi.max(s.0))
        });
        [min_x, max_x]
            .into_iter()
            .map(|x| [x, self.intercept + self.slope * x])
            .collect()
    }

    /// Rising or falling when the line explains the series and moves it by
    /// at least `min_change` (a share of its mean) over the window; flat
    /// otherwise.
    fn direction(&self, min_change: f64) -> Direction {
        if self.r2 < MIN_R2 || self.change.abs() < min_change {
            Direction::Flat
        } else if self.change > 0.0 {
            Direction::Rising
        } else {
            Direction::Falling
        }
    }
}

/// Collects samples until `until` matches, the console closes or the step's
/// timeout passes, fits them and checks the expected direction.
async fn sample(
    step: &Trend,
    console: &mut Console,
    variant: Option<&str>,
    metrics: &mut Metrics,
    series: &mut BTreeMap<String, Vec<[f64; 2]>>,
) -> Result<Detail, StepFailure> {
    let deadline = step.timeout.map(|t| Instant::now() + t);
    let mut patterns = vec![&step.pattern];
    patterns.extend(step.until.as_ref());
    let mut samples = Vec::new();
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match console.wait_for_any(&patterns, left).await {
            Ok((0, found)) => {
                let value = |group: &str| {
                    found
                        .captures
                        .iter()
                        .find(|(n, _)| n == group)
                        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                };
                match (value("x"), value("y")) {
                    (Some(x), Some(y)) => samples.push((x, y)),
                    _ => {
                        return Err(StepFailure::new(
                            Status::Failed,
                            format!("sample {:?} has no numeric `x` and `y`", found.text),
                        ));
                    }
                }
            }
            Ok(_) => break,
            Err(ConsoleError::Closed { .. }) if step.until.is_none() => break,
            Err(ConsoleError::Timeout { .. }) if step.until.is_none() && step.timeout.is_some() => {
                break;
            }
            Err(e) => return Err(TargetError::from(e).into()),
        }
    }
    if samples.len() < MIN_SAMPLES {
        return Err(StepFailure::new(
            Status::Failed,
            format!(
                "{} samples are too few for a trend (at least {MIN_SAMPLES})",
                samples.len()
            ),
        ));
    }
    let fit = Fit::of(&samples).ok_or_else(|| {
        StepFailure::new(Status::Failed, "every sample has the same `x`: no trend")
    })?;
    let direction = fit.direction(step.min_change);
    metrics.insert(step.metric.clone(), fit.slope);
    metrics.insert(format!("{}_r2", step.metric), fit.r2);
    metrics.insert(format!("{}_samples", step.metric), samples.len() as f64);
    let name = format!("{TREND}{}", step.metric);
    let points = samples.iter().map(|&(x, y)| [x, y]).collect();
    series.insert(format!("{name}{FIT}"), fit.ends(&samples));
    series.insert(name, thin(points));
    let mut detail = Detail::new();
    detail.insert("direction".into(), json!(direction.as_str()));
    detail.insert("slope".into(), json!(fit.slope));
    detail.insert("r2".into(), json!(fit.r2));
    detail.insert("change".into(), json!(fit.change));
    detail.insert("samples".into(), json!(samples.len()));
    let expected = step
        .expect
        .get(&variant.map(str::to_owned))
        .or_else(|| step.expect.get(&None));
    if let Some(want) = expected
        && *want != direction
    {
        return Err(StepFailure::new(
            Status::Failed,
            format!(
                "the series is {} (slope {:.4}, R² {:.2}, change {:+.0}% over the window), expected {}",
                direction.as_str(),
                fit.slope,
                fit.r2,
                fit.change * 100.0,
                want.as_str()
            ),
        ));
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..20)
            .map(|i| (f64::from(i) * 100.0, f(f64::from(i))))
            .collect()
    }

    #[test]
    fn a_steady_rise_is_rising() {
        let samples = series(|i| 1000.0 + 50.0 * i);
        let fit = Fit::of(&samples).unwrap();
        assert_eq!(fit.direction(MIN_CHANGE), Direction::Rising);
        assert!((fit.slope - 0.5).abs() < 1e-9);
        assert!((fit.r2 - 1.0).abs() < 1e-9);
        // The line runs through the first and the last sample.
        let ends = fit.ends(&samples);
        assert_eq!(ends.len(), 2);
        for (end, at) in ends.iter().zip([0.0, 1900.0]) {
            assert!((end[0] - at).abs() < 1e-9, "{ends:?}");
            assert!((end[1] - (1000.0 + at / 2.0)).abs() < 1e-6, "{ends:?}");
        }
    }

    #[test]
    fn a_sawtooth_around_a_level_is_flat() {
        // Allocation and collection: up for five samples, back down.
        let fit = Fit::of(&series(|i| 1000.0 + 100.0 * (i % 5.0))).unwrap();
        assert_eq!(fit.direction(MIN_CHANGE), Direction::Flat, "{fit:?}");
    }

    #[test]
    fn a_small_steady_drift_is_flat() {
        let fit = Fit::of(&series(|i| 10_000.0 + i)).unwrap();
        assert_eq!(fit.direction(MIN_CHANGE), Direction::Flat, "{fit:?}");
    }

    #[test]
    fn a_rise_below_the_asked_change_is_flat() {
        // From 1000 to 1950 over the window: 64% of the mean of 1475.
        let fit = Fit::of(&series(|i| 1000.0 + 50.0 * i)).unwrap();
        assert_eq!(fit.direction(0.5), Direction::Rising, "{fit:?}");
        assert_eq!(fit.direction(0.7), Direction::Flat, "{fit:?}");
    }

    #[test]
    fn a_steady_fall_is_falling() {
        let fit = Fit::of(&series(|i| 5000.0 - 200.0 * i)).unwrap();
        assert_eq!(fit.direction(MIN_CHANGE), Direction::Falling);
    }

    #[test]
    fn one_x_has_no_line() {
        assert_eq!(Fit::of(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }
}
