//! `send-serial:` writes text to the serial console; so does a script's
//! `send_serial()`.

use rhai::Engine;

use super::failure::ended_early;
use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::Bridge;

/// `send-serial:` the text to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSerial(pub String);

impl StepKind for SendSerial {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "send-serial",
        example: "\"text\"",
    };
    type Raw = String;

    fn load(raw: String, _: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(SendSerial(raw))
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let target = &mut *ctx.target;
        if let Err(e) = target.console()?.send(self.0.as_bytes()).await {
            return Err(ended_early(target, e).await);
        }
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("send_serial", move |text: &str| {
            run_for_script(&b, "send_serial", SendSerial(text.to_owned()))
        });
    }
}
