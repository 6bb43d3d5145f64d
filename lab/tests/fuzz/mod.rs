//! Fuzzing the scenario loaders: what `lab check` does with a file, fed
//! with mutated and generated YAML and rhai. Shared by the bounded run in
//! `make test` (`tests/loader_fuzz.rs`) and the long one
//! (`benches/loader_fuzz.rs`).
//!
//! A [`Case`] is a scenario file and the script beside it. [`Corpus`] makes
//! cases in four [`corpus::Family`]s: the repository's scenarios mutated (YAML and
//! rhai), and scenarios written from a grammar of each format. [`Harness`]
//! puts a case through loading and planning on a worker thread, within
//! [`CASE_BUDGET`], and says how far it got, or that it panicked or hung.

// The test and the benchmark each use a part (the benchmark takes turns
// between the families, the test runs each on its own).
#![allow(dead_code)]

mod corpus;
mod dictionary;
mod harness;
mod mutate;
mod rhai_gen;
mod yaml_gen;

use std::fmt;

pub use corpus::Corpus;
pub use harness::{CASE_BUDGET, Harness, Reached, Verdict};

/// A scenario file's format, which its extension gives and which picks its
/// loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A YAML scenario (`.yaml`).
    Yaml,
    /// A rhai script scenario (`.rhai`).
    Rhai,
}

impl Format {
    /// The file extension that selects this format's loader.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Rhai => "rhai",
        }
    }
}

/// One input: a scenario file, and the script that a YAML scenario's
/// `script: {file: companion.rhai}` step reads from beside it.
#[derive(Clone, PartialEq, Eq)]
pub struct Case {
    /// The scenario file's format.
    pub format: Format,
    /// The scenario file's bytes; not always UTF-8, which the loader checks.
    pub text: Vec<u8>,
    /// The contents of `companion.rhai`.
    pub companion: String,
}

impl Case {
    /// The name the scenario file is written under.
    pub fn file_name(&self) -> String {
        format!("case.{}", self.format.extension())
    }
}

/// Shows the text as an escaped byte string, so that a failing input
/// printed by proptest or the benchmark can be pasted into a test.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Case {{ format: {:?}, text: b\"{}\", companion: {:?} }}",
            self.format,
            self.text.escape_ascii(),
            self.companion
        )
    }
}

/// The number of cases to run: `LAB_FUZZ_CASES` when set, else `default`.
///
/// # Panics
///
/// When `LAB_FUZZ_CASES` is set but is not a number.
pub fn cases(default: u32) -> u32 {
    match std::env::var("LAB_FUZZ_CASES") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("LAB_FUZZ_CASES is not a number: {text:?}")),
        Err(_) => default,
    }
}
