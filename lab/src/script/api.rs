//! The functions scripts call: registered with rhai, forwarded to the
//! [`ScriptHost`] through a [`Bridge`].
//!
//! Durations are strings with units, as in YAML (`"250ms"`, `"5s"`); a bare
//! number is refused. Every call that waits is bounded by the scenario's
//! deadline; where the timeout may be left out, the call waits until that
//! deadline.
//!
//! | function | returns |
//! | --- | --- |
//! | `boot()`, `boot(#{board, image, args, halted})` | |
//! | `wait_serial(pattern[, timeout])` | map: named captures and `text` |
//! | `send_serial(text)` | |
//! | `qmp(command[, #{args}])` | the QMP `return` value |
//! | `hmp(command)` | the output (string) |
//! | `pause()`, `resume()`, `reset()` | |
//! | `expect_exit([timeout])` | the exit code |
//! | `attach_debugger([timeout])`, `break_at(location or address)` | |
//! | `continue_to([timeout])` | map: `reason`, `function`, `file`, `line`, `pc` |
//! | `step([count])`, `detach()` | |
//! | `read_register(name)`, `read_memory(address, length)`, `read_symbol(name)` | int, array of ints, float |
//! | `write_memory(address, bytes)`, `write_symbol(name, value)` | |
//! | `metric(name, value)` | |
//! | `assert(condition[, message])` | a failure (not catchable) when false |
//! | `sleep(duration)` | (wall time) |
//! | `sleep_guest(duration)` | the guest time that passed, in µs (at least `duration`) |
//! | `random()`, `random_int(low, high)` | float in [0, 1), int in [low, high] |
//!
//! A failed host call throws a `HostError` (with a `message`) that a script
//! may `catch`; assertions, limits and the deadline cannot be caught.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, Map, Position};

use super::engine::{Abort, HostFailure};
use super::host::{BootOptions, HostError, Interrupt, ScriptHost};
use crate::source::duration;
use crate::source::suggest::did_you_mean;

/// The result of a registered function.
type Res<T> = Result<T, Box<EvalAltResult>>;

/// One host call, run on the thread that owns the host.
pub(crate) type Job = Box<dyn FnOnce(&mut dyn ScriptHost) + Send>;

/// The script's way to the host: host calls travel as [`Job`]s to the thread
/// that holds `&mut dyn ScriptHost`, and their results come back.
#[derive(Clone)]
pub(crate) struct Bridge {
    jobs: mpsc::Sender<Job>,
    deadline: Instant,
    interrupt: Interrupt,
}

impl Bridge {
    /// A bridge sending jobs to `jobs`, for a run that must end by
    /// `deadline` or when `interrupt` is raised.
    pub(crate) fn new(jobs: mpsc::Sender<Job>, deadline: Instant, interrupt: Interrupt) -> Self {
        Self {
            jobs,
            deadline,
            interrupt,
        }
    }

    /// Runs `call` on the host and waits for its result.
    fn call<R: Send + 'static>(
        &self,
        function: &'static str,
        call: impl FnOnce(&mut dyn ScriptHost) -> Result<R, HostError> + Send + 'static,
    ) -> Res<R> {
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |host| {
            // The script thread waits for this reply; it cannot have gone.
            let _ = reply.send(call(host));
        });
        let lost = || {
            error(format!(
                "{function}: internal error: the host stopped answering"
            ))
        };
        self.jobs.send(job).map_err(|_| lost())?;
        match result.recv().map_err(|_| lost())? {
            Ok(value) => Ok(value),
            Err(_) if self.interrupt.is_raised() => Err(abort(Abort::Interrupted)),
            Err(_) if Instant::now() >= self.deadline => Err(abort(Abort::Deadline)),
            Err(e) => Err(EvalAltResult::ErrorRuntime(
                Dynamic::from(HostFailure {
                    function,
                    message: e.message().to_owned(),
                }),
                Position::NONE,
            )
            .into()),
        }
    }

    /// `timeout` shortened to what is left until the deadline.
    fn bounded(&self, timeout: Duration) -> Res<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(abort(Abort::Deadline));
        }
        Ok(timeout.min(left))
    }

    /// A timeout argument (a string with a unit), bounded by the deadline.
    fn timeout(&self, function: &str, value: &Dynamic) -> Res<Duration> {
        self.bounded(parse_duration(function, value)?)
    }

    /// The time left until the deadline: the default timeout.
    fn until_deadline(&self) -> Res<Duration> {
        self.bounded(Duration::MAX)
    }
}

/// Registers the lab's functions on `engine`; `rng` backs `random()` and
/// `random_int()`.
pub(crate) fn register(engine: &mut Engine, bridge: &Bridge, rng: fastrand::Rng) {
    register_target(engine, bridge);
    register_debugger(engine, bridge);
    register_script(engine, bridge, rng);
}

/// The target: boot, serial console, monitor, run control.
fn register_target(engine: &mut Engine, bridge: &Bridge) {
    let b = bridge.clone();
    engine.register_fn("boot", move || {
        b.call("boot", |h| h.boot(BootOptions::default()))
    });
    let b = bridge.clone();
    engine.register_fn("boot", move |options: Map| {
        let options = boot_options(&options)?;
        b.call("boot", move |h| h.boot(options))
    });
    let b = bridge.clone();
    engine.register_fn("wait_serial", move |pattern: &str, timeout: Dynamic| {
        let timeout = b.timeout("wait_serial", &timeout)?;
        wait_serial(&b, pattern, timeout)
    });
    let b = bridge.clone();
    engine.register_fn("wait_serial", move |pattern: &str| {
        let timeout = b.until_deadline()?;
        wait_serial(&b, pattern, timeout)
    });
    let b = bridge.clone();
    engine.register_fn("send_serial", move |text: &str| {
        let text = text.to_owned();
        b.call("send_serial", move |h| h.send_serial(&text))
    });
    let b = bridge.clone();
    engine.register_fn("qmp", move |command: &str| -> Res<Dynamic> {
        let command = command.to_owned();
        let value = b.call("qmp", move |h| h.qmp(&command, None))?;
        Ok(from_json(value))
    });
    let b = bridge.clone();
    engine.register_fn("qmp", move |command: &str, args: Map| -> Res<Dynamic> {
        let command = command.to_owned();
        let args = to_json("qmp", &Dynamic::from_map(args))?;
        let value = b.call("qmp", move |h| h.qmp(&command, Some(args)))?;
        Ok(from_json(value))
    });
    let b = bridge.clone();
    engine.register_fn("hmp", move |command: &str| {
        let command = command.to_owned();
        b.call("hmp", move |h| h.hmp(&command))
    });
    let b = bridge.clone();
    engine.register_fn("pause", move || b.call("pause", |h| h.pause()));
    let b = bridge.clone();
    engine.register_fn("resume", move || b.call("resume", |h| h.resume()));
    let b = bridge.clone();
    engine.register_fn("reset", move || b.call("reset", |h| h.reset()));
    let b = bridge.clone();
    engine.register_fn("expect_exit", move |timeout: Dynamic| {
        let timeout = b.timeout("expect_exit", &timeout)?;
        b.call("expect_exit", move |h| h.expect_exit(timeout))
    });
    let b = bridge.clone();
    engine.register_fn("expect_exit", move || {
        let timeout = b.until_deadline()?;
        b.call("expect_exit", move |h| h.expect_exit(timeout))
    });
}

/// The debugger: attach, breakpoints, stepping, registers and memory.
fn register_debugger(engine: &mut Engine, bridge: &Bridge) {
    let b = bridge.clone();
    engine.register_fn("attach_debugger", move |timeout: Dynamic| {
        let timeout = b.timeout("attach_debugger", &timeout)?;
        b.call("attach_debugger", move |h| h.attach(timeout))
    });
    let b = bridge.clone();
    engine.register_fn("attach_debugger", move || {
        let timeout = b.until_deadline()?;
        b.call("attach_debugger", move |h| h.attach(timeout))
    });
    let b = bridge.clone();
    engine.register_fn("break_at", move |location: &str| {
        let location = location.to_owned();
        b.call("break_at", move |h| h.set_break(&location))
    });
    let b = bridge.clone();
    engine.register_fn("break_at", move |address: INT| {
        let location = format!("{:#x}", unsigned("break_at", "the address", address)?);
        b.call("break_at", move |h| h.set_break(&location))
    });
    let b = bridge.clone();
    engine.register_fn("continue_to", move |timeout: Dynamic| {
        let timeout = b.timeout("continue_to", &timeout)?;
        continue_to(&b, timeout)
    });
    let b = bridge.clone();
    engine.register_fn("continue_to", move || {
        let timeout = b.until_deadline()?;
        continue_to(&b, timeout)
    });
    let b = bridge.clone();
    engine.register_fn("step", move |count: INT| {
        let count = u32::try_from(count)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| error(format!("step: the count must be 1 or more, not {count}")))?;
        b.call("step", move |h| h.step(count))
    });
    let b = bridge.clone();
    engine.register_fn("step", move || b.call("step", |h| h.step(1)));
    let b = bridge.clone();
    engine.register_fn("read_register", move |name: &str| {
        let name = name.to_owned();
        // Registers wider than 63 bits come back as two's complement.
        b.call("read_register", move |h| h.read_register(&name))
            .map(|value| value as INT)
    });
    let b = bridge.clone();
    engine.register_fn("read_memory", move |address: INT, len: INT| -> Res<Array> {
        let address = unsigned("read_memory", "the address", address)?;
        let len = u32::try_from(len).map_err(|_| {
            error(format!(
                "read_memory: the length must be 0 or more, not {len}"
            ))
        })?;
        let bytes = b.call("read_memory", move |h| h.read_memory(address, len))?;
        Ok(bytes
            .into_iter()
            .map(|byte| Dynamic::from_int(INT::from(byte)))
            .collect::<Array>())
    });
    let b = bridge.clone();
    engine.register_fn("read_symbol", move |name: &str| {
        let name = name.to_owned();
        b.call("read_symbol", move |h| h.read_symbol(&name))
    });
    let b = bridge.clone();
    engine.register_fn("write_memory", move |address: INT, bytes: Array| {
        let address = unsigned("write_memory", "the address", address)?;
        let bytes = bytes
            .iter()
            .map(|item| {
                item.as_int()
                    .ok()
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(|| {
                        error(format!(
                            "write_memory: bytes must be integers from 0 to 255, not {item}"
                        ))
                    })
            })
            .collect::<Res<Vec<u8>>>()?;
        b.call("write_memory", move |h| h.write_memory(address, &bytes))
    });
    let b = bridge.clone();
    engine.register_fn("write_symbol", move |name: &str, value: Dynamic| {
        let value = number("write_symbol", &value)?;
        let name = name.to_owned();
        b.call("write_symbol", move |h| h.write_symbol(&name, value))
    });
    let b = bridge.clone();
    engine.register_fn("detach", move || b.call("detach", |h| h.detach()));
}

/// Metrics, assertions, sleeping and the seeded random numbers.
fn register_script(engine: &mut Engine, bridge: &Bridge, rng: fastrand::Rng) {
    let b = bridge.clone();
    engine.register_fn("metric", move |name: &str, value: Dynamic| {
        let value = number("metric", &value)?;
        let name = name.to_owned();
        b.call("metric", move |h| h.metric(&name, value))
    });
    engine.register_fn("assert", |condition: bool, message: &str| {
        assert(condition, message)
    });
    engine.register_fn("assert", |condition: bool| {
        assert(condition, "the condition is false")
    });
    let b = bridge.clone();
    register_duration_fn(engine, "sleep", move |wanted| -> Res<Dynamic> {
        let allowed = b.bounded(wanted)?;
        b.call("sleep", move |h| h.sleep(allowed))?;
        if allowed < wanted {
            return Err(abort(Abort::Deadline));
        }
        Ok(Dynamic::UNIT)
    });
    // Guest time may run faster or slower than wall time: only the wait
    // for it is bounded by the deadline.
    let b = bridge.clone();
    register_duration_fn(engine, "sleep_guest", move |wanted| -> Res<Dynamic> {
        let timeout = b.until_deadline()?;
        let slept = b.call("sleep_guest", move |h| h.sleep_guest(wanted, timeout))?;
        Ok(Dynamic::from_int(
            INT::try_from(slept.as_micros()).unwrap_or(INT::MAX),
        ))
    });
    let rng = Arc::new(Mutex::new(rng));
    let r = Arc::clone(&rng);
    engine.register_fn("random", move || -> Res<FLOAT> {
        Ok(r.lock().map_err(|_| error("random: internal error"))?.f64())
    });
    engine.register_fn("random_int", move |lo: INT, hi: INT| -> Res<INT> {
        if lo > hi {
            return Err(error(format!(
                "random_int: the low bound {lo} is above the high bound {hi}"
            )));
        }
        Ok(rng
            .lock()
            .map_err(|_| error("random_int: internal error"))?
            .i64(lo..=hi))
    });
}

/// `wait_serial`: the match as a map of named captures plus `text`.
fn wait_serial(bridge: &Bridge, pattern: &str, timeout: Duration) -> Res<Map> {
    if let Err(e) = regex::bytes::Regex::new(pattern) {
        return Err(error(format!("wait_serial: invalid pattern: {e}")));
    }
    let pattern = pattern.to_owned();
    let found = bridge.call("wait_serial", move |h| h.wait_serial(&pattern, timeout))?;
    let mut map = Map::new();
    for (name, value) in found.captures {
        map.insert(name.into(), value.into());
    }
    map.insert("text".into(), found.text.into());
    Ok(map)
}

/// `continue_to`: where the target stopped, as a map.
fn continue_to(bridge: &Bridge, timeout: Duration) -> Res<Map> {
    let stop = bridge.call("continue_to", move |h| h.continue_(timeout))?;
    let optional = |value: Option<String>| value.map_or(Dynamic::UNIT, Dynamic::from);
    let mut map = Map::new();
    map.insert("reason".into(), stop.reason.into());
    map.insert("function".into(), optional(stop.function));
    map.insert("file".into(), optional(stop.file));
    map.insert(
        "line".into(),
        stop.line
            .map_or(Dynamic::UNIT, |l| Dynamic::from_int(l.into())),
    );
    map.insert("pc".into(), Dynamic::from_int(stop.pc as INT));
    Ok(map)
}

/// `assert`: an uncatchable failure when `condition` is false.
fn assert(condition: bool, message: &str) -> Res<()> {
    if condition {
        Ok(())
    } else {
        Err(abort(Abort::Assertion(message.to_owned())))
    }
}

/// Registers `name(duration)`, a duration with a unit. Exact types come
/// first, so that rhai's own `sleep(seconds)` is never reached and a bare
/// number gets the lab's error.
fn register_duration_fn(
    engine: &mut Engine,
    name: &'static str,
    f: impl Fn(Duration) -> Res<Dynamic> + Clone + Send + Sync + 'static,
) {
    let call = move |duration: Dynamic| -> Res<Dynamic> { f(parse_duration(name, &duration)?) };
    let c = call.clone();
    engine.register_fn(name, move |v: INT| c(Dynamic::from_int(v)));
    let c = call.clone();
    engine.register_fn(name, move |v: FLOAT| c(Dynamic::from_float(v)));
    engine.register_fn(name, call);
}

/// The options map of `boot(#{...})`.
fn boot_options(map: &Map) -> Res<BootOptions> {
    const KEYS: &[&str] = &["board", "image", "args", "halted"];
    let mut options = BootOptions::default();
    for (key, value) in map {
        let wrong = |what: &str| error(format!("boot: `{key}` must be {what}, not {value}"));
        match key.as_str() {
            "board" => {
                options.board = Some(value.clone().into_string().map_err(|_| wrong("a string"))?)
            }
            "image" => {
                options.image = Some(value.clone().into_string().map_err(|_| wrong("a string"))?)
            }
            "halted" => options.halted = value.as_bool().map_err(|_| wrong("true or false"))?,
            "args" => {
                let items = value
                    .clone()
                    .into_array()
                    .map_err(|_| wrong("an array of strings"))?;
                options.args = items
                    .into_iter()
                    .map(|item| item.into_string().map_err(|_| wrong("an array of strings")))
                    .collect::<Res<_>>()?;
            }
            other => {
                let hint = match did_you_mean(other, KEYS) {
                    Some(best) => format!("; did you mean `{best}`?"),
                    None => String::new(),
                };
                return Err(error(format!(
                    "boot: unknown option `{other}`{hint} (options: board, image, args, halted)"
                )));
            }
        }
    }
    Ok(options)
}

/// A duration argument: a string with a unit.
fn parse_duration(function: &str, value: &Dynamic) -> Res<Duration> {
    let text = if value.is_int() || value.is_float() {
        return Err(error(format!(
            "{function}: the duration {value} needs a unit: write \"{value}s\" or \"{value}ms\""
        )));
    } else if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        text.to_string()
    } else {
        return Err(error(format!(
            "{function}: a duration is a string with a unit, like \"250ms\", not {}",
            value.type_name()
        )));
    };
    duration::parse(&text).map_err(|e| error(format!("{function}: {e}; {}", e.hint())))
}

/// A non-negative integer argument.
fn unsigned(function: &str, what: &str, value: INT) -> Res<u64> {
    u64::try_from(value)
        .map_err(|_| error(format!("{function}: {what} must be 0 or more, not {value}")))
}

/// A number argument (integer or float).
fn number(function: &str, value: &Dynamic) -> Res<f64> {
    if let Ok(v) = value.as_int() {
        Ok(v as f64)
    } else if let Ok(v) = value.as_float() {
        Ok(v)
    } else {
        Err(error(format!(
            "{function}: expected a number, not {}",
            value.type_name()
        )))
    }
}

/// A script value as JSON, for QMP arguments.
fn to_json(function: &str, value: &Dynamic) -> Res<serde_json::Value> {
    use serde_json::Value;
    if value.is_unit() {
        Ok(Value::Null)
    } else if let Ok(v) = value.as_bool() {
        Ok(Value::Bool(v))
    } else if let Ok(v) = value.as_int() {
        Ok(Value::from(v))
    } else if let Ok(v) = value.as_float() {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| error(format!("{function}: {v} has no JSON form")))
    } else if let Some(v) = value.read_lock::<rhai::ImmutableString>() {
        Ok(Value::String(v.to_string()))
    } else if let Some(items) = value.read_lock::<Array>() {
        items.iter().map(|item| to_json(function, item)).collect()
    } else if let Some(map) = value.read_lock::<Map>() {
        map.iter()
            .map(|(key, item)| Ok((key.to_string(), to_json(function, item)?)))
            .collect::<Res<serde_json::Map<_, _>>>()
            .map(Value::Object)
    } else {
        Err(error(format!(
            "{function}: a {} has no JSON form",
            value.type_name()
        )))
    }
}

/// A JSON value as a script value (integers that do not fit become floats).
fn from_json(value: serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(v) => v.into(),
        Value::Number(n) => match n.as_i64() {
            Some(v) => Dynamic::from_int(v),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(v) => v.into(),
        Value::Array(items) => Dynamic::from_array(items.into_iter().map(from_json).collect()),
        Value::Object(map) => Dynamic::from_map(
            map.into_iter()
                .map(|(key, item)| (key.into(), from_json(item)))
                .collect(),
        ),
    }
}

/// A catchable script error with `message`.
fn error(message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.into().into(), Position::NONE).into()
}

/// An uncatchable stop for `reason`.
fn abort(reason: Abort) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(reason), Position::NONE).into()
}
