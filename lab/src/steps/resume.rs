//! `continue:` resumes the target until a breakpoint, a watchpoint or the
//! guest's exit, and may check where it stopped; a script's `continue_to()`
//! returns where it stopped.

use std::time::Duration;

use rhai::{Dynamic, Engine, INT, Map};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind};
use crate::elf::{CodeLocation as ElfLocation, ElfInfo};
use crate::loader::raw::RawScalar;
use crate::loader::{CodeLocation, ScenarioError, StepSyntax, Validator};
use crate::report::Status;
use crate::script::{Bridge, Res};

/// Options of `continue:`.
#[derive(Debug, Clone, Default)]
pub struct Continue {
    /// Per-step deadline.
    pub timeout: Option<Duration>,
    /// When given, the step fails unless the target stops here.
    pub stop_at: Option<CodeLocation>,
}

/// `continue:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawContinue {
    timeout: Option<Spanned<String>>,
    stop_at: Option<Spanned<RawScalar>>,
}

impl StepKind for Continue {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "continue",
        example: "{}",
    };
    type Raw = RawContinue;

    fn load(raw: RawContinue, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(Continue {
            timeout: v.optional_duration(raw.timeout.as_ref())?,
            stop_at: raw.stop_at.map(|at| v.code_location(&at)).transpose()?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let wait = self.timeout.unwrap_or(ctx.remaining());
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        let stopped = debugger.resume(wait).await?;
        let detail = stopped.detail(&elf);
        if let Some(want) = &self.stop_at {
            let at = stopped.pc.map(|pc| (pc, elf.symbolize(pc)));
            if !stopped_at(&elf, want, at.as_ref()) {
                return Err(StepFailure::new(
                    Status::Failed,
                    format!(
                        "expected a stop at {}, but {}",
                        describe(want),
                        describe_stop(&detail)
                    ),
                ));
            }
        }
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("continue_to", move |timeout: Dynamic| {
            let timeout = b.timeout("continue_to", &timeout)?;
            continue_to(&b, timeout)
        });
        let b = bridge.clone();
        engine.register_fn("continue_to", move || {
            let timeout = b.until_deadline()?;
            continue_to(&b, timeout)
        });
    }
}

/// A script's `continue_to`: where the target stopped, as a map of
/// `reason`, `function`, `file`, `line` and `pc`.
fn continue_to(bridge: &Bridge<RunContext>, timeout: Duration) -> Res<Map> {
    let step = Continue {
        timeout: Some(timeout),
        stop_at: None,
    };
    let detail = bridge.call("continue_to", move |ctx| {
        ctx.host_call(async |ctx: &mut RunContext| step.run(ctx).await)
    })?;
    let detail = detail.unwrap_or_default();
    let text = |key: &str| {
        detail
            .get(key)
            .and_then(Value::as_str)
            .map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_owned()))
    };
    let number = |key: &str| {
        detail
            .get(key)
            .and_then(Value::as_u64)
            .map_or(Dynamic::UNIT, |n| Dynamic::from_int(n as INT))
    };
    let mut map = Map::new();
    map.insert("reason".into(), text("reason"));
    map.insert("function".into(), text("function"));
    map.insert("file".into(), text("file"));
    map.insert("line".into(), number("line"));
    map.insert(
        "pc".into(),
        Dynamic::from_int(detail.get("pc").and_then(Value::as_u64).unwrap_or_default() as INT),
    );
    Ok(map)
}

/// Whether a stop at `at` (pc and its symbolized location) matches `want`.
fn stopped_at(elf: &ElfInfo, want: &CodeLocation, at: Option<&(u64, Option<ElfLocation>)>) -> bool {
    let Some((pc, loc)) = at else { return false };
    match want {
        CodeLocation::Address(a) => pc == a,
        CodeLocation::Symbol(name) => {
            elf.symbol(name).is_some_and(|s| s.address == *pc)
                || loc.as_ref().and_then(|l| l.function.as_deref()) == Some(name.as_str())
        }
        CodeLocation::Line { file, line } => loc.as_ref().is_some_and(|l| {
            l.line == Some(*line) && l.file.as_deref().is_some_and(|f| path_ends_with(f, file))
        }),
    }
}

/// True when `path`'s trailing components are `suffix`'s.
fn path_ends_with(path: &str, suffix: &str) -> bool {
    std::path::Path::new(path).ends_with(suffix)
}

/// A code location in words.
fn describe(at: &CodeLocation) -> String {
    match at {
        CodeLocation::Symbol(s) => format!("`{s}`"),
        CodeLocation::Address(a) => format!("{a:#x}"),
        CodeLocation::Line { file, line } => format!("{file}:{line}"),
    }
}

/// A stop in words, from its detail.
fn describe_stop(detail: &Detail) -> String {
    let reason = detail
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("stopped");
    match detail.get("location").and_then(Value::as_str) {
        Some(loc) => format!("it stopped ({reason}) at {loc}"),
        None => match detail.get("code") {
            Some(code) => format!("the target exited with code {code}"),
            None => format!("it stopped ({reason})"),
        },
    }
}
