//! Errors of the QMP client.

use std::time::Duration;

/// Why a QMP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// QEMU did not answer in time: it may be hung or busy; check that it is
    /// still running, or allow a longer timeout.
    #[error(
        "QMP command `{command}` got no reply within {after:?}: QEMU may be hung or busy; \
         check that it is still running, or allow a longer timeout"
    )]
    Timeout {
        /// The command (or handshake step) that was waiting.
        command: String,
        /// How long it waited.
        after: Duration,
    },

    /// QEMU closed the QMP connection: it has probably exited; see its stderr.
    #[error(
        "QEMU closed the QMP connection{}: it has probably exited; see its stderr",
        reason_suffix(.reason)
    )]
    Disconnected {
        /// The I/O error that ended the connection, if it did not end cleanly.
        reason: Option<String>,
    },

    /// QEMU refused the command; its description says why.
    #[error("QEMU refused the command ({class}): {desc}")]
    Command {
        /// QMP's error class, e.g. `GenericError` or `CommandNotFound`.
        class: String,
        /// QEMU's human-readable description.
        desc: String,
    },

    /// QEMU's reply does not match the type the `qapi` schema (QEMU 9.1)
    /// expects; run the command with `execute_raw` to get the JSON as is.
    #[error(
        "QEMU's reply to `{command}` does not match the qapi schema ({reason}): {raw}; \
         run it with execute_raw to get the JSON as is"
    )]
    BadReply {
        /// The command whose reply was not understood.
        command: String,
        /// What did not match.
        reason: String,
        /// The reply's JSON, as QEMU sent it.
        raw: String,
    },

    /// The first message on the socket was not a QMP greeting: check that the
    /// socket is QEMU's `-qmp` one, not an HMP `-monitor` or a serial port.
    #[error(
        "the QMP greeting was not understood ({reason}): {raw}; check that the socket is \
         QEMU's -qmp one, not an HMP -monitor or a serial port"
    )]
    Greeting {
        /// What was wrong with it.
        reason: String,
        /// The message received instead.
        raw: String,
    },

    /// A migration (a snapshot's save or load) failed; QEMU's description
    /// says why.
    #[error("QEMU's `{command}` failed: {desc}")]
    MigrationFailed {
        /// The command that started the migration: `migrate` or `migrate-incoming`.
        command: String,
        /// QEMU's `error-desc`, or a note that it gave none.
        desc: String,
    },

    /// The command's arguments could not be encoded as JSON.
    #[error("could not encode the arguments of QMP command `{command}`: {source}")]
    Encode {
        /// The command being encoded.
        command: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}
