//! The step kinds, one file each, and the registry that drives the loader,
//! `lab check`, the runner and the rhai bindings from one list.
//!
//! A step kind is a type implementing [`StepKind`]: its key and example,
//! its raw form as written (serde), its validation with source positions,
//! its execution against the run's [`RunContext`] with the metrics and
//! detail it produces, and the rhai functions that call the same operation
//! from a script. The [`steps!`] list below generates the [`Step`] enum, the
//! key list, the dispatch from a YAML key to its raw form, the conversion
//! to the model, the runner's dispatch, and the registration of every
//! kind's rhai functions. A new step is one new file and one line in it.
//!
//! Below the step kinds sit what they share: [`context`] (the run's target,
//! board, debugger, metrics and deadline), [`failure`] (why a step did not
//! pass), the [`debugger`] and the [`guest_clock`]. They import no step kind.

#[macro_use]
mod registry;

mod context;
mod debugger;
mod failure;
mod guest_clock;
mod monitor;

use std::future::Future;

use rhai::Engine;
use serde::de::DeserializeOwned;

pub use context::Detail;
pub(crate) use context::{Launched, Launcher, RunContext};
pub use expect_crash::CrashKind;
pub use expect_fault::FaultKind;
pub(crate) use failure::StepFailure;
pub use gc_trace::GcFormat;
pub use power_cut::{CutPoint, PowerMode};
pub(crate) use script::script_error;
pub use script::{check_script, script_checker};
pub use serial_load::DEFAULT_DRAIN;
pub use sleep::SleepClock;

pub use trend::Direction;

use crate::loader::{ScenarioError, StepSyntax, Validator};
use crate::script::{Bridge, Res};

/// One kind of step: everything about it, in its own file.
pub(crate) trait StepKind: Sized {
    /// The step's key as written in YAML, and an example of its value.
    const SYNTAX: StepSyntax;

    /// Whether the step needs a booted target (`footprint` reads the ELF
    /// only; a script may boot the target itself).
    const NEEDS_TARGET: bool = true;

    /// What only QEMU offers the step, when it needs that; such a step is
    /// refused on hardware before anything runs.
    const EMULATION_ONLY: Option<&'static str> = None;

    /// The step's value as written, before validation.
    type Raw: DeserializeOwned + std::fmt::Debug;

    /// Validates the raw value into the step, with the position of each
    /// value it rejects.
    fn load(raw: Self::Raw, v: &Validator<'_>) -> Result<Self, ScenarioError>;

    /// Checks the step against the scenario's matrix variant names before
    /// anything runs; a problem is a message and a hint.
    fn check_variants(&self, _variants: &[&str]) -> Result<(), (String, &'static str)> {
        Ok(())
    }

    /// Runs the step against the run's context; returns what it observed.
    fn run(
        &self,
        ctx: &mut RunContext,
    ) -> impl Future<Output = Result<Option<Detail>, StepFailure>> + Send;

    /// Registers the rhai functions that run the step's operation from a
    /// script.
    fn bind(_engine: &mut Engine, _bridge: &Bridge<RunContext>) {}
}

steps! {
    /// `boot:` start the target.
    Boot(boot::Boot),
    /// `wait-serial:` wait for a regex on the serial console.
    WaitSerial(wait_serial::WaitSerial),
    /// `send-serial:` write bytes to the serial console.
    SendSerial(send_serial::SendSerial),
    /// `expect-exit:` wait for the target to exit, optionally with a code.
    ExpectExit(expect_exit::ExpectExit),
    /// `attach-debugger:` connect the lab's debugger to the target (halts it).
    AttachDebugger(attach_debugger::AttachDebugger),
    /// `break:` set a breakpoint.
    Break(breakpoint::Break),
    /// `continue:` resume until a breakpoint, a watchpoint or the guest's exit.
    Continue(resume::Continue),
    /// `step:` execute single instructions.
    Step(single_step::StepInstructions),
    /// `reverse-continue:` run a replayed recording backwards to the last
    /// breakpoint or watchpoint hit.
    ReverseContinue(reverse_continue::ReverseContinue),
    /// `reverse-step:` execute single instructions backwards in a replay.
    ReverseStep(reverse_step::ReverseStep),
    /// `read-register:` read a register by name.
    ReadRegister(read_register::ReadRegister),
    /// `read-memory:` read bytes from the target.
    ReadMemory(read_memory::ReadMemory),
    /// `read-symbol:` read a global variable by name, typed by its debug info.
    ReadSymbol(read_symbol::ReadSymbol),
    /// `write-memory:` write bytes to the target.
    WriteMemory(write_memory::WriteMemory),
    /// `write-symbol:` write a global variable by name.
    WriteSymbol(write_symbol::WriteSymbol),
    /// `detach:` disconnect the debugger; the target runs on.
    Detach(detach::Detach),
    /// `expect-fault:` wait for a CPU fault and check its kind, cause and place.
    ExpectFault(expect_fault::ExpectFault),
    /// `expect-reset:` wait for resets the guest asks for itself.
    ExpectReset(expect_reset::ExpectReset),
    /// `footprint:` record the image's flash and static RAM use from its ELF.
    Footprint(footprint::Footprint),
    /// `memory-layout:` place the ELF's sections, heap and stack on the
    /// board's memory map, beside QEMU's `info mtree`.
    MemoryLayout(memory_layout::MemoryLayout),
    /// `trend:` sample a series from the serial console and fit its slope.
    Trend(trend::Trend),
    /// `script:` run a rhai script against the target.
    Script(script::Script),
    /// `gc-trace:` read a runtime's GC trace from the console until a line matches.
    GcTrace(gc_trace::GcTrace),
    /// `expect-crash:` wait for a supervised service to exit, classify the
    /// crash and time the restart.
    ExpectCrash(expect_crash::ExpectCrash),
    /// `serial-load:` send numbered messages at a set rate and time the replies.
    SerialLoad(serial_load::SerialLoad),
    /// `sleep:` let wall time or guest time pass.
    Sleep(sleep::Sleep),
    /// `snapshot-save:` save the running machine under a name.
    SnapshotSave(snapshot_save::SnapshotSave),
    /// `snapshot-restore:` go back to a snapshot saved in this run.
    SnapshotRestore(snapshot_restore::SnapshotRestore),
    /// `power-cut:` take the power away, abruptly or after a warning.
    PowerCut(power_cut::PowerCut),
    /// `power-on:` boot again after a cut, with the storage the cut left.
    PowerOn(power_on::PowerOn),
}

/// Registers the lab's functions for scripts: every step kind's, and the
/// ones with no step of their own (QMP, the monitor, run control, metrics).
pub(crate) fn bindings(engine: &mut Engine, bridge: &Bridge<RunContext>) {
    bind_step_kinds(engine, bridge);
    monitor::bind(engine, bridge);
}

/// A duration in milliseconds, to the microsecond, as reports give them.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs `step` for the script function `function` exactly as the YAML step
/// runs, its metrics included; the script gets no value back.
fn run_for_script<S: StepKind + Send + 'static>(
    bridge: &Bridge<RunContext>,
    function: &'static str,
    step: S,
) -> Res<()> {
    bridge.call(function, move |ctx| {
        ctx.host_call(async |ctx: &mut RunContext| step.run(ctx).await.map(drop))
    })
}
