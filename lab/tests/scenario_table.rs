//! The `table:` key: the columns an experiment prints, as loaded, and the
//! messages (with their positions) for tables that cannot be one.

use std::path::Path;

use lab::report::Statistic;
use lab::scenario::{self, Column, Scenario, ScenarioError, TableSpec};

/// A scenario with `table` (its lines, from line 4) before its steps.
fn with_table(table: &str) -> Result<Scenario, ScenarioError> {
    let text = format!(
        "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\n{table}steps:\n  - boot: {{}}\n"
    );
    scenario::load_str(Path::new("table.yaml"), &text)
}

fn column(metric: &str, label: &str, unit: Option<&str>) -> Column {
    Column::new(metric, label, unit.map(str::to_owned))
}

#[test]
fn loads_columns_in_their_order_with_labels_units_and_shorthands() {
    let s = with_table(
        "table:\n  - {metric: ready_us, label: ready, unit: µs}\n  - heap_peak\n  \
         - metric: boot_us\n    unit: µs\n  - {metric: resets, label: \"resets (abort)\"}\n",
    )
    .expect("loads");
    assert_eq!(
        s.table,
        Some(TableSpec {
            columns: vec![
                column("ready_us", "ready", Some("µs")),
                column("heap_peak", "heap_peak", None),
                column("boot_us", "boot_us", Some("µs")),
                column("resets", "resets (abort)", None),
            ]
        })
    );
}

#[test]
fn a_column_shows_a_statistic_in_a_unit_converted_from_the_metric_s() {
    let s = with_table(
        "table:\n  - {metric: boot_us, label: boot, unit: ms, from: µs, stat: mean}\n  \
         - {metric: success_ppm, unit: '%', from: ppm}\n  - {metric: gc_us, stat: p95}\n",
    )
    .expect("loads");
    let columns = s.table.expect("a table").columns;
    assert_eq!((columns[0].stat, columns[0].scale), (Statistic::Mean, 1e-3));
    assert_eq!(columns[0].heading(), "boot (ms, mean ± sd)");
    assert_eq!(
        (columns[1].stat, columns[1].scale),
        (Statistic::Median, 1e-4)
    );
    assert_eq!((columns[2].stat, columns[2].scale), (Statistic::P95, 1.0));
}

#[test]
fn a_scenario_without_a_table_has_none() {
    assert_eq!(with_table("").expect("loads").table, None);
}

#[test]
fn a_metric_no_step_names_is_allowed() {
    // Scripts make their metrics as they run, so the loader cannot know them.
    let s = with_table("table: [{metric: trials_per_s, label: rate, unit: /s}]\n").expect("loads");
    assert_eq!(s.table.expect("a table").columns.len(), 1);
}

#[test]
fn refuses_tables_that_cannot_be_printed_at_their_place() {
    let cases = [
        (
            "table: []\n",
            "table.yaml:4:8: `table` is empty\n  hint: list the metrics to print",
        ),
        (
            "table:\n  - boot_us\n  - ready_us\n  - {metric: boot_us, label: again}\n",
            "table.yaml:7:14: metric `boot_us` is in `table` twice\n  hint: the metric is first \
             listed at line 5",
        ),
        (
            "table:\n  - {label: ready, unit: µs}\n",
            "table.yaml:5:5: missing required key `metric`",
        ),
        (
            "table:\n  - {metric: ready_us, colour: red}\n",
            "table.yaml:5:24: unknown key `colour`",
        ),
        (
            "table:\n  - {metric: \"ready us\"}\n",
            "table.yaml:5:14: invalid metric name `ready us`",
        ),
        (
            "table:\n  - {metric: ready_us, label: \" \"}\n",
            "table.yaml:5:31: a column's `label` is empty\n  hint: leave `label` out",
        ),
        (
            "table:\n  - {metric: ready_us, unit: \"\"}\n",
            "table.yaml:5:30: a column's `unit` is empty\n  hint: leave `unit` out",
        ),
        (
            "table:\n  - 42\n",
            "table.yaml:5:5: expected a metric's name or a map with `metric`, found integer `42`",
        ),
        (
            "table: {metric: ready_us}\n",
            "table.yaml:4:8: expected a list",
        ),
        (
            "table:\n  - {metric: ready_us, stat: average}\n",
            "table.yaml:5:30: unknown statistic `average`\n  hint: write one of: median, mean, \
             min, p95, max",
        ),
        (
            "table:\n  - {metric: ready_us, from: µs}\n",
            "table.yaml:5:30: a column has `from` but no `unit`",
        ),
        (
            "table:\n  - {metric: ready_us, unit: MiB, from: µs}\n",
            "table.yaml:5:30: cannot show a metric in `µs` as `MiB`\n  hint: `from` and `unit` \
             must be units of one kind",
        ),
    ];
    for (table, expected) in cases {
        let error = with_table(table).expect_err(table);
        assert!(error.to_string().starts_with(expected), "{table}: {error}");
    }
}
