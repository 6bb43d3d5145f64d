//! Loading scenario files: the model valid files produce, and the messages
//! invalid files get (pinned by snapshots in `snapshots/`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::scenario::{
    self, At, Clock, CodeLocation, CrashKind, DataLocation, ErrorKind, FaultKind, GcFormat,
    ImageRef, Loc, Scenario, ScenarioError, SleepClock, Step, TargetChoice,
};

const VALID: &str = "tests/fixtures/scenarios/valid";
const INVALID: &str = "tests/fixtures/scenarios/invalid";

fn load_valid(name: &str) -> Scenario {
    let path = Path::new(VALID).join(name);
    scenario::load(&path).unwrap_or_else(|error| panic!("{error}"))
}

fn load_invalid(name: &str) -> ScenarioError {
    let path = Path::new(INVALID).join(name);
    match scenario::load(&path) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(error) => error,
    }
}

fn loc(line: u32, column: u32) -> Loc {
    Loc { line, column }
}

fn named(name: &str) -> ImageRef {
    ImageRef::Named(name.to_owned())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn loads_every_key() {
    let s = load_valid("full.yaml");
    assert_eq!(s.file, Path::new(VALID).join("full.yaml"));
    assert_eq!(s.name, "hello-cortex-m");
    assert_eq!(
        s.board,
        Some(At {
            value: "mps2-an385".to_owned(),
            loc: loc(4, 8)
        })
    );
    assert_eq!(
        s.image,
        Some(At {
            value: named("cortex-m/hello"),
            loc: loc(5, 8)
        })
    );
    assert_eq!(s.target, TargetChoice::Qemu);
    assert_eq!(s.clock, Clock::Virtual);
    assert_eq!(s.timeout, Duration::from_secs(120));
    assert_eq!(s.runs, 3);
    assert_eq!(s.env, env(&[("COUNT", "10"), ("RUST_LOG", "debug")]));
    assert_eq!(s.args, strings(&["--fast", "two words"]));

    let [m3, m7] = s.matrix.as_slice() else {
        panic!("expected two variants, got {:?}", s.matrix);
    };
    assert_eq!(m3.name, "m3");
    assert_eq!(
        m3.board.as_ref().map(|b| b.value.as_str()),
        Some("mps2-an385")
    );
    assert_eq!(m3.image, None);
    assert!(m3.env.is_empty());
    assert_eq!(m3.args, None);
    assert_eq!(m7.name, "m7");
    assert_eq!(
        m7.board.as_ref().map(|b| b.value.as_str()),
        Some("mps2-an500")
    );
    assert_eq!(
        m7.image.as_ref().map(|i| &i.value),
        Some(&ImageRef::Elf(Path::new(VALID).join("build/m7.elf")))
    );
    assert_eq!(m7.env, env(&[("COUNT", "20")]));
    assert_eq!(m7.args, Some(strings(&["--slow"])));

    let steps: Vec<(&str, Loc)> = s.steps.iter().map(|s| (s.value.key(), s.loc)).collect();
    assert_eq!(
        steps,
        [
            ("boot", loc(22, 5)),
            ("wait-serial", loc(23, 5)),
            ("send-serial", loc(24, 5)),
            ("wait-serial", loc(25, 5)),
            ("expect-exit", loc(27, 5)),
        ]
    );
    let Step::Boot(boot) = &s.steps[0].value else {
        panic!("step 1 is not boot");
    };
    assert!(boot.halted);
    let Step::WaitSerial(wait) = &s.steps[1].value else {
        panic!("step 2 is not wait-serial");
    };
    assert_eq!(wait.pattern.as_str(), r"READY t=(?P<t_ms>\d+)");
    let caps = wait
        .pattern
        .captures(b"READY t=42")
        .expect("pattern matches");
    assert_eq!(&caps["t_ms"], b"42");
    assert_eq!(wait.timeout, Some(Duration::from_secs(5)));
    let Step::SendSerial(text) = &s.steps[2].value else {
        panic!("step 3 is not send-serial");
    };
    assert_eq!(text.0, "ping\n");
    let Step::WaitSerial(wait) = &s.steps[3].value else {
        panic!("step 4 is not wait-serial");
    };
    assert_eq!(wait.pattern.as_str(), "pong");
    assert_eq!(wait.timeout, None);
    let Step::ExpectExit(exit) = &s.steps[4].value else {
        panic!("step 5 is not expect-exit");
    };
    assert_eq!(exit.code, Some(0));
    assert_eq!(exit.timeout, Some(Duration::from_millis(250)));
}

#[test]
fn applies_defaults() {
    let s = load_valid("minimal.yaml");
    assert_eq!(s.name, "minimal");
    assert_eq!(s.target, TargetChoice::Auto);
    assert_eq!(s.clock, Clock::Wall);
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(s.timeout, scenario::DEFAULT_TIMEOUT);
    assert_eq!(s.runs, 1);
    assert!(s.env.is_empty());
    assert!(s.args.is_empty());
    assert!(s.matrix.is_empty());
    let Step::Boot(boot) = &s.steps[0].value else {
        panic!("step 1 is not boot");
    };
    assert!(!boot.halted);
    let Step::ExpectExit(exit) = &s.steps[1].value else {
        panic!("step 2 is not expect-exit");
    };
    assert_eq!((exit.code, exit.timeout), (None, None));
}

#[test]
fn resolves_elf_path_against_the_scenario_folder() {
    let s = load_valid("elf.yaml");
    assert_eq!(
        s.image,
        Some(At {
            value: ImageRef::Elf(Path::new(VALID).join("../firmware/hello.elf")),
            loc: loc(3, 8),
        })
    );
}

#[test]
fn loads_linux_images_with_relative_and_absolute_paths() {
    let s = load_valid("linux/pi.yml");
    let folder = Path::new(VALID).join("linux");
    assert_eq!(s.name, "node-cold-start");
    assert_eq!(
        s.image.map(|i| i.value),
        Some(ImageRef::Linux {
            kernel: folder.join("images/kernel8.img"),
            dtb: Some(folder.join("images/bcm2710-rpi-3-b.dtb")),
            initrd: Some(PathBuf::from("/srv/images/initramfs.cpio.gz")),
        })
    );
    assert_eq!(s.matrix[0].image, None);
    assert_eq!(
        s.matrix[1].image.as_ref().map(|i| &i.value),
        Some(&ImageRef::Linux {
            kernel: folder.join("other/Image"),
            dtb: None,
            initrd: None,
        })
    );
    let Step::WaitSerial(wait) = &s.steps[1].value else {
        panic!("step 2 is not wait-serial");
    };
    assert_eq!(wait.timeout, Some(Duration::from_secs(90)));
}

#[test]
fn variants_may_give_board_and_image_instead_of_the_top_level() {
    let s = load_valid("matrix-only.yaml");
    assert_eq!((s.board, s.image), (None, None));
    let boards: Vec<&str> = s
        .matrix
        .iter()
        .filter_map(|v| v.board.as_ref().map(|b| b.value.as_str()))
        .collect();
    assert_eq!(boards, ["mps2-an385", "mps2-an500"]);
    assert_eq!(
        s.matrix[1].image,
        Some(At {
            value: named("cortex-m/hello-m7"),
            loc: loc(5, 42),
        })
    );
}

#[test]
fn load_str_names_the_scenario_and_resolves_paths_from_the_given_file() {
    let text = "version: 1\nboard: b\nimage: {elf: fw.elf}\nsteps:\n  - send-serial: hi\n";
    let s = scenario::load_str(Path::new("exp/blink.yaml"), text).expect("loads");
    assert_eq!(s.name, "blink");
    assert_eq!(s.file, Path::new("exp/blink.yaml"));
    assert_eq!(
        s.image.map(|i| i.value),
        Some(ImageRef::Elf(PathBuf::from("exp/fw.elf")))
    );

    let s = scenario::load_str(Path::new("blink.yaml"), text).expect("loads");
    assert_eq!(
        s.image.map(|i| i.value),
        Some(ImageRef::Elf(PathBuf::from("fw.elf")))
    );
}

fn symbol(name: &str) -> CodeLocation {
    CodeLocation::Symbol(name.to_owned())
}

/// Debug output of a step: the model types have no `PartialEq` for all steps.
fn debug(step: &Step) -> String {
    format!("{step:?}")
}

#[test]
fn loads_expect_fault() {
    let s = load_valid("faults.yaml");
    let Step::ExpectFault(first) = &s.steps[1].value else {
        panic!("expect-fault")
    };
    assert_eq!(first.kind, FaultKind::HardFault);
    assert_eq!(first.cause.as_deref(), Some("UNDEFINSTR"));
    assert_eq!(first.function.as_deref(), Some("fault_undef"));
    assert_eq!(first.timeout, Some(Duration::from_secs(5)));
    let Step::ExpectFault(second) = &s.steps[2].value else {
        panic!("expect-fault")
    };
    assert_eq!(second.kind, FaultKind::Lockup);
    assert_eq!((second.cause.as_ref(), second.timeout), (None, None));
}

#[test]
fn loads_runtime_steps() {
    let s = load_valid("runtime-steps.yaml");
    let Step::GcTrace(go) = &s.steps[1].value else {
        panic!("gc-trace")
    };
    assert_eq!(go.format, GcFormat::Go);
    assert_eq!(go.until.as_str(), r"GO done .* t_us=(?P<run_us>\d+)");
    assert_eq!(go.timeout, Some(Duration::from_secs(30)));
    let Step::GcTrace(v8) = &s.steps[2].value else {
        panic!("gc-trace")
    };
    assert_eq!((v8.format, v8.timeout), (GcFormat::V8, None));
    assert_eq!(s.steps[2].value.key(), "gc-trace");
    let Step::ExpectCrash(crash) = &s.steps[3].value else {
        panic!("expect-crash")
    };
    assert_eq!(crash.kind, Some(CrashKind::GoPanic));
    assert_eq!(
        crash.restart.as_ref().map(|r| r.as_str()),
        Some("APP ready")
    );
    assert_eq!(crash.timeout, Some(Duration::from_secs(30)));
    let Step::ExpectCrash(any) = &s.steps[4].value else {
        panic!("expect-crash")
    };
    assert_eq!(
        (any.kind, any.restart.is_none(), any.timeout),
        (None, true, None)
    );
}

#[test]
fn loads_debugger_steps_in_every_form() {
    let s = load_valid("debugger.yaml");
    let keys: Vec<(&str, u32)> = s
        .steps
        .iter()
        .map(|s| (s.value.key(), s.loc.line))
        .collect();
    assert_eq!(keys.len(), 27);
    assert_eq!(keys[1], ("attach-debugger", 6));
    assert_eq!(keys[26], ("detach", 34));
    let step = |n: usize| &s.steps[n].value;

    let attach: Vec<_> = [step(1), step(2)]
        .into_iter()
        .map(|step| match step {
            Step::AttachDebugger(a) => a.timeout,
            other => panic!("not attach-debugger: {other:?}"),
        })
        .collect();
    assert_eq!(attach, [None, Some(Duration::from_secs(5))]);

    let breaks: Vec<(CodeLocation, bool)> = (3..=7)
        .map(|n| match step(n) {
            Step::Break(b) => (b.at.clone(), b.hardware),
            other => panic!("not break: {other:?}"),
        })
        .collect();
    assert_eq!(
        breaks,
        [
            (symbol("main"), false),
            (
                CodeLocation::Line {
                    file: "main.c".to_owned(),
                    line: 42
                },
                true
            ),
            (CodeLocation::Address(0x1a4), false),
            (CodeLocation::Address(0x0800_0400), false),
            (CodeLocation::Address(420), false),
        ]
    );

    let continues: Vec<_> = (8..=10)
        .map(|n| match step(n) {
            Step::Continue(c) => (c.timeout, c.stop_at.clone()),
            other => panic!("not continue: {other:?}"),
        })
        .collect();
    assert_eq!(
        continues,
        [
            (None, None),
            (Some(Duration::from_secs(5)), Some(symbol("work"))),
            (
                None,
                Some(CodeLocation::Line {
                    file: "src/main.c".to_owned(),
                    line: 7
                })
            ),
        ]
    );

    let counts: Vec<u32> = (11..=12)
        .map(|n| match step(n) {
            Step::Step(s) => s.count,
            other => panic!("not step: {other:?}"),
        })
        .collect();
    assert_eq!(counts, [1, 10]);

    let registers: Vec<_> = (13..=15)
        .map(|n| match step(n) {
            Step::ReadRegister(r) => (r.name.as_str(), r.metric.as_deref(), r.expect),
            other => panic!("not read-register: {other:?}"),
        })
        .collect();
    assert_eq!(
        registers,
        [
            ("pc", None, None),
            ("r0", Some("r0_value"), Some(0x2a)),
            ("xpsr", None, Some(0x0100_0000)),
        ]
    );

    let reads: Vec<_> = (16..=18)
        .map(|n| match step(n) {
            Step::ReadMemory(r) => (r.address.clone(), r.length, r.expect.clone()),
            other => panic!("not read-memory: {other:?}"),
        })
        .collect();
    assert_eq!(
        reads,
        [
            (DataLocation::Address(0x2000_0000), 16, None),
            (DataLocation::Address(0x2000_0010), 2, None),
            (
                DataLocation::Symbol("lab_counter".to_owned()),
                4,
                Some(vec![0x2a, 0, 0, 255])
            ),
        ]
    );

    let symbols: Vec<_> = (19..=21)
        .map(|n| match step(n) {
            Step::ReadSymbol(r) => (r.name.as_str(), r.metric.as_deref(), r.expect),
            other => panic!("not read-symbol: {other:?}"),
        })
        .collect();
    assert_eq!(
        symbols,
        [
            ("lab_exit_code", None, None),
            ("lab_counter", Some("counter"), Some(42.0)),
            ("lab.temp$1", None, Some(-1.5)),
        ]
    );

    let writes: Vec<_> = (22..=23)
        .map(|n| match step(n) {
            Step::WriteMemory(w) => (w.address.clone(), w.bytes.clone()),
            other => panic!("not write-memory: {other:?}"),
        })
        .collect();
    assert_eq!(
        writes,
        [
            (DataLocation::Address(0x2000_0000), vec![1, 2, 3]),
            (DataLocation::Symbol("lab_buffer".to_owned()), vec![255]),
        ]
    );

    let symbol_writes: Vec<_> = (24..=25)
        .map(|n| match step(n) {
            Step::WriteSymbol(w) => (w.name.as_str(), w.value),
            other => panic!("not write-symbol: {other:?}"),
        })
        .collect();
    assert_eq!(
        symbol_writes,
        [("lab_exit_code", 42.0), ("lab_ratio", 0.25)]
    );
    assert_eq!(debug(step(26)), "Detach(Detach)");
}

#[test]
fn every_valid_fixture_loads() {
    let files = scenario::discover(&[PathBuf::from(VALID)]).expect("discovers");
    assert_eq!(files.len(), 8);
    for file in files {
        if let Err(error) = scenario::load(&file) {
            panic!("{error}");
        }
    }
}

#[test]
fn discover_expands_folders_recursively_and_sorted() {
    let files = scenario::discover(&[
        PathBuf::from(INVALID).join("runs-zero.yaml"),
        PathBuf::from(VALID),
    ])
    .expect("discovers");
    let valid = Path::new(VALID);
    assert_eq!(
        files,
        [
            Path::new(INVALID).join("runs-zero.yaml"),
            valid.join("debugger.yaml"),
            valid.join("elf.yaml"),
            valid.join("faults.yaml"),
            valid.join("full.yaml"),
            valid.join("linux/pi.yml"),
            valid.join("matrix-only.yaml"),
            valid.join("minimal.yaml"),
            valid.join("runtime-steps.yaml"),
        ]
    );
}

#[test]
fn discover_names_a_missing_path() {
    let error = scenario::discover(&[PathBuf::from(VALID), PathBuf::from("no/such/dir")])
        .expect_err("a missing path is an error");
    assert_eq!(error.file(), Path::new("no/such/dir"));
    assert_eq!(error.location(), None);
    insta::assert_snapshot!(error.to_string(), @"no/such/dir: no such file or folder");
}

#[test]
fn loading_a_missing_file_names_it() {
    let error = load_invalid("does-not-exist.yaml");
    assert!(matches!(error.kind(), ErrorKind::Read(_)));
    insta::assert_snapshot!(error.to_string(), @"tests/fixtures/scenarios/invalid/does-not-exist.yaml: cannot read: No such file or directory (os error 2)");
}

#[test]
fn refuses_files_over_one_mebibyte() {
    let mut text = String::from("version: 1\nboard: b\nimage: i\nsteps:\n");
    while text.len() <= 1024 * 1024 {
        text.push_str("  - boot: {}\n");
    }
    let error = scenario::load_str(Path::new("huge.yaml"), &text).expect_err("too large");
    insta::assert_snapshot!(error.to_string(), @"huge.yaml: the file is 1048577 bytes, more than the 1048576 bytes a scenario may have");

    let dir = std::env::temp_dir().join(format!("lab-scenario-test-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("huge.yaml");
    fs::write(&path, &text).expect("write");
    let error = scenario::load(&path).expect_err("too large");
    assert!(matches!(error.kind(), ErrorKind::TooLarge { .. }));
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Tests that load `invalid/NAME.yaml` and snapshot the rendered error,
/// and the list of those names (to check every fixture has its test).
macro_rules! invalid {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                let error = load_invalid(concat!($file, ".yaml"));
                assert!(error.location().is_some(), "no position in: {error}");
                insta::assert_snapshot!(stringify!($test), error.to_string());
            }
        )*
        const INVALID_FIXTURES: &[&str] = &[$($file),*];
    };
}

invalid! {
    syntax_error => "syntax-error",
    multiple_documents => "multiple-documents",
    not_utf8 => "not-utf8",
    empty_file => "empty-file",
    not_a_map => "not-a-map",
    unknown_key => "unknown-key",
    unknown_key_with_a_newline => "unknown-key-newline",
    unknown_key_in_step => "unknown-key-in-step",
    unknown_key_in_variant => "unknown-key-in-variant",
    unknown_key_in_image => "unknown-key-in-image",
    unknown_target => "unknown-target",
    unknown_step => "unknown-step",
    unknown_step_far_from_any => "unknown-step-far",
    bare_step => "bare-step",
    step_no_key => "step-no-key",
    step_two_keys => "step-two-keys",
    step_option_outside_its_map => "step-option-outside",
    wrong_type_bool => "wrong-type-bool",
    wrong_type_steps => "wrong-type-steps",
    wrong_type_image => "wrong-type-image",
    wrong_type_image_number => "wrong-type-image-number",
    wrong_type_step => "wrong-type-step",
    wrong_type_args => "wrong-type-args",
    wrong_type_code => "wrong-type-code",
    null_env_value => "null-env-value",
    unsupported_tag => "unsupported-tag",
    duplicate_key => "duplicate-key",
    missing_version => "missing-version",
    missing_steps => "missing-steps",
    missing_match => "missing-match",
    missing_variant_name => "missing-variant-name",
    missing_board => "missing-board",
    missing_board_in_variant => "missing-board-in-variant",
    missing_image_in_variant => "missing-image-in-variant",
    missing_kernel => "missing-kernel",
    elf_and_kernel => "elf-and-kernel",
    empty_image_map => "empty-image-map",
    duration_without_unit => "duration-without-unit",
    duration_bad_unit => "duration-bad-unit",
    duration_zero => "duration-zero",
    bad_regex => "bad-regex",
    bad_regex_group_name => "bad-regex-group",
    version_2 => "version-2",
    version_text => "version-text",
    empty_steps => "empty-steps",
    duplicate_variant => "duplicate-variant",
    empty_variant_name => "empty-variant-name",
    runs_zero => "runs-zero",
    runs_negative => "runs-negative",
    // Planning four billion jobs ran out of memory.
    runs_too_many => "runs-too-many",
    runs_too_many_for_matrix => "runs-too-many-for-matrix",
    billion_laughs => "billion-laughs",
    deep_nesting => "deep-nesting",
    debugger_bare_step => "debugger-bare-step",
    break_unknown_key => "break-unknown-key",
    detach_unknown_key => "detach-unknown-key",
    detach_not_a_map => "detach-not-a-map",
    break_wrong_type_hardware => "break-wrong-type-hardware",
    read_memory_unknown_key => "read-memory-unknown-key",
    read_memory_wrong_type_length => "read-memory-wrong-type-length",
    read_memory_wrong_type_expect => "read-memory-wrong-type-expect",
    write_symbol_wrong_type_value => "write-symbol-wrong-type-value",
    read_register_wrong_type => "read-register-wrong-type",
    step_count_zero => "step-count-zero",
    read_memory_length_zero => "read-memory-length-zero",
    read_memory_length_too_large => "read-memory-length-too-large",
    read_memory_expect_length => "read-memory-expect-length",
    write_memory_byte_too_large => "write-memory-byte-too-large",
    write_memory_empty_bytes => "write-memory-empty-bytes",
    break_line_zero => "break-line-zero",
    break_bad_location => "break-bad-location",
    break_bad_hex => "break-bad-hex",
    break_address_too_large => "break-address-too-large",
    continue_negative_stop_at => "continue-negative-stop-at",
    read_memory_bad_address => "read-memory-bad-address",
    break_missing_at => "break-missing-at",
    read_memory_missing_length => "read-memory-missing-length",
    write_symbol_missing_name => "write-symbol-missing-name",
    read_register_bad_name => "read-register-bad-name",
    read_register_negative_expect => "read-register-negative-expect",
    read_symbol_bad_metric => "read-symbol-bad-metric",
    read_symbol_bad_name => "read-symbol-bad-name",
    expect_fault_unknown_cause => "expect-fault-unknown-cause",
    expect_fault_unknown_kind => "expect-fault-unknown-kind",
    expect_fault_missing_kind => "expect-fault-missing-kind",
    trend_without_groups => "trend-without-groups",
    trend_bad_direction => "trend-bad-direction",
    gc_trace_unknown_format => "gc-trace-unknown-format",
    gc_trace_missing_until => "gc-trace-missing-until",
    gc_trace_missing_format => "gc-trace-missing-format",
    gc_trace_bad_regex => "gc-trace-bad-regex",
    expect_crash_unknown_kind => "expect-crash-unknown-kind",
    expect_crash_bad_restart => "expect-crash-bad-restart",
    expect_crash_unknown_key => "expect-crash-unknown-key",
    serial_load_rate_zero => "serial-load-rate-zero",
    // Found by the loader fuzzer: the sending time overflowed a Duration (a panic).
    serial_load_rate_tiny => "serial-load-rate-tiny",
    serial_load_rate_text => "serial-load-rate-text",
    serial_load_count_zero => "serial-load-count-zero",
    serial_load_missing_reply => "serial-load-missing-reply",
    serial_load_reply_without_seq => "serial-load-reply-without-seq",
    serial_load_send_without_seq => "serial-load-send-without-seq",
    serial_load_timeout_too_short => "serial-load-timeout-too-short",
    serial_load_bad_regex => "serial-load-bad-regex",
    // A thousand such patterns took `lab check` minutes and gigabytes.
    patterns_too_large => "patterns-too-large",
}

#[test]
fn every_invalid_fixture_has_a_test() {
    let mut on_disk: Vec<String> = fs::read_dir(INVALID)
        .expect("fixtures")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let stem = path.file_stem().expect("stem").to_string_lossy();
            stem.into_owned()
        })
        .collect();
    on_disk.sort();
    let mut tested: Vec<&str> = INVALID_FIXTURES.to_vec();
    tested.sort_unstable();
    assert_eq!(on_disk, tested);
}

#[test]
fn messages_are_one_line_plus_an_optional_hint() {
    for file in INVALID_FIXTURES {
        let message = load_invalid(&format!("{file}.yaml")).to_string();
        let lines: Vec<&str> = message.lines().collect();
        assert!(
            lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("  hint: ")),
            "{message}"
        );
        assert!(
            lines[0].starts_with(&format!("{INVALID}/{file}.yaml:")),
            "{message}"
        );
    }
}

/// Checking a script costs its compile, not the making of an engine: made
/// for every check, engines took `lab check` 6 ms a script, seconds over a
/// file of a thousand `script:` steps. Found by the loader fuzzer.
#[test]
fn a_thousand_script_steps_load_in_moments() {
    let step = "  - script: {source: \"wait_serial(\\\"READY\\\", \\\"5s\\\"); send_serial(\\\"x\\\");\"}\n";
    let text = format!(
        "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {{}}\n{}",
        step.repeat(1000)
    );
    let started = std::time::Instant::now();
    let scenario = scenario::load_str(Path::new("many-scripts.yaml"), &text).unwrap();
    let took = started.elapsed();
    assert_eq!(scenario.steps.len(), 1001);
    // Some 12 s in a debug build before, 0.3 s after.
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// A scenario whose only steps are `steps`, for inline tests.
fn with_steps(steps: &str) -> Result<Scenario, ScenarioError> {
    let text = format!("version: 1\nboard: mps2-an385\nimage: cortex-m/echo\nsteps:\n{steps}");
    scenario::load_str(Path::new("inline.yaml"), &text)
}

#[test]
fn loads_sleep_in_wall_and_guest_time() {
    let s = with_steps(
        "  - boot: {}\n  - sleep: 250ms\n  - sleep: {wall: 2s}\n  - sleep: {guest: 5ms}\n",
    )
    .expect("loads");
    let sleeps: Vec<_> = s.steps[1..]
        .iter()
        .map(|step| match &step.value {
            Step::Sleep(sleep) => (sleep.duration, sleep.clock),
            other => panic!("not sleep: {other:?}"),
        })
        .collect();
    assert_eq!(
        sleeps,
        [
            (Duration::from_millis(250), SleepClock::Wall),
            (Duration::from_secs(2), SleepClock::Wall),
            (Duration::from_millis(5), SleepClock::Guest),
        ]
    );
}

#[test]
fn refuses_sleep_without_a_duration_at_its_place() {
    let cases = [
        (
            "  - sleep: 5\n",
            "inline.yaml:6:12: expected a duration with a unit, like `500ms`, found integer `5`",
        ),
        (
            "  - sleep: 5 parsecs\n",
            "inline.yaml:6:12: invalid duration `5 parsecs`",
        ),
        (
            "  - sleep: {}\n",
            "inline.yaml:6:12: `sleep` takes exactly one of `wall` and `guest`",
        ),
        (
            "  - sleep: {wall: 1s, guest: 1s}\n",
            "inline.yaml:6:12: `sleep` takes exactly one of `wall` and `guest`",
        ),
        (
            "  - sleep: {cpu: 1s}\n",
            "inline.yaml:6:13: unknown key `cpu`",
        ),
        (
            "  - sleep\n",
            "inline.yaml:6:5: step `sleep` must be a map with one key\n  hint: write `- sleep: 500ms`",
        ),
    ];
    for (step, expected) in cases {
        let error = with_steps(&format!("  - boot: {{}}\n{step}")).expect_err(step);
        assert!(error.to_string().starts_with(expected), "{step}: {error}");
    }
}

#[test]
fn record_and_the_reverse_steps_load_with_their_positions() {
    let text = "version: 1\nboard: mps2-an385\nimage: cortex-m/fault\nclock: virtual\n\
                record: failed\nsteps:\n  - reverse-step: {count: 3}\n  - reverse-continue: {timeout: 2s}\n";
    let s = scenario::load_str(Path::new("rr.yaml"), text).expect("loads");
    assert_eq!(
        s.record,
        Some(At {
            value: scenario::RecordMode::Failed,
            loc: loc(5, 9)
        })
    );
    let Step::ReverseStep(back) = &s.steps[0].value else {
        panic!("{:?}", s.steps[0]);
    };
    assert_eq!(back.count, 3);
    let Step::ReverseContinue(back) = &s.steps[1].value else {
        panic!("{:?}", s.steps[1]);
    };
    assert_eq!(back.timeout, Some(Duration::from_secs(2)));
    let off = text.replace("record: failed", "record: false");
    let s = scenario::load_str(Path::new("rr.yaml"), &off).expect("loads");
    assert_eq!(s.record, None);
}

#[test]
fn record_takes_true_false_or_failed() {
    let text = "version: 1\nboard: mps2-an385\nimage: cortex-m/fault\nrecord: sometimes\nsteps:\n  - boot: {}\n";
    let error = scenario::load_str(Path::new("rr.yaml"), text).expect_err("refused");
    let message = error.to_string();
    assert!(message.starts_with("rr.yaml:4:"), "{message}");
    assert!(message.contains("`failed`"), "{message}");
    let zero = "version: 1\nboard: mps2-an385\nimage: cortex-m/fault\nsteps:\n  - reverse-step: {count: 0}\n";
    let error = scenario::load_str(Path::new("rr.yaml"), zero).expect_err("refused");
    assert!(error.to_string().starts_with("rr.yaml:5:"), "{error}");
}
