//! The checks serde cannot express, each with the position of the value it
//! rejects: durations, patterns, names, locations, ranges. The scenario
//! loader and every step kind validate their raw forms with these.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::{ErrorKind, ScenarioError, loc};
use super::location::{self, CodeLocation, DataLocation};
use super::raw::{RawScalar, RawShort};
use super::{StepSyntax, pattern};
use crate::source::{At, Loc, duration};

/// Where a value was written.
pub(crate) fn at<T, U>(spanned: &Spanned<T>, value: U) -> At<U> {
    At {
        value,
        loc: loc(&spanned.referenced),
    }
}

/// Validates the raw values of one file, which `file` names in messages
/// and whose folder anchors relative paths.
pub(crate) struct Validator<'a> {
    file: &'a Path,
    /// What the file's patterns may still take.
    patterns: pattern::Budget,
}

impl<'a> Validator<'a> {
    /// A validator for `file`, with the whole pattern budget.
    pub(crate) fn new(file: &'a Path) -> Self {
        Self {
            file,
            patterns: pattern::Budget::default(),
        }
    }

    /// The file being validated.
    pub(crate) fn file(&self) -> &'a Path {
        self.file
    }

    /// An error at `loc` in the file.
    pub(crate) fn error(&self, loc: Loc, kind: ErrorKind) -> ScenarioError {
        ScenarioError::at(self.file, loc, kind)
    }

    /// A path from the scenario, relative to the scenario's folder.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        self.file.parent().unwrap_or(Path::new("")).join(path)
    }

    /// A duration with a unit (`250ms`, `5s`).
    pub(crate) fn duration(&self, raw: &Spanned<String>) -> Result<Duration, ScenarioError> {
        duration::parse(&raw.value).map_err(|e| self.error(loc(&raw.referenced), e.into()))
    }

    /// An optional duration with a unit.
    pub(crate) fn optional_duration(
        &self,
        raw: Option<&Spanned<String>>,
    ) -> Result<Option<Duration>, ScenarioError> {
        raw.map(|t| self.duration(t)).transpose()
    }

    /// A regex option, compiled within the file's pattern budget.
    pub(crate) fn pattern(
        &self,
        raw: &Spanned<String>,
    ) -> Result<regex::bytes::Regex, ScenarioError> {
        pattern::compile(&raw.value, &self.patterns)
            .map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    /// A required option of a step, or an error at the step's map.
    pub(crate) fn required<T>(
        &self,
        value: Option<T>,
        step: StepSyntax,
        key: &'static str,
        map: Loc,
    ) -> Result<T, ScenarioError> {
        value.ok_or_else(|| {
            let StepSyntax { key: step, example } = step;
            self.error(map, ErrorKind::MissingStepKey { step, key, example })
        })
    }

    /// A step's shorthand scalar as a name, or its map of options.
    pub(crate) fn short_or_full<T>(
        &self,
        raw: Spanned<RawShort<T>>,
        expected: &str,
    ) -> Result<Result<Spanned<String>, T>, ScenarioError> {
        match raw.value {
            RawShort::Full(full) => Ok(Err(full)),
            RawShort::Short(RawScalar::Text(name)) => Ok(Ok(Spanned {
                value: name,
                referenced: raw.referenced,
                defined: raw.defined,
            })),
            RawShort::Short(other) => Err(self.error(
                loc(&raw.referenced),
                ErrorKind::Mismatch {
                    expected: expected.to_owned(),
                    found: other.describe(),
                },
            )),
        }
    }

    /// A code location: a symbol, an address or FILE:LINE.
    pub(crate) fn code_location(
        &self,
        raw: &Spanned<RawScalar>,
    ) -> Result<CodeLocation, ScenarioError> {
        location::code(&raw.value).map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    /// A data location: a symbol or an address.
    pub(crate) fn data_location(
        &self,
        raw: &Spanned<RawScalar>,
    ) -> Result<DataLocation, ScenarioError> {
        location::data(&raw.value).map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    /// A name checked by `valid`; `what` names it in messages.
    pub(crate) fn name(
        &self,
        raw: Spanned<String>,
        what: &'static str,
        valid: fn(&str) -> bool,
    ) -> Result<String, ScenarioError> {
        if valid(&raw.value) {
            Ok(raw.value)
        } else {
            let name = raw.value;
            Err(self.error(loc(&raw.referenced), ErrorKind::BadName { what, name }))
        }
    }

    /// An optional metric name.
    pub(crate) fn metric(
        &self,
        raw: Option<Spanned<String>>,
    ) -> Result<Option<String>, ScenarioError> {
        raw.map(|m| self.name(m, "metric name", location::is_identifier))
            .transpose()
    }

    /// A number for a symbol's value: any YAML integer or float.
    pub(crate) fn number(&self, raw: &Spanned<RawScalar>) -> Result<f64, ScenarioError> {
        // Integers beyond 2^53 round to the nearest float, as the symbol's type may well be one.
        match raw.value {
            RawScalar::Unsigned(v) => Ok(v as f64),
            RawScalar::Negative(v) => Ok(v as f64),
            RawScalar::Float(v) => Ok(v),
            RawScalar::Text(_) | RawScalar::Wrong(_) => Err(self.error(
                loc(&raw.referenced),
                ErrorKind::Mismatch {
                    expected: "a number".to_owned(),
                    found: raw.value.describe(),
                },
            )),
        }
    }

    /// A list of bytes, each from 0 to 255.
    pub(crate) fn bytes(&self, raw: Vec<Spanned<i64>>) -> Result<Vec<u8>, ScenarioError> {
        raw.iter()
            .map(|byte| self.in_range("a byte", byte, 0, u8::MAX))
            .collect()
    }

    /// An integer in `min..=max`, converted to its type.
    pub(crate) fn in_range<T: TryFrom<i64> + Into<i64>>(
        &self,
        what: &'static str,
        raw: &Spanned<i64>,
        min: T,
        max: T,
    ) -> Result<T, ScenarioError> {
        let (min, max) = (min.into(), max.into());
        (min..=max)
            .contains(&raw.value)
            .then(|| T::try_from(raw.value).ok())
            .flatten()
            .ok_or_else(|| {
                let value = raw.value;
                let kind = ErrorKind::OutOfRange {
                    what,
                    value,
                    min,
                    max,
                };
                self.error(loc(&raw.referenced), kind)
            })
    }
}
