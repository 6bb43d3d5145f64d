//! `memory-layout:` the ELF's sections, heap and stack placed on the board's
//! memory map, beside QEMU's own view of the machine (`info mtree`).

use serde_json::{Value, json};

use super::debugger::load_elf;
use super::{Detail, RunContext, StepFailure, StepKind};
use crate::board::BoardProfile;
use crate::elf::{ElfInfo, SectionKind};
use crate::loader::raw::RawNoOptions;
use crate::loader::{ScenarioError, StepSyntax, Validator};

/// `memory-layout:`, which takes no options.
#[derive(Debug, Clone, Default)]
pub struct MemoryLayout;

impl StepKind for MemoryLayout {
    const SYNTAX: StepSyntax = StepSyntax {
        key: "memory-layout",
        example: "{}",
    };
    const EMULATION_ONLY: Option<&'static str> = Some("QEMU's `info mtree`");
    type Raw = RawNoOptions;

    fn load(_: RawNoOptions, _: &Validator<'_>) -> Result<Self, ScenarioError> {
        Ok(MemoryLayout)
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<Option<Detail>, StepFailure> {
        let elf = load_elf(ctx.elf.as_deref(), Self::SYNTAX.key)?;
        let mtree = ctx.target.monitor("info mtree -f").await?;
        let (detail, metrics) = layout(&ctx.board, &elf, mtree);
        ctx.metrics.extend(metrics);
        Ok(Some(detail))
    }
}

/// Symbols the lab's Cortex-M linker script defines around heap and stack.
const AREAS: &[(&str, &str, &str)] = &[
    ("heap", "__heap_start__", "__heap_end__"),
    ("stack", "__stack_bottom__", "__stack_top__"),
];

/// The layout as a step detail, and the sizes of heap and stack as metrics.
fn layout(
    board: &BoardProfile,
    elf: &ElfInfo,
    mtree: String,
) -> (Detail, Vec<(String, f64)>) {
    let region_of = |address: u64| {
        board
            .memory
            .iter()
            .find(|r| address >= r.base && address - r.base < r.size)
            .map(|r| r.name.clone())
    };
    let sections: Vec<Value> = elf
        .sections()
        .into_iter()
        .filter(|s| s.alloc && s.size > 0)
        .map(|s| {
            json!({
                "name": s.name,
                "address": s.address,
                "size": s.size,
                "region": region_of(s.address),
                // Initialised data is copied from its load address at reset.
                "load_region": (s.kind == SectionKind::Data && s.load_address != s.address)
                    .then(|| region_of(s.load_address))
                    .flatten(),
            })
        })
        .collect();
    let mut metrics = Vec::new();
    let mut areas = serde_json::Map::new();
    for (name, start, end) in AREAS {
        let (Some(start), Some(end)) = (elf.symbol(start), elf.symbol(end)) else {
            continue;
        };
        let size = end.address.saturating_sub(start.address);
        areas.insert(
            (*name).to_owned(),
            json!({"start": start.address, "end": end.address, "size": size, "region": region_of(start.address)}),
        );
        metrics.push((format!("{name}_size"), size as f64));
    }
    let regions: Vec<Value> = board
        .memory
        .iter()
        .map(|r| json!({"name": r.name, "base": r.base, "size": r.size, "kind": format!("{:?}", r.kind).to_lowercase()}))
        .collect();
    let mut detail = Detail::new();
    detail.insert("regions".into(), json!(regions));
    detail.insert("sections".into(), json!(sections));
    detail.insert("areas".into(), Value::Object(areas));
    detail.insert("mtree".into(), json!(mtree));
    (detail, metrics)
}
