//! `expect-fault:` catches a Cortex-M fault from outside the firmware: on
//! entry to its HardFault handler (found through VTOR, whatever it is named),
//! then the stacked frame and the fault registers. The debugger does it when
//! one is attached; otherwise the target's HardFault catch, armed at boot
//! (QEMU). Only a target without either (a board without a debugger step)
//! falls back to the lab runtime's UART report. The step decodes CFSR and
//! HFSR and places the faulting PC in the source.

use std::sync::LazyLock;
use std::time::Duration;

use regex::bytes::Regex;
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use super::debugger::{Debugger, insert_location, load_elf};
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::backend::{GuestExit, Target, TargetError};
use crate::console::ConsoleError;
use crate::elf::ElfInfo;
use crate::fault::{CaughtFault, FaultStatus};
use crate::loader::{ErrorKind, ScenarioError, StepSyntax, Validator, loc};
use crate::report::Status;

/// The kind of fault `expect-fault:` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The HardFault handler ran (any configurable fault escalates to it).
    HardFault,
    /// The core locked up (a fault inside the fault handler); QEMU aborts.
    Lockup,
}

/// Options of `expect-fault:`.
#[derive(Debug, Clone)]
pub struct ExpectFault {
    /// The expected kind.
    pub kind: FaultKind,
    /// A CFSR or HFSR bit that must be set (`UNDEFINSTR`, `PRECISERR`, `FORCED`).
    pub cause: Option<String>,
    /// The function the stacked PC must lie in.
    pub function: Option<String>,
    /// Per-step deadline.
    pub timeout: Option<Duration>,
}

/// `expect-fault:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawExpectFault {
    kind: Spanned<String>,
    cause: Option<Spanned<String>>,
    #[serde(rename = "in")]
    function: Option<String>,
    timeout: Option<Spanned<String>>,
}

impl StepKind for ExpectFault {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "expect-fault",
        example: "{}",
    };
    type Raw = RawExpectFault;

    /// `expect-fault:` with its kind and cause checked against the known names.
    fn load(raw: RawExpectFault, v: &Validator<'_>) -> Result<Self, ScenarioError> {
            let kind = match raw.kind.value.as_str() {
                "hardfault" => FaultKind::HardFault,
                "lockup" => FaultKind::Lockup,
                other => {
                    return Err(v.error(
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
                    return Err(v.error(
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
                timeout: v.optional_duration(raw.timeout.as_ref())?,
            })
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let remaining = ctx.remaining();
        let detail = expect_fault(
            self,
            &mut *ctx.target,
            ctx.debugger.as_mut(),
            ctx.elf.as_deref(),
            remaining,
        )
        .await?;
        Ok(Some(detail))
    }
}

/// The line the lab's Cortex-M runtime prints from its HardFault handler
/// (see images/cortex-m/README.md).
static UART_REPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"HARDFAULT pc=0x(?P<pc>[0-9a-f]+) lr=0x[0-9a-f]+ xpsr=0x[0-9a-f]+ cfsr=0x(?P<cfsr>[0-9a-f]+) hfsr=0x(?P<hfsr>[0-9a-f]+) bfar=0x(?P<bfar>[0-9a-f]+) mmfar=0x(?P<mmfar>[0-9a-f]+)",
    )
    .expect("the report pattern is valid")
});

/// Runs `expect-fault`; the detail says what was caught and where.
async fn expect_fault(
    step: &ExpectFault,
    target: &mut dyn Target,
    debugger: Option<&mut Debugger>,
    elf_path: Option<&std::path::Path>,
    remaining: Duration,
) -> Result<Detail, StepFailure> {
    let wait = step.timeout.unwrap_or(remaining);
    let mut detail = Detail::new();
    match step.kind {
        FaultKind::Lockup => {
            // The catch holds the core at the first fault: read it and let
            // the handler run on into the lockup.
            let first = match target.caught_fault(wait).await {
                Ok(caught) => caught.map(|c| (c, "vector-catch")),
                Err(TargetError::NoFaultCatch) => None,
                Err(e) => return Err(e.into()),
            };
            let reason = match target.wait_exit(Some(wait)).await? {
                GuestExit::Crashed(reason) if reason.contains("Lockup") => reason,
                GuestExit::Crashed(reason) => {
                    return Err(StepFailure::new(
                        Status::Failed,
                        format!("expected a lockup, but {reason}"),
                    ));
                }
                GuestExit::Code(code) => {
                    return Err(StepFailure::new(
                        Status::Failed,
                        format!("expected a lockup, but the target exited with code {code}"),
                    ));
                }
            };
            detail.insert("kind".into(), json!("lockup"));
            detail.insert("reason".into(), json!(reason));
            // Without a catch, the handler may have reported the first
            // fault before locking up.
            let first = match first {
                Some(first) => Some(first),
                None => uart_report(target, Duration::ZERO)
                    .await?
                    .map(|c| (c, "uart")),
            };
            if let Some((caught, source)) = first {
                let elf = load_elf(elf_path, "expect-fault")?;
                return check(step, &elf, caught, source, detail);
            }
            if step.cause.is_some() || step.function.is_some() {
                return Err(StepFailure::new(
                    Status::Failed,
                    "the lockup left no first fault to check `cause` or `in` against",
                ));
            }
            Ok(detail)
        }
        FaultKind::HardFault => {
            detail.insert("kind".into(), json!("hardfault"));
            let (caught, source, elf) = match debugger {
                Some(debugger) => {
                    let caught = debugger.catch_hardfault(wait).await?;
                    (caught, "debugger", debugger.elf()?)
                }
                None => {
                    let (caught, source) = match target.caught_fault(wait).await {
                        Ok(caught) => (caught, "vector-catch"),
                        Err(TargetError::NoFaultCatch) => {
                            (uart_report(target, wait).await?, "uart")
                        }
                        Err(e) => return Err(e.into()),
                    };
                    (caught, source, load_elf(elf_path, "expect-fault")?.into())
                }
            };
            let Some(caught) = caught else {
                let how = match target.exited(Duration::from_millis(200)).await {
                    Some(GuestExit::Code(code)) => format!("the target exited with code {code}"),
                    Some(GuestExit::Crashed(reason)) => reason,
                    None if source == "vector-catch" => {
                        format!("none came within {}", humantime::format_duration(wait))
                    }
                    None => "the target stopped elsewhere".to_owned(),
                };
                return Err(StepFailure::new(
                    Status::Failed,
                    format!("expected a HardFault, but {how}"),
                ));
            };
            check(step, &elf, caught, source, detail)
        }
    }
}

/// Compares what was caught with the step's expectations.
fn check(
    step: &ExpectFault,
    elf: &ElfInfo,
    CaughtFault { status, pc }: CaughtFault,
    source: &str,
    mut detail: Detail,
) -> Result<Detail, StepFailure> {
    let causes = status.causes();
    detail.insert("source".into(), json!(source));
    detail.insert("pc".into(), json!(pc));
    detail.insert("causes".into(), json!(causes));
    detail.insert("cfsr".into(), json!(status.cfsr));
    detail.insert("hfsr".into(), json!(status.hfsr));
    if let Some(address) = status.fault_address() {
        detail.insert("fault_address".into(), json!(address));
    }
    let location = elf.symbolize(pc);
    let function = location.as_ref().and_then(|l| l.function.clone());
    insert_location(&mut detail, location);
    if let Some(cause) = &step.cause
        && !causes.contains(&cause.as_str())
    {
        return Err(StepFailure::new(
            Status::Failed,
            format!("the fault's causes are {}, not {cause}", list(&causes)),
        ));
    }
    if let Some(want) = &step.function
        && function.as_deref() != Some(want.as_str())
    {
        let at = function.map_or_else(|| format!("{pc:#x}"), |f| format!("`{f}`"));
        return Err(StepFailure::new(
            Status::Failed,
            format!("the fault happened in {at}, not in `{want}`"),
        ));
    }
    Ok(detail)
}

/// Waits for the runtime's fault report on the serial console.
async fn uart_report(
    target: &mut dyn Target,
    wait: Duration,
) -> Result<Option<CaughtFault>, StepFailure> {
    let found = match target.console()?.wait_for(&UART_REPORT, Some(wait)).await {
        Ok(found) => found,
        Err(ConsoleError::Closed { .. } | ConsoleError::Timeout { .. }) => return Ok(None),
        Err(e) => return Err(TargetError::from(e).into()),
    };
    let field = |name: &str| {
        found
            .captures
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| u32::from_str_radix(v, 16).ok())
            .unwrap_or_default()
    };
    let status = FaultStatus {
        cfsr: field("cfsr"),
        hfsr: field("hfsr"),
        bfar: field("bfar"),
        mmfar: field("mmfar"),
    };
    Ok(Some(CaughtFault {
        status,
        pc: u64::from(field("pc")),
    }))
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
