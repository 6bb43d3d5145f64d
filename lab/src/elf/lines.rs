//! Source lines both ways: address -> function and `file:line` (through
//! addr2line), and `file:line` -> address (through the DWARF line tables).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use gimli::Reader as _;

use super::{ElfError, Reader};

/// Where an address is in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLocation {
    /// The outermost (non-inlined) function holding the address, from the symbol table.
    pub function: Option<String>,
    /// Bytes from the start of `function` (0 without a function).
    pub offset: u64,
    /// The source file of the innermost location, as DWARF gives it (usually absolute).
    pub file: Option<String>,
    /// The line in `file`.
    pub line: Option<u32>,
    /// Functions inlined at the address, innermost first; `file:line` is in the first.
    pub inlined: Vec<String>,
}

impl fmt::Display for CodeLocation {
    /// `fault_undef+0x4 (main.c:17)`; `main+0x8 (main.c:30, inlined str_eq)`
    /// with inlining; the file is shown by its last path component.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(name) if self.offset == 0 => write!(f, "{name}")?,
            Some(name) => write!(f, "{name}+{:#x}", self.offset)?,
            None => write!(f, "??")?,
        }
        if let Some(file) = &self.file {
            let short = file.rsplit(['/', '\\']).next().unwrap_or(file);
            write!(f, " ({short}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            if !self.inlined.is_empty() {
                write!(f, ", inlined {}", self.inlined.join(" < "))?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// Fills `file`, `line` and `inlined` of `loc` from DWARF (addr2line frames:
/// innermost first, the last one being the outermost function). Lookup
/// errors leave the fields empty: symbolizing is best effort.
pub(crate) fn fill_from_dwarf(
    context: &Mutex<addr2line::Context<Reader>>,
    addr: u64,
    loc: &mut CodeLocation,
) {
    let Ok(context) = context.lock() else {
        return;
    };
    let Ok(mut frames) = context.find_frames(addr).skip_all_loads() else {
        return;
    };
    let mut names = Vec::new();
    let mut first = true;
    while let Ok(Some(frame)) = frames.next() {
        if first {
            first = false;
            if let Some(location) = &frame.location {
                loc.file = location.file.map(str::to_owned);
                loc.line = location.line;
            }
        }
        let name = frame
            .function
            .as_ref()
            .and_then(|f| f.raw_name().ok())
            .map(|n| n.into_owned());
        names.push(name);
    }
    // The last frame is the outermost, real function; the others were inlined.
    names.pop();
    loc.inlined = names
        .into_iter()
        .map(|n| n.unwrap_or_else(|| "??".into()))
        .collect();
}

/// The `is_stmt` rows of all line tables, for line -> address lookups.
pub(crate) struct LineTable {
    /// Source file paths (comp_dir + directory + name).
    files: Vec<String>,
    /// (file index, line, address), sorted.
    rows: Vec<(usize, u32, u64)>,
}

impl LineTable {
    /// Reads every unit's line program. Sequences that start outside
    /// `code` (the executable ranges) or at address 0 when `code_at_zero`
    /// is false are left out: the linker leaves the line tables of
    /// functions removed by `--gc-sections` in place, relocated to 0.
    pub(crate) fn read(
        dwarf: &gimli::Dwarf<Reader>,
        code: &[(u64, u64)],
        code_at_zero: bool,
    ) -> gimli::Result<Self> {
        let mut files = Vec::new();
        let mut file_ids: HashMap<String, usize> = HashMap::new();
        let mut rows = Vec::new();
        let live = |addr: u64| {
            (addr != 0 || code_at_zero)
                && code
                    .iter()
                    .any(|&(start, size)| addr >= start && addr - start < size)
        };
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            // Per unit: DWARF file index -> index into `files`.
            let mut unit_files: HashMap<u64, usize> = HashMap::new();
            let mut sequence = Vec::new();
            let mut sequence_live = None;
            let mut program_rows = program.rows();
            while let Some((header, row)) = program_rows.next_row()? {
                let live_now = *sequence_live.get_or_insert_with(|| live(row.address()));
                if row.end_sequence() {
                    if live_now {
                        rows.append(&mut sequence);
                    }
                    sequence.clear();
                    sequence_live = None;
                    continue;
                }
                let Some(line) = row.line() else { continue };
                if !row.is_stmt() || !live_now {
                    continue;
                }
                let index = match unit_files.get(&row.file_index()) {
                    Some(&index) => index,
                    None => {
                        let Some(entry) = row.file(header) else {
                            continue;
                        };
                        let path = render_file(dwarf, &unit, entry, header)?;
                        let index = *file_ids.entry(path.clone()).or_insert_with(|| {
                            files.push(path);
                            files.len() - 1
                        });
                        unit_files.insert(row.file_index(), index);
                        index
                    }
                };
                let line = u32::try_from(line.get()).unwrap_or(u32::MAX);
                sequence.push((index, line, row.address()));
            }
        }
        rows.sort_unstable();
        rows.dedup();
        Ok(LineTable { files, rows })
    }

    /// The first `is_stmt` address of `line` (or of the next line with
    /// code) in the one file matching `file` by trailing path components.
    pub(crate) fn address(&self, file: &str, line: u32, elf: &str) -> Result<u64, ElfError> {
        let wanted: Vec<&str> = components(file).collect();
        let matching: Vec<usize> = (0..self.files.len())
            .filter(|&i| {
                let have: Vec<&str> = components(&self.files[i]).collect();
                !wanted.is_empty() && have.ends_with(&wanted)
            })
            .filter(|&i| self.rows.iter().any(|r| r.0 == i))
            .collect();
        let index = match matching.as_slice() {
            [one] => *one,
            [] => {
                return Err(ElfError::UnknownFile {
                    file: file.into(),
                    elf: elf.into(),
                    known: self.known_files(file),
                });
            }
            many => {
                return Err(ElfError::AmbiguousFile {
                    file: file.into(),
                    candidates: many.iter().map(|&i| self.files[i].clone()).collect(),
                });
            }
        };
        // Rows are sorted by (file, line, address): the first row at or after
        // (index, line) is the lowest address of the first line with code.
        let at = self
            .rows
            .partition_point(|&(f, l, _)| (f, l) < (index, line));
        match self.rows.get(at) {
            Some(&(f, _, address)) if f == index => Ok(address),
            _ => Err(ElfError::NoCodeAtLine {
                file: self.files[index].clone(),
                line,
            }),
        }
    }

    /// Known files for an error message: those with the same file name as
    /// `file` when there are any, else all (with code), sorted.
    fn known_files(&self, file: &str) -> Vec<String> {
        let name = components(file).last().unwrap_or(file);
        let with_code = |i: &usize| self.rows.iter().any(|r| r.0 == *i);
        let same_name: Vec<String> = (0..self.files.len())
            .filter(with_code)
            .filter(|&i| components(&self.files[i]).last() == Some(name))
            .map(|i| self.files[i].clone())
            .collect();
        let mut known = if same_name.is_empty() {
            (0..self.files.len())
                .filter(with_code)
                .map(|i| self.files[i].clone())
                .collect()
        } else {
            same_name
        };
        known.sort();
        known
    }
}

/// The non-empty, non-`.` components of a path, either separator.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
}

/// comp_dir + directory + file name, as addr2line renders them.
fn render_file(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    entry: &gimli::FileEntry<Reader>,
    header: &gimli::LineProgramHeader<Reader>,
) -> gimli::Result<String> {
    let mut path = match &unit.comp_dir {
        Some(dir) => dir.to_string_lossy()?.into_owned(),
        None => String::new(),
    };
    // Directory 0 is the compilation directory itself.
    if entry.directory_index() != 0
        && let Some(dir) = entry.directory(header)
    {
        push_path(&mut path, &dwarf.attr_string(unit, dir)?.to_string_lossy()?);
    }
    push_path(
        &mut path,
        &dwarf
            .attr_string(unit, entry.path_name())?
            .to_string_lossy()?,
    );
    Ok(path)
}

/// Appends `part` to `path`, or replaces `path` when `part` is absolute.
fn push_path(path: &mut String, part: &str) {
    if part.starts_with('/') || path.is_empty() {
        *path = part.to_owned();
    } else {
        if !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(part);
    }
}
