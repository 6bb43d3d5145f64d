//! The lab outside its checkout: the board profiles are built into the
//! binary, a scenario with `image: {elf: ...}` runs from any folder, and a
//! folder with `qemu-configs/` adds to the built-in boards.

mod common;

use std::path::Path;
use std::process::Command;

use common::{lab_run_with, text};

/// `lab` as an installed binary sees it: no `LAB_ROOT`, the current folder
/// `dir`, and a home (and so a cache folder) of its own in `home`.
fn installed(dir: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.current_dir(dir)
        .env_remove("LAB_ROOT")
        .env_remove("LAB_LOG")
        .env_remove("LAB_SNAPSHOTS")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home);
    cmd
}

#[test]
fn a_user_elf_runs_from_a_folder_with_no_workspace() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let elf = common::copy_elf(dir, "cortex-m/echo", "mps2-an385");
    let file = common::scenario(
        dir,
        "mine.yaml",
        &format!(
            "version: 1
name: my-firmware
board: mps2-an385
image: {{elf: {elf}}}
runs: 2
warm-up:
  - boot: {{}}
  - wait-serial: {{match: READY, timeout: 5s}}
steps:
  - send-serial: \"ping\\n\"
  - wait-serial: {{match: ping, timeout: 5s}}
  - send-serial: \"exit\\n\"
  - expect-exit: {{code: 0, timeout: 5s}}
"
        ),
    );

    let ran = lab_run_with(&mut installed(dir, home.path()), dir, &file, &["-j", "1"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("start"), ["cold", "warm"], "{ran}");
    // The warm-up's snapshot is kept in the user's cache folder, not
    // beside the scenario.
    let snapshot = ran.first()["snapshot"].as_str().unwrap();
    let cache = home.path().join(".cache/lab/snapshots");
    assert!(Path::new(snapshot).starts_with(&cache), "{snapshot}");
    assert!(!dir.join("build").exists());

    let listed = installed(dir, home.path()).arg("list").output().unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.starts_with("workspace: none"), "{listed}");
    for board in ["mps2-an385", "netduinoplus2", "raspi3b", "virt-a53"] {
        assert!(
            listed
                .lines()
                .any(|l| l.trim_start().starts_with(board) && l.ends_with("(built in)")),
            "{listed}"
        );
    }
}

#[test]
fn a_workspace_adds_boards_and_overrides_built_in_ones() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let configs = tmp.path().join("qemu-configs");
    std::fs::create_dir(&configs).unwrap();
    let profile = std::fs::read_to_string(common::repo().join("qemu-configs/mps2-an385.yaml"))
        .unwrap()
        .replace("description: ", "description: (mine) ");
    std::fs::write(configs.join("mps2-an385.yaml"), &profile).unwrap();
    std::fs::write(
        configs.join("my-an385.yaml"),
        profile.replace("name: mps2-an385", "name: my-an385"),
    )
    .unwrap();
    let below = tmp.path().join("firmware/src");
    std::fs::create_dir_all(&below).unwrap();

    let listed = installed(&below, home.path()).arg("list").output().unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    let listed = String::from_utf8_lossy(&listed.stdout);
    let line = |board: &str| {
        listed
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{board} ")))
            .unwrap_or_else(|| panic!("no {board} in {listed}"))
            .to_owned()
    };
    assert!(
        listed.starts_with(&format!("workspace: {}", tmp.path().display())),
        "{listed}"
    );
    let own = configs.join("mps2-an385.yaml");
    assert!(line("mps2-an385").contains("(mine)"), "{listed}");
    assert!(
        line("mps2-an385").ends_with(&format!("({})", own.display())),
        "{listed}"
    );
    assert!(line("my-an385").contains("(mine)"), "{listed}");
    assert!(line("virt-a53").ends_with("(built in)"), "{listed}");
}

#[test]
fn lab_root_that_is_not_a_workspace_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = installed(tmp.path(), home.path())
        .env("LAB_ROOT", tmp.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a lab workspace") && stderr.contains("LAB_ROOT"),
        "{stderr}"
    );
}
