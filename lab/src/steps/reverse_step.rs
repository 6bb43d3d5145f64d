//! `reverse-step:` executes single instructions backwards in a replayed
//! recording; so does a script's `reverse_step()`.

use rhai::{Engine, INT};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res, error};

/// Options of `reverse-step:`.
#[derive(Debug, Clone)]
pub struct ReverseStep {
    /// How many instructions back (at least 1).
    pub count: u32,
}

/// `reverse-step:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReverseStep {
    count: Option<Spanned<i64>>,
}

impl StepKind for ReverseStep {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "reverse-step",
        example: "{count: 1}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("QEMU's record and replay");
    type Raw = RawReverseStep;

    fn load(raw: RawReverseStep, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(ReverseStep {
            count: match raw.count {
                Some(count) => v.in_range("`count`", &count, 1, u32::MAX)?,
                None => 1,
            },
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        Ok(Some(debugger.reverse_step(self.count).await?.detail(&elf)))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("reverse_step", move |count: INT| {
            let count = u32::try_from(count)
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| {
                    error(format!(
                        "reverse_step: the count must be 1 or more, not {count}"
                    ))
                })?;
            reverse_step(&b, count)
        });
        let b = bridge.clone();
        engine.register_fn("reverse_step", move || reverse_step(&b, 1));
    }
}

/// A script's `reverse_step`.
fn reverse_step(bridge: &Bridge<RunContext>, count: u32) -> Res<()> {
    run_for_script(bridge, "reverse_step", ReverseStep { count })
}
