//! The bridge between a script and its host, and the helpers bindings use
//! to read arguments.
//!
//! The engine knows no host operation: whoever runs a script registers its
//! functions with [`Bridge::call`], which runs each call against the host
//! the run lends to the script's thread. Durations are strings with units,
//! as in YAML (`"250ms"`, `"5s"`); a bare number is refused. A failed host
//! call throws a `HostError` (with a `message`) that a script may `catch`;
//! assertions, limits and the deadline cannot be caught.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, Map, Position};

use super::engine::{Abort, HostFailure};
use super::host::{HostError, Interrupt};
use crate::source::duration;

/// The result of a registered function.
pub type Res<T> = Result<T, Box<EvalAltResult>>;

/// The host `H` of a run, lent to whoever calls through the bridge (the
/// script's thread) for the length of [`Lent::lend`], one call at a time.
///
/// A host call used to travel to the thread that held the host and its
/// result back again: two thread wake-ups per call, which made a script's
/// `qmp()` cost three times a QMP round trip on a busy machine. Lent, the
/// host is called on the script's own thread.
pub(crate) struct Lent<H> {
    /// The host while it is lent; `None` before and after.
    host: Mutex<Option<NonNull<H>>>,
}

// SAFETY: the pointer is set only by `lend`, from a `&mut H` that `lend`
// holds until it has taken the pointer back, and it is used only under the
// lock; so at most one thread uses the host at a time, and only while the
// lender cannot. `H: Send` makes using it from another thread sound.
unsafe impl<H: Send> Send for Lent<H> {}
// SAFETY: as above; shared access only ever reaches the host under the lock.
unsafe impl<H: Send> Sync for Lent<H> {}

impl<H> Default for Lent<H> {
    fn default() -> Self {
        Self {
            host: Mutex::new(None),
        }
    }
}

impl<H> Lent<H> {
    /// Lends `host` while `f` runs: calls through the bridge reach it (from
    /// any thread, one at a time) until `f` returns or unwinds.
    pub(crate) fn lend<R>(&self, host: &mut H, f: impl FnOnce() -> R) -> R {
        /// Takes the host back however `f` ends, waiting for a call in progress.
        struct Reclaim<'a, H>(&'a Lent<H>);
        impl<H> Drop for Reclaim<'_, H> {
            fn drop(&mut self) {
                *self.0.lock() = None;
            }
        }
        *self.lock() = Some(NonNull::from(host));
        let _reclaim = Reclaim(self);
        f()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<NonNull<H>>> {
        self.host.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The script's way to its host `H`: host calls run against the host that
/// the run lends, and their results come back.
pub struct Bridge<H> {
    host: Arc<Lent<H>>,
    deadline: Instant,
    interrupt: Interrupt,
}

impl<H> Clone for Bridge<H> {
    fn clone(&self) -> Self {
        Self {
            host: Arc::clone(&self.host),
            deadline: self.deadline,
            interrupt: self.interrupt.clone(),
        }
    }
}

impl<H: Send + 'static> Bridge<H> {
    /// A bridge to the host lent through `host`, for a run that must end by
    /// `deadline` or when `interrupt` is raised.
    pub(crate) fn new(host: Arc<Lent<H>>, deadline: Instant, interrupt: Interrupt) -> Self {
        Self {
            host,
            deadline,
            interrupt,
        }
    }

    /// Runs `call` on the host and returns its result.
    pub fn call<R: Send + 'static>(
        &self,
        function: &'static str,
        call: impl FnOnce(&mut H) -> Result<R, HostError> + Send + 'static,
    ) -> Res<R> {
        let result = {
            let mut lent = self.host.lock();
            let Some(host) = lent.as_mut() else {
                return Err(error(format!(
                    "{function}: internal error: the host stopped answering"
                )));
            };
            // SAFETY: the host is lent (see `Lent`), and the lock held
            // until the call returns keeps every other use out.
            call(unsafe { host.as_mut() })
        };
        match result {
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
    pub fn bounded(&self, timeout: Duration) -> Res<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(abort(Abort::Deadline));
        }
        Ok(timeout.min(left))
    }

    /// A timeout argument (a string with a unit), bounded by the deadline.
    pub fn timeout(&self, function: &str, value: &Dynamic) -> Res<Duration> {
        self.bounded(parse_duration(function, value)?)
    }

    /// The time left until the deadline: the default timeout.
    pub fn until_deadline(&self) -> Res<Duration> {
        self.bounded(Duration::MAX)
    }
}

/// The engine's own functions, which need no host: assertions and the
/// seeded random numbers (`rng` backs `random()` and `random_int()`).
pub(crate) fn register_engine_functions(engine: &mut Engine, rng: fastrand::Rng) {
    engine.register_fn("assert", |condition: bool, message: &str| {
        assert(condition, message)
    });
    engine.register_fn("assert", |condition: bool| {
        assert(condition, "the condition is false")
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
pub(crate) fn register_duration_fn(
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

/// A duration argument: a string with a unit.
pub(crate) fn parse_duration(function: &str, value: &Dynamic) -> Res<Duration> {
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
pub(crate) fn unsigned(function: &str, what: &str, value: INT) -> Res<u64> {
    u64::try_from(value)
        .map_err(|_| error(format!("{function}: {what} must be 0 or more, not {value}")))
}

/// A number argument (integer or float).
pub(crate) fn number(function: &str, value: &Dynamic) -> Res<f64> {
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
pub(crate) fn to_json(function: &str, value: &Dynamic) -> Res<serde_json::Value> {
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
pub(crate) fn from_json(value: serde_json::Value) -> Dynamic {
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
pub(crate) fn error(message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.into().into(), Position::NONE).into()
}

/// An uncatchable stop for `reason`.
pub(crate) fn abort(reason: Abort) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(reason), Position::NONE).into()
}
