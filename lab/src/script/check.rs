//! Compile-time checks: syntax, forbidden statements, and calls to
//! functions that nothing defines.

use std::collections::HashSet;
use std::path::Path;

use rhai::{AST, ASTNode, Engine, Expr, Position, Stmt};

use super::engine::loc;
use super::error::{ScriptError, ScriptErrorKind};
use crate::scenario::suggest::did_you_mean;

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

/// The first call in `ast` to a function that neither the script, nor the
/// lab, nor rhai's packages define, as an error with a did-you-mean.
pub(crate) fn unknown_calls(file: &Path, engine: &Engine, ast: &AST) -> Result<(), ScriptError> {
    let mut known: HashSet<String> = engine
        .gen_fn_signatures(true)
        .iter()
        .filter_map(|signature| signature.split('(').next())
        .map(|name| name.trim_start_matches("fn ").to_owned())
        .collect();
    known.extend(KEYWORDS.iter().map(|&k| k.to_owned()));
    for function in ast.iter_functions() {
        known.insert(function.name.to_owned());
        // A parameter may hold a function pointer, called as `param(...)`.
        known.extend(function.params.iter().map(|&p| p.to_owned()));
    }
    let mut calls: Vec<(String, Position)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) if call.op_token.is_none() => {
                calls.push((call.name.to_string(), *pos));
            }
            // A variable may hold a function pointer, called as `name(...)`.
            Some(ASTNode::Stmt(Stmt::Var(var, ..))) => {
                known.insert(var.0.name.to_string());
            }
            _ => {}
        }
        true
    });
    let Some((name, pos)) = calls
        .into_iter()
        .find(|(name, _)| is_identifier(name) && !known.contains(name))
    else {
        return Ok(());
    };
    let mut candidates: Vec<&str> = known
        .iter()
        .map(String::as_str)
        .filter(|k| is_identifier(k))
        .collect();
    candidates.sort_unstable();
    let suggestion = did_you_mean(&name, &candidates).map(str::to_owned);
    Err(ScriptError::new(
        file,
        loc(pos),
        ScriptErrorKind::UnknownFunction { name, suggestion },
    ))
}

/// Whether `name` is a plain identifier (not an operator).
fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}
