//! Which of a plan's jobs a run takes, and how often: the test-runner
//! habits of `lab run` (`-k`, `--board`, `--repeat`, `--shard`).

use std::fmt;
use std::str::FromStr;

use super::{ImageSource, Job};
use crate::report::case;
use crate::scenario::ImageRef;

/// A selection that leaves nothing to run.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    /// The filters match no job of the plan.
    #[error(
        "no job matches {filters}; `lab run --list` with the same paths shows the jobs there are"
    )]
    NothingMatches {
        /// The filters, as given.
        filters: String,
    },
}

/// One of N stable, disjoint parts of a plan (`--shard K/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 1.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl Shard {
    /// Whether the job at `position` of the plan (from 0) falls in this
    /// part: jobs are dealt out in plan order, one to each part in turn, so
    /// parts differ in size by at most one job.
    pub fn holds(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("`{text}` is not K/N with 1 <= K <= N (for example 2/4)");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let (index, count) = (
            index.trim().parse::<usize>().map_err(|_| usage())?,
            count.trim().parse::<usize>().map_err(|_| usage())?,
        );
        if index == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which jobs of a plan run, and how many times.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep the jobs whose `scenario[variant]` contains one of these (`-k`);
    /// none keeps every job.
    pub patterns: Vec<String>,
    /// Keep only the jobs on this board (`--board`).
    pub board: Option<String>,
    /// Run the whole selection this many times (`--repeat`, at least 1).
    pub repeat: u32,
    /// Keep only this part of the result (`--shard`).
    pub shard: Option<Shard>,
}

impl Selection {
    /// The jobs of `plan` this selection runs, in plan order: filtered,
    /// repeated (repetition `k` numbers its runs after those of repetition
    /// `k - 1`, so every job keeps a distinct label), then cut to the shard.
    /// An empty shard is no error: there were fewer jobs than parts.
    pub fn apply(&self, plan: Vec<Job>) -> Result<Vec<Job>, SelectionError> {
        let filtered: Vec<Job> = plan.into_iter().filter(|job| self.keeps(job)).collect();
        if filtered.is_empty() && (!self.patterns.is_empty() || self.board.is_some()) {
            return Err(SelectionError::NothingMatches {
                filters: self.describe_filters(),
            });
        }
        let repeated = (0..self.repeat.max(1)).flat_map(|k| {
            filtered.iter().map(move |job| Job {
                run: k * job.scenario.runs + job.run,
                ..job.clone()
            })
        });
        Ok(repeated
            .enumerate()
            .map(|(position, job)| Job { position, ..job })
            .filter(|job| self.shard.is_none_or(|s| s.holds(job.position)))
            .collect())
    }

    fn keeps(&self, job: &Job) -> bool {
        let name = case(&job.scenario.name, job.variant.as_deref());
        let named = self.patterns.is_empty() || self.patterns.iter().any(|p| name.contains(p));
        let on_board = self.board.as_ref().is_none_or(|b| *b == job.board.name);
        named && on_board
    }

    fn describe_filters(&self) -> String {
        let mut parts: Vec<String> = self.patterns.iter().map(|p| format!("-k {p:?}")).collect();
        if let Some(board) = &self.board {
            parts.push(format!("--board {board:?}"));
        }
        parts.join(" and ")
    }
}

/// The jobs as `lab run --list` prints them: one line each (label, board,
/// image, target) under a header, then how many. Ends with a newline.
pub fn render_list(jobs: &[Job]) -> String {
    let rows: Vec<[String; 4]> = jobs
        .iter()
        .map(|job| {
            let image = match &job.image {
                ImageSource::Built(name) | ImageSource::Files(ImageRef::Named(name)) => {
                    name.clone()
                }
                ImageSource::Files(ImageRef::Elf(path))
                | ImageSource::Files(ImageRef::Linux { kernel: path, .. }) => {
                    path.display().to_string()
                }
            };
            [
                job.label(),
                job.board.name.clone(),
                image,
                job.target.as_str().to_owned(),
            ]
        })
        .collect();
    let header = ["JOB", "BOARD", "IMAGE", "TARGET"].map(String::from);
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = (0..4)
            .map(|c| format!("{:<w$}", row[c], w = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let plural = if jobs.len() == 1 { "" } else { "s" };
    out.push_str(&format!("{} job{plural}\n", jobs.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_reads_k_of_n_and_refuses_the_rest() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0", ""] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains("K/N"), "{bad}: {error}");
        }
    }

    #[test]
    fn shards_deal_every_position_to_exactly_one_part() {
        for count in 1..6 {
            for position in 0..20 {
                let holders = (1..=count)
                    .filter(|&index| Shard { index, count }.holds(position))
                    .count();
                assert_eq!(holders, 1, "position {position} of {count} parts");
            }
        }
    }
}
