//! `attach-debugger:` connects the lab's debugger to the target through
//! its GDB bridge (the target halts); so does a script's
//! `attach_debugger()`. The latency is the metric `attach_ms`.

use std::time::Duration;

use rhai::{Dynamic, Engine};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::debugger::Debugger;
use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res};

/// Options of `attach-debugger:`.
#[derive(Debug, Clone, Default)]
pub struct AttachDebugger {
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// `attach-debugger:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawAttachDebugger {
    timeout: Option<Spanned<String>>,
}

impl StepKind for AttachDebugger {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "attach-debugger",
        example: "{}",
    };
    type Raw = RawAttachDebugger;

    fn load(raw: RawAttachDebugger, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(AttachDebugger {
            timeout: v.optional_duration(raw.timeout.as_ref())?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        if ctx.debugger.is_none() {
            ctx.debugger = Some(Debugger::start(&mut *ctx.target, ctx.elf.clone()).await?);
        }
        let latency = ctx.debugger()?.attach(self.timeout).await?;
        ctx.metrics.insert("attach_ms".into(), latency);
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("attach_debugger", move |timeout: Dynamic| {
            let timeout = b.timeout("attach_debugger", &timeout)?;
            attach(&b, timeout)
        });
        let b = bridge.clone();
        engine.register_fn("attach_debugger", move || {
            let timeout = b.until_deadline()?;
            attach(&b, timeout)
        });
    }
}

/// A script's `attach_debugger`.
fn attach(bridge: &Bridge<RunContext>, timeout: Duration) -> Res<()> {
    let step = AttachDebugger {
        timeout: Some(timeout),
    };
    run_for_script(bridge, "attach_debugger", step)
}
