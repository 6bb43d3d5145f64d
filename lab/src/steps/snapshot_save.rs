//! `snapshot-save: NAME` saves the whole running machine (CPU, RAM,
//! devices, guest clock) under a name, for `snapshot-restore: NAME` to go
//! back to as often as a campaign needs; a script's `snapshot_save(name)`
//! is the same operation. A run's snapshots live as long as the run, in a
//! scratch folder of its own; only QEMU has them.

use rhai::Engine;
use serde_json::json;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind, ms, run_for_script};
use crate::loader::location::is_identifier;
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res, error};

/// `snapshot-save:` the snapshot's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSave {
    /// The name `snapshot-restore` goes back to.
    pub name: String,
}

impl StepKind for SnapshotSave {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "snapshot-save",
        example: "before_update",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("QEMU's snapshots");
    type Raw = Spanned<String>;

    fn load(raw: Spanned<String>, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(SnapshotSave {
            name: v.name(raw, "snapshot name", is_identifier)?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let path = ctx.snapshot_path(&self.name)?;
        let saved = ctx.target.save_snapshot(&path).await?;
        let mut detail = Detail::new();
        detail.insert("name".into(), json!(self.name));
        detail.insert("save_ms".into(), json!(ms(saved.duration)));
        detail.insert("disk_bytes".into(), json!(saved.file.disk_bytes));
        detail.insert("apparent_bytes".into(), json!(saved.file.apparent_bytes));
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("snapshot_save", move |name: &str| -> Res<()> {
            if !is_identifier(name) {
                return Err(error(format!(
                    "snapshot_save: invalid snapshot name `{name}`: a snapshot name is \
                     letters, digits and `_`, and does not start with a digit"
                )));
            }
            let step = SnapshotSave {
                name: name.to_owned(),
            };
            run_for_script(&b, "snapshot_save", step)
        });
    }
}
