//! Guest time while the guest runs: the board's free-running counter
//! (`guest_clock` in its profile), read through the monitor. QEMU drives
//! the counter from its virtual clock, so under `clock: virtual` it follows
//! icount, idle warps included, and under `clock: wall` it follows the host.
//!
//! Three things keep the count close to the guest's own:
//! - **Every reading is taken with the machine stopped**, so a power cut
//!   after a wait falls where the last reading was. A busy guest under
//!   icount runs many times faster than wall time (up to 40 ms of guest
//!   time in one wall millisecond on MPS2 at shift 7), so the last stretch
//!   goes in moments: `cont` and `stop` written together ([`Approach`]).
//! - **The guest runs slower while the lab waits**, under icount only: TCG
//!   translates one instruction per block (`one-insn-per-tb`), which slows
//!   a busy guest about tenfold in wall time and leaves its guest time as
//!   it was (under icount an instruction costs the same guest time either
//!   way, and timer interrupts land on the same instruction). Under
//!   `clock: wall` guest time follows the host, so a slower guest would do
//!   a tenth of its work in the same guest time: it runs at full speed.
//!   QEMU before 8.1 has no such monitor command and runs at full speed.
//! - **A guest reset is held for the lab.** A reset starts the counter
//!   again from zero, and the time between the last reading and the reset
//!   would be lost. While a wait runs, QEMU pauses the machine at the
//!   instant the guest asks for a reset (`set-action reboot=shutdown
//!   shutdown=pause`); the lab reads the counter there, then resets the
//!   machine itself and lets it run on.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::failure::StepFailure;
use crate::backend::{Target, TargetError};
use crate::board::{BoardProfile, GuestClock};
use crate::qmp::xp;
use crate::report::Status;

/// The shortest and longest pause of a poll; a shorter one would be lost
/// in the timer's millisecond and the round trips around it.
const POLL_MIN: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(20);
/// The fastest guest time is assumed to run against wall time until a poll
/// has seen faster: a busy MPS2 guest at icount shift 7 was measured at 37.
const FAST_GUEST: f64 = 50.0;
/// Within this much guest time of the point the machine runs in moments,
/// whatever the rate: a reset inside a poll would lose the poll's time.
const MOMENTS_WITHIN: Duration = Duration::from_millis(500);

/// Why guest time could not be read or waited for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GuestClockError {
    /// The board has no counter to read.
    #[error(
        "board `{0}` has no guest clock (`guest_clock` in its profile names a counter that QEMU \
         drives from its virtual clock); use sleep() for wall time, or wait on the target's \
         own output"
    )]
    Missing(String),
    /// The guest is paused, so its time stands still.
    #[error("the guest is paused ({0}), so guest time stands still: resume() it first")]
    Paused(String),
    /// The monitor's answer did not hold a counter value.
    #[error("cannot read the guest clock at {address:#x}: the monitor answered {answer:?}")]
    Unreadable {
        /// The counter's address.
        address: u64,
        /// What `xp` printed.
        answer: String,
    },
    /// The wall-clock limit passed first.
    #[error("{passed:?} of guest time passed in {waited:?} of wall time, short of {wanted:?}")]
    Timeout {
        /// Guest time that passed.
        passed: Duration,
        /// Guest time asked for.
        wanted: Duration,
        /// Wall time waited.
        waited: Duration,
    },
    /// The guest asked to power off while the lab counted its time.
    #[error("the guest shut down ({0}) while the lab waited for its time to pass")]
    ShutDown(String),
    /// A reset the lab carried out for the guest did not happen in time.
    #[error("QEMU did not reset the machine within 5 s of the guest asking (status {0})")]
    ResetLost(String),
    /// The target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl From<GuestClockError> for StepFailure {
    /// A wait that ran out of wall time is a timeout; anything else an error.
    fn from(e: GuestClockError) -> Self {
        let status = match e {
            GuestClockError::Timeout { .. } => Status::Timeout,
            _ => Status::Error,
        };
        StepFailure::new(status, e.to_string())
    }
}

/// Guest time since the clock was started, from a 32-bit counter that may
/// wrap any number of times between starts, as long as it is read at least
/// once a wrap (at 25 MHz every 171 s of guest time).
struct Elapsed {
    clock: GuestClock,
    last: u32,
    ticks: u64,
}

impl Elapsed {
    /// Stops the machine, holds its resets, slows it under `icount` and
    /// starts counting from the counter's value. [`Elapsed::finish`] undoes
    /// the rest.
    async fn start(
        target: &mut dyn Target,
        clock: GuestClock,
        icount: bool,
    ) -> Result<Self, GuestClockError> {
        let replies = target
            .qmp_batch(&[
                ("stop", None),
                hold_resets(true),
                one_insn_per_tb(icount),
                read(clock.counter),
            ])
            .await?;
        // Resets the guest asked for before now are not the wait's.
        drop(target.take_events());
        Ok(Elapsed {
            clock,
            last: counter_value(clock.counter, &replies[3])?,
            ticks: 0,
        })
    }

    /// Lets resets go again and the guest run at full speed, as before
    /// [`Elapsed::start`].
    async fn finish(target: &mut dyn Target) -> Result<(), GuestClockError> {
        target
            .qmp_batch(&[hold_resets(false), one_insn_per_tb(false)])
            .await?;
        Ok(())
    }

    /// Runs the stopped machine, for `pause` or (with `None`) for a moment,
    /// stops it and returns the guest time since [`Elapsed::start`].
    async fn run_and_read(
        &mut self,
        target: &mut dyn Target,
        pause: Option<(Duration, Instant)>,
    ) -> Result<Duration, GuestClockError> {
        let replies = match pause {
            Some((pause, limit)) => {
                target.qmp("cont", None).await?;
                tokio::time::sleep_until((Instant::now() + pause).min(limit)).await;
                target
                    .qmp_batch(&[("stop", None), read(self.clock.counter)])
                    .await?
            }
            None => {
                target
                    .qmp_batch(&[("cont", None), ("stop", None), read(self.clock.counter)])
                    .await?
            }
        };
        let now = counter_value(self.clock.counter, replies.last().unwrap_or(&Value::Null))?;
        tracing::trace!(counter = now, last = self.last, "guest clock reading");
        if held_reset(target)? {
            // Between the guest's request and the hold, QEMU warps an idle
            // machine's clock to its next timer deadline (icount with
            // `sleep=off`): this reading is past the real instant, so the
            // reset counts as falling at the last reading.
            reset(target).await?;
            self.last = 0;
        } else {
            // Every reset is held, so a step back is a wrap.
            self.ticks += ticks_between(self.last, now);
            self.last = now;
        }
        Ok(ticks_to_duration(self.ticks, self.clock.hz))
    }
}

/// The command that holds guest resets (`true`) or lets them go.
fn hold_resets(hold: bool) -> (&'static str, Option<Value>) {
    let (reboot, shutdown) = if hold {
        ("shutdown", "pause")
    } else {
        ("reset", "poweroff")
    };
    (
        "set-action",
        Some(json!({"reboot": reboot, "shutdown": shutdown})),
    )
}

/// The command that has TCG translate one instruction per block (`true`)
/// or as many as fit.
fn one_insn_per_tb(on: bool) -> (&'static str, Option<Value>) {
    let line = if on {
        "one-insn-per-tb on"
    } else {
        "one-insn-per-tb off"
    };
    ("human-monitor-command", Some(json!({"command-line": line})))
}

/// The command that reads the counter at `address`: the monitor's `xp`,
/// which goes through the device's own read handler.
fn read(address: u64) -> (&'static str, Option<Value>) {
    (
        "human-monitor-command",
        Some(json!({"command-line": xp::command(address)})),
    )
}

/// Whether QEMU holds a reset the guest asked for (the machine stands
/// paused where it asked). A guest that asked to power off instead ends
/// the wait: [`GuestClockError::ShutDown`].
fn held_reset(target: &mut dyn Target) -> Result<bool, GuestClockError> {
    let mut held = false;
    for event in target.take_events() {
        if event.name != "SHUTDOWN" {
            continue;
        }
        match event.data.get("reason").and_then(Value::as_str) {
            Some("guest-reset") => held = true,
            reason => {
                return Err(GuestClockError::ShutDown(
                    reason.unwrap_or("unknown").to_owned(),
                ));
            }
        }
    }
    Ok(held)
}

/// How long QEMU may take to carry out a reset the lab asked for.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// Resets the machine that QEMU holds at the guest's request, as QEMU would
/// have, and waits until it has: the counter starts again from zero and
/// the machine stays stopped.
async fn reset(target: &mut dyn Target) -> Result<(), GuestClockError> {
    target
        .qmp_batch(&[
            hold_resets(false),
            ("system_reset", None),
            hold_resets(true),
        ])
        .await?;
    let limit = Instant::now() + RESET_TIMEOUT;
    loop {
        // Each round trip lets QEMU's main loop carry out the request.
        let status = target.qmp("query-status", None).await?;
        if target.take_events().iter().any(|e| e.name == "RESET") {
            return Ok(());
        }
        if Instant::now() >= limit {
            return Err(GuestClockError::ResetLost(status.to_string()));
        }
    }
}

/// The ticks between two readings of the counter with no reset between
/// them: the distance forward, through a wrap if need be.
fn ticks_between(last: u32, now: u32) -> u64 {
    u64::from(now.wrapping_sub(last))
}

/// Lets at least `wanted` of guest time pass, waiting at most until
/// `limit`, and returns the guest time that passed. Polls adapt to how
/// fast guest time runs against wall time, and the last stretch goes in
/// moments ([`Approach`]), so the overshoot stays small.
pub(crate) async fn sleep_guest(
    target: &mut dyn Target,
    board: &BoardProfile,
    icount: bool,
    wanted: Duration,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    let passed = pass_guest_time_and_stop(target, board, icount, wanted, None, limit).await?;
    target.qmp("cont", None).await?;
    Ok(passed)
}

/// Lets guest time pass as [`sleep_guest`] does until `wanted` has passed
/// since `from`, and leaves the machine stopped at the first reading past
/// that point: for power cuts, the machine stands still where the cut
/// falls. `from` is a reading of the guest clock (on MPS2, guest time
/// since the machine last reset, as the firmware's own SysTick time
/// counts it); `None` counts from now. Returns the guest time from `from`
/// to the stop, exactly; a point already past stops the machine at once.
pub(crate) async fn pass_guest_time_and_stop(
    target: &mut dyn Target,
    board: &BoardProfile,
    icount: bool,
    wanted: Duration,
    from: Option<Duration>,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    let status = target.qmp("query-status", None).await?;
    if status.get("running").and_then(|r| r.as_bool()) == Some(false) {
        let state = status
            .get("status")
            .and_then(|s| s.as_str())
            .unwrap_or("stopped");
        return Err(GuestClockError::Paused(state.to_owned()));
    }
    count_until(target, board, icount, wanted, from, limit).await
}

/// [`pass_guest_time_and_stop`] on a machine that the caller stopped
/// where an earlier wait left it (a power cut's hold-up after its
/// warning): it runs on from there, with no guest time between.
pub(crate) async fn pass_more_guest_time_and_stop(
    target: &mut dyn Target,
    board: &BoardProfile,
    icount: bool,
    wanted: Duration,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    count_until(target, board, icount, wanted, None, limit).await
}

/// Counts guest time until `wanted` has passed since `from` and stops the
/// machine there.
async fn count_until(
    target: &mut dyn Target,
    board: &BoardProfile,
    icount: bool,
    wanted: Duration,
    from: Option<Duration>,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    let clock = board
        .guest_clock
        .ok_or_else(|| GuestClockError::Missing(board.name.clone()))?;
    let started = Instant::now();
    let mut elapsed = Elapsed::start(target, clock, icount).await?;
    let waited = wait(target, &mut elapsed, wanted, from, started, limit).await;
    let finished = Elapsed::finish(target).await;
    let passed = waited?;
    finished?;
    Ok(passed)
}

/// The loop of [`count_until`], from a started count.
async fn wait(
    target: &mut dyn Target,
    elapsed: &mut Elapsed,
    wanted: Duration,
    from: Option<Duration>,
    started: Instant,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    // The guest time from the origin to now, and from now to an origin
    // still ahead.
    let reading = ticks_to_duration(u64::from(elapsed.last), elapsed.clock.hz);
    let (already, lead) = from.map_or((Duration::ZERO, Duration::ZERO), |origin| {
        (
            reading.saturating_sub(origin),
            origin.saturating_sub(reading),
        )
    });
    let goal = (wanted + lead).saturating_sub(already);
    let mut approach = Approach::default();
    let mut passed = Duration::ZERO;
    while passed < goal {
        if let Err(e) = check_limit(passed, goal, started, limit) {
            target.qmp("cont", None).await?;
            return Err(e);
        }
        let pause = approach.pause(goal - passed);
        let polled = Instant::now();
        let now = elapsed
            .run_and_read(target, pause.map(|p| (p, limit)))
            .await?;
        if pause.is_some() {
            approach.polled(polled.elapsed(), now.saturating_sub(passed));
        }
        passed = now;
    }
    Ok((already + passed).saturating_sub(lead))
}

/// A timeout once the wall-clock limit has passed.
fn check_limit(
    passed: Duration,
    wanted: Duration,
    started: Instant,
    limit: Instant,
) -> Result<(), GuestClockError> {
    let now = Instant::now();
    if now >= limit {
        return Err(GuestClockError::Timeout {
            passed,
            wanted,
            waited: now - started,
        });
    }
    Ok(())
}

/// How a wait approaches its point. A busy guest under icount runs many
/// times faster than wall time, so a poll (run, sleep, stop, read) can
/// overshoot by tens of milliseconds of guest time. Polls therefore aim at
/// half of the guest time still to pass, at the fastest rate seen (and at
/// least [`FAST_GUEST`]); within [`MOMENTS_WITHIN`] of the point, or once a
/// poll would take a pause under [`POLL_MIN`], the machine runs in moments
/// instead.
#[derive(Debug)]
struct Approach {
    /// The fastest rate assumed, guest time per wall time.
    fastest: f64,
}

impl Default for Approach {
    fn default() -> Self {
        Approach {
            fastest: FAST_GUEST,
        }
    }
}

impl Approach {
    /// The pause of the next poll with `rest` of guest time to go; `None`
    /// to go on in moments instead.
    fn pause(&self, rest: Duration) -> Option<Duration> {
        if rest <= MOMENTS_WITHIN {
            return None;
        }
        let pause = Duration::try_from_secs_f64(rest.as_secs_f64() / 2.0 / self.fastest)
            .map_or(POLL_MAX, |p| p.min(POLL_MAX));
        (pause >= POLL_MIN).then_some(pause)
    }

    /// Learns from a poll that took `wall` and let `guest` time pass.
    fn polled(&mut self, wall: Duration, guest: Duration) {
        if !wall.is_zero() {
            self.fastest = self.fastest.max(guest.as_secs_f64() / wall.as_secs_f64());
        }
    }
}

/// The counter's value in the monitor's answer to `xp`.
fn counter_value(address: u64, answer: &Value) -> Result<u32, GuestClockError> {
    let text = answer.as_str().unwrap_or_default();
    xp::word(text).ok_or_else(|| GuestClockError::Unreadable {
        address,
        answer: text.trim().to_owned(),
    })
}

fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Approach, MOMENTS_WITHIN, POLL_MAX, ticks_between, ticks_to_duration};

    #[test]
    fn a_reset_counts_from_zero_and_a_wrap_goes_on() {
        // Forward, and forward through a wrap.
        assert_eq!(ticks_between(100, 250), 150);
        assert_eq!(ticks_between(u32::MAX - 9, 5), 15);
        // After a held reset counting starts from zero: the counter holds
        // the ticks since the reset.
        assert_eq!(ticks_between(0, 3_442_086), 3_442_086);
        assert_eq!(ticks_between(0, 250), 250);
    }

    #[test]
    fn ticks_become_guest_time() {
        assert_eq!(
            ticks_to_duration(25_000_000, 25_000_000),
            Duration::from_secs(1)
        );
        assert_eq!(
            ticks_to_duration(1_500, 1_000_000),
            Duration::from_micros(1500)
        );
    }

    #[test]
    fn polls_aim_at_half_the_rest_at_the_fastest_rate_then_give_way() {
        let ms = Duration::from_millis;
        let mut approach = Approach::default();
        // At the assumed rate, a second to go is a pause of 10 ms; near
        // the point, moments.
        assert_eq!(approach.pause(ms(1000)), Some(ms(10)));
        assert_eq!(approach.pause(ms(10_000)), Some(POLL_MAX));
        assert_eq!(approach.pause(MOMENTS_WITHIN), None);
        // A poll saw guest time run 100 times faster than wall time.
        approach.polled(ms(2), ms(200));
        assert_eq!(approach.pause(ms(1000)), Some(ms(5)));
        // A slower poll does not lower the rate the pause assumes.
        approach.polled(ms(10), ms(10));
        assert_eq!(approach.pause(ms(1000)), Some(ms(5)));
        // A poll that would be shorter than the shortest gives way too.
        approach.polled(ms(1), ms(1000));
        assert_eq!(approach.pause(ms(1000)), None);
    }
}
