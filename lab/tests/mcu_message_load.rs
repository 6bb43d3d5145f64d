//! Experiment 2.3 on Cortex-M on real QEMU: the `msgload` workload's
//! bounded queue, the 100 msg/s load and the rate sweep
//! (`scenarios/cortex-m/message-load.yaml`, `message-sweep.yaml`). Wall
//! clock, so counts and relations are asserted, never speeds.

mod common;

use common::{ScenarioYaml, lab_run, metric, repo};

/// The rates the sweep tries, in order.
const SWEEP_RATES: [f64; 7] = [50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0];

#[test]
fn native_code_answers_every_message_at_100_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/cortex-m/message-load.yaml");
    let ran = lab_run(dir.path(), &file, &["-k", "native", "-j", "1"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let r = ran.result_with("variant", "native");
    for (name, want) in [("sent", 1000.0), ("lost", 0.0), ("dropped", 0.0)] {
        assert_eq!(metric(r, name), want, "{name} in {r}");
    }
    assert_eq!(metric(r, "received_by_queue"), 1000.0, "{r}");
    assert_eq!(
        metric(r, "heap_peak"),
        0.0,
        "the C handler allocates nothing: {r}"
    );
}

#[test]
fn a_queue_polled_too_rarely_drops_and_every_drop_is_a_lost_message() {
    let dir = tempfile::tempdir().unwrap();
    // Polled every 50 ms, 800 messages/s bring 40 a poll to a ring of 16.
    let (code, r) = ScenarioYaml::image("mps2-an385", "cortex-m/native")
        .with("clock: wall")
        .with("timeout: 40s")
        .with("args: [msgload, poll_ms=50, sample_us=0]")
        .step("boot: {}")
        .step(r"wait-serial: {match: 'MSGQ ready slots=(?P<slots>\d+)', timeout: 20s}")
        .step(r#"serial-load: {count: 400, rate: 800, send: "MSG {seq} 21.{seq},48.0,1013.2\n", reply: 'ACK (?P<seq>\d+) heap=\d+', timeout: 10s}"#)
        .step(r#"send-serial: "END\n""#)
        .step(r"wait-serial: {match: 'MSGQ received=(?P<seen>\d+) queued=(?P<queued>\d+) dropped=(?P<dropped>\d+) max_depth=(?P<depth>\d+)', timeout: 10s}")
        .step("expect-exit: {code: 0, timeout: 5s}")
        .run(dir.path(), "flood.yaml");
    assert_eq!(code, Some(0), "{r}");
    let dropped = metric(&r, "dropped");
    assert!(dropped > 0.0, "the full ring drops: {r}");
    assert_eq!(
        metric(&r, "lost"),
        dropped,
        "what the ring dropped is what the lab lost: {r}"
    );
    assert_eq!(
        metric(&r, "seen"),
        400.0,
        "the interrupt saw every line: {r}"
    );
    assert_eq!(metric(&r, "queued") + dropped, 400.0, "{r}");
    assert_eq!(
        metric(&r, "depth"),
        metric(&r, "slots"),
        "the ring filled: {r}"
    );
}

#[test]
fn the_sweep_finds_where_each_runtime_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/cortex-m/message-sweep.yaml");
    let ran = lab_run(dir.path(), &file, &["-j", "1"]);
    assert_eq!(ran.code(), Some(0), "{ran}");
    for variant in ["native", "duktape", "mquickjs"] {
        let r = ran.result_with("variant", variant);
        let Some(breaking) = r["metrics"]["breaking_rate"].as_f64() else {
            // Nothing broke: the last rate held.
            assert_eq!(metric(r, "sustained_rate"), SWEEP_RATES[6], "{r}");
            continue;
        };
        let at = SWEEP_RATES.iter().position(|&rate| rate == breaking);
        let at =
            at.unwrap_or_else(|| panic!("{variant} breaks at {breaking}, not a swept rate: {r}"));
        let loss = metric(r, &format!("loss_ppm_{breaking}"));
        let p99 = metric(r, &format!("p99_us_{breaking}"));
        let achieved = metric(r, &format!("achieved_{breaking}"));
        assert!(
            loss > 10_000.0 || p99 > 100_000.0 || achieved < 0.9 * breaking,
            "{variant} broke at {breaking} for a reason the sweep names: {r}"
        );
        match at {
            0 => assert!(r["metrics"].get("sustained_rate").is_none(), "{r}"),
            _ => assert_eq!(metric(r, "sustained_rate"), SWEEP_RATES[at - 1], "{r}"),
        }
    }
}
