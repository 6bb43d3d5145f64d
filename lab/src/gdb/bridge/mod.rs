//! The GDB-remote bridge server: one gdb endpoint per target, served with
//! the `gdbstub` crate and forwarded to a [`DebugBackend`].
//!
//! One gdb session at a time: each gets a fresh backend from the caller's
//! factory (QEMU's gdbstub takes one client), released when gdb detaches
//! (the target runs on), kills (it stays halted) or goes away (it is left
//! as it was; breakpoints the session set are removed in every case). A
//! second client while one is attached gets gdb's `E.` error reply to its
//! first packet, which gdb shows as "Remote failure reply: E.<why>", and is
//! closed. Sessions run on their own thread, as gdbstub is blocking.

mod arch;
mod conn;
mod event_loop;
mod target;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use gdbstub::stub::{DisconnectReason, GdbStub};

use self::conn::GdbConnection;
use self::event_loop::BridgeEventLoop;
use self::target::{BridgeTarget, SessionEnd};
use crate::gdb::{BackendError, DebugBackend};

/// Makes a freshly connected backend for each gdb session.
pub type BackendFactory = Box<dyn FnMut() -> Result<Box<dyn DebugBackend>, BackendError> + Send>;

/// The packet size advertised to gdb, 32x QEMU's. gdb sizes its `m`
/// requests to about half of it, so 64 KiB of memory travel in one or two
/// packets instead of 32; the backend splits each into reads its own stub
/// accepts and keeps several of them in flight.
const PACKET_SIZE: usize = 0x20000;
/// How long a new client waits for a session that is ending (gdb attaching
/// right after another one detached) before it is refused.
const HANDOVER_GRACE: Duration = Duration::from_millis(500);
/// How long a refused client has to send its first packet and to hang up.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// A running bridge: accepts gdb clients until shut down (or dropped).
pub struct BridgeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// Stops a [`BridgeServer`] from another thread (for example on Ctrl-C).
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Shared>);

struct Shared {
    addr: SocketAddr,
    stopping: AtomicBool,
    /// The attached client's stream while a session runs.
    session: Mutex<Option<TcpStream>>,
    session_ended: Condvar,
    factory: Mutex<BackendFactory>,
}

impl BridgeServer {
    /// Serves gdb on 127.0.0.1:`port`; port 0 picks a free one (see
    /// [`Self::local_addr`]).
    pub fn start(port: u16, factory: BackendFactory) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), factory)
    }

    /// Serves gdb on `addr`.
    pub fn start_on(addr: SocketAddr, factory: BackendFactory) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            stopping: AtomicBool::new(false),
            session: Mutex::new(None),
            session_ended: Condvar::new(),
            factory: Mutex::new(factory),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("gdb-bridge".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Self {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address gdb connects to (`target remote ADDR`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops this server from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.shared))
    }

    /// Stops accepting, ends the current session and waits for both.
    pub fn shutdown(mut self) {
        self.shared.stop();
        self.join_accept();
    }

    /// Serves until a [`ShutdownHandle`] stops the server.
    pub fn wait(mut self) {
        self.join_accept();
    }

    fn join_accept(&mut self) {
        if let Some(accept) = self.accept.take()
            && accept.join().is_err()
        {
            tracing::error!("gdb bridge: the accept loop panicked");
        }
    }
}

impl Drop for BridgeServer {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shared.stop();
            self.join_accept();
        }
    }
}

impl ShutdownHandle {
    /// Stops accepting clients and disconnects the attached one; the
    /// session leaves its target as on a lost connection.
    pub fn shutdown(&self) {
        self.0.stop();
    }
}

impl Shared {
    fn stop(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(stream) = self.lock_session().as_ref() {
            // Already closed by gdb is fine too.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        self.session_ended.notify_all();
        // Wake the blocking accept.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        if let Err(e) = TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            tracing::warn!("gdb bridge: cannot wake the accept loop on {wake}: {e}");
        }
    }

    fn lock_session(&self) -> MutexGuard<'_, Option<TcpStream>> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the session slot for `stream`, waiting a little for a session
    /// that is ending; `false` if another session keeps it.
    fn claim(&self, stream: &TcpStream) -> io::Result<bool> {
        let slot = self.lock_session();
        let (mut slot, _) = self
            .session_ended
            .wait_timeout_while(slot, HANDOVER_GRACE, |s| {
                s.is_some() && !self.stopping.load(Ordering::SeqCst)
            })
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() || self.stopping.load(Ordering::SeqCst) {
            return Ok(false);
        }
        *slot = Some(stream.try_clone()?);
        Ok(true)
    }

    fn release(&self) {
        *self.lock_session() = None;
        self.session_ended.notify_all();
    }

    fn new_backend(&self) -> Result<Box<dyn DebugBackend>, BackendError> {
        let mut factory = self.factory.lock().unwrap_or_else(PoisonError::into_inner);
        factory()
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("gdb bridge: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        clients.retain(|c| !c.is_finished());
        let shared = Arc::clone(shared);
        match thread::Builder::new()
            .name("gdb-bridge-session".into())
            .spawn(move || serve_client(&shared, stream))
        {
            Ok(client) => clients.push(client),
            Err(e) => tracing::error!("gdb bridge: cannot start a session thread: {e}"),
        }
    }
    for client in clients {
        if client.join().is_err() {
            tracing::error!("gdb bridge: a session thread panicked");
        }
    }
}

fn serve_client(shared: &Shared, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    match shared.claim(&stream) {
        Ok(true) => {}
        Ok(false) => {
            if !shared.stopping.load(Ordering::SeqCst) {
                tracing::info!("gdb bridge: refusing {peer}: another session is attached");
                refuse(
                    stream,
                    "the target is busy: another gdb session is attached to it",
                );
            }
            return;
        }
        Err(e) => {
            tracing::warn!("gdb bridge: {peer}: {e}");
            return;
        }
    }
    match shared.new_backend() {
        Ok(backend) => {
            tracing::info!("gdb bridge: session from {peer}");
            let end = run_session(stream, backend);
            tracing::info!("gdb bridge: session from {peer} ended ({end:?})");
        }
        Err(e) => {
            tracing::warn!("gdb bridge: {peer}: no backend: {e}");
            refuse(stream, &format!("cannot reach the target: {e}"));
        }
    }
    shared.release();
}

/// Runs one gdb session to its end and cleans the target up.
fn run_session(stream: TcpStream, backend: Box<dyn DebugBackend>) -> SessionEnd {
    let mut target = BridgeTarget::new(backend);
    let end = match GdbStub::builder(GdbConnection::new(stream))
        .packet_buffer_size(PACKET_SIZE)
        .build()
    {
        Err(e) => {
            tracing::error!("gdb bridge: {e}");
            SessionEnd::Lost
        }
        Ok(stub) => match stub.run_blocking::<BridgeEventLoop>(&mut target) {
            Ok(DisconnectReason::Disconnect) => SessionEnd::Detach,
            Ok(DisconnectReason::Kill) => SessionEnd::Kill,
            Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => {
                SessionEnd::Exited
            }
            Err(e) => {
                if e.is_target_error() {
                    tracing::warn!("gdb bridge: the session failed: {e}");
                } else {
                    tracing::info!("gdb bridge: gdb went away: {e}");
                }
                SessionEnd::Lost
            }
        },
    };
    target.finish(end);
    end
}

/// Answers the client's first packet with `E.<why>` (gdb prints "Remote
/// failure reply: E.<why>") and hangs up.
fn refuse(mut stream: TcpStream, why: &str) {
    let result = (|| -> io::Result<()> {
        stream.set_read_timeout(Some(REFUSAL_TIMEOUT))?;
        stream.set_nodelay(true)?;
        read_first_packet(&mut stream)?;
        let body: String = format!("E.{why}")
            .chars()
            .map(|c| if "$#}*".contains(c) { '\'' } else { c })
            .collect();
        let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        stream.write_all(format!("+${body}#{sum:02x}").as_bytes())?;
        stream.shutdown(std::net::Shutdown::Write)?;
        // Drain until gdb hangs up, so that our reply is not lost to a reset.
        let mut sink = [0u8; 256];
        while stream.read(&mut sink)? > 0 {}
        Ok(())
    })();
    if let Err(e) = result {
        tracing::debug!("gdb bridge: refusal: {e}");
    }
}

/// Reads up to the end of the first packet (`$...#xx`).
fn read_first_packet(stream: &mut TcpStream) -> io::Result<()> {
    let mut byte = [0u8];
    let mut checksum_left = None;
    loop {
        stream.read_exact(&mut byte)?;
        match (checksum_left, byte[0]) {
            (Some(1), _) => return Ok(()),
            (Some(n), _) => checksum_left = Some(n - 1),
            (None, b'#') => checksum_left = Some(2),
            (None, _) => {}
        }
    }
}
