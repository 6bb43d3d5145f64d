//! `lab check` and the usage errors of `lab run`: exit status 2 and
//! messages with file:line:col, pinned with insta.

mod common;

use common::{lab, scenario, text};

/// Runs `lab ARGS` in `dir` and returns (status, stderr).
fn in_dir(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = lab().current_dir(dir).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_repository_scenarios_are_valid() {
    let out = common::run(&["check", common::repo().join("scenarios").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hello.yaml (hello-cortex-m)"), "{stdout}");
}

#[test]
fn a_misspelt_key_exits_2_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "typo.yaml",
        "version: 1\nbord: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n",
    );
    let (code, stderr) = in_dir(dir.path(), &["check", "typo.yaml"]);
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(stderr);
}

#[test]
fn an_unknown_board_exits_2_and_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "board.yaml",
        "version: 1\nboard: mps2-an999\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n",
    );
    let (code, stderr) = in_dir(dir.path(), &["run", "board.yaml"]);
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(stderr);
}

#[test]
fn an_unknown_image_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "image.yaml",
        "version: 1\nboard: mps2-an385\nimage: cortex-m/nope\nsteps:\n  - boot: {}\n",
    );
    let (code, stderr) = in_dir(dir.path(), &["check", "image.yaml"]);
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_step_before_boot_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "order.yaml",
        "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - send-serial: \"x\"\n  - boot: {}\n",
    );
    let (code, stderr) = in_dir(dir.path(), &["check", "order.yaml"]);
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(stderr);
}

#[test]
fn hardware_without_a_probe_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    scenario(
        dir.path(),
        "hw.yaml",
        "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n",
    );
    let (code, stderr) = in_dir(dir.path(), &["run", "--target", "hardware", "hw.yaml"]);
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_missing_path_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = in_dir(dir.path(), &["run", "nowhere.yaml"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("nowhere.yaml"), "{stderr}");
}

#[test]
fn list_shows_boards_images_and_scenarios() {
    let out = common::run(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "mps2-an385",
        "mps2-an500",
        "netduinoplus2",
        "cortex-m/hello",
        "cortex-m/duktape",
        "scenarios/hello.yaml",
        "scenarios/cortex-m/cold-start.yaml",
        "scenarios/netduinoplus2/echo.yaml",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing from:\n{stdout}"
        );
    }
    assert!(!stdout.contains("invalid"), "{stdout}");
}
