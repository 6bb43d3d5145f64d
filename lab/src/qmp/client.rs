//! The client handle, the handshake and the tasks that own the socket.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::error::QmpError;
use super::event::{QmpEvent, QmpEvents};
use super::transport::{Incoming, LineReader, encode_command, parse_line};

/// A command's reply: its `return` member, or its `error` member.
type Body = Result<Value, Value>;

/// The id of `qmp_capabilities`, the first command of every connection.
const NEGOTIATION_ID: u64 = 0;

/// A connection to QEMU's QMP monitor; clones share the connection.
#[derive(Clone)]
pub struct QmpClient {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Where callers write their lines.
    out: Arc<Outgoing>,
    /// Wakes the writer task when a line waits in `out`; closed with the
    /// last handle, which ends the task once every line is written.
    wake: mpsc::Sender<()>,
    next_id: AtomicU64,
    version: (u64, u64, u64),
    /// Dropped with the last handle, which tells the reader task.
    _alive: oneshot::Sender<()>,
}

/// What the reader task and the callers share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The commands waiting for a reply, by id.
    waiters: HashMap<u64, oneshot::Sender<Body>>,
    /// `Some` once the connection has ended, holding its reason if any.
    closed: Option<Option<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, id: u64) -> Result<oneshot::Receiver<Body>, QmpError> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(QmpError::Disconnected {
                reason: reason.clone(),
            });
        }
        let (tx, rx) = oneshot::channel();
        state.waiters.insert(id, tx);
        Ok(rx)
    }

    fn forget(&self, id: u64) {
        self.lock().waiters.remove(&id);
    }

    fn deliver(&self, id: u64, body: Body) {
        let waiter = self.lock().waiters.remove(&id);
        match waiter {
            // The caller may have given up since; then nobody needs the reply.
            Some(tx) => drop(tx.send(body)),
            None => tracing::debug!(id, "QMP reply for a command no longer waiting; dropped"),
        }
    }

    /// Marks the connection as ended, failing every waiting command.
    fn disconnect(&self, reason: Option<String>) {
        let mut state = self.lock();
        state.closed.get_or_insert(reason);
        state.waiters.clear();
    }

    fn disconnected(&self) -> QmpError {
        QmpError::Disconnected {
            reason: self.lock().closed.clone().flatten(),
        }
    }
}

/// The write side of the connection. A caller writes its line itself when
/// the socket takes it at once, as it almost always does: a command costs
/// no hop through a task. What the socket does not take waits in
/// `pending`, and the writer task writes it, each line whole and in order.
struct Outgoing {
    state: Mutex<OutState>,
}

struct OutState {
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    /// Bytes the writer task has yet to write.
    pending: Vec<u8>,
    /// Whether the writer task has work (bytes pending or a flush under
    /// way): callers then leave their lines to it, so that lines stay whole
    /// and in order and no caller takes its place waiting on the socket.
    busy: bool,
}

impl Outgoing {
    fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `line` now if the socket takes it whole; otherwise queues it
    /// for the writer task. `Ok(true)` when the task must be woken.
    fn send(&self, line: &[u8]) -> io::Result<bool> {
        let mut out = self.lock();
        if out.busy {
            out.pending.extend_from_slice(line);
            return Ok(true);
        }
        // Never waits: a socket that is not ready leaves the rest to the
        // writer task, whose own poll registers for readiness.
        let mut cx = Context::from_waker(Waker::noop());
        let written = match out.writer.as_mut().poll_write(&mut cx, line)? {
            Poll::Ready(0) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(n) => n,
            Poll::Pending => 0,
        };
        if written == line.len() && out.writer.as_mut().poll_flush(&mut cx)?.is_ready() {
            return Ok(false);
        }
        out.pending.extend_from_slice(&line[written..]);
        out.busy = true;
        Ok(true)
    }

    /// Writes what is pending and flushes, for the writer task.
    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = self.lock();
        let out = &mut *out;
        while !out.pending.is_empty() {
            let n = ready!(out.writer.as_mut().poll_write(cx, &out.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.pending.drain(..n);
        }
        ready!(out.writer.as_mut().poll_flush(cx))?;
        out.busy = false;
        Poll::Ready(Ok(()))
    }
}

/// Removes a command's waiter when its caller stops waiting, however it stops.
struct Forget<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

impl QmpClient {
    /// Reads the greeting, negotiates capabilities (qmp_capabilities), spawns the reader task.
    ///
    /// `timeout` bounds the whole handshake. Must be called inside a Tokio runtime.
    pub async fn handshake<S>(
        stream: S,
        timeout: Duration,
    ) -> Result<(QmpClient, QmpEvents), QmpError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let started = Instant::now();
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = LineReader::new(read);
        let timed_out = |command: &str| QmpError::Timeout {
            command: command.to_owned(),
            after: timeout,
        };
        // The negotiation goes out before the greeting is read: QEMU reads
        // it as soon as its greeting is out, so one round trip is saved.
        // Out-of-band execution is asked for because with it QEMU reads a
        // command while the one before runs, instead of one at a time, so
        // that a batch ([`QmpClient::execute_batch`]) runs back to back. The
        // lab's monitors are sockets, which offer it.
        let shared = Arc::new(Shared::default());
        let negotiated = shared.register(NEGOTIATION_ID)?;
        let negotiate = encode_command(
            <qapi::qmp::qmp_capabilities as qapi::Command>::NAME,
            Some(qapi::qmp::qmp_capabilities {
                enable: Some(vec![qapi::qmp::QMPCapability::oob]),
            }),
            NEGOTIATION_ID,
        )
        .map_err(|source| QmpError::Encode {
            command: "qmp_capabilities".to_owned(),
            source,
        })?;
        tokio::time::timeout(timeout, write.write_all(&negotiate))
            .await
            .map_err(|_| timed_out("qmp_capabilities"))?
            .map_err(|err| QmpError::Disconnected {
                reason: Some(format!("writing to QEMU: {err}")),
            })?;
        let version = tokio::time::timeout(timeout, read_greeting(&mut reader))
            .await
            .map_err(|_| timed_out("QMP greeting"))??;

        let out = Arc::new(Outgoing {
            state: Mutex::new(OutState {
                writer: Box::pin(write),
                pending: Vec::new(),
                busy: false,
            }),
        });
        // One wake-up waiting is enough: the task writes all that is pending.
        let (wake_tx, wake_rx) = mpsc::channel(1);
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (alive_tx, alive_rx) = oneshot::channel();
        tokio::spawn(write_loop(Arc::clone(&out), wake_rx, Arc::clone(&shared)));
        tokio::spawn(read_loop(reader, Arc::clone(&shared), event_tx, alive_rx));
        let client = QmpClient {
            inner: Arc::new(Inner {
                shared,
                out,
                wake: wake_tx,
                next_id: AtomicU64::new(NEGOTIATION_ID + 1),
                version,
                _alive: alive_tx,
            }),
        };

        let remaining = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, negotiated).await {
            Err(_) => Err(timed_out("qmp_capabilities")),
            Ok(Err(_)) => Err(client.inner.shared.disconnected()),
            Ok(Ok(Err(error))) => Err(command_error("qmp_capabilities", error)),
            Ok(Ok(Ok(_))) => Ok((client, QmpEvents::new(event_rx))),
        }
    }

    /// QEMU's version from the greeting, e.g. (10, 0, 2).
    pub fn qemu_version(&self) -> (u64, u64, u64) {
        self.inner.version
    }

    /// Runs a typed command and waits for its reply, with a deadline.
    pub async fn execute<C: qapi::Command>(
        &self,
        cmd: C,
        timeout: Duration,
    ) -> Result<C::Ok, QmpError> {
        let reply = self.call(C::NAME, Some(&cmd), timeout).await?;
        C::Ok::deserialize(&reply).map_err(|err| QmpError::BadReply {
            command: C::NAME.to_owned(),
            reason: err.to_string(),
            raw: reply.to_string(),
        })
    }

    /// Runs a command by name with JSON arguments (for scenario steps that name arbitrary commands).
    ///
    /// Returns the reply's `return` member as is.
    pub async fn execute_raw(
        &self,
        name: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        self.call(name, args.as_ref(), timeout).await
    }

    /// Runs an HMP command through human-monitor-command and returns its text.
    ///
    /// HMP reports most failures in that text, not as a QMP error.
    pub async fn hmp(&self, command_line: &str, timeout: Duration) -> Result<String, QmpError> {
        let cmd = qapi::qmp::human_monitor_command {
            cpu_index: None,
            command_line: command_line.to_owned(),
        };
        self.execute(cmd, timeout).await
    }

    /// Runs several commands by name, written to QEMU in one piece before
    /// the first reply is awaited, so that QEMU reads them together and
    /// runs them in this order with nothing between them (`cont` then
    /// `stop` lets the guest run only while QEMU dispatches the `stop`).
    /// Returns their `return` members in order, or the first failure;
    /// `timeout` bounds the whole.
    pub async fn execute_batch(
        &self,
        commands: &[(&str, Option<Value>)],
        timeout: Duration,
    ) -> Result<Vec<Value>, QmpError> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        let mut sent = Vec::with_capacity(commands.len());
        for (name, args) in commands {
            let (command, line) = self.prepare(name, args.as_ref())?;
            lines.extend_from_slice(&line);
            sent.push(command);
        }
        self.write(&lines)?;
        let mut replies = Vec::with_capacity(sent.len());
        for command in sent {
            let left = deadline.saturating_duration_since(Instant::now());
            replies.push(self.receive(command, left).await?);
        }
        Ok(replies)
    }

    async fn call<A: Serialize>(
        &self,
        name: &str,
        args: Option<A>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let (sent, line) = self.prepare(name, args)?;
        self.write(&line)?;
        self.receive(sent, timeout).await
    }

    /// Encodes a command and registers for its reply, which comes to the
    /// returned [`Sent`] once its line is written.
    fn prepare<'a, A: Serialize>(
        &'a self,
        name: &'a str,
        args: Option<A>,
    ) -> Result<(Sent<'a>, Vec<u8>), QmpError> {
        let inner = &*self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let line = encode_command(name, args, id).map_err(|source| QmpError::Encode {
            command: name.to_owned(),
            source,
        })?;
        let reply = inner.shared.register(id)?;
        let sent = Sent {
            name,
            reply,
            _forget: Forget {
                shared: &inner.shared,
                id,
            },
        };
        Ok((sent, line))
    }

    /// Writes whole command lines to QEMU.
    fn write(&self, lines: &[u8]) -> Result<(), QmpError> {
        let inner = &*self.inner;
        match inner.out.send(lines) {
            Ok(false) => Ok(()),
            // A full channel already holds a wake-up; a closed one cannot
            // be, while this handle lives.
            Ok(true) => {
                let _ = inner.wake.try_send(());
                Ok(())
            }
            Err(err) => {
                inner
                    .shared
                    .disconnect(Some(format!("writing to QEMU: {err}")));
                Err(inner.shared.disconnected())
            }
        }
    }

    /// Waits up to `timeout` for the reply to `sent`.
    async fn receive(&self, sent: Sent<'_>, timeout: Duration) -> Result<Value, QmpError> {
        let name = sent.name;
        match tokio::time::timeout(timeout, sent.reply).await {
            Err(_) => Err(QmpError::Timeout {
                command: name.to_owned(),
                after: timeout,
            }),
            Ok(Err(_)) => Err(self.inner.shared.disconnected()),
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(error))) => Err(command_error(name, error)),
        }
    }
}

/// A command written to QEMU, waiting for its reply; forgotten by the
/// reader if dropped first.
struct Sent<'a> {
    name: &'a str,
    reply: oneshot::Receiver<Body>,
    _forget: Forget<'a>,
}

impl fmt::Debug for QmpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QmpClient")
            .field("qemu_version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

/// Turns an `error` member into [`QmpError::Command`].
fn command_error(command: &str, error: Value) -> QmpError {
    let field = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    match (field("class"), field("desc")) {
        (Some(class), Some(desc)) => QmpError::Command { class, desc },
        _ => QmpError::BadReply {
            command: command.to_owned(),
            reason: "an error reply without class and desc".to_owned(),
            raw: json!({ "error": error }).to_string(),
        },
    }
}

/// The parts of the greeting the client uses.
#[derive(Deserialize)]
struct Greeting {
    #[serde(rename = "QMP")]
    qmp: GreetingBody,
}

#[derive(Deserialize)]
struct GreetingBody {
    version: GreetingVersion,
}

#[derive(Deserialize)]
struct GreetingVersion {
    qemu: VersionTriple,
}

#[derive(Deserialize)]
struct VersionTriple {
    major: u64,
    minor: u64,
    micro: u64,
}

/// Reads up to the greeting and returns QEMU's version from it.
async fn read_greeting<R: AsyncRead + Unpin>(
    reader: &mut LineReader<R>,
) -> Result<(u64, u64, u64), QmpError> {
    loop {
        let line = reader
            .next_line()
            .await
            .map_err(|err| QmpError::Disconnected {
                reason: Some(err.to_string()),
            })?
            .ok_or_else(|| QmpError::Disconnected {
                reason: Some("before sending the QMP greeting".to_owned()),
            })?;
        let greeting = match parse_line(&line) {
            None => continue,
            Some(Incoming::Greeting(greeting)) => greeting,
            Some(_) => {
                return Err(QmpError::Greeting {
                    reason: "the first message has no QMP member".to_owned(),
                    raw: String::from_utf8_lossy(&line).trim_end().to_owned(),
                });
            }
        };
        let Greeting { qmp } =
            Greeting::deserialize(&greeting).map_err(|err| QmpError::Greeting {
                reason: err.to_string(),
                raw: greeting.to_string(),
            })?;
        let VersionTriple {
            major,
            minor,
            micro,
        } = qmp.version.qemu;
        return Ok((major, minor, micro));
    }
}

/// Writes what the callers left pending, each time one wakes it, until
/// every handle is dropped.
async fn write_loop(out: Arc<Outgoing>, mut wake: mpsc::Receiver<()>, shared: Arc<Shared>) {
    while wake.recv().await.is_some() {
        if let Err(err) = std::future::poll_fn(|cx| out.poll_drain(cx)).await {
            shared.disconnect(Some(format!("writing to QEMU: {err}")));
            return;
        }
    }
}

/// Routes replies to their callers and events to the channel, until the
/// connection ends or nobody is left to use it.
async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: LineReader<R>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<QmpEvent>,
    mut client_alive: oneshot::Receiver<()>,
) {
    let mut client_gone = false;
    let reason = loop {
        tokio::select! {
            line = reader.next_line() => match line {
                Ok(Some(line)) => dispatch(&shared, &events, &line),
                Ok(None) => break None,
                Err(err) => break Some(format!("reading from QEMU: {err}")),
            },
            _ = &mut client_alive, if !client_gone => client_gone = true,
            () = events.closed(), if client_gone => return,
        }
    };
    tracing::debug!(?reason, "QMP connection ended");
    shared.disconnect(reason);
}

fn dispatch(shared: &Shared, events: &mpsc::UnboundedSender<QmpEvent>, line: &[u8]) {
    match parse_line(line) {
        None => {}
        Some(Incoming::Event { name, message }) => {
            // Nobody may be listening for events; that is allowed.
            drop(events.send(QmpEvent::from_message(name, message)));
        }
        Some(Incoming::Reply { id: Some(id), body }) => shared.deliver(id, body),
        Some(Incoming::Reply { id: None, body }) => {
            tracing::warn!(?body, "skipping a QMP reply without an id");
        }
        Some(Incoming::Greeting(message) | Incoming::Unknown(message)) => {
            tracing::warn!(%message, "skipping an unexpected QMP message");
        }
    }
}
