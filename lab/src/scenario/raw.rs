//! The raw serde layer: scenario YAML as written, before validation.
//!
//! These types mirror the file format key for key and reject unknown keys.
//! Values that need checks serde cannot express (durations, image forms,
//! step shapes) stay raw here, with their source position, and are
//! validated by [`super::load`]. Each step's own options are read by its
//! kind (`crate::steps`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::loader::raw::RawShort;
use crate::steps::RawStepKind;

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
    pub storage: Option<Spanned<RawStorage>>,
    pub record: Option<Spanned<RawRecord>>,
    pub table: Option<Spanned<Vec<Spanned<RawShort<RawColumn>>>>>,
    pub warm_up: Option<Spanned<Vec<Spanned<RawStep>>>>,
    pub steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

/// `storage: {}` as written: no options yet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {}

/// A column of `table:` in full (`{metric: ready_us, label: ready, unit:
/// ms, from: µs, stat: mean}`); its shorthand is the metric's name alone
/// (`- ready_us`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawColumn {
    /// Optional here so that its absence is reported at the column.
    pub metric: Option<Spanned<String>>,
    pub label: Option<Spanned<String>>,
    pub unit: Option<Spanned<String>>,
    /// The unit the metric is measured in, when the column shows another.
    pub from: Option<Spanned<String>>,
    pub stat: Option<Spanned<String>>,
}

/// `record:` as written: `true`, `false` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawRecord {
    /// `true`.
    Always,
    /// `false`.
    Never,
    /// `failed`.
    Failed,
}

impl<'de> Deserialize<'de> for RawRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;

        impl Visitor<'_> for RecordVisitor {
            type Value = RawRecord;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false` or `failed`")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawRecord, E> {
                Ok(if v {
                    RawRecord::Always
                } else {
                    RawRecord::Never
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRecord, E> {
                match v {
                    "failed" => Ok(RawRecord::Failed),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }

        deserializer.deserialize_any(RecordVisitor)
    }
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
                let step = match RawStepKind::next_value(&key.value, &mut map)? {
                    Some(step) => RawStep::Step(step),
                    None => {
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
