//! The `lab` command line: parses arguments, calls the library, maps
//! outcomes to exit codes (0 all passed, 1 any failed, 2 bad usage).

mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use lab::report::{self, Checkpoint, Report};
use lab::runner::{self, DebugEvent, RunEvent, ServeEnd};
use lab::scenario::{self, Scenario, TargetChoice};
use lab::workspace::Workspace;

/// An emulation lab for IoT firmware.
#[derive(Debug, Parser)]
#[command(
    name = "lab",
    about,
    disable_version_flag = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Print the lab's version and the QEMU it runs.
    #[arg(short = 'V', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files or folders.
    Run(RunArgs),
    /// Validate scenarios without running anything.
    Check {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List boards, images and scenarios known to the lab.
    List,
    /// Boot a scenario's target halted and serve the GDB bridge until
    /// Ctrl-C; or replay a recording under it, backwards too (--replay).
    Debug {
        /// The scenario file.
        #[arg(required_unless_present = "replay")]
        path: Option<PathBuf>,
        /// Replay RECORDING (a folder `lab run --record` kept) instead of
        /// booting a scenario: gdb can step and continue backwards.
        #[arg(long, value_name = "RECORDING", conflicts_with_all = ["path", "variant"])]
        replay: Option<PathBuf>,
        /// The bridge's port on 127.0.0.1 (default: a free port).
        #[arg(long, value_name = "N", default_value_t = 0)]
        gdb_port: u16,
        /// The matrix variant to boot (default: the first).
        #[arg(long)]
        variant: Option<String>,
    },
    /// Print reports as `lab run` does, without running anything, or render
    /// them as an HTML page with plots or as markdown; or join the reports
    /// of a run's shards (`lab report merge`).
    #[command(args_conflicts_with_subcommands = true)]
    Report {
        #[command(subcommand)]
        command: Option<ReportCommand>,
        /// Reports written by `lab run --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write one self-contained HTML page of the reports, with plots,
        /// to OUT.html.
        #[arg(long, value_name = "OUT.html")]
        html: Option<PathBuf>,
        /// Print the reports as markdown (for a pull request comment).
        #[arg(long)]
        markdown: bool,
    },
    /// Compare two reports: medians, change and significance per scenario,
    /// variant and metric; exit 1 when a --fail-on rule trips.
    Compare {
        /// The report to compare against (main's, for a pull request).
        base: PathBuf,
        /// The report of the change.
        new: PathBuf,
        /// Exit 1 when a metric matching METRIC (a glob) moves significantly
        /// past a limit: 'boot_us>+5%' (rises more than 5%),
        /// 'trials_per_s<-10%' (falls more than 10%). Repeatable.
        #[arg(long = "fail-on", value_name = "RULE")]
        fail_on: Vec<lab::report::Threshold>,
        /// Print a markdown table (for a pull request comment).
        #[arg(long)]
        markdown: bool,
    },
    /// Debug probes attached (probe-rs) and the boards they can run.
    Boards,
    /// Print a completion script for SHELL: `lab completions bash >
    /// ~/.local/share/bash-completion/completions/lab`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Guest images.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Run up to N scenarios at once (default: number of cores).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Override every scenario's target.
    #[arg(long, value_enum)]
    target: Option<TargetArg>,
    /// Seed for scripts' random numbers (default: from the clock; the
    /// report records it, so a run can be repeated).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Boot every run cold: ignore the warm-up snapshots (`warm-up:`).
    #[arg(long)]
    cold: bool,
    /// Run each scenario N times, whatever its `runs:` says.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    runs: Option<u32>,
    /// Run only the jobs whose `scenario[variant]` contains PATTERN
    /// (repeatable: any of them).
    #[arg(short = 'k', value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Run only the jobs on board B.
    #[arg(long, value_name = "B")]
    board: Option<String>,
    /// Run everything selected N times over, to hunt flaky results.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Run the K-th of N stable, disjoint parts of the jobs (for CI
    /// machines that share a suite).
    #[arg(long, value_name = "K/N")]
    shard: Option<runner::Shard>,
    /// Start no job after one has not passed; the jobs running then finish.
    #[arg(long)]
    fail_fast: bool,
    /// List the jobs that would run, without building or running anything.
    #[arg(long)]
    list: bool,
    /// Record every run (`--record`), or keep only the recordings of runs
    /// that did not pass (`--record=failed`), beside the --json report (in
    /// FILE's stem + `.recordings/`) or under build/recordings/.
    #[arg(long, value_name = "WHEN", value_enum, num_args = 0..=1, require_equals = true,
          default_missing_value = "always")]
    record: Option<RecordArg>,
    /// Replay RECORDING in every job instead of booting afresh, so that
    /// debugger steps (reverse-step, reverse-continue) run on the recorded run.
    #[arg(long, value_name = "RECORDING", conflicts_with = "record")]
    replay: Option<PathBuf>,
}

/// `lab run --record[=WHEN]`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RecordArg {
    /// Every run.
    Always,
    /// Only runs that did not pass.
    Failed,
}

impl From<RecordArg> for scenario::RecordMode {
    fn from(r: RecordArg) -> Self {
        match r {
            RecordArg::Always => scenario::RecordMode::Always,
            RecordArg::Failed => scenario::RecordMode::Failed,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Join the reports of one run's shards (`lab run --shard K/N`) into
    /// the report of the whole run.
    Merge {
        /// The shards' reports.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Build guest images (cached by the hash of their inputs).
    Build {
        /// Images to build (default: all).
        names: Vec<String>,
        /// Build for this board only (default: every board of the image's architecture).
        #[arg(long)]
        board: Option<String>,
    },
    /// Print the key to cache `build/` under in CI: a hash of every
    /// image's inputs for every board it builds for.
    Key,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetArg {
    Qemu,
    Hardware,
    Auto,
}

impl From<TargetArg> for TargetChoice {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Qemu => TargetChoice::Qemu,
            TargetArg::Hardware => TargetChoice::Hardware,
            TargetArg::Auto => TargetChoice::Auto,
        }
    }
}

/// How `lab` ends.
enum Outcome {
    /// Everything passed.
    Passed,
    /// Something failed, timed out or broke.
    Failed,
    /// Bad usage or an invalid scenario.
    Usage,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAB_LOG")
                .unwrap_or_else(|_| "warn,probe_rs=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if cli.version {
        return match print_stdout(&version()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let Some(command) = cli.command else {
        // Only a flag without a command gets here (none does today).
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::from(2);
    };
    let outcome = match command {
        Command::Run(args) => run(args),
        Command::Check { paths } => check(&paths),
        Command::List => list(),
        Command::Boards => boards(),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "lab",
                &mut script,
            );
            print_stdout(&String::from_utf8_lossy(&script)).map(|()| Outcome::Passed)
        }
        Command::Report {
            command,
            files,
            html,
            markdown,
        } => match command {
            Some(ReportCommand::Merge { files, output }) => merge_reports(&files, &output),
            None => show_reports(&files, html.as_deref(), markdown),
        },
        Command::Compare {
            base,
            new,
            fail_on,
            markdown,
        } => compare(&base, &new, &fail_on, markdown),
        Command::Debug {
            path,
            replay,
            gdb_port,
            variant,
        } => match (replay, path) {
            (Some(recording), _) => debug_replay(&recording, gdb_port),
            (None, Some(path)) => debug(&path, gdb_port, variant.as_deref()),
            // clap requires one of them.
            (None, None) => Ok(Outcome::Usage),
        },
        Command::Images {
            command: ImagesCommand::Build { names, board },
        } => build_images(&names, board.as_deref()),
        Command::Images {
            command: ImagesCommand::Key,
        } => images_key(),
    };
    match outcome {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Usage) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e
                .downcast_ref::<lab::Error>()
                .is_some_and(lab::Error::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Loads every scenario under `paths`, printing each invalid one.
fn load_scenarios(paths: &[PathBuf]) -> anyhow::Result<Result<Vec<Scenario>, usize>> {
    let files = scenario::discover(paths).map_err(lab::Error::from)?;
    let mut scenarios = Vec::new();
    let mut invalid = 0;
    for file in &files {
        match scenario::load(file) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                invalid += 1;
            }
        }
    }
    Ok(if invalid == 0 {
        Ok(scenarios)
    } else {
        Err(invalid)
    })
}

fn workspace() -> anyhow::Result<Workspace> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    Ok(Workspace::discover(&cwd).map_err(lab::Error::from)?)
}

fn check(paths: &[PathBuf]) -> anyhow::Result<Outcome> {
    let scenarios = match load_scenarios(paths)? {
        Ok(s) => s,
        Err(_) => return Ok(Outcome::Usage),
    };
    let ws = workspace()?;
    if let Err(e) = runner::plan(&scenarios, &ws, None) {
        eprintln!("error: {e}");
        return Ok(Outcome::Usage);
    }
    for s in &scenarios {
        println!("ok: {} ({})", s.file.display(), s.name);
    }
    Ok(Outcome::Passed)
}

fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let started_at = jiff::Timestamp::now();
    // What a killed lab left behind goes, beside the work below; so does the
    // making of the async runtime and of the thread that starts QEMU, so
    // that QEMU starts as soon as the first job is planned.
    lab::scratch::sweep_in_background();
    let runtime = std::thread::spawn(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    });
    lab::child::start_spawner().context("cannot start the thread that starts QEMU")?;
    let seed = args
        .seed
        .unwrap_or_else(|| started_at.as_nanosecond().unsigned_abs() as u64);
    let mut scenarios = match load_scenarios(&args.paths)? {
        Ok(s) => s,
        Err(_) => return Ok(Outcome::Usage),
    };
    if let Some(runs) = args.runs {
        for scenario in &mut scenarios {
            scenario.runs = runs;
        }
    }
    let ws = workspace()?;
    let plan = match runner::plan(&scenarios, &ws, args.target.map(Into::into)) {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let selection = runner::Selection {
        patterns: args.patterns.clone(),
        board: args.board.clone(),
        repeat: args.repeat,
        shard: args.shard,
    };
    let mut jobs = match selection.apply(plan) {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let (record, replay) = (args.record.map(Into::into), args.replay.as_deref());
    if let Err(e) = runner::apply_flags(&mut jobs, record, replay, args.json.as_deref(), &ws) {
        eprintln!("error: {e}");
        return Ok(Outcome::Usage);
    }
    if args.list {
        print_stdout(&runner::render_list(&jobs))?;
        return Ok(Outcome::Passed);
    }
    let parallel = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Ctrl-C is caught from here on: during image builds it stops the run
    // before any job starts, and every job still gets its result.
    let runtime = runtime
        .join()
        .map_err(|_| anyhow::anyhow!("the async runtime panicked while starting"))?
        .context("cannot start the async runtime")?;
    let cancel = CancellationToken::new();
    runtime.spawn(cancel_on_ctrl_c(cancel.clone()));

    // The report files exist from the start and follow each finished job,
    // so that even a lab killed outright leaves a valid report. A path that
    // cannot be written is reported once, when the run ends.
    let tables = runner::declared_tables(&jobs);
    let wants_report = args.json.is_some() || args.junit.is_some();
    let checkpoint = wants_report
        .then(|| {
            let placeholders = Report {
                lab_version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at: started_at.to_string(),
                seed,
                results: jobs.iter().map(runner::unfinished).collect(),
                summaries: Vec::new(),
                tables: tables.clone(),
            };
            Checkpoint::start(placeholders, args.json.clone(), args.junit.clone())
                .inspect_err(|e| tracing::debug!("no report checkpoints: {e}"))
                .ok()
        })
        .flatten();

    let progress = Arc::new(progress::Progress::new(jobs.len()));
    let images = {
        let progress = Arc::clone(&progress);
        runner::build_images(&jobs, &ws, &move |e| progress.event(&e))
    };
    let results = runtime.block_on(async {
        let on_event: Arc<dyn Fn(RunEvent) + Send + Sync> = {
            let progress = Arc::clone(&progress);
            Arc::new(move |e| {
                if let (RunEvent::Finished { index, result }, Some(checkpoint)) = (&e, &checkpoint)
                    && let Err(error) = checkpoint.record(*index, (**result).clone())
                {
                    tracing::debug!("report checkpoint: {error}");
                }
                progress.event(&e);
            })
        };
        let settings = runner::RunSettings {
            parallel,
            seed,
            cold: args.cold,
            fail_fast: args.fail_fast,
        };
        runner::run_jobs(jobs, Arc::new(ws), images, settings, cancel, on_event).await
    });
    progress.finish();

    let summaries = report::summarize(&results);
    let report = Report {
        lab_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: started_at.to_string(),
        seed,
        results,
        summaries,
        tables,
    };
    // The report files first: they must exist whatever happens to stdout.
    let unwritten = write_reports(&report, args.json.as_deref(), args.junit.as_deref());
    let printed = print_stdout(&report::render_comparison(&report))
        .and_then(|()| print_stdout(&report::render_table(&report, progress::terminal_width())));
    // After the results, so that the last line says what was lost.
    for (flag, e) in &unwritten {
        eprintln!(
            "error: {e}; the results above are not saved: give {flag} a file in a folder you \
             can write to and run again"
        );
    }
    printed?;
    // A report that was asked for and is missing fails the run, even when
    // every run passed: CI must not take the missing file for a pass.
    Ok(if report.all_passed() && unwritten.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// Cancels `cancel` on the first Ctrl-C (SIGINT), and on SIGTERM or SIGHUP,
/// which CI runners and closing terminals send: the run stops as it does on
/// Ctrl-C, and the report is still written.
async fn cancel_on_ctrl_c(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
        return;
    };
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hangup.recv() => {}
    }
    cancel.cancel();
}

/// Writes the requested report files, each independently of the other, and
/// returns the ones that could not be written with their option's name.
fn write_reports(
    report: &Report,
    json: Option<&Path>,
    junit: Option<&Path>,
) -> Vec<(&'static str, report::ReportError)> {
    let json = json.and_then(|path| report::write_json(report, path).err());
    let junit = junit.and_then(|path| report::write_junit(report, path).err());
    [("--json", json), ("--junit", junit)]
        .into_iter()
        .filter_map(|(flag, e)| Some((flag, e?)))
        .collect()
}

fn debug(path: &Path, port: u16, variant: Option<&str>) -> anyhow::Result<Outcome> {
    let scenarios = match load_scenarios(&[path.to_owned()])? {
        Ok(s) => s,
        Err(_) => return Ok(Outcome::Usage),
    };
    let ws = workspace()?;
    let jobs = match runner::plan(&scenarios, &ws, Some(TargetChoice::Auto)) {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let Some(job) = jobs
        .into_iter()
        .find(|j| variant.is_none_or(|v| j.variant.as_deref() == Some(v)))
    else {
        eprintln!(
            "error: {} has no variant `{}`",
            path.display(),
            variant.unwrap_or_default()
        );
        return Ok(Outcome::Usage);
    };
    let images = runner::build_images(std::slice::from_ref(&job), &ws, &|e| {
        if let RunEvent::ImageReady {
            outcome: Err(e),
            label,
        } = e
        {
            eprintln!("error: image {label}: {e}");
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let name = job.label();
    let board = job.board.name.clone();
    let end = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(cancel_on_ctrl_c(cancel.clone()));
        runner::serve_debugger(&job, &images, port, cancel, |event| {
            show_debug_event(&name, &board, event);
        })
        .await
    });
    Ok(debug_outcome(end, "target"))
}

/// Shows what a debug session reports: the bridge's endpoint and the gdb
/// line once it is ready, then the target's serial output as it comes.
fn show_debug_event(name: &str, board: &str, event: DebugEvent) {
    match event {
        DebugEvent::Ready(endpoint) => print_endpoint(name, board, &endpoint),
        DebugEvent::Serial(bytes) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&bytes);
            let _ = out.flush();
        }
    }
}

/// Says how a debug session of `what` (the target, the replay) ended.
fn debug_outcome(end: Result<ServeEnd, String>, what: &str) -> Outcome {
    match end {
        Ok(ServeEnd::Stopped) => {
            eprintln!("stopped; the {what} is shut down");
            Outcome::Passed
        }
        Ok(ServeEnd::Exited(exit)) => {
            eprintln!("the {what} ended: {exit:?}");
            Outcome::Passed
        }
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Failed
        }
    }
}

/// `lab debug --replay RECORDING`: replays a recording halted at its
/// start behind the GDB bridge until Ctrl-C or the replay's end.
fn debug_replay(recording: &Path, port: u16) -> anyhow::Result<Outcome> {
    let manifest = match runner::load_recording(recording) {
        Ok(manifest) => manifest,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let ws = workspace()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let case = lab::report::case(&manifest.scenario, manifest.variant.as_deref());
    let name = format!(
        "replay of {case}#{} ({})",
        manifest.run,
        manifest.status.as_str()
    );
    let end = runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(cancel_on_ctrl_c(cancel.clone()));
        runner::serve_replay(recording, &ws, port, cancel, |event| {
            show_debug_event(&name, &manifest.board, event);
        })
        .await
    });
    Ok(debug_outcome(end, "replay"))
}

/// Tells the user how to attach: a gdb command line and a VS Code
/// cortex-debug launch configuration.
fn print_endpoint(name: &str, board: &str, endpoint: &runner::DebugEndpoint) {
    let addr = endpoint.addr;
    let elf = endpoint.elf.as_ref().map(|p| p.display().to_string());
    let mut text = format!("{name} on {board}: halted at reset; GDB bridge on {addr}\n\n");
    match &elf {
        Some(elf) => text.push_str(&format!(
            "  gdb-multiarch {elf} -ex 'target remote {addr}'\n\n"
        )),
        // A kernel image has no symbols to hand gdb; the target description
        // still tells it the architecture.
        None => text.push_str(&format!("  gdb-multiarch -ex 'target remote {addr}'\n\n")),
    }
    let mut launch = serde_json::json!({
        "name": format!("lab: {name}"),
        "type": "cortex-debug",
        "request": "attach",
        "servertype": "external",
        "gdbTarget": addr.to_string(),
        "gdbPath": "gdb-multiarch",
        "cwd": "${workspaceFolder}",
    });
    if let Some(elf) = elf {
        launch["executable"] = serde_json::Value::String(elf);
    }
    text.push_str("VS Code (cortex-debug), in .vscode/launch.json \"configurations\":\n");
    text.push_str(&serde_json::to_string_pretty(&launch).unwrap_or_default());
    text.push_str("\n\nSerial output follows. Ctrl-C stops the target.\n");
    let _ = print_stdout(&text);
}

fn list() -> anyhow::Result<Outcome> {
    use std::fmt::Write as _;
    let ws = workspace()?;
    let mut out = match &ws.root {
        Some(root) => format!("workspace: {}\n", root.display()),
        None => "workspace: none (the built-in boards; firmware as `image: {elf: FILE}`)\n".into(),
    };
    out.push_str("boards:\n");
    for b in ws.boards.all().map_err(lab::Error::from)? {
        let _ = writeln!(out, "  {:<14} {} ({})", b.name, b.description, b.origin);
    }
    out.push_str("images:\n");
    for i in ws.images.all().map_err(lab::Error::from)? {
        let _ = writeln!(out, "  {:<22} {}", i.name, i.description);
    }
    let Some(root) = &ws.root else {
        print_stdout(&out)?;
        return Ok(Outcome::Passed);
    };
    out.push_str("scenarios:\n");
    let files = scenario::discover(&[root.join("scenarios")]).unwrap_or_default();
    for file in files {
        let shown = file.strip_prefix(root).unwrap_or(&file);
        let _ = match scenario::load(&file) {
            Ok(s) => writeln!(out, "  {:<32} {}", shown.display(), s.name),
            Err(_) => writeln!(out, "  {:<32} (invalid: see `lab check`)", shown.display()),
        };
    }
    print_stdout(&out)?;
    Ok(Outcome::Passed)
}

fn boards() -> anyhow::Result<Outcome> {
    use lab::backend::probe;
    use std::fmt::Write as _;
    let ws = workspace()?;
    let mut out = String::new();
    if !probe::HARDWARE_SUPPORT {
        out.push_str("this lab was built without hardware support (cargo feature `hardware`)\n");
    }
    let lister = probe::system_lister();
    let all_boards = ws.boards.all().map_err(lab::Error::from)?;
    let survey = probe::survey(lister.as_ref(), all_boards.iter().copied());
    if survey.is_empty() {
        out.push_str(
            "probes: none found (looked for probe-rs debug probes on USB: ST-Link, J-Link, \
             CMSIS-DAP v2, FTDI, ESP USB-JTAG, WCH-Link, Black Magic, ...)\n",
        );
    } else {
        out.push_str("probes:\n");
    }
    for (info, runs) in &survey {
        let _ = writeln!(
            out,
            "  {:<24} serial {:<26} selector {}",
            info.identifier,
            info.serial.as_deref().unwrap_or("-"),
            info.selector
        );
        let _ = match runs.is_empty() {
            true => writeln!(out, "    runs: no board of this workspace"),
            false => writeln!(out, "    runs: {}", runs.join(", ")),
        };
    }
    out.push_str("boards with a hardware profile:\n");
    let rows: Vec<_> = all_boards
        .iter()
        .filter_map(|b| Some((b, b.hardware.as_ref()?)))
        .map(|(b, hw)| (b, hw, hw.console.describe()))
        .collect();
    let width = rows.iter().map(|(_, _, c)| c.len()).max().unwrap_or(0);
    for (b, hw, console) in rows {
        let _ = writeln!(
            out,
            "  {:<16} chip {:<16} console {console:<width$}  {}",
            b.name,
            hw.chip,
            if b.emulated() {
                "also in QEMU"
            } else {
                "hardware only"
            }
        );
    }
    print_stdout(&out)?;
    Ok(Outcome::Passed)
}

/// Writes `text` to stdout; a reader that went away (`lab list | head`)
/// is not an error.
/// `lab --version`: the lab's version, then each QEMU its board profiles
/// name (the workspace's, or the lab's two when there is none), found on
/// PATH, with the version it reports, or what to install.
fn version() -> String {
    let mut out = format!("lab {}\n", env!("CARGO_PKG_VERSION"));
    let mut tools: Vec<(String, String)> = match workspace() {
        Ok(ws) => ws
            .boards
            .all()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| b.qemu.as_ref())
            .map(|q| (q.binary.clone(), q.package.clone()))
            .collect(),
        Err(_) => Vec::new(),
    };
    if tools.is_empty() {
        tools = ["qemu-system-arm", "qemu-system-aarch64"]
            .map(|b| (b.to_owned(), "qemu-system-arm".to_owned()))
            .to_vec();
    }
    tools.sort();
    tools.dedup();
    for (binary, package) in tools {
        let line = match lab::deps::HostTool::new(&binary, &package).locate() {
            Ok(path) => match lab::deps::version_line(&path) {
                Ok(version) => format!("{} ({version})", path.display()),
                Err(e) => format!("{}: {e}", path.display()),
            },
            Err(missing) => missing.to_string(),
        };
        out.push_str(&format!("{binary}: {line}\n"));
    }
    out
}

/// Reads every report in `files`, or says on stderr which one is not.
fn read_reports(files: &[PathBuf]) -> Result<Vec<(String, Report)>, ()> {
    files
        .iter()
        .map(|file| {
            report::read_json(file)
                .map(|r| (file.display().to_string(), r))
                .map_err(|e| eprintln!("error: {e}"))
        })
        .collect()
}

/// Prints `files`' reports as tables, or as markdown, and writes them as
/// an HTML page to `html`; exits 1 when a report holds a run that did not
/// pass.
fn show_reports(files: &[PathBuf], html: Option<&Path>, markdown: bool) -> anyhow::Result<Outcome> {
    let Ok(reports) = read_reports(files) else {
        return Ok(Outcome::Usage);
    };
    if let Some(path) = html {
        report::write_html(&reports, path)?;
        eprintln!("wrote the HTML report to {}", path.display());
    }
    if markdown {
        print_stdout(&report::render_markdown(&reports))?;
    } else if html.is_none() {
        let width = progress::terminal_width();
        let many = reports.len() > 1;
        for (file, report) in &reports {
            if many {
                print_stdout(&format!("{file}\n"))?;
            }
            print_stdout(&report::render_comparison(report))?;
            print_stdout(&report::render_table(report, width))?;
        }
    }
    Ok(if reports.iter().all(|(_, r)| r.all_passed()) {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn merge_reports(files: &[PathBuf], output: &Path) -> anyhow::Result<Outcome> {
    let Ok(reports) = read_reports(files) else {
        return Ok(Outcome::Usage);
    };
    let merged = match report::merge(reports) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    report::write_json(&merged, output)?;
    println!(
        "merged {} results of {} reports into {}",
        merged.results.len(),
        files.len(),
        output.display()
    );
    Ok(Outcome::Passed)
}

fn compare(
    base: &Path,
    new: &Path,
    rules: &[lab::report::Threshold],
    markdown: bool,
) -> anyhow::Result<Outcome> {
    let (base, new) = match (report::read_json(base), report::read_json(new)) {
        (Ok(base), Ok(new)) => (base, new),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let changes = report::compare(&base, &new);
    print_stdout(&report::render_changes(&changes, markdown))?;
    let mut tripped = 0;
    for rule in rules {
        for change in changes.iter().filter(|c| rule.trips(c)) {
            tripped += 1;
            let percent = change
                .percent()
                .map_or_else(|| "from 0".to_owned(), |p| format!("{p:+.1}%"));
            eprintln!(
                "regression: {} of {} changed {percent} (rule {rule})",
                change.metric, change.case
            );
        }
    }
    Ok(if tripped == 0 {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn images_key() -> anyhow::Result<Outcome> {
    let key = workspace()?.images_key().map_err(lab::Error::from)?;
    print_stdout(&format!("{key}\n"))?;
    Ok(Outcome::Passed)
}

fn build_images(names: &[String], board: Option<&str>) -> anyhow::Result<Outcome> {
    let ws = workspace()?;
    let images: Vec<_> = if names.is_empty() {
        ws.images.all().map_err(lab::Error::from)?
    } else {
        names
            .iter()
            .map(|n| {
                ws.images
                    .get(n)
                    .map_err(lab::Error::from)?
                    .with_context(|| format!("unknown image `{n}`; see `lab list`"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    if let Some(b) = board {
        ws.boards
            .get(b)
            .map_err(lab::Error::from)?
            .with_context(|| format!("unknown board `{b}`; see `lab list`"))?;
    }
    let mut failed = 0;
    for image in images {
        for b in ws
            .boards
            .all()
            .map_err(lab::Error::from)?
            .into_iter()
            .filter(|b| b.arch == image.arch && board.is_none_or(|want| want == b.name))
        {
            match ws.builder.build(image, b) {
                Ok(out) => println!(
                    "{:<6} {}@{} -> {} ({:.1}s{})",
                    if out.cached { "cached" } else { "built" },
                    image.name,
                    b.name,
                    out.files.primary().display(),
                    out.duration.as_secs_f64(),
                    out.damaged
                        .map(|why| format!("; the cached build was unusable: {why}"))
                        .unwrap_or_default()
                ),
                // Building every image for every board of its architecture
                // skips the pairs that cannot be: asked for by name, they fail.
                Err(e @ lab::image::ImageError::Unsupported { .. }) if board.is_none() => {
                    println!("skip   {e}");
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed += 1;
                }
            }
        }
    }
    Ok(if failed == 0 {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
