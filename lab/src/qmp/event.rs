//! Asynchronous events from QEMU.

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// One event from QEMU, e.g. `STOP`, `RESUME` or `SHUTDOWN`.
#[derive(Debug, Clone)]
pub struct QmpEvent {
    /// The event's name, e.g. `"SHUTDOWN"`.
    pub name: String,
    /// The event's `data` member; an empty object when QEMU sent none.
    pub data: Value,
    /// When QEMU emitted it: seconds and microseconds since the Unix epoch.
    pub timestamp: Option<(i64, i64)>,
    /// The event as `qapi`'s schema types it; `None` when the schema does not
    /// know the event or one of its values (a newer QEMU than the schema).
    pub typed: Option<qapi::qmp::Event>,
}

impl QmpEvent {
    /// Builds the event `name` from its whole message.
    pub(crate) fn from_message(name: String, mut message: Map<String, Value>) -> Self {
        let typed = match qapi::qmp::Event::deserialize(&message) {
            Ok(typed) => Some(typed),
            Err(err) => {
                tracing::debug!(%err, ?message, "QMP event not in the qapi schema; kept untyped");
                None
            }
        };
        let timestamp = message.get("timestamp").and_then(|ts| {
            Some((
                ts.get("seconds")?.as_i64()?,
                ts.get("microseconds")?.as_i64()?,
            ))
        });
        let data = message
            .remove("data")
            .unwrap_or_else(|| Value::Object(Map::new()));
        Self {
            name,
            data,
            timestamp,
            typed,
        }
    }
}

/// The receiving end of a QMP connection's events, in the order QEMU sent them.
#[derive(Debug)]
pub struct QmpEvents {
    rx: mpsc::UnboundedReceiver<QmpEvent>,
}

impl QmpEvents {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<QmpEvent>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the connection has ended and every event
    /// received before that has been returned.
    pub async fn next(&mut self) -> Option<QmpEvent> {
        self.rx.recv().await
    }

    /// The next event already received, without waiting; `None` when there
    /// is none yet (or the connection has ended).
    pub fn try_next(&mut self) -> Option<QmpEvent> {
        self.rx.try_recv().ok()
    }
}
