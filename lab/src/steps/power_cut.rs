//! `power-cut:` takes the board's power away, as a supply failure would:
//! `abrupt` stops the CPU at whatever instruction it is on; `graceful`
//! first raises the board's power-fail warning (its `power_fail.irq`) and
//! cuts `hold-up` later, the time a supply's capacitors would give. The
//! board's `storage:` keeps what the firmware had written by then, for
//! `power-on:`. A script's `power_cut(#{...})` is the same operation.
//!
//! The cut point `at` counts from the step's start, in guest time on a
//! board with a guest clock (so it holds under `clock: virtual`), else in
//! wall time. With `from: D` it counts from a reading of the guest clock
//! instead, such as a timestamp the firmware printed when its update
//! began: a busy guest runs many times faster than wall time, so the
//! moment the lab sees that line is already well past it. `at: {between:
//! [A, B]}` draws the point uniformly from the run's seed and the number
//! of cuts before it, so that `lab run --seed S` draws the same points
//! again; the report holds the point drawn and the guest time at which the
//! machine actually stopped, which is at or a little past it.

use std::time::Duration;

use rhai::{Engine, INT, Map};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::guest_clock::{pass_guest_time_and_stop, pass_more_guest_time_and_stop};
use super::{Detail, RunContext, StepFailure, StepKind, ms};
use crate::loader::raw::RawShort;
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::Status;
use crate::script::{Bridge, Res, error, parse_duration};

/// The warning's hold-up time when the scenario gives none.
pub const DEFAULT_HOLD_UP: Duration = Duration::from_millis(5);

/// How the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerMode {
    /// At once, with no warning.
    Abrupt,
    /// After the board's power-fail warning and a hold-up time.
    Graceful {
        /// From the warning to the cut.
        hold_up: Duration,
    },
}

/// When the power goes, from the step's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutPoint {
    /// After this long.
    After(Duration),
    /// At a point drawn uniformly from this range, from the run's seed.
    Between(Duration, Duration),
}

/// Options of `power-cut:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut {
    /// Abrupt or graceful.
    pub mode: PowerMode,
    /// When the power starts to fail (the warning, when graceful).
    pub at: CutPoint,
    /// The guest clock's reading `at` counts from; `None` for the step's start.
    pub from: Option<Duration>,
}

/// `power-cut:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPowerCut {
    mode: Option<Spanned<String>>,
    at: Option<Spanned<RawShort<RawBetween>>>,
    from: Option<Spanned<String>>,
    hold_up: Option<Spanned<String>>,
}

/// `at: {between: [A, B]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBetween {
    between: Spanned<Vec<Spanned<String>>>,
}

impl StepKind for PowerCut {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "power-cut",
        example: "{mode: abrupt, at: {between: [10ms, 200ms]}, from: 510ms}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("power control");
    type Raw = RawPowerCut;

    fn load(raw: RawPowerCut, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let hold_up = v.optional_duration(raw.hold_up.as_ref())?;
        let mode = match raw.mode {
            None => PowerMode::Abrupt,
            Some(mode) => match mode.value.as_str() {
                "abrupt" if hold_up.is_some() => {
                    return Err(v.error(
                        loc(&mode.referenced),
                        ErrorKind::Other(
                            "`hold-up` is the time a graceful cut gives: write `mode: graceful`"
                                .into(),
                        ),
                    ));
                }
                "abrupt" => PowerMode::Abrupt,
                "graceful" => PowerMode::Graceful {
                    hold_up: hold_up.unwrap_or(DEFAULT_HOLD_UP),
                },
                other => {
                    return Err(v.error(
                        loc(&mode.referenced),
                        ErrorKind::UnknownValue {
                            value: other.to_owned(),
                            expected: vec!["abrupt", "graceful"],
                        },
                    ));
                }
            },
        };
        let at = match raw.at {
            None => CutPoint::After(Duration::ZERO),
            Some(at) => {
                let place = loc(&at.referenced);
                match v.short_or_full(at, "a duration like `50ms`, or `{between: [A, B]}`")? {
                    Ok(after) => CutPoint::After(v.duration(&after)?),
                    Err(RawBetween { between }) => {
                        let [low, high] = between.value.as_slice() else {
                            return Err(v.error(
                                loc(&between.referenced),
                                ErrorKind::Other(
                                    "`between` takes two durations, like `[10ms, 200ms]`".into(),
                                ),
                            ));
                        };
                        let (low, high) = (v.duration(low)?, v.duration(high)?);
                        if low > high {
                            return Err(v.error(
                                place,
                                ErrorKind::Other(format!(
                                    "the range starts after it ends ({low:?} > {high:?})"
                                )),
                            ));
                        }
                        CutPoint::Between(low, high)
                    }
                }
            }
        };
        let from = v.optional_duration(raw.from.as_ref())?;
        Ok(PowerCut { mode, at, from })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let begun = Instant::now();
        let at = self.draw(ctx);
        let mut detail = Detail::new();
        detail.insert(
            "mode".into(),
            json!(match self.mode {
                PowerMode::Abrupt => "abrupt",
                PowerMode::Graceful { .. } => "graceful",
            }),
        );
        detail.insert("at_us".into(), json!(micros(at)));
        if let Some(from) = self.from {
            detail.insert("from_us".into(), json!(micros(from)));
        }
        // The machine stops at `at` (on a board with a guest clock): the
        // cut falls there, or the warning, which runs on into the hold-up
        // with no guest time between.
        let warned = wait(ctx, at, Start::Running(self.from)).await?;
        detail.insert("clock".into(), json!(warned.name));
        // How far past the point drawn the power started to fail: the
        // machine stops only at a reading of the guest clock.
        detail.insert(
            "late_us".into(),
            json!(micros(warned.passed.saturating_sub(at))),
        );
        let mut passed = warned.passed;
        if let PowerMode::Graceful { hold_up } = self.mode {
            let irq = ctx.board.power_fail.map(|p| p.irq).ok_or_else(|| {
                StepFailure::new(
                    Status::Error,
                    format!(
                        "board `{}` has no power-fail warning (`power_fail.irq` in its \
                         profile): cut with `mode: abrupt`",
                        ctx.board.name
                    ),
                )
            })?;
            ctx.target.warn_power_fail(irq).await?;
            detail.insert("hold_up_us".into(), json!(micros(hold_up)));
            passed += wait(ctx, hold_up, Start::Stopped).await?.passed;
        }
        let cut = ctx.target.power_cut().await?;
        ctx.power_cuts += 1;
        // The guest time that really passed before the machine stopped
        // (from `from` when given), read from the stopped machine: the cut
        // falls at the first reading of the guest clock at or past the
        // point, so a little after it.
        detail.insert("passed_us".into(), json!(micros(passed)));
        detail.insert("step_wall_ms".into(), json!(ms(begun.elapsed())));
        detail.insert("kept_bytes".into(), json!(cut.kept_bytes));
        detail.insert("cut_ms".into(), json!(ms(cut.duration)));
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("power_cut", move || -> Res<Map> {
            let step = PowerCut {
                mode: PowerMode::Abrupt,
                at: CutPoint::After(Duration::ZERO),
                from: None,
            };
            cut_for_script(&b, step)
        });
        let b = bridge.clone();
        engine.register_fn("power_cut", move |options: Map| -> Res<Map> {
            cut_for_script(&b, from_map(&options)?)
        });
    }
}

impl PowerCut {
    /// The cut point of this cut in this run.
    fn draw(&self, ctx: &RunContext) -> Duration {
        match self.at {
            CutPoint::After(at) => at,
            CutPoint::Between(low, high) => {
                // One stream per cut of the run, the same for the same seed.
                let mut rng = fastrand::Rng::with_seed(
                    ctx.seed ^ ctx.power_cuts.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let span = u64::try_from((high - low).as_nanos()).unwrap_or(u64::MAX);
                low + Duration::from_nanos(rng.u64(0..=span))
            }
        }
    }
}

/// Whose time a wait counted, and how much of it passed.
struct Waited {
    name: &'static str,
    passed: Duration,
}

/// Where a wait starts from.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// A running machine, counting from the guest clock's reading `from`
    /// when given, else from now.
    Running(Option<Duration>),
    /// The machine as the last wait stopped it (on a guest clock).
    Stopped,
}

/// Lets `wanted` pass and, on a board with a guest clock, stops the
/// machine there, with the guest time that passed read exactly; else lets
/// wall time pass, the machine running on.
async fn wait(ctx: &mut RunContext, wanted: Duration, start: Start) -> Result<Waited, StepFailure> {
    if ctx.board.guest_clock.is_none() {
        if let Start::Running(Some(_)) = start {
            return Err(StepFailure::new(
                Status::Error,
                format!(
                    "`from` is a reading of the guest clock, and board `{}` has none \
                     (`guest_clock` in its profile): count `at` from the step's start",
                    ctx.board.name
                ),
            ));
        }
        tokio::time::sleep(wanted).await;
        return Ok(Waited {
            name: "wall",
            passed: wanted,
        });
    }
    let (target, board, icount) = (&mut *ctx.target, &ctx.board, ctx.icount);
    let passed = match start {
        Start::Running(from) => {
            pass_guest_time_and_stop(target, board, icount, wanted, from, ctx.deadline).await?
        }
        Start::Stopped => {
            pass_more_guest_time_and_stop(target, board, icount, wanted, ctx.deadline).await?
        }
    };
    Ok(Waited {
        name: "guest",
        passed,
    })
}

/// Runs `step` for a script; returns the report's detail as a map.
fn cut_for_script(bridge: &Bridge<RunContext>, step: PowerCut) -> Res<Map> {
    let detail = bridge.call("power_cut", move |ctx| {
        ctx.host_call(async |ctx: &mut RunContext| step.run(ctx).await)
    })?;
    Ok(detail
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.into(), crate::script::from_json(v)))
        .collect())
}

/// `power_cut(#{mode, at, between, from, hold_up})` options.
fn from_map(options: &Map) -> Res<PowerCut> {
    const FUNCTION: &str = "power_cut";
    for key in options.keys() {
        if !["mode", "at", "between", "from", "hold_up"].contains(&key.as_str()) {
            return Err(error(format!(
                "{FUNCTION}: unknown option `{key}`; options: mode, at, between, from, hold_up"
            )));
        }
    }
    let duration = |key: &str| options.get(key).map(|v| parse_duration(FUNCTION, v)).transpose();
    let hold_up = duration("hold_up")?;
    let mode = match options.get("mode").map(|m| m.to_string()).as_deref() {
        None | Some("abrupt") if hold_up.is_none() => PowerMode::Abrupt,
        Some("graceful") => PowerMode::Graceful {
            hold_up: hold_up.unwrap_or(DEFAULT_HOLD_UP),
        },
        None | Some("abrupt") => {
            return Err(error(format!(
                "{FUNCTION}: hold_up is the time a graceful cut gives: add mode: \"graceful\""
            )));
        }
        Some(other) => {
            return Err(error(format!(
                "{FUNCTION}: mode is \"abrupt\" or \"graceful\", not {other:?}"
            )));
        }
    };
    let at = match (duration("at")?, options.get("between")) {
        (Some(_), Some(_)) => {
            return Err(error(format!("{FUNCTION}: give `at` or `between`, not both")));
        }
        (Some(at), None) => CutPoint::After(at),
        (None, None) => CutPoint::After(Duration::ZERO),
        (None, Some(range)) => {
            let bounds = range
                .clone()
                .try_cast::<rhai::Array>()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| {
                    error(format!(
                        "{FUNCTION}: between is two durations, like [\"10ms\", \"200ms\"]"
                    ))
                })?;
            let low = parse_duration(FUNCTION, &bounds[0])?;
            let high = parse_duration(FUNCTION, &bounds[1])?;
            if low > high {
                return Err(error(format!(
                    "{FUNCTION}: the range starts after it ends ({low:?} > {high:?})"
                )));
            }
            CutPoint::Between(low, high)
        }
    };
    Ok(PowerCut {
        mode,
        at,
        from: duration("from")?,
    })
}

/// A duration in whole microseconds.
fn micros(d: Duration) -> INT {
    INT::try_from(d.as_micros()).unwrap_or(INT::MAX)
}
