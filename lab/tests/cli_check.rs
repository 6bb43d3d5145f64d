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

/// Writes `yaml` as scenario `file` in a folder of its own, runs `lab
/// COMMAND... FILE` there, checks that it exits 2, and returns its stderr.
fn exits_2(command: &[&str], file: &str, yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path(), file, yaml);
    let (code, stderr) = in_dir(dir.path(), &[command, &[file]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    stderr
}

#[test]
fn the_repository_scenarios_are_valid() {
    let out = common::run(&["check", common::repo().join("scenarios").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hello.yaml (hello-cortex-m)"), "{stdout}");
}

// The scenarios are spelt out: the snapshots point into them by line and column.

#[test]
fn a_misspelt_key_exits_2_with_its_position() {
    let typo = "version: 1\nbord: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n";
    insta::assert_snapshot!(exits_2(&["check"], "typo.yaml", typo));
}

#[test]
fn an_unknown_board_exits_2_and_lists_the_known_ones() {
    let board = "version: 1\nboard: mps2-an999\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n";
    insta::assert_snapshot!(exits_2(&["run"], "board.yaml", board));
}

#[test]
fn an_unknown_image_exits_2() {
    let image = "version: 1\nboard: mps2-an385\nimage: cortex-m/nope\nsteps:\n  - boot: {}\n";
    insta::assert_snapshot!(exits_2(&["check"], "image.yaml", image));
}

#[test]
fn a_step_before_boot_exits_2() {
    let order = "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - send-serial: \"x\"\n  - boot: {}\n";
    insta::assert_snapshot!(exits_2(&["check"], "order.yaml", order));
}

#[test]
fn hardware_without_a_probe_exits_2() {
    let hw = "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n";
    insta::assert_snapshot!(exits_2(&["run", "--target", "hardware"], "hw.yaml", hw));
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

#[test]
fn version_names_the_lab_and_each_qemu_it_runs() {
    let out = common::run(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(concat!("lab ", env!("CARGO_PKG_VERSION")))
    );
    for binary in ["qemu-system-aarch64", "qemu-system-arm"] {
        let line = lines.next().unwrap_or_default();
        assert!(
            line.starts_with(&format!("{binary}: /")) && line.contains("(QEMU emulator version "),
            "{stdout}"
        );
    }
}

#[test]
fn completions_cover_the_commands_and_their_flags() {
    let out = common::run(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("_lab()"), "{script}");
    for word in ["compare", "report", "--fail-fast", "--shard", "--fail-on"] {
        assert!(script.contains(word), "no {word} in the bash script");
    }
    for shell in ["zsh", "fish"] {
        let out = common::run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(!out.stdout.is_empty());
    }
    let out = common::run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
