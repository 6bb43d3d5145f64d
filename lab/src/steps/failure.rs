//! What a step produces besides its detail: why it failed, and the numbers
//! it captured from the console. Shared by every step kind.

use std::time::Duration;

use crate::backend::{GuestExit, Target, TargetError};
use crate::console::ConsoleError;
use crate::report::Status;
use crate::script::HostError;

/// After the console closes, how long QEMU gets to report its exit.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Why a step did not pass.
#[derive(Debug)]
pub(crate) struct StepFailure {
    pub(crate) status: Status,
    pub(crate) message: String,
}

impl StepFailure {
    /// A failure with its verdict and one-line reason.
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Self {
        StepFailure {
            status,
            message: message.into(),
        }
    }

    /// The run was interrupted (Ctrl-C, SIGTERM).
    pub(crate) fn interrupted() -> Self {
        StepFailure::new(Status::Error, "interrupted (Ctrl-C)")
    }
}

/// A step failure as a host error a script can catch.
impl From<StepFailure> for HostError {
    fn from(f: StepFailure) -> Self {
        HostError::new(f.message)
    }
}

impl From<TargetError> for StepFailure {
    fn from(e: TargetError) -> Self {
        let status = match &e {
            TargetError::ExitTimeout(_) | TargetError::Console(ConsoleError::Timeout { .. }) => {
                Status::Timeout
            }
            _ => Status::Error,
        };
        StepFailure::new(status, e.to_string())
    }
}

/// The console failed: tell a crash from a clean exit from a broken pipe.
pub(crate) async fn ended_early(target: &mut dyn Target, cause: ConsoleError) -> StepFailure {
    match target.exited(EXIT_GRACE).await {
        Some(GuestExit::Crashed(reason)) => StepFailure::new(Status::Error, reason),
        Some(GuestExit::Code(code)) => StepFailure::new(
            Status::Failed,
            format!("the target exited with code {code}: {cause}"),
        ),
        None => StepFailure::new(Status::Error, cause.to_string()),
    }
}

/// Capture `name` as a metric, or a failure that says it is not a number.
pub(crate) fn metric_value(name: &str, text: &str) -> Result<f64, StepFailure> {
    parse_metric(text).ok_or_else(|| {
        StepFailure::new(
            Status::Failed,
            format!(
                "capture `{name}` is {text:?}, not a number; metrics are numeric (decimal, or \
                 hex with 0x)"
            ),
        )
    })
}

/// The named groups of `pattern` that took part in a match, as metrics.
pub(crate) fn capture_metrics(
    pattern: &regex::bytes::Regex,
    caps: &regex::bytes::Captures<'_>,
) -> Result<Vec<(String, f64)>, StepFailure> {
    pattern
        .capture_names()
        .flatten()
        .filter_map(|name| caps.name(name).map(|m| (name, m.as_bytes())))
        .map(|(name, text)| {
            let value = metric_value(name, &String::from_utf8_lossy(text))?;
            Ok((name.to_owned(), value))
        })
        .collect()
}

/// A capture as a metric: a decimal number, or hex with a `0x` prefix.
fn parse_metric(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => text.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_metric;

    #[test]
    fn metrics_parse_decimal_and_hex() {
        assert_eq!(parse_metric("42"), Some(42.0));
        assert_eq!(parse_metric(" 1.5 "), Some(1.5));
        assert_eq!(parse_metric("0x00010000"), Some(65536.0));
        assert_eq!(parse_metric("abc"), None);
        assert_eq!(parse_metric("inf"), None);
    }
}
