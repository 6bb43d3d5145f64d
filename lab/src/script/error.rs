//! Errors from checking and running scripts, rendered as
//! `FILE:LINE:COL: MESSAGE` plus `  hint: ...` when one helps.

use std::fmt;

use crate::source::diagnostic::{HintLine, LocSuffix, OneLine};
use std::path::{Path, PathBuf};

use crate::report::Status;
use crate::source::Loc;

/// A script that could not be compiled, or that stopped with an error, a
/// failed assertion, a limit or its deadline.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {}{}", .file.display(), LocSuffix(*.loc), OneLine(.kind), HintLine(.kind.hint()))]
pub struct ScriptError {
    file: PathBuf,
    loc: Option<Loc>,
    kind: ScriptErrorKind,
}

impl ScriptError {
    /// An error at `loc` (if known) in `file`.
    pub(crate) fn new(file: &Path, loc: Option<Loc>, kind: ScriptErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            loc,
            kind,
        }
    }

    /// The script file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the script the problem is, when rhai knows.
    pub fn location(&self) -> Option<Loc> {
        self.loc
    }

    /// What went wrong.
    pub fn kind(&self) -> &ScriptErrorKind {
        &self.kind
    }

    /// The report status this error gives the run: `failed` for an
    /// assertion, `timeout` for the deadline, `error` for anything else.
    pub fn status(&self) -> Status {
        match self.kind {
            ScriptErrorKind::Assertion(_) => Status::Failed,
            ScriptErrorKind::Deadline => Status::Timeout,
            _ => Status::Error,
        }
    }
}

/// A sandbox limit (see [`super::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_operations`: operations in one run.
    Operations(u64),
    /// `max_call_depth`: nested function calls.
    CallDepth(usize),
    /// `max_expr_depth`: nesting of expressions and blocks.
    ExprDepth(usize),
    /// `max_string_size`: bytes in one string.
    StringSize(usize),
    /// `max_array_size`: items in one array.
    ArraySize(usize),
    /// `max_map_size`: entries in one map.
    MapSize(usize),
}

impl Limit {
    /// The field of [`super::Limits`] that sets this limit.
    pub fn field(self) -> &'static str {
        match self {
            Limit::Operations(_) => "max_operations",
            Limit::CallDepth(_) => "max_call_depth",
            Limit::ExprDepth(_) => "max_expr_depth",
            Limit::StringSize(_) => "max_string_size",
            Limit::ArraySize(_) => "max_array_size",
            Limit::MapSize(_) => "max_map_size",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Operations(n) => write!(f, "the script ran more than {n} operations"),
            Limit::CallDepth(n) => write!(f, "function calls nest deeper than {n} levels"),
            Limit::ExprDepth(n) => write!(f, "an expression or block nests deeper than {n} levels"),
            Limit::StringSize(n) => write!(f, "a string grew beyond {n} bytes"),
            Limit::ArraySize(n) => write!(f, "an array grew beyond {n} items"),
            Limit::MapSize(n) => write!(f, "a map grew beyond {n} entries"),
        }
    }
}

/// What went wrong; `Display` gives the message without file or position.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptErrorKind {
    /// The script does not compile.
    #[error("syntax error: {0}")]
    Compile(String),
    /// `import` was used: scripts cannot load modules.
    #[error("`import` is not allowed in scenario scripts")]
    Import,
    /// `eval` was used: scripts cannot run code built at run time.
    #[error("`eval` is not allowed in scenario scripts")]
    Eval,
    /// A call to a function that neither the script nor the lab defines.
    #[error("unknown function `{name}`")]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The likely intended function.
        suggestion: Option<String>,
    },
    /// A call to a lab or script function with a wrong number of arguments.
    #[error("`{name}` takes {}, not {given}", Counts(.accepted))]
    WrongArguments {
        /// The function's name.
        name: String,
        /// The number of arguments given.
        given: usize,
        /// The numbers of arguments it accepts.
        accepted: Vec<usize>,
    },
    /// The script raised an error (a bad argument, `throw`, a type error).
    #[error("{0}")]
    Runtime(String),
    /// A host call failed; the message is the host's.
    #[error("{function}: {message}")]
    Host {
        /// The script function that made the call.
        function: String,
        /// The host's message.
        message: String,
    },
    /// An `assert` did not hold.
    #[error("assertion failed: {0}")]
    Assertion(String),
    /// A sandbox limit was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(Limit),
    /// The scenario's deadline passed while the script ran.
    #[error("the scenario's deadline passed while the script was running")]
    Deadline,
    /// The run was interrupted (Ctrl-C) while the script ran.
    #[error("interrupted (Ctrl-C)")]
    Interrupted,
    /// The script's thread stopped unexpectedly (a bug in the lab).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScriptErrorKind {
    /// A second line that tells what to do, when there is one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Import => {
                "define the functions you need in the script itself; modules cannot be loaded"
                    .into()
            }
            Self::Eval => "call the code directly instead of building it as a string".into(),
            Self::UnknownFunction {
                suggestion: Some(best),
                ..
            } => format!("did you mean `{best}`?"),
            Self::UnknownFunction { .. } => {
                "define it with `fn NAME(...) { ... }` or use a lab function (see `lab check`)"
                    .into()
            }
            Self::Limit(limit @ Limit::Operations(_)) => format!(
                "make loops wait on the target (wait_serial, sleep) instead of spinning, \
                 or raise `{}`",
                limit.field()
            ),
            Self::Limit(limit @ Limit::CallDepth(_)) => format!(
                "check for unbounded recursion, or raise `{}`",
                limit.field()
            ),
            Self::Limit(limit) => format!("keep the data smaller, or raise `{}`", limit.field()),
            Self::Deadline => {
                "raise the scenario's `timeout:`, or shorten the script's waits and loops".into()
            }
            _ => return None,
        })
    }
}

/// Argument counts as words: `1 argument`, `0 or 1 arguments`.
struct Counts<'a>(&'a [usize]);

impl fmt::Display for Counts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.0.iter().map(usize::to_string).collect();
        let plural = if self.0 == [1] { "" } else { "s" };
        write!(f, "{} argument{plural}", words.join(" or "))
    }
}
