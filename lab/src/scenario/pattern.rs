//! `wait-serial` patterns: compiled with the regex crate, errors on one line.

use regex::bytes::Regex;

use super::error::ErrorKind;

/// Compiles a `match:` pattern, turning the regex crate's multi-line error
/// into a one-line reason and a pointer into the pattern.
pub(crate) fn compile(pattern: &str) -> Result<Regex, ErrorKind> {
    Regex::new(pattern).map_err(|error| {
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        match lines.iter().rposition(|line| line.starts_with("error: ")) {
            Some(last) => ErrorKind::BadRegex {
                reason: lines[last].trim_start_matches("error: ").to_owned(),
                context: context(&lines[..last]),
            },
            None => ErrorKind::BadRegex {
                reason: lines.join(" "),
                context: None,
            },
        }
    })
}

/// From the notated pattern (`regex parse error:`, the pattern, a line of
/// carets), the marked part of a one-line pattern and where it starts.
fn context(notation: &[&str]) -> Option<String> {
    let [_, pattern, carets] = notation else {
        return None;
    };
    let pattern: Vec<char> = pattern.chars().collect();
    let start = carets.find('^')?;
    let len = carets[start..].chars().take_while(|&c| c == '^').count();
    let marked: String = pattern.get(start..start + len)?.iter().collect();
    // The regex crate indents the pattern by four spaces.
    let column = start.checked_sub(3)?;
    Some(format!("at `{marked}`, character {column} of the pattern"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_into_one_line_patterns() {
        let Err(ErrorKind::BadRegex { reason, context }) = compile("READY (\\d+") else {
            panic!("expected a regex error");
        };
        assert_eq!(reason, "unclosed group");
        assert_eq!(
            context.as_deref(),
            Some("at `(`, character 7 of the pattern")
        );
    }

    #[test]
    fn accepts_named_groups() {
        assert!(compile(r"READY t=(?P<t_ms>\d+)").is_ok());
    }
}
