//! `lab boards` and `--target hardware` from the command line, on a machine
//! with no debug probe attached (as CI is).

mod common;

use common::{run, text};

#[test]
fn boards_without_a_probe_lists_the_hardware_profiles() {
    let out = run(&["boards"]);
    assert!(out.status.success(), "{}", text(&out));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn target_hardware_without_a_probe_exits_2_naming_what_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let file = common::scenario(
        dir.path(),
        "on-board.yaml",
        "version: 1\nboard: nucleo-f767zi\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n  - expect-exit: {code: 0, timeout: 5s}\n",
    );
    let file = file.to_str().unwrap();
    for args in [vec!["run", file], vec!["run", "--target", "hardware", file]] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("on-board.yaml:2:8: no debug probe answered for chip `STM32F767ZITx` of board `nucleo-f767zi`"),
            "{}",
            text(&out)
        );
    }
    let qemu_only = common::scenario(
        dir.path(),
        "qemu.yaml",
        "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n",
    );
    let out = run(&["run", "--target", "hardware", qemu_only.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no `hardware:` section"),
        "{}",
        text(&out)
    );
}
