//! Raw samples that steps keep beside their metrics, for the plots of
//! `lab report --html`: a result's `series` maps a name to `[x, y]` points.
//!
//! | name | x | y | from |
//! |---|---|---|---|
//! | `gc_pause_us/<kind>` | µs since the runtime started | the pause, µs | `gc-trace`, one series per collector kind of the trace (`gc` and `forced` for Go; `Scavenge`, `Mark-Compact`, ... for V8) |
//! | `latency_us` | the message's number | its round trip, µs | `serial-load`, answered messages only |
//! | `trend/<metric>` | the sample's `x` | its `y` | `trend`, every sample |
//! | `trend/<metric>/fit` | the first and last sample's `x` | the fitted line there | `trend` |
//!
//! A series holds at most [`SERIES_POINTS`] points: a longer one is
//! thinned to that many, evenly spaced, keeping its first and last. The
//! metrics are always computed from every sample. A later step of the same
//! kind in a run replaces its series, as it replaces its metrics.

use std::collections::BTreeMap;

/// The most points a series keeps.
pub const SERIES_POINTS: usize = 1000;

/// The prefix of `gc-trace`'s pause series; the collector kind follows it.
pub const GC_PAUSES: &str = "gc_pause_us/";

/// The name of `serial-load`'s latency series.
pub const LATENCY: &str = "latency_us";

/// The prefix of `trend`'s series; the trend's metric name follows it.
pub const TREND: &str = "trend/";

/// The suffix of a trend's fitted line, after `trend/<metric>`.
pub const FIT: &str = "/fit";

/// `points`, thinned to at most [`SERIES_POINTS`]: evenly spaced by index,
/// the first and the last always kept, the order unchanged.
pub fn thin(points: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    let n = points.len();
    if n <= SERIES_POINTS {
        return points;
    }
    // Index i of the kept points is round(i * (n - 1) / (SERIES_POINTS - 1)).
    let last = SERIES_POINTS - 1;
    (0..SERIES_POINTS)
        .filter_map(|i| points.get((i * (n - 1) + last / 2) / last).copied())
        .collect()
}

/// Replaces every series whose name starts with `prefix` by `series`
/// (each thinned), so that a later step's series never mix with an
/// earlier one's.
pub fn replace_series(
    all: &mut BTreeMap<String, Vec<[f64; 2]>>,
    prefix: &str,
    series: impl IntoIterator<Item = (String, Vec<[f64; 2]>)>,
) {
    all.retain(|name, _| !name.starts_with(prefix));
    all.extend(
        series
            .into_iter()
            .map(|(name, points)| (name, thin(points))),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize) -> Vec<[f64; 2]> {
        (0..n).map(|i| [i as f64, (i * 2) as f64]).collect()
    }

    #[test]
    fn short_series_are_kept_whole() {
        assert_eq!(thin(points(3)), points(3));
        assert_eq!(thin(points(SERIES_POINTS)), points(SERIES_POINTS));
        assert_eq!(thin(Vec::new()), Vec::<[f64; 2]>::new());
    }

    #[test]
    fn long_series_keep_the_cap_evenly_spaced_with_both_ends() {
        let long = points(SERIES_POINTS * 10 + 7);
        let kept = thin(long.clone());
        assert_eq!(kept.len(), SERIES_POINTS);
        assert_eq!(kept.first(), long.first());
        assert_eq!(kept.last(), long.last());
        let gaps: Vec<f64> = kept.windows(2).map(|w| w[1][0] - w[0][0]).collect();
        assert!(gaps.iter().all(|&g| (10.0..=11.0).contains(&g)), "{gaps:?}");
        let one_over = points(SERIES_POINTS + 1);
        let kept = thin(one_over.clone());
        assert_eq!(kept.len(), SERIES_POINTS);
        assert_eq!(kept.last(), one_over.last());
    }

    #[test]
    fn replacing_drops_every_series_of_the_prefix() {
        let mut all = BTreeMap::new();
        all.insert("gc_pause_us/Scavenge".to_owned(), points(2));
        all.insert("gc_pause_us/Mark-Compact".to_owned(), points(2));
        all.insert(LATENCY.to_owned(), points(2));
        replace_series(
            &mut all,
            GC_PAUSES,
            [("gc_pause_us/gc".to_owned(), points(SERIES_POINTS * 2))],
        );
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(names, ["gc_pause_us/gc", "latency_us"]);
        assert_eq!(all["gc_pause_us/gc"].len(), SERIES_POINTS);
    }
}
