//! A static Go program on the Raspberry Pi class Linux image: the
//! go-cold-start image (Go 1.23, CGO_ENABLED=0) boots on QEMU's virt board,
//! init runs /bin/app, and the time to main (the Go runtime's start-up
//! included) and the GC counters come back as metrics.

mod common;

use common::{built_and_cached, lab_run, metric, repo, scenario};

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
