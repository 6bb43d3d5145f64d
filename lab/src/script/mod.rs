//! Rhai scenario scripts: a sandboxed engine, the host API scripts call,
//! and the checks `lab check` runs on them.
//!
//! [`run`] executes a script against a [`ScriptHost`]; [`check`] compiles
//! one and reports unknown function calls. Both report [`ScriptError`]s as
//! `FILE:LINE:COL: message`.

mod api;
mod check;
mod engine;
mod error;
mod host;

use std::path::Path;
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::Instant;

use rhai::{AST, Dynamic, Engine};

pub use check::BootCall;
pub use engine::Limits;
pub use error::{Limit, ScriptError, ScriptErrorKind};
pub use host::{BootOptions, HostError, Interrupt, Match, ScriptHost, Stop};

use api::{Bridge, Job};
use engine::{Abort, from_eval, from_parse, new_engine};

/// Stack of the thread that runs a script: deep enough for the default call
/// depth in debug builds.
const SCRIPT_STACK: usize = 32 << 20;

/// How many operations pass between two looks at the clock.
const DEADLINE_EVERY: u64 = 256;

/// Compiles `source` (read from `file`) and finds calls to functions that
/// neither the script nor the lab defines; runs nothing.
pub fn check(file: &Path, source: &str) -> Result<(), ScriptError> {
    Checker::get().compile(file, source).map(drop)
}

/// Runs the script `source` (read from `file`) against `host`, within
/// `limits`, with `random()` seeded by `seed`, until it ends, `deadline`
/// passes or `interrupt` is raised. Host calls are made on the calling thread; the script itself
/// runs on a thread of its own.
pub fn run(
    file: &Path,
    source: &str,
    host: &mut dyn ScriptHost,
    limits: &Limits,
    seed: u64,
    deadline: Instant,
    interrupt: &Interrupt,
) -> Result<(), ScriptError> {
    let (jobs, requests) = mpsc::channel::<Job>();
    let bridge = Bridge::new(jobs, deadline, interrupt.clone());
    let mut engine = engine_with_api(limits, bridge, seed);
    let interrupt = interrupt.clone();
    engine.on_progress(move |operations| {
        if interrupt.is_raised() {
            return Some(Dynamic::from(Abort::Interrupted));
        }
        (operations % DEADLINE_EVERY == 0 && Instant::now() >= deadline)
            .then(|| Dynamic::from(Abort::Deadline))
    });
    let functions = check::Functions::of(&engine);
    let ast = compile(file, &engine, &functions, source, limits)?;
    let outcome = thread::scope(|scope| {
        let script = thread::Builder::new()
            .name("lab-script".into())
            .stack_size(SCRIPT_STACK)
            .spawn_scoped(scope, move || {
                let result = engine.run_ast(&ast);
                // The engine holds the only senders of jobs: dropping it ends
                // the loop below.
                drop(engine);
                result
            });
        let script = match script {
            Ok(script) => script,
            Err(e) => return Err(format!("cannot start the script's thread: {e}")),
        };
        for job in requests {
            job(&mut *host);
        }
        script
            .join()
            .map_err(|_| "the script's thread panicked".to_owned())
    });
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => from_eval(file, *error, limits).map_or(Ok(()), Err),
        Err(message) => Err(ScriptError::new(
            file,
            None,
            ScriptErrorKind::Internal(message),
        )),
    }
}

/// Checks `source` like [`check`] and returns its `boot(#{...})` calls that
/// name a board or an image with a literal.
pub fn literal_boots(file: &Path, source: &str) -> Result<Vec<BootCall>, ScriptError> {
    let ast = Checker::get().compile(file, source)?;
    Ok(check::literal_boots(&ast))
}

/// A top-level constant of a script, as a `.rhai` scenario declares its
/// settings (`const BOARD = "mps2-an385";`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    /// A string.
    Text(String),
    /// An array of strings.
    Texts(Vec<String>),
    /// Anything else, by its type name.
    Other(String),
}

/// Checks `source` like [`check`] and returns its top-level constants whose
/// values are literals.
pub fn constants(file: &Path, source: &str) -> Result<Vec<(String, Constant)>, ScriptError> {
    let ast = Checker::get().compile(file, source)?;
    Ok(ast
        .iter_literal_variables(true, false)
        .map(|(name, _, value)| {
            let constant = if value.is_string() {
                Constant::Text(value.to_string())
            } else if let Some(items) = value.clone().try_cast::<rhai::Array>().and_then(|items| {
                items
                    .into_iter()
                    .map(|item| item.into_string().ok())
                    .collect::<Option<Vec<_>>>()
            }) {
                Constant::Texts(items)
            } else {
                Constant::Other(value.type_name().to_owned())
            };
            (name.to_owned(), constant)
        })
        .collect())
}

/// A sandboxed engine with the lab's functions registered.
fn engine_with_api(limits: &Limits, bridge: Bridge, seed: u64) -> Engine {
    let mut engine = new_engine(limits);
    api::register(&mut engine, &bridge, fastrand::Rng::with_seed(seed));
    engine
}

/// What [`check`], [`literal_boots`] and [`constants`] compile with, made
/// once: they run nothing, and making an engine (rhai's packages, the lab's
/// functions) and listing its functions take far longer than compiling a
/// script. Made for each check, a file of a thousand `script:` steps took
/// `lab check` seconds.
struct Checker {
    /// An engine with the default limits and no host.
    engine: Engine,
    /// The engine's functions.
    functions: check::Functions,
    /// The limits it compiles within.
    limits: Limits,
}

impl Checker {
    /// The checker, made on first use.
    fn get() -> &'static Checker {
        static CHECKER: OnceLock<Checker> = OnceLock::new();
        CHECKER.get_or_init(|| {
            let limits = Limits::default();
            // No host: the jobs' receiver is dropped at once, and nothing runs.
            let (jobs, _) = mpsc::channel();
            let engine = engine_with_api(
                &limits,
                Bridge::new(jobs, Instant::now(), Interrupt::default()),
                0,
            );
            let functions = check::Functions::of(&engine);
            Checker {
                engine,
                functions,
                limits,
            }
        })
    }

    /// Compiles `source` (read from `file`) and checks its function calls.
    fn compile(&self, file: &Path, source: &str) -> Result<AST, ScriptError> {
        compile(file, &self.engine, &self.functions, source, &self.limits)
    }
}

/// Compiles `source` with `engine`, whose functions are `functions`, and
/// checks its function calls.
fn compile(
    file: &Path,
    engine: &Engine,
    functions: &check::Functions,
    source: &str,
    limits: &Limits,
) -> Result<AST, ScriptError> {
    let ast = engine
        .compile(source)
        .map_err(|e| from_parse(file, &e, limits))?;
    check::unknown_calls(file, functions, &ast)?;
    Ok(ast)
}
