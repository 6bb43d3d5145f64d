//! The host side of scripts: what a script can ask the lab to do.
//!
//! [`ScriptHost`] is implemented by the runner against a live target; every
//! call is synchronous and bounded by the timeout it is given (the script
//! engine already shortens timeouts to the scenario's deadline).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A host call that failed; the message becomes a script error at the
/// position of the call (a script can `catch` it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    message: String,
}

impl HostError {
    /// A host error with a one-line message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Options of `boot()`: overrides of the scenario's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// A board profile instead of the scenario's.
    pub board: Option<String>,
    /// An image instead of the scenario's.
    pub image: Option<String>,
    /// Guest program arguments (empty: the scenario's).
    pub args: Vec<String>,
    /// Start with the CPU paused.
    pub halted: bool,
}

/// What `wait_serial` matched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// The whole matched text.
    pub text: String,
    /// Named capture groups that took part in the match, in pattern order.
    pub captures: Vec<(String, String)>,
}

/// Where and why the target stopped after `continue_to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stop {
    /// Why it stopped (`breakpoint`, `watchpoint`, `exited`, `signal`, ...).
    pub reason: String,
    /// The function containing the program counter, when known.
    pub function: Option<String>,
    /// The source file of the program counter, when known.
    pub file: Option<String>,
    /// The source line of the program counter, when known.
    pub line: Option<u32>,
    /// The program counter.
    pub pc: u64,
}

/// A flag the host raises to stop a running script (Ctrl-C). The script
/// stops at its next operation, and a host call that fails while it is
/// raised stops it too; `try`/`catch` in the script cannot swallow it.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Stops the script.
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::raise`] was called.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The calls a script makes into the lab. Each returns a [`HostError`] when
/// it cannot be done; timeouts are wall-clock and already bounded by the
/// scenario's deadline.
pub trait ScriptHost: Send {
    /// Starts the target.
    fn boot(&mut self, options: BootOptions) -> Result<(), HostError>;
    /// Waits for `pattern` (a regex) on the serial console.
    fn wait_serial(&mut self, pattern: &str, timeout: Duration) -> Result<Match, HostError>;
    /// Writes `text` to the serial console.
    fn send_serial(&mut self, text: &str) -> Result<(), HostError>;
    /// Runs a QMP command and returns its `return` value.
    fn qmp(
        &mut self,
        command: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, HostError>;
    /// Runs a human monitor command and returns its output.
    fn hmp(&mut self, command: &str) -> Result<String, HostError>;
    /// Pauses the guest CPUs.
    fn pause(&mut self) -> Result<(), HostError>;
    /// Resumes the guest CPUs.
    fn resume(&mut self) -> Result<(), HostError>;
    /// Resets the target.
    fn reset(&mut self) -> Result<(), HostError>;
    /// Waits for the target to exit and returns its exit code.
    fn expect_exit(&mut self, timeout: Duration) -> Result<i64, HostError>;
    /// Connects the debugger (halts the target).
    fn attach(&mut self, timeout: Duration) -> Result<(), HostError>;
    /// Sets a breakpoint at `location` (`main`, `0x1a4`, `main.c:42`).
    fn set_break(&mut self, location: &str) -> Result<(), HostError>;
    /// Resumes until the target stops again.
    fn continue_(&mut self, timeout: Duration) -> Result<Stop, HostError>;
    /// Executes `count` single instructions.
    fn step(&mut self, count: u32) -> Result<(), HostError>;
    /// Reads a register by name.
    fn read_register(&mut self, name: &str) -> Result<u64, HostError>;
    /// Reads `len` bytes at `addr`.
    fn read_memory(&mut self, addr: u64, len: u32) -> Result<Vec<u8>, HostError>;
    /// Reads a global variable by name, typed by its debug info.
    fn read_symbol(&mut self, name: &str) -> Result<f64, HostError>;
    /// Writes `bytes` at `addr`.
    fn write_memory(&mut self, addr: u64, bytes: &[u8]) -> Result<(), HostError>;
    /// Writes a global variable by name.
    fn write_symbol(&mut self, name: &str, value: f64) -> Result<(), HostError>;
    /// Disconnects the debugger; the target runs on.
    fn detach(&mut self) -> Result<(), HostError>;
    /// Records a metric for the report.
    fn metric(&mut self, name: &str, value: f64) -> Result<(), HostError>;
    /// Lets `duration` of wall time pass.
    fn sleep(&mut self, duration: Duration) -> Result<(), HostError>;
    /// Lets at least `duration` of guest time pass, waiting at most `timeout`
    /// of wall time, and returns the guest time that passed.
    fn sleep_guest(&mut self, duration: Duration, timeout: Duration)
    -> Result<Duration, HostError>;
}
