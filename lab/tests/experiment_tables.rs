//! An experiment's table end to end: real QEMU runs of the native and
//! hello firmware on mps2-an385, one scenario declaring its `table:` and
//! one without, printed by `lab run`, kept in the JSON report and printed
//! again by `lab report` and `lab report --markdown`.

mod common;

use std::path::Path;

use common::{lab, lab_run, text};

/// The two variants and the steps both scenarios share: the footprint
/// first (text, rodata, data, bss, flash, static_ram), then the boot time,
/// which each firmware names its own way (`boot_us`, `ready_us`).
const BODY: &str = "board: mps2-an385
clock: virtual
timeout: 30s
matrix:
  - {name: native, image: cortex-m/native, args: [hello]}
  - {name: hello, image: cortex-m/hello}
steps:
  - footprint: {}
  - boot: {}
  - wait-serial: {match: 'READY (?:boot_us=(?P<boot_us>\\d+)|us=(?P<ready_us>\\d+))', timeout: 10s}
  - expect-exit: {code: 0, timeout: 10s}
";

/// The declared table: boot times first, then one footprint figure.
const TABLE: &str = "table:
  - {metric: ready_us, label: ready, unit: µs}
  - {metric: boot_us, label: boot, unit: µs}
  - {metric: text, label: code, unit: B}
";

fn write(dir: &Path, name: &str, table: &str) {
    let yaml = format!("version: 1\nname: {name}\n{table}{BODY}");
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

/// Where each of `needles` is in `haystack`, which must hold them all.
fn positions(haystack: &str, needles: &[&str]) -> Vec<usize> {
    needles
        .iter()
        .map(|n| {
            haystack
                .find(n)
                .unwrap_or_else(|| panic!("no {n:?} in:\n{haystack}"))
        })
        .collect()
}

fn in_order(haystack: &str, needles: &[&str]) {
    let at = positions(haystack, needles);
    assert!(at.is_sorted(), "not in the order {needles:?}:\n{haystack}");
}

#[test]
fn a_declared_table_is_printed_by_lab_run_and_lab_report_and_the_default_follows_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("experiments");
    std::fs::create_dir(&folder).unwrap();
    write(&folder, "declared", TABLE);
    write(&folder, "undeclared", "");
    let ran = lab_run(dir.path(), &folder, &["-j", "2"]);
    assert_eq!(ran.code(), Some(0), "{ran}");

    // The report keeps the production order and carries the table.
    let native = ran.results().iter().find(|r| r["variant"] == "native");
    let names: Vec<&str> = native.unwrap()["metrics"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "text",
            "rodata",
            "data",
            "bss",
            "flash",
            "static_ram",
            "ready_us"
        ]
    );
    let columns = &ran.json["tables"]["declared"]["columns"];
    assert_eq!(columns[0]["metric"], "ready_us");
    assert_eq!(columns[2]["unit"], "B");
    assert!(
        ran.json["tables"].get("undeclared").is_none(),
        "{}",
        ran.json
    );

    // `lab run`: the declared table, a row per variant, in the declared
    // order; the other, a row per metric in the order the steps made them.
    let stdout = ran.stdout();
    let start = |title: &str| {
        let line = format!("{title}\n");
        if stdout.starts_with(&line) {
            return 0;
        }
        let at = stdout.find(&format!("\n{line}"));
        at.unwrap_or_else(|| panic!("no table {title}:\n{stdout}")) + 1
    };
    let declared = &stdout[start("declared")..];
    let cells = |row: &str| -> Vec<String> {
        row.trim_matches('│')
            .split('┆')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let header = declared.lines().nth(2).unwrap();
    in_order(header, &["variant", "ready (µs)", "boot (µs)", "code (B)"]);
    let row = |name: &str| {
        declared
            .lines()
            .find(|l| l.starts_with(&format!("│ {name} ")))
            .unwrap_or_else(|| panic!("no row {name}:\n{stdout}"))
            .to_owned()
    };
    let ready = native.unwrap()["metrics"]["ready_us"].as_f64().unwrap();
    let text_bytes = native.unwrap()["metrics"]["text"].as_f64().unwrap();
    assert_eq!(
        cells(&row("native")),
        ["native", &ready.to_string(), "-", &text_bytes.to_string()]
    );
    // The hello firmware has no ready_us: a dash where its value would be.
    let hello = cells(&row("hello"));
    assert_eq!(hello[1], "-", "{hello:?}");
    assert!(hello[2].parse::<f64>().is_ok(), "{hello:?}");
    let undeclared = &stdout[start("undeclared")..];
    in_order(
        undeclared,
        &[
            "│ text ",
            "│ rodata ",
            "│ bss ",
            "│ static_ram ",
            "│ ready_us ",
            "│ boot_us ",
        ],
    );
    // The run table lists the declared metrics first, then as produced.
    let run_row = stdout
        .lines()
        .find(|l| l.starts_with("│ declared ") && l.contains("┆ native "))
        .expect("a run row");
    in_order(run_row, &["ready_us=", "text=", "rodata="]);

    // `lab report` prints what `lab run` printed, from the JSON alone.
    let json = dir.path().join("experiments.json");
    let again = lab().arg("report").arg(&json).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    // (`lab run` prints each job's progress before them.)
    let printed = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.ends_with(&*printed) && printed.starts_with("declared\n"),
        "lab run printed:\n{stdout}\nlab report printed:\n{printed}"
    );

    // `--markdown`: the declared table with its labels and units.
    let markdown = lab()
        .arg("report")
        .arg(&json)
        .arg("--markdown")
        .output()
        .unwrap();
    assert_eq!(markdown.status.code(), Some(0), "{}", text(&markdown));
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    let section = &markdown[markdown.find("#### declared").expect("its section")..];
    in_order(
        section,
        &[
            "| variant | ready (µs) | boot (µs) | code (B) |",
            "| native ",
            "| hello ",
        ],
    );
    let section = &markdown[markdown.find("#### undeclared").expect("its section")..];
    in_order(
        section,
        &["| metric ", "| text ", "| ready_us ", "| boot_us "],
    );
}
