//! The `--junit` report: JUnit XML for CI systems.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::write::write_atomically;
use super::{Report, ReportError, RunResult, Status};

/// Renders `report` as JUnit XML.
///
/// One testsuite per scenario file (in first-seen order) with the report's
/// `lab_version` and `started_at` as properties; one testcase per scenario x
/// variant x run, named by [`RunResult::case_name`], with the scenario's name
/// as classname, the run's duration as time and its metrics as properties.
/// `failed` and `timeout` (type `timeout`) become failures, `error` an error,
/// each with the result's error line as message.
pub fn to_junit_string(report: &Report) -> Result<String, ReportError> {
    let mut files: Vec<(&str, Vec<&RunResult>)> = Vec::new();
    for result in &report.results {
        match files.iter_mut().find(|(file, _)| *file == result.file) {
            Some((_, runs)) => runs.push(result),
            None => files.push((&result.file, vec![result])),
        }
    }
    let suites = files.into_iter().map(|(file, runs)| {
        let mut suite = TestSuite::new(file);
        suite.add_property(("lab_version", report.lab_version.as_str()));
        suite.add_property(("started_at", report.started_at.as_str()));
        suite.add_test_cases(runs.into_iter().map(test_case));
        let total = (suite.test_cases.iter().filter_map(|case| case.time))
            .fold(Duration::ZERO, Duration::saturating_add);
        suite.set_time(total);
        suite
    });
    let mut junit = quick_junit::Report::new("lab");
    junit.add_test_suites(suites);
    junit.to_string().map_err(ReportError::Junit)
}

/// Writes `report` as JUnit XML (see [`to_junit_string`]) to `path`,
/// atomically, like [`write_json`](super::write_json).
pub fn write_junit(report: &Report, path: &Path) -> Result<(), ReportError> {
    write_atomically(path, to_junit_string(report)?.as_bytes())
}

fn test_case(result: &RunResult) -> TestCase {
    let status = match result.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed => non_success(NonSuccessKind::Failure, None, result),
        Status::Timeout => non_success(NonSuccessKind::Failure, Some("timeout"), result),
        Status::Error => non_success(NonSuccessKind::Error, None, result),
    };
    let mut case = TestCase::new(result.case_name(), status);
    case.set_classname(result.scenario.as_str());
    // Negative, NaN or absurd durations are left out rather than invented.
    if let Ok(time) = Duration::try_from_secs_f64(result.duration_ms / 1000.0) {
        case.set_time(time);
    }
    // What the target printed last, where CI systems show a test's output.
    if let Some(console) = &result.console {
        case.set_system_out(console.as_str());
    }
    case.add_properties(
        result
            .metrics
            .iter()
            .map(|(name, value)| (name.clone(), value.to_string())),
    );
    case
}

fn non_success(kind: NonSuccessKind, ty: Option<&str>, result: &RunResult) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    if let Some(ty) = ty {
        status.set_type(ty);
    }
    if let Some(error) = &result.error {
        status.set_message(error.as_str());
    }
    status
}
