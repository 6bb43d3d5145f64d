//! The report on disk while a run goes on.
//!
//! A lab that is killed outright (SIGKILL, the OOM killer, a CI runner's
//! timeout) cannot write its report at the end. So the report files are
//! written when the run starts, with every job marked unfinished, and written
//! again, atomically, each time a job ends. Whenever the lab dies, the files
//! hold a valid report: what finished, and what did not.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use super::{Report, ReportError, RunResult, summarize, write_json, write_junit};

/// Why a job placeholder in a checkpoint has no outcome.
pub const UNFINISHED: &str = "did not finish: the lab stopped before this run ended";

/// A report kept on disk, rewritten as each job ends.
#[derive(Debug)]
pub struct Checkpoint {
    report: Mutex<Report>,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
}

impl Checkpoint {
    /// Writes `report` (its results are the placeholders of every job, in
    /// plan order) to the files given and keeps it for [`Self::record`].
    pub fn start(
        mut report: Report,
        json: Option<PathBuf>,
        junit: Option<PathBuf>,
    ) -> Result<Self, ReportError> {
        for placeholder in &mut report.results {
            placeholder
                .error
                .get_or_insert_with(|| UNFINISHED.to_owned());
        }
        let checkpoint = Checkpoint {
            report: Mutex::new(report),
            json,
            junit,
        };
        checkpoint.write(&checkpoint.lock())?;
        Ok(checkpoint)
    }

    /// Puts the result of the job at `index` in place and writes the files.
    pub fn record(&self, index: usize, result: RunResult) -> Result<(), ReportError> {
        let mut report = self.lock();
        if let Some(slot) = report.results.get_mut(index) {
            *slot = result;
        }
        report.summaries = summarize(&report.results);
        self.write(&report)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, report: &Report) -> Result<(), ReportError> {
        if let Some(path) = &self.json {
            write_json(report, path)?;
        }
        if let Some(path) = &self.junit {
            write_junit(report, path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::Status;

    fn result(scenario: &str, status: Status) -> RunResult {
        RunResult {
            scenario: scenario.into(),
            file: format!("{scenario}.yaml"),
            variant: None,
            board: "mps2-an385".into(),
            target: "qemu".into(),
            run: 1,
            job: 0,
            status,
            duration_ms: 0.0,
            metrics: Default::default(),
            series: BTreeMap::new(),
            steps: Vec::new(),
            error: None,
            console: None,
            start: None,
            snapshot: None,
            recording: None,
        }
    }

    #[test]
    fn a_checkpoint_holds_what_finished_and_marks_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let report = Report {
            lab_version: "0".into(),
            started_at: "2026-11-29T00:00:00Z".into(),
            seed: 1,
            results: vec![result("a", Status::Error), result("b", Status::Error)],
            summaries: Vec::new(),
            tables: Default::default(),
        };
        let checkpoint = Checkpoint::start(report, Some(json.clone()), None).unwrap();
        let read = || -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
        };
        assert_eq!(read()["results"][0]["error"], UNFINISHED);
        assert_eq!(read()["results"][1]["status"], "error");

        checkpoint.record(1, result("b", Status::Passed)).unwrap();
        let now = read();
        assert_eq!(now["results"][0]["error"], UNFINISHED);
        assert_eq!(now["results"][1]["status"], "passed");
        assert_eq!(now["results"][1]["error"], serde_json::Value::Null);
    }
}
