//! `expect-reset:` waits for resets the guest asks for itself (a firmware's
//! `NVIC_SystemReset()` after an `abort()`, a kernel's reboot), seen from
//! outside through QEMU's `RESET` events: no cooperation of the firmware is
//! needed. A reset the lab asked for (the `reset` of a script) does not
//! count. A script's `expect_reset()` is the same wait.

use std::time::Duration;

use rhai::{Dynamic, Engine, INT};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::{Detail, RunContext, StepFailure, StepKind, ms};
use crate::backend::GuestExit;
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::qmp::QmpEvent;
use crate::report::Status;
use crate::script::{Bridge, Res};

/// How long `expect-reset:` waits when the scenario names no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The metric that counts the guest's resets over the run.
const RESETS: &str = "resets";

/// Options of `expect-reset:`.
#[derive(Debug, Clone)]
pub struct ExpectReset {
    /// How many resets to wait for (at least 1).
    pub count: u32,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// `expect-reset:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectReset {
    count: Option<Spanned<u32>>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for ExpectReset {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "expect-reset",
        example: "{count: 1, timeout: 5s}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("QEMU's reset events");
    type Raw = RawExpectReset;

    fn load(raw: RawExpectReset, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let count = match raw.count {
            None => 1,
            Some(count) if count.value >= 1 => count.value,
            Some(count) => {
                return Err(v.error(
                    loc(&count.referenced),
                    ErrorKind::Mismatch {
                        expected: "a count of 1 or more".to_owned(),
                        found: count.value.to_string(),
                    },
                ));
            }
        };
        Ok(ExpectReset {
            count,
            timeout: v.optional_duration(raw.timeout.as_ref())?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let seen = self.wait(ctx).await?;
        Ok(Some(Detail::from([
            ("resets".to_owned(), json!(seen.len())),
            ("after_ms".to_owned(), json!(seen)),
        ])))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("expect_reset", move |timeout: Dynamic| {
            let timeout = b.timeout("expect_reset", &timeout)?;
            expect_reset(&b, 1, timeout)
        });
        let b = bridge.clone();
        engine.register_fn("expect_reset", move |count: INT, timeout: Dynamic| {
            let timeout = b.timeout("expect_reset", &timeout)?;
            let count = u32::try_from(count)
                .ok()
                .filter(|c| *c >= 1)
                .ok_or_else(|| format!("expect_reset: a count of 1 or more, not {count}"))?;
            expect_reset(&b, count, timeout)
        });
    }
}

impl ExpectReset {
    /// Waits for `count` resets the guest asked for; returns when each came,
    /// in ms since the step began. Adds them to the run's `resets` metric.
    async fn wait(&self, ctx: &mut RunContext) -> Result<Vec<f64>, StepFailure> {
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let begun = Instant::now();
        let deadline = begun + timeout;
        let mut seen = Vec::new();
        while seen.len() < self.count as usize {
            let left = deadline.saturating_duration_since(Instant::now());
            match ctx.target.next_event(left).await? {
                Some(event) if asked_by_guest(&event) => {
                    seen.push(ms(begun.elapsed()));
                    *ctx.metrics.entry(RESETS.to_owned()).or_default() += 1.0;
                }
                Some(_) => {}
                None => {
                    let ended = ctx.target.exited(Duration::ZERO).await;
                    let why = match &ended {
                        Some(GuestExit::Code(code)) => {
                            format!("the target exited with code {code} after")
                        }
                        Some(GuestExit::Crashed(reason)) => format!("{reason}, after"),
                        None => format!("no reset within {timeout:?} after"),
                    };
                    return Err(StepFailure::new(
                        if ended.is_some() {
                            Status::Failed
                        } else {
                            Status::Timeout
                        },
                        format!(
                            "{why} {} of the {} resets expected (a reset the guest asks for: \
                             NVIC_SystemReset, a reboot)",
                            seen.len(),
                            self.count
                        ),
                    ));
                }
            }
        }
        Ok(seen)
    }
}

/// Whether `event` is a reset the guest asked for, not one the lab or
/// QEMU made (QEMU's `RESET` with `guest: true`).
fn asked_by_guest(event: &QmpEvent) -> bool {
    event.name == "RESET" && event.data.get("guest").and_then(|g| g.as_bool()) == Some(true)
}

/// A script's `expect_reset`: how many resets came (all of `count`).
fn expect_reset(bridge: &Bridge<RunContext>, count: u32, timeout: Duration) -> Res<INT> {
    let step = ExpectReset {
        count,
        timeout: Some(timeout),
    };
    bridge.call("expect_reset", move |ctx| {
        ctx.host_call(async |ctx: &mut RunContext| {
            step.wait(ctx).await.map(|seen| seen.len() as INT)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: serde_json::Value) -> QmpEvent {
        QmpEvent {
            name: name.to_owned(),
            data,
            timestamp: None,
            typed: None,
        }
    }

    #[test]
    fn only_a_reset_the_guest_asked_for_counts() {
        let guest = json!({"guest": true, "reason": "guest-reset"});
        let host = json!({"guest": false, "reason": "host-qmp-system-reset"});
        assert!(asked_by_guest(&event("RESET", guest.clone())));
        assert!(!asked_by_guest(&event("RESET", host)));
        assert!(!asked_by_guest(&event("SHUTDOWN", guest)));
        assert!(!asked_by_guest(&event("RESET", json!({}))));
    }
}
