//! `serial-load:` sends numbered messages over the serial console at a set
//! rate of host wall time and times each reply on the host's monotonic
//! clock, from the write of a message's last byte to the arrival of its
//! reply line. A reader runs beside the sender, so a due send never waits
//! for replies and replies are never left unread while sending.
//!
//! A script's `serial_load(#{count, rate, send, reply, timeout, drain})`
//! runs the same load and returns its metrics as a map, without adding
//! them to the run's: a script that runs several loads (a rate sweep)
//! records what it concludes with `metric()`.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use rhai::{Dynamic, Engine, Map};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::failure::{ended_early, metric_value};
use super::{Detail, RunContext, StepFailure, StepKind, ms};
use crate::backend::Target;
use crate::console::{Console, ConsoleError, LineReader, NextLine};
use crate::loader::raw::RawScalar;
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::{Metrics, Status};
use crate::report::series::{LATENCY, replace_series};
use crate::script::{Bridge, Res, error, number, parse_duration};

/// Options of `serial-load:`.
#[derive(Debug, Clone)]
pub struct SerialLoad {
    /// How many messages (at least 1).
    pub count: u32,
    /// Messages per second of host wall time (above 0).
    pub rate: f64,
    /// The message, with `{seq}` where its number (0 to count - 1) goes.
    pub send: String,
    /// A reply; its group `seq` names the message it answers, its other
    /// named groups are recorded as their maximum (`<name>_max`).
    pub reply: regex::bytes::Regex,
    /// Per-step deadline, for sending and draining.
    pub timeout: Option<Duration>,
    /// After the last send, how long stragglers may still arrive.
    pub drain: Duration,
}

/// `serial-load:` as written; all but `timeout` and `drain` are required,
/// checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawSerialLoad {
    count: Option<Spanned<i64>>,
    rate: Option<Spanned<RawScalar>>,
    send: Option<Spanned<String>>,
    reply: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    drain: Option<Spanned<String>>,
}

/// How long `serial-load` waits for stragglers when `drain:` is not given.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(2);

/// The slowest rate a load may ask for, in messages per second (one
/// message every 1000 s): the sending of the most messages a load may have
/// must be a duration that the lab can count.
const MIN_RATE: f64 = 0.001;
/// The fastest rate a load may ask for, in messages per second.
const MAX_RATE: f64 = 100_000.0;
/// The most messages a load may have.
const MAX_COUNT: u32 = 1_000_000;

impl StepKind for SerialLoad {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "serial-load",
        example: "{count: 100, rate: 10, send: \"MSG {seq}\\n\", reply: 'ACK (?P<seq>\\d+)'}",
    };
    type Raw = Spanned<RawSerialLoad>;

    fn load(raw: Spanned<RawSerialLoad>, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = raw.value;
        let count = v.required(options.count, Self::SYNTAX, "count", map)?;
        let count = v.in_range("`count`", &count, 1u32, MAX_COUNT)?;
        let rate = v.required(options.rate, Self::SYNTAX, "rate", map)?;
        let rate = match rate.value {
            RawScalar::Unsigned(v) => Some(v as f64),
            RawScalar::Float(v) => Some(v),
            _ => None,
        }
        .filter(|r| (MIN_RATE..=MAX_RATE).contains(r))
        .ok_or_else(|| {
            v.error(
                loc(&rate.referenced),
                ErrorKind::Mismatch {
                    expected: format!(
                        "a rate in messages per second, from {MIN_RATE} to {MAX_RATE}"
                    ),
                    found: rate.value.describe(),
                },
            )
        })?;
        let send = v.required(options.send, Self::SYNTAX, "send", map)?;
        if !send.value.contains("{seq}") {
            return Err(v.error(
                loc(&send.referenced),
                ErrorKind::Other(
                    "`send` has no `{seq}`: each message carries its number so that replies can \
                     be matched to it, like `send: \"MSG {seq}\\n\"`"
                        .into(),
                ),
            ));
        }
        let reply = v.required(options.reply, Self::SYNTAX, "reply", map)?;
        let reply_at = loc(&reply.referenced);
        let reply = v.pattern(&reply)?;
        if !reply.capture_names().flatten().any(|n| n == "seq") {
            return Err(v.error(
                reply_at,
                ErrorKind::Other(
                    "the reply pattern has no named group `seq`: write `(?P<seq>\\d+)` where the \
                     reply carries the message's number"
                        .into(),
                ),
            ));
        }
        let timeout = v.optional_duration(options.timeout.as_ref())?;
        let sending = Duration::from_secs_f64(f64::from(count - 1) / rate);
        if let (Some(t), Some(limit)) = (&options.timeout, timeout)
            && sending >= limit
        {
            return Err(v.error(
                loc(&t.referenced),
                ErrorKind::Other(format!(
                    "{count} messages at {rate} per second take {} to send, longer than the \
                     step's timeout of {}",
                    humantime::format_duration(Duration::from_millis(
                        u64::try_from(sending.as_millis()).unwrap_or(u64::MAX)
                    )),
                    humantime::format_duration(limit)
                )),
            ));
        }
        Ok(SerialLoad {
            count,
            rate,
            send: send.value,
            reply,
            timeout,
            drain: v
                .optional_duration(options.drain.as_ref())?
                .unwrap_or(DEFAULT_DRAIN),
        })
        }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let detail = serial_load(self, &mut *ctx.target, &mut ctx.metrics, &mut ctx.series).await?;
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("serial_load", move |options: Map| -> Res<Map> {
            let step = SerialLoad::from_map(&options)?;
            let bound = step.timeout.unwrap_or(Duration::MAX);
            let step = SerialLoad {
                timeout: Some(b.bounded(bound)?),
                ..step
            };
            let metrics = b.call("serial_load", move |ctx| {
                ctx.host_call(async move |ctx: &mut RunContext| {
                    let mut metrics = Metrics::new();
                    serial_load(&step, &mut *ctx.target, &mut metrics, &mut BTreeMap::new())
                        .await?;
                    Ok(metrics)
                })
            })?;
            Ok(metrics
                .into_iter()
                .map(|(name, value)| (name.into(), Dynamic::from_float(value)))
                .collect())
        });
    }
}

impl SerialLoad {
    /// The options map of a script's `serial_load(#{...})`, checked as the
    /// step's YAML is.
    fn from_map(map: &Map) -> Res<Self> {
        const KEYS: &str = "count, rate, send, reply, timeout, drain";
        let text = |key: &str| -> Res<Option<String>> {
            map.get(key)
                .map(|v| {
                    v.clone().into_string().map_err(|_| {
                        error(format!("serial_load: `{key}` must be a string, not {v}"))
                    })
                })
                .transpose()
        };
        let duration = |key: &str| -> Res<Option<Duration>> {
            map.get(key)
                .map(|v| parse_duration("serial_load", v))
                .transpose()
        };
        if let Some(key) = map.keys().find(|k| !KEYS.split(", ").any(|known| known == k.as_str())) {
            return Err(error(format!(
                "serial_load: unknown option `{key}` (options: {KEYS})"
            )));
        }
        let missing = |key: &str| error(format!("serial_load: `{key}` is required (options: {KEYS})"));
        let count = map.get("count").ok_or_else(|| missing("count"))?;
        let count = count
            .as_int()
            .ok()
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| (1..=MAX_COUNT).contains(c))
            .ok_or_else(|| {
                error(format!("serial_load: `count` must be a whole number from 1 to {MAX_COUNT}, not {count}"))
            })?;
        let rate = number("serial_load", map.get("rate").ok_or_else(|| missing("rate"))?)?;
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(error(format!(
                "serial_load: `rate` must be from {MIN_RATE} to {MAX_RATE} messages per second, not {rate}"
            )));
        }
        let send = text("send")?.ok_or_else(|| missing("send"))?;
        if !send.contains("{seq}") {
            return Err(error(
                "serial_load: `send` has no `{seq}`: each message carries its number so that \
                 replies can be matched to it",
            ));
        }
        let reply = text("reply")?.ok_or_else(|| missing("reply"))?;
        let reply = regex::bytes::Regex::new(&reply)
            .map_err(|e| error(format!("serial_load: invalid `reply` pattern: {e}")))?;
        if !reply.capture_names().flatten().any(|n| n == "seq") {
            return Err(error(
                "serial_load: the reply pattern has no named group `seq`: write `(?P<seq>\\d+)` \
                 where the reply carries the message's number",
            ));
        }
        Ok(SerialLoad {
            count,
            rate,
            send,
            reply,
            timeout: duration("timeout")?,
            drain: duration("drain")?.unwrap_or(DEFAULT_DRAIN),
        })
    }
}

/// What the receiver saw.
#[derive(Debug, Default)]
struct Replies {
    /// Round trip of each answered message, by sequence number.
    latency: Vec<Option<Duration>>,
    /// Replies for no message sent, or a second one for the same message.
    unexpected: u64,
    /// The largest value of each other named group.
    maxima: BTreeMap<String, f64>,
}

/// Why sending or receiving stopped early.
enum Stop {
    /// The step failed (the deadline, a capture that is not a number).
    Failed(StepFailure),
    /// The console closed.
    Closed(ConsoleError),
}

impl From<StepFailure> for Stop {
    fn from(failure: StepFailure) -> Self {
        Stop::Failed(failure)
    }
}

/// Latency statistics in µs.
#[derive(Debug, PartialEq)]
struct Latencies {
    /// The mean.
    pub mean: f64,
    /// The median (nearest rank).
    pub p50: f64,
    /// The 99th percentile (nearest rank).
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

impl Latencies {
    /// Statistics of `samples` (µs); `None` when there are none.
    fn of(samples: &mut [f64]) -> Option<Latencies> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = samples.len();
            let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples[index]
        };
        Some(Latencies {
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// Runs `serial-load` and records its metrics.
async fn serial_load(
    step: &SerialLoad,
    target: &mut dyn Target,
    metrics: &mut Metrics,
    series: &mut BTreeMap<String, Vec<[f64; 2]>>,
) -> Result<Detail, StepFailure> {
    let started = Instant::now();
    let deadline = step.timeout.map(|t| started + t);
    let count = usize::try_from(step.count).unwrap_or(usize::MAX);
    let sent_at: Mutex<Vec<Instant>> = Mutex::new(Vec::with_capacity(count));
    let (done, done_at) = watch::channel(None::<Instant>);
    let console = target.console()?;
    let lines = console.lines();
    let outcome = tokio::try_join!(
        send(step, console, deadline, &sent_at, done),
        receive(step, lines, deadline, &sent_at, done_at),
    );
    let replies = match outcome {
        Ok(((), replies)) => replies,
        Err(Stop::Failed(failure)) => return Err(failure),
        Err(Stop::Closed(closed)) => return Err(ended_early(target, closed).await),
    };
    let sent = sent_at.into_inner().unwrap_or_else(PoisonError::into_inner);
    let points = latency_points(&replies.latency);
    let mut latencies: Vec<f64> = points.iter().map(|&[_, us]| us).collect();
    let received = latencies.len();
    let lost = sent.len() - received;
    let mut m = Metrics::new();
    m.insert("sent".to_owned(), sent.len() as f64);
    m.insert("received".to_owned(), received as f64);
    m.insert("lost".to_owned(), lost as f64);
    m.insert(
        "loss_ppm".to_owned(),
        (lost as f64 / sent.len() as f64 * 1e6).round(),
    );
    m.insert("unexpected".to_owned(), replies.unexpected as f64);
    if let (Some(first), Some(last)) = (sent.first(), sent.last())
        && last > first
    {
        let span = last.duration_since(*first).as_secs_f64();
        m.insert(
            "achieved_rate".to_owned(),
            ((sent.len() - 1) as f64 / span * 1000.0).round() / 1000.0,
        );
    }
    if let Some(l) = Latencies::of(&mut latencies) {
        m.insert("latency_mean_us".to_owned(), l.mean.round());
        m.insert("latency_p50_us".to_owned(), l.p50);
        m.insert("latency_p99_us".to_owned(), l.p99);
        m.insert("latency_max_us".to_owned(), l.max);
    }
    for (name, max) in &replies.maxima {
        m.insert(format!("{name}_max"), *max);
    }
    let mut detail: Detail = m.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    detail.insert("rate".into(), json!(step.rate));
    detail.insert("duration_ms".into(), json!(ms(started.elapsed())));
    metrics.extend(m);
    replace_series(series, LATENCY, [(LATENCY.to_owned(), points)]);
    Ok(detail)
}

/// Each answered message as `[number, round trip in µs]`, in number order.
fn latency_points(latency: &[Option<Duration>]) -> Vec<[f64; 2]> {
    latency
        .iter()
        .enumerate()
        .filter_map(|(seq, d)| Some([seq as f64, (d.as_ref()?.as_secs_f64() * 1e6).round()]))
        .collect()
}

/// Sends message `seq` when it is due (`started + seq / rate`): late ones
/// go at once, one after another, never ahead of their time.
async fn send(
    step: &SerialLoad,
    console: &mut Console,
    deadline: Option<Instant>,
    sent_at: &Mutex<Vec<Instant>>,
    done: watch::Sender<Option<Instant>>,
) -> Result<(), Stop> {
    let start = Instant::now();
    for seq in 0..step.count {
        let due = start + Duration::from_secs_f64(f64::from(seq) / step.rate);
        if deadline.is_some_and(|d| due >= d) {
            return Err(too_slow(step, seq));
        }
        tokio::time::sleep_until(due).await;
        let message = step.send.replace("{seq}", &seq.to_string());
        let write = console.send(message.as_bytes());
        let written = match deadline {
            Some(d) => tokio::time::timeout_at(d, write)
                .await
                .map_err(|_| too_slow(step, seq))?,
            None => write.await,
        };
        match written {
            Ok(()) => sent_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Instant::now()),
            Err(e) => return Err(Stop::Closed(e)),
        }
    }
    // The receiver may have stopped waiting already: nothing to tell then.
    let _ = done.send(Some(Instant::now()));
    Ok(())
}

/// The step's deadline came before message `seq` went out.
fn too_slow(step: &SerialLoad, seq: u32) -> Stop {
    Stop::Failed(StepFailure::new(
        Status::Timeout,
        format!(
            "the step's timeout ended the load with {seq} of {} messages sent (rate {} per second)",
            step.count, step.rate
        ),
    ))
}

/// Reads replies until every message is answered, or `drain` after the
/// last send, or the deadline.
async fn receive(
    step: &SerialLoad,
    mut lines: LineReader,
    deadline: Option<Instant>,
    sent_at: &Mutex<Vec<Instant>>,
    mut done_at: watch::Receiver<Option<Instant>>,
) -> Result<Replies, Stop> {
    let count = usize::try_from(step.count).unwrap_or(usize::MAX);
    let mut replies = Replies {
        latency: vec![None; count],
        ..Replies::default()
    };
    let mut answered = 0usize;
    let mut last = String::new();
    while answered < count {
        let stop = match *done_at.borrow() {
            Some(done) => Some(deadline.map_or(done + step.drain, |d| d.min(done + step.drain))),
            None => deadline,
        };
        let sending = done_at.borrow().is_none();
        let next = tokio::select! {
            next = lines.next(stop) => next,
            // The last message went out: wait at most `drain` from now on.
            changed = done_at.changed(), if sending => {
                if changed.is_err() {
                    // The sender stopped early; its error ends the step.
                    std::future::pending::<()>().await;
                }
                continue;
            }
        };
        let line = match next {
            NextLine::Line(line) => line,
            NextLine::TimedOut { .. } => break,
            NextLine::Closed { tail } => {
                return Err(Stop::Closed(ConsoleError::Closed {
                    pattern: step.reply.as_str().to_owned(),
                    tail: if tail.is_empty() { last } else { tail },
                }));
            }
        };
        if let Some(caps) = step.reply.captures(line.text.as_bytes()) {
            let seq = caps
                .name("seq")
                .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
                .and_then(|s| s.trim().parse::<usize>().ok());
            let sent = seq.and_then(|seq| {
                let sent = sent_at.lock().unwrap_or_else(PoisonError::into_inner);
                sent.get(seq).map(|&at| (seq, at))
            });
            match sent {
                Some((seq, at)) if replies.latency[seq].is_none() => {
                    replies.latency[seq] = Some(line.at.saturating_duration_since(at));
                    answered += 1;
                }
                _ => replies.unexpected += 1,
            }
            for name in step.reply.capture_names().flatten() {
                if name == "seq" {
                    continue;
                }
                if let Some(m) = caps.name(name) {
                    let value = metric_value(name, &String::from_utf8_lossy(m.as_bytes()))?;
                    let max = replies.maxima.entry(name.to_owned()).or_insert(value);
                    *max = max.max(value);
                }
            }
        }
        last = line.text;
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_points_skip_lost_messages_and_keep_their_numbers() {
        let latency = [
            Some(Duration::from_micros(1500)),
            None,
            Some(Duration::from_nanos(2_400_600)),
        ];
        assert_eq!(
            latency_points(&latency),
            [[0.0, 1500.0], [2.0, 2401.0]]
        );
    }

    #[test]
    fn latencies_use_the_nearest_rank() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let l = Latencies::of(&mut samples).unwrap();
        assert_eq!(
            l,
            Latencies {
                mean: 50.5,
                p50: 50.0,
                p99: 99.0,
                max: 100.0
            }
        );
        let one = Latencies::of(&mut [7.0]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Latencies::of(&mut []), None);
    }
}
