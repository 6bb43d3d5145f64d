//! Script functions with no step of their own: QMP and the human monitor,
//! run control (`pause`, `resume`, `reset`), metrics, and the run's
//! matrix variant.

use rhai::{Dynamic, Engine, Map};

use super::RunContext;
use crate::script::{Bridge, HostError, Res, from_json, number, to_json};

/// Registers `qmp`, `hmp`, `pause`, `resume`, `reset`, `metric`,
/// `variant` and `wall_ms`.
pub(super) fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
    let b = bridge.clone();
    engine.register_fn("qmp", move |command: &str| -> Res<Dynamic> {
        let command = command.to_owned();
        let value = b.call("qmp", move |ctx| qmp(ctx, &command, None))?;
        Ok(from_json(value))
    });
    let b = bridge.clone();
    engine.register_fn("qmp", move |command: &str, args: Map| -> Res<Dynamic> {
        let command = command.to_owned();
        let args = to_json("qmp", &Dynamic::from_map(args))?;
        let value = b.call("qmp", move |ctx| qmp(ctx, &command, Some(args)))?;
        Ok(from_json(value))
    });
    let b = bridge.clone();
    engine.register_fn("hmp", move |command: &str| {
        let command = command.to_owned();
        b.call("hmp", move |ctx| {
            ctx.host_call(async |ctx: &mut RunContext| Ok(ctx.target.monitor(&command).await?))
        })
    });
    for (function, command) in [
        ("pause", "stop"),
        ("resume", "cont"),
        ("reset", "system_reset"),
    ] {
        let b = bridge.clone();
        engine.register_fn(function, move || {
            b.call(function, move |ctx| qmp(ctx, command, None).map(drop))
        });
    }
    let b = bridge.clone();
    engine.register_fn("metric", move |name: &str, value: Dynamic| {
        let value = number("metric", &value)?;
        let name = name.to_owned();
        b.call("metric", move |ctx| {
            ctx.metrics.insert(name, value);
            Ok(())
        })
    });
    // The matrix variant's name ("" without a matrix), so that one script
    // can serve every variant of a scenario.
    let b = bridge.clone();
    engine.register_fn("variant", move || {
        b.call("variant", |ctx| Ok(ctx.variant.clone().unwrap_or_default()))
    });
    // Wall time since the run began, in ms: for rates (trials per second),
    // never for what a run decides (that stays reproducible from its seed).
    let b = bridge.clone();
    engine.register_fn("wall_ms", move || {
        b.call("wall_ms", |ctx| {
            Ok(ctx.started.elapsed().as_secs_f64() * 1e3)
        })
    });
}

/// Runs a QMP command and returns its `return` value.
fn qmp(
    ctx: &mut RunContext,
    command: &str,
    args: Option<serde_json::Value>,
) -> Result<serde_json::Value, HostError> {
    ctx.host_call(async |ctx: &mut RunContext| Ok(ctx.target.qmp(command, args).await?))
}
