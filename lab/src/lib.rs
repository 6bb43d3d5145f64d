//! `lab`: an emulation lab for IoT firmware.
//!
//! Scenario files describe experiments; the runner executes them against a
//! target backend (QEMU, or a real board through probe-rs) and produces a
//! report. See DESIGN.md for the contracts.

pub mod backend;
pub mod board;
mod catalog;
pub mod child;
pub mod console;
pub mod deps;
mod durable;
pub mod elf;
pub mod error;
pub mod fault;
pub mod gdb;
pub mod image;
pub mod loader;
pub mod qmp;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scratch;
pub mod script;
pub mod source;
pub mod steps;
pub mod workspace;

pub use error::Error;
