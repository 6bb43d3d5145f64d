//! `serial-load` on real QEMU: the Cortex-M echo firmware answers each
//! message by printing it back, so every message has exactly one reply.
//! Counts are asserted, never speeds.

mod common;

use common::run_scenario;

/// A metric of a result, or a panic that shows the result.
fn metric(r: &serde_json::Value, name: &str) -> f64 {
    r["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("metric {name} in {r}"))
}

#[test]
fn every_message_is_answered_and_timed() {
    let dir = tempfile::tempdir().unwrap();
    // Two replies for messages never sent go first: counted, not fatal.
    let (code, r) = run_scenario(
        dir.path(),
        "load.yaml",
        "version: 1\n\
         board: mps2-an385\n\
         image: cortex-m/echo\n\
         clock: wall\n\
         timeout: 30s\n\
         steps:\n\
         \x20 - boot: {}\n\
         \x20 - wait-serial: {match: READY, timeout: 5s}\n\
         \x20 - send-serial: \"ACK 100 v=0\\nACK 99999 v=0\\n\"\n\
         \x20 - serial-load: {count: 100, rate: 50, send: \"ACK {seq} v={seq}\\n\", reply: 'ACK (?P<seq>\\d+) v=(?P<v>\\d+)', timeout: 10s}\n\
         \x20 - send-serial: \"exit\\n\"\n\
         \x20 - expect-exit: {code: 0, timeout: 5s}\n",
    );
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
    let step = &r["steps"][3];
    assert_eq!(step["step"], "serial-load", "{r}");
    assert_eq!(step["detail"]["received"], 100.0, "{step}");
}

#[test]
fn messages_without_a_reply_are_lost_after_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    // Only replies to multiples of ten count as replies: the other echoes
    // are just output, so those messages are never answered.
    let (code, r) = run_scenario(
        dir.path(),
        "lossy.yaml",
        "version: 1\n\
         board: mps2-an385\n\
         image: cortex-m/echo\n\
         clock: wall\n\
         timeout: 30s\n\
         steps:\n\
         \x20 - boot: {}\n\
         \x20 - wait-serial: {match: READY, timeout: 5s}\n\
         \x20 - serial-load: {count: 50, rate: 100, send: \"MSG {seq}\\n\", reply: 'MSG (?P<seq>\\d*0)$', drain: 300ms, timeout: 10s}\n",
    );
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
