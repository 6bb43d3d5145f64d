//! `lab debug`: boot a job's target halted and serve its GDB bridge until
//! the user stops it or the guest ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::launch::prepare_target;
use super::record;
use super::{BuiltImages, Job};
use crate::backend::{GuestExit, Target};
use crate::gdb::bridge::BridgeServer;
use crate::workspace::Workspace;

/// How often a served target is checked for having ended.
const EXIT_POLL: Duration = Duration::from_millis(100);

/// Where a user's debugger connects.
#[derive(Debug, Clone)]
pub struct DebugEndpoint {
    /// The bridge's address.
    pub addr: SocketAddr,
    /// The ELF with the symbols, when the image is one.
    pub elf: Option<PathBuf>,
}

/// What `lab debug` shows while it serves.
#[derive(Debug, Clone)]
pub enum DebugEvent {
    /// The target is booted and halted; the bridge is listening.
    Ready(DebugEndpoint),
    /// Bytes the target wrote to its serial console.
    Serial(Vec<u8>),
}

/// How serving ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEnd {
    /// The user stopped it (Ctrl-C).
    Stopped,
    /// The guest ended.
    Exited(GuestExit),
}

/// Boots `job`'s target halted and serves the GDB bridge on 127.0.0.1:`port`
/// (0 picks a free port) until `cancel` fires or the guest ends.
pub async fn serve_debugger(
    job: &Job,
    images: &BuiltImages,
    port: u16,
    cancel: CancellationToken,
    on_event: impl Fn(DebugEvent),
) -> Result<ServeEnd, String> {
    let launched = prepare_target(job, images).map_err(|f| f.message)?;
    let (mut target, elf) = (launched.target, launched.elf);
    let outcome = serve(&mut *target, elf, port, &cancel, &on_event).await;
    target.shutdown().await;
    outcome
}

/// Replays the recording in `folder` (its board from `workspace`) halted
/// at its start and serves the GDB bridge, which runs backwards too, on
/// 127.0.0.1:`port` until `cancel` fires or the replay ends; returns the
/// recording's manifest with how serving ended.
pub async fn serve_replay(
    folder: &Path,
    workspace: &Workspace,
    port: u16,
    cancel: CancellationToken,
    on_event: impl Fn(DebugEvent),
) -> Result<ServeEnd, String> {
    let manifest = record::load(folder).map_err(|e| e.to_string())?;
    let board = record::recorded_board(workspace, &manifest).map_err(|e| e.to_string())?;
    let (mut target, elf) =
        record::replay_target(folder, &manifest, board).map_err(|e| e.to_string())?;
    let outcome = serve(&mut target, elf, port, &cancel, &on_event).await;
    target.shutdown().await;
    outcome
}

async fn serve(
    target: &mut dyn Target,
    elf: Option<PathBuf>,
    port: u16,
    cancel: &CancellationToken,
    on_event: &impl Fn(DebugEvent),
) -> Result<ServeEnd, String> {
    target.boot(true).await.map_err(|e| e.to_string())?;
    let factory = target.debug_connector().await.map_err(|e| e.to_string())?;
    let bridge = BridgeServer::start(port, factory)
        .map_err(|e| format!("cannot serve the GDB bridge on 127.0.0.1:{port}: {e}"))?;
    on_event(DebugEvent::Ready(DebugEndpoint {
        addr: bridge.local_addr(),
        elf,
    }));
    let end = loop {
        let console = target.console().map_err(|e| e.to_string())?;
        tokio::select! {
            _ = cancel.cancelled() => break ServeEnd::Stopped,
            bytes = console.read_new() => {
                if !bytes.is_empty() {
                    on_event(DebugEvent::Serial(bytes));
                    continue;
                }
            }
            _ = tokio::time::sleep(EXIT_POLL) => {}
        }
        if let Some(exit) = target.exited(Duration::ZERO).await {
            break ServeEnd::Exited(exit);
        }
    };
    // The bridge's session goes before the target does.
    drop(bridge);
    Ok(end)
}
