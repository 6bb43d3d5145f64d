//! The rhai engine: the pure standard packages, the sandbox limits, and the
//! translation of rhai's errors into [`ScriptError`]s.

use std::path::Path;

use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, EvalAltResult, LexError, ParseError, ParseErrorType, Position};

use super::error::{Limit, ScriptError, ScriptErrorKind};
use crate::source::Loc;

/// The sandbox's limits. A limit of 0 turns that limit off (as in rhai).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Operations (expressions, statements, calls) in one run; default 10,000,000.
    pub max_operations: u64,
    /// Nesting of function calls; default 64.
    pub max_call_depth: usize,
    /// Nesting of expressions and blocks, checked when the script compiles;
    /// default 64 (32 inside functions).
    pub max_expr_depth: usize,
    /// Bytes in one string; default 1 MiB.
    pub max_string_size: usize,
    /// Items in one array; default 100,000.
    pub max_array_size: usize,
    /// Entries in one map; default 10,000. rhai 1.27 does not check a map
    /// that grows by `map[new_key] = value`; `max_operations` bounds that.
    pub max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 10_000_000,
            max_call_depth: 64,
            max_expr_depth: 64,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
        }
    }
}

/// Why the script was stopped from inside: carried by rhai's uncatchable
/// "terminated" error, so that `try`/`catch` in the script cannot swallow it.
#[derive(Debug, Clone)]
pub(crate) enum Abort {
    /// The scenario's deadline passed.
    Deadline,
    /// The host interrupted the script (Ctrl-C).
    Interrupted,
    /// An `assert` did not hold; the message.
    Assertion(String),
}

/// A failed host call, thrown as a catchable error value (`HostError` in
/// scripts, with a `message` property).
#[derive(Debug, Clone)]
pub(crate) struct HostFailure {
    /// The script function that made the call.
    pub(crate) function: &'static str,
    /// The host's message.
    pub(crate) message: String,
}

/// A sandboxed engine: no modules, no `eval`, no printing, no files, no
/// clock; only the pure standard packages and the limits.
pub(crate) fn new_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    // `no_time` is on, so the standard package has no clock; `Engine::new_raw`
    // has no module resolver and discards `print` and `debug`.
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_depth)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth / 2)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_strict_variables(true)
        .disable_symbol("eval");
    engine
        .register_type_with_name::<HostFailure>("HostError")
        .register_get("message", |e: &mut HostFailure| e.message.clone())
        .register_fn("to_string", |e: &mut HostFailure| e.message.clone())
        .register_fn("to_debug", |e: &mut HostFailure| e.message.clone());
    engine
}

/// A rhai position as a scenario location.
pub(crate) fn loc(pos: Position) -> Option<Loc> {
    let line = u32::try_from(pos.line()?).ok()?;
    let column = pos
        .position()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(1);
    Some(Loc { line, column })
}

/// Translates a compile error.
pub(crate) fn from_parse(file: &Path, error: &ParseError, limits: &Limits) -> ScriptError {
    let ParseError(kind, pos) = error;
    let kind = match kind.as_ref() {
        ParseErrorType::ExprTooDeep => {
            ScriptErrorKind::Limit(Limit::ExprDepth(limits.max_expr_depth))
        }
        ParseErrorType::LiteralTooLarge(what, _) => {
            ScriptErrorKind::Limit(data_limit(what, limits))
        }
        ParseErrorType::Reserved(word) if word == "import" => ScriptErrorKind::Import,
        ParseErrorType::Reserved(word) if word == "eval" => ScriptErrorKind::Eval,
        ParseErrorType::ModuleUndefined(_) => ScriptErrorKind::Import,
        // A disabled keyword is refused by the tokenizer.
        ParseErrorType::BadInput(LexError::ImproperSymbol(word, _)) if word == "eval" => {
            ScriptErrorKind::Eval
        }
        other => ScriptErrorKind::Compile(other.to_string()),
    };
    ScriptError::new(file, loc(*pos), kind)
}

/// Translates a run-time error; `None` when the script ended with `exit()`.
pub(crate) fn from_eval(file: &Path, error: EvalAltResult, limits: &Limits) -> Option<ScriptError> {
    // Errors inside script functions are wrapped once per call level: report
    // the innermost one, where the problem is.
    let mut error = error;
    let mut outer = Position::NONE;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) = error {
        if !pos.is_none() {
            outer = pos;
        }
        error = *inner;
    }
    let pos = match error.position() {
        pos if pos.is_none() => outer,
        pos => pos,
    };
    let kind = match error {
        EvalAltResult::Exit(..) => return None,
        EvalAltResult::ErrorParsing(kind, pos) => {
            return Some(from_parse(file, &ParseError(Box::new(kind), pos), limits));
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            ScriptErrorKind::Limit(Limit::Operations(limits.max_operations))
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            ScriptErrorKind::Limit(Limit::CallDepth(limits.max_call_depth))
        }
        EvalAltResult::ErrorDataTooLarge(ref what, _) => {
            ScriptErrorKind::Limit(data_limit(what, limits))
        }
        EvalAltResult::ErrorTerminated(ref value, _) => match value.clone().try_cast::<Abort>() {
            Some(Abort::Deadline) => ScriptErrorKind::Deadline,
            Some(Abort::Interrupted) => ScriptErrorKind::Interrupted,
            Some(Abort::Assertion(message)) => ScriptErrorKind::Assertion(message),
            None => ScriptErrorKind::Internal(format!("unexpected termination: {value}")),
        },
        EvalAltResult::ErrorRuntime(ref value, _) => runtime(value),
        mut other => {
            other.clear_position();
            ScriptErrorKind::Runtime(other.to_string())
        }
    };
    Some(ScriptError::new(file, loc(pos), kind))
}

/// A thrown value: a failed host call, or the script's own `throw`.
fn runtime(value: &Dynamic) -> ScriptErrorKind {
    match value.clone().try_cast::<HostFailure>() {
        Some(failure) => ScriptErrorKind::Host {
            function: failure.function.to_owned(),
            message: failure.message,
        },
        None => ScriptErrorKind::Runtime(value.to_string()),
    }
}

/// Which data limit rhai's "X too large" names.
fn data_limit(what: &str, limits: &Limits) -> Limit {
    let what = what.to_ascii_lowercase();
    if what.contains("string") {
        Limit::StringSize(limits.max_string_size)
    } else if what.contains("map") {
        Limit::MapSize(limits.max_map_size)
    } else {
        Limit::ArraySize(limits.max_array_size)
    }
}
