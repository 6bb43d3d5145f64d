//! Errors from loading scenarios: what went wrong, in which file, where.

use std::borrow::Cow;

use crate::source::diagnostic::{HintLine, LocSuffix, OneLine};
use crate::source::suggest::choices_hint;
use crate::source::{DurationError, Loc};
use std::io;
use std::path::{Path, PathBuf};

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

use super::MAX_JOBS;

/// A scenario that could not be loaded, rendered as
/// `FILE:LINE:COL: MESSAGE`, plus a line `  hint: ...` when one helps.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {}{}", .file.display(), LocSuffix(*.loc), OneLine(.kind), HintLine(.kind.hint()))]
pub struct ScenarioError {
    file: PathBuf,
    loc: Option<Loc>,
    kind: ErrorKind,
}

impl ScenarioError {
    /// An error at `loc` in `file`.
    pub(crate) fn at(file: &Path, loc: Loc, kind: ErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            loc: Some(loc),
            kind,
        }
    }

    /// An error about `file` as a whole (it cannot be read, or is too large).
    pub(crate) fn whole(file: &Path, kind: ErrorKind) -> Self {
        Self {
            file: file.to_owned(),
            loc: None,
            kind,
        }
    }

    /// An error reported by the YAML deserializer.
    pub(crate) fn from_yaml(file: &Path, error: &serde_saphyr::Error) -> Self {
        Self {
            file: file.to_owned(),
            loc: error.location().filter(|l| l.line() > 0).map(|l| loc(&l)),
            kind: ErrorKind::from_yaml(error),
        }
    }

    /// The scenario file (or, from [`crate::scenario::discover`], the path) concerned.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where in the file the problem is, when it is at one place.
    pub fn location(&self) -> Option<Loc> {
        self.loc
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// What went wrong; `Display` gives the message without file or position.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file or folder could not be read.
    #[error("cannot read: {0}")]
    Read(io::Error),
    /// A path to discover scenarios in does not exist.
    #[error("no such file or folder")]
    NotFound,
    /// The file is larger than scenario files may be.
    #[error("the file is {size} bytes, more than the {limit} bytes a scenario may have")]
    TooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("the file is not valid UTF-8 text")]
    NotUtf8,
    /// The text is not valid YAML.
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    /// The document trips a resource limit (aliases, nesting, size).
    #[error("the document is too large or too complex: {0}")]
    TooComplex(String),
    /// A key that this map does not have.
    #[error("unknown key `{key}`")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The keys valid at this place.
        expected: Vec<&'static str>,
    },
    /// A value outside a fixed set (`target:`, `clock:`).
    #[error("unknown value `{value}`")]
    UnknownValue {
        /// The value as written.
        value: String,
        /// The valid values.
        expected: Vec<&'static str>,
    },
    /// A step name that does not exist.
    #[error("unknown step `{name}`")]
    UnknownStep {
        /// The step name as written.
        name: String,
        /// The known step keys.
        known: &'static [&'static str],
    },
    /// A step written as a bare name (`- boot`) instead of a one-key map.
    #[error("step `{name}` must be a map with one key")]
    BareStep {
        /// The step name.
        name: String,
        /// A valid value for it.
        example: &'static str,
    },
    /// A step map without a key (`- {}`).
    #[error("a step needs exactly one key, found none")]
    EmptyStep {
        /// The known step keys.
        known: &'static [&'static str],
    },
    /// A step map with more than one key.
    #[error("a step has exactly one key, found `{first}` and `{second}`")]
    TwoKeysStep {
        /// The step's first key.
        first: String,
        /// The extra key.
        second: String,
        /// The known step keys (the extra key may be a step missing its `- `).
        known: &'static [&'static str],
    },
    /// A value of the wrong type or out of its type's range.
    #[error("expected {expected}, found {found}")]
    Mismatch {
        /// What was expected, in words.
        expected: String,
        /// What was found, in words.
        found: String,
    },
    /// A value that is not of the expected kind (the deserializer does not say what it found).
    #[error("expected {0}")]
    Expected(String),
    /// More than one YAML document in the file.
    #[error("a scenario file holds one YAML document, found a second one")]
    SecondDocument,
    /// A required key is absent.
    #[error("missing required key `{key}`")]
    MissingKey {
        /// The missing key.
        key: String,
    },
    /// A key given twice in one map.
    #[error("duplicate key `{key}`")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// `version:` other than 1.
    #[error("unsupported scenario format version `{found}`")]
    UnsupportedVersion {
        /// The version as written.
        found: String,
    },
    /// A duration without a unit, or one that does not parse.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A `match:` pattern that is not a valid regex.
    #[error("invalid regex: {reason}")]
    BadRegex {
        /// The regex crate's explanation, on one line.
        reason: String,
        /// The pattern with the offending part marked, when the regex crate gives it.
        context: Option<String>,
    },
    /// `steps:` with no step.
    #[error("`steps` is empty")]
    EmptySteps,
    /// `warm-up:` with no step.
    #[error("`warm-up` is empty")]
    EmptyWarmUp,
    /// `table:` with no column.
    #[error("`table` is empty")]
    EmptyTable,
    /// A metric listed twice in `table:`.
    #[error("metric `{metric}` is in `table` twice")]
    DuplicateColumn {
        /// The repeated metric.
        metric: String,
        /// Where it is first listed.
        first: Loc,
    },
    /// A column of `table:` with an empty `label` or `unit`.
    #[error("a column's `{key}` is empty")]
    EmptyColumnText {
        /// `label` or `unit`.
        key: &'static str,
    },
    /// A column of `table:` with `from:` and no `unit:` to convert into.
    #[error("a column has `from` but no `unit` to show the metric in")]
    FromWithoutUnit,
    /// A column whose `from:` unit does not convert into its `unit:`.
    #[error("cannot show a metric in `{from}` as `{to}`")]
    UnitsDoNotConvert {
        /// The unit the metric is measured in.
        from: String,
        /// The unit the column shows.
        to: String,
    },
    /// A column's `stat:` that is not a statistic the lab computes.
    #[error("unknown statistic `{found}`")]
    UnknownStatistic {
        /// The value as written.
        found: String,
    },
    /// `runs:` below 1, or above what [`MAX_JOBS`] leaves for each matrix variant.
    #[error("`runs` must be {}, found {value}", if *.value < 1 { "at least 1".to_owned() } else { format!("at most {max}") })]
    RunsOutOfRange {
        /// The value as written.
        value: i64,
        /// The most runs the scenario may have.
        max: u32,
    },
    /// Two matrix variants with the same name.
    #[error("duplicate matrix variant `{name}`")]
    DuplicateVariant {
        /// The repeated name.
        name: String,
        /// Where the name was first used.
        first: Loc,
    },
    /// A matrix variant with an empty name.
    #[error("a matrix variant name must not be empty")]
    EmptyVariantName,
    /// A matrix variant that lacks a board or image with no top-level default.
    #[error("matrix variant `{variant}` has no `{key}`, and there is no top-level `{key}`")]
    MissingInVariant {
        /// The variant's name.
        variant: String,
        /// `board` or `image`.
        key: &'static str,
    },
    /// An `image:` map in none of the accepted forms.
    #[error("invalid image: {0}")]
    BadImage(&'static str),
    /// A step without one of its required keys.
    #[error("step `{step}` needs `{key}`")]
    MissingStepKey {
        /// The step's key (`break`, `read-memory`, ...).
        step: &'static str,
        /// The missing option.
        key: &'static str,
        /// A valid value for the step.
        example: &'static str,
    },
    /// A value that is not a code location (`break:`, `stop-at:`).
    #[error("{found} is not a code location: {reason}")]
    BadCodeLocation {
        /// The value in words.
        found: String,
        /// Why it is not one.
        reason: &'static str,
    },
    /// A value that is not a data location (`address:`).
    #[error("{found} is not a data location: {reason}")]
    BadDataLocation {
        /// The value in words.
        found: String,
        /// Why it is not one.
        reason: &'static str,
    },
    /// A register, symbol or metric name that cannot be one.
    #[error("invalid {what} `{name}`")]
    BadName {
        /// `register name`, `symbol name` or `metric name`.
        what: &'static str,
        /// The name as written.
        name: String,
    },
    /// An integer outside its range (`count`, `length`, a byte).
    #[error("{what} must be from {min} to {max}, found {value}")]
    OutOfRange {
        /// What the value is, in words.
        what: &'static str,
        /// The value as written.
        value: i64,
        /// The smallest valid value.
        min: i64,
        /// The largest valid value.
        max: i64,
    },
    /// `read-memory:` with `expect` bytes that do not match its `length`.
    #[error("`expect` lists {found} bytes, but `length` is {length}")]
    ExpectLengthMismatch {
        /// The `length` given.
        length: u32,
        /// How many bytes `expect` lists.
        found: usize,
    },
    /// `write-memory:` with no bytes to write.
    #[error("`bytes` is empty")]
    EmptyBytes,
    /// Any other problem the YAML deserializer reports.
    #[error("{0}")]
    Other(String),
    /// A script does not compile or calls what does not exist.
    #[error("{message}")]
    Script {
        /// The script checker's message.
        message: String,
        /// Its advice.
        hint: Option<String>,
    },
}

impl ErrorKind {
    /// Advice on how to fix the problem, when there is some to give.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Self::Script { hint, .. } => return hint.clone(),
            Self::TooComplex(_) => {
                "scenarios limit anchors, aliases, nesting and the size of patterns so untrusted \
                 files load safely"
                    .into()
            }
            Self::UnknownKey { expected, .. } if expected.is_empty() => {
                "this map takes no keys: write `{}`".into()
            }
            Self::UnknownKey { key, expected } => choices_hint(key, "valid keys here", expected),
            Self::UnknownValue { value, expected } => {
                choices_hint(value, "valid values", expected)
            }
            Self::UnknownStep { name, known } => choices_hint(name, "known steps", known),
            Self::BareStep { name, example } => format!("write `- {name}: {example}`"),
            Self::EmptyStep { known } => choices_hint("", "known steps", known),
            Self::TwoKeysStep { second, known, .. } if known.contains(&second.as_str()) => {
                format!("start each step with its own `- `: `- {second}: ...`")
            }
            Self::TwoKeysStep { first, second, .. } => {
                format!("options go inside the step's map: `- {first}: {{{second}: ...}}`")
            }
            Self::MissingKey { key } => return missing_key_hint(key),
            Self::DuplicateKey { .. } => "each key may appear only once in a map".into(),
            Self::UnsupportedVersion { .. } => "this lab reads `version: 1`".into(),
            Self::Duration(e) => e.hint(),
            Self::BadRegex { context, .. } => return context.clone(),
            Self::EmptySteps => "a scenario needs at least one step, like `- boot: {}`".into(),
            Self::EmptyWarmUp => {
                "list the steps that bring the target to where every run starts, like \
                 `- boot: {}` and a `- wait-serial:`, or remove `warm-up`"
                    .into()
            }
            Self::DuplicateVariant { first, .. } => {
                format!("the name is first used at line {}", first.line)
            }
            Self::EmptyTable => {
                "list the metrics to print, like `- {metric: boot_us, label: boot, unit: µs}`, \
                 or remove `table`"
                    .into()
            }
            Self::DuplicateColumn { first, .. } => {
                format!("the metric is first listed at line {}", first.line)
            }
            Self::EmptyColumnText { key: "label" } => {
                "leave `label` out to head the column with the metric's name".into()
            }
            Self::EmptyColumnText { .. } => "leave `unit` out for a number without one".into(),
            Self::FromWithoutUnit => {
                "add `unit:` (the unit to show), or leave `from` out to show the metric as measured".into()
            }
            Self::UnitsDoNotConvert { .. } => format!(
                "`from` and `unit` must be units of one kind that the lab converts between: {}",
                crate::report::known_units()
            ),
            Self::UnknownStatistic { .. } => format!(
                "write one of: {}",
                crate::report::Statistic::NAMES.map(|(name, _)| name).join(", ")
            ),
            Self::MissingInVariant { key, .. } => {
                format!("add `{key}:` to the variant, or set a top-level `{key}` for all variants")
            }
            Self::SecondDocument => "remove the `---` line and what follows it".into(),
            Self::BadImage(_) => {
                "write `image: NAME`, `image: {elf: PATH}` or `image: {kernel: PATH, dtb: PATH, initrd: PATH}`".into()
            }
            Self::MissingStepKey { step, example, .. } => format!("write `- {step}: {example}`"),
            Self::BadCodeLocation { .. } => {
                "write a symbol (`main`), an address (`0x08000400`) or FILE:LINE (`main.c:42`)"
                    .into()
            }
            Self::BadDataLocation { .. } => {
                "write a symbol (`lab_counter`) or an address (`0x20000000`)".into()
            }
            Self::BadName { what, .. } if what.starts_with("symbol") => {
                "a symbol name is letters, digits, `_`, `.` and `$`, and does not start with a digit"
                    .into()
            }
            Self::BadName { what, .. } => {
                format!("a {what} is letters, digits and `_`, and does not start with a digit")
            }
            Self::ExpectLengthMismatch { length, .. } => {
                format!("list exactly {length} bytes, one for each byte read")
            }
            Self::EmptyBytes => "list the bytes to write, like `bytes: [1, 2, 3]`".into(),
            Self::RunsOutOfRange { value, .. } if *value >= 1 => {
                format!("a scenario may have at most {MAX_JOBS} jobs (runs × matrix variants)")
            }
            Self::Read(_)
            | Self::NotFound
            | Self::TooLarge { .. }
            | Self::NotUtf8
            | Self::Syntax(_)
            | Self::Mismatch { .. }
            | Self::Expected(_)
            | Self::RunsOutOfRange { .. }
            | Self::EmptyVariantName
            | Self::OutOfRange { .. }
            | Self::Other(_) => return None,
        };
        Some(hint)
    }

    /// Classifies a deserializer error, keeping its message without its position.
    fn from_yaml(error: &serde_saphyr::Error) -> Self {
        use serde_saphyr::Error as E;

        let mut inner = error;
        while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = inner {
            inner = error;
        }
        match inner {
            E::SerdeUnknownField {
                field, expected, ..
            } => Self::UnknownKey {
                key: field.clone(),
                expected: expected.clone(),
            },
            E::SerdeUnknownVariant {
                variant, expected, ..
            } => Self::UnknownValue {
                value: variant.clone(),
                expected: expected.clone(),
            },
            E::SerdeMissingField { field, .. } => Self::MissingKey {
                key: (*field).to_owned(),
            },
            E::SerdeInvalidType {
                unexpected,
                expected,
                ..
            }
            | E::SerdeInvalidValue {
                unexpected,
                expected,
                ..
            } => Self::Mismatch {
                expected: in_words(expected).into_owned(),
                found: found_in_words(unexpected).into_owned(),
            },
            E::NullIntoString { .. } => Self::Mismatch {
                expected: "a string".to_owned(),
                found: "null".to_owned(),
            },
            E::InvalidBooleanStrict { .. } => Self::Expected(in_words("a boolean").into_owned()),
            E::InvalidScalar { ty, .. } => Self::Expected(in_words(ty).into_owned()),
            E::Unexpected { expected, .. } => Self::Expected(in_words(expected).into_owned()),
            E::MultipleDocuments { .. } => Self::SecondDocument,
            E::DuplicateMappingKey { key, .. } => Self::DuplicateKey {
                key: key.clone().unwrap_or_else(|| "?".to_owned()),
            },
            E::ExternalMessage { msg, .. } => Self::Syntax(msg.clone()),
            E::Budget { breach, .. } => Self::TooComplex(describe_breach(breach)),
            E::AliasReplayLimitExceeded {
                max_total_replayed_events,
                ..
            } => Self::TooComplex(format!(
                "aliases expand to more than {max_total_replayed_events} YAML events"
            )),
            E::AliasExpansionLimitExceeded {
                max_expansions_per_anchor,
                ..
            } => Self::TooComplex(format!(
                "an anchor is used more than {max_expansions_per_anchor} times"
            )),
            E::AliasReplayStackDepthExceeded { max_depth, .. } => {
                Self::TooComplex(format!("aliases are nested more than {max_depth} deep"))
            }
            E::Message { msg, .. } => Self::Other(msg.clone()),
            other => Self::Other(UserMessageFormatter.format_message(other).into_owned()),
        }
    }
}

/// Advice for a missing key, when the key is one a user may not know about.
fn missing_key_hint(key: &str) -> Option<String> {
    let hint = match key {
        "version" => "start the file with `version: 1`",
        "steps" => "add `steps:` with at least one step, like `- boot: {}`",
        "board" => "set a top-level `board`, or give every matrix variant one",
        "image" => "set a top-level `image`, or give every matrix variant one",
        "match" => "give the regex to wait for: `match: 'READY'`",
        "name" => "give every matrix variant a unique `name`",
        "metric" => "name the metric the column shows: `- {metric: boot_us, label: boot}`",
        _ => return None,
    };
    Some(hint.to_owned())
}

/// Serde's description of an expected value, in a user's words rather than Rust's.
fn in_words(expected: &str) -> Cow<'_, str> {
    match expected {
        "i64" | "u64" => Cow::Borrowed("an integer"),
        "i32" => Cow::Owned(format!("an integer from {} to {}", i32::MIN, i32::MAX)),
        "string scalar" => Cow::Borrowed("a string"),
        "a boolean" | "bool" => Cow::Borrowed("`true` or `false`"),
        "mapping start" => Cow::Borrowed("a map"),
        "sequence start" => Cow::Borrowed("a list"),
        "a sequence" => Cow::Borrowed("a list"),
        _ if expected.starts_with("struct ") => Cow::Borrowed("a map"),
        _ if expected.starts_with("enum ") => Cow::Borrowed("a string"),
        _ => Cow::Borrowed(expected),
    }
}

/// Serde's description of an unexpected value, in a user's words.
pub(crate) fn found_in_words(found: &str) -> Cow<'_, str> {
    match found {
        "sequence" => Cow::Borrowed("a list"),
        "map" => Cow::Borrowed("a map"),
        "unit value" => Cow::Borrowed("null"),
        _ => Cow::Borrowed(found),
    }
}

/// A budget breach in words.
fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Aliases { aliases } => format!("{aliases} aliases"),
        BudgetBreach::Anchors { anchors } => format!("{anchors} anchors"),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases for {anchors} anchors")
        }
        BudgetBreach::Depth { depth } => format!("nested {depth} deep"),
        BudgetBreach::Nodes { nodes } => format!("{nodes} nodes"),
        BudgetBreach::Events { events } => format!("{events} YAML events"),
        BudgetBreach::Documents { documents } => format!("{documents} documents"),
        BudgetBreach::RecordedAnchorEvents {
            recorded_anchor_events,
        } => format!("anchors hold {recorded_anchor_events} YAML events"),
        other => format!("{other:?}"),
    }
}

/// Converts a position from the deserializer.
pub(crate) fn loc(location: &Location) -> Loc {
    Loc {
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        column: u32::try_from(location.column()).unwrap_or(u32::MAX),
    }
}
