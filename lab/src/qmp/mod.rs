//! A client for QEMU's machine protocol (QMP).
//!
//! The wire format is newline-delimited JSON over any byte stream (usually
//! the Unix socket given to `-qmp`). [`QmpClient::handshake`] reads QEMU's
//! greeting, negotiates capabilities and starts one reader task that routes
//! replies to the commands waiting for them (by `id`) and events to
//! [`QmpEvents`]. The typed commands and events come from the `qapi` crate;
//! anything its schema does not know still arrives, untyped. Migration to
//! and from a file, the lab's snapshots, has methods of its own
//! ([`QmpClient::migrate_to_file`], [`QmpClient::migrate_from_file`]).

mod client;
mod error;
mod event;
mod migration;
mod transport;
pub mod xp;

pub use client::QmpClient;
pub use error::QmpError;
pub use event::{QmpEvent, QmpEvents};
pub use migration::{MigrationProgress, MigrationState, QueryMigrate};
