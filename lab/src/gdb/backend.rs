//! The seam between the GDB bridge and what it debugs: QEMU's gdbstub now,
//! a probe-rs core later. Registers travel as opaque bytes in the target's
//! own order and size, as gdb's target description defines them.

use std::time::Duration;

/// Errors of a debug backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend's connection failed or closed.
    #[error("the debug connection failed: {0}")]
    Connection(String),
    /// The backend refused a request (an `Exx` reply, a bad address).
    #[error("the target refused `{request}`: {reply}")]
    Refused {
        /// The request, shortened.
        request: String,
        /// The backend's answer.
        reply: String,
    },
    /// The backend does not support this request.
    #[error("not supported by this target: {0}")]
    Unsupported(String),
    /// No answer in time.
    #[error("no answer to `{request}` within {after:?}")]
    Timeout {
        /// The request.
        request: String,
        /// How long we waited.
        after: Duration,
    },
}

/// The kind of a breakpoint or watchpoint (GDB's Z0..Z4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakKind {
    /// Z0: software breakpoint.
    Software,
    /// Z1: hardware breakpoint.
    Hardware,
    /// Z2: write watchpoint.
    WriteWatch,
    /// Z3: read watchpoint.
    ReadWatch,
    /// Z4: access watchpoint.
    AccessWatch,
}

/// Why the target stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A signal (SIGTRAP for breakpoints and steps, SIGINT for an interrupt).
    Signal {
        /// The GDB signal number.
        signal: u8,
        /// A watchpoint that fired, with its data address.
        watch: Option<(BreakKind, u64)>,
        /// A software or hardware breakpoint that fired (when reported).
        breakpoint: Option<BreakKind>,
    },
    /// The guest exited with this status.
    Exited(u8),
    /// The guest was terminated by this signal.
    Terminated(u8),
}

/// A core that the bridge can debug.
pub trait DebugBackend: Send {
    /// A target description document by annex (`target.xml` and the files it includes).
    fn target_xml(&mut self, annex: &str) -> Result<Vec<u8>, BackendError>;
    /// All registers of the `g` packet, as raw bytes.
    fn read_registers(&mut self) -> Result<Vec<u8>, BackendError>;
    /// Writes all registers of the `g` packet.
    fn write_registers(&mut self, bytes: &[u8]) -> Result<(), BackendError>;
    /// One register by its number in the target description; `None` if it has none.
    fn read_register(&mut self, regnum: usize) -> Result<Option<Vec<u8>>, BackendError>;
    /// Writes one register by number.
    fn write_register(&mut self, regnum: usize, bytes: &[u8]) -> Result<(), BackendError>;
    /// Reads memory into `buf`; returns how many bytes could be read.
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, BackendError>;
    /// Writes memory.
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), BackendError>;
    /// Inserts a breakpoint or watchpoint; `Ok(false)` when the kind is unsupported.
    fn insert_break(&mut self, kind: BreakKind, addr: u64, len: u64) -> Result<bool, BackendError>;
    /// Removes a breakpoint or watchpoint; `Ok(false)` when the kind is unsupported.
    fn remove_break(&mut self, kind: BreakKind, addr: u64, len: u64) -> Result<bool, BackendError>;
    /// Resumes execution (`step`: one instruction); returns at once.
    fn resume(&mut self, step: bool) -> Result<(), BackendError>;
    /// Waits up to `timeout` for the target to stop after [`Self::resume`].
    fn wait_stop(&mut self, timeout: Duration) -> Result<Option<StopReason>, BackendError>;
    /// Asks a running target to stop; the stop arrives through [`Self::wait_stop`].
    fn interrupt(&mut self) -> Result<(), BackendError>;
    /// Why the target is stopped now (`?`), when it is stopped.
    fn halt_reason(&mut self) -> Result<StopReason, BackendError>;
    /// Lets the target run on and releases it (`D`).
    fn detach(&mut self) -> Result<(), BackendError>;
    /// Whether the target can run backwards ([`Self::reverse`]): QEMU can
    /// while it replays a recording.
    fn supports_reverse(&mut self) -> bool {
        false
    }
    /// Runs backwards (`step`: one instruction) to the previous breakpoint
    /// or watchpoint hit, or to the start of the recording; returns at once,
    /// and the stop arrives through [`Self::wait_stop`].
    fn reverse(&mut self, _step: bool) -> Result<(), BackendError> {
        Err(BackendError::Unsupported(
            "reverse execution: only a replayed recording runs backwards (`lab debug --replay`)"
                .into(),
        ))
    }
}
