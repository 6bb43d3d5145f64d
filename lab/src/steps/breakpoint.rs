//! `break:` sets a breakpoint at a symbol, an address or a source line; so
//! does a script's `break_at()`. The insertion's round trip through the
//! bridge is the metric `breakpoint_ms`.

use rhai::{Engine, INT};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use super::debugger::{insert_location, resolve_code};
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::gdb::BreakKind;
use crate::loader::raw::{RawScalar, RawShort};
use crate::loader::{CodeLocation, ScenarioError, StepSyntax, Validator, loc, parse_code_location};
use crate::script::{Bridge, HostError, unsigned};

/// Options of `break:` (`break: main` is short for `break: {at: main}`).
#[derive(Debug, Clone)]
pub struct Break {
    /// Where to stop.
    pub at: CodeLocation,
    /// Use a hardware breakpoint instead of a software one.
    pub hardware: bool,
}

/// The map form of `break:`; `at` is required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawBreak {
    at: Option<Spanned<RawScalar>>,
    #[serde(default)]
    hardware: bool,
}

impl StepKind for Break {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "break",
        example: "main",
    };
    type Raw = Spanned<RawShort<RawBreak>>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        match raw.value {
            RawShort::Short(scalar) => Ok(Break {
                at: v.code_location(&Spanned {
                    value: scalar,
                    referenced: raw.referenced,
                    defined: raw.defined,
                })?,
                hardware: false,
            }),
            RawShort::Full(options) => Ok(Break {
                at: v.code_location(&v.required(options.at, Self::SYNTAX, "at", map)?)?,
                hardware: options.hardware,
            }),
        }
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        let address = resolve_code(&elf, &self.at)?;
        let kind = if self.hardware {
            BreakKind::Hardware
        } else {
            BreakKind::Software
        };
        let round_trip = debugger.insert_break(kind, address).await?;
        ctx.metrics.insert("breakpoint_ms".into(), round_trip);
        let mut detail = Detail::new();
        detail.insert("address".into(), json!(address));
        insert_location(&mut detail, elf.symbolize(address));
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("break_at", move |location: &str| {
            let location = location.to_owned();
            b.call("break_at", move |ctx| break_at(ctx, &location))
        });
        let b = bridge.clone();
        engine.register_fn("break_at", move |address: INT| {
            let location = format!("{:#x}", unsigned("break_at", "the address", address)?);
            b.call("break_at", move |ctx| break_at(ctx, &location))
        });
    }
}

/// A script's `break_at`: a software breakpoint at `location`.
fn break_at(ctx: &mut RunContext, location: &str) -> Result<(), HostError> {
    let step = Break {
        at: parse_code_location(location).map_err(HostError::new)?,
        hardware: false,
    };
    ctx.host_call(async |ctx: &mut RunContext| step.run(ctx).await.map(drop))
}
