//! `detach:` disconnects the debugger and lets the target run on; so does
//! a script's `detach()`.

use std::time::Duration;

use rhai::Engine;
use tokio::time::Instant;

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
        running_again(ctx).await;
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("detach", move || run_for_script(&b, "detach", Detach));
    }
}

/// How long QEMU may take to resume a machine the debugger let go.
const RUNNING_WITHIN: Duration = Duration::from_secs(5);

/// Waits until QEMU runs the machine again: QEMU pauses it while a debugger
/// is attached and resumes it on the detach, but the bridge answers the
/// client's detach before QEMU's own stub has, so a step right after it (a
/// power cut, guest time) could still find the machine paused. A target
/// that is not emulated, has ended or does not answer has nothing to wait
/// for; after the deadline the next step says what it finds.
async fn running_again(ctx: &mut RunContext) {
    let deadline = Instant::now() + RUNNING_WITHIN;
    while Instant::now() < deadline {
        let Ok(status) = ctx.target.qmp("query-status", None).await else {
            return;
        };
        match status.get("status").and_then(|s| s.as_str()) {
            Some("paused" | "debug") => tokio::time::sleep(Duration::from_millis(2)).await,
            _ => return,
        }
    }
}
