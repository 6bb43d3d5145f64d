//! The validated scenario model: what the runner executes.
//!
//! These types are produced by [`super::load`]; they hold no raw YAML and
//! every value has already been checked. Values that later stages may still
//! reject (a board name, an image) keep their source position in [`At`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A 1-based position in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    /// Line, starting at 1.
    pub line: u32,
    /// Column, starting at 1.
    pub column: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    /// The value itself.
    pub value: T,
    /// Where the value starts in the scenario file.
    pub loc: Loc,
}

/// One scenario file, loaded and validated.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as the user named it (kept for reports and messages).
    pub file: PathBuf,
    /// The scenario's name: `name:` or the file stem.
    pub name: String,
    /// The default board profile; a matrix variant may override it.
    pub board: Option<At<String>>,
    /// The default image; a matrix variant may override it.
    pub image: Option<At<ImageRef>>,
    /// Which backend runs the scenario.
    pub target: TargetChoice,
    /// How guest time runs.
    pub clock: Clock,
    /// Wall-clock deadline for one run of the whole scenario.
    pub timeout: Duration,
    /// Repetitions of each variant (at least 1).
    pub runs: u32,
    /// Guest environment variables (Linux guests).
    pub env: BTreeMap<String, String>,
    /// Guest program arguments.
    pub args: Vec<String>,
    /// Variants; empty means one implicit variant with the defaults.
    pub matrix: Vec<Variant>,
    /// The steps, in order.
    pub steps: Vec<At<Step>>,
}

/// One entry of `matrix:`.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The variant's name, unique within the scenario.
    pub name: String,
    /// Board override.
    pub board: Option<At<String>>,
    /// Image override.
    pub image: Option<At<ImageRef>>,
    /// Environment entries added to (and overriding) the scenario's.
    pub env: BTreeMap<String, String>,
    /// Argument override (replaces the scenario's when present).
    pub args: Option<Vec<String>>,
}

/// What to boot.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageRef {
    /// An image built by `lab images build`, by name (`cortex-m/hello`).
    Named(String),
    /// A user's own ELF file (path resolved against the scenario's folder).
    Elf(PathBuf),
    /// A Linux kernel with optional device tree and initrd (paths resolved).
    Linux {
        /// The kernel image.
        kernel: PathBuf,
        /// The device tree blob.
        dtb: Option<PathBuf>,
        /// The initial ramdisk.
        initrd: Option<PathBuf>,
    },
}

/// `target:` — which backend runs the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetChoice {
    /// Always QEMU.
    Qemu,
    /// Always a real board through a debug probe.
    Hardware,
    /// Hardware when a matching probe is attached, QEMU otherwise.
    #[default]
    Auto,
}

/// `clock:` — how guest time runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// Deterministic instruction-counted time (QEMU `-icount`).
    Virtual,
    /// Real time.
    #[default]
    Wall,
}

/// One step of a scenario.
#[derive(Debug, Clone)]
pub enum Step {
    /// `boot:` start the target.
    Boot(Boot),
    /// `wait-serial:` wait for a regex on the serial console.
    WaitSerial(WaitSerial),
    /// `send-serial:` write bytes to the serial console.
    SendSerial(String),
    /// `expect-exit:` wait for the target to exit, optionally with a code.
    ExpectExit(ExpectExit),
}

impl Step {
    /// The step's key as written in YAML (`boot`, `wait-serial`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            Step::Boot(_) => "boot",
            Step::WaitSerial(_) => "wait-serial",
            Step::SendSerial(_) => "send-serial",
            Step::ExpectExit(_) => "expect-exit",
        }
    }
}

/// Options of `boot:`.
#[derive(Debug, Clone, Default)]
pub struct Boot {
    /// Start with the CPU paused (for a debugger).
    pub halted: bool,
}

/// Options of `wait-serial:`.
#[derive(Debug, Clone)]
pub struct WaitSerial {
    /// The compiled pattern; named groups become metrics.
    pub pattern: regex::bytes::Regex,
    /// Per-step deadline; `None` means the scenario's deadline bounds it.
    pub timeout: Option<Duration>,
}

/// Options of `expect-exit:`.
#[derive(Debug, Clone, Default)]
pub struct ExpectExit {
    /// The expected exit status; `None` accepts any.
    pub code: Option<i32>,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}
