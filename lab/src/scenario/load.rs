//! Loading: read a scenario file, deserialize it safely, validate it into the model.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::{ErrorKind, ScenarioError, found_in_words, loc};
use super::model::{
    At, Boot, Clock, ExpectExit, ImageRef, Loc, Scenario, Step, TargetChoice, Variant, WaitSerial,
};
use super::raw::{
    IMAGE_EXPECTED, RawClock, RawImage, RawScenario, RawStep, RawStepKind, RawTarget, STEP_KEYS,
};
use super::{duration, pattern};

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
    load_str(path, &text)
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
    Validator { file }.scenario(raw)
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

/// Where a value was written.
fn at<T, U>(spanned: &Spanned<T>, value: U) -> At<U> {
    At {
        value,
        loc: loc(&spanned.referenced),
    }
}

/// The start of the document, for problems with no better place.
const START: Loc = Loc { line: 1, column: 1 };

/// Turns a raw scenario into the model, checking what serde could not.
struct Validator<'a> {
    file: &'a Path,
}

impl Validator<'_> {
    fn error(&self, loc: Loc, kind: ErrorKind) -> ScenarioError {
        ScenarioError::at(self.file, loc, kind)
    }

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
            self.file
                .file_stem()
                .unwrap_or(self.file.as_os_str())
                .to_string_lossy()
                .into_owned()
        });
        let board = raw.board.map(|b| at(&b, b.value.clone()));
        let image = raw.image.map(|i| self.image(i)).transpose()?;
        let timeout = match &raw.timeout {
            Some(t) => self.duration(t)?,
            None => DEFAULT_TIMEOUT,
        };
        let runs = match raw.runs {
            None => 1,
            Some(runs) => u32::try_from(runs.value)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| {
                    self.error(
                        loc(&runs.referenced),
                        ErrorKind::RunsOutOfRange { value: runs.value },
                    )
                })?,
        };
        let matrix = self.matrix(raw.matrix)?;
        self.require_everywhere("board", board.is_some(), &matrix, |v| v.board.is_some())?;
        self.require_everywhere("image", image.is_some(), &matrix, |v| v.image.is_some())?;
        let steps = self.steps(raw.steps)?;
        Ok(Scenario {
            file: self.file.to_owned(),
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
            steps,
        })
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

    /// A path from the scenario, relative to the scenario's folder.
    fn resolve(&self, path: &str) -> PathBuf {
        self.file.parent().unwrap_or(Path::new("")).join(path)
    }

    fn duration(&self, raw: &Spanned<String>) -> Result<Duration, ScenarioError> {
        duration::parse(&raw.value).map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    fn optional_duration(
        &self,
        raw: Option<&Spanned<String>>,
    ) -> Result<Option<Duration>, ScenarioError> {
        raw.map(|t| self.duration(t)).transpose()
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
        raw.value.into_iter().map(|step| self.step(step)).collect()
    }

    fn step(&self, raw: Spanned<RawStep>) -> Result<At<Step>, ScenarioError> {
        let step_loc = loc(&raw.referenced);
        let step = match raw.value {
            RawStep::Step(RawStepKind::Boot(boot)) => Step::Boot(Boot {
                halted: boot.halted,
            }),
            RawStep::Step(RawStepKind::WaitSerial(wait)) => Step::WaitSerial(WaitSerial {
                pattern: pattern::compile(&wait.pattern.value)
                    .map_err(|kind| self.error(loc(&wait.pattern.referenced), kind))?,
                timeout: self.optional_duration(wait.timeout.as_ref())?,
            }),
            RawStep::Step(RawStepKind::SendSerial(text)) => Step::SendSerial(text),
            RawStep::Step(RawStepKind::ExpectExit(exit)) => Step::ExpectExit(ExpectExit {
                code: exit.code,
                timeout: self.optional_duration(exit.timeout.as_ref())?,
            }),
            RawStep::Bare(name) if STEP_KEYS.contains(&name.as_str()) => {
                return Err(self.error(step_loc, ErrorKind::BareStep { name }));
            }
            RawStep::Bare(name) => {
                return Err(self.error(step_loc, ErrorKind::UnknownStep { name }));
            }
            RawStep::Unknown(key) => {
                let name = key.value.clone();
                return Err(self.error(loc(&key.referenced), ErrorKind::UnknownStep { name }));
            }
            RawStep::Empty => return Err(self.error(step_loc, ErrorKind::EmptyStep)),
            RawStep::TwoKeys { first, second } => {
                let second_loc = loc(&second.referenced);
                let second = second.value;
                return Err(self.error(second_loc, ErrorKind::TwoKeysStep { first, second }));
            }
        };
        Ok(At {
            value: step,
            loc: step_loc,
        })
    }
}
