//! `script:` runs a rhai script against the run's target. The script's
//! functions are the step kinds' own operations (each kind registers them),
//! so a script and a YAML step do the same thing the same way.
//!
//! The script engine is synchronous; it runs in place on the runtime's
//! worker (`block_in_place`) and each host call blocks on the async target.
//! The engine's own deadline (the scenario's) bounds it all, and Ctrl-C
//! stops it at once: a host call that waits gives up, and the script stops
//! at its next operation.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::{Detail, RunContext, StepFailure, StepKind, bindings};
use crate::loader::{ErrorKind, Loc, ScenarioError, StepSyntax, Validator, loc};
use crate::script::{self, Checker, Interrupt, Limits, RunOptions, ScriptError};

/// Options of `script:`: a rhai script, from a file or inline.
#[derive(Debug, Clone)]
pub struct Script {
    /// Where the source came from, for messages: the `.rhai` file, or the
    /// scenario file for an inline script.
    pub file: PathBuf,
    /// The script's source, already checked by [`check_script`].
    pub source: String,
    /// Per-step deadline; the scenario's deadline bounds it too.
    pub timeout: Option<Duration>,
}

/// `script:` as written; exactly one of `file` and `source`, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawScript {
    file: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for Script {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "script",
        example: "{}",
    };
    const NEEDS_TARGET: bool = false;
    type Raw = Spanned<RawScript>;

    /// `script:` with its source read and checked (syntax, unknown
    /// functions, argument counts), so `lab check` catches script errors too.
    fn load(raw: Spanned<RawScript>, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let at = loc(&raw.referenced);
        let options = raw.value;
        let (file, source, source_at) = match (options.file, options.source) {
            (Some(file), None) => {
                let path = v.resolve(&file.value);
                let source = std::fs::read_to_string(&path).map_err(|e| {
                    v.error(
                        loc(&file.referenced),
                        ErrorKind::Other(format!("cannot read script {}: {e}", path.display())),
                    )
                })?;
                (path, source, loc(&file.referenced))
            }
            // Positions in an inline script count from the script's own start.
            (None, Some(source)) => (
                PathBuf::from(format!("{} (inline script)", v.file().display())),
                source.value,
                loc(&source.referenced),
            ),
            _ => {
                return Err(v.error(
                    at,
                    ErrorKind::Other(
                        "`script` takes exactly one of `file` (a .rhai file) and `source` (inline)"
                            .into(),
                    ),
                ));
            }
        };
        if let Err(e) = check_script(&file, &source) {
            return Err(script_error(&file, source_at, &e));
        }
        Ok(Script {
            file,
            source,
            timeout: v.optional_duration(options.timeout.as_ref())?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let deadline = match self.timeout {
            Some(t) => ctx.deadline.min(Instant::now() + t),
            None => ctx.deadline,
        };
        let interrupt = Interrupt::default();
        // The script runs in place on this worker; a task of its own watches
        // for Ctrl-C.
        let watch = {
            let (cancel, interrupt) = (ctx.cancel.clone(), interrupt.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                interrupt.raise();
            })
        };
        let seed = ctx.seed;
        ctx.in_script = true;
        let outcome = tokio::task::block_in_place(|| {
            script::run(
                &self.file,
                &self.source,
                ctx,
                RunOptions {
                    bindings,
                    limits: &Limits::default(),
                    seed,
                    deadline: deadline.into_std(),
                    interrupt: &interrupt,
                },
            )
        });
        watch.abort();
        ctx.in_script = false;
        outcome
            .map(|()| None)
            .map_err(|e| StepFailure::new(e.status(), e.to_string().replace('\n', " ")))
    }
}

/// The checker for the lab's scripts, made on first use: it knows every
/// function the step kinds register.
pub fn script_checker() -> &'static Checker {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    CHECKER.get_or_init(|| Checker::new(bindings))
}

/// Compiles the lab script `source` (read from `file`) and finds calls to
/// functions that neither the script nor the lab defines; runs nothing.
pub fn check_script(file: &Path, source: &str) -> Result<(), ScriptError> {
    script_checker().check(file, source)
}

/// A script checker's error as a scenario error at the script's own
/// position (`at` when it has none).
pub(crate) fn script_error(file: &Path, at: Loc, e: &ScriptError) -> ScenarioError {
    let kind = ErrorKind::Script {
        message: e.kind().to_string(),
        hint: e.kind().hint(),
    };
    ScenarioError::at(file, e.location().unwrap_or(at), kind)
}
