//! `read-register:` reads a register by name, may check it and record it
//! as a metric; a script's `read_register()` returns it.

use rhai::{Engine, INT};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use super::{Detail, RunContext, StepFailure, StepKind};
use crate::loader::location::{self, is_identifier};
use crate::loader::raw::{RawScalar, RawShort};
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::Status;
use crate::script::Bridge;

/// Options of `read-register:`.
#[derive(Debug, Clone)]
pub struct ReadRegister {
    /// The register's name as gdb knows it (`pc`, `r0`, `xpsr`, `msp`).
    pub name: String,
    /// Store the value as this metric.
    pub metric: Option<String>,
    /// Fail unless the value equals this.
    pub expect: Option<u64>,
}

/// The map form of `read-register:`; `name` is required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReadRegister {
    name: Option<Spanned<String>>,
    metric: Option<Spanned<String>>,
    expect: Option<Spanned<RawScalar>>,
}

impl StepKind for ReadRegister {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "read-register",
        example: "pc",
    };
    type Raw = Spanned<RawShort<RawReadRegister>>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = match v.short_or_full(raw, "a register name or a map")? {
            Ok(name) => RawReadRegister {
                name: Some(name),
                metric: None,
                expect: None,
            },
            Err(options) => options,
        };
        let name = v.required(options.name, Self::SYNTAX, "name", map)?;
        let expect = match options.expect {
            Some(expect) => Some(location::unsigned(&expect.value).ok_or_else(|| {
                v.error(
                    loc(&expect.referenced),
                    ErrorKind::Mismatch {
                        expected: "an integer from 0, or `0x` and hex digits".to_owned(),
                        found: expect.value.describe(),
                    },
                )
            })?),
            None => None,
        };
        Ok(ReadRegister {
            name: v.name(name, "register name", is_identifier)?,
            metric: v.metric(options.metric)?,
            expect,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let value = ctx.debugger()?.read_register(&self.name).await?;
        let mut detail = Detail::new();
        detail.insert("register".into(), json!(self.name));
        detail.insert("value".into(), json!(value));
        if let Some(want) = self.expect
            && value != want
        {
            return Err(StepFailure::new(
                Status::Failed,
                format!("register `{}` is {value:#x}, expected {want:#x}", self.name),
            ));
        }
        if let Some(metric) = &self.metric {
            ctx.metrics.insert(metric.clone(), value as f64);
        }
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("read_register", move |name: &str| {
            let name = name.to_owned();
            // Registers wider than 63 bits come back as two's complement.
            b.call("read_register", move |ctx| {
                ctx.host_call(async |ctx: &mut RunContext| {
                    ctx.debugger()?.read_register(&name).await
                })
            })
            .map(|value| value as INT)
        });
    }
}
