//! ELF and DWARF of a firmware image: symbols, sections, source lines and
//! typed globals, so that scenario steps and reports can speak in functions,
//! `file:line` and variable names instead of raw addresses.
//!
//! [`ElfInfo::load`] reads the file once; every query afterwards is cheap.
//! DWARF is optional: a stripped ELF still answers symbol and section
//! queries, and the DWARF-only queries say to build with `-g`.
//! Only linked images are meant (executables, not relocatable `.o` files:
//! their DWARF addresses are not relocated).

mod lines;
mod sections;
mod symbols;
mod types;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use object::read::elf::{ElfFile, FileHeader};
use object::{Endianness, Object, ObjectSection};

pub use lines::CodeLocation;
pub use sections::{Section, SectionKind};
pub use symbols::{Symbol, SymbolKind};
pub use types::ValueType;

use lines::LineTable;
use symbols::SymbolTable;
use types::{DwarfGlobal, GlobalType};

/// The reader the DWARF is parsed with: shared bytes, so [`ElfInfo`] is `Send + Sync`.
type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// Errors of ELF/DWARF queries. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file asked for.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not an ELF file at all.
    #[error(
        "{path} is not an ELF file ({reason}); pass the firmware's .elf, not a .bin or .hex image"
    )]
    NotElf {
        /// The file asked for.
        path: String,
        /// What the parser saw.
        reason: String,
    },
    /// The file looks like ELF but its headers or DWARF cannot be parsed.
    #[error("{path} is a malformed ELF file: {reason}; rebuild the image")]
    Malformed {
        /// The file asked for.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No symbol (or global) of that name.
    #[error("no symbol `{name}` in {elf}; {hint}")]
    UnknownSymbol {
        /// The name asked for.
        name: String,
        /// The ELF file name.
        elf: String,
        /// A close match (`did you mean ...`) or what to check.
        hint: String,
    },
    /// The query needs DWARF and the ELF has none.
    #[error("{elf} has no DWARF debug info, so {what} is not available; build the image with -g")]
    NoDebugInfo {
        /// The ELF file name.
        elf: String,
        /// What was asked for (`source lines`, `the type of `x``).
        what: String,
    },
    /// No source file of the line tables matches the given name.
    #[error("no source file `{file}` in the line tables of {elf}; known files: {}", .known.join(", "))]
    UnknownFile {
        /// The file asked for.
        file: String,
        /// The ELF file name.
        elf: String,
        /// The files of the line tables whose name is closest (or all of them, when few).
        known: Vec<String>,
    },
    /// Several source files match the given name.
    #[error("`{file}` matches several source files: {}; add leading directories to pick one", .candidates.join(", "))]
    AmbiguousFile {
        /// The file asked for.
        file: String,
        /// The matching files.
        candidates: Vec<String>,
    },
    /// The line (and every line after it) has no code in that file.
    #[error("no code at or after line {line} of {file}; pick a line inside a function")]
    NoCodeAtLine {
        /// The matched source file.
        file: String,
        /// The line asked for.
        line: u32,
    },
    /// The global is a struct, union or array, which has no single value.
    #[error("`{name}` is {kind} of {size} bytes; read it with read-memory")]
    Aggregate {
        /// The global's name.
        name: String,
        /// `a struct`, `a union`, `an array`, ...
        kind: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The global's type cannot be read as one number.
    #[error("`{name}` has an unsupported type ({reason}); read it with read-memory")]
    UnsupportedType {
        /// The global's name.
        name: String,
        /// What the type is.
        reason: String,
    },
    /// The global has no fixed address (optimized out or kept in a register).
    #[error(
        "`{name}` has no fixed address in the debug info (optimized out?); make it non-static or volatile, or use its symbol"
    )]
    NoAddress {
        /// The global's name.
        name: String,
    },
    /// A [`ValueType`] built with a size no target uses.
    #[error("cannot encode {ty}: integers take 1 to 8 bytes and floats 4 or 8")]
    InvalidType {
        /// The type asked for.
        ty: ValueType,
    },
    /// A value does not fit the type it is written as.
    #[error("{value} does not fit in {ty} (range {min} to {max})")]
    OutOfRange {
        /// The value given.
        value: f64,
        /// The type written to.
        ty: ValueType,
        /// The smallest value the type holds.
        min: String,
        /// The largest value the type holds.
        max: String,
    },
    /// A fractional value for an integer type.
    #[error("{value} is not a whole number, and {ty} holds whole numbers only")]
    NotIntegral {
        /// The value given.
        value: f64,
        /// The type written to.
        ty: ValueType,
    },
}

/// Everything the lab needs from a firmware ELF, loaded once.
pub struct ElfInfo {
    /// File name for messages (`hello.elf`).
    name: String,
    entry: u64,
    little_endian: bool,
    is_64: bool,
    symbols: SymbolTable,
    sections: Vec<Section>,
    debug: Option<Debug>,
}

/// The DWARF-derived part of [`ElfInfo`].
struct Debug {
    lines: LineTable,
    globals: HashMap<String, DwarfGlobal>,
    /// addr2line caches lazily through `OnceCell`, which is not `Sync`.
    context: std::sync::Mutex<addr2line::Context<Reader>>,
}

/// A global variable: where it lives and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// The variable's name.
    pub name: String,
    /// Its address.
    pub address: u64,
    /// How its bytes decode.
    pub ty: ValueType,
}

impl ElfInfo {
    /// Reads and indexes the ELF at `path` (symbols, sections, and DWARF when present).
    pub fn load(path: &Path) -> Result<Self, ElfError> {
        let shown = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| ElfError::Io {
            path: shown.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone());
        let not_elf = |reason: String| ElfError::NotElf {
            path: shown.clone(),
            reason,
        };
        match object::FileKind::parse(data.as_slice()) {
            Ok(object::FileKind::Elf32) => {
                let file = ElfFile::<object::elf::FileHeader32<Endianness>>::parse(data.as_slice())
                    .map_err(|e| malformed(&shown, e))?;
                Self::from_file(&file, name, &shown)
            }
            Ok(object::FileKind::Elf64) => {
                let file = ElfFile::<object::elf::FileHeader64<Endianness>>::parse(data.as_slice())
                    .map_err(|e| malformed(&shown, e))?;
                Self::from_file(&file, name, &shown)
            }
            Ok(other) => Err(not_elf(format!("it is {other:?}"))),
            Err(e) => Err(not_elf(e.to_string())),
        }
    }

    fn from_file<Elf: FileHeader<Endian = Endianness>>(
        file: &ElfFile<'_, Elf>,
        name: String,
        shown: &str,
    ) -> Result<Self, ElfError> {
        let is_arm = file.elf_header().e_machine(file.endian()) == object::elf::EM_ARM;
        let symbols = SymbolTable::read(file, is_arm).map_err(|e| malformed(shown, e))?;
        let sections = sections::read(file).map_err(|e| malformed(shown, e))?;
        let little_endian = file.is_little_endian();
        let debug = if file
            .section_by_name(".debug_info")
            .is_some_and(|s| s.size() > 0)
        {
            let code: Vec<(u64, u64)> = sections
                .iter()
                .filter(|s| s.kind == SectionKind::Text)
                .map(|s| (s.address, s.size))
                .collect();
            let code_at_zero = symbols
                .all()
                .iter()
                .any(|s| s.kind == SymbolKind::Function && s.address == 0);
            Some(
                Debug::read(file, little_endian, &code, code_at_zero).map_err(|reason| {
                    ElfError::Malformed {
                        path: shown.to_owned(),
                        reason,
                    }
                })?,
            )
        } else {
            None
        };
        Ok(ElfInfo {
            name,
            entry: file.entry(),
            little_endian,
            is_64: file.is_64(),
            symbols,
            sections,
            debug,
        })
    }

    /// The entry point as the ELF header gives it (with the Thumb bit on ARM).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// Whether the target is little-endian (the byte order to decode values with).
    pub fn little_endian(&self) -> bool {
        self.little_endian
    }

    /// Whether the ELF is 64-bit (ELFCLASS64).
    pub fn is_64(&self) -> bool {
        self.is_64
    }

    /// Whether the ELF has DWARF debug info.
    pub fn has_debug_info(&self) -> bool {
        self.debug.is_some()
    }

    /// The ELF's file name, as used in messages.
    pub fn file_name(&self) -> &str {
        &self.name
    }

    /// The symbol called `name` (a global one when several share the name).
    /// Function addresses come without the Thumb bit; see [`Symbol::thumb`].
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols.by_name(name).cloned()
    }

    /// Like [`ElfInfo::symbol`], with a did-you-mean error when there is none.
    pub fn require_symbol(&self, name: &str) -> Result<Symbol, ElfError> {
        self.symbol(name).ok_or_else(|| self.unknown_symbol(name))
    }

    /// Every symbol with a name (no section, file or mapping symbols), in table order.
    pub fn symbols(&self) -> &[Symbol] {
        self.symbols.all()
    }

    /// The section headers, in file order.
    pub fn sections(&self) -> Vec<Section> {
        self.sections.clone()
    }

    /// The global variable `name`: its address and value type.
    ///
    /// With DWARF the type follows typedefs and qualifiers down to a base
    /// type; structs, unions and arrays are an [`ElfError::Aggregate`].
    /// Without DWARF (or for a data symbol that DWARF does not describe) an
    /// object symbol of 1, 2, 4 or 8 bytes reads as an unsigned integer.
    pub fn global(&self, name: &str) -> Result<Global, ElfError> {
        if let Some(debug) = &self.debug
            && let Some(g) = debug.globals.get(name)
        {
            let address = g
                .address
                .ok_or_else(|| ElfError::NoAddress { name: name.into() })?;
            let ty = match &g.ty {
                GlobalType::Value(ty) => *ty,
                GlobalType::Aggregate { kind, size } => {
                    return Err(ElfError::Aggregate {
                        name: name.into(),
                        kind: kind.clone(),
                        size: *size,
                    });
                }
                GlobalType::Unsupported(reason) => {
                    return Err(ElfError::UnsupportedType {
                        name: name.into(),
                        reason: reason.clone(),
                    });
                }
            };
            return Ok(Global {
                name: name.into(),
                address,
                ty,
            });
        }
        let sym = self.require_symbol(name)?;
        if sym.kind == SymbolKind::Function {
            return Err(ElfError::UnsupportedType {
                name: name.into(),
                reason: "it is a function, not a variable".into(),
            });
        }
        let ty = match sym.size {
            1 | 2 | 4 | 8 => ValueType::Int {
                size: sym.size as u8,
                signed: false,
            },
            size if self.debug.is_none() => {
                return Err(ElfError::NoDebugInfo {
                    elf: self.name.clone(),
                    what: format!("the type of `{name}` ({size} bytes in the symbol table)"),
                });
            }
            size => {
                return Err(ElfError::UnsupportedType {
                    name: name.into(),
                    reason: format!("not described by DWARF, {size} bytes in the symbol table"),
                });
            }
        };
        Ok(Global {
            name: name.into(),
            address: sym.address,
            ty,
        })
    }

    /// The function (+offset) and source line of `addr`.
    ///
    /// `function` and `offset` come from the symbol table: the outermost
    /// (real, non-inlined) function containing `addr`. `file` and `line`
    /// are the innermost DWARF location, i.e. inside an inlined callee if
    /// `addr` is in inlined code; [`CodeLocation::inlined`] then names the
    /// inlined functions, innermost first. On ARM the Thumb bit of `addr`
    /// is ignored inside Thumb functions. `None` when neither the symbol
    /// table nor DWARF know the address.
    pub fn symbolize(&self, addr: u64) -> Option<CodeLocation> {
        let sym = self.symbols.containing(addr);
        let addr = match sym {
            Some(s) if s.thumb => addr & !1,
            _ => addr,
        };
        let mut loc = CodeLocation {
            function: sym.map(|s| s.name.clone()),
            offset: sym.map_or(0, |s| addr - s.address),
            file: None,
            line: None,
            inlined: Vec::new(),
        };
        // Data (the vector table, constants) has no source line.
        if let Some(debug) = &self.debug
            && sym.is_none_or(|s| s.kind == SymbolKind::Function)
        {
            lines::fill_from_dwarf(&debug.context, addr, &mut loc);
        }
        (loc.function.is_some() || loc.line.is_some()).then_some(loc)
    }

    /// The first `is_stmt` address of `line` in `file`, or of the next line
    /// with code. `file` matches by trailing path components: `main.c`
    /// matches `.../hello/main.c`, `hello/main.c` picks it among several.
    pub fn line_address(&self, file: &str, line: u32) -> Result<u64, ElfError> {
        let debug = self.debug.as_ref().ok_or_else(|| ElfError::NoDebugInfo {
            elf: self.name.clone(),
            what: "source lines".into(),
        })?;
        debug.lines.address(file, line, &self.name)
    }

    fn unknown_symbol(&self, name: &str) -> ElfError {
        let extra = self
            .debug
            .iter()
            .flat_map(|d| d.globals.keys().map(String::as_str));
        let hint = match self.symbols.closest(name, extra) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "check the spelling, and that the image defines it".into(),
        };
        ElfError::UnknownSymbol {
            name: name.into(),
            elf: self.name.clone(),
            hint,
        }
    }
}

impl Debug {
    fn read<Elf: FileHeader<Endian = Endianness>>(
        file: &ElfFile<'_, Elf>,
        little_endian: bool,
        code: &[(u64, u64)],
        code_at_zero: bool,
    ) -> Result<Self, String> {
        let endian = if little_endian {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let load = |id: gimli::SectionId| -> Result<Reader, String> {
            let bytes: Arc<[u8]> = match file.section_by_name(id.name()) {
                Some(section) => section
                    .uncompressed_data()
                    .map_err(|e| format!("section {}: {e}", id.name()))?
                    .as_ref()
                    .into(),
                None => Arc::from(&[][..]),
            };
            Ok(gimli::EndianArcSlice::new(bytes, endian))
        };
        let dwarf = gimli::Dwarf::load(load)?;
        let lines = LineTable::read(&dwarf, code, code_at_zero)
            .map_err(|e| format!("DWARF line tables: {e}"))?;
        let globals = types::read_globals(&dwarf).map_err(|e| format!("DWARF variables: {e}"))?;
        let context =
            addr2line::Context::from_dwarf(dwarf).map_err(|e| format!("DWARF units: {e}"))?;
        Ok(Debug {
            lines,
            globals,
            context: std::sync::Mutex::new(context),
        })
    }
}

fn malformed(path: &str, e: object::Error) -> ElfError {
    ElfError::Malformed {
        path: path.into(),
        reason: e.to_string(),
    }
}
