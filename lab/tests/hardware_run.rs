//! Real boards, without a real board: selection between QEMU and hardware,
//! the plan-time and run-time refusals of emulation-only features, and a
//! scenario run end to end on the hardware backend against a fake probe at
//! the lab's probe seam (flash, reset, RTT console, semihosting). The
//! firmware is the project's own, built for the Nucleo-F767ZI with its RTT
//! console. Nothing here pretends that a real board ran: the fake says so.

mod common;
mod hardware_fake;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::ScenarioYaml;
use hardware_fake::{Board, FakeFault, FakeLister};
use lab::backend::TargetKind;
use lab::backend::probe::{FlashEvent, NoProbes, ProbeLister};
use lab::runner::{self, RunEvent};
use lab::scenario::{self, TargetChoice};
use lab::workspace::Workspace;
use tokio_util::sync::CancellationToken;

const CHIP: &str = "STM32F767ZITx";

fn workspace() -> Workspace {
    Workspace::open(common::repo()).unwrap()
}

fn plan(
    dir: &Path,
    yaml: &str,
    target: Option<TargetChoice>,
    probes: Arc<dyn ProbeLister>,
) -> Result<Vec<runner::Job>, String> {
    let file = common::scenario(dir, "s", yaml);
    let s = scenario::load(&file).map_err(|e| e.to_string())?;
    runner::plan_with(&[s], &workspace(), target, probes).map_err(|e| e.to_string())
}

fn scenario_on(board: &str) -> String {
    format!(
        "version: 1\nboard: {board}\nimage: cortex-m/hello\nsteps:\n  - boot: {{}}\n  - expect-exit: {{code: 0, timeout: 5s}}\n"
    )
}

#[test]
fn auto_without_a_probe_runs_in_qemu_and_hardware_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let none: Arc<dyn ProbeLister> = Arc::new(NoProbes);
    let jobs = plan(dir.path(), &scenario_on("mps2-an500"), None, none.clone()).unwrap();
    assert_eq!(jobs[0].target, TargetKind::Qemu);
    assert!(jobs[0].probe.is_none());

    let err = plan(
        dir.path(),
        &scenario_on("nucleo-f767zi"),
        Some(TargetChoice::Hardware),
        none.clone(),
    )
    .unwrap_err();
    assert!(err.contains("/s:2:8"), "{err}");
    assert!(
        err.contains("no debug probe answered for chip `STM32F767ZITx` of board `nucleo-f767zi`")
            && err.contains("any probe-rs debug probe on USB")
            && err.contains("attached probes: none"),
        "{err}"
    );
    // A hardware-only board under auto with no probe has nowhere to run.
    let err = plan(
        dir.path(),
        &scenario_on("nucleo-f767zi"),
        None,
        none.clone(),
    )
    .unwrap_err();
    assert!(err.contains("no debug probe answered"), "{err}");
    let err = plan(
        dir.path(),
        &scenario_on("nucleo-f767zi"),
        Some(TargetChoice::Qemu),
        none.clone(),
    )
    .unwrap_err();
    assert!(err.contains("exists only as hardware"), "{err}");
    let err = plan(
        dir.path(),
        &scenario_on("mps2-an500"),
        Some(TargetChoice::Hardware),
        none,
    )
    .unwrap_err();
    assert!(err.contains("has no `hardware:` section"), "{err}");
}

#[test]
fn a_probe_that_answers_for_the_chip_selects_hardware() {
    let dir = tempfile::tempdir().unwrap();
    let lister = Arc::new(FakeLister::new(CHIP, Board::new(&[], 0)));
    let jobs = plan(
        dir.path(),
        &format!("{}runs: 2\n", scenario_on("nucleo-f767zi")),
        None,
        lister.clone(),
    )
    .unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.target == TargetKind::Hardware));
    let probe = jobs[0].probe.as_ref().unwrap();
    assert_eq!(probe.info.serial.as_deref(), Some("FAKE0001"));
    assert!(
        Arc::ptr_eq(&probe.lock, &jobs[1].probe.as_ref().unwrap().lock),
        "runs on one probe take turns"
    );
    assert_eq!(
        *lister.opened.lock().unwrap(),
        vec![CHIP.to_owned()],
        "the probe is asked once per chip"
    );

    // A probe for another chip does not answer: auto falls back to QEMU
    // where the board has a model, and hardware is refused, naming the probe.
    let other = Arc::new(FakeLister::new("nRF52840_xxAA", Board::new(&[], 0)));
    let err = plan(
        dir.path(),
        &scenario_on("nucleo-f767zi"),
        None,
        other.clone(),
    )
    .unwrap_err();
    assert!(
        err.contains("attached probes: Fake ST-LINK (FAKE0001)"),
        "{err}"
    );
    let jobs = plan(dir.path(), &scenario_on("mps2-an385"), None, other).unwrap();
    assert_eq!(jobs[0].target, TargetKind::Qemu);
}

#[test]
fn emulation_only_features_are_refused_at_plan_time_on_hardware() {
    let dir = tempfile::tempdir().unwrap();
    let lister: Arc<dyn ProbeLister> = Arc::new(FakeLister::new(CHIP, Board::new(&[], 0)));
    let virtual_clock = scenario_on("nucleo-f767zi").replace("steps:", "clock: virtual\nsteps:");
    let err = plan(dir.path(), &virtual_clock, None, lister.clone()).unwrap_err();
    assert!(
        err.contains("`clock: virtual` (QEMU's icount) is not available on hardware"),
        "{err}"
    );
    let layout = scenario_on("nucleo-f767zi")
        .replace("  - expect-exit", "  - memory-layout: {}\n  - expect-exit");
    let err = plan(dir.path(), &layout, None, lister).unwrap_err();
    assert!(err.contains("/s:6:5"), "{err}");
    assert!(
        err.contains(
            "`memory-layout` needs QEMU's `info mtree`, which is not available on hardware"
        ),
        "{err}"
    );
}

/// Runs planned jobs and collects the flash events.
fn run(jobs: Vec<runner::Job>) -> (Vec<lab::report::RunResult>, Vec<FlashEvent>) {
    let images = runner::build_images(&jobs, &workspace(), &|_| {});
    let flashes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&flashes);
    let on_event: Arc<dyn Fn(RunEvent) + Send + Sync> = Arc::new(move |e| {
        if let RunEvent::Flashing { event, .. } = e {
            sink.lock().unwrap().push(event);
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = runner::RunSettings {
        parallel: 1,
        seed: 1,
        cold: false,
        fail_fast: false,
    };
    let results = runtime.block_on(runner::run_jobs(
        jobs,
        Arc::new(workspace()),
        images,
        settings,
        CancellationToken::new(),
        on_event,
    ));
    let flashes = flashes.lock().unwrap().clone();
    (results, flashes)
}

#[test]
fn a_scenario_runs_on_the_hardware_backend_through_the_probe_seam() {
    let dir = tempfile::tempdir().unwrap();
    let elf = common::built_image("cortex-m/echo", "nucleo-f767zi");
    let mut board = Board::new(&["hello from nucleo-f767zi\n", "READY boot_us=1234\n"], 3);
    board.expect_input = b"ping\n".to_vec();
    let lister = Arc::new(FakeLister::new(CHIP, board));
    let yaml = ScenarioYaml::elf("nucleo-f767zi", &elf)
        .with("target: hardware")
        .with("args: [a, b]")
        .with("timeout: 10s")
        .step("boot: {}")
        .step(r"wait-serial: {match: 'READY boot_us=(?P<boot_us>\d+)', timeout: 5s}")
        .step(r#"send-serial: "ping\n""#)
        .step("wait-serial: {match: 'echo ping', timeout: 5s}")
        .step("expect-exit: {code: 3, timeout: 5s}");
    let jobs = plan(dir.path(), &yaml.to_string(), None, lister.clone()).unwrap();
    let (results, flashes) = run(jobs);
    let r = &results[0];
    assert_eq!(r.status.as_str(), "passed", "{r:?}");
    assert_eq!(r.target, "hardware");
    assert_eq!(r.metrics.get("boot_us"), Some(&1234.0));

    let size = std::fs::metadata(&elf).unwrap().len();
    assert_eq!(flashes.first(), Some(&FlashEvent::Started { total: size }));
    assert_eq!(flashes.last(), Some(&FlashEvent::Finished));

    let board = lister.board.lock().unwrap();
    assert_eq!(board.cmdline.as_deref(), Some("echo.elf a b"));
    let rtt = lab::elf::ElfInfo::load(&elf)
        .unwrap()
        .symbol("_SEGGER_RTT")
        .unwrap()
        .address;
    let at = |call: &str| board.call_index(call);
    assert!(at("flash echo.elf") < at("reset halt=true"));
    assert!(at("reset halt=true") < at("run"));
    assert!(at(&format!("rtt_attach {rtt:#x}")) > at("run"));
    assert_eq!(
        board.calls.last().map(String::as_str),
        Some("reset halt=true"),
        "the board is reset into a known state after the run: {:?}",
        board.calls
    );
}

/// A board's firmware takes a HardFault and its own handler exits: the
/// core's vector catch, armed at boot, halts it on the handler's entry, the
/// lab reads the stacked PC and the fault registers and lets the handler
/// run on, whatever the firmware reports itself.
#[test]
fn a_hardfault_on_a_board_is_caught_by_the_vector_catch() {
    let dir = tempfile::tempdir().unwrap();
    let elf = common::built_image("cortex-m/echo", "nucleo-f767zi");
    let mut board = Board::new(&["READY\n"], 3);
    board.fault = Some(FakeFault {
        pc: 0x0800_0432,
        cfsr: 0x0000_8200,
        hfsr: 0x4000_0000,
    });
    let lister = Arc::new(FakeLister::new(CHIP, board));
    let yaml = ScenarioYaml::elf("nucleo-f767zi", &elf)
        .with("target: hardware")
        .with("timeout: 10s")
        .step("boot: {}")
        .step("expect-fault: {kind: hardfault, cause: PRECISERR, timeout: 5s}")
        .step("expect-exit: {code: 3, timeout: 5s}");
    let jobs = plan(dir.path(), &yaml.to_string(), None, lister.clone()).unwrap();
    let (results, _) = run(jobs);
    let r = &results[0];
    assert_eq!(r.status.as_str(), "passed", "{r:?}");
    let detail = r.steps[1].detail.as_ref().unwrap();
    assert_eq!(detail["source"], "vector-catch");
    assert_eq!(detail["pc"], 0x0800_0432);
    assert_eq!(
        detail["causes"],
        serde_json::json!(["PRECISERR", "BFARVALID", "FORCED"])
    );

    let board = lister.board.lock().unwrap();
    let at = |call: &str| board.call_index(call);
    assert!(at("reset halt=true") < at("catch_hardfault true"));
    assert!(at("catch_hardfault true") < at("run"));
    assert!(
        at("catch_hardfault false") > at("catch_hardfault true"),
        "the catch is spent once it fired: {:?}",
        board.calls
    );
}

#[test]
fn qmp_and_hmp_from_a_script_are_not_available_on_hardware() {
    let dir = tempfile::tempdir().unwrap();
    let elf = common::built_image("cortex-m/hello", "nucleo-f767zi");
    let lister = Arc::new(FakeLister::new(CHIP, Board::new(&["READY\n"], 0)));
    for (call, what) in [
        (
            "qmp(\"query-status\")",
            "QMP commands are not available on hardware",
        ),
        (
            "hmp(\"info mtree\")",
            "QEMU monitor (HMP) commands are not available on hardware",
        ),
    ] {
        let yaml = ScenarioYaml::elf("nucleo-f767zi", &elf)
            .with("timeout: 10s")
            .step("boot: {}")
            .step(format!("script: {{source: '{call};'}}"));
        let jobs = plan(dir.path(), &yaml.to_string(), None, lister.clone()).unwrap();
        let (results, _) = run(jobs);
        let r = &results[0];
        assert_eq!(r.status.as_str(), "error", "{r:?}");
        let error = r.error.as_deref().unwrap_or_default();
        assert!(error.contains(what), "{error}");
    }
}

/// The Netduino Plus 2 exists in QEMU and as a real board: the repository's
/// own scenarios for it ask for `target: auto`.
fn netduinoplus2_scenarios() -> Vec<scenario::Scenario> {
    let dir = common::repo().join("scenarios/netduinoplus2");
    ["hello.yaml", "echo.yaml", "debug.yaml"]
        .iter()
        .map(|f| scenario::load(&dir.join(f)).unwrap())
        .collect()
}

#[test]
fn auto_picks_the_netduino_board_when_a_probe_answers_for_its_chip() {
    let scenarios = netduinoplus2_scenarios();
    let f405 = Arc::new(FakeLister::new("STM32F405RGTx", Board::new(&[], 0)));
    let jobs = runner::plan_with(&scenarios, &workspace(), None, f405.clone()).unwrap();
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter().all(|j| j.target == TargetKind::Hardware),
        "{:?}",
        jobs.iter().map(|j| j.target).collect::<Vec<_>>()
    );
    assert_eq!(
        *f405.opened.lock().unwrap(),
        vec!["STM32F405RGTx".to_owned()],
        "one question per chip"
    );

    // A probe for another chip, or none: the same scenarios run in QEMU.
    let f767: Arc<dyn ProbeLister> = Arc::new(FakeLister::new(CHIP, Board::new(&[], 0)));
    for probes in [f767, Arc::new(NoProbes) as Arc<dyn ProbeLister>] {
        let jobs = runner::plan_with(&scenarios, &workspace(), None, probes).unwrap();
        assert!(jobs.iter().all(|j| j.target == TargetKind::Qemu));
        assert!(jobs.iter().all(|j| j.probe.is_none()));
    }
}

#[test]
fn without_a_probe_the_netduino_scenarios_pass_in_qemu() {
    // The CLI asks the real probe lister; no probe is attached here.
    let dir = tempfile::tempdir().unwrap();
    let scenarios = common::repo().join("scenarios/netduinoplus2");
    let ran = common::lab_run(dir.path(), &scenarios, &[]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let results = ran.results();
    assert_eq!(results.len(), 3);
    for r in results {
        assert_eq!(r["status"], "passed", "{r}");
        assert_eq!(r["board"], "netduinoplus2");
        assert_eq!(r["target"], "qemu", "{r}");
    }
    let by_name = |name| ran.result_with("scenario", name);
    assert!(by_name("netduinoplus2-hello")["metrics"]["boot_us"].as_f64() > Some(0.0));
    assert_eq!(
        by_name("netduinoplus2-debug")["metrics"]["done_code"],
        42.0,
        "the debugger's write reached the firmware"
    );
}
