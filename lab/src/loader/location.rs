//! Code and data locations and names, as debugger steps write them.

use super::error::ErrorKind;
use super::raw::RawScalar;

/// A code location: `main`, `0x1a4` or `main.c:42`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeLocation {
    /// A function or other symbol.
    Symbol(String),
    /// An address.
    Address(u64),
    /// A source line (the file is matched by its trailing path components).
    Line {
        /// The file name as written.
        file: String,
        /// The line number, from 1.
        line: u32,
    },
}

/// A data location: an address or a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLocation {
    /// An address.
    Address(u64),
    /// A global variable or other symbol.
    Symbol(String),
}

/// Why a string is not a symbol name.
const SYMBOL_RULE: &str =
    "a symbol name is letters, digits, `_`, `.` and `$`, and does not start with a digit";

/// A location in words: strings as written, other values as serde describes them.
fn found(raw: &RawScalar) -> String {
    match raw {
        RawScalar::Text(text) => format!("`{text}`"),
        other => other.describe(),
    }
}

/// Parses a code location: an address, `FILE:LINE` or a symbol name.
pub(crate) fn code(raw: &RawScalar) -> Result<CodeLocation, ErrorKind> {
    let bad = |reason| ErrorKind::BadCodeLocation {
        found: found(raw),
        reason,
    };
    let RawScalar::Text(text) = raw else {
        return address(raw).map(CodeLocation::Address).map_err(bad);
    };
    if let Some(address) = hex(text) {
        return address.map(CodeLocation::Address).map_err(bad);
    }
    if let Some((file, line)) = text.rsplit_once(':')
        && !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
    {
        if file.is_empty() {
            return Err(bad("the file name is empty"));
        }
        let line: u32 = line
            .parse()
            .map_err(|_| bad("the line number is too large"))?;
        if line == 0 {
            return Err(bad("line numbers start at 1"));
        }
        let file = file.to_owned();
        return Ok(CodeLocation::Line { file, line });
    }
    if is_symbol(text) {
        Ok(CodeLocation::Symbol(text.clone()))
    } else {
        Err(bad(SYMBOL_RULE))
    }
}

/// Parses a data location: an address or a symbol name.
pub(crate) fn data(raw: &RawScalar) -> Result<DataLocation, ErrorKind> {
    let bad = |reason| ErrorKind::BadDataLocation {
        found: found(raw),
        reason,
    };
    let RawScalar::Text(text) = raw else {
        return address(raw).map(DataLocation::Address).map_err(bad);
    };
    match hex(text) {
        Some(address) => address.map(DataLocation::Address).map_err(bad),
        None if is_symbol(text) => Ok(DataLocation::Symbol(text.clone())),
        None => Err(bad(SYMBOL_RULE)),
    }
}

/// An unsigned value: a YAML integer from 0 or a `0x` string; `None` for anything else.
pub(crate) fn unsigned(raw: &RawScalar) -> Option<u64> {
    match raw {
        RawScalar::Unsigned(value) => Some(*value),
        RawScalar::Text(text) => hex(text)?.ok(),
        RawScalar::Negative(_) | RawScalar::Float(_) | RawScalar::Wrong(_) => None,
    }
}

/// An address written as a YAML value other than a string.
fn address(raw: &RawScalar) -> Result<u64, &'static str> {
    match raw {
        RawScalar::Unsigned(value) => Ok(*value),
        RawScalar::Negative(_) => Err("it must not be negative"),
        RawScalar::Float(_) => Err("it must be an integer"),
        RawScalar::Text(_) | RawScalar::Wrong(_) => Err("expected a string or an integer"),
    }
}

/// `Some` when `text` starts with `0x` or `0X`: the address it gives, or why it gives none.
fn hex(text: &str) -> Option<Result<u64, &'static str>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(Err("`0x` must be followed by hexadecimal digits"));
    }
    Some(u64::from_str_radix(digits, 16).map_err(|_| "it does not fit in 64 bits"))
}

/// Whether `text` is a symbol name: letters, digits, `_`, `.` and `$`, not starting with a digit.
pub(crate) fn is_symbol(text: &str) -> bool {
    starts_like_a_name(text)
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
}

/// Whether `text` is an identifier: letters, digits and `_`, not starting with a digit.
pub(crate) fn is_identifier(text: &str) -> bool {
    starts_like_a_name(text) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn starts_like_a_name(text: &str) -> bool {
    text.chars().next().is_some_and(|c| !c.is_ascii_digit())
}

/// Parses a code location as scenarios write it (`main`, `0x1a4`,
/// `main.c:42`); the error says what is wrong.
pub fn parse_code_location(text: &str) -> Result<CodeLocation, String> {
    code(&RawScalar::Text(text.to_owned())).map_err(|kind| kind.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawScalar {
        RawScalar::Text(s.to_owned())
    }

    #[test]
    fn code_locations_take_three_forms() {
        assert_eq!(
            code(&text("main")).ok(),
            Some(CodeLocation::Symbol("main".into()))
        );
        assert_eq!(
            code(&text("0X1a4")).ok(),
            Some(CodeLocation::Address(0x1a4))
        );
        assert_eq!(
            code(&RawScalar::Unsigned(7)).ok(),
            Some(CodeLocation::Address(7))
        );
        assert_eq!(
            code(&text("src/C:main.c:42")).ok(),
            Some(CodeLocation::Line {
                file: "src/C:main.c".into(),
                line: 42
            })
        );
    }

    #[test]
    fn refuses_bad_code_locations() {
        for bad in [
            "",
            "0x",
            "0xg",
            "0x+1",
            "0x10000000000000000",
            ":4",
            "a.c:0",
            "a.c:4294967296",
            "a.c:",
            "1abc",
            "foo bar",
            "ns::f",
        ] {
            assert!(code(&text(bad)).is_err(), "{bad:?}");
        }
        assert!(code(&RawScalar::Negative(-1)).is_err());
        assert!(code(&RawScalar::Float(1.5)).is_err());
    }

    #[test]
    fn data_locations_are_addresses_or_symbols() {
        assert_eq!(
            data(&text("lab_counter")).ok(),
            Some(DataLocation::Symbol("lab_counter".into()))
        );
        assert_eq!(
            data(&text("0xFFFFFFFFFFFFFFFF")).ok(),
            Some(DataLocation::Address(u64::MAX))
        );
        assert!(data(&text("main.c:4")).is_err());
    }

    #[test]
    fn names() {
        assert!(is_symbol("_ZN4core3fmt5write17h0E.llvm.1$x"));
        assert!(!is_symbol(""));
        assert!(is_identifier("r0"));
        assert!(!is_identifier("r.0"));
        assert!(!is_identifier("0r"));
    }
}
