//! Durations as scenarios write them: a number with a unit (`250ms`, `5s`, `2m`).

use std::time::Duration;

use super::error::ErrorKind;

/// Parses a scenario duration; a number without a unit is refused.
pub(crate) fn parse(text: &str) -> Result<Duration, ErrorKind> {
    let trimmed = text.trim();
    if is_bare_number(trimmed) {
        return Err(ErrorKind::DurationWithoutUnit {
            text: text.to_owned(),
        });
    }
    match humantime::parse_duration(trimmed) {
        Ok(duration) if duration.is_zero() => Err(ErrorKind::BadDuration {
            text: text.to_owned(),
            reason: "it must be longer than zero".to_owned(),
        }),
        Ok(duration) => Ok(duration),
        Err(error) => Err(ErrorKind::BadDuration {
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
        assert!(matches!(
            parse("5"),
            Err(ErrorKind::DurationWithoutUnit { .. })
        ));
        assert!(matches!(
            parse("1.5"),
            Err(ErrorKind::DurationWithoutUnit { .. })
        ));
        assert!(matches!(parse("0s"), Err(ErrorKind::BadDuration { .. })));
        assert!(matches!(
            parse("5 parsecs"),
            Err(ErrorKind::BadDuration { .. })
        ));
        assert!(matches!(parse(""), Err(ErrorKind::BadDuration { .. })));
    }
}
