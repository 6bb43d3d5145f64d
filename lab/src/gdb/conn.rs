//! A framed, buffered connection to a GDB remote stub: one write per packet,
//! large reads, acks folded into the next write.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::protocol::packet::{self, Frame};

/// Initial size of the receive buffer; a whole QEMU reply (4 KiB) fits many
/// times. It grows to the negotiated packet size ([`Connection::reserve_frame`])
/// and, when a frame is larger still, doubles up to [`MAX_FRAME`].
const READ_BUFFER: usize = 64 << 10;
/// The largest frame accepted from a stub; a larger one (or a `$` never
/// followed by `#`) is an error instead of unbounded growth.
pub const MAX_FRAME: usize = 16 << 20;
/// Room for acks and framing around the largest packet.
const FRAME_SLACK: usize = 256;

/// A byte stream to a stub that can bound how long a read blocks.
pub trait Transport: Read + Write + Send {
    /// Sets how long one read may block (`None`: forever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Prepares a fresh stream (for TCP: turns Nagle's algorithm off).
    fn configure(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn configure(&self) -> io::Result<()> {
        self.set_nodelay(true)
    }
}

/// Errors of the connection itself.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Reading or writing the stream failed.
    #[error("the connection to the gdb stub failed: {0}; check that the target still runs")]
    Io(#[from] io::Error),
    /// The stub closed the connection.
    #[error(
        "the gdb stub closed the connection (the target exited or dropped us); reconnect to go on"
    )]
    Closed,
    /// The stub sent a frame larger than [`MAX_FRAME`] (or garbage without an end).
    #[error(
        "the gdb stub sent a frame of more than {0} bytes; it is not speaking the GDB protocol or its PacketSize is absurd"
    )]
    FrameTooLarge(usize),
}

/// An ack or nack seen while acks are tracked ([`Connection::track_acks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckEvent {
    /// `+`: the stub took our oldest unacknowledged packet.
    Ack,
    /// `-`: the stub wants our oldest unacknowledged packet again; it was not resent.
    Nack,
}

/// One connection: the stream, its buffers and the ack state.
pub struct Connection<S> {
    stream: S,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// The frame being sent (kept for a resend on `-`).
    frame: Vec<u8>,
    /// The last reply, run-length decoded.
    reply: Vec<u8>,
    /// How many `+` we owe the stub for its packets; they go out with our next write.
    ack_owed: usize,
    /// When set, acks and nacks are recorded here instead of skipped (a nack
    /// is then not answered by a resend: the caller knows which packet it was).
    acks: Option<Vec<AckEvent>>,
    no_ack: bool,
    /// The read timeout last set on the stream.
    read_timeout: Option<Duration>,
}

impl<S: Transport> Connection<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Result<Self, ConnError> {
        stream.configure()?;
        Ok(Self {
            stream,
            rbuf: vec![0; READ_BUFFER],
            rstart: 0,
            rend: 0,
            frame: Vec::with_capacity(8 << 10),
            reply: Vec::with_capacity(8 << 10),
            ack_owed: 0,
            acks: None,
            no_ack: false,
            read_timeout: None,
        })
    }

    /// Stops sending and expecting acks (after `QStartNoAckMode` succeeded).
    pub fn set_no_ack(&mut self) {
        self.no_ack = true;
        self.ack_owed = 0;
    }

    /// Whether the stub neither sends nor expects acks.
    pub fn no_ack(&self) -> bool {
        self.no_ack
    }

    /// Makes the receive buffer hold a frame of `packet_size` bytes at once
    /// (the stub's negotiated `PacketSize`), capped at [`MAX_FRAME`].
    pub fn reserve_frame(&mut self, packet_size: usize) {
        let want = packet_size.saturating_add(FRAME_SLACK).min(MAX_FRAME);
        if self.rbuf.len() < want {
            self.rbuf.resize(want, 0);
        }
    }

    /// Starts (`true`) or stops recording acks and nacks for
    /// [`Self::take_acks`]; while recording, a nack is not answered by a
    /// resend of our last packet, as with several packets in flight the
    /// caller must resend the right one.
    pub fn track_acks(&mut self, on: bool) {
        self.acks = on.then(Vec::new);
    }

    /// The acks and nacks recorded since the last call, oldest first.
    pub fn take_acks(&mut self, into: &mut Vec<AckEvent>) {
        if let Some(acks) = &mut self.acks {
            into.append(acks);
        }
    }

    fn push_owed_acks(&mut self) {
        self.frame.extend(std::iter::repeat_n(b'+', self.ack_owed));
        self.ack_owed = 0;
    }

    /// Frames `payload` and sends it in one write, with an owed ack in front.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), ConnError> {
        self.frame.clear();
        self.push_owed_acks();
        packet::encode(&mut self.frame, payload);
        self.stream.write_all(&self.frame)?;
        Ok(())
    }

    /// Sends one raw byte (the interrupt), with an owed ack in front.
    pub fn send_byte(&mut self, byte: u8) -> Result<(), ConnError> {
        // Not through `self.frame`: that keeps our last packet for a resend.
        let mut bytes = vec![b'+'; self.ack_owed];
        bytes.push(byte);
        self.ack_owed = 0;
        self.stream.write_all(&bytes)?;
        Ok(())
    }

    /// Sends owed acks now (before going quiet or closing).
    pub fn flush_ack(&mut self) -> Result<(), ConnError> {
        if self.ack_owed > 0 {
            let acks = vec![b'+'; self.ack_owed];
            self.ack_owed = 0;
            self.stream.write_all(&acks)?;
        }
        Ok(())
    }

    /// Waits until `deadline` for the next packet; `Ok(false)` on timeout.
    /// The packet is then in [`Self::reply`]. Acks are skipped, a `-` resends
    /// our last packet and a corrupt packet is refused with `-`.
    pub fn receive(&mut self, deadline: Instant) -> Result<bool, ConnError> {
        loop {
            let frame = packet::scan(&self.rbuf[self.rstart..self.rend]);
            match frame {
                Frame::Incomplete => {
                    if !self.fill(deadline)? {
                        return Ok(false);
                    }
                    continue;
                }
                Frame::Nack => {
                    if let Some(acks) = &mut self.acks {
                        acks.push(AckEvent::Nack);
                    } else {
                        let start = self.frame.iter().take_while(|&&b| b == b'+').count();
                        self.stream.write_all(&self.frame[start..])?;
                    }
                }
                Frame::Ack => {
                    if let Some(acks) = &mut self.acks {
                        acks.push(AckEvent::Ack);
                    }
                }
                Frame::Packet {
                    body_end,
                    checksum_ok,
                } => {
                    if checksum_ok || self.no_ack {
                        let body = &self.rbuf[self.rstart + 1..self.rstart + body_end];
                        packet::decode_body(body, &mut self.reply);
                        self.rstart += frame.size();
                        if !self.no_ack {
                            self.ack_owed += 1;
                        }
                        return Ok(true);
                    }
                    self.stream.write_all(b"-")?;
                }
                Frame::Interrupt | Frame::Junk => {}
            }
            self.rstart += frame.size();
        }
    }

    /// The last packet received, run-length decoded.
    pub fn reply(&self) -> &[u8] {
        &self.reply
    }

    /// The last packet received, for in-place changes (unescaping).
    pub fn reply_mut(&mut self) -> &mut Vec<u8> {
        &mut self.reply
    }

    /// Reads more bytes; `Ok(false)` once `deadline` has passed.
    fn fill(&mut self, deadline: Instant) -> Result<bool, ConnError> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() && self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if self.rend == self.rbuf.len() {
            // One incomplete frame fills the whole buffer: grow, never drop.
            if self.rbuf.len() >= MAX_FRAME {
                return Err(ConnError::FrameTooLarge(MAX_FRAME));
            }
            let len = self.rbuf.len().saturating_mul(2).min(MAX_FRAME);
            self.rbuf.resize(len, 0);
        }
        let mut first = true;
        loop {
            let mut left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if !first {
                    return Ok(false);
                }
                // A zero wait still looks once at what has arrived.
                left = Duration::from_micros(1);
            }
            first = false;
            self.limit_read(left)?;
            match self.stream.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.rend += n;
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes the next read block at most about `left`, touching the socket
    /// option only when the current setting is off by more than a quarter.
    fn limit_read(&mut self, left: Duration) -> io::Result<()> {
        let fits = self
            .read_timeout
            .is_some_and(|t| t >= left && t <= left + left / 4);
        if !fits {
            self.stream.set_read_timeout(Some(left))?;
            self.read_timeout = Some(left);
        }
        Ok(())
    }
}
