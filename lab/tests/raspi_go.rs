//! A static Go program on the Raspberry Pi class Linux image: the
//! go-cold-start image (Go 1.23, CGO_ENABLED=0) boots on QEMU's virt board,
//! init runs /bin/app, and the time to main (the Go runtime's start-up
//! included) and the GC counters come back as metrics. The go image's
//! footprint experiment starts warm from its held snapshot.

mod common;

use common::{built_and_cached, lab_run, lab_run_with, metric, repo, scenario, step_names};

#[test]
fn the_go_image_is_a_static_arm64_binary_in_the_initramfs_and_is_cached() {
    let out = built_and_cached("raspi/go-cold-start", "virt-a53");
    for file in ["Image", "initrd.cpio.gz", "app"] {
        assert!(out.join(file).is_file(), "{file} is built");
    }
    let app = std::fs::read(out.join("app")).unwrap();
    // ELF, 64-bit, little-endian, e_machine = EM_AARCH64 (183).
    assert_eq!(&app[..6], b"\x7fELF\x02\x01");
    assert_eq!(u16::from_le_bytes([app[18], app[19]]), 183);
    // Statically linked: no PT_INTERP program header.
    let phoff = u64::from_le_bytes(app[32..40].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes([app[54], app[55]]) as usize;
    let phnum = u16::from_le_bytes([app[56], app[57]]) as usize;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = u32::from_le_bytes(app[at..at + 4].try_into().unwrap());
        assert_ne!(kind, 3, "the Go program has no interpreter (PT_INTERP)");
    }
    // Stripped (-s -w): well under the ~2 MB of an unstripped build.
    assert!(app.len() < 1_900_000, "{} bytes", app.len());
}

#[test]
fn the_go_program_starts_allocates_and_exits_zero_on_virt() {
    let dir = tempfile::tempdir().unwrap();
    // The checked-in scenario with its matrix replaced by the virt board
    // (`lab run` has no variant filter; raspi3b runs the same program).
    let yaml = std::fs::read_to_string(repo().join("scenarios/raspi/go-cold-start.yaml")).unwrap();
    let matrix =
        "matrix:\n  - {name: virt, board: virt-a53}\n  - {name: raspi3b, board: raspi3b}\n";
    assert!(
        yaml.contains(matrix),
        "the scenario's matrix is as expected"
    );
    let file = scenario(
        dir.path(),
        "go-virt.yaml",
        &yaml.replace(matrix, "board: virt-a53\n"),
    );
    let ran = lab_run(dir.path(), &file, &[]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.results().len(), 1, "virt only");
    let r = ran.first();
    assert_eq!(r["status"], "passed", "{r}");
    assert_eq!(r["board"], "virt-a53", "{r}");
    for name in [
        "init_ms",
        "go_ready_us",
        "gc_count",
        "heap_alloc",
        "go_done_us",
        "exit_ms",
    ] {
        assert!(metric(r, name) > 0.0, "{name} is positive: {r}");
    }
    // Guest time: main runs before the allocation work ends, and the Go
    // program finishes before init reports its exit.
    assert!(metric(r, "go_done_us") > metric(r, "go_ready_us"), "{r}");
    assert!(metric(r, "exit_ms") >= metric(r, "init_ms"), "{r}");
    assert!(
        metric(r, "exit_ms") - metric(r, "init_ms") >= metric(r, "go_done_us") / 1000.0 - 10.0,
        "{r}"
    );
}

#[test]
fn the_footprint_experiment_restores_its_held_warm_up_and_passes_on_virt() {
    let dir = tempfile::tempdir().unwrap();
    // The checked-in experiment with only its Go arm64 variant on virt, run
    // twice: the first run boots, waits at the held ready line (LAB_HOLD=1),
    // saves and restores; the second restores the same snapshot.
    let yaml = std::fs::read_to_string(repo().join("scenarios/raspi/footprint.yaml")).unwrap();
    assert!(
        yaml.contains("warm-up:") && yaml.contains("LAB_HOLD"),
        "{yaml}"
    );
    let go_virt: String = yaml
        .lines()
        .filter(|line| !line.contains("{name: ") || line.contains("{name: go-virt,"))
        .map(|line| match line {
            "version: 1" => "version: 1\nruns: 2\n".to_owned(),
            _ => format!("{line}\n"),
        })
        .collect();
    let file = scenario(dir.path(), "footprint-go-virt.yaml", &go_virt);
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.path().join("snapshots"));
    // One at a time, in plan order: the first run is the one that saves.
    let ran = lab_run_with(&mut lab, dir.path(), &file, &["-j", "1"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("variant"), ["go-virt", "go-virt"]);
    assert_eq!(ran.each("start"), ["cold", "warm"], "{ran}");
    let (first, second) = (&ran.results()[0], &ran.results()[1]);
    for r in [first, second] {
        assert_eq!(r["status"], "passed", "{r}");
        assert!(metric(r, "rss_kb") > 0.0, "{r}");
    }
    // The cold run boots and waits for the ready line before its warm-up
    // step; the warm one starts at it.
    assert_eq!(
        step_names(first)[..3],
        ["boot", "wait-serial", "warm-up"],
        "{first}"
    );
    assert_eq!(
        step_names(second)[..2],
        ["warm-up", "send-serial"],
        "{second}"
    );
    assert_eq!(first["snapshot"], second["snapshot"]);
    assert!(
        second["snapshot"]
            .as_str()
            .unwrap()
            .starts_with(dir.path().join("snapshots").to_str().unwrap()),
        "{second}"
    );
    // Both runs start from the same saved instant, and the program measured
    // before it waited: the same figures under clock: virtual.
    assert_eq!(first["metrics"], second["metrics"]);
}

#[test]
fn the_escaping_parser_allocates_on_every_parse_and_the_build_says_why_on_virt() {
    // The build's -gcflags='-m -m' verdict, as the image ships it.
    let out = common::built_image_dir("raspi/go", "virt-a53");
    let summary = std::fs::read_to_string(out.join("escape-analysis.txt")).unwrap();
    assert!(
        summary.contains("func=parseSensorPtr heap=1: ")
            && summary.contains("&Reading{} escapes to heap"),
        "{summary}"
    );
    assert!(
        summary.contains("func=parseSensorValue heap=0: ")
            && summary.contains("&Reading{} does not escape"),
        "{summary}"
    );
    // The checked-in experiment on virt only (raspi3b runs the same program).
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/raspi/escape-analysis.yaml");
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.path().join("snapshots"));
    let ran = lab_run_with(
        &mut lab,
        dir.path(),
        &file,
        &["--board", "virt-a53", "-j", "1"],
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("variant"), ["pointer-virt", "value-virt"]);
    let (pointer, value) = (&ran.results()[0], &ran.results()[1]);
    // The program printed its function's verdict from the build.
    assert_eq!(metric(pointer, "result_on_heap"), 1.0, "{pointer}");
    assert_eq!(metric(value, "result_on_heap"), 0.0, "{value}");
    // One heap allocation per parse against none (the GC's own aside).
    assert!(metric(pointer, "mallocs") >= 200_000.0, "{pointer}");
    assert!(
        metric(pointer, "mallocs_per_s") > 100.0 * metric(value, "mallocs_per_s").max(1.0),
        "{pointer}\n{value}"
    );
    assert!(metric(value, "ns_per_parse") > 0.0, "{value}");
}
