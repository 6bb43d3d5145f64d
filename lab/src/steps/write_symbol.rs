//! `write-symbol:` writes a global variable by name, converting the value
//! to its type; so does a script's `write_symbol()`.

use rhai::{Dynamic, Engine};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::debugger::elf_failure;
use super::{Detail, RunContext, StepFailure, StepKind, run_for_script};
use crate::loader::location::is_symbol;
use crate::loader::raw::RawScalar;
use crate::loader::{ScenarioError, StepSyntax, Validator, loc};
use crate::script::{Bridge, number};

/// Options of `write-symbol:`.
#[derive(Debug, Clone)]
pub struct WriteSymbol {
    /// The global's name.
    pub name: String,
    /// The value, converted to the global's type.
    pub value: f64,
}

/// `write-symbol:` as written; both keys are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawWriteSymbol {
    name: Option<Spanned<String>>,
    value: Option<Spanned<RawScalar>>,
}

impl StepKind for WriteSymbol {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "write-symbol",
        example: "{name: lab_exit_code, value: 42}",
    };
    type Raw = Spanned<RawWriteSymbol>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = raw.value;
        let name = v.required(options.name, Self::SYNTAX, "name", map)?;
        let value = v.required(options.value, Self::SYNTAX, "value", map)?;
        Ok(WriteSymbol {
            name: v.name(name, "symbol name", is_symbol)?,
            value: v.number(&value)?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let debugger = ctx.debugger()?;
        let elf = debugger.elf()?;
        let global = elf.global(&self.name).map_err(elf_failure)?;
        let bytes = global
            .ty
            .encode(self.value, elf.little_endian())
            .map_err(elf_failure)?;
        debugger.write_bytes(global.address, bytes).await?;
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("write_symbol", move |name: &str, value: Dynamic| {
            let step = WriteSymbol {
                name: name.to_owned(),
                value: number("write_symbol", &value)?,
            };
            run_for_script(&b, "write_symbol", step)
        });
    }
}
