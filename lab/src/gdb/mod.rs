//! GDB remote: a client for QEMU's gdbstub and a bridge server (gdbstub)
//! that serves one endpoint per target.

mod backend;
pub mod bridge;
mod client;
mod conn;
pub mod protocol;
mod regs;

pub use backend::{BackendError, BreakKind, DebugBackend, StopReason};
pub use bridge::{BackendFactory, BridgeServer, ShutdownHandle};
pub use client::{DEFAULT_READ_WINDOW, DEFAULT_TIMEOUT, GdbClient, GdbError};
pub use conn::{ConnError, Connection, Transport};
pub use regs::{DescriptionError, Register, RegisterMap};
