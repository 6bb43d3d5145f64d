//! `expect-crash:` waits for a supervised service to exit, classifies the
//! crash from its output (a Go panic, Node's uncaught exception, a signal,
//! out of memory, an exit status) and times the supervisor's restart.
//!
//! The guest's supervisor prints `LAB service exited status=<n> t_ms=<ms>`
//! after each exit and `LAB service started t_ms=<ms>` before each start,
//! in guest milliseconds since the kernel started.

use std::collections::VecDeque;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;
use tokio::time::Instant;

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::failure::{capture_metrics, ended_early};
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::backend::{Target, TargetError};
use crate::console::{ConsoleError, LineReader, NextLine};
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::{Metrics, Status};

/// How a supervised service crashed, as `expect-crash:` classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// A Go panic: `panic: ...` and a goroutine trace, exit status 2.
    GoPanic,
    /// Node's report of an uncaught exception, exit status 1.
    UncaughtException,
    /// Killed by a signal (status above 128).
    Signal,
    /// Out of memory, as Go's runtime, V8 or the kernel reports it.
    Oom,
    /// Any other non-zero exit status.
    Exit,
}

impl CrashKind {
    /// Every kind, in the order they are listed in messages.
    pub const ALL: [CrashKind; 5] = [
        CrashKind::GoPanic,
        CrashKind::UncaughtException,
        CrashKind::Signal,
        CrashKind::Oom,
        CrashKind::Exit,
    ];

    /// The name used in scenarios and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CrashKind::GoPanic => "go-panic",
            CrashKind::UncaughtException => "uncaught-exception",
            CrashKind::Signal => "signal",
            CrashKind::Oom => "oom",
            CrashKind::Exit => "exit",
        }
    }
}

/// Options of `expect-crash:`.
#[derive(Debug, Clone)]
pub struct ExpectCrash {
    /// The expected kind; `None` accepts any crash.
    pub kind: Option<CrashKind>,
    /// After the crash, wait for the supervisor's restart and then for this
    /// pattern (the service is ready again).
    pub restart: Option<regex::bytes::Regex>,
    /// Per-step deadline, for the crash and the restart together.
    pub timeout: Option<Duration>,
}

/// `expect-crash:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectCrash {
    kind: Option<Spanned<String>>,
    restart: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for ExpectCrash {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "expect-crash",
        example: "{}",
    };
    type Raw = RawExpectCrash;

    fn load(raw: RawExpectCrash, v: &Validator<'_>) -> Result<Self, ScenarioError> {
        let kind = match raw.kind {
            None => None,
            Some(kind) => Some(
                CrashKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == kind.value)
                    .ok_or_else(|| {
                        v.error(
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
            restart: raw.restart.as_ref().map(|r| v.pattern(r)).transpose()?,
            timeout: v.optional_duration(raw.timeout.as_ref())?,
        })
        }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let detail = expect_crash(self, &mut *ctx.target, &mut ctx.metrics).await?;
        Ok(Some(detail))
    }
}

/// The supervisor's line after the service ends.
static EXITED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"LAB service exited status=(?P<status>\d+) t_ms=(?P<t_ms>\d+(?:\.\d+)?)")
        .expect("valid pattern")
});

/// The supervisor's line before the service starts.
static STARTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"LAB service started t_ms=(?P<t_ms>\d+(?:\.\d+)?)").expect("valid pattern")
});

/// A goroutine's header in a Go traceback (`goroutine 1 [running]:`, or
/// `goroutine 1 gp=0x... m=4 mp=0x... [running]:` in a fatal error).
static GOROUTINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^goroutine \d+ .*\[.*\]:\s*$").expect("valid pattern"));

/// The header of a JavaScript error report: `TypeError: msg`,
/// `Error [ERR_X]: msg`, `Uncaught Error: msg`.
static JS_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:Uncaught )?[A-Za-z_$][\w$.]*(?: \[[^\]]*\])?: |^Uncaught ")
        .expect("valid pattern")
});

/// A JavaScript stack frame: `    at fn (file:line:col)` or `    at file:line:col`.
static JS_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+at (?:(?P<function>.+?) \((?P<location>[^()]*)\)|(?P<bare>\S.*))\s*$")
        .expect("valid pattern")
});

/// The output kept for classifying: the last lines before the exit.
const KEEP_LINES: usize = 2000;

/// A classified crash.
#[derive(Debug, Clone, PartialEq)]
struct Crash {
    /// What kind of crash it was.
    pub kind: CrashKind,
    /// The service's exit status as the supervisor saw it.
    pub status: u32,
    /// The signal's name, for a status above 128.
    pub signal: Option<&'static str>,
    /// The first line of the message: the panic value, the error message.
    pub message: Option<String>,
    /// The top frame's function, as printed.
    pub function: Option<String>,
    /// The top frame's place (file:line, or file:line:col for JavaScript).
    pub location: Option<String>,
}

impl Crash {
    /// One line for messages: kind, status, message and frame.
    fn describe(&self) -> String {
        let mut text = format!("{} (status {}", self.kind.as_str(), self.status);
        if let Some(signal) = self.signal {
            text.push_str(&format!(", {signal}"));
        }
        text.push(')');
        if let Some(message) = &self.message {
            text.push_str(&format!(": {message:?}"));
        }
        match (&self.function, &self.location) {
            (Some(f), Some(l)) => text.push_str(&format!(" in {f} at {l}")),
            (None, Some(l)) => text.push_str(&format!(" at {l}")),
            _ => {}
        }
        text
    }
}

/// Classifies the output of a service that exited with `status`.
fn classify<S: AsRef<str>>(lines: &[S], status: u32) -> Crash {
    let lines: Vec<&str> = lines.iter().map(|l| l.as_ref()).collect();
    let signal = status.checked_sub(128).and_then(signal_name);
    let (function, location) = go_frame(&lines)
        .or_else(|| js_frame(&lines))
        .map_or((None, None), |(f, l)| (f, Some(l)));
    let crash = |kind, message: Option<String>| Crash {
        kind,
        status,
        signal,
        message,
        function: function.clone(),
        location: location.clone(),
    };
    let oom = lines.iter().find(|l| {
        (l.starts_with("fatal error: ") && l.contains("out of memory"))
            || (l.starts_with("FATAL ERROR: ") && l.contains("JavaScript heap out of memory"))
            || l.contains("Out of memory: Killed process")
    });
    if let Some(line) = oom {
        return crash(CrashKind::Oom, Some(line.trim().to_owned()));
    }
    let panic = lines.iter().position(|l| l.starts_with("panic: "));
    if status == 2
        && let Some(at) = panic
        && lines[at..].iter().any(|l| GOROUTINE.is_match(l))
    {
        let value = lines[at].trim_start_matches("panic: ").trim_end();
        return crash(CrashKind::GoPanic, Some(value.to_owned()));
    }
    if status == 1
        && let Some(message) = js_uncaught(&lines)
    {
        return crash(CrashKind::UncaughtException, Some(message));
    }
    if signal.is_some() {
        return crash(CrashKind::Signal, None);
    }
    let message = lines
        .iter()
        .find(|l| l.starts_with("fatal error: "))
        .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_owned());
    crash(CrashKind::Exit, message)
}

/// Node's report of an uncaught exception: an error header followed by
/// `at` frames, or the throw site marked with a caret (for a thrown value
/// that is not an Error). Returns the message's first line.
fn js_uncaught(lines: &[&str]) -> Option<String> {
    let framed = lines.iter().enumerate().find(|(i, l)| {
        JS_ERROR.is_match(l)
            && !l.starts_with("panic: ")
            && lines[i + 1..].iter().any(|f| JS_FRAME.is_match(f))
    });
    if let Some((_, header)) = framed {
        return Some(header.trim().to_owned());
    }
    let caret = lines.iter().position(|l| {
        let t = l.trim();
        !t.is_empty() && t.chars().all(|c| c == '^')
    })?;
    lines[caret + 1..]
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// The first frame of a Go traceback outside the runtime: its function
/// (without arguments) and `file:line`.
fn go_frame(lines: &[&str]) -> Option<(Option<String>, String)> {
    let start = lines.iter().position(|l| GOROUTINE.is_match(l))?;
    let frames = &lines[start + 1..];
    frames
        .windows(2)
        .filter(|pair| !pair[0].starts_with('\t') && pair[1].starts_with('\t'))
        .map(|pair| {
            let function = strip_arguments(pair[0].trim());
            let place = pair[1].trim();
            // `file.go:12 +0x1c fp=... sp=... pc=...`: keep `file.go:12`.
            let place = place.split(' ').next().unwrap_or(place);
            (function, place.to_owned())
        })
        .find(|(function, _)| !function.starts_with("runtime.") && function != "panic")
        .map(|(function, place)| (Some(function), place))
}

/// `main.(*service).handle(...)` without its argument list: `main.(*service).handle`.
fn strip_arguments(call: &str) -> String {
    if !call.ends_with(')') {
        return call.to_owned();
    }
    let mut depth = 0;
    for (i, c) in call.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return call[..i].to_owned();
                }
            }
            _ => {}
        }
    }
    call.to_owned()
}

/// The first JavaScript `at` frame: its function (none for a bare place)
/// and its place.
fn js_frame(lines: &[&str]) -> Option<(Option<String>, String)> {
    lines.iter().find_map(|l| {
        let caps = JS_FRAME.captures(l)?;
        match (
            caps.name("function"),
            caps.name("location"),
            caps.name("bare"),
        ) {
            (Some(f), Some(place), _) => Some((Some(f.as_str().to_owned()), place.as_str().into())),
            (_, _, Some(bare)) => Some((None, bare.as_str().trim().to_owned())),
            _ => None,
        }
    })
}

/// Linux's name for signal `number` (the generic numbering arm64 and x86 share).
fn signal_name(number: u32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let index = usize::try_from(number.checked_sub(1)?).ok()?;
    NAMES.get(index).copied()
}

/// Reads lines until `pattern` matches one, keeping the last lines before it.
struct Reader {
    lines: LineReader,
    deadline: Option<Instant>,
    started: Instant,
    seen: VecDeque<String>,
}

/// Why the reader stopped before its pattern.
enum Stop {
    /// The step's deadline.
    TimedOut(ConsoleError),
    /// The console closed.
    Closed(ConsoleError),
}

impl Reader {
    /// The first line that `matches`; `what` names it in errors.
    async fn until(&mut self, matches: impl Fn(&str) -> bool, what: &str) -> Result<String, Stop> {
        loop {
            match self.lines.next(self.deadline).await {
                NextLine::Line(line) if matches(&line.text) => return Ok(line.text),
                NextLine::Line(line) => {
                    if self.seen.len() == KEEP_LINES {
                        self.seen.pop_front();
                    }
                    self.seen.push_back(line.text);
                }
                NextLine::TimedOut { tail } => {
                    return Err(Stop::TimedOut(ConsoleError::Timeout {
                        pattern: what.to_owned(),
                        after: self.started.elapsed(),
                        tail: self.tail(tail),
                    }));
                }
                NextLine::Closed { tail } => {
                    return Err(Stop::Closed(ConsoleError::Closed {
                        pattern: what.to_owned(),
                        tail: self.tail(tail),
                    }));
                }
            }
        }
    }

    /// The output to show in an error: the pending partial line, or the last line.
    fn tail(&self, partial: String) -> String {
        if partial.is_empty() {
            self.seen.back().cloned().unwrap_or_default()
        } else {
            partial
        }
    }
}

/// A guest time in ms from a supervisor line's `t_ms`.
fn t_ms(pattern: &Regex, line: &str) -> f64 {
    pattern
        .captures(line)
        .and_then(|c| c.name("t_ms"))
        .and_then(|m| m.as_str().parse().ok())
        .unwrap_or_default()
}

/// Runs `expect-crash`; the detail says what crashed, how and where.
async fn expect_crash(
    step: &ExpectCrash,
    target: &mut dyn Target,
    metrics: &mut Metrics,
) -> Result<Detail, StepFailure> {
    let started = Instant::now();
    let mut reader = Reader {
        lines: target.console()?.lines(),
        deadline: step.timeout.map(|t| started + t),
        started,
        seen: VecDeque::new(),
    };
    match watch(step, &mut reader, metrics).await {
        Ok(detail) => Ok(detail),
        Err(Watch::Failed(failure)) => Err(failure),
        Err(Watch::Stopped(Stop::TimedOut(e))) => Err(TargetError::from(e).into()),
        Err(Watch::Stopped(Stop::Closed(e))) => Err(ended_early(target, e).await),
    }
}

/// Why [`watch`] did not pass.
enum Watch {
    /// An expectation did not hold.
    Failed(StepFailure),
    /// The console stopped first.
    Stopped(Stop),
}

impl From<Stop> for Watch {
    fn from(stop: Stop) -> Self {
        Watch::Stopped(stop)
    }
}

impl From<StepFailure> for Watch {
    fn from(failure: StepFailure) -> Self {
        Watch::Failed(failure)
    }
}

/// The crash, then with `restart` the supervisor's restart and the ready line.
async fn watch(
    step: &ExpectCrash,
    reader: &mut Reader,
    metrics: &mut Metrics,
) -> Result<Detail, Watch> {
    let exited = reader
        .until(
            |l| EXITED.is_match(l),
            "LAB service exited status=<n> t_ms=<ms>",
        )
        .await?;
    let caps = EXITED.captures(&exited).expect("the line matched");
    let status: u32 = caps["status"].parse().unwrap_or(u32::MAX);
    let exited_ms = t_ms(&EXITED, &exited);
    if status == 0 {
        return Err(StepFailure::new(
            Status::Failed,
            "the service exited with status 0: no crash".to_owned(),
        )
        .into());
    }
    let seen: Vec<&String> = reader.seen.iter().collect();
    let crash = classify(&seen, status);
    if let Some(want) = step.kind
        && want != crash.kind
    {
        return Err(StepFailure::new(
            Status::Failed,
            format!(
                "expected `{}`, but the service crashed with {}",
                want.as_str(),
                crash.describe()
            ),
        )
        .into());
    }
    metrics.insert("exit_status".into(), f64::from(status));
    let mut detail = Detail::new();
    detail.insert("kind".into(), json!(crash.kind.as_str()));
    detail.insert("status".into(), json!(status));
    for (key, value) in [
        ("signal", crash.signal.map(str::to_owned)),
        ("message", crash.message),
        ("function", crash.function),
        ("location", crash.location),
    ] {
        if let Some(value) = value {
            detail.insert(key.into(), json!(value));
        }
    }
    detail.insert("exited_ms".into(), json!(exited_ms));
    let Some(ready) = &step.restart else {
        return Ok(detail);
    };
    let restarted = reader
        .until(|l| STARTED.is_match(l), "LAB service started t_ms=<ms>")
        .await?;
    let started_ms = t_ms(&STARTED, &restarted);
    let recover_ms = started_ms - exited_ms;
    metrics.insert("recover_ms".into(), recover_ms);
    detail.insert("recover_ms".into(), json!(recover_ms));
    let ready_line = reader
        .until(|l| ready.is_match(l.as_bytes()), ready.as_str())
        .await?;
    let caps = ready
        .captures(ready_line.as_bytes())
        .expect("the line matched");
    for (name, value) in capture_metrics(ready, &caps)? {
        if name == "t_ms" {
            metrics.insert("recover_ready_ms".into(), value - exited_ms);
            detail.insert("recover_ready_ms".into(), json!(value - exited_ms));
        } else {
            metrics.insert(name, value);
        }
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output, captured from Go 1.23 (`-trimpath`) and Node 20.
    fn sample(name: &str) -> Vec<&'static str> {
        let text = match name {
            "go-panic" => include_str!("../../tests/fixtures/crashes/go-panic.txt"),
            "go-panic-index" => include_str!("../../tests/fixtures/crashes/go-panic-index.txt"),
            "go-oom" => include_str!("../../tests/fixtures/crashes/go-oom.txt"),
            "node-uncaught" => include_str!("../../tests/fixtures/crashes/node-uncaught.txt"),
            "node-throw-string" => {
                include_str!("../../tests/fixtures/crashes/node-throw-string.txt")
            }
            "node-rejection" => include_str!("../../tests/fixtures/crashes/node-rejection.txt"),
            "node-oom" => include_str!("../../tests/fixtures/crashes/node-oom.txt"),
            other => panic!("no sample {other}"),
        };
        text.lines().collect()
    }

    fn seen(c: &Crash) -> (CrashKind, Option<&str>, Option<&str>, Option<&str>) {
        (
            c.kind,
            c.message.as_deref(),
            c.function.as_deref(),
            c.location.as_deref(),
        )
    }

    #[test]
    fn a_go_panic_gives_its_value_and_the_panicking_function() {
        let c = classify(&sample("go-panic"), 2);
        assert_eq!(
            seen(&c),
            (
                CrashKind::GoPanic,
                Some("boom at message 3"),
                Some("main.(*service).handle"),
                Some("x/main.go:12")
            )
        );
        let c = classify(&sample("go-panic-index"), 2);
        assert_eq!(
            seen(&c),
            (
                CrashKind::GoPanic,
                Some("runtime error: index out of range [5] with length 1"),
                Some("main.main"),
                Some("x/main.go:25")
            )
        );
    }

    #[test]
    fn an_uncaught_node_exception_gives_its_message_and_top_frame() {
        let c = classify(&sample("node-uncaught"), 1);
        assert_eq!(
            seen(&c),
            (
                CrashKind::UncaughtException,
                Some("TypeError: bad message 3"),
                Some("handle"),
                Some("/app/crash.js:4:11")
            )
        );
        let c = classify(&sample("node-rejection"), 1);
        assert_eq!(
            seen(&c),
            (
                CrashKind::UncaughtException,
                Some("RangeError: no such sensor"),
                None,
                Some("[eval]:1:16")
            )
        );
        // A thrown string has no stack: the value after the throw site.
        let c = classify(&sample("node-throw-string"), 1);
        assert_eq!(
            (c.kind, c.message.as_deref()),
            (CrashKind::UncaughtException, Some("plain string"))
        );
    }

    #[test]
    fn out_of_memory_wins_over_the_status_it_ends_with() {
        let c = classify(&sample("go-oom"), 2);
        assert_eq!(
            seen(&c),
            (
                CrashKind::Oom,
                Some("fatal error: out of memory"),
                Some("main.grow"),
                Some("x/main.go:7")
            )
        );
        // V8 aborts: SIGABRT, status 134.
        let c = classify(&sample("node-oom"), 134);
        assert_eq!(c.kind, CrashKind::Oom);
        assert_eq!(c.signal, Some("SIGABRT"));
        assert_eq!(
            c.message.as_deref(),
            Some(
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
            )
        );
    }

    #[test]
    fn signals_and_other_statuses() {
        let c = classify(&["APP ready"], 137);
        assert_eq!((c.kind, c.signal), (CrashKind::Signal, Some("SIGKILL")));
        assert_eq!(classify(&["x"], 139).signal, Some("SIGSEGV"));
        let c = classify(&["APP ready", "config missing", ""], 3);
        assert_eq!(
            (c.kind, c.message.as_deref()),
            (CrashKind::Exit, Some("config missing"))
        );
        // A panic's text with another status is not a Go panic.
        assert_eq!(classify(&sample("go-panic"), 1).kind, CrashKind::Exit);
        // Node's report with another status is not an uncaught exception.
        assert_eq!(classify(&sample("node-uncaught"), 7).kind, CrashKind::Exit);
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(64), None);
    }

    #[test]
    fn arguments_are_stripped_from_go_functions() {
        assert_eq!(
            strip_arguments("main.(*service).handle(...)"),
            "main.(*service).handle"
        );
        assert_eq!(strip_arguments("main.f(0x1, {0x2, 0x3})"), "main.f");
        assert_eq!(strip_arguments("main.main()"), "main.main");
        assert_eq!(strip_arguments("main.main"), "main.main");
    }
}
