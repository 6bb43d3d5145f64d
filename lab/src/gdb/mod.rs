//! GDB remote: a client for QEMU's gdbstub and a bridge server (gdbstub)
//! that serves one endpoint per target.

mod backend;

pub use backend::{BackendError, BreakKind, DebugBackend, StopReason};
