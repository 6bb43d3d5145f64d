//! `lab::elf` against firmware built by the project (arm-none-eabi-gcc -g -O2)
//! and a fixture of typed globals, checked against binutils.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lab::elf::{ElfError, ElfInfo, SectionKind, SymbolKind, ValueType};
use object::{Object, ObjectSection};

const BOARD: &str = "mps2-an385";

fn fault_elf() -> PathBuf {
    common::built_image("cortex-m/fault", BOARD)
}

fn hello_elf() -> PathBuf {
    common::built_image("cortex-m/hello", BOARD)
}

/// Runs a binutils/gcc tool and returns its stdout.
fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The 1-based number of the first line of `file` containing `needle`.
fn line_of(file: &Path, needle: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap();
    let index = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` in {}", file.display()));
    u32::try_from(index + 1).unwrap()
}

/// Builds lab/tests/fixtures/elf/globals.c into `dir` and returns the ELF.
fn globals_elf(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elf");
    let elf = dir.join("globals.elf");
    tool(
        "arm-none-eabi-gcc",
        &[
            "-mcpu=cortex-m3",
            "-mthumb",
            "-g",
            "-O1",
            "-nostdlib",
            "-T",
            fixtures.join("globals.ld").to_str().unwrap(),
            "-o",
            elf.to_str().unwrap(),
            fixtures.join("globals.c").to_str().unwrap(),
        ],
    );
    elf
}

#[test]
fn functions_are_found_without_the_thumb_bit() {
    let path = fault_elf();
    let info = ElfInfo::load(&path).unwrap();
    let nm = tool("arm-none-eabi-nm", &[path.to_str().unwrap()]);
    for name in ["main", "fault_undef", "fault_bus"] {
        let sym = info.symbol(name).unwrap();
        assert_eq!(sym.kind, SymbolKind::Function, "{name}");
        assert!(sym.thumb, "{name}");
        assert_eq!(sym.address & 1, 0, "{name}");
        assert!(sym.size > 0, "{name}");
        let expected = nm
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok())
            .unwrap();
        assert_eq!(sym.address, expected, "{name}");
    }
    let reset = info.symbol("Reset_Handler").unwrap();
    assert_eq!(info.entry(), reset.address | 1);
    assert!(info.little_endian() && !info.is_64() && info.has_debug_info());
    let flag = info.symbol("rt_fault_in_handler").unwrap();
    assert_eq!(
        (flag.kind, flag.size, flag.thumb),
        (SymbolKind::Object, 4, false)
    );
}

#[test]
fn symbolize_fault_undef_agrees_with_addr2line() {
    let path = fault_elf();
    let info = ElfInfo::load(&path).unwrap();
    let undef = info.symbol("fault_undef").unwrap();
    let addr = undef.address + 2;
    let loc = info.symbolize(addr).unwrap();
    assert_eq!(loc.function.as_deref(), Some("fault_undef"));
    assert_eq!(loc.offset, 2);
    assert!(
        loc.file.as_deref().unwrap().ends_with("fault/main.c"),
        "{loc:?}"
    );
    // The UDF is 2 bytes: +2 is the return after it, on the closing brace.
    let main_c = common::repo().join("images/cortex-m/fault/main.c");
    assert_eq!(loc.line, Some(line_of(&main_c, "udf #0") + 1));
    assert_eq!(
        loc.to_string(),
        format!("fault_undef+0x2 (main.c:{})", loc.line.unwrap())
    );
    assert_eq!(
        info.symbolize(undef.address).unwrap().line,
        Some(line_of(&main_c, "udf #0"))
    );

    let out = tool(
        "arm-none-eabi-addr2line",
        &["-f", "-e", path.to_str().unwrap(), &format!("{addr:#x}")],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("fault_undef"));
    let (file, line) = lines.next().unwrap().rsplit_once(':').unwrap();
    assert!(file.ends_with("main.c"));
    assert_eq!(loc.line, Some(line.parse().unwrap()));

    // A stacked LR carries the Thumb bit; it names the same place.
    assert_eq!(info.symbolize(addr | 1).unwrap(), loc);
}

#[test]
fn symbolize_agrees_with_addr2line_for_every_function() {
    for path in [hello_elf(), fault_elf()] {
        let info = ElfInfo::load(&path).unwrap();
        let functions: Vec<_> = info
            .symbols()
            .iter()
            .filter(|s| s.kind == SymbolKind::Function && s.size > 2)
            .cloned()
            .collect();
        let mut args = vec!["-a".to_owned(), "-f".into(), "-i".into(), "-e".into()];
        args.push(path.to_str().unwrap().into());
        args.extend(functions.iter().map(|s| format!("{:#x}", s.address + 2)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tool("arm-none-eabi-addr2line", &args);
        // Blocks: an address line, then (function, file:line) pairs, innermost first.
        let blocks: Vec<Vec<&str>> = out
            .split("0x")
            .skip(1)
            .map(|b| b.lines().skip(1).collect())
            .collect();
        assert_eq!(blocks.len(), functions.len());
        for (sym, block) in functions.iter().zip(&blocks) {
            let loc = info.symbolize(sym.address + 2).unwrap();
            assert_eq!(loc.offset, 2);
            let outermost = block[block.len() - 2];
            assert_eq!(
                info.symbol(outermost).map(|s| s.address),
                Some(sym.address),
                "{sym:?}: addr2line says {block:?}"
            );
            let innermost = block[1].rsplit_once(':').unwrap();
            let line = innermost.1.split(' ').next().unwrap().parse().ok();
            assert_eq!(loc.line, line, "{loc} vs {block:?}");
            assert_eq!(loc.inlined.len(), block.len() / 2 - 1, "{loc} vs {block:?}");
        }
    }
}

#[test]
fn line_address_round_trips_through_symbolize() {
    let path = fault_elf();
    let info = ElfInfo::load(&path).unwrap();
    let main_c = common::repo().join("images/cortex-m/fault/main.c");
    for (needle, function) in [
        ("udf #0", "fault_undef"),
        ("return *(volatile uint32_t *)UNMAPPED_ADDR", "fault_bus"),
        ("rt_puts(\"usage", "main"),
    ] {
        let line = line_of(&main_c, needle);
        for file in ["main.c", "fault/main.c", main_c.to_str().unwrap()] {
            let addr = info.line_address(file, line).unwrap();
            let loc = info.symbolize(addr).unwrap();
            assert_eq!(loc.function.as_deref(), Some(function), "{file}:{line}");
            assert_eq!(loc.line, Some(line), "{file}:{line} -> {addr:#x} -> {loc}");
        }
    }
    // A line without code (the comment above fault_undef) moves to the next one with code.
    let comment = line_of(&main_c, "Executes a permanently undefined");
    let addr = info.line_address("main.c", comment).unwrap();
    assert_eq!(
        info.symbolize(addr).unwrap().function.as_deref(),
        Some("fault_undef")
    );

    let hello = ElfInfo::load(&hello_elf()).unwrap();
    let hello_c = common::repo().join("images/cortex-m/hello/main.c");
    let line = line_of(&hello_c, "READY boot_us");
    let addr = hello.line_address("hello/main.c", line).unwrap();
    let loc = hello.symbolize(addr).unwrap();
    assert_eq!(
        (loc.function.as_deref(), loc.line),
        (Some("main"), Some(line))
    );

    // At -O2 gcc puts lines 9 to 12 of hello (the signature, the (void)
    // casts and the first printf) all at main's first instruction, as
    // is_stmt rows of increasing "view", followed by a non-statement row
    // for line 9. The first printf's line therefore maps to main's start,
    // which symbolizes (here and in binutils' addr2line) as line 9.
    let first = line_of(&hello_c, "hello from %s");
    let addr = hello.line_address("main.c", first).unwrap();
    assert_eq!(addr, hello.symbol("main").unwrap().address);
    assert_eq!(hello.symbolize(addr).unwrap().line, Some(first - 3));
}

#[test]
fn line_address_errors_name_the_files() {
    let info = ElfInfo::load(&fault_elf()).unwrap();
    let err = info.line_address("mian.c", 10).unwrap_err();
    assert!(matches!(err, ElfError::UnknownFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("no source file `mian.c`") && msg.contains("fault/main.c"),
        "{msg}"
    );
    // Another directory with the right file name is not a match either.
    let err = info.line_address("hello/main.c", 10).unwrap_err();
    assert!(err.to_string().contains("fault/main.c"), "{err}");

    let err = info.line_address("main.c", 100_000).unwrap_err();
    assert!(
        matches!(err, ElfError::NoCodeAtLine { line: 100_000, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("pick a line inside a function"),
        "{err}"
    );
}

#[test]
fn functions_removed_by_gc_sections_do_not_map_to_address_zero() {
    // uart.c's rt_getc is not used by hello; --gc-sections drops it but its
    // line table stays, relocated to 0.
    let info = ElfInfo::load(&hello_elf()).unwrap();
    assert!(info.symbol("rt_getc").is_none());
    let uart_c = common::repo().join("images/cortex-m/runtime/uart.c");
    let line = line_of(&uart_c, "int rt_getc(void)");
    if let Ok(addr) = info.line_address("uart.c", line) {
        assert_ne!(addr, 0);
        assert!(info.symbolize(addr).unwrap().function.is_some());
    }
}

#[test]
fn every_fixture_global_has_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = globals_elf(dir.path());
    let info = ElfInfo::load(&path).unwrap();
    let int = |size, signed| ValueType::Int { size, signed };
    let cases = [
        ("lab_u8", int(1, false), 200.0),
        ("lab_i16", int(2, true), -1234.0),
        ("lab_u32", int(4, false), 3_735_928_559.0),
        ("lab_i32", int(4, true), -100_000.0),
        ("lab_i64", int(8, true), -5_000_000_000.0),
        ("lab_u64", int(8, false), 0.0),
        ("lab_f32", ValueType::Float { size: 4 }, 1.5),
        ("lab_f64", ValueType::Float { size: 8 }, -2.25),
        ("lab_bool", ValueType::Bool, 1.0),
        ("lab_char", int(1, false), 120.0),
        ("lab_ptr", ValueType::Pointer { size: 4 }, f64::NAN),
        ("lab_fnptr", ValueType::Pointer { size: 4 }, 0.0),
        (
            "lab_color",
            ValueType::Enum {
                size: 1,
                signed: false,
            },
            2.0,
        ),
        (
            "lab_mode",
            ValueType::Enum {
                size: 1,
                signed: true,
            },
            -1.0,
        ),
        ("lab_volatile", int(4, true), 0.0),
        ("lab_const", int(4, false), 42.0),
        ("lab_typedef", int(2, false), 7.0),
        ("lab_cv_typedef", int(2, false), 0.0),
        ("lab_extern", int(4, false), 3.0),
    ];
    // Initial values straight from the file: .data and .rodata have contents, .bss is 0.
    let data = std::fs::read(&path).unwrap();
    let file = object::File::parse(data.as_slice()).unwrap();
    let read = |addr: u64, size: usize| -> Vec<u8> {
        for section in file.sections() {
            if (section.address()..section.address() + section.size()).contains(&addr) {
                let bytes = section.data().unwrap();
                if bytes.is_empty() {
                    return vec![0; size];
                }
                let at = usize::try_from(addr - section.address()).unwrap();
                return bytes[at..at + size].to_vec();
            }
        }
        panic!("no section holds {addr:#x}");
    };
    for (name, ty, value) in cases {
        let global = info.global(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(global.ty, ty, "{name}");
        let sym = info.symbol(name).unwrap();
        assert_eq!(global.address, sym.address, "{name}");
        assert_eq!(ty.size() as u64, sym.size, "{name}");
        let decoded = ty.decode(&read(global.address, ty.size()), true);
        if name == "lab_ptr" {
            assert_eq!(decoded, info.symbol("lab_u32").unwrap().address as f64);
        } else {
            assert_eq!(decoded, value, "{name}");
        }
    }

    let err = info.global("lab_struct").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`lab_struct` is a struct of 12 bytes; read it with read-memory"
    );
    let err = info.global("lab_array").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`lab_array` is an array of 10 bytes; read it with read-memory"
    );
    let err = info.global("lab_union").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`lab_union` is a union of 4 bytes; read it with read-memory"
    );
    let err = info.global("_start").unwrap_err();
    assert!(err.to_string().contains("a function"), "{err}");
    let err = info.global("lab_u33").unwrap_err();
    assert!(err.to_string().contains("did you mean `lab_u32`?"), "{err}");

    // .data is loaded from flash: its LMA follows .text.
    let sections = info.sections();
    let data = sections.iter().find(|s| s.name == ".data").unwrap();
    let text = sections.iter().find(|s| s.name == ".text").unwrap();
    assert_eq!(data.kind, SectionKind::Data);
    assert_eq!(data.address, 0x2000_0000);
    assert_eq!(data.load_address, text.address + text.size);
}

#[test]
fn stripped_elf_still_has_symbols_and_sections() {
    let dir = tempfile::tempdir().unwrap();
    let path = globals_elf(dir.path());
    let stripped = dir.path().join("stripped.elf");
    tool(
        "arm-none-eabi-strip",
        &[
            "-g",
            "-o",
            stripped.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
    let info = ElfInfo::load(&stripped).unwrap();
    assert!(!info.has_debug_info());
    assert!(info.symbol("_start").unwrap().thumb);
    assert!(!info.sections().is_empty());
    // Without DWARF a sized data symbol reads as an unsigned integer.
    let global = info.global("lab_i16").unwrap();
    assert_eq!(
        global.ty,
        ValueType::Int {
            size: 2,
            signed: false
        }
    );
    let err = info.global("lab_struct").unwrap_err();
    assert!(err.to_string().contains("build the image with -g"), "{err}");
    let err = info.line_address("globals.c", 40).unwrap_err();
    assert!(err.to_string().contains("build the image with -g"), "{err}");
    let loc = info
        .symbolize(info.symbol("_start").unwrap().address + 2)
        .unwrap();
    assert_eq!(loc.to_string(), "_start+0x2");
}

#[test]
fn values_round_trip_and_range_errors_are_clear() {
    let int = |size, signed| ValueType::Int { size, signed };
    let cases = [
        (int(1, false), vec![0.0, 255.0]),
        (int(1, true), vec![-128.0, 127.0, -1.0]),
        (int(2, true), vec![-32768.0, 32767.0, -1234.0]),
        (int(4, false), vec![0.0, 4_294_967_295.0]),
        (int(4, true), vec![-2_147_483_648.0, 2_147_483_647.0]),
        (int(8, true), vec![-9_223_372_036_854_775_808.0, -5e9, 1e15]),
        (int(8, false), vec![18_446_744_073_709_549_568.0]),
        (
            ValueType::Float { size: 4 },
            vec![1.5, -0.25, 2f64.powi(127), f64::INFINITY],
        ),
        (
            ValueType::Float { size: 8 },
            vec![-2.25, 1e300, f64::MIN_POSITIVE],
        ),
        (ValueType::Bool, vec![0.0, 1.0]),
        (ValueType::Pointer { size: 4 }, vec![0x2000_0000 as f64]),
        (
            ValueType::Enum {
                size: 1,
                signed: true,
            },
            vec![-1.0, 2.0],
        ),
    ];
    for (ty, values) in cases {
        for value in values {
            for little_endian in [true, false] {
                let bytes = ty.encode(value, little_endian).unwrap();
                assert_eq!(bytes.len(), ty.size(), "{ty} {value}");
                assert_eq!(ty.decode(&bytes, little_endian), value, "{ty} {value}");
            }
        }
    }
    assert_eq!(int(2, true).encode(-2.0, true).unwrap(), [0xfe, 0xff]);
    assert_eq!(
        int(4, false).encode(0x0102_0304 as f64, false).unwrap(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        ValueType::Float { size: 4 }.encode(1.0, true).unwrap(),
        1.0f32.to_le_bytes()
    );

    let err = int(1, false).encode(256.0, true).unwrap_err();
    assert_eq!(err.to_string(), "256 does not fit in u8 (range 0 to 255)");
    let err = int(1, false).encode(-1.0, true).unwrap_err();
    assert_eq!(err.to_string(), "-1 does not fit in u8 (range 0 to 255)");
    let err = int(2, true).encode(32768.0, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "32768 does not fit in i16 (range -32768 to 32767)"
    );
    let err = int(8, true)
        .encode(9_223_372_036_854_775_808.0, true)
        .unwrap_err();
    assert!(matches!(err, ElfError::OutOfRange { .. }), "{err}");
    let err = int(8, false)
        .encode(18_446_744_073_709_551_616.0, true)
        .unwrap_err();
    assert!(matches!(err, ElfError::OutOfRange { .. }), "{err}");
    let err = int(4, true).encode(1.5, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1.5 is not a whole number, and i32 holds whole numbers only"
    );
    assert!(int(4, true).encode(f64::NAN, true).is_err());
    let err = ValueType::Bool.encode(2.0, true).unwrap_err();
    assert_eq!(err.to_string(), "2 does not fit in bool (range 0 to 1)");
    let err = ValueType::Float { size: 4 }.encode(1e39, true).unwrap_err();
    assert!(err.to_string().contains("does not fit in f32"), "{err}");
    let err = ValueType::Enum {
        size: 1,
        signed: false,
    }
    .encode(300.0, true)
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "300 does not fit in enum (u8) (range 0 to 255)"
    );
    // Short input reads the missing bytes as 0 instead of panicking.
    assert_eq!(int(4, false).decode(&[1], true), 1.0);
    // Sizes no target uses are refused, not a panic.
    for ty in [int(0, true), int(16, false), ValueType::Float { size: 2 }] {
        assert!(
            matches!(ty.encode(1.0, true), Err(ElfError::InvalidType { .. })),
            "{ty}"
        );
        let _ = ty.decode(&[0xff; 16], false);
    }
}

#[test]
fn sections_match_arm_none_eabi_size() {
    let path = hello_elf();
    let info = ElfInfo::load(&path).unwrap();
    let sections = info.sections();
    let find = |name: &str| sections.iter().find(|s| s.name == name).unwrap();
    let text = find(".text");
    assert_eq!((text.kind, text.alloc), (SectionKind::Text, true));
    assert!(text.size > 0);
    assert_eq!(text.load_address, text.address);
    let bss = find(".bss");
    assert_eq!((bss.kind, bss.alloc), (SectionKind::Bss, true));
    assert_eq!(find(".ARM.exidx").kind, SectionKind::ReadOnlyData);
    assert_eq!(find(".debug_info").kind, SectionKind::Other);
    assert!(!find(".debug_info").alloc);
    // hello has no initialized data, so .data is empty; its LMA is still
    // where the linker script puts the load image (after .ARM.exidx).
    let data = find(".data");
    assert_eq!(data.kind, SectionKind::Data);
    assert_ne!(data.load_address, data.address);
    assert_eq!(
        Some(data.load_address),
        info.symbol("__data_load__").map(|s| s.address)
    );

    let out = tool("arm-none-eabi-size", &["-A", path.to_str().unwrap()]);
    let mut checked = 0;
    for line in out.lines().skip(2) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, size, addr] = fields[..] else {
            continue;
        };
        if name == "Total" {
            continue;
        }
        let section = find(name);
        assert_eq!(section.size, size.parse::<u64>().unwrap(), "{name}");
        assert_eq!(section.address, addr.parse::<u64>().unwrap(), "{name}");
        checked += 1;
    }
    assert!(checked >= 5, "{out}");
}

#[test]
fn unknown_symbols_suggest_a_close_match() {
    let info = ElfInfo::load(&fault_elf()).unwrap();
    assert!(info.symbol("fault_undf").is_none());
    let err = info.require_symbol("fault_undf").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no symbol `fault_undf` in fault.elf; did you mean `fault_undef`?"
    );
    let err = info.require_symbol("completely_different").unwrap_err();
    assert!(!err.to_string().contains("did you mean"), "{err}");
}

#[test]
fn non_elf_and_truncated_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("firmware.bin");
    std::fs::write(&text, b"this is not an ELF file at all").unwrap();
    let err = ElfInfo::load(&text).err().unwrap();
    assert!(matches!(err, ElfError::NotElf { .. }), "{err}");
    assert!(err.to_string().contains("is not an ELF file"), "{err}");

    let err = ElfInfo::load(&dir.path().join("missing.elf"))
        .err()
        .unwrap();
    assert!(matches!(err, ElfError::Io { .. }), "{err}");

    // Cut anywhere, the file must give an error or partial data, never a panic.
    let whole = std::fs::read(fault_elf()).unwrap();
    let cut = dir.path().join("cut.elf");
    for len in [4, 52, 200, 4096, whole.len() / 2, whole.len() - 100] {
        std::fs::write(&cut, &whole[..len]).unwrap();
        let _ = ElfInfo::load(&cut);
    }
    std::fs::write(&cut, &whole[..60]).unwrap();
    let err = ElfInfo::load(&cut).err().unwrap();
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[test]
fn elf_info_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ElfInfo>();
}
