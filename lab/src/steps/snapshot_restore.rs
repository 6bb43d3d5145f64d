//! `snapshot-restore: NAME` puts the machine back where `snapshot-save:
//! NAME` left it, in this run: a fresh QEMU continues from the saved
//! instant, so nothing the guest did since (memory, devices, guest time)
//! survives. A script's `snapshot_restore(name)` is the same operation.
//! A debugger session ends with the QEMU it was attached to.

use rhai::Engine;
use serde_json::json;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind, ms, run_for_script};
use crate::loader::location::is_identifier;
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res, error};

/// `snapshot-restore:` the snapshot's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRestore {
    /// The name a `snapshot-save` of this run gave.
    pub name: String,
}

impl StepKind for SnapshotRestore {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "snapshot-restore",
        example: "before_update",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("QEMU's snapshots");
    type Raw = Spanned<String>;

    fn load(raw: Spanned<String>, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(SnapshotRestore {
            name: v.name(raw, "snapshot name", is_identifier)?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let path = ctx.saved_snapshot(&self.name)?;
        // A debugger session belongs to the QEMU it attached to.
        drop(ctx.debugger.take());
        let restored = ctx.target.restore_snapshot(&path, false).await?;
        let mut detail = Detail::new();
        detail.insert("name".into(), json!(self.name));
        detail.insert("restore_ms".into(), json!(ms(restored.duration)));
        detail.insert("load_ms".into(), json!(ms(restored.load)));
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("snapshot_restore", move |name: &str| -> Res<()> {
            if !is_identifier(name) {
                return Err(error(format!(
                    "snapshot_restore: invalid snapshot name `{name}`"
                )));
            }
            let step = SnapshotRestore {
                name: name.to_owned(),
            };
            run_for_script(&b, "snapshot_restore", step)
        });
    }
}
