//! Pieces of one-line diagnostics shared by scenario and script errors:
//! `FILE:LINE:COL: message` and an optional `  hint: ...` line.

use std::fmt;

use super::Loc;

/// `:LINE:COL` after a file name, when the error is at one place.
pub(crate) struct LocSuffix(pub(crate) Option<Loc>);

impl fmt::Display for LocSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(loc) => write!(f, ":{loc}"),
            None => Ok(()),
        }
    }
}

/// The second line, `  hint: ...`, when there is a hint.
pub(crate) struct HintLine(pub(crate) Option<String>);

impl fmt::Display for HintLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(hint) => write!(f, "\n  hint: {}", OneLine(hint)),
            None => Ok(()),
        }
    }
}

/// Text with control characters escaped, so that text quoted from a file,
/// a script or a host cannot break a message over lines.
pub(crate) struct OneLine<'a, T>(pub(crate) &'a T);

impl<T: fmt::Display> fmt::Display for OneLine<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.to_string().chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}
