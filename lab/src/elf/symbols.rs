//! The ELF symbol table: lookup by name and by address, and close matches
//! for did-you-mean messages.

use std::collections::HashMap;

use object::Endianness;
use object::elf;
use object::read::elf::{ElfFile, FileHeader, Sym};

/// What a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    /// Code (`STT_FUNC`).
    Function,
    /// Data (`STT_OBJECT`).
    Object,
    /// Anything else: linker-script symbols, labels (`STT_NOTYPE`), TLS, ...
    Other,
}

/// One named symbol of the ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The symbol's name.
    pub name: String,
    /// Its address; for Thumb functions without the Thumb bit (bit 0).
    pub address: u64,
    /// Its size in bytes (0 when the toolchain did not record one).
    pub size: u64,
    /// What it names.
    pub kind: SymbolKind,
    /// Whether it is an ARM Thumb function (its ELF value had bit 0 set).
    pub thumb: bool,
}

/// The named symbols of an ELF, indexed.
pub(crate) struct SymbolTable {
    all: Vec<Symbol>,
    /// Binding rank per symbol of `all`: 0 global, 1 weak, 2 local.
    rank: Vec<u8>,
    /// Name -> index into `all`, the best-ranked definition of that name.
    by_name: HashMap<String, usize>,
    /// Indices of sized functions and objects, sorted by address.
    by_address: Vec<usize>,
}

impl SymbolTable {
    /// Reads `.symtab` (or `.dynsym` when there is none). On ARM, clears the
    /// Thumb bit of function addresses and skips mapping symbols (`$t`, `$d`, ...).
    pub(crate) fn read<Elf: FileHeader<Endian = Endianness>>(
        file: &ElfFile<'_, Elf>,
        is_arm: bool,
    ) -> Result<Self, object::Error> {
        let endian = file.endian();
        let table = if file.elf_symbol_table().is_empty() {
            file.elf_dynamic_symbol_table()
        } else {
            file.elf_symbol_table()
        };
        let mut all = Vec::new();
        let mut rank = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (_, sym) in table.enumerate() {
            let st_type = sym.st_type();
            if sym.is_undefined(endian) || st_type == elf::STT_SECTION || st_type == elf::STT_FILE {
                continue;
            }
            let name = String::from_utf8_lossy(sym.name(endian, table.strings())?).into_owned();
            if name.is_empty() || name.starts_with('$') {
                continue;
            }
            let kind = match st_type {
                elf::STT_FUNC => SymbolKind::Function,
                elf::STT_OBJECT => SymbolKind::Object,
                _ => SymbolKind::Other,
            };
            let mut address: u64 = sym.st_value(endian).into();
            let thumb = is_arm && kind == SymbolKind::Function && address & 1 == 1;
            if thumb {
                address &= !1;
            }
            let this_rank = match sym.st_bind() {
                elf::STB_GLOBAL => 0,
                elf::STB_WEAK => 1,
                _ => 2,
            };
            let index = all.len();
            all.push(Symbol {
                name: name.clone(),
                address,
                size: sym.st_size(endian).into(),
                kind,
                thumb,
            });
            rank.push(this_rank);
            by_name
                .entry(name)
                .and_modify(|i| {
                    if rank.get(*i).is_some_and(|&r| this_rank < r) {
                        *i = index;
                    }
                })
                .or_insert(index);
        }
        let mut by_address: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].kind != SymbolKind::Other && all[i].size > 0)
            .collect();
        by_address.sort_by_key(|&i| all[i].address);
        Ok(SymbolTable {
            all,
            rank,
            by_name,
            by_address,
        })
    }

    /// Every named symbol, in table order.
    pub(crate) fn all(&self) -> &[Symbol] {
        &self.all
    }

    /// The symbol called `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Symbol> {
        self.by_name.get(name).and_then(|&i| self.all.get(i))
    }

    /// The sized function or object whose range holds `addr` (for a Thumb
    /// function `addr` may carry the Thumb bit). Among several: functions
    /// first, then the closest start, then global over weak over local.
    pub(crate) fn containing(&self, addr: u64) -> Option<&Symbol> {
        let end = self
            .by_address
            .partition_point(|&i| self.all[i].address <= addr);
        self.by_address[..end]
            .iter()
            .filter(|&&i| addr - self.all[i].address < self.all[i].size)
            .min_by_key(|&&i| {
                let s = &self.all[i];
                (
                    s.kind != SymbolKind::Function,
                    addr - s.address,
                    self.rank[i],
                )
            })
            .map(|&i| &self.all[i])
    }

    /// The known name closest to `name` (symbols plus `extra`), if close enough.
    pub(crate) fn closest<'a>(
        &'a self,
        name: &str,
        extra: impl Iterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let limit = (name.chars().count() / 3).max(1);
        self.by_name
            .keys()
            .map(String::as_str)
            .chain(extra)
            .map(|candidate| (edit_distance(name, candidate), candidate))
            .filter(|&(d, _)| d <= limit)
            .min()
            .map(|(_, candidate)| candidate)
    }
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("main", "main"), 0);
        assert_eq!(edit_distance("mian", "main"), 2);
        assert_eq!(edit_distance("fault_undf", "fault_undef"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
