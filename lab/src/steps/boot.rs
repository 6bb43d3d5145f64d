//! `boot:` starts the target; a script's `boot()` starts it again, or
//! boots another board or image in its place.

use rhai::{Engine, Map};
use serde::Deserialize;

use super::{RunContext, StepFailure, StepKind};
use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, HostError, Res, error};
use crate::source::suggest::did_you_mean;

/// Options of `boot:`.
#[derive(Debug, Clone, Default)]
pub struct Boot {
    /// Start with the CPU paused (for a debugger).
    pub halted: bool,
}

/// `boot:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawBoot {
    #[serde(default)]
    halted: bool,
}

impl StepKind for Boot {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "boot",
        example: "{}",
    };
    const NEEDS_TARGET: bool = false;
    type Raw = RawBoot;

    fn load(raw: RawBoot, _: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(Boot { halted: raw.halted })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<super::Detail>, StepFailure> {
        ctx.target.boot(self.halted).await?;
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("boot", move || {
            b.call("boot", |ctx| boot(ctx, BootOptions::default()))
        });
        let b = bridge.clone();
        engine.register_fn("boot", move |options: Map| {
            let options = BootOptions::from_map(&options)?;
            b.call("boot", move |ctx| boot(ctx, options))
        });
    }
}

/// Options of a script's `boot(#{...})`: overrides of the scenario's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BootOptions {
    /// A board profile instead of the scenario's.
    board: Option<String>,
    /// An image instead of the scenario's.
    image: Option<String>,
    /// Guest program arguments (empty: the scenario's).
    args: Vec<String>,
    /// Start with the CPU paused.
    halted: bool,
}

impl BootOptions {
    /// The options map of `boot(#{...})`.
    fn from_map(map: &Map) -> Res<Self> {
        const KEYS: &[&str] = &["board", "image", "args", "halted"];
        let mut options = BootOptions::default();
        for (key, value) in map {
            let wrong = |what: &str| error(format!("boot: `{key}` must be {what}, not {value}"));
            match key.as_str() {
                "board" => {
                    options.board =
                        Some(value.clone().into_string().map_err(|_| wrong("a string"))?)
                }
                "image" => {
                    options.image =
                        Some(value.clone().into_string().map_err(|_| wrong("a string"))?)
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
}

/// A script's `boot()`: the run's target started again, or another board
/// or image booted in its place.
fn boot(ctx: &mut RunContext, options: BootOptions) -> Result<(), HostError> {
    let BootOptions {
        board,
        image,
        args,
        halted,
    } = options;
    ctx.host_call(async move |ctx: &mut RunContext| {
        if board.is_some() || image.is_some() {
            ctx.switch_target(board.as_deref(), image.as_deref(), args)
                .await?;
            return Ok(ctx.target.boot(halted).await?);
        }
        // A debugger session belongs to the QEMU it attached to.
        drop(ctx.debugger.take());
        let args = (!args.is_empty()).then_some(args);
        Ok(ctx.target.restart(halted, args).await?)
    })
}
