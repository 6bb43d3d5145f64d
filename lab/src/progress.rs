//! Progress on the terminal: an indicatif bar when stdout is a terminal,
//! plain lines otherwise (CI logs, pipes).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lab::backend::probe::FlashEvent;
use lab::runner::RunEvent;

/// Shows what the runner is doing.
pub struct Progress {
    bars: MultiProgress,
    bar: Option<ProgressBar>,
    /// Each running job's label and the step it is in.
    running: Mutex<BTreeMap<usize, (String, Option<String>)>>,
    /// One bar per job that is flashing a board.
    flashing: Mutex<BTreeMap<usize, ProgressBar>>,
}

impl Progress {
    /// Progress for `total` jobs.
    pub fn new(total: usize) -> Self {
        let bars = MultiProgress::new();
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = bars.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{pos}/{len}] {elapsed_precise} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bars,
            bar,
            running: Mutex::new(BTreeMap::new()),
            flashing: Mutex::new(BTreeMap::new()),
        }
    }

    /// Shows one event.
    pub fn event(&self, event: &RunEvent) {
        let line = match event {
            RunEvent::ImageReady { label, outcome } => Some(match outcome {
                Ok(o) if o.cached => format!("image   {label}: cached"),
                Ok(o) => format!(
                    "image   {label}: built in {:.1} s{}",
                    o.duration.as_secs_f64(),
                    (o.damaged.as_ref())
                        .map(|why| format!(" (the cached build was unusable: {why})"))
                        .unwrap_or_default()
                ),
                Err(e) => format!("image   {label}: FAILED: {e}"),
            }),
            RunEvent::Started { index, label } => {
                self.running_jobs(|r| {
                    r.insert(*index, (label.clone(), None));
                });
                None
            }
            RunEvent::Step { index, which, key } => {
                self.running_jobs(|r| {
                    if let Some((_, step)) = r.get_mut(index) {
                        *step = Some(format!("{which} {key}"));
                    }
                });
                None
            }
            RunEvent::Flashing {
                index,
                label,
                event,
            } => self.flash(*index, label, *event),
            RunEvent::Finished { index, result } => {
                self.running_jobs(|r| {
                    r.remove(index);
                });
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                Some(format!(
                    "{:<7} {} ({:.1} ms)",
                    result.status.as_str(),
                    result.case_name(),
                    result.duration_ms
                ))
            }
        };
        if let Some(line) = line {
            match &self.bar {
                Some(bar) => bar.println(line),
                // Progress is best effort: a closed stdout (`lab run | head`)
                // must not stop the run or lose its report.
                None => {
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
            }
        }
    }

    /// A flash progress bar on a terminal, two lines otherwise.
    fn flash(&self, index: usize, label: &str, event: FlashEvent) -> Option<String> {
        let mut flashing = self.flashing.lock().unwrap_or_else(|e| e.into_inner());
        match (event, &self.bar) {
            (FlashEvent::Started { total }, Some(_)) => {
                let bar = self.bars.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "flash {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(label.to_owned());
                flashing.insert(index, bar);
                None
            }
            (FlashEvent::Programmed { bytes }, _) => {
                if let Some(bar) = flashing.get(&index) {
                    bar.inc(bytes);
                }
                None
            }
            (FlashEvent::Finished, Some(_)) => {
                if let Some(bar) = flashing.remove(&index) {
                    bar.finish_and_clear();
                }
                Some(format!("flashed {label}"))
            }
            (FlashEvent::Started { total }, None) => {
                Some(format!("flash   {label}: {total} bytes"))
            }
            (FlashEvent::Finished, None) => Some(format!("flashed {label}")),
        }
    }

    /// Changes the running jobs and shows each with its step on the bar:
    /// `hello[m3]#1 (step 2 wait-serial)`.
    fn running_jobs(&self, change: impl FnOnce(&mut BTreeMap<usize, (String, Option<String>)>)) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut running);
        if let Some(bar) = &self.bar {
            let shown: Vec<String> = running
                .values()
                .map(|(label, step)| match step {
                    Some(step) => format!("{label} ({step})"),
                    None => label.clone(),
                })
                .collect();
            bar.set_message(shown.join("  "));
        }
    }

    /// Removes the bar before the results table is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The terminal's width when stdout is a terminal.
pub fn terminal_width() -> Option<u16> {
    console::Term::stdout()
        .size_checked()
        .map(|(_rows, cols)| cols)
}
