//! The QMP client against a scripted fake QEMU, and once against the real one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::qmp::{QmpClient, QmpError, QmpEvent, QmpEvents};
use qapi::qmp::{Event, RunState, ShutdownCause};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

const T: Duration = Duration::from_secs(5);
const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}"#;

/// The QEMU end of a QMP connection, driven by the test.
struct FakeQemu {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl FakeQemu {
    /// The next command the client sent.
    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        let read = tokio::time::timeout(T, self.reader.read_line(&mut line))
            .await
            .expect("the client sent no command")
            .expect("reading from the client");
        assert!(read > 0, "the client closed the connection");
        assert!(
            line.ends_with('\n'),
            "a command must end its line: {line:?}"
        );
        serde_json::from_str(&line).expect("the client sent JSON")
    }

    /// The next command, checked to be `name`.
    async fn expect(&mut self, name: &str) -> Value {
        let cmd = self.recv().await;
        assert_eq!(cmd["execute"], name, "unexpected command {cmd}");
        assert!(cmd["id"].is_u64(), "command without a numeric id: {cmd}");
        cmd
    }

    /// Sends one line, as QEMU does (`\r\n` ends it).
    async fn send_line(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("writing to the client");
    }

    async fn send(&mut self, message: Value) {
        self.send_line(&message.to_string()).await;
    }

    async fn reply(&mut self, cmd: &Value, ret: Value) {
        self.send(json!({"return": ret, "id": cmd["id"]})).await;
    }

    async fn event(&mut self, name: &str, data: Option<Value>) {
        let mut message = json!({
            "event": name,
            "timestamp": {"seconds": 1_700_000_000, "microseconds": 123_456},
        });
        if let Some(data) = data {
            message["data"] = data;
        }
        self.send(message).await;
    }
}

/// A client connected to a fake QEMU through a completed handshake.
async fn connect() -> (QmpClient, QmpEvents, FakeQemu) {
    connect_with(T).await
}

/// Like [`connect`], with the handshake given `timeout`.
async fn connect_with(timeout: Duration) -> (QmpClient, QmpEvents, FakeQemu) {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    let (reader, writer) = theirs.into_split();
    let mut fake = FakeQemu {
        reader: BufReader::new(reader),
        writer,
    };
    let server = async {
        fake.send_line(GREETING).await;
        let cmd = fake.expect("qmp_capabilities").await;
        assert_eq!(
            cmd.get("arguments"),
            Some(&json!({"enable": ["oob"]})),
            "out-of-band execution should be asked for: {cmd}"
        );
        fake.reply(&cmd, json!({})).await;
    };
    let (handshake, ()) = tokio::join!(QmpClient::handshake(ours, timeout), server);
    let (client, events) = handshake.expect("handshake");
    (client, events, fake)
}

async fn next_event(events: &mut QmpEvents) -> QmpEvent {
    tokio::time::timeout(T, events.next())
        .await
        .expect("no event came")
        .expect("the event stream ended")
}

/// Starts `query-status` in the background and answers it.
async fn query_status_round_trip(client: &QmpClient, fake: &mut FakeQemu) {
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.execute(qapi::qmp::query_status {}, T).await }
    });
    let cmd = fake.expect("query-status").await;
    fake.reply(&cmd, json!({"status": "running", "running": true}))
        .await;
    let status = call.await.unwrap().expect("query-status");
    assert!(status.running);
    assert!(matches!(status.status, RunState::running));
}

#[test]
fn client_is_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<QmpClient>();
    fn check_send<T: Send + 'static>() {}
    check_send::<QmpEvents>();
}

#[tokio::test]
async fn handshake_reads_version_and_negotiates() {
    let (client, _events, _fake) = connect().await;
    assert_eq!(client.qemu_version(), (10, 0, 2));
}

#[tokio::test]
async fn handshake_rejects_a_non_qmp_socket() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs
        .write_all(b"QEMU 10.0.2 monitor - type 'help' for more information\r\n{\"foo\": 1}\r\n")
        .await
        .unwrap();
    let err = QmpClient::handshake(ours, T).await.unwrap_err();
    assert!(matches!(err, QmpError::Greeting { .. }), "{err:?}");
    assert!(err.to_string().contains("-qmp"), "{err}");
}

#[tokio::test]
async fn handshake_times_out_without_greeting() {
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let err = QmpClient::handshake(ours, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, QmpError::Timeout { command, after } if command == "QMP greeting" && *after == Duration::from_millis(50)),
        "{err:?}"
    );
}

#[tokio::test]
async fn handshake_fails_when_qemu_closes_first() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(theirs);
    let err = QmpClient::handshake(ours, T).await.unwrap_err();
    assert!(matches!(err, QmpError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("see its stderr"), "{err}");
}

#[tokio::test]
async fn typed_query_status_round_trip() {
    let (client, _events, mut fake) = connect().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.execute(qapi::qmp::query_status {}, T).await }
    });
    let cmd = fake.expect("query-status").await;
    assert!(
        cmd.get("arguments").is_none(),
        "empty arguments stay off the wire: {cmd}"
    );
    fake.reply(&cmd, json!({"status": "prelaunch", "running": false}))
        .await;
    let status = call.await.unwrap().unwrap();
    assert!(!status.running);
    assert!(matches!(status.status, RunState::prelaunch));
}

#[tokio::test]
async fn execute_raw_sends_arguments_and_returns_json() {
    let (client, _events, mut fake) = connect().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .execute_raw(
                    "qom-get",
                    Some(json!({"path": "/machine", "property": "type"})),
                    T,
                )
                .await
        }
    });
    let cmd = fake.expect("qom-get").await;
    assert_eq!(
        cmd["arguments"],
        json!({"path": "/machine", "property": "type"})
    );
    fake.reply(&cmd, json!("mps2-an385-machine")).await;
    assert_eq!(call.await.unwrap().unwrap(), json!("mps2-an385-machine"));

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.execute_raw("query-name", None, T).await }
    });
    let cmd = fake.expect("query-name").await;
    assert!(cmd.get("arguments").is_none(), "{cmd}");
    fake.reply(&cmd, json!({})).await;
    assert_eq!(call.await.unwrap().unwrap(), json!({}));
}

#[tokio::test]
async fn a_batch_is_written_whole_before_any_reply_and_answers_in_order() {
    let (client, _events, mut fake) = connect().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            let batch = [
                ("cont", None),
                ("stop", None),
                (
                    "human-monitor-command",
                    Some(json!({"command-line": "xp/1wx 0x40028018"})),
                ),
            ];
            client.execute_batch(&batch, T).await
        }
    });
    // All three arrive before the fake answers any of them.
    let cont = fake.expect("cont").await;
    let stop = fake.expect("stop").await;
    let xp = fake.expect("human-monitor-command").await;
    assert_eq!(xp["arguments"]["command-line"], "xp/1wx 0x40028018");
    // Answered out of order, they come back in the batch's order.
    fake.reply(&xp, json!("0000000040028018: 0x00000010\r\n"))
        .await;
    fake.reply(&stop, json!({})).await;
    fake.reply(&cont, json!({})).await;
    let replies = call.await.unwrap().expect("the batch");
    assert_eq!(
        replies,
        vec![
            json!({}),
            json!({}),
            json!("0000000040028018: 0x00000010\r\n")
        ]
    );

    // A failure in the middle fails the batch with that command's error.
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .execute_batch(&[("stop", None), ("no-such-command", None)], T)
                .await
        }
    });
    let stop = fake.expect("stop").await;
    let bad = fake.expect("no-such-command").await;
    fake.reply(&stop, json!({})).await;
    fake.send(json!({
        "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"},
        "id": bad["id"],
    }))
    .await;
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, QmpError::Command { class, .. } if class == "CommandNotFound"),
        "{err:?}"
    );
    query_status_round_trip(&client, &mut fake).await;
}

#[tokio::test]
async fn known_stop_and_resume_events_are_typed() {
    let (_client, mut events, mut fake) = connect().await;
    fake.event("STOP", None).await;
    fake.event("RESUME", None).await;

    let stop = next_event(&mut events).await;
    assert_eq!(stop.name, "STOP");
    assert_eq!(stop.data, json!({}));
    assert_eq!(stop.timestamp, Some((1_700_000_000, 123_456)));
    assert!(matches!(stop.typed, Some(Event::STOP { .. })), "{stop:?}");

    let resume = next_event(&mut events).await;
    assert_eq!(resume.name, "RESUME");
    assert!(
        matches!(resume.typed, Some(Event::RESUME { .. })),
        "{resume:?}"
    );
}

#[tokio::test]
async fn unknown_events_arrive_untyped_and_the_connection_lives_on() {
    let (client, mut events, mut fake) = connect().await;
    fake.event("FUTURE_THING", Some(json!({"level": 3, "why": "because"})))
        .await;
    fake.event(
        "SHUTDOWN",
        Some(json!({"guest": true, "reason": "brand-new-cause"})),
    )
    .await;
    fake.event(
        "SHUTDOWN",
        Some(json!({"guest": true, "reason": "guest-shutdown"})),
    )
    .await;

    let future = next_event(&mut events).await;
    assert_eq!(future.name, "FUTURE_THING");
    assert_eq!(future.data, json!({"level": 3, "why": "because"}));
    assert_eq!(future.timestamp, Some((1_700_000_000, 123_456)));
    assert!(future.typed.is_none());

    let odd = next_event(&mut events).await;
    assert_eq!(odd.name, "SHUTDOWN");
    assert_eq!(odd.data["reason"], "brand-new-cause");
    assert!(odd.typed.is_none());

    let known = next_event(&mut events).await;
    assert!(
        matches!(
            known.typed,
            Some(Event::SHUTDOWN { ref data, .. }) if data.guest && matches!(data.reason, ShutdownCause::guest_shutdown)
        ),
        "{known:?}"
    );

    query_status_round_trip(&client, &mut fake).await;
}

#[tokio::test]
async fn garbage_lines_are_skipped() {
    let (client, mut events, mut fake) = connect().await;
    fake.send_line("this is not JSON {").await;
    fake.send_line("").await;
    fake.send_line("[1, 2]").await;
    fake.send_line("{\"neither\": \"event nor reply\"}").await;
    fake.event("STOP", None).await;
    assert_eq!(next_event(&mut events).await.name, "STOP");
    query_status_round_trip(&client, &mut fake).await;
}

#[tokio::test]
async fn error_replies_become_command_errors() {
    let (client, _events, mut fake) = connect().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.execute_raw("no-such-command", None, T).await }
    });
    let cmd = fake.expect("no-such-command").await;
    fake.send(json!({
        "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"},
        "id": cmd["id"],
    }))
    .await;
    let err = call.await.unwrap().unwrap_err();
    match &err {
        QmpError::Command { class, desc } => {
            assert_eq!(class, "CommandNotFound");
            assert_eq!(desc, "The command no-such-command has not been found");
        }
        other => panic!("expected a command error, got {other:?}"),
    }
    assert!(err.to_string().contains("has not been found"), "{err}");
    query_status_round_trip(&client, &mut fake).await;
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_fails_only_that_command() {
    let (client, _events, mut fake) = connect().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.execute(qapi::qmp::query_status {}, T).await }
    });
    let cmd = fake.expect("query-status").await;
    fake.reply(&cmd, json!({"status": "hibernating", "running": false}))
        .await;
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, QmpError::BadReply { command, .. } if command == "query-status"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("hibernating"),
        "the raw JSON is shown: {err}"
    );
    query_status_round_trip(&client, &mut fake).await;
}

#[tokio::test]
async fn closing_fails_pending_and_later_calls_with_disconnected() {
    let (client, mut events, mut fake) = connect().await;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.execute(qapi::qmp::query_status {}, T).await }
    });
    fake.expect("query-status").await;
    drop(fake);

    let err = tokio::time::timeout(Duration::from_secs(1), pending)
        .await
        .expect("the pending call hangs")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, QmpError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("see its stderr"), "{err}");

    let later = tokio::time::timeout(Duration::from_secs(1), client.hmp("info status", T))
        .await
        .expect("a later call hangs")
        .unwrap_err();
    assert!(matches!(later, QmpError::Disconnected { .. }), "{later:?}");
    assert!(events.next().await.is_none(), "the event stream ends too");
}

#[tokio::test]
async fn a_silent_server_gives_timeout_and_the_late_reply_is_dropped() {
    let (client, _events, mut fake) = connect().await;
    let started = tokio::time::Instant::now();
    let err = client
        .execute(qapi::qmp::query_status {}, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(100));
    match &err {
        QmpError::Timeout { command, after } => {
            assert_eq!(command, "query-status");
            assert_eq!(*after, Duration::from_millis(100));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The late reply goes nowhere, and the next command gets its own.
    let late = fake.expect("query-status").await;
    fake.reply(&late, json!({"status": "paused", "running": false}))
        .await;
    query_status_round_trip(&client, &mut fake).await;
}

#[tokio::test]
async fn replies_out_of_order_are_routed_by_id() {
    let (client, _events, mut fake) = connect().await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.hmp("first", T).await }
    });
    let a = fake.expect("human-monitor-command").await;
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.hmp("second", T).await }
    });
    let b = fake.expect("human-monitor-command").await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["arguments"]["command-line"], "first");
    assert_eq!(b["arguments"]["command-line"], "second");

    fake.reply(&b, json!("answer to second\r\n")).await;
    fake.event(
        "RESET",
        Some(json!({"guest": false, "reason": "host-qmp-system-reset"})),
    )
    .await;
    fake.reply(&a, json!("answer to first\r\n")).await;
    assert_eq!(first.await.unwrap().unwrap(), "answer to first\r\n");
    assert_eq!(second.await.unwrap().unwrap(), "answer to second\r\n");
}

#[tokio::test]
async fn hmp_returns_the_text() {
    let (client, _events, mut fake) = connect().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.hmp("info status", T).await }
    });
    let cmd = fake.expect("human-monitor-command").await;
    assert_eq!(cmd["arguments"], json!({"command-line": "info status"}));
    fake.reply(&cmd, json!("VM status: paused (prelaunch)\r\n"))
        .await;
    assert_eq!(
        call.await.unwrap().unwrap(),
        "VM status: paused (prelaunch)\r\n"
    );
}

#[tokio::test]
async fn events_keep_coming_after_the_client_is_dropped() {
    let (client, mut events, mut fake) = connect().await;
    drop(client);
    fake.event(
        "SHUTDOWN",
        Some(json!({"guest": false, "reason": "host-qmp-quit"})),
    )
    .await;
    assert_eq!(next_event(&mut events).await.name, "SHUTDOWN");
    drop(fake);
    assert!(
        tokio::time::timeout(T, events.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ends with the connection"
    );
}

/// `qemu-system-arm` from PATH, if there is one.
fn find_qemu() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("qemu-system-arm"))
        .find(|candidate| candidate.is_file())
}

/// What QEMU wrote to its (piped) stderr, once it has exited.
async fn read_stderr(child: &mut tokio::process::Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut text).await.unwrap();
    }
    text
}

/// A firmware that spins: initial SP, reset vector, then `b .` in Thumb.
fn write_spin_firmware(path: &Path) {
    let mut image = Vec::new();
    image.extend_from_slice(&0x2000_1000u32.to_le_bytes());
    image.extend_from_slice(&0x0000_0009u32.to_le_bytes());
    image.extend_from_slice(&0xe7fe_e7feu32.to_le_bytes());
    std::fs::write(path, image).unwrap();
}

#[tokio::test]
async fn real_qemu_round_trip() {
    let Some(qemu) = find_qemu() else {
        eprintln!("skipped: qemu-system-arm is not on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("qmp.sock");
    let firmware = dir.path().join("spin.bin");
    // Without code at the reset vector, `cont` locks the M-profile CPU up and QEMU aborts.
    write_spin_firmware(&firmware);
    let mut child = tokio::process::Command::new(qemu)
        .args(["-M", "mps2-an385", "-cpu", "cortex-m3", "-display", "none"])
        .args(["-monitor", "none", "-serial", "null", "-S", "-nodefaults"])
        .arg("-kernel")
        .arg(&firmware)
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match UnixStream::connect(&socket).await {
            Ok(stream) => break stream,
            Err(err) => {
                if let Some(status) = child.try_wait().unwrap() {
                    let stderr = read_stderr(&mut child).await;
                    panic!("QEMU exited before its QMP socket came up: {status}\n{stderr}");
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no QMP socket: {err}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let (client, mut events) = QmpClient::handshake(stream, T).await.unwrap();
    assert!(client.qemu_version().0 >= 10, "{:?}", client.qemu_version());

    let status = client.execute(qapi::qmp::query_status {}, T).await.unwrap();
    assert!(!status.running);
    assert!(matches!(status.status, RunState::prelaunch), "{status:?}");

    client.execute(qapi::qmp::cont {}, T).await.unwrap();
    let resume = next_event(&mut events).await;
    assert!(
        matches!(resume.typed, Some(Event::RESUME { .. })),
        "{resume:?}"
    );
    assert!(resume.timestamp.is_some());

    client.execute(qapi::qmp::stop {}, T).await.unwrap();
    let stop = next_event(&mut events).await;
    assert!(matches!(stop.typed, Some(Event::STOP { .. })), "{stop:?}");

    let mtree = client.hmp("info mtree", T).await.unwrap();
    assert!(mtree.contains("memory"), "{mtree}");

    let err = client
        .execute_raw("no-such-command", None, T)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, QmpError::Command { class, .. } if class == "CommandNotFound"),
        "{err:?}"
    );

    client.execute(qapi::qmp::quit {}, T).await.unwrap();
    let shutdown = next_event(&mut events).await;
    assert!(
        matches!(
            shutdown.typed,
            Some(Event::SHUTDOWN { ref data, .. }) if matches!(data.reason, ShutdownCause::host_qmp_quit)
        ),
        "{shutdown:?}"
    );
    let status = tokio::time::timeout(T, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        tokio::time::timeout(T, events.next())
            .await
            .unwrap()
            .is_none()
    );
    let err = client
        .execute(qapi::qmp::query_status {}, T)
        .await
        .unwrap_err();
    assert!(matches!(err, QmpError::Disconnected { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unbounded_timeout_is_accepted() {
    let (client, _events, mut fake) = connect_with(Duration::MAX).await;
    let call = tokio::spawn(async move { client.hmp("info version", Duration::MAX).await });
    let cmd = fake.expect("human-monitor-command").await;
    fake.reply(&cmd, json!("10.0.2\r\n")).await;
    assert_eq!(call.await.unwrap().unwrap(), "10.0.2\r\n");
}
