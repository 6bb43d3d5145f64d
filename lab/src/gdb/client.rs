//! A synchronous GDB remote client, used against QEMU's gdbstub and against
//! the lab's own bridge.

use std::collections::{HashMap, VecDeque};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::conn::{AckEvent, ConnError, Connection, Transport};
use super::protocol::packet::{self, INTERRUPT};
use super::protocol::query::{self, Features};
use super::protocol::resume::{self, Async};
use super::protocol::{breakpoints, memory, registers};
use super::regs::{DescriptionError, RegisterMap};
use super::{BackendError, BreakKind, DebugBackend, StopReason};

/// How long a request waits for its reply unless [`GdbClient::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The packet size assumed when the stub does not announce one.
const FALLBACK_PACKET_SIZE: usize = 400;
/// How much of a request an error message quotes.
const QUOTE: usize = 48;
/// How many `m` requests a large read keeps in flight by default.
pub const DEFAULT_READ_WINDOW: usize = 8;

/// Errors of the GDB client.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// The connection failed or closed.
    #[error(transparent)]
    Connection(#[from] ConnError),
    /// No reply in time.
    #[error(
        "no reply to `{request}` within {after:?}; the target may be running or hung (interrupt it, or raise the timeout)"
    )]
    Timeout {
        /// The request, shortened.
        request: String,
        /// How long we waited.
        after: Duration,
    },
    /// The stub answered `Exx`.
    #[error("the stub refused `{request}` with E{code:02x}; check the address, register or length")]
    Refused {
        /// The request, shortened.
        request: String,
        /// The error number.
        code: u8,
    },
    /// The stub answered with an empty packet: it does not know the request.
    #[error("the stub does not support `{0}`")]
    Unsupported(String),
    /// The stub's reply makes no sense for the request.
    #[error("unexpected reply to `{request}`: `{reply}`; the stub may speak another dialect")]
    Unexpected {
        /// The request, shortened.
        request: String,
        /// The reply, shortened.
        reply: String,
    },
    /// A request would exceed the stub's `PacketSize`.
    #[error("a {len}-byte packet exceeds the stub's limit of {max} bytes; send less at a time")]
    TooLarge {
        /// The packet's size.
        len: usize,
        /// The stub's limit.
        max: usize,
    },
    /// The target runs, so it cannot answer this now.
    #[error("the target is running; interrupt it or wait for it to stop first")]
    Running,
    /// `wait_stop` was called while the target is stopped.
    #[error("the target is not running; resume it first")]
    NotRunning,
    /// The target has exited or we detached; only a new connection helps.
    #[error("the target is gone ({0}); start it again and reconnect")]
    Gone(String),
    /// The target description is broken.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// The target description has no such register.
    #[error("the target has no register `{0}`; see the names in its target description")]
    UnknownRegister(String),
}

/// What the target is doing, as far as the client knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Stopped,
    Running,
    Exited(StopReason),
    Detached,
}

/// A client for one GDB remote stub (QEMU's gdbstub or the lab's bridge).
pub struct GdbClient<S = UnixStream> {
    conn: Connection<S>,
    timeout: Duration,
    features: Features,
    packet_size: usize,
    state: State,
    /// The request being built.
    req: Vec<u8>,
    /// Decoded data of the last reply.
    data: Vec<u8>,
    xml: HashMap<String, Vec<u8>>,
    registers: Option<RegisterMap>,
    console: Vec<u8>,
    /// How many `m` requests a large read keeps in flight (1: one at a time).
    read_window: usize,
    /// Replies still owed for requests abandoned on a timeout; skipped before
    /// the next request so that replies stay matched to requests.
    stale: usize,
    /// Acks taken from the connection during a pipelined read.
    acks: Vec<AckEvent>,
}

/// One `m` request of a pipelined read.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    /// Offset in the caller's buffer.
    offset: usize,
    len: usize,
    /// Whether the stub acked it (always, without acks).
    acked: bool,
}

impl GdbClient<UnixStream> {
    /// Connects to a stub on a unix socket, retrying until `timeout` while the
    /// socket does not exist yet, and negotiates features.
    pub fn connect_unix(path: &Path, timeout: Duration) -> Result<Self, GdbError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e)
                    if Instant::now() < deadline
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                        ) =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(ConnError::Io(e).into()),
            }
        };
        let mut client = Self::with_timeout(stream, timeout)?;
        client.timeout = DEFAULT_TIMEOUT;
        Ok(client)
    }
}

impl<S: Transport> GdbClient<S> {
    /// Wraps a connected stream (for TCP, turns Nagle off) and negotiates
    /// features with `qSupported` (and `QStartNoAckMode` where offered).
    pub fn new(stream: S) -> Result<Self, GdbError> {
        Self::with_timeout(stream, DEFAULT_TIMEOUT)
    }

    fn with_timeout(stream: S, timeout: Duration) -> Result<Self, GdbError> {
        let mut client = Self {
            conn: Connection::new(stream)?,
            timeout,
            features: query::parse_supported(b""),
            packet_size: FALLBACK_PACKET_SIZE,
            state: State::Stopped,
            req: Vec::with_capacity(8 << 10),
            data: Vec::with_capacity(8 << 10),
            xml: HashMap::new(),
            registers: None,
            console: Vec::new(),
            read_window: DEFAULT_READ_WINDOW,
            stale: 0,
            acks: Vec::new(),
        };
        client.request(|r| r.extend_from_slice(query::SUPPORTED_REQUEST))?;
        client.features = query::parse_supported(client.conn.reply());
        client.packet_size = client.features.packet_size.unwrap_or(FALLBACK_PACKET_SIZE);
        client.conn.reserve_frame(client.packet_size);
        if client.features.no_ack_mode {
            client.request(|r| r.extend_from_slice(b"QStartNoAckMode"))?;
            if client.conn.reply() == b"OK" {
                client.conn.flush_ack()?;
                client.conn.set_no_ack();
            }
        }
        Ok(client)
    }

    /// Sets how long each request waits for its reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// What the stub announced in `qSupported`.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The largest packet the stub accepts, in bytes.
    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// How many `m` requests a large [`Self::read_memory`] keeps in flight
    /// (at least 1; 1 sends one and waits for its reply before the next).
    /// Pipelining needs a stub that parses its input in order without
    /// waiting for our acks, as QEMU's system-mode gdbstub and gdbstub-based
    /// bridges do; QEMU's user-mode gdbstub waits for acks, so use 1 there.
    pub fn set_read_window(&mut self, window: usize) {
        self.read_window = window.max(1);
    }

    /// Console output (`O` packets) received while the target ran, taken out.
    pub fn take_console(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.console)
    }

    /// Sends the request that `build` writes and waits for its reply.
    fn request(&mut self, build: impl FnOnce(&mut Vec<u8>)) -> Result<(), GdbError> {
        self.ready()?;
        self.build(build)?;
        self.conn.send(&self.req)?;
        self.await_reply()
    }

    /// Checks that the target is stopped and skips replies owed to
    /// requests that timed out, so that a request may go out.
    fn ready(&mut self) -> Result<(), GdbError> {
        match &self.state {
            State::Stopped => {}
            State::Running => return Err(GdbError::Running),
            State::Exited(reason) => return Err(GdbError::Gone(format!("{reason:?}"))),
            State::Detached => return Err(GdbError::Gone("detached".into())),
        }
        while self.stale > 0 {
            if !self.conn.receive(Instant::now() + self.timeout)? {
                return Err(GdbError::Timeout {
                    request: format!("(late replies to {} earlier requests)", self.stale),
                    after: self.timeout,
                });
            }
            self.stale -= 1;
        }
        Ok(())
    }

    /// Builds a request into `self.req`, checking it against the packet size.
    fn build(&mut self, build: impl FnOnce(&mut Vec<u8>)) -> Result<(), GdbError> {
        self.req.clear();
        build(&mut self.req);
        if self.req.len() + 4 > self.packet_size {
            return Err(GdbError::TooLarge {
                len: self.req.len() + 4,
                max: self.packet_size,
            });
        }
        Ok(())
    }

    /// Waits for the reply to the request just sent.
    fn await_reply(&mut self) -> Result<(), GdbError> {
        if self.conn.receive(Instant::now() + self.timeout)? {
            Ok(())
        } else {
            Err(GdbError::Timeout {
                request: self.quote_request(),
                after: self.timeout,
            })
        }
    }

    fn quote_request(&self) -> String {
        String::from_utf8_lossy(&self.req[..self.req.len().min(QUOTE)]).into_owned()
    }

    /// The error for a reply that is not what the request wanted.
    fn bad_reply(&self) -> GdbError {
        let reply = self.conn.reply();
        if let Some(code) = packet::error_code(reply) {
            GdbError::Refused {
                request: self.quote_request(),
                code,
            }
        } else if reply.is_empty() {
            GdbError::Unsupported(self.quote_request())
        } else {
            GdbError::Unexpected {
                request: self.quote_request(),
                reply: String::from_utf8_lossy(&reply[..reply.len().min(QUOTE)]).into_owned(),
            }
        }
    }

    /// Expects `OK`.
    fn expect_ok(&self) -> Result<(), GdbError> {
        if self.conn.reply() == b"OK" {
            Ok(())
        } else {
            Err(self.bad_reply())
        }
    }

    /// Decodes a hex reply into `self.data`.
    fn hex_reply(&mut self) -> Result<(), GdbError> {
        let reply = self.conn.reply();
        if packet::error_code(reply).is_some()
            || packet::decode_hex_into(reply, &mut self.data).is_none()
        {
            return Err(self.bad_reply());
        }
        Ok(())
    }

    /// Why the target is stopped (`?`).
    pub fn halt_reason(&mut self) -> Result<StopReason, GdbError> {
        self.request(|r| r.push(b'?'))?;
        match resume::parse(self.conn.reply()) {
            Some(Async::Stop(reason)) => Ok(reason),
            _ => Err(self.bad_reply()),
        }
    }

    /// All registers of the `g` packet, in target byte order.
    pub fn read_registers(&mut self) -> Result<Vec<u8>, GdbError> {
        self.request(|r| r.push(b'g'))?;
        self.hex_reply()?;
        Ok(self.data.clone())
    }

    /// Writes all registers of the `g` packet (`G`).
    pub fn write_registers(&mut self, bytes: &[u8]) -> Result<(), GdbError> {
        self.request(|r| registers::write_all(r, bytes))?;
        self.expect_ok()
    }

    /// One register by number (`p`); `None` when the stub has no such register.
    pub fn read_register(&mut self, regnum: usize) -> Result<Option<Vec<u8>>, GdbError> {
        self.request(|r| registers::read_one(r, regnum))?;
        let reply = self.conn.reply();
        if packet::error_code(reply).is_some() || reply.first() == Some(&b'x') {
            return Ok(None);
        }
        self.hex_reply()?;
        Ok(Some(self.data.clone()))
    }

    /// Writes one register by number (`P`).
    pub fn write_register(&mut self, regnum: usize, bytes: &[u8]) -> Result<(), GdbError> {
        self.request(|r| registers::write_one(r, regnum, bytes))?;
        self.expect_ok()
    }

    /// The target description, fetched on first use.
    pub fn register_map(&mut self) -> Result<&RegisterMap, GdbError> {
        let map = match self.registers.take() {
            Some(map) => map,
            None => {
                let root = self.target_xml_string("target.xml")?;
                RegisterMap::parse(&root, |annex| self.target_xml_string(annex))?
            }
        };
        Ok(self.registers.insert(map))
    }

    fn target_xml_string(&mut self, annex: &str) -> Result<String, GdbError> {
        let bytes = self.target_xml(annex)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A register's number and size in bytes, by name.
    fn register_slot(&mut self, name: &str) -> Result<(usize, usize), GdbError> {
        let reg = self
            .register_map()?
            .get(name)
            .ok_or_else(|| GdbError::UnknownRegister(name.to_owned()))?;
        Ok((reg.regnum, (reg.bitsize as usize).div_ceil(8)))
    }

    /// A register by name (`pc`, `xpsr`, `msp`, `d0`), read with `p` and
    /// taken as little-endian (as on Arm); at most 64 bits.
    pub fn read_register_by_name(&mut self, name: &str) -> Result<u64, GdbError> {
        let (regnum, _) = self.register_slot(name)?;
        let bytes = self
            .read_register(regnum)?
            .ok_or_else(|| GdbError::UnknownRegister(name.to_owned()))?;
        Ok(bytes
            .iter()
            .take(8)
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    /// Writes a register by name, little-endian in its own size.
    pub fn write_register_by_name(&mut self, name: &str, value: u64) -> Result<(), GdbError> {
        let (regnum, size) = self.register_slot(name)?;
        let bytes = value.to_le_bytes();
        self.write_register(regnum, &bytes[..size.min(8)])
    }

    /// Reads memory into `buf` in chunks that fit the packet size; returns
    /// how many bytes were read (fewer when the target stops answering
    /// part-way; an error when not even the first chunk could be read).
    /// Keeps up to the read window of `m` requests in flight
    /// ([`Self::set_read_window`]).
    pub fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, GdbError> {
        let chunk = memory::read_chunk(self.packet_size);
        if self.read_window > 1 && buf.len() > chunk {
            return self.read_memory_pipelined(addr, buf, chunk);
        }
        let mut done = 0;
        while done < buf.len() {
            let len = chunk.min(buf.len() - done);
            self.request(|r| memory::read(r, addr + done as u64, len))?;
            let reply = self.conn.reply();
            let got = (reply.len() / 2).min(len);
            if packet::error_code(reply).is_some()
                || packet::decode_hex_to_slice(reply, &mut buf[done..done + got]).is_none()
            {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(self.bad_reply())
                };
            }
            done += got;
            if got < len {
                break;
            }
        }
        Ok(done)
    }

    /// [`Self::read_memory`] with several `m` requests in flight. The stub
    /// answers in order, each reply after its request's ack; a nacked
    /// request is sent again and its reply comes later. On a refused or
    /// short chunk nothing more is sent and the replies in flight are
    /// drained, so that the connection stays in step.
    fn read_memory_pipelined(
        &mut self,
        addr: u64,
        buf: &mut [u8],
        chunk: usize,
    ) -> Result<usize, GdbError> {
        self.ready()?;
        let no_ack = self.conn.no_ack();
        self.conn.track_acks(!no_ack);
        self.acks.clear();
        let mut flight: VecDeque<Chunk> = VecDeque::with_capacity(self.read_window);
        let mut next = 0;
        // Where the readable prefix ends, and the error of its end if that
        // is the very first byte.
        let mut limit = buf.len();
        let mut first_error = None;
        let mut resend = Vec::new();
        let result = 'pipe: loop {
            while next < limit && flight.len() < self.read_window {
                let len = chunk.min(limit - next);
                if let Err(e) = self.send_read(addr, next, len) {
                    break 'pipe Err(e);
                }
                flight.push_back(Chunk {
                    offset: next,
                    len,
                    acked: no_ack,
                });
                next += len;
            }
            if flight.is_empty() {
                break Ok(());
            }
            match self.conn.receive(Instant::now() + self.timeout) {
                Ok(true) => {}
                Ok(false) => {
                    let front = flight[0];
                    self.stale = flight.len();
                    // Only for the message; it fit when it was sent.
                    let _ = self.build(|r| memory::read(r, addr + front.offset as u64, front.len));
                    break Err(GdbError::Timeout {
                        request: self.quote_request(),
                        after: self.timeout,
                    });
                }
                Err(e) => break Err(GdbError::from(e)),
            }
            // Acks arrive in the order of our requests, each before its reply.
            // A nacked request goes to the back of the line and is sent again.
            self.conn.take_acks(&mut self.acks);
            for ack in self.acks.drain(..) {
                let Some(i) = flight.iter().position(|c| !c.acked) else {
                    continue;
                };
                match ack {
                    AckEvent::Ack => flight[i].acked = true,
                    AckEvent::Nack => {
                        let c = flight.remove(i).expect("in flight");
                        flight.push_back(c);
                        resend.push(c);
                    }
                }
            }
            // The reply answers the oldest acked request (the oldest one at
            // all from a stub that does not ack).
            let i = flight.iter().position(|c| c.acked).unwrap_or(0);
            let c = flight.remove(i).expect("in flight");
            for again in resend.drain(..) {
                if let Err(e) = self.send_read(addr, again.offset, again.len) {
                    break 'pipe Err(e);
                }
            }
            if c.offset >= limit {
                // Past a failure already found: only drained.
                continue;
            }
            let reply = self.conn.reply();
            let got = (reply.len() / 2).min(c.len);
            let ok = packet::error_code(reply).is_none()
                && packet::decode_hex_to_slice(reply, &mut buf[c.offset..c.offset + got]).is_some();
            if !ok || got < c.len {
                let end = if ok { c.offset + got } else { c.offset };
                if end < limit {
                    limit = end;
                    if end == 0 {
                        let _ = self.build(|r| memory::read(r, addr, c.len));
                        first_error = Some(self.bad_reply());
                    }
                }
            }
        };
        self.conn.track_acks(false);
        result?;
        match first_error {
            Some(e) if limit == 0 => Err(e),
            _ => Ok(limit),
        }
    }

    fn send_read(&mut self, addr: u64, offset: usize, len: usize) -> Result<(), GdbError> {
        self.build(|r| memory::read(r, addr + offset as u64, len))?;
        self.conn.send(&self.req)?;
        Ok(())
    }

    /// Reads `len` bytes of memory; an error unless all could be read.
    pub fn read_memory_vec(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, GdbError> {
        let mut buf = vec![0; len];
        let got = self.read_memory(addr, &mut buf)?;
        if got < len {
            return Err(GdbError::Refused {
                request: format!("m{:x},{len:x} (only {got} bytes readable)", addr),
                code: 0,
            });
        }
        Ok(buf)
    }

    /// Writes memory in chunks that fit the packet size (`M`).
    pub fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), GdbError> {
        let chunk = memory::write_chunk(self.packet_size);
        for (i, part) in data.chunks(chunk).enumerate() {
            self.request(|r| memory::write(r, addr + (i * chunk) as u64, part))?;
            self.expect_ok()?;
        }
        Ok(())
    }

    /// Reads a little-endian 32-bit word.
    pub fn read_u32(&mut self, addr: u64) -> Result<u32, GdbError> {
        let mut word = [0; 4];
        if self.read_memory(addr, &mut word)? < 4 {
            return Err(self.bad_reply());
        }
        Ok(u32::from_le_bytes(word))
    }

    /// Writes a little-endian 32-bit word.
    pub fn write_u32(&mut self, addr: u64, value: u32) -> Result<(), GdbError> {
        self.write_memory(addr, &value.to_le_bytes())
    }

    /// Inserts a breakpoint or watchpoint (`Z`); `Ok(false)` when the stub
    /// does not support the kind. `len` is the watched size, or the
    /// breakpoint kind (2 for Thumb).
    pub fn insert_break(&mut self, kind: BreakKind, addr: u64, len: u64) -> Result<bool, GdbError> {
        self.breakpoint(true, kind, addr, len)
    }

    /// Removes a breakpoint or watchpoint (`z`); `Ok(false)` when unsupported.
    pub fn remove_break(&mut self, kind: BreakKind, addr: u64, len: u64) -> Result<bool, GdbError> {
        self.breakpoint(false, kind, addr, len)
    }

    fn breakpoint(
        &mut self,
        insert: bool,
        kind: BreakKind,
        addr: u64,
        len: u64,
    ) -> Result<bool, GdbError> {
        self.request(|r| breakpoints::request(r, insert, kind, addr, len))?;
        match self.conn.reply() {
            b"OK" => Ok(true),
            b"" => Ok(false),
            _ => Err(self.bad_reply()),
        }
    }

    /// Resumes the target (`c`, or `s` for one instruction); returns at once.
    pub fn resume(&mut self, step: bool) -> Result<(), GdbError> {
        if self.state != State::Stopped {
            return self.request(|_| {});
        }
        self.conn.send(if step { b"s" } else { b"c" })?;
        self.state = State::Running;
        Ok(())
    }

    /// Runs the target backwards (`bc`, or `bs` for one instruction) and
    /// returns at once; the stop arrives through [`Self::wait_stop`]. Only a
    /// stub that announced `ReverseStep+` and `ReverseContinue+` (QEMU
    /// replaying a recording) can.
    pub fn reverse(&mut self, step: bool) -> Result<(), GdbError> {
        if !self.features.reverse {
            return Err(GdbError::Unsupported(
                "reverse execution (the stub offers it only while QEMU replays a recording)".into(),
            ));
        }
        if self.state != State::Stopped {
            return self.request(|_| {});
        }
        self.req.clear();
        self.req.extend_from_slice(if step { b"bs" } else { b"bc" });
        self.conn.send(&self.req)?;
        self.state = State::Running;
        Ok(())
    }

    /// One instruction backwards: `bs`, then waits for the stop.
    pub fn reverse_step(&mut self) -> Result<StopReason, GdbError> {
        self.reverse(true)?;
        self.wait_stop(self.timeout)?
            .ok_or_else(|| GdbError::Timeout {
                request: "bs".into(),
                after: self.timeout,
            })
    }

    /// Waits up to `timeout` for the target to stop; `None` if it still runs.
    /// Console output that arrives meanwhile is kept for [`Self::take_console`].
    pub fn wait_stop(&mut self, timeout: Duration) -> Result<Option<StopReason>, GdbError> {
        if self.state != State::Running {
            return Err(GdbError::NotRunning);
        }
        let deadline = Instant::now() + timeout;
        while self.conn.receive(deadline)? {
            match resume::parse(self.conn.reply()) {
                Some(Async::Output(hex)) => {
                    if packet::decode_hex_into(hex, &mut self.data).is_some() {
                        self.console.extend_from_slice(&self.data);
                    }
                }
                Some(Async::Stop(reason)) => {
                    self.state = match reason {
                        StopReason::Signal { .. } => State::Stopped,
                        _ => State::Exited(reason.clone()),
                    };
                    return Ok(Some(reason));
                }
                // QEMU refuses a reverse request (`E14`: no way back from
                // here) instead of running; the target stays where it was.
                None if packet::error_code(self.conn.reply()).is_some() => {
                    self.state = State::Stopped;
                    return Err(self.bad_reply());
                }
                None => {
                    self.req.clear();
                    self.req.extend_from_slice(b"c");
                    return Err(self.bad_reply());
                }
            }
        }
        Ok(None)
    }

    /// Waits up to `timeout` for the next stop the stub reports on its own,
    /// whatever the client believes. QEMU's gdbstub reports every stop of
    /// the machine (a breakpoint, a QMP `stop`), also after someone else
    /// resumed it (QMP `cont`) while the client thought it stopped.
    pub fn wait_next_stop(&mut self, timeout: Duration) -> Result<Option<StopReason>, GdbError> {
        match &self.state {
            State::Exited(reason) => return Ok(Some(reason.clone())),
            State::Detached => return Err(GdbError::Gone("detached".into())),
            State::Stopped | State::Running => self.state = State::Running,
        }
        self.wait_stop(timeout)
    }

    /// One instruction: `s`, then waits for the stop.
    pub fn step(&mut self) -> Result<StopReason, GdbError> {
        self.resume(true)?;
        self.wait_stop(self.timeout)?
            .ok_or_else(|| GdbError::Timeout {
                request: "s".into(),
                after: self.timeout,
            })
    }

    /// Asks a running target to stop (the 0x03 byte); the stop arrives
    /// through [`Self::wait_stop`].
    pub fn interrupt(&mut self) -> Result<(), GdbError> {
        self.conn.send_byte(INTERRUPT)?;
        Ok(())
    }

    /// Lets the target run on and ends the session (`D`).
    pub fn detach(&mut self) -> Result<(), GdbError> {
        self.request(|r| r.push(b'D'))?;
        self.expect_ok()?;
        self.state = State::Detached;
        // The target runs on and may exit and close the socket before our
        // ack of the `OK` arrives; the detach has happened either way.
        let _ = self.conn.flush_ack();
        Ok(())
    }

    /// Kills the target (`k`); QEMU exits. Waits up to the request timeout
    /// for the stub to close the connection.
    pub fn kill(&mut self) -> Result<(), GdbError> {
        if self.state == State::Running {
            return Err(GdbError::Running);
        }
        self.conn.send(b"k")?;
        self.state = State::Exited(StopReason::Terminated(9));
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.conn.receive(deadline) {
                Ok(true) => {}
                Ok(false) | Err(ConnError::Closed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A target description document (`target.xml` or one it includes),
    /// read with `qXfer:features:read` in packet-sized pieces and cached.
    pub fn target_xml(&mut self, annex: &str) -> Result<Vec<u8>, GdbError> {
        if let Some(doc) = self.xml.get(annex) {
            return Ok(doc.clone());
        }
        if !self.features.xfer_features {
            return Err(GdbError::Unsupported("qXfer:features:read".into()));
        }
        let length = self.packet_size.saturating_sub(5).max(1);
        let mut doc = Vec::new();
        loop {
            let offset = doc.len();
            self.request(|r| query::xfer_features(r, annex, offset, length))?;
            let Some((_, last)) = query::parse_xfer(self.conn.reply()) else {
                return Err(self.bad_reply());
            };
            let reply = self.conn.reply_mut();
            reply.remove(0);
            packet::unescape(reply);
            if reply.is_empty() && !last {
                return Err(self.bad_reply());
            }
            doc.extend_from_slice(self.conn.reply());
            if last {
                break;
            }
        }
        self.xml.insert(annex.to_owned(), doc.clone());
        Ok(doc)
    }
}

impl From<GdbError> for BackendError {
    fn from(e: GdbError) -> Self {
        match e {
            GdbError::Timeout { request, after } => BackendError::Timeout { request, after },
            GdbError::Refused { request, code } => BackendError::Refused {
                request,
                reply: format!("E{code:02x}"),
            },
            GdbError::Unsupported(what) => BackendError::Unsupported(what),
            GdbError::Connection(_) | GdbError::Gone(_) | GdbError::Unexpected { .. } => {
                BackendError::Connection(e.to_string())
            }
            other => BackendError::Refused {
                request: String::new(),
                reply: other.to_string(),
            },
        }
    }
}

impl<S: Transport> DebugBackend for GdbClient<S> {
    fn target_xml(&mut self, annex: &str) -> Result<Vec<u8>, BackendError> {
        Ok(GdbClient::target_xml(self, annex)?)
    }

    fn read_registers(&mut self) -> Result<Vec<u8>, BackendError> {
        Ok(GdbClient::read_registers(self)?)
    }

    fn write_registers(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        Ok(GdbClient::write_registers(self, bytes)?)
    }

    fn read_register(&mut self, regnum: usize) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(GdbClient::read_register(self, regnum)?)
    }

    fn write_register(&mut self, regnum: usize, bytes: &[u8]) -> Result<(), BackendError> {
        Ok(GdbClient::write_register(self, regnum, bytes)?)
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, BackendError> {
        Ok(GdbClient::read_memory(self, addr, buf)?)
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), BackendError> {
        Ok(GdbClient::write_memory(self, addr, data)?)
    }

    fn insert_break(&mut self, kind: BreakKind, addr: u64, len: u64) -> Result<bool, BackendError> {
        Ok(GdbClient::insert_break(self, kind, addr, len)?)
    }

    fn remove_break(&mut self, kind: BreakKind, addr: u64, len: u64) -> Result<bool, BackendError> {
        Ok(GdbClient::remove_break(self, kind, addr, len)?)
    }

    fn resume(&mut self, step: bool) -> Result<(), BackendError> {
        Ok(GdbClient::resume(self, step)?)
    }

    fn wait_stop(&mut self, timeout: Duration) -> Result<Option<StopReason>, BackendError> {
        Ok(GdbClient::wait_stop(self, timeout)?)
    }

    fn interrupt(&mut self) -> Result<(), BackendError> {
        Ok(GdbClient::interrupt(self)?)
    }

    fn halt_reason(&mut self) -> Result<StopReason, BackendError> {
        Ok(GdbClient::halt_reason(self)?)
    }

    fn detach(&mut self) -> Result<(), BackendError> {
        Ok(GdbClient::detach(self)?)
    }

    fn supports_reverse(&mut self) -> bool {
        self.features.reverse
    }

    fn reverse(&mut self, step: bool) -> Result<(), BackendError> {
        Ok(GdbClient::reverse(self, step)?)
    }
}
