//! `sleep:` lets time pass: wall time (`sleep: 500ms`), or guest time
//! (`sleep: {guest: 500ms}`), read from the board's own counter so that it
//! holds under `clock: virtual` too. A script's `sleep()` and
//! `sleep_guest()` are the same two operations.

use std::time::Duration;

use rhai::{Dynamic, Engine, INT};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::guest_clock::sleep_guest;
use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::raw::{RawScalar, RawShort};
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::script::{Abort, Bridge, Res, abort, register_duration_fn};

/// Whose time `sleep:` lets pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepClock {
    /// The host's wall time.
    Wall,
    /// The guest's time, from the board's counter.
    Guest,
}

/// Options of `sleep:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sleep {
    /// How long.
    pub duration: Duration,
    /// Whose time.
    pub clock: SleepClock,
}

/// The map form of `sleep:`: exactly one of `wall` and `guest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawSleep {
    wall: Option<Spanned<String>>,
    guest: Option<Spanned<String>>,
}

impl StepKind for Sleep {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "sleep",
        example: "500ms",
    };
    type Raw = Spanned<RawShort<RawSleep>>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let at = loc(&raw.referenced);
        let (text, clock) = match raw.value {
            RawShort::Short(RawScalar::Text(text)) => (
                Spanned {
                    value: text,
                    referenced: raw.referenced,
                    defined: raw.defined,
                },
                SleepClock::Wall,
            ),
            RawShort::Short(other) => {
                return Err(v.error(
                    at,
                    ErrorKind::Mismatch {
                        expected: "a duration with a unit, like `500ms`".to_owned(),
                        found: other.describe(),
                    },
                ));
            }
            RawShort::Full(RawSleep {
                wall: Some(wall),
                guest: None,
            }) => (wall, SleepClock::Wall),
            RawShort::Full(RawSleep {
                wall: None,
                guest: Some(guest),
            }) => (guest, SleepClock::Guest),
            RawShort::Full(_) => {
                return Err(v.error(
                    at,
                    ErrorKind::Other(
                        "`sleep` takes exactly one of `wall` and `guest`, like \
                         `sleep: {guest: 500ms}`"
                            .into(),
                    ),
                ));
            }
        };
        Ok(Sleep {
            duration: v.duration(&text)?,
            clock,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let mut detail = Detail::new();
        match self.clock {
            SleepClock::Wall => {
                tokio::time::sleep(self.duration).await;
                detail.insert("clock".into(), json!("wall"));
            }
            SleepClock::Guest => {
                let slept = self.guest(ctx, ctx.deadline).await?;
                detail.insert("clock".into(), json!("guest"));
                detail.insert("slept_us".into(), json!(micros(slept)));
            }
        }
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        register_duration_fn(engine, "sleep", move |wanted| -> Res<Dynamic> {
            let allowed = b.bounded(wanted)?;
            let step = Sleep {
                duration: allowed,
                clock: SleepClock::Wall,
            };
            run_for_script(&b, "sleep", step)?;
            if allowed < wanted {
                return Err(abort(Abort::Deadline));
            }
            Ok(Dynamic::UNIT)
        });
        // Guest time may run faster or slower than wall time: only the wait
        // for it is bounded by the deadline.
        let b = bridge.clone();
        register_duration_fn(engine, "sleep_guest", move |wanted| -> Res<Dynamic> {
            let limit = Instant::now() + b.until_deadline()?;
            let step = Sleep {
                duration: wanted,
                clock: SleepClock::Guest,
            };
            let slept = b.call("sleep_guest", move |ctx| {
                ctx.host_call(async |ctx: &mut RunContext| step.guest(ctx, limit).await)
            })?;
            Ok(Dynamic::from_int(
                INT::try_from(slept.as_micros()).unwrap_or(INT::MAX),
            ))
        });
    }
}

impl Sleep {
    /// Lets the guest time pass, waiting until `limit` at most; returns
    /// the guest time that passed.
    async fn guest(&self, ctx: &mut RunContext, limit: Instant) -> Result<Duration, StepFailure> {
        Ok(sleep_guest(&mut *ctx.target, &ctx.board, ctx.icount, self.duration, limit).await?)
    }
}

/// A duration in whole microseconds.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
