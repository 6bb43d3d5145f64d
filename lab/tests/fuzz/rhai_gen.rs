//! Rhai scripts from a grammar: a `.rhai` scenario's settings as
//! constants, then statements over the lab's functions. Most calls have
//! the arguments the lab accepts, so that most scripts compile and get
//! to planning; some have the wrong count, call rhai's own functions or
//! names nothing defines, or use what the sandbox forbids. [`deep`] goes
//! past the engine's depth limits.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::dictionary::{DURATIONS, Names, ODD_TEXT, REGEXES, RHAI_FUNCTIONS, RHAI_KEYWORDS};

/// A strategy for a piece of rhai source.
type Rhai = BoxedStrategy<String>;

/// The lab's functions with the arguments each form takes: `text`,
/// `pattern`, `duration`, `int`, `bytes`, `map`, `options` (of `boot`),
/// `bool` or `any`.
const LAB_CALLS: &[(&str, &[&str])] = &[
    ("boot", &[]),
    ("boot", &["options"]),
    ("wait_serial", &["pattern"]),
    ("wait_serial", &["pattern", "duration"]),
    ("send_serial", &["text"]),
    ("qmp", &["text"]),
    ("qmp", &["text", "map"]),
    ("hmp", &["text"]),
    ("pause", &[]),
    ("resume", &[]),
    ("reset", &[]),
    ("expect_exit", &[]),
    ("expect_exit", &["duration"]),
    ("attach_debugger", &[]),
    ("attach_debugger", &["duration"]),
    ("break_at", &["text"]),
    ("break_at", &["int"]),
    ("continue_to", &[]),
    ("continue_to", &["duration"]),
    ("step", &[]),
    ("step", &["int"]),
    ("detach", &[]),
    ("read_register", &["text"]),
    ("read_memory", &["int", "int"]),
    ("read_symbol", &["text"]),
    ("write_memory", &["int", "bytes"]),
    ("write_symbol", &["text", "any"]),
    ("metric", &["text", "any"]),
    ("assert", &["bool"]),
    ("assert", &["bool", "text"]),
    ("random", &[]),
    ("random_int", &["int", "int"]),
    ("sleep", &["duration"]),
    ("sleep_guest", &["duration"]),
];

/// A whole script: the settings' constants, mostly well-typed, then code.
pub fn script(names: &Names) -> Rhai {
    let string = |values: Vec<String>| {
        prop_oneof![19 => select(values).prop_map(|v| quoted(&v)), 1 => expr(names)].boxed()
    };
    let header: Vec<BoxedStrategy<Option<String>>> = vec![
        (select(names.pairs.clone()), proptest::bool::weighted(0.95))
            .prop_map(|((board, image), both)| {
                let board = format!("const BOARD = {};", quoted(&board));
                let image = format!("const IMAGE = {};", quoted(&image));
                Some(if both {
                    format!("{board}\n{image}")
                } else {
                    board
                })
            })
            .boxed(),
        constant("IMAGE", string(names.images.clone()), 0.03),
        constant("BOARD", string(names.boards.clone()), 0.03),
        constant("NAME", string(vec!["campaign".into(), String::new()]), 0.3),
        constant("TIMEOUT", duration(), 0.3),
        constant(
            "CLOCK",
            string(vec!["virtual".into(), "wall".into(), "x".into()]),
            0.2,
        ),
        constant("ARGS", array(text()), 0.2),
        constant(
            "ROUNDS",
            (0..20i64).prop_map(|n| n.to_string()).boxed(),
            0.3,
        ),
    ];
    (header.prop_shuffle(), vec(statement(names), 0..8))
        .prop_map(|(header, body)| {
            let mut lines: Vec<String> = header.into_iter().flatten().collect();
            lines.extend(body);
            lines.join("\n")
        })
        .boxed()
}

/// Source made to find the engine's depth limits and the recursion of the
/// checks that walk the syntax tree: deep nesting, long operator chains,
/// many calls, many functions.
pub fn deep() -> Rhai {
    let head = "const BOARD = \"mps2-an385\";\nconst IMAGE = \"cortex-m/hello\";\n";
    let wrappers = select(
        &[
            ("(", ")"),
            ("[", "]"),
            ("#{a: ", "}"),
            ("{ ", " }"),
            ("-", ""),
            ("!", ""),
            ("f(", ")"),
            ("if true { ", " } else { 0 }"),
            ("|x| ", ""),
            ("`${", "}`"),
            ("boot(#{board: ", "})"),
        ][..],
    );
    prop_oneof![
        (wrappers, 1..400usize).prop_map(move |((open, close), depth)| {
            format!(
                "{head}let v = {}1{};\n",
                open.repeat(depth),
                close.repeat(depth)
            )
        }),
        (
            select(&[" + ", " * ", " && ", " ?? ", ".", " .. "][..]),
            1..20_000usize
        )
            .prop_map(move |(op, n)| format!(
                "{head}let x = 1;\nlet v = x{};\n",
                format!("{op}x").repeat(n)
            )),
        (1..5000usize).prop_map(move |n| format!("{head}{}", "wait_serial(\"a\");\n".repeat(n))),
        (1..400usize).prop_map(move |n| format!("{head}{}", "{\n".repeat(n))),
        (1..2000usize).prop_map(move |n| {
            let fns: String = (0..n)
                .map(|i| format!("fn f{i}(a) {{ f{}(a) }}\n", i + 1))
                .collect();
            format!("{head}{fns}")
        }),
    ]
    .boxed()
}

/// `const NAME = value;`, present with probability `p`.
fn constant(name: &'static str, value: Rhai, p: f64) -> BoxedStrategy<Option<String>> {
    option::weighted(p, value)
        .prop_map(move |v| v.map(|v| format!("const {name} = {v};")))
        .boxed()
}

/// A statement: mostly calls of the lab's functions, in blocks, loops,
/// branches, `try`, `switch` and functions of the script's own.
fn statement(names: &Names) -> Rhai {
    let leaf = prop_oneof![
        12 => call(names).prop_map(|c| format!("{c};")),
        3 => (select(&["a", "b", "c"][..]), expr(names)).prop_map(|(n, e)| format!("let {n} = {e};")),
        1 => select(
            &[
                "return;",
                "exit();",
                "exit(3);",
                "throw \"x\";",
                "print(\"x\");",
                "debug(1);",
                "let f = Fn(\"boot\"); f.call();",
                "let a = 1; a += 2;",
            ][..]
        )
        .prop_map(String::from),
        1 => select(
            &[
                "break;",
                "continue;",
                "import \"x\" as m;",
                "eval(\"1\");",
                "let x = eval;",
                "export const X = 1;",
                "private fn p() {}",
                "global::X;",
                "this;",
                "undefined_variable;",
                "a = 1;",
            ][..]
        )
        .prop_map(String::from),
        1 => unknown_call().prop_map(|c| format!("{c};")),
    ];
    let (conditions, subjects) = (condition(names), expr(names));
    let statement = leaf.prop_recursive(3, 24, 4, move |inner| {
        let block = vec(inner.clone(), 0..4).prop_map(|body| format!("{{ {} }}", body.join(" ")));
        prop_oneof![
            (conditions.clone(), block.clone(), block.clone())
                .prop_map(|(c, t, e)| format!("if {c} {t} else {e}")),
            (conditions.clone(), block.clone()).prop_map(|(c, b)| format!("while {c} {b}")),
            (0..10i64, block.clone()).prop_map(|(n, b)| format!("for i in 0..{n} {b}")),
            block.clone().prop_map(|b| format!("loop {b}")),
            (block.clone(), block.clone()).prop_map(|(t, c)| format!("try {t} catch (err) {c}")),
            (subjects.clone(), block)
                .prop_map(|(e, b)| format!("switch {e} {{ 1 => {b}, _ => () }}")),
        ]
    });
    // Functions and constants are declared at the top level only.
    let function = (
        select(&["f", "g", "boot", "wait_serial"][..]),
        vec(select(&["p", "q"][..]), 0..3),
        vec(statement.clone(), 0..4),
    )
        .prop_map(|(name, params, body)| {
            format!("fn {name}({}) {{ {} }}", params.join(", "), body.join(" "))
        });
    let constant = (select(&["A", "B"][..]), expr(names))
        .prop_map(|(name, value)| format!("const {name} = {value};"));
    prop_oneof![8 => statement, 1 => function, 1 => constant].boxed()
}

/// A condition: mostly a comparison, as rhai refuses a literal of
/// another type where it wants a boolean.
fn condition(names: &Names) -> Rhai {
    prop_oneof![
        2 => (expr(names), select(&["==", "!=", "<", ">="][..]), expr(names))
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        1 => select(&["true", "false", "random_int(1, 6) == 1", "!(1 > 2)"][..])
            .prop_map(String::from),
    ]
    .boxed()
}

/// An expression: literals, operators, arrays, maps, closures, string
/// interpolation, method calls and calls of the lab's functions.
fn expr(names: &Names) -> Rhai {
    let leaf = prop_oneof![
        4 => (0..100i64).prop_map(|n| n.to_string()),
        3 => text(),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| format!("{n:?}")),
        1 => select(&["true", "false", "()", "'c'", "[]", "#{}", "0x7f", "1e3"][..])
            .prop_map(String::from),
    ];
    let names = names.clone();
    leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            3 => (inner.clone(), select(&["+", "-", "*", "/", "%", "==", "<", "??", "..", "**", "in"][..]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => inner.clone().prop_map(|e| format!("-{e}")),
            2 => call(&names),
            1 => array(inner.clone()),
            1 => vec(("[a-z]{1,4}", inner.clone()), 0..4).prop_map(|entries| {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("#{{{}}}", entries.join(", "))
            }),
            1 => (inner.clone(), 0..4i64).prop_map(|(a, i)| format!("{a}[{i}]")),
            1 => (inner.clone(), select(&["len", "to_string", "type_of"][..]))
                .prop_map(|(e, m)| format!("{e}.{m}()")),
            1 => inner.clone().prop_map(|e| format!("|x| x + {e}")),
            1 => inner.clone().prop_map(|e| format!("`t=${{{e}}}`")),
            1 => (condition(&names), inner.clone(), inner)
                .prop_map(|(c, t, e)| format!("if {c} {{ {t} }} else {{ {e} }}")),
        ]
    })
    .boxed()
}

/// A call of one of the lab's functions, mostly with arguments of the
/// forms it takes, else with as many arguments of any kind.
fn call(names: &Names) -> Rhai {
    let names = names.clone();
    select(LAB_CALLS)
        .prop_flat_map(move |(function, params)| {
            let args: Vec<Rhai> = params.iter().map(|&p| argument(&names, p)).collect();
            args.prop_map(move |args| format!("{function}({})", args.join(", ")))
        })
        .boxed()
}

/// A call that `lab check` refuses: a lab function with a wrong argument
/// count, or a name that nothing defines (rhai's keywords among them).
fn unknown_call() -> Rhai {
    let function = prop_oneof![
        3 => select(&RHAI_FUNCTIONS[..]),
        1 => select(RHAI_KEYWORDS),
        1 => select(&["wait_seria", "bot", "lab_boot", "f"][..]),
    ];
    (function, vec((0..100i64).prop_map(|n| n.to_string()), 0..5))
        .prop_map(|(f, args)| format!("{f}({})", args.join(", ")))
        .boxed()
}

/// An argument of the kind `kind` (see [`LAB_CALLS`]), now and then any
/// expression.
fn argument(names: &Names, kind: &str) -> Rhai {
    let typed = match kind {
        "text" => text(),
        "pattern" => select(REGEXES).prop_map(quoted).boxed(),
        "duration" => duration(),
        "int" => (0..0x2000_0000i64).prop_map(|n| n.to_string()).boxed(),
        "bytes" => vec(0..256i64, 0..4).prop_map(|b| format!("{b:?}")).boxed(),
        "map" => Just("#{}".to_owned()).boxed(),
        "options" => boot_options(names),
        "bool" => select(&["true", "1 == 1", "false"][..])
            .prop_map(String::from)
            .boxed(),
        _ => (0..100i64).prop_map(|n| n.to_string()).boxed(),
    };
    prop_oneof![19 => typed, 1 => (0..10i64).prop_map(|n| n.to_string())].boxed()
}

/// The options map of `boot(#{...})`, naming boards and images with
/// literals, known or not, or computing them.
fn boot_options(names: &Names) -> Rhai {
    let literal = |values: Vec<String>| {
        prop_oneof![
            8 => select(values).prop_map(|v| quoted(&v)),
            1 => Just("BOARD".to_owned()),
            1 => "[a-z0-9/-]{0,10}".prop_map(|v| quoted(&v)),
            1 => Just("1".to_owned()),
        ]
    };
    let entry = |key: &'static str, value: Rhai| {
        option::weighted(0.6, value).prop_map(move |v| v.map(|v| format!("{key}: {v}")))
    };
    (
        entry("board", literal(names.boards.clone()).boxed()),
        entry("image", literal(names.images.clone()).boxed()),
        entry("halted", Just("true".to_owned()).boxed()),
        entry("args", Just("[\"a\"]".to_owned()).boxed()),
    )
        .prop_map(|(a, b, c, d)| {
            let entries: Vec<String> = [a, b, c, d].into_iter().flatten().collect();
            format!("#{{{}}}", entries.join(", "))
        })
        .boxed()
}

/// An array literal.
fn array(item: Rhai) -> Rhai {
    vec(item, 0..4)
        .prop_map(|items| format!("[{}]", items.join(", ")))
        .boxed()
}

/// A string literal: mostly plain, else odd text or any characters.
fn text() -> Rhai {
    prop_oneof![
        6 => "[a-zA-Z0-9 _=]{0,12}".prop_map(|s| quoted(&s)),
        1 => select(ODD_TEXT).prop_map(quoted),
        1 => any::<String>().prop_map(|s| quoted(&s)),
    ]
    .boxed()
}

/// `text` as a rhai string literal: `\`, `"` and control characters
/// escaped, with the escapes rhai knows.
fn quoted(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for c in text.chars() {
        match c {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            c if c.is_control() => literal.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

/// A duration string, mostly one the lab accepts.
fn duration() -> Rhai {
    prop_oneof![
        8 => (1..10_000u64, select(&["ms", "s"][..])).prop_map(|(n, u)| format!("\"{n}{u}\"")),
        2 => select(DURATIONS).prop_map(quoted),
        1 => (0..100i64).prop_map(|n| n.to_string()),
    ]
    .boxed()
}
