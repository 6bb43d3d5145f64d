//! Linux on the Raspberry Pi class boards: the busybox image built from
//! Debian arm64 packages boots on QEMU's virt (Cortex-A53) and raspi3b
//! machines, runs a program from init and powers off.

mod common;

use common::{report, run, text};

#[test]
fn the_busybox_image_build_is_cached_on_the_second_run() {
    let build = || run(&["images", "build", "raspi/busybox", "--board", "virt-a53"]);
    let first = build();
    assert!(first.status.success(), "{}", text(&first));
    let second = build();
    assert!(second.status.success(), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.starts_with("cached raspi/busybox@virt-a53"),
        "{stdout}"
    );
    let out = common::repo().join("build/images/virt-a53/raspi/busybox");
    for file in [
        "Image",
        "initrd.cpio.gz",
        "dtbs/broadcom/bcm2837-rpi-3-b.dtb",
    ] {
        assert!(out.join(file).is_file(), "{file} is built");
    }
}

#[test]
fn linux_boots_runs_hello_and_powers_off_on_virt_and_raspi3b() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let scenario = common::repo().join("scenarios/raspi/boot.yaml");
    let out = run(&[
        "run",
        scenario.to_str().unwrap(),
        "-j",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = report(&json);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "virt and raspi3b");
    for r in results {
        assert_eq!(r["status"], "passed", "{r}");
        let steps: Vec<&str> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "boot",
                "wait-serial",
                "wait-serial",
                "wait-serial",
                "expect-exit"
            ]
        );
        let init = r["metrics"]["init_ms"].as_f64().unwrap();
        let exit = r["metrics"]["exit_ms"].as_f64().unwrap();
        // Guest time under icount: the kernel reaches /init in well under
        // 5 s of guest time on both boards, and hello runs after it.
        assert!(init > 0.0 && init < 5000.0, "{r}");
        assert!(exit >= init, "{r}");
        // The whole boot, wall time, stays well inside the test's patience.
        assert!(r["duration_ms"].as_f64().unwrap() < 15_000.0, "{r}");
    }
    let boards: Vec<&str> = results
        .iter()
        .map(|r| r["board"].as_str().unwrap())
        .collect();
    assert_eq!(boards, ["virt-a53", "raspi3b"]);
}

#[test]
fn a_scenarios_env_reaches_the_guest_program() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let file = common::scenario(
        dir.path(),
        "env.yaml",
        "version: 1\nboard: virt-a53\nimage: raspi/busybox\nclock: virtual\ntimeout: 60s\n\
         args: [lab.run=/bin/hello]\nenv: {LAB_GREETING: hi-from-the-lab}\nsteps:\n  - boot: {}\n  \
         - wait-serial: {match: 'greeting: hi-from-the-lab', timeout: 40s}\n  - expect-exit: {code: 0, timeout: 20s}\n",
    );
    let out = run(&[
        "run",
        file.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report(&json)["results"][0]["status"], "passed");
}

#[test]
fn an_env_value_that_cannot_travel_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = common::scenario(
        dir.path(),
        "bad-env.yaml",
        "version: 1\nboard: virt-a53\nimage: raspi/busybox\nenv: {GREETING: two words}\nsteps:\n  - boot: {}\n",
    );
    let out = run(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`env` entry `GREETING=two words` cannot travel on a kernel command line"),
        "{stderr}"
    );
}
