//! Raw values whose meaning depends on where they are written: a scalar
//! kept as written, a step's shorthand-or-map form, and an empty options
//! map. Step kinds build their raw forms from these.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::found_in_words;

/// Options of a step that takes none (`detach:`, `footprint:`): it
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
