//! `footprint:` flash and static RAM use, computed from the image's ELF.

use serde_json::json;

use super::debugger::load_elf;
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::elf::{ElfInfo, SectionKind};
use crate::loader::raw::RawNoOptions;
use crate::loader::{ScenarioError, StepSyntax, Validator};

/// `footprint:`, which takes no options.
#[derive(Debug, Clone, Default)]
pub struct Footprint;

impl StepKind for Footprint {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "footprint",
        example: "{}",
    };
    const NEEDS_TARGET: bool = false;
    type Raw = RawNoOptions;

    fn load(_: RawNoOptions, _: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(Footprint)
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let elf = load_elf(ctx.elf.as_deref(), Self::SYNTAX.key)?;
        let sizes = Sizes::of(&elf);
        ctx.metrics.extend(sizes.metrics());
        Ok(Some(sizes.detail(&elf)))
    }
}

/// Bytes per kind of allocated section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sizes {
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
}

impl Sizes {
    /// Sums the allocated sections of `elf` by kind.
    fn of(elf: &ElfInfo) -> Self {
        let mut f = Sizes::default();
        for section in elf.sections().iter().filter(|s| s.alloc) {
            match section.kind {
                SectionKind::Text => f.text += section.size,
                SectionKind::ReadOnlyData => f.rodata += section.size,
                SectionKind::Data => f.data += section.size,
                SectionKind::Bss => f.bss += section.size,
                SectionKind::Other => {}
            }
        }
        f
    }

    /// The metrics: each kind, flash (text + rodata + data, which is
    /// copied from flash at reset) and static RAM (data + bss).
    fn metrics(&self) -> [(String, f64); 6] {
        [
            ("text", self.text),
            ("rodata", self.rodata),
            ("data", self.data),
            ("bss", self.bss),
            ("flash", self.text + self.rodata + self.data),
            ("static_ram", self.data + self.bss),
        ]
        .map(|(name, bytes)| (name.to_owned(), bytes as f64))
    }

    /// Every allocated section, for the step's detail.
    fn detail(&self, elf: &ElfInfo) -> Detail {
        let sections: Vec<_> = elf
            .sections()
            .into_iter()
            .filter(|s| s.alloc)
            .map(|s| {
                json!({
                    "name": s.name,
                    "kind": format!("{:?}", s.kind).to_lowercase(),
                    "address": s.address,
                    "load_address": s.load_address,
                    "size": s.size,
                })
            })
            .collect();
        let mut detail = Detail::new();
        detail.insert("sections".into(), json!(sections));
        detail
    }
}
