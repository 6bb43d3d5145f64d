//! Compile-time checks: syntax, forbidden statements, and calls to
//! functions that nothing defines.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use rhai::{AST, ASTNode, Engine, Expr, Position, Stmt};

use super::engine::loc;
use super::error::{ScriptError, ScriptErrorKind};
use crate::source::Loc;
use crate::source::suggest::did_you_mean;

/// Names rhai handles itself rather than as registered functions.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// The argument counts a function accepts: `None` when any count may do
/// (rhai's own functions and keywords, variables holding function pointers).
type Arities = Option<BTreeSet<usize>>;

/// The functions an engine defines, with the argument counts of the lab's:
/// listing an engine's signatures takes far longer than checking a script,
/// so it is done once per engine.
#[derive(Debug, Clone)]
pub(crate) struct Functions {
    known: HashMap<String, Arities>,
}

impl Functions {
    /// The functions of `engine` (the lab's and rhai's) and the keywords
    /// rhai handles itself.
    pub(crate) fn of(engine: &Engine) -> Self {
        // The lab's functions (the engine's own namespace) and the script's
        // are checked for their argument counts; rhai's own are not.
        let lab: HashSet<String> = engine
            .gen_fn_signatures(false)
            .iter()
            .map(|signature| signature_name(signature).to_owned())
            .collect();
        let mut known: HashMap<String, Arities> = HashMap::new();
        for signature in engine.gen_fn_signatures(true) {
            let name = signature_name(&signature);
            let entry = known
                .entry(name.to_owned())
                .or_insert_with(|| lab.contains(name).then(BTreeSet::new));
            match (entry.as_mut(), param_count(&signature)) {
                (Some(set), Some(count)) => {
                    set.insert(count);
                }
                (Some(_), None) => *entry = None,
                (None, _) => {}
            }
        }
        known.extend(KEYWORDS.iter().map(|&k| (k.to_owned(), None)));
        Self { known }
    }

    /// The functions the host and the engine register (not rhai's own),
    /// sorted by name.
    pub(crate) fn registered(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .known
            .iter()
            .filter(|(_, arities)| arities.is_some())
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_unstable();
        names
    }
}

/// The first call in `ast` to a function that neither the script, nor the
/// lab, nor rhai's packages define (`functions`), as an error with a
/// did-you-mean; or the first call to a lab or script function with a
/// wrong number of arguments.
pub(crate) fn unknown_calls(
    file: &Path,
    functions: &Functions,
    ast: &AST,
) -> Result<(), ScriptError> {
    let mut known = functions.known.clone();
    for function in ast.iter_functions() {
        let entry = known
            .entry(function.name.to_owned())
            .or_insert_with(|| Some(BTreeSet::new()));
        if let Some(set) = entry {
            set.insert(function.params.len());
        }
        // A parameter may hold a function pointer, called as `param(...)`.
        for &param in &function.params {
            known.insert(param.to_owned(), None);
        }
    }
    let mut calls: Vec<(String, usize, Position)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) if call.op_token.is_none() => {
                calls.push((call.name.to_string(), call.args.len(), *pos));
            }
            // A variable may hold a function pointer, called as `name(...)`.
            Some(ASTNode::Stmt(Stmt::Var(var, ..))) => {
                known.insert(var.0.name.to_string(), None);
            }
            _ => {}
        }
        true
    });
    for (name, count, pos) in calls {
        if !is_identifier(&name) {
            continue;
        }
        let kind = match known.get(&name) {
            None => {
                let mut candidates: Vec<&str> = known
                    .keys()
                    .map(String::as_str)
                    .filter(|k| is_identifier(k))
                    .collect();
                candidates.sort_unstable();
                let suggestion = did_you_mean(&name, &candidates).map(str::to_owned);
                ScriptErrorKind::UnknownFunction { name, suggestion }
            }
            Some(Some(arities)) if !arities.is_empty() && !arities.contains(&count) => {
                ScriptErrorKind::WrongArguments {
                    name,
                    given: count,
                    accepted: arities.iter().copied().collect(),
                }
            }
            Some(_) => continue,
        };
        return Err(ScriptError::new(file, loc(pos), kind));
    }
    Ok(())
}

/// The function name of a rhai signature (`name(a: T, ...) -> R`).
fn signature_name(signature: &str) -> &str {
    let name = signature.split('(').next().unwrap_or(signature);
    name.trim_start_matches("fn ").trim()
}

/// The number of parameters in a rhai signature.
fn param_count(signature: &str) -> Option<usize> {
    let params = signature.split_once('(')?.1;
    let mut depth = 0usize;
    let mut count = 0;
    let mut empty = true;
    for c in params.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' if depth == 0 => return Some(if empty { 0 } else { count + 1 }),
            ')' | '>' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => count += 1,
            c if !c.is_whitespace() => empty = false,
            _ => {}
        }
    }
    None
}

/// Whether `name` is a plain identifier (not an operator).
fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A `boot(#{...})` call that names another board or image with a string
/// literal, so the run can check and build it beforehand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootCall {
    /// The `board` key's value.
    pub board: Option<String>,
    /// The `image` key's value.
    pub image: Option<String>,
    /// Where the call is.
    pub loc: Option<Loc>,
}

/// The `boot(#{...})` calls in `ast` whose `board` or `image` is a literal.
pub(crate) fn literal_boots(ast: &AST) -> Vec<BootCall> {
    let mut boots = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(
            ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
        ) = path.last()
            && call.name == "boot"
            && let [options] = call.args.as_slice()
        {
            // rhai folds a map of constants into one constant value.
            let literal = |key: &str| match options {
                Expr::Map(map, _) => map.0.iter().find_map(|(name, value)| match value {
                    Expr::StringConstant(text, _) if name.name == key => Some(text.to_string()),
                    _ => None,
                }),
                Expr::DynamicConstant(value, _) => value
                    .read_lock::<rhai::Map>()
                    .and_then(|map| map.get(key)?.clone().into_string().ok()),
                _ => None,
            };
            let (board, image) = (literal("board"), literal("image"));
            if board.is_some() || image.is_some() {
                boots.push(BootCall {
                    board,
                    image,
                    loc: loc(*pos),
                });
            }
        }
        true
    });
    boots
}
