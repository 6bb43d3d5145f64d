//! Guest time while the guest runs: the board's free-running counter
//! (`guest_clock` in its profile), read through the monitor. QEMU drives
//! the counter from its virtual clock, so under `clock: virtual` it follows
//! icount, idle warps included, and under `clock: wall` it follows the host.

use std::time::Duration;

use tokio::time::Instant;

use super::failure::StepFailure;
use crate::backend::{Target, TargetError};
use crate::board::{BoardProfile, GuestClock};
use crate::qmp::xp;
use crate::report::Status;

/// The shortest and longest pause between two readings of the counter.
const POLL_MIN: Duration = Duration::from_micros(200);
const POLL_MAX: Duration = Duration::from_millis(20);

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
///
/// Every reading is taken with the machine stopped for that instant (QMP
/// `stop`, `xp`, `cont`), so that the power cut that follows a wait falls
/// exactly where the last reading was; stopping does not move guest time.
struct Elapsed {
    clock: GuestClock,
    last: u32,
    ticks: u64,
}

impl Elapsed {
    /// Starts counting from the counter's value now; the machine runs on.
    async fn start(target: &mut dyn Target, clock: GuestClock) -> Result<Self, GuestClockError> {
        target.qmp("stop", None).await?;
        let last = read_counter(target, clock.counter).await;
        target.qmp("cont", None).await?;
        Ok(Elapsed {
            clock,
            last: last?,
            ticks: 0,
        })
    }

    /// Stops the machine and returns the guest time since
    /// [`Elapsed::start`]; the caller lets the machine run on, or not.
    async fn stop_and_read(
        &mut self,
        target: &mut dyn Target,
    ) -> Result<Duration, GuestClockError> {
        target.qmp("stop", None).await?;
        let now = read_counter(target, self.clock.counter).await?;
        tracing::trace!(counter = now, last = self.last, "guest clock reading");
        // A reading behind the last one is not a wrap (that comes from at
        // least half the range ahead) but a discontinuity: the MPS2 FPGAIO
        // COUNTER resets with the board, and under icount it has been seen
        // to step back by more than the time since any reset. The step
        // counts as no progress, and counting goes on from the new value;
        // the time across the step is lost.
        let step = now.wrapping_sub(self.last);
        if step <= u32::MAX / 2 {
            self.ticks += u64::from(step);
        }
        self.last = now;
        Ok(ticks_to_duration(self.ticks, self.clock.hz))
    }
}

/// Lets at least `wanted` of guest time pass, waiting at most until
/// `limit`, and returns the guest time that passed. The pause between
/// readings adapts to how fast guest time runs against wall time, so the
/// overshoot stays a fraction of a poll.
pub(crate) async fn sleep_guest(
    target: &mut dyn Target,
    board: &BoardProfile,
    wanted: Duration,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    let passed = pass_guest_time_and_stop(target, board, wanted, limit).await?;
    target.qmp("cont", None).await?;
    Ok(passed)
}

/// Lets at least `wanted` of guest time pass as [`sleep_guest`] does, and
/// leaves the machine stopped at the first reading past it: for power cuts,
/// the machine stands still where the cut falls. Returns the guest time
/// that passed until that instant, exactly.
pub(crate) async fn pass_guest_time_and_stop(
    target: &mut dyn Target,
    board: &BoardProfile,
    wanted: Duration,
    limit: Instant,
) -> Result<Duration, GuestClockError> {
    let clock = board
        .guest_clock
        .ok_or_else(|| GuestClockError::Missing(board.name.clone()))?;
    let status = target.qmp("query-status", None).await?;
    if status.get("running").and_then(|r| r.as_bool()) == Some(false) {
        let state = status
            .get("status")
            .and_then(|s| s.as_str())
            .unwrap_or("stopped");
        return Err(GuestClockError::Paused(state.to_owned()));
    }
    let started = Instant::now();
    let mut elapsed = Elapsed::start(target, clock).await?;
    loop {
        let passed = elapsed.stop_and_read(target).await?;
        if passed >= wanted {
            return Ok(passed);
        }
        target.qmp("cont", None).await?;
        let now = Instant::now();
        if now >= limit {
            return Err(GuestClockError::Timeout {
                passed,
                wanted,
                waited: now - started,
            });
        }
        let pause = next_pause(wanted - passed, passed, now - started);
        tokio::time::sleep_until((now + pause).min(limit)).await;
    }
}

/// How long to wait before the next reading: the wall time the rest of the
/// guest time should take at the rate seen so far, within the poll bounds.
fn next_pause(rest: Duration, passed: Duration, waited: Duration) -> Duration {
    if passed.is_zero() || waited.is_zero() {
        return POLL_MIN;
    }
    let rate = passed.as_secs_f64() / waited.as_secs_f64();
    Duration::from_secs_f64(rest.as_secs_f64() / rate).clamp(POLL_MIN, POLL_MAX)
}

/// Reads the 32-bit counter at `address` with the monitor's `xp`, which
/// goes through the device's own read handler.
async fn read_counter(target: &mut dyn Target, address: u64) -> Result<u32, GuestClockError> {
    let answer = target.monitor(&xp::command(address)).await?;
    xp::word(&answer).ok_or_else(|| GuestClockError::Unreadable {
        address,
        answer: answer.trim().to_owned(),
    })
}

fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{POLL_MAX, POLL_MIN, next_pause, ticks_to_duration};

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
    fn the_pause_follows_the_rate_within_bounds() {
        let ms = Duration::from_millis;
        // Guest time runs twice as fast as wall time: 10 ms left is 5 ms.
        assert_eq!(next_pause(ms(10), ms(20), ms(10)), ms(5));
        assert_eq!(next_pause(ms(10), Duration::ZERO, ms(10)), POLL_MIN);
        assert_eq!(next_pause(ms(10_000), ms(1), ms(1)), POLL_MAX);
        assert_eq!(next_pause(Duration::from_nanos(1), ms(1), ms(1)), POLL_MIN);
    }
}
