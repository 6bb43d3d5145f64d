//! Linux on the Raspberry Pi class boards: the busybox image built from
//! Debian arm64 packages boots on QEMU's virt (Cortex-A53), raspi3b and
//! raspi3ap (the Zero 2 W's device tree) machines, runs a program from init
//! and powers off.

mod common;

use common::{ScenarioYaml, built_and_cached, lab_run, metric, refused_by_check, repo, step_names};

#[test]
fn the_busybox_image_build_is_cached_on_the_second_run() {
    let out = built_and_cached("raspi/busybox", "virt-a53");
    for file in [
        "Image",
        "initrd.cpio.gz",
        "dtbs/broadcom/bcm2837-rpi-3-b.dtb",
    ] {
        assert!(out.join(file).is_file(), "{file} is built");
    }
}

#[test]
fn linux_boots_runs_hello_and_powers_off_on_virt_raspi3b_and_the_zero_2_w() {
    let dir = tempfile::tempdir().unwrap();
    let boot = repo().join("scenarios/raspi/boot.yaml");
    let ran = lab_run(dir.path(), &boot, &["-j", "2"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let results = ran.results();
    assert_eq!(results.len(), 3, "virt, raspi3b and raspi3ap");
    for r in results {
        assert_eq!(r["status"], "passed", "{r}");
        assert_eq!(
            step_names(r),
            [
                "boot",
                "wait-serial",
                "wait-serial",
                "wait-serial",
                "expect-exit"
            ]
        );
        let init = metric(r, "init_ms");
        let exit = metric(r, "exit_ms");
        // Guest time under icount: the kernel reaches /init in well under
        // 5 s of guest time on both boards, and hello runs after it.
        assert!(init > 0.0 && init < 5000.0, "{r}");
        assert!(exit >= init, "{r}");
    }
    assert_eq!(ran.each("board"), ["virt-a53", "raspi3b", "raspi3ap"]);
}

#[test]
fn a_scenarios_env_reaches_the_guest_program() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = ScenarioYaml::image("virt-a53", "raspi/busybox")
        .with("clock: virtual")
        .with("timeout: 60s")
        .with("args: [lab.run=/bin/hello]")
        .with("env: {LAB_GREETING: hi-from-the-lab}")
        .step("boot: {}")
        .step("wait-serial: {match: 'greeting: hi-from-the-lab', timeout: 40s}")
        .step("expect-exit: {code: 0, timeout: 20s}")
        .run(dir.path(), "env.yaml");
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["status"], "passed");
}

#[test]
fn an_env_value_that_cannot_travel_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = ScenarioYaml::image("virt-a53", "raspi/busybox")
        .with("env: {GREETING: two words}")
        .step("boot: {}")
        .write(dir.path(), "bad-env.yaml");
    let stderr = refused_by_check(&file);
    assert!(
        stderr.contains("`env` entry `GREETING=two words` cannot travel on a kernel command line"),
        "{stderr}"
    );
}
