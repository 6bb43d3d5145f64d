//! Running a case: what `lab check` does with a file, on a worker thread,
//! within a time budget.

use std::any::Any;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use lab::backend::probe::{
    CoreAccess, CoreState, FlashEvent, NoProbes, ProbeError, ProbeInfo, ProbeLister, ProbeSession,
};
use lab::runner::{self, Job};
use lab::scenario::{self, Scenario};
use lab::workspace::Workspace;

use super::Case;

/// How long one case may take before it counts as a hang: 2 s in an
/// optimized build (the benchmark), ten times that in a debug build (the
/// test), which runs the loaders about ten times slower.
///
/// The slowest cases the strategies make are near the loader's limits (a
/// file of 1 MiB, its patterns' 16 MiB budget, rhai's depth limits) and
/// took up to 0.43 s in 100,000 cases of an optimized build. The margin
/// leaves room for a 2-core machine that other builds and tests keep busy,
/// while what this looks for, a loop that does not end or work that grows
/// without bound with the input (alias expansion, regex compilation,
/// recursion, planning billions of jobs), runs far past it.
pub const CASE_BUDGET: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(20)
} else {
    Duration::from_secs(2)
};

/// The worker's stack: the 8 MiB of the main thread that `lab check` runs
/// on (Linux's default), so that recursion overflows here when it would
/// there, and not sooner.
const WORKER_STACK: usize = 8 << 20;

/// How far a case got in `lab check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reached {
    /// The loader refused the file (`lab check` prints the error, exit 2).
    Invalid,
    /// The file loaded, and planning refused it (an unknown board, a step
    /// before `boot`, ...), with a probe attached too where one matters.
    Unplannable,
    /// The file loaded and planned into jobs (`lab check` says `ok`).
    Planned,
}

/// The outcome of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The case ran to its end, and got this far.
    Passed(Reached),
    /// The loader or the planner panicked, with this message.
    Panicked(String),
    /// The case was still running after [`CASE_BUDGET`].
    Hung,
}

/// Runs cases one after the other against the repository's workspace,
/// writing each to a temporary folder as `lab check` would read it.
pub struct Harness {
    workspace: Arc<Workspace>,
    dir: tempfile::TempDir,
    worker: Option<Worker>,
}

impl Harness {
    /// A harness on the repository's workspace (its board profiles and
    /// image manifests).
    ///
    /// # Panics
    ///
    /// When the workspace cannot be read or no temporary folder made.
    pub fn new() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let workspace = Workspace::open(root).expect("the repository is a lab workspace");
        Self {
            workspace: Arc::new(workspace),
            dir: tempfile::tempdir().expect("a temporary folder"),
            worker: None,
        }
    }

    /// The workspace cases are planned against.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// Runs `case`: writes it, then loads and plans it on the worker
    /// thread, waiting at most [`CASE_BUDGET`]. A worker that hangs is
    /// left to itself (a thread cannot be stopped) and replaced.
    ///
    /// # Panics
    ///
    /// When the case's files cannot be written.
    pub fn run(&mut self, case: &Case) -> Verdict {
        let path = self.dir.path().join(case.file_name());
        std::fs::write(&path, &case.text).expect("the case is written");
        std::fs::write(self.dir.path().join("companion.rhai"), &case.companion)
            .expect("the companion script is written");
        let workspace = &self.workspace;
        let worker = self
            .worker
            .get_or_insert_with(|| Worker::spawn(Arc::clone(workspace)));
        let verdict = match worker.cases.send(path) {
            Ok(()) => match worker.verdicts.recv_timeout(CASE_BUDGET) {
                Ok(Ok(reached)) => return Verdict::Passed(reached),
                Ok(Err(message)) => return Verdict::Panicked(message),
                Err(RecvTimeoutError::Timeout) => Verdict::Hung,
                Err(RecvTimeoutError::Disconnected) => {
                    Verdict::Panicked("the worker thread ended".to_owned())
                }
            },
            Err(_) => Verdict::Panicked("the worker thread ended".to_owned()),
        };
        self.worker = None;
        verdict
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// A thread that checks the files it is sent, catching panics.
struct Worker {
    /// Paths of scenario files to check.
    cases: mpsc::Sender<PathBuf>,
    /// How far each got, or a panic's message.
    verdicts: mpsc::Receiver<Result<Reached, String>>,
}

impl Worker {
    fn spawn(workspace: Arc<Workspace>) -> Self {
        let (cases, inbox) = mpsc::channel::<PathBuf>();
        let (outbox, verdicts) = mpsc::channel();
        thread::Builder::new()
            .name("loader-fuzz".to_owned())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                for path in inbox {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| check(&path, &workspace)))
                        .map_err(panic_message);
                    if outbox.send(result).is_err() {
                        break;
                    }
                }
            })
            .expect("the worker thread starts");
        Self { cases, verdicts }
    }
}

/// What `lab check` does with one file (`check` in `src/main.rs`): load
/// it, then plan it, and render any error. Planning runs with no probe
/// attached, as where the tests run, and again, when a board of the
/// scenario has a hardware profile, with a probe that answers for every
/// chip, which takes hardware jobs through their own checks.
fn check(path: &Path, workspace: &Workspace) -> Reached {
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(error) => {
            black_box(error.to_string());
            return Reached::Invalid;
        }
    };
    let mut listers: Vec<Arc<dyn ProbeLister>> = vec![Arc::new(NoProbes)];
    if on_hardware(&scenario, workspace) {
        listers.push(Arc::new(AnyProbe));
    }
    let scenarios = [scenario];
    let mut reached = Reached::Unplannable;
    for probes in listers {
        match runner::plan_with(&scenarios, workspace, None, probes) {
            Ok(jobs) => {
                black_box(jobs.iter().map(Job::label).count());
                reached = Reached::Planned;
            }
            Err(error) => {
                black_box(error.to_string());
            }
        }
    }
    reached
}

/// Whether a board that `scenario` names, at the top or in its matrix,
/// has a hardware profile, so that a probe could change its plan.
fn on_hardware(scenario: &Scenario, workspace: &Workspace) -> bool {
    let variants = scenario.matrix.iter().filter_map(|v| v.board.as_ref());
    scenario
        .board
        .iter()
        .chain(variants)
        .filter_map(|board| workspace.boards.get(&board.value).ok().flatten())
        .any(|board| board.hardware.is_some())
}

/// A panic's message.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic with a payload that is not text".to_owned(),
        },
    }
}

/// A debug probe that answers for every chip, so that planning selects
/// hardware for boards that have it. Planning only opens the probe to ask;
/// the session refuses everything else.
struct AnyProbe;

impl ProbeLister for AnyProbe {
    fn list(&self) -> Vec<ProbeInfo> {
        vec![ProbeInfo {
            identifier: "fuzz probe".to_owned(),
            serial: None,
            selector: "fuzz".to_owned(),
        }]
    }

    fn open(&self, _probe: &ProbeInfo, _chip: &str) -> Result<Box<dyn ProbeSession>, ProbeError> {
        Ok(Box::new(RefusingSession))
    }
}

/// A probe session where every operation fails.
struct RefusingSession;

/// The answer of every [`RefusingSession`] operation.
fn refuse<T>() -> Result<T, ProbeError> {
    Err(ProbeError::Unsupported)
}

impl CoreAccess for RefusingSession {
    fn read_reg(&mut self, _: u16) -> Result<u32, ProbeError> {
        refuse()
    }
    fn write_reg(&mut self, _: u16, _: u32) -> Result<(), ProbeError> {
        refuse()
    }
    fn read_memory(&mut self, _: u64, _: &mut [u8]) -> Result<(), ProbeError> {
        refuse()
    }
    fn write_memory(&mut self, _: u64, _: &[u8]) -> Result<(), ProbeError> {
        refuse()
    }
    fn halt(&mut self) -> Result<(), ProbeError> {
        refuse()
    }
    fn run(&mut self) -> Result<(), ProbeError> {
        refuse()
    }
    fn step(&mut self) -> Result<(), ProbeError> {
        refuse()
    }
    fn state(&mut self) -> Result<CoreState, ProbeError> {
        refuse()
    }
    fn reset(&mut self, _: bool) -> Result<(), ProbeError> {
        refuse()
    }
    fn set_breakpoint(&mut self, _: u64) -> Result<(), ProbeError> {
        refuse()
    }
    fn clear_breakpoint(&mut self, _: u64) -> Result<(), ProbeError> {
        refuse()
    }
    fn has_fpu(&mut self) -> Result<bool, ProbeError> {
        refuse()
    }

    fn catch_hardfault(&mut self, _on: bool) -> Result<(), ProbeError> {
        refuse()
    }
}

impl ProbeSession for RefusingSession {
    fn flash(&mut self, _: &Path, _: &mut dyn FnMut(FlashEvent)) -> Result<(), ProbeError> {
        refuse()
    }
    fn rtt_attach(&mut self, _: u64) -> Result<bool, ProbeError> {
        refuse()
    }
    fn rtt_read(&mut self, _: &mut Vec<u8>) -> Result<(), ProbeError> {
        refuse()
    }
    fn rtt_write(&mut self, _: &[u8]) -> Result<usize, ProbeError> {
        refuse()
    }
}
