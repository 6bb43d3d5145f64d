//! `step:` executes single instructions; so does a script's `step()`.

use rhai::{Engine, INT};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res, error};

/// Options of `step:`.
#[derive(Debug, Clone)]
pub struct StepInstructions {
    /// How many instructions (at least 1).
    pub count: u32,
}

/// `step:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawStepInstructions {
    count: Option<Spanned<i64>>,
}

impl StepKind for StepInstructions {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "step",
        example: "{}",
    };
    type Raw = RawStepInstructions;

    fn load(raw: RawStepInstructions, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(StepInstructions {
            count: match raw.count {
                Some(count) => v.in_range("`count`", &count, 1, u32::MAX)?,
                None => 1,
            },
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        Ok(Some(debugger.step(self.count).await?.detail(&elf)))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("step", move |count: INT| {
            let count = u32::try_from(count)
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| error(format!("step: the count must be 1 or more, not {count}")))?;
            step(&b, count)
        });
        let b = bridge.clone();
        engine.register_fn("step", move || step(&b, 1));
    }
}

/// A script's `step`.
fn step(bridge: &Bridge<RunContext>, count: u32) -> Res<()> {
    run_for_script(bridge, "step", StepInstructions { count })
}
