//! `wait-serial` patterns: compiled with the regex crate, errors on one
//! line, within a budget for the whole file.

use std::cell::Cell;

use regex::bytes::{Regex, RegexBuilder};

use super::error::ErrorKind;

/// The sizes a pattern is compiled at, as the regex crate counts a compiled
/// regex: growing fourfold, up to the crate's own default limit (10 MiB).
/// `READY` fits the first, `READY t=(?P<t_ms>\d+)` the second; a pattern
/// that repeats a Unicode class hundreds of times needs the last.
const SIZES: [usize; 7] = [
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    10 << 20,
];

/// The size that the patterns of one file may take together: 16 MiB, a
/// hundred times what the largest scenario of this repository needs.
///
/// Compiling takes time in proportion to the size (about 10 ms a MiB for
/// large patterns, more for many small ones, each charged at least 4 KiB),
/// so this bounds both what a file's patterns cost to check (under half a
/// second) and what they hold in memory. Without it, a 40 KB file of a
/// thousand `match: '\w{200}'` steps took `lab check` minutes and
/// gigabytes.
pub(crate) const BUDGET: usize = 16 << 20;

/// What is left of a file's pattern budget. Each pattern is charged the
/// size it compiled at, at most four times what it takes.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<usize>,
}

impl Budget {
    /// A budget of `size` bytes.
    pub(crate) fn new(size: usize) -> Self {
        Self {
            left: Cell::new(size),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(BUDGET)
    }
}

/// Compiles a `match:` pattern and charges it to `budget`, turning the
/// regex crate's multi-line error into a one-line reason and a pointer into
/// the pattern.
pub(crate) fn compile(pattern: &str, budget: &Budget) -> Result<Regex, ErrorKind> {
    let mut too_big = None;
    for size in SIZES {
        if size > budget.left.get() {
            return Err(ErrorKind::TooComplex(format!(
                "its patterns compile to more than {} MiB together",
                BUDGET >> 20
            )));
        }
        match RegexBuilder::new(pattern).size_limit(size).build() {
            Ok(regex) => {
                budget.left.set(budget.left.get() - size);
                return Ok(regex);
            }
            // Tried at the next size, or reported if it was the last.
            Err(error @ regex::Error::CompiledTooBig(_)) => too_big = Some(error),
            Err(error) => return Err(bad_regex(&error)),
        }
    }
    Err(bad_regex(&too_big.expect("the last size was tried")))
}

/// The regex crate's error on one line, with the marked part of a one-line
/// pattern.
fn bad_regex(error: &regex::Error) -> ErrorKind {
    {
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
    }
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
        let Err(ErrorKind::BadRegex { reason, context }) =
            compile("READY (\\d+", &Budget::default())
        else {
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
        assert!(compile(r"READY t=(?P<t_ms>\d+)", &Budget::default()).is_ok());
    }

    #[test]
    fn charges_each_pattern_the_size_it_compiled_at() {
        let budget = Budget::new(24 << 10);
        // 4 KiB, then 16 KiB: 20 KiB of 24.
        assert!(compile("READY", &budget).is_ok());
        assert!(compile(r"t=(?P<t_ms>\d+)", &budget).is_ok());
        assert_eq!(budget.left.get(), 4 << 10);
        assert!(compile("READY", &budget).is_ok());
        let Err(ErrorKind::TooComplex(reason)) = compile("READY", &budget) else {
            panic!("expected the budget to be spent");
        };
        assert_eq!(reason, "its patterns compile to more than 16 MiB together");
    }

    #[test]
    fn refuses_a_pattern_beyond_the_largest_size() {
        let Err(ErrorKind::BadRegex { reason, .. }) = compile(r"\w{1000}", &Budget::default())
        else {
            panic!("expected a pattern too large");
        };
        assert!(reason.contains("exceeds size limit"), "{reason}");
    }
}
