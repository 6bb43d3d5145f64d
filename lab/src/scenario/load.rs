//! Loading: read a scenario file, deserialize it safely, validate it into the model.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::model::{
    At, Clock, Column, ImageRef, Loc, RecordMode, Scenario, Step, TableSpec, TargetChoice, Variant,
};
use super::raw::{
    IMAGE_EXPECTED, RawClock, RawColumn, RawImage, RawRecord, RawScenario, RawStep, RawTarget,
};
use crate::loader::location::is_identifier;
use crate::loader::raw::RawShort;
use crate::loader::{ErrorKind, MAX_JOBS, ScenarioError, Validator, at, found_in_words, loc};
use crate::report::{Statistic, conversion};
use crate::source::duration;
use crate::steps::{self, STEP_KEYS, Script, script_checker, script_error};

/// Scenario files larger than this (1 MiB) are refused without being parsed.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// The scenario deadline when `timeout:` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads, parses and validates the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let read_error = |error| ScenarioError::whole(path, ErrorKind::Read(error));
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > MAX_FILE_SIZE {
        return Err(too_large(path, size));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        // `valid` is UTF-8 by definition; the fallback is never taken.
        let before = std::str::from_utf8(valid).unwrap_or_default();
        ScenarioError::at(path, end_of(before), ErrorKind::NotUtf8)
    })?;
    if path.extension().is_some_and(|ext| ext == "rhai") {
        return load_script(path, &text);
    }
    load_str(path, &text)
}

/// A `.rhai` scenario: the script is the one step, and its top-level
/// constants give the settings a YAML file has at the top: `BOARD` and
/// `IMAGE` (required), `NAME`, `TIMEOUT`, `CLOCK` and `ARGS`. The script
/// boots the target itself with `boot()`.
fn load_script(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
    use crate::script::Constant;
    let start = Loc { line: 1, column: 1 };
    let error = |message: String| ScenarioError::at(path, start, ErrorKind::Other(message));
    let constants = script_checker()
        .constants(path, source)
        .map_err(|e| script_error(path, start, &e))?;
    let text = |name: &str| -> Result<Option<String>, ScenarioError> {
        match constants.iter().find(|(n, _)| n == name).map(|(_, c)| c) {
            None => Ok(None),
            Some(Constant::Text(t)) => Ok(Some(t.clone())),
            Some(other) => Err(error(format!(
                "`const {name}` must be a string, not {other:?}"
            ))),
        }
    };
    let required = |name: &str, example: &str| {
        text(name)?.ok_or_else(|| {
            error(format!(
                "a .rhai scenario declares `const {name} = \"{example}\";` at its top"
            ))
        })
    };
    let board = required("BOARD", "mps2-an385")?;
    let image = required("IMAGE", "cortex-m/hello")?;
    let timeout = match text("TIMEOUT")? {
        Some(t) => duration::parse(&t).map_err(|e| ScenarioError::at(path, start, e.into()))?,
        None => DEFAULT_TIMEOUT,
    };
    let clock = match text("CLOCK")?.as_deref() {
        None | Some("wall") => Clock::Wall,
        Some("virtual") => Clock::Virtual,
        Some(other) => {
            return Err(error(format!(
                "`const CLOCK` is `virtual` or `wall`, not `{other}`"
            )));
        }
    };
    let args = match constants.iter().find(|(n, _)| n == "ARGS").map(|(_, c)| c) {
        None => Vec::new(),
        Some(Constant::Texts(items)) => items.clone(),
        Some(other) => {
            return Err(error(format!(
                "`const ARGS` must be an array of strings, not {other:?}"
            )));
        }
    };
    let name = text("NAME")?.unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    });
    Ok(Scenario {
        file: path.to_owned(),
        name,
        board: Some(At {
            value: board,
            loc: start,
        }),
        image: Some(At {
            value: ImageRef::Named(image),
            loc: start,
        }),
        target: TargetChoice::Auto,
        clock,
        timeout,
        runs: 1,
        env: Default::default(),
        args,
        matrix: Vec::new(),
        storage: None,
        record: None,
        table: None,
        warm_up: Vec::new(),
        steps: vec![At {
            value: Step::Script(Script {
                file: path.to_owned(),
                source: source.to_owned(),
                timeout: None,
            }),
            loc: start,
        }],
    })
}

/// Parses and validates scenario `text`; `file` names it in messages and
/// anchors its relative paths.
pub fn load_str(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let size = u64::try_from(text.len()).unwrap_or(u64::MAX);
    if size > MAX_FILE_SIZE {
        return Err(too_large(file, size));
    }
    let raw: RawScenario = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|error| ScenarioError::from_yaml(file, &error))?;
    Validator::new(file).scenario(raw)
}

fn too_large(file: &Path, size: u64) -> ScenarioError {
    ScenarioError::whole(
        file,
        ErrorKind::TooLarge {
            size,
            limit: MAX_FILE_SIZE,
        },
    )
}

/// The position just after `text`.
fn end_of(text: &str) -> Loc {
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Loc {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

/// Deserializer settings for untrusted files: YAML 1.2 booleans, no unknown
/// tags, and tight limits on aliases, nesting and size.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 32,
            max_nodes: 100_000,
            max_total_scalar_bytes: 1024 * 1024,
            max_merge_keys: 1_000,
            max_recorded_anchor_events: 100_000,
            max_inclusion_depth: 0,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        strict_booleans: true,
        reject_unsupported_tags: true,
        with_snippet: false,
    }
}

/// The start of the document, for problems with no better place.
const START: Loc = Loc { line: 1, column: 1 };

/// The scenario's own keys, validated with the loader's [`Validator`];
/// each step's options are validated by its kind.
impl Validator<'_> {
    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        match &raw.version {
            None => {
                return Err(self.error(
                    START,
                    ErrorKind::MissingKey {
                        key: "version".to_owned(),
                    },
                ));
            }
            Some(version) if version.value.trim() != "1" => {
                return Err(self.error(
                    loc(&version.referenced),
                    ErrorKind::UnsupportedVersion {
                        found: version.value.clone(),
                    },
                ));
            }
            Some(_) => {}
        }
        let name = raw.name.unwrap_or_else(|| {
            self.file()
                .file_stem()
                .unwrap_or(self.file().as_os_str())
                .to_string_lossy()
                .into_owned()
        });
        let board = raw.board.map(|b| at(&b, b.value.clone()));
        let image = raw.image.map(|i| self.image(i)).transpose()?;
        let timeout = match &raw.timeout {
            Some(t) => self.duration(t)?,
            None => DEFAULT_TIMEOUT,
        };
        let matrix = self.matrix(raw.matrix)?;
        let runs = match raw.runs {
            None => 1,
            Some(runs) => {
                // Each run of each variant is a job, planned before anything runs.
                let variants = u32::try_from(matrix.len()).unwrap_or(u32::MAX).max(1);
                let max = (MAX_JOBS / variants).max(1);
                u32::try_from(runs.value)
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        let value = runs.value;
                        let kind = ErrorKind::RunsOutOfRange { value, max };
                        self.error(loc(&runs.referenced), kind)
                    })?
            }
        };
        self.require_everywhere("board", board.is_some(), &matrix, |v| v.board.is_some())?;
        self.require_everywhere("image", image.is_some(), &matrix, |v| v.image.is_some())?;
        let warm_up = match raw.warm_up {
            None => Vec::new(),
            Some(raw) if raw.value.is_empty() => {
                return Err(self.error(loc(&raw.referenced), ErrorKind::EmptyWarmUp));
            }
            Some(raw) => self.step_list(raw)?,
        };
        let steps = self.steps(raw.steps)?;
        let table = raw.table.map(|t| self.table(t)).transpose()?;
        Ok(Scenario {
            file: self.file().to_owned(),
            name,
            board,
            image,
            target: match raw.target {
                RawTarget::Qemu => TargetChoice::Qemu,
                RawTarget::Hardware => TargetChoice::Hardware,
                RawTarget::Auto => TargetChoice::Auto,
            },
            clock: match raw.clock {
                RawClock::Virtual => Clock::Virtual,
                RawClock::Wall => Clock::Wall,
            },
            timeout,
            runs,
            env: raw.env,
            args: raw.args,
            matrix: matrix.into_iter().map(|(variant, _)| variant).collect(),
            storage: raw.storage.map(|s| loc(&s.referenced)),
            record: raw.record.and_then(|r| {
                let mode = match r.value {
                    RawRecord::Always => RecordMode::Always,
                    RawRecord::Failed => RecordMode::Failed,
                    RawRecord::Never => return None,
                };
                Some(at(&r, mode))
            }),
            table,
            warm_up,
            steps,
        })
    }

    /// `table:`: at least one column, each metric once, labels and units
    /// not empty. A metric no step names is allowed: scripts make theirs
    /// as they run.
    fn table(
        &self,
        raw: Spanned<Vec<Spanned<RawShort<RawColumn>>>>,
    ) -> Result<TableSpec, ScenarioError> {
        if raw.value.is_empty() {
            return Err(self.error(loc(&raw.referenced), ErrorKind::EmptyTable));
        }
        let mut seen: HashMap<String, Loc> = HashMap::new();
        let mut columns = Vec::with_capacity(raw.value.len());
        for spanned in raw.value {
            let column_loc = loc(&spanned.referenced);
            let (metric, label, unit, from, stat) =
                match self.short_or_full(spanned, "a metric's name or a map with `metric`")? {
                    Ok(metric) => (metric, None, None, None, None),
                    Err(full) => {
                        let metric = full.metric.ok_or_else(|| {
                            let key = "metric".to_owned();
                            self.error(column_loc, ErrorKind::MissingKey { key })
                        })?;
                        (metric, full.label, full.unit, full.from, full.stat)
                    }
                };
            let metric_loc = loc(&metric.referenced);
            let metric = self.name(metric, "metric name", is_identifier)?;
            if let Some(&first) = seen.get(&metric) {
                let kind = ErrorKind::DuplicateColumn { metric, first };
                return Err(self.error(metric_loc, kind));
            }
            seen.insert(metric.clone(), metric_loc);
            let text = |raw: Option<Spanned<String>>, key| match raw {
                Some(text) if text.value.trim().is_empty() => {
                    Err(self.error(loc(&text.referenced), ErrorKind::EmptyColumnText { key }))
                }
                other => Ok(other.map(|t| t.value)),
            };
            let label = text(label, "label")?.unwrap_or_else(|| metric.clone());
            let unit_loc = unit.as_ref().map(|u| loc(&u.referenced));
            let unit = text(unit, "unit")?;
            let scale = match from {
                None => 1.0,
                Some(from) => {
                    let from_loc = loc(&from.referenced);
                    let Some(to) = unit.as_deref() else {
                        let kind = ErrorKind::FromWithoutUnit;
                        return Err(self.error(from_loc, kind));
                    };
                    conversion(&from.value, to).ok_or_else(|| {
                        let kind = ErrorKind::UnitsDoNotConvert {
                            from: from.value.clone(),
                            to: to.to_owned(),
                        };
                        self.error(unit_loc.unwrap_or(from_loc), kind)
                    })?
                }
            };
            let stat = match stat {
                None => Statistic::Median,
                Some(stat) => Statistic::NAMES
                    .iter()
                    .find(|(name, _)| *name == stat.value)
                    .map(|(_, s)| *s)
                    .ok_or_else(|| {
                        let kind = ErrorKind::UnknownStatistic { found: stat.value };
                        self.error(loc(&stat.referenced), kind)
                    })?,
            };
            columns.push(Column {
                stat,
                scale,
                ..Column::new(metric, label, unit)
            });
        }
        Ok(TableSpec { columns })
    }

    fn matrix(
        &self,
        raw: Vec<Spanned<super::raw::RawVariant>>,
    ) -> Result<Vec<(Variant, Loc)>, ScenarioError> {
        let mut seen: HashMap<String, Loc> = HashMap::new();
        let mut variants = Vec::with_capacity(raw.len());
        for spanned in raw {
            let variant_loc = loc(&spanned.referenced);
            let raw = spanned.value;
            let name_loc = loc(&raw.name.referenced);
            let name = raw.name.value;
            if name.trim().is_empty() {
                return Err(self.error(name_loc, ErrorKind::EmptyVariantName));
            }
            if let Some(&first) = seen.get(&name) {
                return Err(self.error(name_loc, ErrorKind::DuplicateVariant { name, first }));
            }
            seen.insert(name.clone(), name_loc);
            variants.push((
                Variant {
                    name,
                    board: raw.board.map(|b| at(&b, b.value.clone())),
                    image: raw.image.map(|i| self.image(i)).transpose()?,
                    env: raw.env,
                    args: raw.args,
                },
                variant_loc,
            ));
        }
        Ok(variants)
    }

    /// Checks that `key` is set at the top level or in every variant.
    fn require_everywhere(
        &self,
        key: &'static str,
        at_top: bool,
        matrix: &[(Variant, Loc)],
        in_variant: impl Fn(&Variant) -> bool,
    ) -> Result<(), ScenarioError> {
        if at_top {
            return Ok(());
        }
        if matrix.is_empty() {
            let key = key.to_owned();
            return Err(self.error(START, ErrorKind::MissingKey { key }));
        }
        match matrix.iter().find(|(variant, _)| !in_variant(variant)) {
            Some((variant, variant_loc)) => Err(self.error(
                *variant_loc,
                ErrorKind::MissingInVariant {
                    variant: variant.name.clone(),
                    key,
                },
            )),
            None => Ok(()),
        }
    }

    fn image(&self, raw: Spanned<RawImage>) -> Result<At<ImageRef>, ScenarioError> {
        let image_loc = loc(&raw.referenced);
        let bad = |reason| self.error(image_loc, ErrorKind::BadImage(reason));
        let image = match raw.value {
            RawImage::Named(name) if name.trim().is_empty() => {
                return Err(bad("the image name is empty"));
            }
            RawImage::Named(name) => ImageRef::Named(name),
            RawImage::Wrong(found) => {
                let expected = IMAGE_EXPECTED.to_owned();
                let found = found_in_words(&found).into_owned();
                return Err(self.error(image_loc, ErrorKind::Mismatch { expected, found }));
            }
            RawImage::Files(files) => {
                let all = [&files.elf, &files.kernel, &files.dtb, &files.initrd];
                if all.iter().any(|p| p.as_ref().is_some_and(String::is_empty)) {
                    return Err(bad("a path is empty"));
                }
                match (files.elf, files.kernel) {
                    (Some(elf), None) if files.dtb.is_none() && files.initrd.is_none() => {
                        ImageRef::Elf(self.resolve(&elf))
                    }
                    (Some(_), _) => {
                        return Err(bad(
                            "`elf` cannot be combined with `kernel`, `dtb` or `initrd`",
                        ));
                    }
                    (None, Some(kernel)) => ImageRef::Linux {
                        kernel: self.resolve(&kernel),
                        dtb: files.dtb.map(|p| self.resolve(&p)),
                        initrd: files.initrd.map(|p| self.resolve(&p)),
                    },
                    (None, None) if files.dtb.is_some() || files.initrd.is_some() => {
                        return Err(bad("`dtb` and `initrd` need a `kernel`"));
                    }
                    (None, None) => return Err(bad("the map needs `elf` or `kernel`")),
                }
            }
        };
        Ok(At {
            value: image,
            loc: image_loc,
        })
    }

    fn steps(
        &self,
        raw: Option<Spanned<Vec<Spanned<RawStep>>>>,
    ) -> Result<Vec<At<Step>>, ScenarioError> {
        let Some(raw) = raw else {
            let key = "steps".to_owned();
            return Err(self.error(START, ErrorKind::MissingKey { key }));
        };
        if raw.value.is_empty() {
            return Err(self.error(loc(&raw.referenced), ErrorKind::EmptySteps));
        }
        self.step_list(raw)
    }

    /// Each step of a list, validated by its kind.
    fn step_list(
        &self,
        raw: Spanned<Vec<Spanned<RawStep>>>,
    ) -> Result<Vec<At<Step>>, ScenarioError> {
        raw.value.into_iter().map(|step| self.step(step)).collect()
    }

    fn step(&self, raw: Spanned<RawStep>) -> Result<At<Step>, ScenarioError> {
        let step_loc = loc(&raw.referenced);
        let step = match raw.value {
            RawStep::Step(kind) => kind.load(self)?,
            RawStep::Bare(name) if STEP_KEYS.contains(&name.as_str()) => {
                let example = steps::example(&name);
                return Err(self.error(step_loc, ErrorKind::BareStep { name, example }));
            }
            RawStep::Bare(name) => {
                let kind = ErrorKind::UnknownStep {
                    name,
                    known: STEP_KEYS,
                };
                return Err(self.error(step_loc, kind));
            }
            RawStep::Unknown(key) => {
                let name = key.value.clone();
                let kind = ErrorKind::UnknownStep {
                    name,
                    known: STEP_KEYS,
                };
                return Err(self.error(loc(&key.referenced), kind));
            }
            RawStep::Empty => {
                return Err(self.error(step_loc, ErrorKind::EmptyStep { known: STEP_KEYS }));
            }
            RawStep::TwoKeys { first, second } => {
                let second_loc = loc(&second.referenced);
                let second = second.value;
                let kind = ErrorKind::TwoKeysStep {
                    first,
                    second,
                    known: STEP_KEYS,
                };
                return Err(self.error(second_loc, kind));
            }
        };
        Ok(At {
            value: step,
            loc: step_loc,
        })
    }
}
