//! `expect-exit:` waits for the target to exit and checks its code; a
//! script's `expect_exit()` returns the code.

use std::time::Duration;

use rhai::{Dynamic, Engine, INT};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind};
use crate::backend::GuestExit;
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::report::Status;
use crate::script::{Bridge, Res};

/// Options of `expect-exit:`.
#[derive(Debug, Clone, Default)]
pub struct ExpectExit {
    /// The expected exit status; `None` accepts any.
    pub code: Option<i32>,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// `expect-exit:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectExit {
    code: Option<i32>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for ExpectExit {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "expect-exit",
        example: "{}",
    };
    type Raw = RawExpectExit;

    fn load(raw: RawExpectExit, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(ExpectExit {
            code: raw.code,
            timeout: v.optional_duration(raw.timeout.as_ref())?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let got = self.wait(ctx).await?;
        if let Some(want) = self.code.filter(|want| *want != got) {
            return Err(StepFailure::new(
                Status::Failed,
                format!("the target exited with code {got}, expected {want}"),
            ));
        }
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("expect_exit", move |timeout: Dynamic| {
            let timeout = b.timeout("expect_exit", &timeout)?;
            expect_exit(&b, timeout)
        });
        let b = bridge.clone();
        engine.register_fn("expect_exit", move || {
            let timeout = b.until_deadline()?;
            expect_exit(&b, timeout)
        });
    }
}

impl ExpectExit {
    /// Waits for the target's exit; returns its code. A crash fails.
    async fn wait(&self, ctx: &mut RunContext) -> Result<i32, StepFailure> {
        match ctx.target.wait_exit(self.timeout).await? {
            GuestExit::Code(code) => Ok(code),
            GuestExit::Crashed(reason) => Err(StepFailure::new(Status::Error, reason)),
        }
    }
}

/// A script's `expect_exit`: the exit code.
fn expect_exit(bridge: &Bridge<RunContext>, timeout: Duration) -> Res<INT> {
    let step = ExpectExit {
        code: None,
        timeout: Some(timeout),
    };
    bridge.call("expect_exit", move |ctx| {
        ctx.host_call(async |ctx: &mut RunContext| step.wait(ctx).await.map(INT::from))
    })
}
