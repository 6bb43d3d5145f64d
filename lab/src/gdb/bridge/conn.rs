//! gdbstub's connection to gdb: a TCP stream with a read buffer (gdbstub
//! pulls one byte at a time) and a write buffer sent once per packet (gdbstub
//! pushes one byte at a time and flushes at the end of each reply).

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;

use gdbstub::conn::{Connection, ConnectionExt};

/// Size of the read buffer (it refills in a loop, so packets may be larger).
const READ_BUF: usize = 64 * 1024;

/// A buffered gdb connection.
pub(crate) struct GdbConnection {
    stream: TcpStream,
    rbuf: Box<[u8]>,
    rpos: usize,
    rlen: usize,
    wbuf: Vec<u8>,
    nonblocking: bool,
}

impl GdbConnection {
    /// Wraps an accepted stream.
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            rbuf: vec![0; READ_BUF].into_boxed_slice(),
            rpos: 0,
            rlen: 0,
            // A whole `m` reply at the advertised packet size, without regrowth.
            wbuf: Vec::with_capacity(super::PACKET_SIZE + 16),
            nonblocking: false,
        }
    }

    /// Switches the socket mode only when it changes (one syscall each).
    fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        if self.nonblocking != on {
            self.stream.set_nonblocking(on)?;
            self.nonblocking = on;
        }
        Ok(())
    }

    /// Refills the empty read buffer; `Ok(false)` when a non-blocking read
    /// found nothing.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            match Read::read(&mut self.stream, &mut self.rbuf) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.rpos = 0;
                    self.rlen = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Connection for GdbConnection {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.wbuf.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.wbuf.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.set_nonblocking(false)?;
        let result = Write::write_all(&mut self.stream, &self.wbuf);
        self.wbuf.clear();
        result
    }

    fn on_session_start(&mut self) -> io::Result<()> {
        self.stream.set_nodelay(true)
    }
}

impl ConnectionExt for GdbConnection {
    fn read(&mut self) -> io::Result<u8> {
        if self.rpos == self.rlen {
            self.set_nonblocking(false)?;
            self.fill()?;
        }
        let byte = self.rbuf[self.rpos];
        self.rpos += 1;
        Ok(byte)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        if self.rpos == self.rlen {
            self.set_nonblocking(true)?;
            if !self.fill()? {
                return Ok(None);
            }
        }
        Ok(Some(self.rbuf[self.rpos]))
    }
}
