//! GDB remote: a client for QEMU's gdbstub and a bridge server (gdbstub)
//! that serves one endpoint per target, in front of QEMU's gdbstub or a
//! core behind a debug probe.

mod backend;
pub mod bridge;
mod client;
mod conn;
mod probe_backend;
pub mod protocol;
mod regs;

pub use backend::{BackendError, BreakKind, DebugBackend, StopReason};
pub use bridge::{BackendFactory, BridgeServer, ShutdownHandle};
pub use client::{DEFAULT_READ_WINDOW, DEFAULT_TIMEOUT, GdbClient, GdbError};
pub use conn::{ConnError, Connection, Transport};
pub use probe_backend::{DebugHost, ProbeBackend};
pub use regs::{DescriptionError, Register, RegisterMap};
