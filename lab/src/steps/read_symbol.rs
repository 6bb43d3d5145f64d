//! `read-symbol:` reads a global variable by name, typed by its debug
//! information, and may check it and record it as a metric; a script's
//! `read_symbol()` returns it.

use rhai::Engine;
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use super::debugger::elf_failure;
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::loader::location::is_symbol;
use crate::loader::raw::{RawScalar, RawShort};
use crate::loader::{ScenarioError, StepSyntax, Validator, loc};
use crate::report::Status;
use crate::script::Bridge;

/// Options of `read-symbol:`.
#[derive(Debug, Clone)]
pub struct ReadSymbol {
    /// The global's name.
    pub name: String,
    /// Store the value as this metric.
    pub metric: Option<String>,
    /// Fail unless the value equals this.
    pub expect: Option<f64>,
}

/// The map form of `read-symbol:`; `name` is required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReadSymbol {
    name: Option<Spanned<String>>,
    metric: Option<Spanned<String>>,
    expect: Option<Spanned<RawScalar>>,
}

impl StepKind for ReadSymbol {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "read-symbol",
        example: "lab_counter",
    };
    type Raw = Spanned<RawShort<RawReadSymbol>>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = match v.short_or_full(raw, "a symbol name or a map")? {
            Ok(name) => RawReadSymbol {
                name: Some(name),
                metric: None,
                expect: None,
            },
            Err(options) => options,
        };
        let name = v.required(options.name, Self::SYNTAX, "name", map)?;
        Ok(ReadSymbol {
            name: v.name(name, "symbol name", is_symbol)?,
            metric: v.metric(options.metric)?,
            expect: options.expect.map(|e| v.number(&e)).transpose()?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let (value, address) = self.read(ctx).await?;
        let mut detail = Detail::new();
        detail.insert("symbol".into(), json!(self.name));
        detail.insert("address".into(), json!(address));
        detail.insert("value".into(), json!(value));
        if let Some(want) = self.expect
            && value != want
        {
            return Err(StepFailure::new(
                Status::Failed,
                format!("`{}` is {value}, expected {want}", self.name),
            ));
        }
        if let Some(metric) = &self.metric {
            ctx.metrics.insert(metric.clone(), value);
        }
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("read_symbol", move |name: &str| {
            let step = ReadSymbol {
                name: name.to_owned(),
                metric: None,
                expect: None,
            };
            b.call("read_symbol", move |ctx| {
                ctx.host_call(async |ctx: &mut RunContext| Ok(step.read(ctx).await?.0))
            })
        });
    }
}

impl ReadSymbol {
    /// Reads the global; returns its value and address.
    async fn read(&self, ctx: &mut RunContext) -> Result<(f64, u64), StepFailure> {
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        let global = elf.global(&self.name).map_err(elf_failure)?;
        let (address, size, ty) = (global.address, global.ty.size(), global.ty);
        let bytes = debugger.read_bytes(address, size).await?;
        Ok((ty.decode(&bytes, elf.little_endian()), address))
    }
}
