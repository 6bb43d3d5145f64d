//! `serial-load` on real QEMU: the Cortex-M echo firmware answers each
//! message by printing it back, so every message has exactly one reply.
//! Counts are asserted, never speeds.

mod common;

use common::{ScenarioYaml, metric, step_detail};

/// The echo firmware on mps2-an385 on the wall clock, booted and ready.
fn echo_ready() -> ScenarioYaml {
    ScenarioYaml::image("mps2-an385", "cortex-m/echo")
        .with("clock: wall")
        .with("timeout: 30s")
        .step("boot: {}")
        .step("wait-serial: {match: READY, timeout: 5s}")
}

#[test]
fn every_message_is_answered_and_timed() {
    let dir = tempfile::tempdir().unwrap();
    // Two replies for messages never sent go first: counted, not fatal.
    let (code, r) = echo_ready()
        .step(r#"send-serial: "ACK 100 v=0\nACK 99999 v=0\n""#)
        .step(r#"serial-load: {count: 100, rate: 50, send: "ACK {seq} v={seq}\n", reply: 'ACK (?P<seq>\d+) v=(?P<v>\d+)', timeout: 10s}"#)
        .step(r#"send-serial: "exit\n""#)
        .step("expect-exit: {code: 0, timeout: 5s}")
        .run(dir.path(), "load.yaml");
    assert_eq!(code, Some(0), "{r}");
    for (name, want) in [
        ("sent", 100.0),
        ("received", 100.0),
        ("lost", 0.0),
        ("loss_ppm", 0.0),
        ("unexpected", 2.0),
        ("v_max", 99.0),
    ] {
        assert_eq!(metric(&r, name), want, "{name} in {r}");
    }
    let (mean, p50, p99, max) = (
        metric(&r, "latency_mean_us"),
        metric(&r, "latency_p50_us"),
        metric(&r, "latency_p99_us"),
        metric(&r, "latency_max_us"),
    );
    assert!(mean > 0.0 && mean <= max, "{r}");
    assert!(p50 <= p99 && p99 <= max, "{r}");
    assert!(metric(&r, "achieved_rate") > 0.0, "{r}");
    let detail = step_detail(&r, 3, "serial-load");
    assert_eq!(detail["received"], 100.0, "{detail}");
}

#[test]
fn messages_without_a_reply_are_lost_after_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    // Only replies to multiples of ten count as replies: the other echoes
    // are just output, so those messages are never answered. The drain is
    // long enough for a busy host's late echoes to count: what is lost is
    // what never comes.
    let (code, r) = echo_ready()
        .step(r#"serial-load: {count: 50, rate: 100, send: "MSG {seq}\n", reply: 'MSG (?P<seq>\d*0)$', drain: 2s, timeout: 15s}"#)
        .run(dir.path(), "lossy.yaml");
    assert_eq!(code, Some(0), "{r}");
    for (name, want) in [
        ("sent", 50.0),
        ("received", 5.0),
        ("lost", 45.0),
        ("loss_ppm", 900_000.0),
        ("unexpected", 0.0),
    ] {
        assert_eq!(metric(&r, name), want, "{name} in {r}");
    }
}
