//! `read-memory:` reads bytes at an address or a symbol and may check
//! them; a script's `read_memory()` returns them.

use rhai::{Array, Dynamic, Engine, INT};
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use super::debugger::resolve_data;
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::loader::raw::RawScalar;
use crate::loader::{DataLocation, ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::Status;
use crate::script::{Bridge, Res, error, unsigned};

/// Options of `read-memory:`.
#[derive(Debug, Clone)]
pub struct ReadMemory {
    /// Where to read.
    pub address: DataLocation,
    /// How many bytes (1 to 65536).
    pub length: u32,
    /// Fail unless the bytes equal these.
    pub expect: Option<Vec<u8>>,
}

/// `read-memory:` as written; `address` and `length` are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReadMemory {
    address: Option<Spanned<RawScalar>>,
    length: Option<Spanned<i64>>,
    expect: Option<Spanned<Vec<Spanned<i64>>>>,
}

impl StepKind for ReadMemory {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "read-memory",
        example: "{address: 0x20000000, length: 4}",
    };
    type Raw = Spanned<RawReadMemory>;

    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = raw.value;
        let address =
            v.data_location(&v.required(options.address, Self::SYNTAX, "address", map)?)?;
        let length = v.required(options.length, Self::SYNTAX, "length", map)?;
        let length = v.in_range("`length`", &length, 1, 65536)?;
        let expect = match options.expect {
            Some(expect) => {
                let bytes = v.bytes(expect.value)?;
                if bytes.len() != usize::try_from(length).unwrap_or(usize::MAX) {
                    return Err(v.error(
                        loc(&expect.referenced),
                        ErrorKind::ExpectLengthMismatch {
                            length,
                            found: bytes.len(),
                        },
                    ));
                }
                Some(bytes)
            }
            None => None,
        };
        Ok(ReadMemory {
            address,
            length,
            expect,
        })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let debugger = ctx.debugger()?;
        let address = resolve_data(&*debugger.elf()?, &self.address)?;
        let bytes = debugger.read_bytes(address, self.length as usize).await?;
        let mut detail = Detail::new();
        detail.insert("address".into(), json!(address));
        detail.insert("bytes".into(), json!(hex(&bytes)));
        if let Some(want) = &self.expect
            && &bytes != want
        {
            return Err(StepFailure::new(
                Status::Failed,
                format!(
                    "memory at {address:#x} holds {}, expected {}",
                    hex(&bytes),
                    hex(want)
                ),
            ));
        }
        Ok(Some(detail))
    }

    fn bind(engine: &mut Engine, bridge: &Bridge<RunContext>) {
        let b = bridge.clone();
        engine.register_fn("read_memory", move |address: INT, len: INT| -> Res<Array> {
            let address = unsigned("read_memory", "the address", address)?;
            let len = usize::try_from(len).map_err(|_| {
                error(format!(
                    "read_memory: the length must be 0 or more, not {len}"
                ))
            })?;
            let bytes = b.call("read_memory", move |ctx| {
                ctx.host_call(async |ctx: &mut RunContext| {
                    ctx.debugger()?.read_bytes(address, len).await
                })
            })?;
            Ok(bytes
                .into_iter()
                .map(|byte| Dynamic::from_int(INT::from(byte)))
                .collect())
        });
    }
}

/// Bytes as hex digits, for messages and details.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
