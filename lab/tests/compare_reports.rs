//! `lab compare`: two reports of real runs, the table, and `--fail-on`
//! catching a regression (a start-up that got slower) with exit status 1.

mod common;

use std::path::{Path, PathBuf};

use common::{lab, scenario, text};

/// Runs a scenario named `start` that boots `image` twice under
/// `clock: virtual` and reads its start-up phases, and returns the report.
fn report_of(dir: &Path, image: &str) -> PathBuf {
    let yaml = format!(
        "version: 1\nname: start\nboard: mps2-an385\nimage: {image}\nclock: virtual\n\
         timeout: 30s\nruns: 2\nargs: [hello]\nsteps:\n  - boot: {{}}\n  \
         - wait-serial: {{match: 'READY us=(?P<ready_us>\\d+)', timeout: 20s}}\n  \
         - expect-exit: {{code: 0, timeout: 20s}}\n"
    );
    let name = image.replace('/', "-");
    let file = scenario(dir, &format!("{name}.yaml"), &yaml);
    let json = dir.join(format!("{name}.json"));
    let out = lab()
        .args(["run", "-j", "2", "--json"])
        .arg(&json)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    json
}

#[test]
fn compare_flags_a_slower_start_and_passes_an_unchanged_one() {
    let dir = tempfile::tempdir().unwrap();
    let native = report_of(dir.path(), "cortex-m/native");
    let duktape = report_of(dir.path(), "cortex-m/duktape");

    let compare = |base: &Path, new: &Path, flags: &[&str]| {
        lab()
            .arg("compare")
            .args([base, new])
            .args(flags)
            .output()
            .unwrap()
    };

    // The same build against itself: nothing moved, no rule trips.
    let same = compare(&native, &native, &["--fail-on", "*_us>+5%"]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let table = String::from_utf8_lossy(&same.stdout);
    assert!(
        table.contains("ready_us") && table.contains("+0.0%"),
        "{table}"
    );

    // "Native" replaced by a JavaScript engine: start-up is far slower,
    // deterministic under virtual time, so the change is exact.
    let slower = compare(
        &native,
        &duktape,
        &["--fail-on", "ready_us>+5%", "--markdown"],
    );
    assert_eq!(slower.status.code(), Some(1), "{}", text(&slower));
    let table = String::from_utf8_lossy(&slower.stdout);
    let row = table
        .lines()
        .find(|l| l.contains("ready_us"))
        .unwrap_or_else(|| panic!("no ready_us row: {table}"));
    assert!(
        row.starts_with("| start") && row.contains("exact") && row.contains("yes"),
        "{row}"
    );
    let stderr = String::from_utf8_lossy(&slower.stderr);
    assert!(
        stderr.contains("regression: ready_us of start changed +")
            && stderr.contains("ready_us>+5%"),
        "{stderr}"
    );

    // A rule in the other direction does not trip on a rise.
    let faster = compare(&native, &duktape, &["--fail-on", "ready_us<-5%"]);
    assert_eq!(faster.status.code(), Some(0), "{}", text(&faster));
}

#[test]
fn a_file_that_is_not_a_report_exits_2_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"lab_version\": \"0.1.0\",\n \"results\": 3}\n").unwrap();
    let out = lab()
        .current_dir(dir.path())
        .args(["compare", "bad.json", "bad.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}
