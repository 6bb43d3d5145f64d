//! An architecture-neutral gdbstub [`Arch`]: registers stay opaque bytes in
//! the backend's order and a register id is gdb's register number, so the
//! target description the backend serves alone defines the layout.

use std::num::NonZeroUsize;

use gdbstub::arch::{Arch, RegId, Registers};

/// The bridge's architecture: addresses are `u64` (wide enough for 32- and
/// 64-bit targets), registers are raw bytes, breakpoint kinds pass through.
pub enum OpaqueArch {}

impl Arch for OpaqueArch {
    type Usize = u64;
    type Registers = RawRegisters;
    type BreakpointKind = usize;
    type RegId = RegNum;
}

/// The `g` packet's registers as the backend sent them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawRegisters(pub Vec<u8>);

impl Registers for RawRegisters {
    type ProgramCounter = u64;

    /// Unknown: the layout is opaque, and gdbstub never asks for it.
    fn pc(&self) -> u64 {
        0
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for &b in &self.0 {
            write_byte(Some(b));
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.0.clear();
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// A register by its gdb number (the `p`/`P` packets); its size is whatever
/// the backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegNum(pub usize);

impl RegId for RegNum {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        Some((RegNum(id), None))
    }

    fn to_raw_id(&self) -> Option<usize> {
        Some(self.0)
    }
}
