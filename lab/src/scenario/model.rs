//! The validated scenario model: what the runner executes.
//!
//! These types are produced by [`super::load`]; they hold no raw YAML and
//! every value has already been checked. Values that later stages may still
//! reject (a board name, an image) keep their source position in [`At`].

use std::collections::BTreeMap;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::report::{Column, TableSpec};
pub use crate::source::{At, Loc};
pub use crate::steps::Step;

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
    /// Where `storage: {}` is written, when the board keeps nonvolatile
    /// storage across `power-cut` and `power-on` (fresh, erased, in every
    /// run).
    pub storage: Option<Loc>,
    /// Where `record:` is written and when a run keeps a recording of
    /// itself (`lab run --record` overrides it).
    pub record: Option<At<RecordMode>>,
    /// The table the experiment prints (`table:`): which metrics, in
    /// which order, with labels and units; variants are its rows. `None`:
    /// a scenario with variants prints every metric, in the order its
    /// steps produced them.
    pub table: Option<TableSpec>,
    /// Steps that bring the target to the state every run starts from:
    /// run once and snapshotted, then restored (`warm-up:`; empty: none).
    pub warm_up: Vec<At<Step>>,
    /// The steps, in order.
    pub steps: Vec<At<Step>>,
}

impl Scenario {
    /// Every step in the order a cold run takes them: `warm-up`, then `steps`.
    pub fn all_steps(&self) -> impl Iterator<Item = &At<Step>> {
        self.warm_up.iter().chain(&self.steps)
    }
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

/// `record:` (and `lab run --record`) — which runs keep a recording of
/// themselves that `lab debug --replay` plays back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// Every run (`record: true`, `--record`).
    Always,
    /// Only runs that do not pass (`record: failed`, `--record=failed`).
    Failed,
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
