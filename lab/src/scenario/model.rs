//! The validated scenario model: what the runner executes.
//!
//! These types are produced by [`super::load`]; they hold no raw YAML and
//! every value has already been checked. Values that later stages may still
//! reject (a board name, an image) keep their source position in [`At`].

use std::collections::BTreeMap;

pub use crate::source::{At, Loc};
use std::path::PathBuf;
use std::time::Duration;

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
    /// `attach-debugger:` connect the lab's debugger to the target (halts it).
    AttachDebugger(AttachDebugger),
    /// `break:` set a breakpoint.
    Break(Break),
    /// `continue:` resume until a breakpoint, a watchpoint or the guest's exit.
    Continue(Continue),
    /// `step:` execute single instructions.
    Step(StepInstructions),
    /// `read-register:` read a register by name.
    ReadRegister(ReadRegister),
    /// `read-memory:` read bytes from the target.
    ReadMemory(ReadMemory),
    /// `read-symbol:` read a global variable by name, typed by its debug info.
    ReadSymbol(ReadSymbol),
    /// `write-memory:` write bytes to the target.
    WriteMemory(WriteMemory),
    /// `write-symbol:` write a global variable by name.
    WriteSymbol(WriteSymbol),
    /// `detach:` disconnect the debugger; the target runs on.
    Detach,
    /// `expect-fault:` wait for a CPU fault and check its kind, cause and place.
    ExpectFault(ExpectFault),
    /// `footprint:` record the image's flash and static RAM use from its ELF.
    Footprint,
    /// `memory-layout:` place the ELF's sections, heap and stack on the
    /// board's memory map, beside QEMU's `info mtree`.
    MemoryLayout,
    /// `trend:` sample a series from the serial console and fit its slope.
    Trend(Trend),
    /// `script:` run a rhai script against the target.
    Script(Script),
    /// `gc-trace:` read a runtime's GC trace from the console until a line matches.
    GcTrace(GcTrace),
    /// `expect-crash:` wait for a supervised service to exit, classify the
    /// crash and time the restart.
    ExpectCrash(ExpectCrash),
    /// `serial-load:` send numbered messages at a set rate and time the replies.
    SerialLoad(SerialLoad),
}

impl Step {
    /// Whether the step needs a booted target (`footprint` reads the ELF
    /// only; a script may boot the target itself).
    pub fn needs_target(&self) -> bool {
        !matches!(self, Step::Boot(_) | Step::Footprint | Step::Script(_))
    }

    /// The step's key as written in YAML (`boot`, `wait-serial`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            Step::Boot(_) => "boot",
            Step::WaitSerial(_) => "wait-serial",
            Step::SendSerial(_) => "send-serial",
            Step::ExpectExit(_) => "expect-exit",
            Step::AttachDebugger(_) => "attach-debugger",
            Step::Break(_) => "break",
            Step::Continue(_) => "continue",
            Step::Step(_) => "step",
            Step::ReadRegister(_) => "read-register",
            Step::ReadMemory(_) => "read-memory",
            Step::ReadSymbol(_) => "read-symbol",
            Step::WriteMemory(_) => "write-memory",
            Step::WriteSymbol(_) => "write-symbol",
            Step::Detach => "detach",
            Step::ExpectFault(_) => "expect-fault",
            Step::Footprint => "footprint",
            Step::MemoryLayout => "memory-layout",
            Step::Trend(_) => "trend",
            Step::Script(_) => "script",
            Step::GcTrace(_) => "gc-trace",
            Step::ExpectCrash(_) => "expect-crash",
            Step::SerialLoad(_) => "serial-load",
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

/// A code location: `main`, `0x1a4` or `main.c:42`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeLocation {
    /// A function or other symbol.
    Symbol(String),
    /// An address.
    Address(u64),
    /// A source line (the file is matched by its trailing path components).
    Line {
        /// The file name as written.
        file: String,
        /// The line number, from 1.
        line: u32,
    },
}

/// A data location: an address or a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLocation {
    /// An address.
    Address(u64),
    /// A global variable or other symbol.
    Symbol(String),
}

/// Options of `attach-debugger:`.
#[derive(Debug, Clone, Default)]
pub struct AttachDebugger {
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// Options of `break:` (`break: main` is short for `break: {at: main}`).
#[derive(Debug, Clone)]
pub struct Break {
    /// Where to stop.
    pub at: CodeLocation,
    /// Use a hardware breakpoint instead of a software one.
    pub hardware: bool,
}

/// Options of `continue:`.
#[derive(Debug, Clone, Default)]
pub struct Continue {
    /// Per-step deadline.
    pub timeout: Option<Duration>,
    /// When given, the step fails unless the target stops here.
    pub stop_at: Option<CodeLocation>,
}

/// Options of `step:`.
#[derive(Debug, Clone)]
pub struct StepInstructions {
    /// How many instructions (at least 1).
    pub count: u32,
}

/// Options of `read-register:`.
#[derive(Debug, Clone)]
pub struct ReadRegister {
    /// The register's name as gdb knows it (`pc`, `r0`, `xpsr`, `msp`).
    pub name: String,
    /// Store the value as this metric.
    pub metric: Option<String>,
    /// Fail unless the value equals this.
    pub expect: Option<u64>,
}

/// Options of `read-memory:`.
#[derive(Debug, Clone)]
pub struct ReadMemory {
    /// Where to read.
    pub address: DataLocation,
    /// How many bytes (1 to 65536).
    pub length: u32,
    /// Fail unless the bytes equal these.
    pub expect: Option<Vec<u8>>,
}

/// Options of `read-symbol:`.
#[derive(Debug, Clone)]
pub struct ReadSymbol {
    /// The global's name.
    pub name: String,
    /// Store the value as this metric.
    pub metric: Option<String>,
    /// Fail unless the value equals this.
    pub expect: Option<f64>,
}

/// Options of `write-memory:`.
#[derive(Debug, Clone)]
pub struct WriteMemory {
    /// Where to write.
    pub address: DataLocation,
    /// The bytes to write.
    pub bytes: Vec<u8>,
}

/// Options of `write-symbol:`.
#[derive(Debug, Clone)]
pub struct WriteSymbol {
    /// The global's name.
    pub name: String,
    /// The value, converted to the global's type.
    pub value: f64,
}

/// The kind of fault `expect-fault:` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The HardFault handler ran (any configurable fault escalates to it).
    HardFault,
    /// The core locked up (a fault inside the fault handler); QEMU aborts.
    Lockup,
}

/// Options of `expect-fault:`.
#[derive(Debug, Clone)]
pub struct ExpectFault {
    /// The expected kind.
    pub kind: FaultKind,
    /// A CFSR or HFSR bit that must be set (`UNDEFINSTR`, `PRECISERR`, `FORCED`).
    pub cause: Option<String>,
    /// The function the stacked PC must lie in.
    pub function: Option<String>,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// The direction of a series, as `trend:` classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Grows steadily over the window.
    Rising,
    /// Neither grows nor shrinks steadily.
    Flat,
    /// Shrinks steadily over the window.
    Falling,
}

impl Direction {
    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Rising => "rising",
            Direction::Flat => "flat",
            Direction::Falling => "falling",
        }
    }
}

/// Options of `trend:`.
#[derive(Debug, Clone)]
pub struct Trend {
    /// A pattern with named groups `x` and `y`; each match is one sample.
    pub pattern: regex::bytes::Regex,
    /// Sampling ends when this matches (or the console closes).
    pub until: Option<regex::bytes::Regex>,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
    /// The slope's metric name (also `<metric>_r2` and `<metric>_samples`).
    pub metric: String,
    /// The expected direction, for every variant or per variant name.
    pub expect: BTreeMap<Option<String>, Direction>,
}

/// Options of `script:`: a rhai script, from a file or inline.
#[derive(Debug, Clone)]
pub struct Script {
    /// Where the source came from, for messages: the `.rhai` file, or the
    /// scenario file for an inline script.
    pub file: PathBuf,
    /// The script's source, already checked by `lab::script::check`.
    pub source: String,
    /// Per-step deadline; the scenario's deadline bounds it too.
    pub timeout: Option<Duration>,
}

/// Which runtime's GC trace `gc-trace:` parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcFormat {
    /// Go's `GODEBUG=gctrace=1` lines (`gc 1 @0.012s 2%: ...`).
    Go,
    /// V8's `--trace-gc` lines, as Node.js prints them (`[pid:0x...] 42 ms: Scavenge ...`).
    V8,
    /// Either, told apart line by line: Go and Node.js as matrix variants of
    /// one scenario share its steps.
    Auto,
}

impl GcFormat {
    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GcFormat::Go => "go",
            GcFormat::V8 => "v8",
            GcFormat::Auto => "auto",
        }
    }
}

/// Options of `gc-trace:`.
#[derive(Debug, Clone)]
pub struct GcTrace {
    /// The trace format.
    pub format: GcFormat,
    /// Reading ends at the first line this matches; its named groups become
    /// metrics, and `run_us` is the run time the pauses are a share of.
    pub until: regex::bytes::Regex,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// How a supervised service crashed, as `expect-crash:` classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// A Go panic: `panic: ...` and a goroutine trace, exit status 2.
    GoPanic,
    /// Node's report of an uncaught exception, exit status 1.
    UncaughtException,
    /// Killed by a signal (status above 128).
    Signal,
    /// Out of memory, as Go's runtime, V8 or the kernel reports it.
    Oom,
    /// Any other non-zero exit status.
    Exit,
}

impl CrashKind {
    /// Every kind, in the order they are listed in messages.
    pub const ALL: [CrashKind; 5] = [
        CrashKind::GoPanic,
        CrashKind::UncaughtException,
        CrashKind::Signal,
        CrashKind::Oom,
        CrashKind::Exit,
    ];

    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CrashKind::GoPanic => "go-panic",
            CrashKind::UncaughtException => "uncaught-exception",
            CrashKind::Signal => "signal",
            CrashKind::Oom => "oom",
            CrashKind::Exit => "exit",
        }
    }
}

/// Options of `expect-crash:`.
#[derive(Debug, Clone)]
pub struct ExpectCrash {
    /// The expected kind; `None` accepts any crash.
    pub kind: Option<CrashKind>,
    /// After the crash, wait for the supervisor's restart and then for this
    /// pattern (the service is ready again).
    pub restart: Option<regex::bytes::Regex>,
    /// Per-step deadline, for the crash and the restart together.
    pub timeout: Option<Duration>,
}

/// Options of `serial-load:`.
#[derive(Debug, Clone)]
pub struct SerialLoad {
    /// How many messages (at least 1).
    pub count: u32,
    /// Messages per second of host wall time (above 0).
    pub rate: f64,
    /// The message, with `{seq}` where its number (0 to count - 1) goes.
    pub send: String,
    /// A reply; its group `seq` names the message it answers, its other
    /// named groups are recorded as their maximum (`<name>_max`).
    pub reply: regex::bytes::Regex,
    /// Per-step deadline, for sending and draining.
    pub timeout: Option<Duration>,
    /// After the last send, how long stragglers may still arrive.
    pub drain: Duration,
}
