//! Loading: read a scenario file, deserialize it safely, validate it into the model.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::{ErrorKind, ScenarioError, found_in_words, loc};
use super::model::{
    At, AttachDebugger, Boot, Break, Clock, CodeLocation, Continue, CrashKind, DataLocation,
    Direction, ExpectCrash, ExpectExit, ExpectFault, FaultKind, GcFormat, GcTrace, ImageRef, Loc,
    ReadMemory, ReadRegister, ReadSymbol, Scenario, Script, SerialLoad, Step, StepInstructions,
    TargetChoice, Trend, Variant, WaitSerial, WriteMemory, WriteSymbol,
};
use super::raw::{
    IMAGE_EXPECTED, RawBreak, RawClock, RawExpectCrash, RawExpectFault, RawGcTrace, RawImage,
    RawReadMemory, RawReadRegister, RawReadSymbol, RawScalar, RawScenario, RawScript,
    RawSerialLoad, RawShort, RawStep, RawStepKind, RawTarget, RawTrend, RawTrendExpect,
    RawWriteMemory, RawWriteSymbol, STEP_KEYS,
};
use super::{location, pattern};
use crate::source::duration;

/// Scenario files larger than this (1 MiB) are refused without being parsed.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// The most jobs (runs × matrix variants) a scenario may have: far more
/// than a lab runs in a day, and few enough that planning them takes no
/// time. `runs: 4000000000` would have `lab check` plan jobs until memory
/// runs out.
pub const MAX_JOBS: u32 = 10_000;

/// How long `serial-load` waits for stragglers when `drain:` is not given.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(2);

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

/// A script checker's error as a scenario error at the script's own
/// position (`at` when it has none).
fn script_error(file: &Path, at: Loc, e: &crate::script::ScriptError) -> ScenarioError {
    let kind = ErrorKind::Script {
        message: e.kind().to_string(),
        hint: e.kind().hint(),
    };
    ScenarioError::at(file, e.location().unwrap_or(at), kind)
}

/// A `.rhai` scenario: the script is the one step, and its top-level
/// constants give the settings a YAML file has at the top: `BOARD` and
/// `IMAGE` (required), `NAME`, `TIMEOUT`, `CLOCK` and `ARGS`. The script
/// boots the target itself with `boot()`.
fn load_script(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
    use crate::script::Constant;
    let start = Loc { line: 1, column: 1 };
    let error = |message: String| ScenarioError::at(path, start, ErrorKind::Other(message));
    let constants =
        crate::script::constants(path, source).map_err(|e| script_error(path, start, &e))?;
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
    let patterns = pattern::Budget::default();
    Validator { file, patterns }.scenario(raw)
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
    /// What the file's patterns may still take.
    patterns: pattern::Budget,
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
        duration::parse(&raw.value).map_err(|e| self.error(loc(&raw.referenced), e.into()))
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
                pattern: self.pattern(&wait.pattern)?,
                timeout: self.optional_duration(wait.timeout.as_ref())?,
            }),
            RawStep::Step(RawStepKind::SendSerial(text)) => Step::SendSerial(text),
            RawStep::Step(RawStepKind::ExpectExit(exit)) => Step::ExpectExit(ExpectExit {
                code: exit.code,
                timeout: self.optional_duration(exit.timeout.as_ref())?,
            }),
            RawStep::Step(RawStepKind::AttachDebugger(attach)) => {
                Step::AttachDebugger(AttachDebugger {
                    timeout: self.optional_duration(attach.timeout.as_ref())?,
                })
            }
            RawStep::Step(RawStepKind::Break(raw)) => Step::Break(self.break_step(*raw)?),
            RawStep::Step(RawStepKind::Continue(cont)) => Step::Continue(Continue {
                timeout: self.optional_duration(cont.timeout.as_ref())?,
                stop_at: cont.stop_at.map(|at| self.code_location(&at)).transpose()?,
            }),
            RawStep::Step(RawStepKind::Step(step)) => Step::Step(StepInstructions {
                count: match step.count {
                    Some(count) => self.in_range("`count`", &count, 1, u32::MAX)?,
                    None => 1,
                },
            }),
            RawStep::Step(RawStepKind::ReadRegister(raw)) => {
                Step::ReadRegister(self.read_register(*raw)?)
            }
            RawStep::Step(RawStepKind::ReadMemory(raw)) => {
                Step::ReadMemory(self.read_memory(*raw)?)
            }
            RawStep::Step(RawStepKind::ReadSymbol(raw)) => {
                Step::ReadSymbol(self.read_symbol(*raw)?)
            }
            RawStep::Step(RawStepKind::WriteMemory(raw)) => {
                Step::WriteMemory(self.write_memory(*raw)?)
            }
            RawStep::Step(RawStepKind::WriteSymbol(raw)) => {
                Step::WriteSymbol(self.write_symbol(*raw)?)
            }
            RawStep::Step(RawStepKind::Detach) => Step::Detach,
            RawStep::Step(RawStepKind::Footprint) => Step::Footprint,
            RawStep::Step(RawStepKind::MemoryLayout) => Step::MemoryLayout,
            RawStep::Step(RawStepKind::Trend(raw)) => Step::Trend(self.trend(*raw)?),
            RawStep::Step(RawStepKind::Script(raw)) => Step::Script(self.script(*raw)?),
            RawStep::Step(RawStepKind::GcTrace(raw)) => Step::GcTrace(self.gc_trace(*raw)?),
            RawStep::Step(RawStepKind::ExpectCrash(raw)) => {
                Step::ExpectCrash(self.expect_crash(*raw)?)
            }
            RawStep::Step(RawStepKind::SerialLoad(raw)) => {
                Step::SerialLoad(self.serial_load(*raw)?)
            }
            RawStep::Step(RawStepKind::ExpectFault(raw)) => {
                Step::ExpectFault(self.expect_fault(*raw)?)
            }
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

    /// `script:` with its source read and checked (syntax, unknown functions,
    /// argument counts), so `lab check` catches script errors too.
    fn script(&self, raw: Spanned<RawScript>) -> Result<Script, ScenarioError> {
        let at = loc(&raw.referenced);
        let options = raw.value;
        let (file, source, source_at) = match (options.file, options.source) {
            (Some(file), None) => {
                let path = self.resolve(&file.value);
                let source = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        loc(&file.referenced),
                        ErrorKind::Other(format!("cannot read script {}: {e}", path.display())),
                    )
                })?;
                (path, source, loc(&file.referenced))
            }
            // Positions in an inline script count from the script's own start.
            (None, Some(source)) => (
                PathBuf::from(format!("{} (inline script)", self.file.display())),
                source.value,
                loc(&source.referenced),
            ),
            _ => {
                return Err(self.error(
                    at,
                    ErrorKind::Other(
                        "`script` takes exactly one of `file` (a .rhai file) and `source` (inline)"
                            .into(),
                    ),
                ));
            }
        };
        if let Err(e) = crate::script::check(&file, &source) {
            return Err(script_error(&file, source_at, &e));
        }
        Ok(Script {
            file,
            source,
            timeout: self.optional_duration(options.timeout.as_ref())?,
        })
    }

    /// `trend:` with a pattern that has groups `x` and `y`.
    fn trend(&self, raw: RawTrend) -> Result<Trend, ScenarioError> {
        let sample = self.pattern(&raw.pattern)?;
        for group in ["x", "y"] {
            if !sample.capture_names().flatten().any(|n| n == group) {
                return Err(self.error(
                    loc(&raw.pattern.referenced),
                    ErrorKind::Other(format!(
                        "the trend pattern has no named group `{group}`: write `(?P<x>\\d+)` for \
                         the time and `(?P<y>\\d+)` for the value"
                    )),
                ));
            }
        }
        let direction = |value: &str, at: Loc| match value {
            "rising" => Ok(Direction::Rising),
            "flat" => Ok(Direction::Flat),
            "falling" => Ok(Direction::Falling),
            other => Err(self.error(
                at,
                ErrorKind::UnknownValue {
                    value: other.to_owned(),
                    expected: vec!["rising", "flat", "falling"],
                },
            )),
        };
        let mut expect = BTreeMap::new();
        if let Some(e) = &raw.expect {
            let at = loc(&e.referenced);
            match &e.value {
                RawTrendExpect::All(d) => {
                    expect.insert(None, direction(d, at)?);
                }
                RawTrendExpect::PerVariant(map) => {
                    for (variant, d) in map {
                        expect.insert(Some(variant.clone()), direction(d, at)?);
                    }
                }
            }
        }
        Ok(Trend {
            pattern: sample,
            until: raw.until.as_ref().map(|u| self.pattern(u)).transpose()?,
            timeout: self.optional_duration(raw.timeout.as_ref())?,
            metric: self
                .metric(raw.metric)?
                .unwrap_or_else(|| "slope".to_owned()),
            expect,
        })
    }

    /// `gc-trace:` with a known format and a valid `until` pattern.
    fn gc_trace(&self, raw: Spanned<RawGcTrace>) -> Result<GcTrace, ScenarioError> {
        const STEP: &str = "gc-trace";
        let map = loc(&raw.referenced);
        let options = raw.value;
        let format = self.required(options.format, STEP, "format", map)?;
        let until = self.required(options.until, STEP, "until", map)?;
        let format = match format.value.as_str() {
            "go" => GcFormat::Go,
            "v8" => GcFormat::V8,
            "auto" => GcFormat::Auto,
            other => {
                return Err(self.error(
                    loc(&format.referenced),
                    ErrorKind::UnknownValue {
                        value: other.to_owned(),
                        expected: vec!["go", "v8", "auto"],
                    },
                ));
            }
        };
        Ok(GcTrace {
            format,
            until: self.pattern(&until)?,
            timeout: self.optional_duration(options.timeout.as_ref())?,
        })
    }

    /// `expect-crash:` with a known kind and a valid `restart` pattern.
    fn expect_crash(&self, raw: RawExpectCrash) -> Result<ExpectCrash, ScenarioError> {
        let kind = match raw.kind {
            None => None,
            Some(kind) => Some(
                CrashKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == kind.value)
                    .ok_or_else(|| {
                        self.error(
                            loc(&kind.referenced),
                            ErrorKind::UnknownValue {
                                value: kind.value.clone(),
                                expected: CrashKind::ALL.map(CrashKind::as_str).to_vec(),
                            },
                        )
                    })?,
            ),
        };
        Ok(ExpectCrash {
            kind,
            restart: raw.restart.as_ref().map(|r| self.pattern(r)).transpose()?,
            timeout: self.optional_duration(raw.timeout.as_ref())?,
        })
    }

    /// `serial-load:` with a rate in range, `{seq}` in `send`, a `seq`
    /// group in `reply`, and a timeout long enough to send everything.
    fn serial_load(&self, raw: Spanned<RawSerialLoad>) -> Result<SerialLoad, ScenarioError> {
        const STEP: &str = "serial-load";
        /// The slowest rate a load may ask for, in messages per second (one
        /// message every 1000 s): the sending of the most messages a load
        /// may have must be a duration that the lab can count.
        const MIN_RATE: f64 = 0.001;
        /// The fastest rate a load may ask for, in messages per second.
        const MAX_RATE: f64 = 100_000.0;
        let map = loc(&raw.referenced);
        let options = raw.value;
        let count = self.required(options.count, STEP, "count", map)?;
        let count = self.in_range("`count`", &count, 1, 1_000_000)?;
        let rate = self.required(options.rate, STEP, "rate", map)?;
        let rate = match rate.value {
            RawScalar::Unsigned(v) => Some(v as f64),
            RawScalar::Float(v) => Some(v),
            _ => None,
        }
        .filter(|r| (MIN_RATE..=MAX_RATE).contains(r))
        .ok_or_else(|| {
            self.error(
                loc(&rate.referenced),
                ErrorKind::Mismatch {
                    expected: format!(
                        "a rate in messages per second, from {MIN_RATE} to {MAX_RATE}"
                    ),
                    found: rate.value.describe(),
                },
            )
        })?;
        let send = self.required(options.send, STEP, "send", map)?;
        if !send.value.contains("{seq}") {
            return Err(self.error(
                loc(&send.referenced),
                ErrorKind::Other(
                    "`send` has no `{seq}`: each message carries its number so that replies can \
                     be matched to it, like `send: \"MSG {seq}\\n\"`"
                        .into(),
                ),
            ));
        }
        let reply = self.required(options.reply, STEP, "reply", map)?;
        let reply_at = loc(&reply.referenced);
        let reply = self.pattern(&reply)?;
        if !reply.capture_names().flatten().any(|n| n == "seq") {
            return Err(self.error(
                reply_at,
                ErrorKind::Other(
                    "the reply pattern has no named group `seq`: write `(?P<seq>\\d+)` where the \
                     reply carries the message's number"
                        .into(),
                ),
            ));
        }
        let timeout = self.optional_duration(options.timeout.as_ref())?;
        let sending = Duration::from_secs_f64(f64::from(count - 1) / rate);
        if let (Some(t), Some(limit)) = (&options.timeout, timeout)
            && sending >= limit
        {
            return Err(self.error(
                loc(&t.referenced),
                ErrorKind::Other(format!(
                    "{count} messages at {rate} per second take {} to send, longer than the \
                     step's timeout of {}",
                    humantime::format_duration(Duration::from_millis(
                        u64::try_from(sending.as_millis()).unwrap_or(u64::MAX)
                    )),
                    humantime::format_duration(limit)
                )),
            ));
        }
        Ok(SerialLoad {
            count,
            rate,
            send: send.value,
            reply,
            timeout,
            drain: self
                .optional_duration(options.drain.as_ref())?
                .unwrap_or(DEFAULT_DRAIN),
        })
    }

    /// A regex option, compiled within the file's pattern budget.
    fn pattern(&self, raw: &Spanned<String>) -> Result<regex::bytes::Regex, ScenarioError> {
        pattern::compile(&raw.value, &self.patterns)
            .map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    /// `expect-fault:` with its kind and cause checked against the known names.
    fn expect_fault(&self, raw: RawExpectFault) -> Result<ExpectFault, ScenarioError> {
        let kind = match raw.kind.value.as_str() {
            "hardfault" => FaultKind::HardFault,
            "lockup" => FaultKind::Lockup,
            other => {
                return Err(self.error(
                    loc(&raw.kind.referenced),
                    ErrorKind::UnknownValue {
                        value: other.to_owned(),
                        expected: vec!["hardfault", "lockup"],
                    },
                ));
            }
        };
        let cause = match raw.cause {
            Some(cause) if !crate::fault::cause_names().any(|n| n == cause.value) => {
                return Err(self.error(
                    loc(&cause.referenced),
                    ErrorKind::UnknownValue {
                        value: cause.value,
                        expected: crate::fault::cause_names().collect(),
                    },
                ));
            }
            cause => cause.map(|c| c.value),
        };
        Ok(ExpectFault {
            kind,
            cause,
            function: raw.function,
            timeout: self.optional_duration(raw.timeout.as_ref())?,
        })
    }

    /// A required option of a step, or an error at the step's map.
    fn required<T>(
        &self,
        value: Option<T>,
        step: &'static str,
        key: &'static str,
        map: Loc,
    ) -> Result<T, ScenarioError> {
        value.ok_or_else(|| self.error(map, ErrorKind::MissingStepKey { step, key }))
    }

    /// A step's shorthand scalar as a name, or its map of options.
    fn short_or_full<T>(
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

    fn break_step(&self, raw: Spanned<RawShort<RawBreak>>) -> Result<Break, ScenarioError> {
        let map = loc(&raw.referenced);
        match raw.value {
            RawShort::Short(scalar) => Ok(Break {
                at: self.code_location(&Spanned {
                    value: scalar,
                    referenced: raw.referenced,
                    defined: raw.defined,
                })?,
                hardware: false,
            }),
            RawShort::Full(options) => Ok(Break {
                at: self.code_location(&self.required(options.at, "break", "at", map)?)?,
                hardware: options.hardware,
            }),
        }
    }

    fn read_register(
        &self,
        raw: Spanned<RawShort<RawReadRegister>>,
    ) -> Result<ReadRegister, ScenarioError> {
        const STEP: &str = "read-register";
        let map = loc(&raw.referenced);
        let options = match self.short_or_full(raw, "a register name or a map")? {
            Ok(name) => RawReadRegister {
                name: Some(name),
                metric: None,
                expect: None,
            },
            Err(options) => options,
        };
        let name = self.required(options.name, STEP, "name", map)?;
        let expect = match options.expect {
            Some(expect) => Some(location::unsigned(&expect.value).ok_or_else(|| {
                self.error(
                    loc(&expect.referenced),
                    ErrorKind::Mismatch {
                        expected: "an integer from 0, or `0x` and hex digits".to_owned(),
                        found: expect.value.describe(),
                    },
                )
            })?),
            None => None,
        };
        Ok(ReadRegister {
            name: self.name(name, "register name", location::is_identifier)?,
            metric: self.metric(options.metric)?,
            expect,
        })
    }

    fn read_memory(&self, raw: Spanned<RawReadMemory>) -> Result<ReadMemory, ScenarioError> {
        const STEP: &str = "read-memory";
        let map = loc(&raw.referenced);
        let options = raw.value;
        let address =
            self.data_location(&self.required(options.address, STEP, "address", map)?)?;
        let length = self.required(options.length, STEP, "length", map)?;
        let length = self.in_range("`length`", &length, 1, 65536)?;
        let expect = match options.expect {
            Some(expect) => {
                let bytes = self.bytes(expect.value)?;
                if bytes.len() != usize::try_from(length).unwrap_or(usize::MAX) {
                    return Err(self.error(
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

    fn read_symbol(
        &self,
        raw: Spanned<RawShort<RawReadSymbol>>,
    ) -> Result<ReadSymbol, ScenarioError> {
        let map = loc(&raw.referenced);
        let options = match self.short_or_full(raw, "a symbol name or a map")? {
            Ok(name) => RawReadSymbol {
                name: Some(name),
                metric: None,
                expect: None,
            },
            Err(options) => options,
        };
        let name = self.required(options.name, "read-symbol", "name", map)?;
        Ok(ReadSymbol {
            name: self.name(name, "symbol name", location::is_symbol)?,
            metric: self.metric(options.metric)?,
            expect: options.expect.map(|e| self.number(&e)).transpose()?,
        })
    }

    fn write_memory(&self, raw: Spanned<RawWriteMemory>) -> Result<WriteMemory, ScenarioError> {
        const STEP: &str = "write-memory";
        let map = loc(&raw.referenced);
        let options = raw.value;
        let address =
            self.data_location(&self.required(options.address, STEP, "address", map)?)?;
        let bytes = self.required(options.bytes, STEP, "bytes", map)?;
        if bytes.value.is_empty() {
            return Err(self.error(loc(&bytes.referenced), ErrorKind::EmptyBytes));
        }
        Ok(WriteMemory {
            address,
            bytes: self.bytes(bytes.value)?,
        })
    }

    fn write_symbol(&self, raw: Spanned<RawWriteSymbol>) -> Result<WriteSymbol, ScenarioError> {
        const STEP: &str = "write-symbol";
        let map = loc(&raw.referenced);
        let options = raw.value;
        let name = self.required(options.name, STEP, "name", map)?;
        let value = self.required(options.value, STEP, "value", map)?;
        Ok(WriteSymbol {
            name: self.name(name, "symbol name", location::is_symbol)?,
            value: self.number(&value)?,
        })
    }

    fn code_location(&self, raw: &Spanned<RawScalar>) -> Result<CodeLocation, ScenarioError> {
        location::code(&raw.value).map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    fn data_location(&self, raw: &Spanned<RawScalar>) -> Result<DataLocation, ScenarioError> {
        location::data(&raw.value).map_err(|kind| self.error(loc(&raw.referenced), kind))
    }

    /// A name checked by `valid`; `what` names it in messages.
    fn name(
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

    fn metric(&self, raw: Option<Spanned<String>>) -> Result<Option<String>, ScenarioError> {
        raw.map(|m| self.name(m, "metric name", location::is_identifier))
            .transpose()
    }

    /// A number for a symbol's value: any YAML integer or float.
    fn number(&self, raw: &Spanned<RawScalar>) -> Result<f64, ScenarioError> {
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
    fn bytes(&self, raw: Vec<Spanned<i64>>) -> Result<Vec<u8>, ScenarioError> {
        raw.iter()
            .map(|byte| self.in_range("a byte", byte, 0, u8::MAX))
            .collect()
    }

    /// An integer in `min..=max`, converted to its type.
    fn in_range<T: TryFrom<i64> + Into<i64>>(
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
