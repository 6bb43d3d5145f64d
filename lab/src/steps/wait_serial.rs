//! `wait-serial:` waits for a regex on the serial console; its named
//! groups become metrics. A script's `wait_serial()` returns them instead.

use std::time::Duration;

use regex::bytes::Regex;
use rhai::{Dynamic, Engine, Map};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::failure::{ended_early, metric_value};
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::backend::TargetError;
use crate::console::{ConsoleError, SerialMatch};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res, error};

/// Options of `wait-serial:`.
#[derive(Debug, Clone)]
pub struct WaitSerial {
    /// The compiled pattern; named groups become metrics.
    pub pattern: Regex,
    /// Per-step deadline; `None` means the scenario's deadline bounds it.
    pub timeout: Option<Duration>,
}

/// `wait-serial:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawWaitSerial {
    #[serde(rename = "match")]
    pattern: Spanned<String>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for WaitSerial {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "wait-serial",
        example: "{match: 'REGEX', timeout: 5s}",
    };
    type Raw = RawWaitSerial;

    fn load(raw: RawWaitSerial, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(WaitSerial {
            pattern: v.pattern(&raw.pattern)?,
            timeout: v.optional_duration(raw.timeout.as_ref())?,
        })
    }

    /// Its detail, when the pattern has named groups: `captured`, their
    /// names in the pattern's order (the order the metrics were seen in,
    /// which `lab report --html` reads boot phases by).
    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let mut captured = Vec::new();
        for (name, text) in self.wait(ctx).await?.captures {
            let value = metric_value(&name, &text)?;
            captured.push(serde_json::Value::from(name.as_str()));
            ctx.metrics.insert(name, value);
        }
        Ok((!captured.is_empty())
            .then(|| Detail::from([("captured".to_owned(), captured.into())])))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
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
    }
}

impl WaitSerial {
    /// Waits for the pattern; a console that closes first is told apart
    /// from a crash and a clean exit.
    async fn wait(&self, ctx: &mut RunContext) -> Result<SerialMatch, StepFailure> {
        let target = &mut *ctx.target;
        // Without a timeout of its own, the scenario's deadline bounds the wait.
        match target.console()?.wait_for(&self.pattern, self.timeout).await {
            Ok(found) => Ok(found),
            Err(closed @ ConsoleError::Closed { .. }) => Err(ended_early(target, closed).await),
            Err(other) => Err(TargetError::from(other).into()),
        }
    }
}

/// A script's `wait_serial`: the match as a map of named captures plus `text`.
fn wait_serial(bridge: &Bridge<RunContext>, pattern: &str, timeout: Duration) -> Res<Map> {
    let pattern = Regex::new(pattern)
        .map_err(|e| error(format!("wait_serial: invalid pattern: {e}")))?;
    let step = WaitSerial {
        pattern,
        timeout: Some(timeout),
    };
    let found = bridge.call("wait_serial", move |ctx| {
        ctx.host_call(async |ctx: &mut RunContext| step.wait(ctx).await)
    })?;
    let mut map = Map::new();
    for (name, value) in found.captures {
        map.insert(name.into(), value.into());
    }
    map.insert("text".into(), found.text.into());
    Ok(map)
}
