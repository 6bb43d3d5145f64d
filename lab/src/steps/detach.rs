//! `detach:` disconnects the debugger and lets the target run on; so does
//! a script's `detach()`.

use rhai::Engine;

use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::raw::RawNoOptions;
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::Bridge;

/// `detach:`, which takes no options.
#[derive(Debug, Clone, Default)]
pub struct Detach;

impl StepKind for Detach {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "detach",
        example: "{}",
    };
    type Raw = RawNoOptions;

    fn load(_: RawNoOptions, _: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(Detach)
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        ctx.debugger()?.detach().await?;
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("detach", move || run_for_script(&b, "detach", Detach));
    }
}
