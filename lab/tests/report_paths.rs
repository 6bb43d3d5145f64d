//! `lab run --json/--junit` with a report path that cannot be written: the
//! runs still happen and print, one error line names the path and the
//! operating system's reason, the exit status is 1 and no temporary file is
//! left behind.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Tmpfs, names_in, run, scenario, skip, text};

const HELLO: &str = "\
version: 1
name: hello-report
board: mps2-an385
image: cortex-m/hello
timeout: 30s
steps:
  - boot: {}
  - wait-serial: {match: 'READY boot_us=(?P<boot_us>\\d+)', timeout: 10s}
  - expect-exit: {code: 0, timeout: 10s}
";

/// Runs the passing hello scenario from `dir` with the report options `args`.
fn run_hello(dir: &Path, args: &[&Path]) -> Output {
    let file = scenario(dir, "hello.yaml", HELLO);
    let mut argv = vec!["run".to_owned(), file.to_str().unwrap().to_owned()];
    for (flag, path) in ["--json", "--junit"].iter().zip(args) {
        argv.push((*flag).to_owned());
        argv.push(path.to_str().unwrap().to_owned());
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(&argv)
}

/// The run passed and printed its results, and the one error line names
/// `path` and `reason` and says what to do.
fn assert_report_lost(out: &Output, flag: &str, path: &Path, reason: &str) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hello-report") && stdout.contains("1 passed, 0 failed"),
        "the results are printed: {all}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {all}");
    let line = errors[0];
    assert!(
        line.contains(&format!(
            "could not write the report to {}: ",
            path.display()
        )),
        "{line}"
    );
    assert!(line.contains(reason), "the OS reason `{reason}`: {line}");
    // Not the hidden `.NAME.XXXXXXXX.tmp` the report was written to first.
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(!line.contains(&format!(".{name}.")), "{line}");
    assert!(line.contains(&format!("give {flag} a file")), "{line}");
}

#[test]
fn a_report_in_a_missing_folder_is_an_error_after_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("missing/report.json");
    let out = run_hello(dir.path(), &[&json]);
    assert_report_lost(&out, "--json", &json, "No such file or directory");
    assert_eq!(names_in(dir.path()), ["hello.yaml"]);
}

#[test]
fn a_report_below_a_regular_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "not a folder").unwrap();
    let junit = dir.path().join("file/junit.xml");
    let json = dir.path().join("report.json");
    // The JSON report is written; only the JUnit one is lost.
    let out = run_hello(dir.path(), &[&json, &junit]);
    assert_report_lost(&out, "--junit", &junit, "Not a directory");
    assert_eq!(common::report(&json)["results"][0]["status"], "passed");
    assert_eq!(names_in(dir.path()), ["file", "hello.yaml", "report.json"]);
}

#[test]
fn a_report_path_that_is_a_folder_leaves_no_temporary_file() {
    // The temporary file is written next to the target, then the rename
    // onto a folder fails: the temporary file must go.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("taken");
    std::fs::create_dir(&json).unwrap();
    let out = run_hello(dir.path(), &[&json]);
    assert_report_lost(&out, "--json", &json, "Is a directory");
    assert_eq!(names_in(dir.path()), ["hello.yaml", "taken"]);
    assert!(names_in(&json).is_empty());
}

#[test]
fn a_report_on_a_read_only_file_system_is_an_error_even_for_root() {
    let dir = tempfile::tempdir().unwrap();
    let ro = match Tmpfs::mount(&dir.path().join("ro"), 64 * 1024, true) {
        Ok(ro) => ro,
        Err(reason) => return skip("a_report_on_a_read_only_file_system", &reason),
    };
    let json = dir.path().join("ro/report.json");
    let out = run_hello(dir.path(), &[&json]);
    assert_report_lost(&out, "--json", &json, "Read-only file system");
    assert!(names_in(&dir.path().join("ro")).is_empty());
    drop(ro);
}

#[test]
fn a_report_on_a_full_disk_leaves_no_half_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = match Tmpfs::mount(&dir.path().join("full"), 64 * 1024, false) {
        Ok(full) => full,
        Err(reason) => return skip("a_report_on_a_full_disk", &reason),
    };
    full.fill("filler", 0);
    let json = dir.path().join("full/report.json");
    let junit = dir.path().join("full/junit.xml");
    let out = run_hello(dir.path(), &[&json, &junit]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Both reports are lost, each with its own line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (flag, path) in [("--json", &json), ("--junit", &junit)] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&path.display().to_string()))
            .unwrap_or_else(|| panic!("no error names {}: {all}", path.display()));
        assert!(line.contains("No space left on device"), "{line}");
        assert!(line.contains(&format!("give {flag} a file")), "{line}");
    }
    assert_eq!(names_in(&dir.path().join("full")), ["filler"]);
}
