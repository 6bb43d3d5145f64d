//! Rhai scenario scripts: a sandboxed engine, the bridge through which a
//! script calls its host, and the checks `lab check` runs on scripts.
//!
//! The engine knows no operation of the lab: [`run`] executes a script
//! against a host `H` whose functions a [`Bindings`] registers (the lab's
//! come from its step kinds, in `crate::steps`); a [`Checker`] compiles a
//! script against the same functions and reports unknown calls. Both report
//! [`ScriptError`]s as `FILE:LINE:COL: message`.

mod api;
mod check;
mod engine;
mod error;
mod host;

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rhai::{AST, Dynamic, Engine};

pub use api::{Bridge, Res};
pub use check::BootCall;
pub use engine::Limits;
pub use error::{Limit, ScriptError, ScriptErrorKind};
pub use host::{HostError, Interrupt};

pub(crate) use api::{
    abort, error, from_json, number, parse_duration, register_duration_fn, to_json, unsigned,
};
pub(crate) use engine::Abort;

use api::Lent;
use engine::{from_eval, from_parse, new_engine};

/// Registers a host's functions on an engine: each forwards its call
/// through the bridge to the host `H`.
pub type Bindings<H> = fn(&mut Engine, &Bridge<H>);

/// Stack of the thread that runs a script: deep enough for the default call
/// depth in debug builds.
const SCRIPT_STACK: usize = 32 << 20;

/// How many operations pass between two looks at the clock.
const DEADLINE_EVERY: u64 = 256;

/// How a script runs: the host's functions, the sandbox's limits, the
/// seed of `random()`, and when it must stop.
pub struct RunOptions<'a, H> {
    /// The host's functions.
    pub bindings: Bindings<H>,
    /// The sandbox's limits.
    pub limits: &'a Limits,
    /// Seeds `random()` and `random_int()`.
    pub seed: u64,
    /// The script stops with a timeout when this passes.
    pub deadline: Instant,
    /// The script stops when this is raised (Ctrl-C).
    pub interrupt: &'a Interrupt,
}

/// Runs the script `source` (read from `file`) against `host` until it
/// ends, the deadline passes or the interrupt is raised. The script runs on
/// a thread of its own, with a stack deep enough for its call depth, and
/// makes its host calls there: the host is lent to it for the run, and the
/// thread is in the caller's Tokio runtime, if any, so that a host call can
/// block on async work.
pub fn run<H: Send + 'static>(
    file: &Path,
    source: &str,
    host: &mut H,
    options: RunOptions<'_, H>,
) -> Result<(), ScriptError> {
    let RunOptions {
        bindings,
        limits,
        seed,
        deadline,
        interrupt,
    } = options;
    let lent = Arc::new(Lent::default());
    let bridge = Bridge::new(Arc::clone(&lent), deadline, interrupt.clone());
    let mut engine = engine_with(limits, bindings, &bridge, seed);
    drop(bridge);
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
    let runtime = tokio::runtime::Handle::try_current().ok();
    let outcome = lent.lend(host, || {
        thread::scope(|scope| {
            let script = thread::Builder::new()
                .name("lab-script".into())
                .stack_size(SCRIPT_STACK)
                .spawn_scoped(scope, move || {
                    let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
                    engine.run_ast(&ast)
                });
            match script {
                Ok(script) => script
                    .join()
                    .map_err(|_| "the script's thread panicked".to_owned()),
                Err(e) => Err(format!("cannot start the script's thread: {e}")),
            }
        })
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

/// The top-level constants of a checked script whose values are literals.
fn literal_constants(ast: &AST) -> Vec<(String, Constant)> {
    ast.iter_literal_variables(true, false)
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
        .collect()
}

/// A sandboxed engine with the engine's own functions and a host's.
fn engine_with<H: Send + 'static>(
    limits: &Limits,
    bindings: Bindings<H>,
    bridge: &Bridge<H>,
    seed: u64,
) -> Engine {
    let mut engine = new_engine(limits);
    api::register_engine_functions(&mut engine, fastrand::Rng::with_seed(seed));
    bindings(&mut engine, bridge);
    engine
}

/// Compiles scripts against a host's functions without running them, for
/// `lab check`: syntax, forbidden statements, unknown functions and
/// argument counts. Make one per host and keep it: making an engine (rhai's
/// packages, the host's functions) and listing its functions take far
/// longer than compiling a script. Made for each check, a file of a
/// thousand `script:` steps took `lab check` seconds.
pub struct Checker {
    /// An engine with the default limits and no host.
    engine: Engine,
    /// The engine's functions.
    functions: check::Functions,
    /// The limits it compiles within.
    limits: Limits,
}

impl Checker {
    /// A checker for scripts of a host whose functions `bindings` registers.
    pub fn new<H: Send + 'static>(bindings: Bindings<H>) -> Self {
        let limits = Limits::default();
        // No host is ever lent: nothing runs.
        let bridge = Bridge::new(Arc::default(), Instant::now(), Interrupt::default());
        let engine = engine_with(&limits, bindings, &bridge, 0);
        let functions = check::Functions::of(&engine);
        Checker {
            engine,
            functions,
            limits,
        }
    }

    /// Compiles `source` (read from `file`) and finds calls to functions
    /// that neither the script nor the host defines; runs nothing.
    pub fn check(&self, file: &Path, source: &str) -> Result<(), ScriptError> {
        self.compile(file, source).map(drop)
    }

    /// Checks `source` and returns its `boot(#{...})` calls that name a
    /// board or an image with a literal.
    pub fn literal_boots(&self, file: &Path, source: &str) -> Result<Vec<BootCall>, ScriptError> {
        Ok(check::literal_boots(&self.compile(file, source)?))
    }

    /// Checks `source` and returns its top-level constants whose values are
    /// literals.
    pub fn constants(
        &self,
        file: &Path,
        source: &str,
    ) -> Result<Vec<(String, Constant)>, ScriptError> {
        Ok(literal_constants(&self.compile(file, source)?))
    }

    /// The functions scripts may call besides rhai's own: the host's and
    /// the engine's (`assert`, `random`), sorted by name.
    pub fn functions(&self) -> Vec<&str> {
        self.functions.registered()
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
