//! ELF section headers with their load addresses (LMA) from the program headers.

use object::Endianness;
use object::elf;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader, SectionHeader};

/// What a section holds, from its type and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// Allocated and executable (`.text`).
    Text,
    /// Allocated, neither writable nor executable (`.rodata`, `.ARM.exidx`).
    ReadOnlyData,
    /// Allocated, writable, with contents in the file (`.data`).
    Data,
    /// Allocated, writable, no contents in the file (`.bss`, `SHT_NOBITS`).
    Bss,
    /// Not allocated (debug info, symbol tables, comments, attributes).
    Other,
}

/// One section of the ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section's name (`.text`).
    pub name: String,
    /// Its run-time address (VMA, `sh_addr`).
    pub address: u64,
    /// Where its contents are loaded from (LMA): the VMA translated through the
    /// `PT_LOAD` segment holding it; equal to `address` outside any segment.
    pub load_address: u64,
    /// Its size in bytes.
    pub size: u64,
    /// What it holds.
    pub kind: SectionKind,
    /// Whether it occupies memory at run time (`SHF_ALLOC`).
    pub alloc: bool,
}

/// Reads the section headers (skipping the null section 0), in file order.
pub(crate) fn read<Elf: FileHeader<Endian = Endianness>>(
    file: &ElfFile<'_, Elf>,
) -> Result<Vec<Section>, object::Error> {
    let endian = file.endian();
    let table = file.elf_section_table();
    let segments: Vec<(u64, u64, u64)> = file
        .elf_program_headers()
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .map(|ph| {
            (
                ph.p_vaddr(endian).into(),
                ph.p_memsz(endian).into(),
                ph.p_paddr(endian).into(),
            )
        })
        .collect();
    let mut sections = Vec::new();
    for header in table.iter().skip(1) {
        let name = table.section_name(endian, header)?;
        let flags = header.sh_flags(endian);
        let alloc = flags.contains(elf::SHF_ALLOC);
        let kind = if !alloc {
            SectionKind::Other
        } else if flags.contains(elf::SHF_EXECINSTR) {
            SectionKind::Text
        } else if header.sh_type(endian) == elf::SHT_NOBITS {
            SectionKind::Bss
        } else if flags.contains(elf::SHF_WRITE) {
            SectionKind::Data
        } else {
            SectionKind::ReadOnlyData
        };
        let address: u64 = header.sh_addr(endian).into();
        // A segment holding the address, else one it ends at (empty sections).
        let segment = segments
            .iter()
            .find(|&&(vaddr, memsz, _)| address >= vaddr && address - vaddr < memsz)
            .or_else(|| {
                segments
                    .iter()
                    .find(|&&(vaddr, memsz, _)| address >= vaddr && address - vaddr == memsz)
            });
        let load_address = match segment {
            Some(&(vaddr, _, paddr)) if alloc => paddr.wrapping_add(address - vaddr),
            _ => address,
        };
        sections.push(Section {
            name: String::from_utf8_lossy(name).into_owned(),
            address,
            load_address,
            size: header.sh_size(endian).into(),
            kind,
            alloc,
        });
    }
    Ok(sections)
}
