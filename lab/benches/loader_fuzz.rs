//! The scenario loaders under fuzzing, at length: 100,000 cases (or
//! `LAB_FUZZ_CASES`), the families of `tests/fuzz` taking turns, through
//! what `lab check` does (load, then plan). Prints each failing case, how
//! far each family's cases got, and a summary line; exits 1 if any case
//! panicked or hung. `PROPTEST_RNG_SEED=N` repeats a run (the seed is
//! printed first).
//!
//! `cargo bench --bench loader_fuzz`

#[path = "../tests/fuzz/mod.rs"]
mod fuzz;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};

use fuzz::{CASE_BUDGET, Corpus, Harness, Reached, Verdict};

/// Cases when `LAB_FUZZ_CASES` is not set.
const DEFAULT_CASES: u32 = 100_000;

/// Hangs after which the run stops: each leaves a thread running.
const MAX_HANGS: u32 = 5;

/// Progress is printed every this many cases.
const PROGRESS_EVERY: u32 = 10_000;

/// What one family's cases came to.
#[derive(Default)]
struct Tally {
    reached: BTreeMap<Reached, u32>,
    panics: u32,
    hangs: u32,
    slowest: Duration,
}

fn main() -> ExitCode {
    let total = fuzz::cases(DEFAULT_CASES);
    let mut harness = Harness::new();
    let families = Corpus::load(harness.workspace()).families();
    let config = Config::default();
    let seed = match config.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos() as u64),
    };
    eprintln!("loader_fuzz: {total} cases, PROPTEST_RNG_SEED={seed}");
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..config
    });
    let mut tallies: Vec<Tally> = families.iter().map(|_| Tally::default()).collect();
    let started = Instant::now();
    let mut run = 0;
    while run < total && tallies.iter().map(|t| t.hangs).sum::<u32>() < MAX_HANGS {
        let turn = run as usize % families.len();
        let (family, tally) = (&families[turn], &mut tallies[turn]);
        let case = family
            .cases
            .new_tree(&mut runner)
            .expect("the strategies reject nothing")
            .current();
        let case_started = Instant::now();
        let verdict = harness.run(&case);
        tally.slowest = tally.slowest.max(case_started.elapsed());
        match verdict {
            Verdict::Passed(reached) => *tally.reached.entry(reached).or_default() += 1,
            Verdict::Panicked(message) => {
                tally.panics += 1;
                eprintln!("PANIC ({}): {message}\n  {case:?}", family.name);
            }
            Verdict::Hung => {
                tally.hangs += 1;
                eprintln!("HANG ({}) past {CASE_BUDGET:?}\n  {case:?}", family.name);
            }
        }
        run += 1;
        if run % PROGRESS_EVERY == 0 {
            eprintln!("  {run} cases, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    let elapsed = started.elapsed();
    for (family, tally) in families.iter().zip(&tallies) {
        let count = |r| tally.reached.get(&r).copied().unwrap_or(0);
        println!(
            "{:<13} invalid {:>6}  unplannable {:>6}  planned {:>6}  panics {}  hangs {}  slowest {:.0} ms",
            family.name,
            count(Reached::Invalid),
            count(Reached::Unplannable),
            count(Reached::Planned),
            tally.panics,
            tally.hangs,
            tally.slowest.as_secs_f64() * 1e3,
        );
    }
    let panics: u32 = tallies.iter().map(|t| t.panics).sum();
    let hangs: u32 = tallies.iter().map(|t| t.hangs).sum();
    println!(
        "loader_fuzz: {run} cases, {panics} panics, {hangs} hangs in {:.1} s ({:.0} inputs/s)",
        elapsed.as_secs_f64(),
        f64::from(run) / elapsed.as_secs_f64(),
    );
    if panics + hangs == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
