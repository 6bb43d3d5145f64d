//! The runner: plans jobs, builds their images, and executes their steps
//! against target backends, several at once, each under its deadline.
//!
//! Nothing here prints: progress goes out as [`RunEvent`]s and results come
//! back as [`RunResult`]s.

mod execute;
mod launch;
mod plan;
mod record;
mod select;
mod selection;
mod serve;
mod warm;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use execute::unfinished;
pub use plan::{ImageSource, Job, PlanError, declared_tables, plan, plan_with};
pub use record::{
    JobRecording, MANIFEST_FILE, Manifest, RECORDINGS_DIR, RecordError, RecordedFile, apply_flags,
    beside_report, load as load_recording, recordable,
};
pub use select::ProbeSlot;
pub use selection::{Selection, SelectionError, Shard, render_list};
pub use serve::{DebugEndpoint, DebugEvent, ServeEnd, serve_debugger, serve_replay};

use crate::image::{BuildOutcome, BuiltFiles};
use crate::report::RunResult;
use crate::workspace::Workspace;

/// Progress of a run, for the CLI to display.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// An image build finished (or was found in the cache).
    ImageReady {
        /// `image@board`.
        label: String,
        /// The outcome, or the error as one message.
        outcome: Result<BuildOutcome, String>,
    },
    /// A job started.
    Started {
        /// The job's index in the plan.
        index: usize,
        /// The job's label.
        label: String,
    },
    /// A job began a step.
    Step {
        /// The job's index in the plan.
        index: usize,
        /// Which step, as messages name it (`step 3`, `warm-up step 1`,
        /// `the warm start`).
        which: String,
        /// The step's key (`wait-serial`).
        key: String,
    },
    /// A job's firmware is being flashed to its board.
    Flashing {
        /// The job's index in the plan.
        index: usize,
        /// The job's label.
        label: String,
        /// How far the download is.
        event: crate::backend::probe::FlashEvent,
    },
    /// A job ended.
    Finished {
        /// The job's index in the plan.
        index: usize,
        /// Its result.
        result: Box<RunResult>,
    },
}

/// Built image files per (image, board), or why they could not be built.
pub type BuiltImages = HashMap<(String, String), Result<BuiltFiles, String>>;

/// Builds every workspace image the jobs need, once per (image, board).
/// Blocking: run it off the async runtime.
pub fn build_images(
    jobs: &[Job],
    workspace: &Workspace,
    on_event: &dyn Fn(RunEvent),
) -> BuiltImages {
    let mut built = BuiltImages::new();
    let wanted = jobs.iter().flat_map(|job| {
        std::iter::once((&job.board, &job.image))
            .chain(job.script_boots.iter().map(|(b, i)| (b, i)))
    });
    for (board, image) in wanted {
        let ImageSource::Built(name) = image else {
            continue;
        };
        let key = (name.clone(), board.name.clone());
        if built.contains_key(&key) {
            continue;
        }
        let outcome = match workspace.images.get(name) {
            Ok(Some(manifest)) => workspace
                .builder
                .build(manifest, board)
                .map_err(|e| e.to_string()),
            Ok(None) => Err(format!("unknown image `{name}`")),
            Err(e) => Err(e.to_string()),
        };
        on_event(RunEvent::ImageReady {
            label: format!("{name}@{}", board.name),
            outcome: outcome.clone(),
        });
        built.insert(key, outcome.map(|o| o.files));
    }
    built
}

/// How `lab run` runs its jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunSettings {
    /// At most this many jobs at once (at least 1).
    pub parallel: usize,
    /// Seeds scripts' random numbers.
    pub seed: u64,
    /// Ignore the warm-up snapshots: every run boots cold (`--cold`).
    pub cold: bool,
    /// Start no job after one has not passed (`--fail-fast`); the jobs
    /// running then finish.
    pub fail_fast: bool,
}

/// What every job of a run shares besides the workspace.
struct JobSettings {
    /// Seeds scripts' random numbers.
    seed: u64,
    /// Ignore the warm-up snapshots.
    cold: bool,
    /// The workspace's warm-up snapshots.
    snapshots: warm::SnapshotCache,
}

/// Runs `jobs` as `settings` say and returns one result per job in plan
/// order. `workspace` serves scripts that boot other boards or images, and
/// holds the warm-up snapshots. Cancelling `cancel` (Ctrl-C) stops every
/// running job; each still yields a result.
pub async fn run_jobs(
    jobs: Vec<Job>,
    workspace: Arc<Workspace>,
    images: BuiltImages,
    settings: RunSettings,
    cancel: CancellationToken,
    on_event: Arc<dyn Fn(RunEvent) + Send + Sync>,
) -> Vec<RunResult> {
    let permits = Arc::new(Semaphore::new(settings.parallel.max(1)));
    let shared = Arc::new(JobSettings {
        seed: settings.seed,
        cold: settings.cold,
        snapshots: warm::SnapshotCache::new(&workspace.build_dir),
    });
    let images = Arc::new(images);
    // Under --fail-fast, the first job that does not pass names itself
    // here and stops the start of any other.
    let first_failure = Arc::new(OnceLock::<String>::new());
    let stop = CancellationToken::new();
    let mut handles = Vec::with_capacity(jobs.len());
    let placeholders: Vec<RunResult> = jobs.iter().map(execute::unfinished).collect();
    for (index, mut job) in jobs.into_iter().enumerate() {
        let label = job.label();
        if let Some(probe) = &mut job.probe {
            let on_event = Arc::clone(&on_event);
            probe.on_flash = Some(Arc::new(move |event| {
                on_event(RunEvent::Flashing {
                    index,
                    label: label.clone(),
                    event,
                });
            }));
        }
        // Permits are taken here, in plan order, so jobs start in the order
        // they were planned (`-j 1` runs them one after the other, as
        // listed); once cancelled, the rest start at once and end interrupted.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.ok(),
            _ = cancel.cancelled() => None,
            _ = stop.cancelled() => None,
        };
        let images = Arc::clone(&images);
        let workspace = Arc::clone(&workspace);
        let cancel = cancel.clone();
        let on_event = Arc::clone(&on_event);
        let shared = Arc::clone(&shared);
        let first_failure = Arc::clone(&first_failure);
        let stop = stop.clone();
        let fail_fast = settings.fail_fast;
        handles.push(tokio::spawn(async move {
            if let (None, Some(failed)) = (&permit, first_failure.get()) {
                let result = RunResult {
                    error: Some(format!(
                        "not run: --fail-fast stopped the run when {failed} did not pass"
                    )),
                    ..execute::unfinished(&job)
                };
                on_event(RunEvent::Finished {
                    index,
                    result: Box::new(result.clone()),
                });
                return result;
            }
            let _permit = permit;
            if _permit.is_some() {
                on_event(RunEvent::Started {
                    index,
                    label: job.label(),
                });
            }
            let launcher = launch::JobLauncher {
                job: Arc::new(job),
                workspace,
                images,
            };
            let label = launcher.job.label();
            let on_step = {
                let on_event = Arc::clone(&on_event);
                move |which: &str, key: &str| {
                    on_event(RunEvent::Step {
                        index,
                        which: which.to_owned(),
                        key: key.to_owned(),
                    });
                }
            };
            let result = execute::execute(launcher, &shared, &cancel, &on_step).await;
            if fail_fast && result.status != crate::report::Status::Passed {
                let _ = first_failure.set(label);
                stop.cancel();
            }
            on_event(RunEvent::Finished {
                index,
                result: Box::new(result.clone()),
            });
            result
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for (handle, mut lost) in handles.into_iter().zip(placeholders) {
        match handle.await {
            Ok(result) => results.push(result),
            // A job that panicked still gets its result: nothing is lost.
            Err(e) => {
                lost.error = Some(format!("the lab failed while running this job: {e}"));
                results.push(lost);
            }
        }
    }
    results
}
