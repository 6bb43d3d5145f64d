//! A framed, buffered connection to a GDB remote stub: one write per packet,
//! large reads, acks folded into the next write.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::protocol::packet::{self, Frame};

/// Size of the receive buffer; a whole QEMU reply (4 KiB) fits many times.
const READ_BUFFER: usize = 64 << 10;

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
}

/// One connection: the stream, its buffers and the ack state.
pub struct Connection<S> {
    stream: S,
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    /// The frame being sent (kept for a resend on `-`).
    frame: Vec<u8>,
    /// The last reply, run-length decoded.
    reply: Vec<u8>,
    /// We owe the stub a `+` for its last packet; it goes out with our next write.
    ack_owed: bool,
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
            rbuf: vec![0; READ_BUFFER].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            frame: Vec::with_capacity(8 << 10),
            reply: Vec::with_capacity(8 << 10),
            ack_owed: false,
            no_ack: false,
            read_timeout: None,
        })
    }

    /// Stops sending and expecting acks (after `QStartNoAckMode` succeeded).
    pub fn set_no_ack(&mut self) {
        self.no_ack = true;
        self.ack_owed = false;
    }

    /// Frames `payload` and sends it in one write, with an owed ack in front.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), ConnError> {
        self.frame.clear();
        if self.ack_owed {
            self.frame.push(b'+');
            self.ack_owed = false;
        }
        packet::encode(&mut self.frame, payload);
        self.stream.write_all(&self.frame)?;
        Ok(())
    }

    /// Sends one raw byte (the interrupt), with an owed ack in front.
    pub fn send_byte(&mut self, byte: u8) -> Result<(), ConnError> {
        let ack = [b'+', byte];
        let bytes = if self.ack_owed { &ack[..] } else { &ack[1..] };
        self.ack_owed = false;
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Sends an owed ack now (before going quiet or closing).
    pub fn flush_ack(&mut self) -> Result<(), ConnError> {
        if self.ack_owed {
            self.ack_owed = false;
            self.stream.write_all(b"+")?;
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
                    let resend = self.frame.strip_prefix(b"+").unwrap_or(&self.frame);
                    self.stream.write_all(resend)?;
                }
                Frame::Packet {
                    body_end,
                    checksum_ok,
                } => {
                    if checksum_ok || self.no_ack {
                        let body = &self.rbuf[self.rstart + 1..self.rstart + body_end];
                        packet::decode_body(body, &mut self.reply);
                        self.rstart += frame.size();
                        self.ack_owed = !self.no_ack;
                        return Ok(true);
                    }
                    self.stream.write_all(b"-")?;
                }
                Frame::Ack | Frame::Interrupt | Frame::Junk => {}
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
        } else if self.rend == self.rbuf.len() {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if self.rend == self.rbuf.len() {
            // A frame larger than the whole buffer: drop it as noise.
            self.rstart = 0;
            self.rend = 0;
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
