//! `lab report --html` in a real browser: reports of real runs on QEMU
//! (cold start in phases, heap trends, a GC trace and a serial load through
//! the echo firmware, a short power-loss campaign and a failed run) become
//! one page, which headless Chromium (Debian's `chromium`, driven over the
//! DevTools protocol by the headless_chrome crate) opens. The page must
//! load nothing, log no error, and draw each plot with its marks.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use headless_chrome::protocol::cdp::Log::LogEntryLevel;
use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions};
use serde_json::Value;

use common::{lab, repo, scenario, text};

/// Runs `lab` with `args` in `dir`.
fn lab_in(dir: &Path, args: &[&str]) -> Output {
    lab()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("lab runs")
}

/// A GC trace as Go and Node.js print it (Go's lines without the stacks
/// and globals of Go 1.19+, V8's cut after the pause: the echo firmware
/// sends back lines of at most 127 bytes), then the line that ends it.
fn gc_trace() -> String {
    let mut lines = String::new();
    for i in 1..=30u32 {
        let at = 0.004 + f64::from(i) * 0.021;
        let (sweep, mark) = (
            0.02 + f64::from(i % 7) * 0.05,
            0.01 + f64::from(i % 5) * 0.06,
        );
        let forced = if i % 10 == 0 { " (forced)" } else { "" };
        let _ = write!(
            lines,
            "gc {i} @{at:.3}s 5%: {sweep:.3}+1.5+{mark:.3} ms clock, 0.1+0/1/2+0.01 ms cpu, \
             4->5->3 MB, 4 MB goal, 2 P{forced}\\n"
        );
    }
    for i in 1..=20u32 {
        let (kind, pause) = if i % 7 == 0 {
            ("Mark-Compact", 4.0 + f64::from(i % 3))
        } else {
            ("Scavenge", 0.3 + f64::from(i % 9) * 0.2)
        };
        let _ = write!(
            lines,
            "[7:0x1c4b470] {} ms: {kind} 3.8 (4.0) -> 3.5 (5.0) MB, {pause:.2} / 0.00 ms  (average mu)\\n",
            40 + i * 37
        );
    }
    lines.push_str("DONE t_us=900000\\n");
    lines
}

/// Runs the scenarios behind the page into reports in `dir`; returns them.
fn reports_of_real_runs(dir: &Path) -> Vec<PathBuf> {
    let scenarios = repo().join("scenarios");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    // Cold start in phases (the Cortex-M3 variants) and heap trends.
    let boot = dir.join("boot.json");
    let out = lab_in(
        dir,
        &[
            "run",
            "-j",
            "2",
            &path(&scenarios.join("cortex-m/cold-start.yaml")),
            &path(&scenarios.join("cortex-m/leak.yaml")),
            "-k",
            "m3",
            "-k",
            "leak",
            "--json",
            &path(&boot),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A GC trace and a serial load through the echo firmware, and a run
    // that fails with its console kept.
    let runtime = scenario(
        dir,
        "runtime.yaml",
        &format!(
            r#"version: 1
name: runtime-load
board: mps2-an385
image: cortex-m/echo
timeout: 30s
steps:
  - boot: {{}}
  - wait-serial: {{match: 'READY', timeout: 5s}}
  - send-serial: "{}"
  - gc-trace: {{format: auto, until: 'DONE t_us=(?P<run_us>\d+)', timeout: 10s}}
  - serial-load: {{count: 200, rate: 400, send: "MSG {{seq}}\n", reply: '^MSG (?P<seq>\d+)$', timeout: 10s}}
  - send-serial: "exit\n"
  - expect-exit: {{code: 0, timeout: 5s}}
"#,
            gc_trace()
        ),
    );
    let broken = scenario(
        dir,
        "wrong-exit.yaml",
        r"version: 1
name: wrong-exit
board: mps2-an385
image: cortex-m/hello
clock: virtual
timeout: 10s
steps:
  - boot: {}
  - wait-serial: {match: 'READY boot_us=(?P<boot_us>\d+)', timeout: 5s}
  - expect-exit: {code: 3, timeout: 5s}
",
    );
    let load = dir.join("load.json");
    let out = lab_in(
        dir,
        &[
            "run",
            "-j",
            "2",
            &path(&runtime),
            &path(&broken),
            "--json",
            &path(&load),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The power-loss campaign, four trials per abrupt variant.
    let campaign = std::fs::read_to_string(scenarios.join("ota/cortex-m.yaml")).unwrap();
    assert!(
        campaign.contains("const TRIALS = 500;"),
        "the campaign's trial count moved"
    );
    let ota = scenario(
        dir,
        "ota.yaml",
        &campaign.replace("const TRIALS = 500;", "const TRIALS = 4;"),
    );
    let power = dir.join("power.json");
    let out = lab_in(
        dir,
        &[
            "run",
            "-j",
            "2",
            &path(&ota),
            "-k",
            "abrupt",
            "--json",
            &path(&power),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    vec![boot, load, power]
}

/// What the page shows, measured in the browser.
const MEASURE: &str = r#"JSON.stringify({
  mode: document.compatMode,
  external: document.querySelectorAll('script, link, img, iframe, object, embed').length
    + performance.getEntriesByType('resource').length,
  plots: Array.from(document.querySelectorAll('figure[data-plot]')).map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const count = s => svg ? svg.querySelectorAll(s).length : 0;
    const points = svg ? Math.max(0, ...Array.from(svg.querySelectorAll('polyline'))
      .map(p => p.points.numberOfItems)) : 0;
    return {plot: f.dataset.plot, width: box.width, height: box.height,
      rect: count('rect'), circle: count('circle'), text: count('text'), points};
  }),
  failures: (document.querySelector('section.failures') || {innerText: ''}).innerText,
})"#;

/// Opens `page` in headless Chromium; returns what [`MEASURE`] found and
/// every error the page logged, then checks that an error would be seen.
fn open_in_chromium(page: &Path) -> (Value, Vec<String>) {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "no {}: run scripts/install-deps.sh (Debian's `chromium`)",
        chromium.display()
    );
    let profile = tempfile::tempdir().unwrap();
    let args = [
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .map(std::ffi::OsStr::new);
    let options = LaunchOptions::default_builder()
        .path(Some(chromium.to_owned()))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .user_data_dir(Some(profile.path().to_owned()))
        .window_size(Some((1200, 900)))
        .idle_browser_timeout(Duration::from_secs(120))
        .args(args.to_vec())
        .build()
        .unwrap();
    let browser = Browser::new(options).expect("Chromium starts");
    let tab = browser.new_tab().unwrap();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&errors);
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let error = match event {
            Event::LogEntryAdded(e) if e.params.entry.level == LogEntryLevel::Error => {
                Some(e.params.entry.text.clone())
            }
            Event::RuntimeConsoleAPICalled(e)
                if e.params.Type == ConsoleAPICalledEventTypeOption::Error =>
            {
                Some(format!(
                    "console.error: {:?}",
                    e.params.args.first().and_then(|a| a.value.clone())
                ))
            }
            Event::RuntimeExceptionThrown(e) => Some(e.params.exception_details.text.clone()),
            _ => None,
        };
        if let Some(error) = error {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(error);
        }
    }))
    .unwrap();
    tab.enable_log().unwrap().enable_runtime().unwrap();
    tab.navigate_to(&format!("file://{}", page.display()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let measured = tab.evaluate(MEASURE, false).unwrap().value;
    let measured: Value =
        serde_json::from_str(measured.as_ref().and_then(Value::as_str).unwrap()).unwrap();
    let logged = errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    // The listener hears errors: one made on purpose arrives.
    tab.evaluate("console.error('lab-probe')", false).unwrap();
    let heard = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|e| e.contains("lab-probe"))
    });
    assert!(heard, "the console listener heard no console.error");
    (measured, logged)
}

#[test]
fn the_html_report_of_real_runs_draws_every_plot_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let reports = reports_of_real_runs(dir.path());
    let page = dir.path().join("report.html");
    let mut args = vec!["report".to_owned()];
    args.extend(reports.iter().map(|r| r.display().to_string()));
    args.extend(["--html".to_owned(), page.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab_in(dir.path(), &args);
    // A report holds a failed run.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(page.exists(), "{}", text(&out));

    let (page, errors) = open_in_chromium(&page);
    assert!(errors.is_empty(), "the page logged errors: {errors:?}");
    assert_eq!(page["mode"], "CSS1Compat", "standards mode: {page}");
    assert_eq!(page["external"], 0, "the page loads nothing: {page}");

    let plots = page["plots"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&Value> { plots.iter().filter(|p| p["plot"] == kind).collect() };
    let number = |p: &Value, key: &str| p[key].as_f64().unwrap_or(0.0);
    for plot in plots {
        assert!(
            number(plot, "width") > 300.0 && number(plot, "height") > 150.0,
            "a plot with no room: {plot}"
        );
        assert!(number(plot, "text") >= 5.0, "a plot without labels: {plot}");
    }
    // Three variants in five phases, stacked: a bar piece per phase.
    let timeline = of("boot-timeline");
    assert_eq!(timeline.len(), 1, "{page}");
    assert!(number(timeline[0], "rect") >= 15.0, "{}", timeline[0]);
    // Fifty collections: a histogram's bars, a dot per collection.
    let histogram = of("gc-histogram");
    assert_eq!(histogram.len(), 1, "{page}");
    // The background and four legend swatches, then a bar or more per kind.
    assert!(number(histogram[0], "rect") >= 9.0, "{}", histogram[0]);
    let pauses = of("gc-timeline");
    assert_eq!(pauses.len(), 1, "{page}");
    assert!(number(pauses[0], "circle") >= 50.0, "{}", pauses[0]);
    // Two hundred round trips: a step up per message.
    let cdf = of("latency-cdf");
    assert_eq!(cdf.len(), 1, "{page}");
    assert!(number(cdf[0], "points") >= 400.0, "{}", cdf[0]);
    // Six leak variants, each with its samples and its line.
    let trends = of("trend");
    assert_eq!(trends.len(), 6, "{page}");
    for trend in trends {
        assert!(number(trend, "circle") >= 40.0, "{trend}");
        assert!(number(trend, "points") >= 2.0, "{trend}");
    }
    // Two campaigns: a rate and its interval each.
    let rates = of("success-rates");
    assert_eq!(rates.len(), 1, "{page}");
    assert!(number(rates[0], "circle") >= 2.0, "{}", rates[0]);

    let failures = page["failures"].as_str().unwrap();
    for expected in ["wrong-exit#1", "expected 3", "READY boot_us="] {
        assert!(failures.contains(expected), "{expected} in {failures}");
    }
}

#[test]
fn markdown_of_real_reports_names_the_failure_and_its_console() {
    let dir = tempfile::tempdir().unwrap();
    let broken = scenario(
        dir.path(),
        "wrong-exit.yaml",
        r"version: 1
name: wrong-exit
board: mps2-an385
image: cortex-m/hello
clock: virtual
timeout: 10s
steps:
  - boot: {}
  - wait-serial: {match: 'READY boot_us=(?P<boot_us>\d+)', timeout: 5s}
  - expect-exit: {code: 3, timeout: 5s}
",
    );
    let report = dir.path().join("r.json");
    let out = lab_in(
        dir.path(),
        &[
            "run",
            broken.to_str().unwrap(),
            "--json",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = lab_in(
        dir.path(),
        &["report", report.to_str().unwrap(), "--markdown"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let markdown = String::from_utf8_lossy(&out.stdout);
    assert!(markdown.starts_with("## lab report\n"), "{markdown}");
    assert!(markdown.contains("#### wrong-exit ("), "{markdown}");
    assert!(
        markdown.contains("- **wrong-exit#1** failed: the target exited with code 0, expected 3"),
        "{markdown}"
    );
    assert!(markdown.contains("  READY boot_us="), "{markdown}");
}
