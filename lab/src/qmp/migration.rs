//! Migration to and from a file: the QMP half of the lab's snapshots.
//!
//! QEMU saves a whole machine by migrating it into a file and restores it by
//! migrating it back into a QEMU started with `-incoming defer`. The lab
//! uses the `mapped-ram` capability on both sides: every RAM page has a
//! fixed place in the file, so the file is sparse (pages never written take
//! no disk space) and loads with plain reads. No block device is needed.
//!
//! The file is named through a migration channel (`{"transport": "file",
//! "filename": ...}`), not a `file:PATH` URI, so a path with a comma in it
//! cannot be misread as URI options.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{QmpClient, QmpError};

/// The first pause between two `query-migrate` polls; it doubles up to
/// [`POLL_MAX`]. A small machine migrates in a few milliseconds, so the
/// first polls come fast.
const POLL_FIRST: Duration = Duration::from_micros(250);
/// The longest pause between two `query-migrate` polls.
const POLL_MAX: Duration = Duration::from_millis(4);

/// `query-migrate`, with a reply reduced to what the lab reads. (The `qapi`
/// crate's `MigrationInfo` carries QEMU 9.1's statistics, whose required
/// fields may change between QEMU versions; the lab needs none of them.)
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueryMigrate {}

impl qapi::Command for QueryMigrate {
    type Ok = MigrationProgress;
    const NAME: &'static str = "query-migrate";
    const ALLOW_OOB: bool = false;
}

/// The state of the current (or last) migration, outgoing or incoming.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MigrationProgress {
    /// Where the migration stands; absent before the first one.
    #[serde(default)]
    pub status: Option<MigrationState>,
    /// QEMU's description of a failure.
    #[serde(rename = "error-desc", default)]
    pub error_desc: Option<String>,
    /// QEMU's own count of the migration's milliseconds (outgoing only).
    #[serde(rename = "total-time", default)]
    pub total_time_ms: Option<u64>,
}

/// Where a migration stands (QEMU's `MigrationStatus`, the states the lab
/// tells apart; every other one is [`MigrationState::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationState {
    /// No migration has run.
    None,
    /// The migration is being set up.
    Setup,
    /// The migration is copying state.
    Active,
    /// The migration has finished.
    Completed,
    /// The migration failed; `error-desc` says why.
    Failed,
    /// The migration is being cancelled.
    Cancelling,
    /// The migration was cancelled.
    Cancelled,
    /// A state the lab does not tell apart (postcopy, COLO and others).
    #[serde(other)]
    Other,
}

impl QmpClient {
    /// Turns on the `mapped-ram` migration capability, which file snapshots
    /// need on both the saving and the restoring side.
    pub async fn enable_mapped_ram(&self, timeout: Duration) -> Result<(), QmpError> {
        use qapi::qmp::{MigrationCapability, MigrationCapabilityStatus, migrate_set_capabilities};
        let cmd = migrate_set_capabilities {
            capabilities: vec![MigrationCapabilityStatus {
                capability: MigrationCapability::mapped_ram,
                state: true,
            }],
        };
        self.execute(cmd, timeout).await.map(drop)
    }

    /// The state of the current (or last) migration.
    pub async fn query_migrate(&self, timeout: Duration) -> Result<MigrationProgress, QmpError> {
        self.execute(QueryMigrate {}, timeout).await
    }

    /// Writes the machine's state into `path` (QMP `migrate` to a file, with
    /// `mapped-ram` on) and waits until the migration completes, at most
    /// `timeout` in all. The caller stops the machine first, so the state
    /// is one instant's; QEMU leaves it stopped (`postmigrate`) afterwards.
    pub async fn migrate_to_file(
        &self,
        path: &Path,
        timeout: Duration,
    ) -> Result<MigrationProgress, QmpError> {
        let deadline = Instant::now() + timeout;
        self.enable_mapped_ram(timeout).await?;
        let cmd = qapi::qmp::migrate {
            channels: Some(vec![file_channel(path, "migrate")?]),
            detach: None,
            resume: None,
            uri: None,
        };
        self.execute(cmd, left(deadline)).await?;
        self.wait_for_migration("migrate", deadline).await
    }

    /// Loads the machine's state from `path` into a QEMU started with
    /// `-incoming defer` (QMP `migrate-incoming` from a file, with
    /// `mapped-ram` on) and waits until it is loaded, at most `timeout` in
    /// all. QEMU stays alive when the load fails (`exit-on-error` off), so
    /// its reason can be read; the machine is left paused either way.
    pub async fn migrate_from_file(
        &self,
        path: &Path,
        timeout: Duration,
    ) -> Result<MigrationProgress, QmpError> {
        let deadline = Instant::now() + timeout;
        self.enable_mapped_ram(timeout).await?;
        let cmd = qapi::qmp::migrate_incoming {
            channels: Some(vec![file_channel(path, "migrate-incoming")?]),
            exit_on_error: Some(false),
            uri: None,
        };
        self.execute(cmd, left(deadline)).await?;
        self.wait_for_migration("migrate-incoming", deadline).await
    }

    /// Polls `query-migrate` until the migration completes (`Ok`), fails or
    /// is cancelled ([`QmpError::MigrationFailed`]), or `deadline` passes
    /// ([`QmpError::Timeout`] naming `command`).
    async fn wait_for_migration(
        &self,
        command: &str,
        deadline: Instant,
    ) -> Result<MigrationProgress, QmpError> {
        let started = Instant::now();
        let mut pause = POLL_FIRST;
        loop {
            let progress = self.query_migrate(left(deadline)).await?;
            match progress.status {
                Some(MigrationState::Completed) => return Ok(progress),
                Some(MigrationState::Failed | MigrationState::Cancelled) => {
                    return Err(QmpError::MigrationFailed {
                        command: command.to_owned(),
                        desc: progress
                            .error_desc
                            .unwrap_or_else(|| "QEMU gave no reason".to_owned()),
                    });
                }
                _ => {}
            }
            if Instant::now() + pause >= deadline {
                return Err(QmpError::Timeout {
                    command: command.to_owned(),
                    after: deadline.saturating_duration_since(started),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}

/// The time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The migration channel for the file at `path`.
fn file_channel(path: &Path, command: &str) -> Result<qapi::qmp::MigrationChannel, QmpError> {
    use qapi::qmp::{FileMigrationArgs, MigrationAddress, MigrationChannel, MigrationChannelType};
    let filename = path.to_str().ok_or_else(|| QmpError::Encode {
        command: command.to_owned(),
        source: serde::ser::Error::custom(format!(
            "the snapshot path {} is not UTF-8, and QMP file names are",
            path.display()
        )),
    })?;
    Ok(MigrationChannel {
        addr: MigrationAddress::file(FileMigrationArgs {
            filename: filename.to_owned(),
            offset: 0,
        }),
        channel_type: MigrationChannelType::main,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_channel_is_encoded_as_qemu_expects() {
        let channel = file_channel(Path::new("/s/a,b.snap"), "migrate").unwrap();
        assert_eq!(
            serde_json::to_value(channel).unwrap(),
            serde_json::json!({
                "addr": {"transport": "file", "filename": "/s/a,b.snap", "offset": 0},
                "channel-type": "main"
            })
        );
    }

    #[test]
    fn progress_reads_qemu_10_replies_and_unknown_states() {
        let done: MigrationProgress = serde_json::from_value(serde_json::json!({
            "status": "completed", "total-time": 17, "setup-time": 1,
            "ram": {"transferred": 300, "brand-new-field": 1}
        }))
        .unwrap();
        assert_eq!(done.status, Some(MigrationState::Completed));
        assert_eq!(done.total_time_ms, Some(17));
        let odd: MigrationProgress =
            serde_json::from_value(serde_json::json!({"status": "postcopy-active"})).unwrap();
        assert_eq!(odd.status, Some(MigrationState::Other));
        let none: MigrationProgress = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(none.status, None);
    }
}
