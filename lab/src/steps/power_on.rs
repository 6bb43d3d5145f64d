//! `power-on: {}` boots the board again after `power-cut:`, with its
//! `storage:` as the cut left it: a cold start, the firmware runs from its
//! reset vector. A script's `power_on()` is the same operation.

use rhai::Engine;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::{Detail, RunContext, StepFailure, StepKind, ms, run_for_script};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res};

/// `power-on:` (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerOn;

/// `power-on: {}` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPowerOn {}

impl StepKind for PowerOn {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "power-on",
        example: "{}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("power control");
    type Raw = RawPowerOn;

    fn load(_: RawPowerOn, _: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(PowerOn)
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let begun = Instant::now();
        // A debugger session belongs to the QEMU it attached to.
        drop(ctx.debugger.take());
        ctx.target.power_on().await?;
        let mut detail = Detail::new();
        detail.insert("power_on_ms".into(), json!(ms(begun.elapsed())));
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("power_on", move || -> Res<()> {
            run_for_script(&b, "power_on", PowerOn)
        });
    }
}
