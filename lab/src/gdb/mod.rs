//! GDB remote: a client for QEMU's gdbstub and a bridge server (gdbstub)
//! that serves one endpoint per target.

mod backend;
mod client;
mod conn;
pub mod protocol;
mod regs;

pub use backend::{BackendError, BreakKind, DebugBackend, StopReason};
pub use client::{DEFAULT_TIMEOUT, GdbClient, GdbError};
pub use conn::{ConnError, Connection, Transport};
pub use regs::{DescriptionError, Register, RegisterMap};
