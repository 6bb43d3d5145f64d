//! Durations as scenarios write them: a number with a unit (`250ms`, `5s`, `2m`).

use std::time::Duration;

/// A duration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A duration without a unit (`5`).
    #[error("duration `{text}` has no unit")]
    WithoutUnit {
        /// The duration as written.
        text: String,
    },
    /// A duration that does not parse, or is zero.
    #[error("invalid duration `{text}`: {reason}")]
    Invalid {
        /// The duration as written.
        text: String,
        /// Why it is invalid.
        reason: String,
    },
}

impl DurationError {
    /// How to write it instead.
    pub fn hint(&self) -> String {
        match self {
            Self::WithoutUnit { text } if text.trim().bytes().all(|b| b.is_ascii_digit()) => {
                format!("durations need a unit: write `{}s`", text.trim())
            }
            Self::WithoutUnit { .. } | Self::Invalid { .. } => {
                "write a number and a unit, like `250ms`, `5s`, `2m` or `1m 30s`".into()
            }
        }
    }
}

/// Parses a duration; a number without a unit is refused, and so is zero.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if is_bare_number(trimmed) {
        return Err(DurationError::WithoutUnit {
            text: text.to_owned(),
        });
    }
    match humantime::parse_duration(trimmed) {
        Ok(duration) if duration.is_zero() => Err(DurationError::Invalid {
            text: text.to_owned(),
            reason: "it must be longer than zero".to_owned(),
        }),
        Ok(duration) => Ok(duration),
        Err(error) => Err(DurationError::Invalid {
            text: text.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// Whether `text` is a number with no unit (`5`, `1.5`, `-3`).
fn is_bare_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms").ok(), Some(Duration::from_millis(250)));
        assert_eq!(parse("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(parse("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse("1m 30s").ok(), Some(Duration::from_secs(90)));
    }

    #[test]
    fn refuses_bare_numbers_and_zero() {
        assert!(matches!(parse("5"), Err(DurationError::WithoutUnit { .. })));
        assert!(matches!(
            parse("1.5"),
            Err(DurationError::WithoutUnit { .. })
        ));
        assert!(matches!(parse("0s"), Err(DurationError::Invalid { .. })));
        assert!(matches!(
            parse("5 parsecs"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(parse(""), Err(DurationError::Invalid { .. })));
    }
}
