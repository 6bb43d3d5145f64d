//! gdbstub's blocking event loop while the target runs: wait for a stop from
//! the backend or for a byte from gdb (its Ctrl-C), whichever comes first.

use std::time::Duration;

use gdbstub::conn::ConnectionExt;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};

use super::conn::GdbConnection;
use super::target::BridgeTarget;
use crate::gdb::BackendError;

/// How long one wait on the backend lasts before gdb's socket is checked
/// again: the bound on Ctrl-C latency. A stop ends the wait at once.
const POLL: Duration = Duration::from_millis(5);

/// The bridge's event loop.
pub(crate) enum BridgeEventLoop {}

impl BlockingEventLoop for BridgeEventLoop {
    type Target = BridgeTarget;
    type Connection = GdbConnection;
    type StopReason = SingleThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut BridgeTarget,
        conn: &mut GdbConnection,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<BackendError, std::io::Error>> {
        loop {
            if conn
                .peek()
                .map_err(WaitForStopReasonError::Connection)?
                .is_some()
            {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(byte));
            }
            if let Some(stop) = target
                .wait_stop(POLL)
                .map_err(WaitForStopReasonError::Target)?
            {
                return Ok(Event::TargetStopped(stop));
            }
        }
    }

    fn on_interrupt(target: &mut BridgeTarget) -> Result<Option<Self::StopReason>, BackendError> {
        target.interrupt()?;
        Ok(None)
    }
}
