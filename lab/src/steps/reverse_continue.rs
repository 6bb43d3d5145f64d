//! `reverse-continue:` runs a replayed recording backwards to the last
//! breakpoint or watchpoint hit before where it stands (a write watchpoint:
//! just after the last write to it), or to the recording's start; so does
//! a script's `reverse_continue()`.

use std::time::Duration;

use rhai::{Dynamic, Engine};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::Bridge;

/// Options of `reverse-continue:`.
#[derive(Debug, Clone, Default)]
pub struct ReverseContinue {
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// `reverse-continue:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReverseContinue {
    timeout: Option<Spanned<String>>,
}

impl StepKind for ReverseContinue {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "reverse-continue",
        example: "{timeout: 5s}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("QEMU's record and replay");
    type Raw = RawReverseContinue;

    fn load(raw: RawReverseContinue, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(ReverseContinue {
            timeout: v.optional_duration(raw.timeout.as_ref())?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let wait = self.timeout.unwrap_or(ctx.remaining());
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        Ok(Some(debugger.reverse_continue(wait).await?.detail(&elf)))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("reverse_continue", move |timeout: Dynamic| {
            let timeout = b.timeout("reverse_continue", &timeout)?;
            let step = ReverseContinue {
                timeout: Some(timeout),
            };
            run_for_script(&b, "reverse_continue", step)
        });
    }
}
