//! Mutations of seed files: byte edits, line edits, splices from other
//! seeds, dictionary tokens, and deep nesting.
//!
//! Positions are proptest [`Index`]es, which fit a text of any length and
//! shrink toward its start; a failing input shrinks toward fewer and
//! simpler edits of its seed.

use proptest::prelude::*;
use proptest::sample::Index;

/// Openers and closers that nest a value, in YAML and rhai.
const NESTINGS: &[(&str, &str)] = &[
    ("[", "]"),
    ("{a: ", "}"),
    ("- ", ""),
    ("(", ")"),
    ("#{a: ", "}"),
    ("-", ""),
    ("!", ""),
    ("{ ", " }"),
];

/// One edit of a text.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flips one bit of one byte.
    FlipBit {
        /// The byte.
        at: Index,
        /// The bit, 0 to 7.
        bit: u8,
    },
    /// Overwrites one byte.
    SetByte {
        /// The byte.
        at: Index,
        /// Its new value.
        value: u8,
    },
    /// Cuts the text short (possibly inside a UTF-8 sequence).
    Truncate {
        /// Where the text ends.
        at: Index,
    },
    /// Removes a line.
    DeleteLine {
        /// The line.
        line: Index,
    },
    /// Repeats a line right after itself: duplicate keys, long lists, and
    /// with enough copies, the loader's size and node budgets.
    RepeatLine {
        /// The line.
        line: Index,
        /// How many copies follow it.
        copies: u16,
    },
    /// Swaps two lines.
    SwapLines {
        /// One line.
        a: Index,
        /// The other.
        b: Index,
    },
    /// Inserts a line of another seed.
    Splice {
        /// The seed.
        seed: Index,
        /// Its line.
        line: Index,
        /// Where it goes, before this line.
        at: Index,
    },
    /// Inserts a dictionary token at a byte.
    InsertToken {
        /// The byte it goes before.
        at: Index,
        /// The token.
        token: Index,
    },
    /// Inserts a dictionary token as a line of its own, indented.
    InsertLine {
        /// The line it goes before.
        at: Index,
        /// The token.
        token: Index,
        /// Spaces before it.
        indent: u8,
    },
    /// Replaces what follows a line's first `:` or `=` with a token.
    ReplaceValue {
        /// The line.
        line: Index,
        /// The token.
        token: Index,
    },
    /// Wraps what follows a line's first `:` or `=` in brackets or
    /// operators, `depth` deep.
    Nest {
        /// The line.
        line: Index,
        /// Which of [`NESTINGS`].
        style: Index,
        /// How deep.
        depth: u16,
    },
}

/// Any mutation; repeats and nesting go well past the loaders' limits
/// (nesting 32 deep in YAML, expressions 64 deep in rhai).
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        2 => any::<Index>().prop_map(|line| Mutation::DeleteLine { line }),
        1 => (any::<Index>(), prop_oneof![4 => 1..4u16, 1 => 4..5000u16])
            .prop_map(|(line, copies)| Mutation::RepeatLine { line, copies }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        3 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(seed, line, at)| Mutation::Splice { seed, line, at }),
        4 => (any::<Index>(), any::<Index>())
            .prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        3 => (any::<Index>(), any::<Index>(), 0..9u8)
            .prop_map(|(at, token, indent)| Mutation::InsertLine { at, token, indent }),
        4 => (any::<Index>(), any::<Index>())
            .prop_map(|(line, token)| Mutation::ReplaceValue { line, token }),
        1 => (any::<Index>(), any::<Index>(), prop_oneof![1..40u16, 40..400u16])
            .prop_map(|(line, style, depth)| Mutation::Nest { line, style, depth }),
    ]
}

/// Applies `mutation` to `text`, taking tokens from `tokens` and spliced
/// lines from `seeds`; neither may be empty.
pub fn apply(text: &mut Vec<u8>, mutation: &Mutation, tokens: &[String], seeds: &[Vec<u8>]) {
    match mutation {
        Mutation::FlipBit { at, bit } => {
            if !text.is_empty() {
                let i = at.index(text.len());
                text[i] ^= 1 << bit;
            }
        }
        Mutation::SetByte { at, value } => {
            if !text.is_empty() {
                let i = at.index(text.len());
                text[i] = *value;
            }
        }
        Mutation::Truncate { at } => text.truncate(at.index(text.len() + 1)),
        Mutation::InsertToken { at, token } => {
            let i = at.index(text.len() + 1);
            text.splice(i..i, token.get(tokens).bytes());
        }
        Mutation::DeleteLine { line } => edit_lines(text, |lines| {
            lines.remove(line.index(lines.len()));
        }),
        Mutation::RepeatLine { line, copies } => edit_lines(text, |lines| {
            let i = line.index(lines.len());
            let copy = lines[i].clone();
            lines.splice(i..i, std::iter::repeat_n(copy, usize::from(*copies)));
        }),
        Mutation::SwapLines { a, b } => edit_lines(text, |lines| {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }),
        Mutation::Splice { seed, line, at } => {
            let seed: &Vec<u8> = seed.get(seeds);
            let source = split_lines(seed);
            let spliced = line.get(&source).clone();
            edit_lines(text, |lines| {
                lines.insert(at.index(lines.len() + 1), spliced)
            });
        }
        Mutation::InsertLine { at, token, indent } => edit_lines(text, |lines| {
            let mut line = vec![b' '; usize::from(*indent)];
            line.extend_from_slice(token.get(tokens).as_bytes());
            lines.insert(at.index(lines.len() + 1), line);
        }),
        Mutation::ReplaceValue { line, token } => edit_lines(text, |lines| {
            let line = line.get_mut(lines);
            let start = value_start(line);
            line.truncate(start);
            line.push(b' ');
            line.extend_from_slice(token.get(tokens).as_bytes());
        }),
        Mutation::Nest { line, style, depth } => edit_lines(text, |lines| {
            let line = line.get_mut(lines);
            let (open, close) = style.get(NESTINGS);
            let value = line.split_off(value_start(line));
            let depth = usize::from(*depth);
            line.push(b' ');
            line.extend(open.repeat(depth).bytes());
            line.extend_from_slice(value.trim_ascii());
            line.extend(close.repeat(depth).bytes());
        }),
    }
}

/// Where a line's value starts: after its first `:` or `=`, or at its end.
fn value_start(line: &[u8]) -> usize {
    line.iter()
        .position(|&b| b == b':' || b == b'=')
        .map_or(line.len(), |i| i + 1)
}

/// The lines of `text`, without their `\n`; joining them with `\n` gives
/// `text` back. There is always at least one, maybe empty.
fn split_lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Edits `text` as lines.
fn edit_lines(text: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let mut lines = split_lines(text);
    edit(&mut lines);
    if lines.is_empty() {
        text.clear();
    } else {
        *text = lines.join(&b'\n');
    }
}
