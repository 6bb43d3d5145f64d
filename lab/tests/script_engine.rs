//! The rhai script engine: the bridge to a host, sandbox limits, errors and
//! the checker.
//!
//! The engine knows no lab operation: these tests give it a recording host
//! with a few functions of their own, and pin down how calls travel, how
//! limits and deadlines stop a script and how errors come out. The lab's
//! own functions are checked here with the lab's checker, and run against
//! real QEMU in `script_steps.rs` and `script_api.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use lab::report::Status;
use lab::script::{
    Bridge, HostError, Interrupt, Limit, Limits, RunOptions, ScriptError, ScriptErrorKind, run,
};
use lab::steps::check_script as check;
use rhai::{Dynamic, Engine};

/// A host that records each call as a line.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    /// A call name that fails with a host error.
    fail: Option<&'static str>,
}

impl Recorder {
    fn record(&mut self, call: String) -> Result<(), HostError> {
        let failing = self
            .fail
            .is_some_and(|name| call.split(' ').next() == Some(name));
        self.calls.push(call.clone());
        if failing {
            return Err(HostError::new(format!("{call} broke")));
        }
        Ok(())
    }
}

/// The recorder's functions: `record(name[, argument])` records a line,
/// `wait([timeout])` records its timeout bounded by the deadline, and
/// `nap(duration)` sleeps on the host and then fails.
fn bindings(engine: &mut Engine, bridge: &Bridge<Recorder>) {
    let b = bridge.clone();
    engine.register_fn("record", move |name: &str| {
        let call = name.to_owned();
        b.call("record", move |h: &mut Recorder| h.record(call))
    });
    let b = bridge.clone();
    engine.register_fn("record", move |name: &str, argument: Dynamic| {
        let call = format!("{name} {argument}");
        b.call("record", move |h: &mut Recorder| h.record(call))
    });
    let b = bridge.clone();
    engine.register_fn("wait", move |timeout: Dynamic| {
        let timeout = b.timeout("wait", &timeout)?;
        b.call("wait", move |h: &mut Recorder| {
            h.record(format!("wait {timeout:?}"))
        })
    });
    let b = bridge.clone();
    engine.register_fn("wait", move || {
        let timeout = b.until_deadline()?;
        b.call("wait", move |h: &mut Recorder| {
            h.record(format!("wait {timeout:?}"))
        })
    });
    let b = bridge.clone();
    engine.register_fn("nap", move |duration: Dynamic| {
        let duration = b.timeout("nap", &duration)?;
        b.call("nap", move |_: &mut Recorder| -> Result<(), HostError> {
            std::thread::sleep(duration);
            Err(HostError::new("overslept"))
        })
    });
}

const FILE: &str = "scenarios/test.rhai";

/// Runs `source` against `host` within `limits`, seeded by `seed`, until
/// `deadline` or `interrupt`.
fn run_on(
    source: &str,
    host: &mut Recorder,
    limits: &Limits,
    seed: u64,
    deadline: Instant,
    interrupt: &Interrupt,
) -> Result<(), ScriptError> {
    let options = RunOptions {
        bindings,
        limits,
        seed,
        deadline,
        interrupt,
    };
    run(Path::new(FILE), source, host, options)
}

/// Runs `source` with `limits` against `host`, with a 60 s deadline.
fn run_with(source: &str, host: &mut Recorder, limits: &Limits) -> Result<(), ScriptError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    run_on(source, host, limits, 1, deadline, &Interrupt::default())
}

/// Runs `source` against a fresh recorder and returns its calls.
fn calls(source: &str) -> Vec<String> {
    let mut host = Recorder::default();
    if let Err(e) = run_with(source, &mut host, &Limits::default()) {
        panic!("script failed: {e}");
    }
    host.calls
}

/// Runs `source`, which must fail, and returns the error.
fn fails(source: &str, limits: &Limits) -> ScriptError {
    match run_with(source, &mut Recorder::default(), limits) {
        Ok(()) => panic!("the script should have failed"),
        Err(e) => e,
    }
}

#[test]
fn calls_reach_the_host_in_order_with_their_arguments() {
    assert_eq!(
        calls(
            "record(\"boot\"); record(\"step\", 3); record(\"metric\", 0.25); record(\"at\", \"main\");"
        ),
        ["boot", "step 3", "metric 0.25", "at main"]
    );
}

#[test]
fn waits_without_a_timeout_are_bounded_by_the_deadline() {
    let calls = calls("wait(); wait(\"5s\"); wait(\"2m\");");
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1], "wait 5s");
    for call in [&calls[0], &calls[2]] {
        let secs: f64 = call
            .rsplit(' ')
            .next()
            .and_then(|d| d.strip_suffix('s'))
            .and_then(|d| d.parse().ok())
            .unwrap_or(f64::MAX);
        assert!(secs <= 60.0, "{call}");
    }
}

#[test]
fn durations_without_units_are_rejected() {
    for source in ["wait(5)", "wait(0.5)", "wait(\"5\")", "wait(\"10\")"] {
        let e = fails(source, &Limits::default());
        assert_eq!(e.status(), Status::Error, "{source}");
        assert!(e.to_string().contains("unit"), "{source}: {e}");
    }
}

#[test]
fn the_lab_api_checks_with_every_function_and_its_arguments() {
    let source = r#"
        boot();
        boot(#{board: "mps2-an385", image: "cortex-m/hello", args: ["-v"], halted: true});
        let m = wait_serial("READY t=(?P<t>\\d+)", "5s"); wait_serial("x");
        send_serial("ping\n");
        let q = qmp("query-status"); qmp("stop", #{force: true});
        hmp("info mtree");
        pause(); resume(); reset();
        expect_exit("2s"); expect_exit();
        attach_debugger("1s"); attach_debugger();
        break_at("main"); break_at(0x1a4);
        let stop = continue_to("3s"); continue_to();
        step(3); step();
        read_register("sp"); read_memory(0x100, 4); read_symbol("counter");
        write_memory(0x200, [1, 255]); write_symbol("counter", 5);
        detach();
        metric("boot_ms", 12);
        sleep("250ms"); sleep_guest("1ms");
        assert(random() < 1.0, "random"); random_int(1, 6);
    "#;
    if let Err(e) = check(Path::new(FILE), source) {
        panic!("{e}");
    }
}

/// The numbers a script draws with `seed`.
fn draws(seed: u64) -> String {
    let mut host = Recorder::default();
    let source = "let s = \"\"; for i in 0..5 { s += `${random()} ${random_int(1, 6)} `; } \
                  record(s);";
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = run_on(
        source,
        &mut host,
        &Limits::default(),
        seed,
        deadline,
        &Interrupt::default(),
    );
    assert!(result.is_ok(), "{result:?}");
    host.calls.concat()
}

#[test]
fn the_rng_repeats_per_seed_and_differs_across_seeds() {
    assert_eq!(draws(42), draws(42));
    assert_ne!(draws(42), draws(43));
    calls(
        "for i in 0..1000 { let f = random(); let n = random_int(-2, 2); \
         if f < 0.0 || f >= 1.0 || n < -2 || n > 2 { throw \"out of range\" } }",
    );
    let e = fails("random_int(5, 1)", &Limits::default());
    assert!(e.to_string().contains("above the high bound"), "{e}");
}

/// Limits small enough to trip quickly.
fn small() -> Limits {
    Limits {
        max_operations: 10_000,
        max_call_depth: 16,
        max_expr_depth: 20,
        max_string_size: 100,
        max_array_size: 100,
        max_map_size: 100,
    }
}

#[test]
fn each_limit_has_its_own_error() {
    let nested = format!("let x = {}1{};", "(".repeat(40), ")".repeat(40));
    let cases = [
        (
            "let n = 0; loop { n += 1; }",
            Limit::Operations(10_000),
            "max_operations",
        ),
        (
            "fn f(n) { f(n + 1) } f(0);",
            Limit::CallDepth(16),
            "max_call_depth",
        ),
        (nested.as_str(), Limit::ExprDepth(20), "max_expr_depth"),
        (
            "let s = \"ab\"; loop { s += s; }",
            Limit::StringSize(100),
            "max_string_size",
        ),
        (
            "let a = []; loop { a.push(1); }",
            Limit::ArraySize(100),
            "max_array_size",
        ),
        (
            // rhai 1.27 does not check `m[new_key] = v`: only max_operations bounds it.
            "let m = #{}; let i = 0; loop { let o = #{}; o[`k${i}`] = i; m.mixin(o); i += 1; }",
            Limit::MapSize(100),
            "max_map_size",
        ),
    ];
    for (source, limit, field) in cases {
        let e = fails(source, &small());
        match e.kind() {
            ScriptErrorKind::Limit(got) => assert_eq!(*got, limit, "{source}"),
            other => panic!("{source}: expected {limit:?}, got {other:?}: {e}"),
        }
        assert!(e.to_string().contains(field), "{source}: {e}");
        assert_eq!(e.status(), Status::Error);
    }
}

#[test]
fn limits_cannot_be_caught() {
    let e = fails("try { let n = 0; loop { n += 1; } } catch { }", &small());
    assert!(
        matches!(e.kind(), ScriptErrorKind::Limit(Limit::Operations(_))),
        "{e}"
    );
}

#[test]
fn import_and_eval_are_refused_clearly() {
    let e = fails("import \"net\" as net;\nnet::get();", &Limits::default());
    assert!(matches!(e.kind(), ScriptErrorKind::Import), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("scenarios/test.rhai:1:1: `import` is not allowed"),
        "{e}"
    );
    let e = fails("let x = 1;\nlet y = eval(\"x + 1\");", &Limits::default());
    assert!(matches!(e.kind(), ScriptErrorKind::Eval), "{e:?}");
    assert!(e.to_string().starts_with("scenarios/test.rhai:2:"), "{e}");
    assert!(check(Path::new(FILE), "eval(\"1\")").is_err());
}

#[test]
fn a_busy_loop_ends_at_the_deadline() {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(200);
    let limits = Limits {
        max_operations: 0,
        ..Limits::default()
    };
    let result = run_on(
        "loop {}",
        &mut Recorder::default(),
        &limits,
        1,
        deadline,
        &Interrupt::default(),
    );
    let elapsed = started.elapsed();
    let Err(e) = result else {
        panic!("the loop should have been stopped")
    };
    assert!(matches!(e.kind(), ScriptErrorKind::Deadline), "{e}");
    assert_eq!(e.status(), Status::Timeout);
    assert!(
        elapsed < Duration::from_secs(2),
        "stopped after {elapsed:?}"
    );
    assert!(
        e.to_string()
            .contains("hint: raise the scenario's `timeout:`"),
        "{e}"
    );
}

/// Ctrl-C reaches a script that never calls the host, and a script that
/// catches every host error cannot swallow it.
#[test]
fn an_interrupt_stops_a_script_that_catches_everything() {
    let limits = Limits {
        max_operations: 0,
        ..Limits::default()
    };
    let interrupt = Interrupt::default();
    let raiser = {
        let interrupt = interrupt.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            interrupt.raise();
        })
    };
    let mut host = Recorder {
        fail: Some("x"),
        ..Recorder::default()
    };
    let result = run_on(
        "loop { try { record(\"x\"); } catch (e) { } }",
        &mut host,
        &limits,
        1,
        Instant::now() + Duration::from_secs(60),
        &interrupt,
    );
    raiser.join().unwrap();
    let Err(e) = result else {
        panic!("the script should have been interrupted")
    };
    assert!(matches!(e.kind(), ScriptErrorKind::Interrupted), "{e}");
    assert_eq!(e.status(), Status::Error);
}

#[test]
fn a_host_call_that_fails_past_the_deadline_is_a_timeout() {
    let deadline = Instant::now() + Duration::from_millis(200);
    let result = run_on(
        "try { nap(\"10s\") } catch (e) { }",
        &mut Recorder::default(),
        &Limits::default(),
        1,
        deadline,
        &Interrupt::default(),
    );
    let Err(e) = result else {
        panic!("the nap should have timed out")
    };
    assert_eq!(e.status(), Status::Timeout, "{e}");
}

#[test]
fn runtime_errors_carry_file_line_and_column() {
    let e = fails("let a = 1;\nlet b = a + \"x\" * 2;", &Limits::default());
    assert!(matches!(e.kind(), ScriptErrorKind::Runtime(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("scenarios/test.rhai:2:"), "{text}");
    let e = fails("fn f() {\n  throw \"boom\";\n}\nf();", &Limits::default());
    assert_eq!(e.to_string(), "scenarios/test.rhai:2:3: boom");
}

#[test]
fn syntax_errors_carry_file_line_and_column() {
    let e = fails("let x = ;", &Limits::default());
    assert!(matches!(e.kind(), ScriptErrorKind::Compile(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("scenarios/test.rhai:1:9: syntax error"),
        "{e}"
    );
}

#[test]
fn check_finds_unknown_functions_with_a_suggestion() {
    let source = "boot();\nlet m = wait_serail(\"READY\", \"5s\");";
    let Err(e) = check(Path::new(FILE), source) else {
        panic!("check should fail")
    };
    assert_eq!(
        e.to_string(),
        "scenarios/test.rhai:2:9: unknown function `wait_serail`\n  hint: did you mean `wait_serial`?"
    );
    assert!(check(Path::new(FILE), "frobnicate_the_widget();").is_err());
    let Err(e) = check(Path::new(FILE), "boot();\n  continue_to(\"1s\", 2);") else {
        panic!("check should count arguments")
    };
    assert_eq!(
        e.to_string(),
        "scenarios/test.rhai:2:3: `continue_to` takes 0 or 1 arguments, not 2"
    );
    let Err(e) = check(Path::new(FILE), "fn f(a) { a }\nf();") else {
        panic!("check should count arguments of script functions")
    };
    assert!(e.to_string().contains("`f` takes 1 argument, not 0"), "{e}");
}

#[test]
fn check_accepts_valid_scripts() {
    let source = "fn settle(n) { for i in 0..n { sleep(\"1ms\") } }\n\
                  let add = |a, b| a + b;\n\
                  let f = Fn(\"settle\");\n\
                  settle(add.call(1, 2));\n\
                  f.call(1);\n\
                  let parts = \"a,b\".split(\",\");\n\
                  print(parts.len().to_string() + `${max(1, 2)} ${parse_int(\"3\")}`);";
    if let Err(e) = check(Path::new(FILE), source) {
        panic!("{e}");
    }
}

#[test]
fn check_accepts_every_fixture() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripts");
    let mut count = 0;
    for entry in std::fs::read_dir(&folder).expect("fixtures folder") {
        let path = entry.expect("fixture entry").path();
        let source = std::fs::read_to_string(&path).expect("fixture text");
        if let Err(e) = check(&path, &source) {
            panic!("{e}");
        }
        count += 1;
    }
    assert!(count > 0);
}

#[test]
fn a_failed_assertion_is_a_failure_and_cannot_be_caught() {
    let e = fails(
        "let n = 3;\ntry { assert(n == 4, \"n is 4\"); } catch { }",
        &Limits::default(),
    );
    assert_eq!(e.status(), Status::Failed);
    assert_eq!(
        e.to_string(),
        "scenarios/test.rhai:2:7: assertion failed: n is 4"
    );
}

#[test]
fn a_host_error_is_an_error_status_and_can_be_caught() {
    let mut host = Recorder {
        fail: Some("wait_serial"),
        ..Recorder::default()
    };
    let result = run_with(
        "record(\"boot\");\nrecord(\"wait_serial\", \"READY\");",
        &mut host,
        &Limits::default(),
    );
    let Err(e) = result else {
        panic!("the host error should stop the script")
    };
    assert_eq!(e.status(), Status::Error);
    assert_eq!(
        e.to_string(),
        "scenarios/test.rhai:2:1: record: wait_serial READY broke"
    );
    let source = "let got = \"\";\n\
                  try { record(\"wait_serial\", \"READY\"); } catch (e) { got = e.message; }\n\
                  record(\"got\", got);";
    let mut host = Recorder {
        fail: Some("wait_serial"),
        ..Recorder::default()
    };
    assert!(run_with(source, &mut host, &Limits::default()).is_ok());
    assert_eq!(
        host.calls.last().map(String::as_str),
        Some("got wait_serial READY broke")
    );
}

#[test]
fn exit_ends_the_script_normally() {
    assert_eq!(
        calls("record(\"a\", 1); exit(); record(\"b\", 2);"),
        ["a 1"]
    );
}
