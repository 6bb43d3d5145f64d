//! Planning: expands scenarios into jobs (scenario x variant x run) and
//! resolves boards, images and backends, before anything starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::select::{ProbeSlot, Selector};
use crate::backend::TargetKind;
use crate::backend::probe::{ProbeLister, system_lister};
use crate::board::{BoardProfile, ExitMethod};
use crate::report::Tables;
use crate::scenario::{Clock, ImageRef, Loc, Scenario, Step, TargetChoice};
use crate::steps::PowerMode;
use crate::workspace::Workspace;

/// A scenario that cannot run as written; reported with file:line:col.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{loc}: {message}\n  hint: {hint}")]
pub struct PlanError {
    /// The scenario file.
    pub file: PathBuf,
    /// Where the offending value is.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// Where a job's bootable files come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An image of the workspace, built for the job's board.
    Built(String),
    /// Files given by path in the scenario.
    Files(ImageRef),
}

/// One run of one variant of one scenario, fully resolved.
#[derive(Debug, Clone)]
pub struct Job {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// The variant's name, if the scenario has a matrix.
    pub variant: Option<String>,
    /// The board profile.
    pub board: BoardProfile,
    /// What to boot.
    pub image: ImageSource,
    /// The backend.
    pub target: TargetKind,
    /// The debug probe, for a job on hardware.
    pub probe: Option<ProbeSlot>,
    /// Guest environment.
    pub env: BTreeMap<String, String>,
    /// Guest arguments.
    pub args: Vec<String>,
    /// Run number, from 1.
    pub run: u32,
    /// The job's place in the whole run, from 0: in the plan, then in the
    /// selection before `--shard` cut it, so that shards merge back in order.
    pub position: usize,
    /// Other boards and images the job's scripts boot by literal name,
    /// built before the run like the job's own.
    pub script_boots: Vec<(BoardProfile, ImageSource)>,
    /// Whether the run records itself or replays a recording.
    pub recording: Option<super::record::JobRecording>,
}

impl Job {
    /// A short label: `name[variant]#run`.
    pub fn label(&self) -> String {
        let case = crate::report::case(&self.scenario.name, self.variant.as_deref());
        format!("{case}#{}", self.run)
    }
}

/// The tables the scenarios of `jobs` declare (`table:`), by scenario
/// name (the first scenario of a name wins): what the report carries so
/// that it prints them without the scenario files.
pub fn declared_tables(jobs: &[Job]) -> Tables {
    let mut tables = Tables::new();
    for job in jobs {
        if let Some(table) = &job.scenario.table {
            tables
                .entry(job.scenario.name.clone())
                .or_insert_with(|| table.clone());
        }
    }
    tables
}

/// Expands and resolves `scenarios`; `target` overrides each scenario's
/// choice. Hardware is looked for with this build's probe lister.
pub fn plan(
    scenarios: &[Scenario],
    workspace: &Workspace,
    target: Option<TargetChoice>,
) -> Result<Vec<Job>, PlanError> {
    plan_with(scenarios, workspace, target, system_lister())
}

/// Like [`plan`], with the probes that `probes` finds.
pub fn plan_with(
    scenarios: &[Scenario],
    workspace: &Workspace,
    target: Option<TargetChoice>,
    probes: Arc<dyn ProbeLister>,
) -> Result<Vec<Job>, PlanError> {
    let mut selector = Selector::new(probes);
    let mut jobs = Vec::new();
    for scenario in scenarios {
        check_steps(scenario)?;
        let scenario = Arc::new(scenario.clone());
        let variants: Vec<Option<&crate::scenario::Variant>> = if scenario.matrix.is_empty() {
            vec![None]
        } else {
            scenario.matrix.iter().map(Some).collect()
        };
        for variant in variants {
            let err = |loc: Loc, message: String, hint: String| PlanError {
                file: scenario.file.clone(),
                loc,
                message,
                hint,
            };
            let board_at = variant
                .and_then(|v| v.board.as_ref())
                .or(scenario.board.as_ref())
                .ok_or_else(|| {
                    err(
                        Loc { line: 1, column: 1 },
                        "no board given".into(),
                        "add `board:` at the top or to every matrix variant".into(),
                    )
                })?;
            let board = resolve_board(workspace, &board_at.value)
                .map_err(|(m, h)| err(board_at.loc, m, h))?;
            let image_at = variant
                .and_then(|v| v.image.as_ref())
                .or(scenario.image.as_ref())
                .ok_or_else(|| {
                    err(
                        board_at.loc,
                        "no image given".into(),
                        "add `image:` at the top or to every matrix variant".into(),
                    )
                })?;
            let image = resolve_image(workspace, &board, &image_at.value)
                .map_err(|(m, h)| err(image_at.loc, m, h))?;
            if let Some(at) = scenario.storage {
                check_storage(workspace, &board, &image).map_err(|(m, h)| err(at, m, h))?;
            }
            check_graceful(&scenario, &board)?;
            let script_boots = script_boots(workspace, &scenario, &board, &image_at.value)?;
            let (kind, probe) = selector
                .select(target.unwrap_or(scenario.target), &board)
                .map_err(|(m, h)| err(board_at.loc, m, h))?;
            if kind == TargetKind::Hardware {
                check_hardware(&scenario, &board, &image, board_at.loc)?;
            }
            let recording = match &scenario.record {
                Some(at) => {
                    let storage = scenario.storage.is_some();
                    super::record::recordable(&board, scenario.clock, kind, storage)
                        .map_err(|(m, h)| err(at.loc, m, h))?;
                    Some(super::record::JobRecording::Record {
                        mode: at.value,
                        root: workspace.build_dir.join(super::record::RECORDINGS_DIR),
                    })
                }
                None => None,
            };
            let mut env = scenario.env.clone();
            let mut args = scenario.args.clone();
            if let Some(v) = variant {
                env.extend(v.env.clone());
                if let Some(a) = &v.args {
                    args = a.clone();
                }
            }
            if let Some((key, value)) = env.iter().find(|(k, v)| !kernel_env_word(k, v)) {
                return Err(err(
                    board_at.loc,
                    format!("`env` entry `{key}={value}` cannot travel on a kernel command line"),
                    "keys are letters, digits and `_` (not starting with a digit); values have no spaces or quotes".into(),
                ));
            }
            if !env.is_empty() && board.exit == ExitMethod::Semihosting {
                return Err(err(
                    board_at.loc,
                    format!(
                        "`env` is given, but board `{}` runs bare-metal firmware, which has no environment",
                        board.name
                    ),
                    "pass values to firmware through `args` (its semihosting command line)".into(),
                ));
            }
            for run in 1..=scenario.runs {
                jobs.push(Job {
                    scenario: Arc::clone(&scenario),
                    variant: variant.map(|v| v.name.clone()),
                    board: board.clone(),
                    image: image.clone(),
                    target: kind,
                    probe: probe.clone(),
                    env: env.clone(),
                    args: args.clone(),
                    run,
                    position: jobs.len(),
                    script_boots: script_boots.clone(),
                    recording: recording.clone(),
                });
            }
        }
    }
    Ok(jobs)
}

/// Checks that `board` booting `image` has the storage `storage:` asks
/// for: a `kind: nvm` region, or a disk that the board takes and the image
/// builds.
fn check_storage(
    workspace: &Workspace,
    board: &BoardProfile,
    image: &ImageSource,
) -> Result<(), (String, String)> {
    if board.nonvolatile().is_some() {
        return Ok(());
    }
    if board.linux.as_ref().is_none_or(|l| l.disk.is_none()) {
        return Err((
            format!(
                "board `{}` has no nonvolatile storage for `storage:`",
                board.name
            ),
            "a bare-metal board keeps its storage in a `kind: nvm` region of its profile's \
             memory map (the MPS2 boards have one); a Linux board takes a disk as its profile's \
             `linux.disk` says (virt-a53 and raspi3b do)"
                .into(),
        ));
    }
    let which = match image {
        ImageSource::Built(name) => {
            let builds_disk = workspace
                .images
                .get(name)
                .ok()
                .flatten()
                .and_then(|m| m.outputs.as_ref())
                .is_some_and(|o| o.disk.is_some());
            if builds_disk {
                return Ok(());
            }
            format!("image `{name}` builds no disk")
        }
        ImageSource::Files(_) => "an image given by files has no disk".into(),
    };
    Err((
        format!(
            "board `{}` keeps its storage on a disk, and {which}",
            board.name
        ),
        "use an image with a `disk:` output (raspi/busybox has one: \
         build-linux-image.py --disk FOLDER), or remove `storage:`"
            .into(),
    ))
}

/// Refuses `power-cut: {mode: graceful}` on a board without a power-fail
/// warning (`power_fail` in its profile), where the step is written.
fn check_graceful(scenario: &Scenario, board: &BoardProfile) -> Result<(), PlanError> {
    if board.power_fail.is_some() {
        return Ok(());
    }
    for step in scenario.all_steps() {
        if let Step::PowerCut(cut) = &step.value
            && matches!(cut.mode, PowerMode::Graceful { .. })
        {
            return Err(PlanError {
                file: scenario.file.clone(),
                loc: step.loc,
                message: format!(
                    "board `{}` has no power-fail warning for `mode: graceful` (no \
                     `power_fail` in its profile)",
                    board.name
                ),
                hint: "cut with `mode: abrupt`; a Linux guest that must write its data \
                       before a cut can sync it itself (run `sync` before the step)"
                    .into(),
            });
        }
    }
    Ok(())
}

/// The boards and images that `scenario`'s scripts boot by literal name
/// (`boot(#{board: "..", image: ".."})`), resolved like the scenario's own;
/// a missing key means the job's `board` or `image`.
fn script_boots(
    workspace: &Workspace,
    scenario: &Scenario,
    board: &BoardProfile,
    image: &ImageRef,
) -> Result<Vec<(BoardProfile, ImageSource)>, PlanError> {
    let mut boots = Vec::new();
    for step in scenario.all_steps() {
        let Step::Script(script) = &step.value else {
            continue;
        };
        let err = |loc: Option<Loc>, (message, hint): (String, String)| PlanError {
            file: script.file.clone(),
            loc: loc.unwrap_or(Loc { line: 1, column: 1 }),
            message,
            hint,
        };
        let calls = crate::steps::script_checker()
            .literal_boots(&script.file, &script.source)
            .map_err(|e| {
                let message = (e.kind().to_string(), "fix the script".into());
                err(e.location(), message)
            })?;
        for call in calls {
            let other_board = match &call.board {
                Some(name) => resolve_board(workspace, name).map_err(|e| err(call.loc, e))?,
                None => board.clone(),
            };
            let other_image = match &call.image {
                Some(name) => ImageRef::Named(name.clone()),
                None => image.clone(),
            };
            let source = resolve_image(workspace, &other_board, &other_image)
                .map_err(|e| err(call.loc, e))?;
            boots.push((other_board, source));
        }
    }
    Ok(boots)
}

/// Refuses, before anything runs, what a real board cannot do: emulated
/// time, QEMU's monitor, images that are not firmware.
fn check_hardware(
    scenario: &Scenario,
    board: &BoardProfile,
    image: &ImageSource,
    board_loc: Loc,
) -> Result<(), PlanError> {
    let err = |loc: Loc, message: String, hint: &str| PlanError {
        file: scenario.file.clone(),
        loc,
        message,
        hint: hint.into(),
    };
    if scenario.clock == Clock::Virtual {
        return Err(err(
            board_loc,
            format!(
                "`clock: virtual` (QEMU's icount) is not available on hardware, and board `{}` runs on a debug probe",
                board.name
            ),
            "use `clock: wall` for this scenario, or run it with `--target qemu`",
        ));
    }
    if matches!(image, ImageSource::Files(ImageRef::Linux { .. })) {
        return Err(err(
            board_loc,
            "a Linux kernel cannot be flashed through a debug probe".into(),
            "give firmware (`{elf: path}` or a workspace image), or run with `--target qemu`",
        ));
    }
    for step in scenario.all_steps() {
        if let Some(feature) = step.value.emulation_only() {
            return Err(err(
                step.loc,
                format!(
                    "`{}` needs {feature}, which is not available on hardware",
                    step.value.key()
                ),
                "remove the step, or run the scenario with `--target qemu`",
            ));
        }
    }
    Ok(())
}

/// Whether `key=value` passes through the kernel command line into init's
/// environment unchanged (the kernel keeps words with a dot for itself).
fn kernel_env_word(key: &str, value: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
}

/// The board profile called `name`, or what is wrong and a hint.
pub(super) fn resolve_board(
    workspace: &Workspace,
    name: &str,
) -> Result<BoardProfile, (String, String)> {
    match workspace.boards.get(name) {
        Ok(Some(board)) => Ok(board.clone()),
        Ok(None) => Err((
            format!("unknown board `{name}`"),
            format!(
                "boards in qemu-configs/: {}",
                workspace.boards.names().join(", ")
            ),
        )),
        Err(e) => Err((
            format!("board `{name}`: {e}"),
            "fix the board profile and run again".into(),
        )),
    }
}

/// Where `image` comes from on `board`, or what is wrong and a hint.
pub(super) fn resolve_image(
    workspace: &Workspace,
    board: &BoardProfile,
    image: &ImageRef,
) -> Result<ImageSource, (String, String)> {
    match image {
        ImageRef::Named(name) => {
            let manifest = match workspace.images.get(name) {
                Ok(Some(manifest)) => manifest,
                Ok(None) => {
                    return Err((
                        format!("unknown image `{name}`"),
                        format!(
                            "images in images/: {}; or give a file with `{{elf: path}}`",
                            workspace.images.names().join(", ")
                        ),
                    ));
                }
                Err(e) => {
                    return Err((
                        format!("image `{name}`: {e}"),
                        "fix the image manifest and run again".into(),
                    ));
                }
            };
            if manifest.arch != board.arch {
                return Err((
                    format!(
                        "image `{name}` is built for {}, but board `{}` is {}",
                        manifest.arch.as_str(),
                        board.name,
                        board.arch.as_str()
                    ),
                    "pick an image and a board of the same architecture".into(),
                ));
            }
            let wants_dtb = board.linux.as_ref().and_then(|l| l.dtb.as_ref());
            let has_dtbs = manifest.outputs.as_ref().is_some_and(|o| o.dtbs.is_some());
            if let (Some(dtb), false) = (wants_dtb, has_dtbs) {
                return Err((
                    format!(
                        "board `{}` boots with device tree `{dtb}`, and image `{name}` has no \
                         `dtbs` output",
                        board.name
                    ),
                    "add `dtbs:` to the image's `outputs`, or pick another board".into(),
                ));
            }
            Ok(ImageSource::Built(name.clone()))
        }
        files => Ok(ImageSource::Files(files.clone())),
    }
}

/// Checks `warm-up`: it boots the target (its snapshot is of a running
/// machine) and leaves no debugger attached (a session does not survive a
/// snapshot).
fn check_warm_up(scenario: &Scenario) -> Result<(), PlanError> {
    let Some(first) = scenario.warm_up.first() else {
        return Ok(());
    };
    let err = |loc: Loc, message: &str, hint: &str| PlanError {
        file: scenario.file.clone(),
        loc,
        message: message.into(),
        hint: hint.into(),
    };
    if let Some(debug) = scenario
        .warm_up
        .iter()
        .find(|s| matches!(s.value, Step::AttachDebugger(_)))
    {
        return Err(err(
            debug.loc,
            "a debugger session does not survive a snapshot, so `warm-up` cannot attach one",
            "move `attach-debugger` and the debugger steps into `steps`",
        ));
    }
    if !scenario
        .warm_up
        .iter()
        .any(|s| matches!(s.value, Step::Boot(_) | Step::Script(_)))
    {
        return Err(err(
            first.loc,
            "`warm-up` does not boot the target, and its snapshot is of the running machine",
            "start `warm-up` with `- boot: {}`",
        ));
    }
    Ok(())
}

/// Checks the order of steps (`warm-up`, then `steps`): nothing talks to
/// the target before `boot`, and it boots once.
fn check_steps(scenario: &Scenario) -> Result<(), PlanError> {
    check_warm_up(scenario)?;
    let variants: Vec<&str> = scenario.matrix.iter().map(|m| m.name.as_str()).collect();
    let mut booted = false;
    for step in scenario.all_steps() {
        let err = |message: String, hint: &str| PlanError {
            file: scenario.file.clone(),
            loc: step.loc,
            message,
            hint: hint.into(),
        };
        if let Err((message, hint)) = step.value.check_variants(&variants) {
            return Err(err(message, hint));
        }
        match (&step.value, booted) {
            (Step::Boot(_), false) => booted = true,
            (Step::Boot(_), true) => {
                return Err(err(
                    "the target is booted twice".into(),
                    "remove the second `boot` step",
                ));
            }
            (other, false) if other.needs_target() => {
                return Err(err(
                    format!("`{}` before the target is booted", other.key()),
                    "add a `boot: {}` step before it",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
