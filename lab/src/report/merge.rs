//! Joining the reports of a run's shards (`lab run --shard K/N` on N
//! machines) into the report one machine would have written.

use std::collections::BTreeMap;

use super::{Report, Tables, summarize};

/// Why shards' reports do not make one run.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no reports to merge: give the report of every shard")]
    Empty,
    /// Shards ran with different seeds, so scripts drew different numbers.
    #[error(
        "the shards ran with different seeds ({first} in {first_file}, {other} in {other_file}): \
         run every shard with the same `--seed`"
    )]
    Seeds {
        /// The first report's seed.
        first: u64,
        /// The first report.
        first_file: String,
        /// A differing seed.
        other: u64,
        /// The report with it.
        other_file: String,
    },
    /// Two reports hold the same job.
    #[error(
        "job {job} ({case}) is in both {first_file} and {other_file}: merge the reports of \
         one run's shards, each once"
    )]
    Overlap {
        /// The job's place in the run.
        job: usize,
        /// Its `scenario[variant]#run`.
        case: String,
        /// One report.
        first_file: String,
        /// The other.
        other_file: String,
    },
}

/// Joins `reports` (each named by its file, for messages): their results
/// in the order of the whole run, the earliest start, summaries computed
/// afresh, every declared table (a scenario's first one, when shards
/// disagree). The shards must share a seed and hold disjoint jobs.
pub fn merge(reports: Vec<(String, Report)>) -> Result<Report, MergeError> {
    let (first_file, first) = reports.first().ok_or(MergeError::Empty)?;
    let (seed, lab_version) = (first.seed, first.lab_version.clone());
    let first_file = first_file.clone();
    let mut started_at = first.started_at.clone();
    let mut results = BTreeMap::new();
    let mut tables = Tables::new();
    for (file, report) in reports {
        if report.seed != seed {
            return Err(MergeError::Seeds {
                first: seed,
                first_file,
                other: report.seed,
                other_file: file,
            });
        }
        // RFC 3339 in UTC: the text orders as the time does.
        if report.started_at < started_at {
            started_at = report.started_at.clone();
        }
        for (scenario, table) in report.tables {
            tables.entry(scenario).or_insert(table);
        }
        for result in report.results {
            let job = result.job;
            if let Some((other_file, other)) = results.insert(job, (file.clone(), result)) {
                return Err(MergeError::Overlap {
                    job,
                    case: other.case_name(),
                    first_file: other_file,
                    other_file: file,
                });
            }
        }
    }
    let results: Vec<_> = results.into_values().map(|(_, r)| r).collect();
    Ok(Report {
        lab_version,
        started_at,
        seed,
        summaries: summarize(&results),
        results,
        tables,
    })
}
