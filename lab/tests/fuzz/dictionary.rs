//! The formats' vocabulary: keys, step names, values that sit on the
//! edges of what the loaders accept, and the syntax that stresses a parser.
//! Mutations insert these tokens; the grammars draw values from them.

use std::sync::LazyLock;

/// The workspace's names, so that cases reach planning, where boards,
/// images and the names in `boot(#{...})` calls are resolved.
#[derive(Debug, Clone)]
pub struct Names {
    /// Board profiles in `qemu-configs/`.
    pub boards: Vec<String>,
    /// Image manifests in `images/`.
    pub images: Vec<String>,
    /// Each board with each image built for its architecture.
    pub pairs: Vec<(String, String)>,
    /// The causes `expect-fault` knows.
    pub causes: Vec<String>,
    /// The kinds `expect-crash` knows.
    pub crash_kinds: Vec<String>,
}

/// Top-level keys of a YAML scenario.
pub const TOP_KEYS: &[&str] = &[
    "version", "name", "board", "image", "target", "clock", "timeout", "runs", "env", "args",
    "matrix", "table", "warm-up", "steps",
];

/// Step keys: the loader's own list.
pub use lab::scenario::STEP_KEYS;

/// Keys inside steps, matrix variants and image maps.
pub const OPTION_KEYS: &[&str] = &[
    "match", "timeout", "code", "halted", "at", "hardware", "stop-at", "count", "name", "metric",
    "expect", "address", "length", "bytes", "value", "kind", "cause", "in", "until", "file",
    "source", "format", "restart", "rate", "send", "reply", "drain", "elf", "kernel", "dtb",
    "initrd", "wall", "guest", "label", "unit",
];

/// Durations, good and bad: units, no unit, zero, overflow, odd spacing.
pub const DURATIONS: &[&str] = &[
    "5s",
    "250ms",
    "2m",
    "1h",
    "1m 30s",
    "1ns",
    "0s",
    "0",
    "5",
    "1.5",
    "-3s",
    "+5s",
    "1.5s",
    "5 parsecs",
    "",
    " ",
    "s",
    "18446744073709551615s",
    "18446744073709551616s",
    "99999999999999999999999y",
    "584942417355y",
    "1y 1y 1y 1y 1y 1y 1y 1y",
    "1e9s",
    "5S",
    "5 s",
    "5\u{a0}s",
    "٥s",
];

/// Regexes: named groups the steps look for, errors, and patterns that
/// are expensive to compile.
pub const REGEXES: &[&str] = &[
    "READY",
    r"READY t=(?P<t_ms>\d+)",
    r"(?P<x>\d+) (?P<y>\d+)",
    r"ACK (?P<seq>\d+)",
    r"(?P<seq>\d+)(?P<seq2>\d+)",
    r"(?P<x>\d+",
    r"(?P<>x)",
    r"(?P<1x>x)",
    r"(?P<x>a)|(?P<x>b)",
    "(",
    ")",
    "[",
    r"\",
    "*",
    "a{5,3}",
    r"\p{Greek}+",
    r"\p{Nope}",
    r"\d{1000}",
    r"(\w{100}){100}",
    r"((a{100}){100}){100}",
    r"[\s\S]{65535}",
    r"(?i)ü",
    r"(?-u:\xFF)",
    "^$",
    r"\b",
    "\u{0}",
];

/// Numbers on the edges of the types the loader reads them into.
pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "256",
    "65536",
    "65537",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "-0.0",
    "1.5",
    ".nan",
    ".inf",
    "-.inf",
    "0x1a4",
    "0xFFFFFFFF",
    "0x100000000",
    "0xffffffffffffffffff",
    "0x",
    "0o17",
    "0b101",
    "1_000",
    "100000",
    "100001",
];

/// Code locations for `break`, `continue` and friends.
pub const LOCATIONS: &[&str] = &[
    "main",
    "lab_exit_code",
    "main.c:42",
    "main.c:0",
    ":42",
    "main.c:99999999999",
    "0x1a4",
    "0x",
    "0xg",
    "a b",
    "$x.y_z",
    "1abc",
];

/// Text that is hard to get right: control characters, bidi overrides,
/// BOMs, wide characters, line and paragraph separators.
pub const ODD_TEXT: &[&str] = &[
    "\u{feff}",
    "\u{202e}",
    "\u{200b}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\t",
    "\r",
    "\r\n",
    "\u{1b}[31m",
    "😀",
    "é",
    "e\u{301}",
    "𝔘𝔫𝔦",
    "\u{7f}",
    "\u{fffd}",
    "\u{10ffff}",
    "ı",
    "ǅ",
];

/// YAML syntax: documents, anchors, aliases, merges, tags, block scalars,
/// flow punctuation, quoting.
pub const YAML_SYNTAX: &[&str] = &[
    "---",
    "...",
    "%YAML 1.2",
    "%YAML 1.1",
    "%TAG ! tag:example.com,2000:",
    "&a",
    "*a",
    "&a [x, y]",
    "*undefined",
    "<<: *a",
    "<<: [*a, *a]",
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!binary aGVsbG8=",
    "!!map",
    "!!seq",
    "!!set",
    "!!omap",
    "!custom",
    "!<tag:yaml.org,2002:str>",
    "? ",
    "? complex\n: key",
    "|",
    "|-",
    ">+",
    "|2",
    "{",
    "}",
    "[",
    "]",
    ",",
    ": ",
    "- ",
    "#",
    "'",
    "''",
    "\"",
    "\"\\u0000\"",
    "\"\\x\"",
    "\"\\U0010FFFF\"",
    "\"\\uD800\"",
    "~",
    "null",
    "true",
    "yes",
    "on",
    "{}",
    "[]",
    "@",
    "`",
    "\t",
];

/// Functions the lab registers for scripts, as its own checker lists them.
pub static RHAI_FUNCTIONS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| lab::steps::script_checker().functions());

/// Rhai keywords, reserved words and the functions rhai handles itself.
pub const RHAI_KEYWORDS: &[&str] = &[
    "let",
    "const",
    "fn",
    "if",
    "else",
    "while",
    "loop",
    "do",
    "until",
    "for",
    "in",
    "return",
    "throw",
    "try",
    "catch",
    "break",
    "continue",
    "switch",
    "import",
    "export",
    "as",
    "private",
    "global",
    "this",
    "true",
    "false",
    "exit",
    "eval",
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "new",
    "use",
    "var",
    "static",
    "spawn",
    "thread",
    "go",
    "sync",
    "async",
    "await",
    "yield",
    "default",
    "void",
    "null",
    "nil",
    "with",
    "module",
    "package",
    "super",
    "shared",
    "protected",
    "public",
];

/// Rhai punctuation, operators, comments and literals.
pub const RHAI_SYNTAX: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "#{",
    ";",
    ",",
    ".",
    "?.",
    "?[",
    "??",
    "::",
    "=>",
    "|x|",
    "||",
    "..",
    "..=",
    "**",
    "<<",
    ">>>",
    "+=",
    "!",
    "//",
    "/*",
    "*/",
    "/* /* */",
    "///",
    "//!",
    "`",
    "${",
    "`${`${x}`}`",
    "\"",
    "'",
    "'ab'",
    "\\",
    "\"\\u{110000}\"",
    "\"\\x\"",
    "0x",
    "0b2",
    "1e999",
    "9223372036854775808",
    "-9223372036854775808",
    "1_000_000",
    "$",
    "@",
    "#!",
];

/// Tokens for mutating YAML: the vocabulary and the workspace's names.
pub fn yaml_tokens(names: &Names) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    tokens.extend(TOP_KEYS.iter().map(|k| format!("{k}:")));
    tokens.extend(STEP_KEYS.iter().map(|k| format!("- {k}:")));
    tokens.extend(STEP_KEYS.iter().map(|k| format!("- {k}: {{}}")));
    tokens.extend(STEP_KEYS.iter().map(|&k| k.to_owned()));
    tokens.extend(OPTION_KEYS.iter().map(|k| format!("{k}:")));
    tokens.extend(["version: 1", "version: 2", "runs: 4294967295", "steps: []"].map(String::from));
    tokens.extend(["qemu", "hardware", "auto", "virtual", "wall"].map(String::from));
    tokens.extend(["hardfault", "lockup", "go", "v8", "rising", "flat"].map(String::from));
    let lists = [DURATIONS, NUMBERS, LOCATIONS, ODD_TEXT, YAML_SYNTAX];
    tokens.extend(
        lists
            .iter()
            .flat_map(|list| list.iter().map(|&t| t.to_owned())),
    );
    tokens.extend(
        REGEXES
            .iter()
            .map(|r| format!("'{}'", r.replace('\'', "''"))),
    );
    tokens.extend(workspace_words(names));
    tokens
}

/// Tokens for mutating rhai: the vocabulary and the workspace's names.
pub fn rhai_tokens(names: &Names) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    tokens.extend(RHAI_FUNCTIONS.iter().map(|f| format!("{f}(")));
    tokens.extend(RHAI_FUNCTIONS.iter().map(|f| format!("{f}();")));
    let lists = [RHAI_KEYWORDS, RHAI_SYNTAX, NUMBERS, ODD_TEXT];
    tokens.extend(
        lists
            .iter()
            .flat_map(|list| list.iter().map(|&t| t.to_owned())),
    );
    for name in ["BOARD", "IMAGE", "NAME", "TIMEOUT", "CLOCK", "ARGS"] {
        tokens.push(format!("const {name} = "));
        tokens.push(name.to_owned());
    }
    tokens.extend(DURATIONS.iter().map(|d| format!("{d:?}")));
    tokens.extend(REGEXES.iter().map(|r| format!("{r:?}")));
    tokens.extend(workspace_words(names).map(|w| format!("{w:?}")));
    tokens.push("boot(#{board: \"mps2-an500\", image: \"cortex-m/hello\"});".to_owned());
    tokens.push("#{board: BOARD, image: 1}".to_owned());
    tokens
}

/// The workspace's names as tokens.
fn workspace_words(names: &Names) -> impl Iterator<Item = String> + '_ {
    [
        &names.boards,
        &names.images,
        &names.causes,
        &names.crash_kinds,
    ]
    .into_iter()
    .flatten()
    .cloned()
}
