//! The rhai script engine: host API, sandbox limits, errors and the checker.
//!
//! The host here is a recording fake: these tests pin down what scripts can
//! call and how errors come out. Wiring `ScriptHost` to the runner and a real
//! QEMU target is tested with the runner, not here.

use std::path::Path;
use std::time::{Duration, Instant};

use lab::report::Status;
use lab::script::{
    BootOptions, HostError, Interrupt, Limit, Limits, Match, ScriptError, ScriptErrorKind,
    ScriptHost, Stop, check, run,
};

/// A host that records each call as a line and answers with canned values.
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    /// A function name whose calls fail with a host error.
    fail: Option<&'static str>,
}

impl Fake {
    fn record(&mut self, function: &'static str, call: String) -> Result<(), HostError> {
        self.calls.push(call);
        match self.fail {
            Some(name) if name == function => Err(HostError::new(format!("{name} broke"))),
            _ => Ok(()),
        }
    }
}

impl ScriptHost for Fake {
    fn boot(&mut self, o: BootOptions) -> Result<(), HostError> {
        let call = format!("boot {:?} {:?} {:?} {}", o.board, o.image, o.args, o.halted);
        self.record("boot", call)
    }
    fn wait_serial(&mut self, pattern: &str, timeout: Duration) -> Result<Match, HostError> {
        self.record("wait_serial", format!("wait_serial {pattern} {timeout:?}"))?;
        Ok(Match {
            text: "READY t=12".into(),
            captures: vec![("t".into(), "12".into())],
        })
    }
    fn send_serial(&mut self, text: &str) -> Result<(), HostError> {
        self.record("send_serial", format!("send_serial {text:?}"))
    }
    fn qmp(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, HostError> {
        let args = args.map(|a| a.to_string()).unwrap_or_default();
        self.record("qmp", format!("qmp {command} {args}"))?;
        Ok(serde_json::json!({"status": "running", "list": [1, 2.5, null]}))
    }
    fn hmp(&mut self, command: &str) -> Result<String, HostError> {
        self.record("hmp", format!("hmp {command}"))?;
        Ok("mtree".into())
    }
    fn pause(&mut self) -> Result<(), HostError> {
        self.record("pause", "pause".into())
    }
    fn resume(&mut self) -> Result<(), HostError> {
        self.record("resume", "resume".into())
    }
    fn reset(&mut self) -> Result<(), HostError> {
        self.record("reset", "reset".into())
    }
    fn expect_exit(&mut self, timeout: Duration) -> Result<i64, HostError> {
        self.record("expect_exit", format!("expect_exit {timeout:?}"))?;
        Ok(3)
    }
    fn attach(&mut self, timeout: Duration) -> Result<(), HostError> {
        self.record("attach", format!("attach {timeout:?}"))
    }
    fn set_break(&mut self, location: &str) -> Result<(), HostError> {
        self.record("set_break", format!("break {location}"))
    }
    fn continue_(&mut self, timeout: Duration) -> Result<Stop, HostError> {
        self.record("continue", format!("continue {timeout:?}"))?;
        Ok(Stop {
            reason: "breakpoint".into(),
            function: Some("main".into()),
            file: None,
            line: Some(42),
            pc: 0x1a4,
        })
    }
    fn step(&mut self, count: u32) -> Result<(), HostError> {
        self.record("step", format!("step {count}"))
    }
    fn read_register(&mut self, name: &str) -> Result<u64, HostError> {
        self.record("read_register", format!("read_register {name}"))?;
        Ok(0x2000_0000)
    }
    fn read_memory(&mut self, addr: u64, len: u32) -> Result<Vec<u8>, HostError> {
        self.record("read_memory", format!("read_memory {addr:#x} {len}"))?;
        Ok((0..len).map(|i| i as u8).collect())
    }
    fn read_symbol(&mut self, name: &str) -> Result<f64, HostError> {
        self.record("read_symbol", format!("read_symbol {name}"))?;
        Ok(7.0)
    }
    fn write_memory(&mut self, addr: u64, bytes: &[u8]) -> Result<(), HostError> {
        self.record("write_memory", format!("write_memory {addr:#x} {bytes:?}"))
    }
    fn write_symbol(&mut self, name: &str, value: f64) -> Result<(), HostError> {
        self.record("write_symbol", format!("write_symbol {name} {value}"))
    }
    fn detach(&mut self) -> Result<(), HostError> {
        self.record("detach", "detach".into())
    }
    fn metric(&mut self, name: &str, value: f64) -> Result<(), HostError> {
        self.record("metric", format!("metric {name} {value}"))
    }
    fn sleep(&mut self, duration: Duration) -> Result<(), HostError> {
        self.record("sleep", format!("sleep {duration:?}"))
    }
    fn sleep_guest(
        &mut self,
        duration: Duration,
        _timeout: Duration,
    ) -> Result<Duration, HostError> {
        self.record("sleep_guest", format!("sleep_guest {duration:?}"))?;
        // The guest ran a little past what was asked, as a real one does.
        Ok(duration + Duration::from_micros(3))
    }
}

const FILE: &str = "scenarios/test.rhai";

/// Runs `source` with `limits` against `host`, with a 60 s deadline.
fn run_with(source: &str, host: &mut Fake, limits: &Limits) -> Result<(), ScriptError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    run(
        Path::new(FILE),
        source,
        host,
        limits,
        1,
        deadline,
        &Interrupt::default(),
    )
}

/// Runs `source` against a fresh fake and returns its calls.
fn calls(source: &str) -> Vec<String> {
    let mut host = Fake::default();
    if let Err(e) = run_with(source, &mut host, &Limits::default()) {
        panic!("script failed: {e}");
    }
    host.calls
}

/// Runs `source`, which must fail, and returns the error.
fn fails(source: &str, limits: &Limits) -> ScriptError {
    match run_with(source, &mut Fake::default(), limits) {
        Ok(()) => panic!("the script should have failed"),
        Err(e) => e,
    }
}

#[test]
fn every_host_function_is_reachable_with_its_arguments() {
    let source = r#"
        boot();
        boot(#{board: "mps2-an385", image: "cortex-m/hello", args: ["-v"], halted: true});
        let m = wait_serial("READY t=(?P<t>\\d+)", "5s");
        assert(m.t == "12" && m.text == "READY t=12", "captures");
        send_serial("ping\n");
        let q = qmp("query-status");
        assert(q.status == "running" && q.list[1] == 2.5 && q.list[2] == (), "qmp result");
        qmp("stop", #{force: true, n: 2});
        assert(hmp("info mtree") == "mtree", "hmp");
        pause(); resume(); reset();
        assert(expect_exit("2s") == 3, "exit code");
        attach_debugger("1s");
        break_at("main"); break_at(0x1a4);
        let stop = continue_to("3s");
        assert(stop.reason == "breakpoint" && stop.function == "main" && stop.file == ()
               && stop.line == 42 && stop.pc == 0x1a4, "stop");
        step(3); step();
        assert(read_register("sp") == 0x20000000, "register");
        assert(read_memory(0x100, 4) == [0, 1, 2, 3], "memory");
        assert(read_symbol("counter") == 7.0, "symbol");
        write_memory(0x200, [1, 255]);
        write_symbol("counter", 5); write_symbol("ratio", 0.5);
        detach();
        metric("boot_ms", 12); metric("ratio", 0.25);
        sleep("250ms"); assert(sleep_guest("1ms") == 1003, "guest µs");
    "#;
    let expected = [
        "boot None None [] false",
        r#"boot Some("mps2-an385") Some("cortex-m/hello") ["-v"] true"#,
        r"wait_serial READY t=(?P<t>\d+) 5s",
        r#"send_serial "ping\n""#,
        "qmp query-status ",
        r#"qmp stop {"force":true,"n":2}"#,
        "hmp info mtree",
        "pause",
        "resume",
        "reset",
        "expect_exit 2s",
        "attach 1s",
        "break main",
        "break 0x1a4",
        "continue 3s",
        "step 3",
        "step 1",
        "read_register sp",
        "read_memory 0x100 4",
        "read_symbol counter",
        "write_memory 0x200 [1, 255]",
        "write_symbol counter 5",
        "write_symbol ratio 0.5",
        "detach",
        "metric boot_ms 12",
        "metric ratio 0.25",
        "sleep 250ms",
        "sleep_guest 1ms",
    ];
    assert_eq!(calls(source), expected);
}

#[test]
fn waits_without_a_timeout_are_bounded_by_the_deadline() {
    let calls = calls("wait_serial(\"x\"); expect_exit(); attach_debugger(); continue_to();");
    assert_eq!(calls.len(), 4);
    for call in calls {
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
    for source in [
        "sleep(5)",
        "sleep(0.5)",
        "sleep(\"5\")",
        "sleep_guest(1)",
        "wait_serial(\"x\", 5)",
        "expect_exit(\"10\")",
    ] {
        let e = fails(source, &Limits::default());
        assert_eq!(e.status(), Status::Error, "{source}");
        assert!(e.to_string().contains("unit"), "{source}: {e}");
    }
}

#[test]
fn bad_arguments_are_script_errors() {
    for (source, needle) in [
        ("boot(#{bord: \"x\"})", "did you mean `board`?"),
        ("boot(#{halted: 1})", "`halted` must be true or false"),
        ("wait_serial(\"(\", \"1s\")", "invalid pattern"),
        ("step(0)", "1 or more"),
        ("read_memory(-1, 4)", "0 or more"),
        ("write_memory(0, [256])", "0 to 255"),
        ("random_int(5, 1)", "above the high bound"),
    ] {
        let e = fails(source, &Limits::default());
        assert!(e.to_string().contains(needle), "{source}: {e}");
    }
}

/// The numbers a script draws with `seed`.
fn draws(seed: u64) -> String {
    let mut host = Fake::default();
    let source = "let s = \"\"; for i in 0..5 { s += `${random()} ${random_int(1, 6)} `; } \
                  metric(s, 0);";
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = run(
        Path::new(FILE),
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
    let result = run(
        Path::new(FILE),
        "loop {}",
        &mut Fake::default(),
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
    let result = run(
        Path::new(FILE),
        "loop { try { send_serial(\"x\"); } catch (e) { } }",
        &mut Fake::default(),
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
fn a_sleep_past_the_deadline_is_a_timeout() {
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut host = Fake::default();
    let result = run(
        Path::new(FILE),
        "sleep(\"10s\")",
        &mut host,
        &Limits::default(),
        1,
        deadline,
        &Interrupt::default(),
    );
    let Err(e) = result else {
        panic!("the sleep should have timed out")
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
    calls(source);
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
    let mut host = Fake {
        fail: Some("wait_serial"),
        ..Fake::default()
    };
    let result = run_with(
        "boot();\nwait_serial(\"READY\", \"1s\");",
        &mut host,
        &Limits::default(),
    );
    let Err(e) = result else {
        panic!("the host error should stop the script")
    };
    assert_eq!(e.status(), Status::Error);
    assert_eq!(
        e.to_string(),
        "scenarios/test.rhai:2:1: wait_serial: wait_serial broke"
    );
    let source = "let got = \"\";\n\
                  try { wait_serial(\"READY\", \"1s\"); } catch (e) { got = e.message; }\n\
                  metric(got, 1);";
    let mut host = Fake {
        fail: Some("wait_serial"),
        ..Fake::default()
    };
    assert!(run_with(source, &mut host, &Limits::default()).is_ok());
    assert_eq!(
        host.calls.last().map(String::as_str),
        Some("metric wait_serial broke 1")
    );
}

#[test]
fn exit_ends_the_script_normally() {
    assert_eq!(
        calls("metric(\"a\", 1); exit(); metric(\"b\", 2);"),
        ["metric a 1"]
    );
}
