//! The raw serde layer: scenario YAML as written, before validation.
//!
//! These types mirror the file format key for key and reject unknown keys.
//! Values that need checks serde cannot express (durations, regexes, names,
//! image forms, step shapes) stay raw here, with their source position, and
//! are validated by [`super::load`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::error::found_in_words;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawScenario {
    /// Kept as text so that any value gets the same clear "unsupported version" error.
    pub version: Option<Spanned<String>>,
    pub name: Option<String>,
    pub board: Option<Spanned<String>>,
    pub image: Option<Spanned<RawImage>>,
    #[serde(default)]
    pub target: RawTarget,
    #[serde(default)]
    pub clock: RawClock,
    pub timeout: Option<Spanned<String>>,
    pub runs: Option<Spanned<i64>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub matrix: Vec<Spanned<RawVariant>>,
    pub steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

/// `target:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawTarget {
    Qemu,
    Hardware,
    #[default]
    Auto,
}

/// `clock:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawClock {
    Virtual,
    #[default]
    Wall,
}

/// One entry of `matrix:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawVariant {
    pub name: Spanned<String>,
    pub board: Option<Spanned<String>>,
    pub image: Option<Spanned<RawImage>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub args: Option<Vec<String>>,
}

/// `image:` in either of its forms: a name, or a map of paths.
#[derive(Debug)]
pub(crate) enum RawImage {
    /// `image: cortex-m/hello`
    Named(String),
    /// `image: {elf: ...}` or `image: {kernel: ..., dtb: ..., initrd: ...}`
    Files(RawImageFiles),
    /// Anything else, described as serde describes unexpected values; kept
    /// so that the error points at the value rather than at its key.
    Wrong(String),
}

/// The image description used in messages.
pub(crate) const IMAGE_EXPECTED: &str = "an image name or a map with `elf` or `kernel`";

/// The map form of `image:`; which combinations are valid is checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawImageFiles {
    pub elf: Option<String>,
    pub kernel: Option<String>,
    pub dtb: Option<String>,
    pub initrd: Option<String>,
}

fn wrong(found: Unexpected<'_>) -> RawImage {
    RawImage::Wrong(found.to_string())
}

impl<'de> Deserialize<'de> for RawImage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ImageVisitor;

        impl<'de> Visitor<'de> for ImageVisitor {
            type Value = RawImage;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(IMAGE_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<RawImage, E> {
                Ok(RawImage::Named(name.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawImage, E> {
                Ok(wrong(Unexpected::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawImage, E> {
                Ok(wrong(Unexpected::Signed(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawImage, E> {
                Ok(wrong(Unexpected::Unsigned(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawImage, E> {
                Ok(wrong(Unexpected::Float(v)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawImage, E> {
                Ok(wrong(Unexpected::Unit))
            }

            fn visit_none<E: de::Error>(self) -> Result<RawImage, E> {
                Ok(wrong(Unexpected::Unit))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawImage, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(wrong(Unexpected::Seq))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawImage, A::Error> {
                RawImageFiles::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawImage::Files)
            }
        }

        deserializer.deserialize_any(ImageVisitor)
    }
}

/// One item of `steps:`, whose shape (exactly one known key) is checked later.
#[derive(Debug)]
pub(crate) enum RawStep {
    /// A well-formed step.
    Step(RawStepKind),
    /// A bare string (`- boot`) where a one-key map was expected.
    Bare(String),
    /// A map with an unknown key.
    Unknown(Spanned<String>),
    /// An empty map (`- {}`).
    Empty,
    /// A map with a second key, at the position of that key.
    TwoKeys {
        /// The first key.
        first: String,
        /// The second key.
        second: Spanned<String>,
    },
}

/// The known steps and their options (the larger ones boxed).
#[derive(Debug)]
pub(crate) enum RawStepKind {
    Boot(RawBoot),
    WaitSerial(RawWaitSerial),
    SendSerial(String),
    ExpectExit(RawExpectExit),
    AttachDebugger(RawAttachDebugger),
    Break(Box<Spanned<RawShort<RawBreak>>>),
    Continue(Box<RawContinue>),
    Step(RawStepInstructions),
    ReadRegister(Box<Spanned<RawShort<RawReadRegister>>>),
    ReadMemory(Box<Spanned<RawReadMemory>>),
    ReadSymbol(Box<Spanned<RawShort<RawReadSymbol>>>),
    WriteMemory(Box<Spanned<RawWriteMemory>>),
    WriteSymbol(Box<Spanned<RawWriteSymbol>>),
    Detach,
    ExpectFault(Box<RawExpectFault>),
    Footprint,
    MemoryLayout,
    Trend(Box<RawTrend>),
    Script(Box<Spanned<RawScript>>),
    GcTrace(Box<Spanned<RawGcTrace>>),
    ExpectCrash(Box<RawExpectCrash>),
    SerialLoad(Box<Spanned<RawSerialLoad>>),
}

/// The step keys, in the order they are listed in hints.
pub const STEP_KEYS: &[&str] = &[
    "boot",
    "wait-serial",
    "send-serial",
    "expect-exit",
    "attach-debugger",
    "break",
    "continue",
    "step",
    "read-register",
    "read-memory",
    "read-symbol",
    "write-memory",
    "write-symbol",
    "detach",
    "expect-fault",
    "footprint",
    "memory-layout",
    "trend",
    "script",
    "gc-trace",
    "expect-crash",
    "serial-load",
];

/// Options of `boot:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawBoot {
    #[serde(default)]
    pub halted: bool,
}

/// Options of `wait-serial:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawWaitSerial {
    #[serde(rename = "match")]
    pub pattern: Spanned<String>,
    pub timeout: Option<Spanned<String>>,
}

/// Options of `expect-exit:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectExit {
    pub code: Option<i32>,
    pub timeout: Option<Spanned<String>>,
}

/// Options of `script:`; exactly one of `file` and `source`, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawScript {
    pub file: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

/// Options of `trend:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawTrend {
    #[serde(rename = "match")]
    pub pattern: Spanned<String>,
    pub until: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub metric: Option<Spanned<String>>,
    pub expect: Option<Spanned<RawTrendExpect>>,
}

/// `expect:` of `trend:`: one direction, or one per variant name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawTrendExpect {
    /// The same direction for every variant.
    All(String),
    /// A direction per variant name.
    PerVariant(std::collections::BTreeMap<String, String>),
}

/// Options of `gc-trace:`; `format` and `until` are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawGcTrace {
    pub format: Option<Spanned<String>>,
    pub until: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

/// Options of `expect-crash:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectCrash {
    pub kind: Option<Spanned<String>>,
    pub restart: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

/// Options of `serial-load:`; all but `timeout` and `drain` are required,
/// checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawSerialLoad {
    pub count: Option<Spanned<i64>>,
    pub rate: Option<Spanned<RawScalar>>,
    pub send: Option<Spanned<String>>,
    pub reply: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub drain: Option<Spanned<String>>,
}

/// Options of `expect-fault:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectFault {
    pub kind: Spanned<String>,
    pub cause: Option<Spanned<String>>,
    #[serde(rename = "in")]
    pub function: Option<String>,
    pub timeout: Option<Spanned<String>>,
}

/// Options of `attach-debugger:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawAttachDebugger {
    pub timeout: Option<Spanned<String>>,
}

/// Options of `break:`; `at` is required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawBreak {
    pub at: Option<Spanned<RawScalar>>,
    #[serde(default)]
    pub hardware: bool,
}

/// Options of `continue:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawContinue {
    pub timeout: Option<Spanned<String>>,
    pub stop_at: Option<Spanned<RawScalar>>,
}

/// Options of `step:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawStepInstructions {
    pub count: Option<Spanned<i64>>,
}

/// Options of `read-register:`; `name` is required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReadRegister {
    pub name: Option<Spanned<String>>,
    pub metric: Option<Spanned<String>>,
    pub expect: Option<Spanned<RawScalar>>,
}

/// Options of `read-memory:`; `address` and `length` are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReadMemory {
    pub address: Option<Spanned<RawScalar>>,
    pub length: Option<Spanned<i64>>,
    pub expect: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// Options of `read-symbol:`; `name` is required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReadSymbol {
    pub name: Option<Spanned<String>>,
    pub metric: Option<Spanned<String>>,
    pub expect: Option<Spanned<RawScalar>>,
}

/// Options of `write-memory:`; both keys are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawWriteMemory {
    pub address: Option<Spanned<RawScalar>>,
    pub bytes: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// Options of `write-symbol:`; both keys are required, checked later.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawWriteSymbol {
    pub name: Option<Spanned<String>>,
    pub value: Option<Spanned<RawScalar>>,
}

/// Options of `detach:`, `footprint:` and `memory-layout:`: none, but it
/// must still be a map.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNoOptions {}

/// A scalar whose meaning depends on where it is written (a location, an
/// address, a number); other values are kept, described, so that the error
/// points at them.
#[derive(Debug)]
pub(crate) enum RawScalar {
    /// A YAML integer from 0.
    Unsigned(u64),
    /// A negative YAML integer.
    Negative(i64),
    /// A YAML float.
    Float(f64),
    /// A string.
    Text(String),
    /// Anything else, described as serde describes unexpected values.
    Wrong(String),
}

impl RawScalar {
    /// The value in words, for messages (`string "5"`, ``integer `-4` ``, `a list`).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Unsigned(v) => Unexpected::Unsigned(*v).to_string(),
            Self::Negative(v) => Unexpected::Signed(*v).to_string(),
            Self::Float(v) => Unexpected::Float(*v).to_string(),
            Self::Text(text) => Unexpected::Str(text).to_string(),
            Self::Wrong(found) => found_in_words(found).into_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match RawShort::<IgnoredAny>::deserialize(deserializer)? {
            RawShort::Short(scalar) => scalar,
            RawShort::Full(_) => RawScalar::Wrong(Unexpected::Map.to_string()),
        })
    }
}

/// A step value in its shorthand form (a scalar, `break: main`) or in full
/// (a map of options, `break: {at: main}`).
#[derive(Debug)]
pub(crate) enum RawShort<T> {
    /// The shorthand.
    Short(RawScalar),
    /// The map of options.
    Full(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RawShort<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShortVisitor<T>(PhantomData<T>);

        fn short<T>(scalar: RawScalar) -> RawShort<T> {
            RawShort::Short(scalar)
        }

        fn unexpected<T>(found: Unexpected<'_>) -> RawShort<T> {
            RawShort::Short(RawScalar::Wrong(found.to_string()))
        }

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ShortVisitor<T> {
            type Value = RawShort<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a map")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawShort<T>, E> {
                Ok(short(RawScalar::Text(text.to_owned())))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawShort<T>, E> {
                Ok(unexpected(Unexpected::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawShort<T>, E> {
                Ok(short(match u64::try_from(v) {
                    Ok(v) => RawScalar::Unsigned(v),
                    Err(_) => RawScalar::Negative(v),
                }))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawShort<T>, E> {
                Ok(short(RawScalar::Unsigned(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawShort<T>, E> {
                Ok(short(RawScalar::Float(v)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawShort<T>, E> {
                Ok(unexpected(Unexpected::Unit))
            }

            fn visit_none<E: de::Error>(self) -> Result<RawShort<T>, E> {
                Ok(unexpected(Unexpected::Unit))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawShort<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(unexpected(Unexpected::Seq))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawShort<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawShort::Full)
            }
        }

        deserializer.deserialize_any(ShortVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;

        impl<'de> Visitor<'de> for StepVisitor {
            type Value = RawStep;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step: a map with one key, like `boot: {}`")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<RawStep, E> {
                Ok(RawStep::Bare(name.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStep, A::Error> {
                let Some(key) = map.next_key::<Spanned<String>>()? else {
                    return Ok(RawStep::Empty);
                };
                let step = match key.value.as_str() {
                    "boot" => RawStep::Step(RawStepKind::Boot(map.next_value()?)),
                    "wait-serial" => RawStep::Step(RawStepKind::WaitSerial(map.next_value()?)),
                    "send-serial" => RawStep::Step(RawStepKind::SendSerial(map.next_value()?)),
                    "expect-exit" => RawStep::Step(RawStepKind::ExpectExit(map.next_value()?)),
                    "attach-debugger" => {
                        RawStep::Step(RawStepKind::AttachDebugger(map.next_value()?))
                    }
                    "break" => RawStep::Step(RawStepKind::Break(map.next_value()?)),
                    "continue" => RawStep::Step(RawStepKind::Continue(map.next_value()?)),
                    "step" => RawStep::Step(RawStepKind::Step(map.next_value()?)),
                    "read-register" => RawStep::Step(RawStepKind::ReadRegister(map.next_value()?)),
                    "read-memory" => RawStep::Step(RawStepKind::ReadMemory(map.next_value()?)),
                    "read-symbol" => RawStep::Step(RawStepKind::ReadSymbol(map.next_value()?)),
                    "write-memory" => RawStep::Step(RawStepKind::WriteMemory(map.next_value()?)),
                    "write-symbol" => RawStep::Step(RawStepKind::WriteSymbol(map.next_value()?)),
                    "detach" => {
                        map.next_value::<RawNoOptions>()?;
                        RawStep::Step(RawStepKind::Detach)
                    }
                    "expect-fault" => RawStep::Step(RawStepKind::ExpectFault(map.next_value()?)),
                    "footprint" => {
                        map.next_value::<RawNoOptions>()?;
                        RawStep::Step(RawStepKind::Footprint)
                    }
                    "trend" => RawStep::Step(RawStepKind::Trend(map.next_value()?)),
                    "script" => RawStep::Step(RawStepKind::Script(map.next_value()?)),
                    "gc-trace" => RawStep::Step(RawStepKind::GcTrace(map.next_value()?)),
                    "expect-crash" => RawStep::Step(RawStepKind::ExpectCrash(map.next_value()?)),
                    "serial-load" => RawStep::Step(RawStepKind::SerialLoad(map.next_value()?)),
                    "memory-layout" => {
                        map.next_value::<RawNoOptions>()?;
                        RawStep::Step(RawStepKind::MemoryLayout)
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        RawStep::Unknown(key.clone())
                    }
                };
                let Some(second) = map.next_key::<Spanned<String>>()? else {
                    return Ok(step);
                };
                map.next_value::<IgnoredAny>()?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(match step {
                    RawStep::Unknown(_) => step,
                    _ => RawStep::TwoKeys {
                        first: key.value,
                        second,
                    },
                })
            }
        }

        deserializer.deserialize_any(StepVisitor)
    }
}
