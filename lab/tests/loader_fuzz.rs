//! The scenario loaders under fuzzing, bounded for `make test`: mutated
//! and generated YAML and rhai scenarios through what `lab check` does
//! (load, then plan, without booting anything), where no case may panic
//! or run longer than [`CASE_BUDGET`]. Proptest shrinks a failing case and
//! keeps its seed in `loader_fuzz.proptest-regressions` beside this file,
//! which runs it first from then on: commit that file.
//!
//! `LAB_FUZZ_CASES=N` runs N cases, shared among the four families, in
//! place of [`DEFAULT_CASES`]; `PROPTEST_RNG_SEED=N` repeats a run. The
//! benchmark `cargo bench --bench loader_fuzz` runs 100,000.

mod fuzz;

use std::cell::RefCell;

use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use fuzz::{CASE_BUDGET, Case, Corpus, Harness, Reached, Verdict};

/// Cases in one `cargo test` run, shared evenly among the four families:
/// about 30 s of CPU in a debug build (the cases average 10 ms), some 15 s
/// of wall time with the tests on two cores.
const DEFAULT_CASES: u32 = 3_000;

/// The families, which share the cases.
const FAMILIES: u32 = 4;

/// Runs the cases of the family that `cases` picks from the corpus; fails
/// with the smallest case proptest finds that panics or hangs.
fn fuzz(cases: fn(&Corpus) -> BoxedStrategy<Case>) {
    let harness = Harness::new();
    let strategy = cases(&Corpus::load(harness.workspace()));
    let harness = RefCell::new(harness);
    let config = Config {
        cases: fuzz::cases(DEFAULT_CASES).div_ceil(FAMILIES),
        source_file: Some(file!()),
        // A hanging case costs the budget on every shrinking step.
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let outcome =
        TestRunner::new(config).run(&strategy, |case| match harness.borrow_mut().run(&case) {
            Verdict::Passed(_) => Ok(()),
            Verdict::Panicked(message) => Err(TestCaseError::fail(format!("panicked: {message}"))),
            Verdict::Hung => Err(TestCaseError::fail(format!(
                "still running after {CASE_BUDGET:?}"
            ))),
        });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

#[test]
fn mutated_yaml_scenarios_neither_panic_nor_hang() {
    fuzz(Corpus::yaml_mutants);
}

#[test]
fn generated_yaml_scenarios_neither_panic_nor_hang() {
    fuzz(Corpus::yaml_grammar);
}

#[test]
fn mutated_rhai_scenarios_neither_panic_nor_hang() {
    fuzz(Corpus::rhai_mutants);
}

#[test]
fn generated_rhai_scenarios_neither_panic_nor_hang() {
    fuzz(Corpus::rhai_grammar);
}

/// The harness goes as deep as `lab check`: the repository's scenarios
/// plan into jobs, and the invalid fixtures are refused.
#[test]
fn the_seeds_reach_planning_and_refusal() {
    let mut harness = Harness::new();
    let corpus = Corpus::load(harness.workspace());
    let mut reached = Vec::new();
    for case in corpus.seeds() {
        match harness.run(&case) {
            Verdict::Passed(how_far) => reached.push(how_far),
            other => panic!("{case:?}: {other:?}"),
        }
    }
    assert!(reached.contains(&Reached::Planned), "{reached:?}");
    assert!(reached.contains(&Reached::Invalid), "{reached:?}");
}
