//! `write-memory:` writes bytes at an address or a symbol; so does a
//! script's `write_memory()`.

use rhai::{Array, Engine, INT};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::debugger::resolve_data;
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::loader::raw::RawScalar;
use crate::loader::{DataLocation, ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::script::{Bridge, Res, error, unsigned};

/// Options of `write-memory:`.
#[derive(Debug, Clone)]
pub struct WriteMemory {
    /// Where to write.
    pub address: DataLocation,
    /// The bytes to write.
    pub bytes: Vec<u8>,
}

/// `write-memory:` as written; both keys are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawWriteMemory {
    address: Option<Spanned<RawScalar>>,
    bytes: Option<Spanned<Vec<Spanned<i64>>>>,
}

impl StepKind for WriteMemory {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "write-memory",
        example: "{address: 0x20000000, bytes: [1, 2, 3]}",
    };
    type Raw = Spanned<RawWriteMemory>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = raw.value;
        let address =
            v.data_location(&v.required(options.address, Self::SYNTAX, "address", map)?)?;
        let bytes = v.required(options.bytes, Self::SYNTAX, "bytes", map)?;
        if bytes.value.is_empty() {
            return Err(v.error(loc(&bytes.referenced), ErrorKind::EmptyBytes));
        }
        Ok(WriteMemory {
            address,
            bytes: v.bytes(bytes.value)?,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let debugger = ctx.debugger()?;
        let address = resolve_data(&*debugger.elf()?, &self.address)?;
        debugger.write_bytes(address, self.bytes.clone()).await?;
        Ok(None)
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
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
            b.call("write_memory", move |ctx| {
                ctx.host_call(async |ctx: &mut RunContext| {
                    ctx.debugger()?.write_bytes(address, bytes).await
                })
            })
        });
    }
}
