//! YAML scenarios from a grammar of the format: mostly well-typed values,
//! so that cases get past the deserializer into validation and planning,
//! with junk, deep nesting, anchors and aliases, tags and odd text mixed
//! in where a value goes.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::dictionary::{
    DURATIONS, LOCATIONS, NUMBERS, Names, ODD_TEXT, OPTION_KEYS, REGEXES, STEP_KEYS, TOP_KEYS,
};

/// A strategy for a piece of YAML source.
type Yaml = BoxedStrategy<String>;

/// A whole scenario: top-level keys in any order, a matrix sometimes, and
/// a list of steps; `script` gives the source of inline `script:` steps.
pub fn scenario(names: &Names, script: BoxedStrategy<String>) -> Yaml {
    let variant = (
        entry("name", well_typed(text()), 0.99),
        board_and_image(names, 0.5),
        entry("env", env(), 0.2),
        entry("args", args(), 0.2),
    )
        .prop_map(|(name, target, env, args)| {
            let entries: Vec<String> = name
                .into_iter()
                .chain(target)
                .chain(env)
                .chain(args)
                .collect();
            format!("{{{}}}", entries.join(", "))
        });
    let top: Vec<BoxedStrategy<Option<String>>> = vec![
        entry(
            "version",
            prop_oneof![49 => Just("1".to_owned()), 1 => junk()].boxed(),
            0.99,
        ),
        entry("name", text(), 0.5),
        board_and_image(names, 0.99)
            .prop_map(|entries| (!entries.is_empty()).then(|| entries.join("\n")))
            .boxed(),
        entry("target", choice(&["qemu", "hardware", "auto"]), 0.3),
        entry("clock", choice(&["virtual", "wall"]), 0.3),
        entry("timeout", well_typed(duration()), 0.4),
        entry("runs", well_typed(number()), 0.2),
        entry("env", env(), 0.2),
        entry("args", args(), 0.2),
        entry("bogus", junk(), 0.02),
        option::weighted(0.2, vec(variant, 0..6))
            .prop_map(|variants| variants.map(|v| block_list("matrix", &v)))
            .boxed(),
        option::weighted(0.2, vec(column(), 0..5))
            .prop_map(|columns| columns.map(|c| block_list("table", &c)))
            .boxed(),
        option::weighted(0.99, steps(names, script))
            .prop_map(|steps| steps.map(|s| block_list("steps", &s)))
            .boxed(),
    ];
    top.prop_shuffle()
        .prop_map(|lines| lines.into_iter().flatten().collect::<Vec<_>>().join("\n"))
        .boxed()
}

/// A column of `table:`: a metric's name alone, or a map with its label
/// and unit.
fn column() -> Yaml {
    let metric = || prop_oneof![9 => "[a-z][a-z0-9_]{0,12}".boxed(), 1 => text()].boxed();
    prop_oneof![
        1 => metric(),
        3 => flow_map(vec![
            ("metric", well_typed(metric()), 0.97),
            ("label", well_typed(text()), 0.6),
            ("unit", well_typed(choice(&["µs", "ms", "B", "KiB", "%", "\"\""])), 0.5),
        ]),
    ]
    .boxed()
}

/// Documents that stress the deserializer's budgets on their own: nesting
/// far past its depth limit, alias expansion (a billion laughs), many
/// anchors, long lists, long scalars.
pub fn stress() -> Yaml {
    let head = "version: 1\nboard: mps2-an385\nimage: cortex-m/hello\nsteps:\n  - boot: {}\n";
    prop_oneof![
        (1..300usize, select(&[("[", "]"), ("{a: ", "}")][..])).prop_map(move |(depth, (o, c))| {
            format!("{head}  - deep: {}x{}\n", o.repeat(depth), c.repeat(depth))
        }),
        (1..200usize).prop_map(move |depth| {
            let mut text = format!("{head}  - deep:\n");
            for level in 1..=depth {
                text.push_str(&" ".repeat(2 + 2 * level));
                text.push_str("- k:\n");
            }
            text
        }),
        (1..12usize, 1..12usize).prop_map(move |(levels, width)| {
            let mut text = format!("{head}  - lol0: &a0 [{}]\n", vec!["lol"; width].join(", "));
            for level in 1..levels {
                let items = vec![format!("*a{}", level - 1); width].join(", ");
                text.push_str(&format!("  - lol{level}: &a{level} [{items}]\n"));
            }
            text
        }),
        (1..3000usize).prop_map(move |n| {
            let mut text = head.to_owned();
            for i in 0..n {
                text.push_str(&format!("  - x{i}: &n{i} {i}\n"));
            }
            text
        }),
        (1..20_000usize).prop_map(move |n| format!("{head}{}", "  - boot: {}\n".repeat(n))),
        (0..1_100_000usize).prop_map(move |n| format!("{head}name: \"{}\"\n", "x".repeat(n))),
    ]
    .boxed()
}

/// `key: value`, present with probability `p` (always at 1).
fn entry(key: &'static str, value: Yaml, p: f64) -> BoxedStrategy<Option<String>> {
    let value = if p < 1.0 {
        option::weighted(p, value).boxed()
    } else {
        value.prop_map(Some).boxed()
    };
    value
        .prop_map(move |v| v.map(|v| format!("{key}: {v}")))
        .boxed()
}

/// `key:` and a block list of flow items.
fn block_list(key: &str, items: &[String]) -> String {
    let mut text = format!("{key}:");
    if items.is_empty() {
        text.push_str(" []");
    }
    for item in items {
        text.push_str("\n  - ");
        text.push_str(item);
    }
    text
}

/// A flow map of optional entries, each present with its probability, and
/// now and then a key the format does not have.
fn flow_map(entries: Vec<(&'static str, Yaml, f64)>) -> Yaml {
    let mut parts: Vec<BoxedStrategy<Option<String>>> = entries
        .into_iter()
        .map(|(key, value, p)| entry(key, value, p))
        .collect();
    parts.push(
        option::weighted(0.03, (select(OPTION_KEYS), junk()))
            .prop_map(|kv| kv.map(|(k, v)| format!("{k}: {v}")))
            .boxed(),
    );
    parts
        .prop_map(|parts| {
            let parts: Vec<String> = parts.into_iter().flatten().collect();
            format!("{{{}}}", parts.join(", "))
        })
        .boxed()
}

/// A step: one key and its value, in shorthand or in full; the keys a
/// step needs are there 99 times in 100, other keys now and then. One
/// step in forty is of a shape the format does not have.
fn step(names: &Names, script: BoxedStrategy<String>) -> Yaml {
    let loc = || well_typed(location());
    let dur = || well_typed(duration());
    let pattern = || well_typed(regex());
    let int = || well_typed(number());
    let text = || well_typed(text());
    let step = |key: &'static str, value: Yaml| value.prop_map(move |v| format!("{key}: {v}"));
    let no_options = || prop_oneof![29 => Just("{}".to_owned()), 1 => junk()].boxed();
    let bytes = || {
        vec(prop_oneof![19 => 0..256i64, 1 => any::<i64>()], 1..8)
            .prop_map(|b| format!("{b:?}"))
            .boxed()
    };
    let symbol = || {
        prop_oneof![
            9 => choice(&["lab_exit_code", "counter", "$x.y_z"]),
            1 => location(),
        ]
        .boxed()
    };
    let register = || {
        prop_oneof![
            9 => choice(&["pc", "sp", "r0", "lr", "xpsr"]),
            1 => choice(&["1r", "", "bad name"]),
        ]
        .boxed()
    };
    let script_step = prop_oneof![
        6 => flow_map(vec![
            ("source", script.prop_map(|s| quoted(&s)).boxed(), 1.0),
            ("timeout", dur(), 0.3),
        ]),
        3 => flow_map(vec![
            ("file", well_typed(choice(&["companion.rhai"])), 1.0),
            ("timeout", dur(), 0.3),
        ]),
        1 => flow_map(vec![
            ("file", choice(&["companion.rhai", "missing.rhai", "."]), 0.5),
            ("source", Just("\"boot();\"".to_owned()).boxed(), 0.5),
        ]),
    ];
    let invalid_step = prop_oneof![
        Just("boot: {}".to_owned()),
        Just("boot".to_owned()),
        Just("{}".to_owned()),
        (select(STEP_KEYS), junk()).prop_map(|(k, v)| format!("{k}: {v}")),
        (select(OPTION_KEYS), junk()).prop_map(|(k, v)| format!("{k}: {v}")),
        (select(STEP_KEYS), select(STEP_KEYS))
            .prop_map(|(a, b)| format!("{{{a}: {{}}, {b}: {{}}}}")),
    ];
    prop_oneof![
        4 => step("wait-serial", flow_map(vec![("match", pattern(), 0.99), ("timeout", dur(), 0.6)])),
        2 => step("send-serial", text()),
        2 => step("expect-exit", flow_map(vec![("code", int(), 0.7), ("timeout", dur(), 0.6)])),
        1 => step("attach-debugger", flow_map(vec![("timeout", dur(), 0.5)])),
        1 => step("break", prop_oneof![
            loc(),
            flow_map(vec![("at", loc(), 0.99), ("hardware", boolean(), 0.3)]),
        ].boxed()),
        1 => step("continue", flow_map(vec![("timeout", dur(), 0.5), ("stop-at", loc(), 0.5)])),
        1 => step("step", flow_map(vec![("count", int(), 0.7)])),
        1 => step("read-register", prop_oneof![
            register(),
            flow_map(vec![
                ("name", register(), 0.99),
                ("metric", text(), 0.4),
                ("expect", int(), 0.4),
            ]),
        ].boxed()),
        1 => step("read-memory", flow_map(vec![
            ("address", loc(), 0.99),
            ("length", int(), 0.99),
            ("expect", bytes(), 0.1),
        ])),
        1 => step("read-symbol", prop_oneof![symbol(), flow_map(vec![
            ("name", symbol(), 0.99),
            ("metric", text(), 0.4),
            ("expect", int(), 0.4),
        ])].boxed()),
        1 => step("write-memory", flow_map(vec![("address", loc(), 0.99), ("bytes", bytes(), 0.99)])),
        1 => step("write-symbol", flow_map(vec![("name", symbol(), 0.99), ("value", int(), 0.99)])),
        1 => step("detach", no_options()),
        1 => step("footprint", no_options()),
        1 => step("memory-layout", no_options()),
        1 => step("expect-fault", flow_map(vec![
            ("kind", well_typed(choice(&["hardfault", "lockup"])), 0.99),
            ("cause", well_typed(select(names.causes.clone()).boxed()), 0.5),
            ("in", loc(), 0.3),
            ("timeout", dur(), 0.5),
        ])),
        2 => step("trend", flow_map(vec![
            ("match", well_typed(trend_pattern()), 0.99),
            ("until", pattern(), 0.4),
            ("timeout", dur(), 0.4),
            ("metric", text(), 0.3),
            ("expect", prop_oneof![
                choice(&["rising", "flat", "falling"]),
                flow_map(vec![("m3", choice(&["rising", "flat"]), 0.8), ("m7", choice(&["falling"]), 0.5)]),
            ].boxed(), 0.5),
        ])),
        4 => step("script", script_step.boxed()),
        1 => step("gc-trace", flow_map(vec![
            ("format", well_typed(choice(&["go", "v8", "auto"])), 0.99),
            ("until", pattern(), 0.99),
            ("timeout", dur(), 0.5),
        ])),
        1 => step("expect-crash", flow_map(vec![
            ("kind", well_typed(select(names.crash_kinds.clone()).boxed()), 0.6),
            ("restart", pattern(), 0.5),
            ("timeout", dur(), 0.5),
        ])),
        2 => step("serial-load", flow_map(vec![
            ("count", int(), 0.99),
            ("rate", int(), 0.99),
            ("send", well_typed(prop_oneof![9 => Just("\"MSG {seq}\\n\"".to_owned()), 1 => Just("x".to_owned())].boxed()), 0.99),
            ("reply", well_typed(reply_pattern()), 0.99),
            ("timeout", dur(), 0.6),
            ("drain", dur(), 0.3),
        ])),
        1 => invalid_step,
    ]
    .boxed()
}

/// A list of steps, which mostly starts with `boot`.
fn steps(names: &Names, script: BoxedStrategy<String>) -> BoxedStrategy<Vec<String>> {
    (
        option::weighted(0.95, boot()),
        vec(step(names, script), 0..8),
    )
        .prop_map(|(boot, rest)| boot.into_iter().chain(rest).collect())
        .boxed()
}

/// The `boot` step.
fn boot() -> Yaml {
    prop_oneof![
        4 => Just("boot: {}".to_owned()),
        1 => boolean().prop_map(|halted| format!("boot: {{halted: {halted}}}")),
    ]
    .boxed()
}

/// `board` and `image` entries, each there with probability `p`: mostly a
/// board and an image built for its architecture, else any of each.
fn board_and_image(names: &Names, p: f64) -> BoxedStrategy<Vec<String>> {
    let matched = select(names.pairs.clone());
    let any = (well_typed(board(names)), image(names));
    let present = || proptest::bool::weighted(p);
    (prop_oneof![4 => matched, 1 => any], present(), present())
        .prop_map(|((board, image), has_board, has_image)| {
            let board = has_board.then(|| format!("board: {board}"));
            let image = has_image.then(|| format!("image: {image}"));
            board.into_iter().chain(image).collect()
        })
        .boxed()
}

/// `image:` as a name or a map of files.
fn image(names: &Names) -> Yaml {
    let path = || well_typed(choice(&["fw.elf", "Image", "board.dtb", "initrd.cpio", ""]));
    prop_oneof![
        8 => well_typed(select(names.images.clone()).prop_map(String::from).boxed()),
        1 => flow_map(vec![("elf", path(), 0.97)]),
        1 => flow_map(vec![
            ("kernel", path(), 0.97),
            ("dtb", path(), 0.5),
            ("initrd", path(), 0.5),
            ("elf", path(), 0.03),
        ]),
    ]
    .boxed()
}

/// A board name, known or not.
fn board(names: &Names) -> Yaml {
    prop_oneof![
        9 => select(names.boards.clone()).boxed(),
        1 => text(),
    ]
    .boxed()
}

/// An `env:` map: keys and values that may not survive a kernel command line.
fn env() -> Yaml {
    let word = prop_oneof![
        "[A-Z_][A-Z0-9_]{0,8}",
        "[a-z0-9.= \"'-]{0,8}",
        select(ODD_TEXT).prop_map(String::from),
    ];
    vec((word.clone(), word), 0..4)
        .prop_map(|pairs| {
            let pairs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), quoted(v)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        })
        .boxed()
}

/// An `args:` list.
fn args() -> Yaml {
    vec(text(), 0..4)
        .prop_map(|items| format!("[{}]", items.join(", ")))
        .boxed()
}

/// `typed`, now and then (1 in 300) replaced by any value: a scenario has
/// a few dozen values, so about one in ten has one of the wrong type.
fn well_typed(typed: Yaml) -> Yaml {
    prop_oneof![299 => typed, 1 => junk()].boxed()
}

/// One of `choices`, as written.
fn choice(choices: &[&'static str]) -> Yaml {
    select(choices.to_vec()).prop_map(String::from).boxed()
}

/// A string scalar, plain or quoted.
fn text() -> Yaml {
    prop_oneof![
        4 => "[a-z][a-z0-9_-]{0,12}",
        2 => any::<String>().prop_map(|s| quoted(&s)),
        1 => select(ODD_TEXT).prop_map(quoted),
        1 => "[ -~]{0,16}".prop_map(|s| single_quoted(&s)),
    ]
    .boxed()
}

/// A duration: mostly a valid one, else one on the edges.
fn duration() -> Yaml {
    let unit = select(
        &[
            "ns", "us", "ms", "s", "m", "h", "d", "w", "M", "y", "", "sec",
        ][..],
    );
    prop_oneof![
        36 => (1..100_000u64, select(&["ms", "s", "m"][..])).prop_map(|(n, u)| format!("{n}{u}")),
        2 => select(DURATIONS).prop_map(quoted),
        1 => (any::<u64>(), unit.clone()).prop_map(|(n, u)| format!("{n}{u}")),
        1 => (any::<f64>(), unit).prop_map(|(n, u)| quoted(&format!("{n}{u}"))),
    ]
    .boxed()
}

/// A regex: mostly words and the named groups that steps look for, else
/// one from the dictionary or pieces of regex syntax in any order.
fn regex() -> Yaml {
    let valid = prop_oneof![
        2 => "[A-Za-z]{1,6}=?".prop_map(|w| regex::escape(&w)),
        1 => select(&["x", "y", "seq", "t_ms", "run_us", "gc_count"][..])
            .prop_map(|g| format!(r"(?P<{g}>\d+)")),
        1 => select(&[" ", ".*", r"\s+", "(?:GO|NODE) "][..]).prop_map(String::from),
    ];
    let piece = prop_oneof![
        select(REGEXES).prop_map(String::from),
        "[a-zA-Z ]{1,6}",
        select(&["x", "y", "seq", "1bad", ""][..]).prop_map(|g| format!(r"(?P<{g}>\d+)")),
        select(&["(", ")", "|", "*", "+?", "{2,}", "\\", "[^", "]"][..]).prop_map(String::from),
    ];
    prop_oneof![
        18 => vec(valid, 1..6),
        1 => vec(select(REGEXES).prop_map(String::from), 1..2),
        1 => vec(piece, 1..5),
    ]
    .prop_map(|pieces| single_quoted(&pieces.concat()))
    .boxed()
}

/// A `trend` pattern: mostly with the groups `x` and `y` it needs.
fn trend_pattern() -> Yaml {
    prop_oneof![
        4 => Just(r"'HEAP t=(?P<x>\d+) used=(?P<y>\d+)'".to_owned()),
        1 => regex(),
    ]
    .boxed()
}

/// A `serial-load` reply pattern: mostly with the group `seq` it needs.
fn reply_pattern() -> Yaml {
    prop_oneof![
        4 => Just(r"'ACK (?P<seq>\d+) rss_kb=(?P<rss_kb>\d+)'".to_owned()),
        1 => regex(),
    ]
    .boxed()
}

/// A number: mostly small, else of any of YAML's kinds and sizes.
fn number() -> Yaml {
    prop_oneof![
        40 => (1..20i64).prop_map(|n| n.to_string()),
        4 => (0..1000i64).prop_map(|n| n.to_string()),
        2 => select(NUMBERS).prop_map(String::from),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| format!("{n:?}")),
    ]
    .boxed()
}

/// A code or data location: mostly a valid one.
fn location() -> Yaml {
    prop_oneof![
        12 => select(&["main", "lab_exit_code", "main.c:42", "0x20000000", "0x1a4"][..])
            .prop_map(String::from),
        2 => select(LOCATIONS).prop_map(quoted),
        1 => any::<u64>().prop_map(|a| format!("{a:#x}")),
        1 => number(),
    ]
    .boxed()
}

/// A boolean, or now and then something YAML 1.1 took for one.
fn boolean() -> Yaml {
    prop_oneof![
        8 => choice(&["true", "false"]),
        1 => choice(&["yes", "no", "True", "on", "~", "1"]),
    ]
    .boxed()
}

/// Any value: a scalar of another type, or a nested structure with
/// anchors, aliases, merge keys and tags.
fn junk() -> Yaml {
    let leaf = prop_oneof![
        text(),
        number(),
        boolean(),
        Just("~".to_owned()),
        Just("".to_owned()),
        select(
            &[
                "!!str 5",
                "!!int x",
                "!!binary aGk=",
                "!x y",
                "!!float .nan",
                "!!null ''"
            ][..]
        )
        .prop_map(String::from),
        (0..3u8).prop_map(|n| format!("*a{n}")),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(|items| format!("[{}]", items.join(", "))),
            vec((select(TOP_KEYS), inner.clone()), 0..5).prop_map(|entries| {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", entries.join(", "))
            }),
            (0..3u8, inner.clone()).prop_map(|(n, v)| format!("&a{n} {v}")),
            inner.prop_map(|v| format!("{{<<: *a0, k: {v}}}")),
        ]
    })
    .boxed()
}

/// `text` as a YAML double-quoted scalar (JSON's escapes are YAML's).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// `text` as a YAML single-quoted scalar.
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
