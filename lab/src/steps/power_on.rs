//! `power-on: {}` boots the board again after `power-cut:`, with its
//! `storage:` as the cut left it: a cold start, the firmware runs from its
//! reset vector. A script's `power_on()` is the same operation.
//!
//! `power-on: {from: NAME}` starts the machine from the snapshot NAME of
//! this run instead, with the storage still as the cut left it (not as the
//! snapshot holds it). Saved just after a cold boot, before the guest first
//! touched its storage (a Linux image's /init waits with `lab.hold=disk`),
//! it is the same power-on without paying the boot again: what the guest
//! reads from its storage is all that differs from one power-on to the
//! next. A snapshot saved later, once the guest has read or cached its
//! storage, would bring that stale view back: the lab cannot tell, so the
//! scenario must save it early enough. `power_on(#{from: "NAME"})` in a
//! script.

use rhai::{Engine, Map};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::{Detail, RunContext, StepFailure, StepKind, ms, run_for_script};
use crate::loader::location::is_identifier;
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res, error};

/// `power-on:` and where the machine starts from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PowerOn {
    /// A snapshot of this run to start from, instead of the reset vector.
    pub from: Option<String>,
}

/// `power-on: {from: NAME}` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPowerOn {
    from: Option<Spanned<String>>,
}

impl StepKind for PowerOn {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "power-on",
        example: "{from: powered_on}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("power control");
    type Raw = RawPowerOn;

    fn load(raw: RawPowerOn, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let from = raw
            .from
            .map(|name| v.name(name, "snapshot name", is_identifier))
            .transpose()?;
        Ok(PowerOn { from })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let begun = Instant::now();
        let from = self
            .from
            .as_deref()
            .map(|name| ctx.saved_snapshot(name))
            .transpose()?;
        // A debugger session belongs to the QEMU it attached to.
        drop(ctx.debugger.take());
        ctx.target.power_on(from.as_deref()).await?;
        let mut detail = Detail::new();
        detail.insert("power_on_ms".into(), json!(ms(begun.elapsed())));
        if let Some(name) = &self.from {
            detail.insert("from".into(), json!(name));
        }
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("power_on", move || -> Res<()> {
            run_for_script(&b, "power_on", PowerOn::default())
        });
        let b = bridge.clone();
        engine.register_fn("power_on", move |options: Map| -> Res<()> {
            let mut step = PowerOn::default();
            for (key, value) in options {
                match (key.as_str(), value.into_string()) {
                    ("from", Ok(name)) if is_identifier(&name) => step.from = Some(name),
                    ("from", _) => {
                        return Err(error(
                            "power_on: `from` is the name of a snapshot of this run",
                        ));
                    }
                    (other, _) => {
                        return Err(error(format!(
                            "power_on: unknown option `{other}`; the one option is `from`"
                        )));
                    }
                }
            }
            run_for_script(&b, "power_on", step)
        });
    }
}
