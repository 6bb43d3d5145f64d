//! Cortex-M fault status: the names of the bits in CFSR and HFSR, the
//! addresses of the fault registers in the System Control Block, and how a
//! debugger finds the HardFault handler and reads a fault caught there.

use crate::gdb::{GdbClient, GdbError, Transport};

/// Vector Table Offset Register: where the firmware's vector table is.
pub const VTOR: u64 = 0xE000_ED08;
/// The HardFault exception's number: its slot in the vector table.
const HARDFAULT_EXCEPTION: u64 = 3;

/// Configurable Fault Status Register (MMFSR | BFSR << 8 | UFSR << 16).
pub const CFSR: u64 = 0xE000_ED28;
/// HardFault Status Register.
pub const HFSR: u64 = 0xE000_ED2C;
/// MemManage Fault Address Register.
pub const MMFAR: u64 = 0xE000_ED34;
/// BusFault Address Register.
pub const BFAR: u64 = 0xE000_ED38;

/// CFSR bits and their names, as the Armv7-M Architecture Reference Manual
/// writes them.
const CFSR_BITS: &[(u32, &str)] = &[
    (0, "IACCVIOL"),
    (1, "DACCVIOL"),
    (3, "MUNSTKERR"),
    (4, "MSTKERR"),
    (5, "MLSPERR"),
    (7, "MMARVALID"),
    (8, "IBUSERR"),
    (9, "PRECISERR"),
    (10, "IMPRECISERR"),
    (11, "UNSTKERR"),
    (12, "STKERR"),
    (13, "LSPERR"),
    (15, "BFARVALID"),
    (16, "UNDEFINSTR"),
    (17, "INVSTATE"),
    (18, "INVPC"),
    (19, "NOCP"),
    (24, "UNALIGNED"),
    (25, "DIVBYZERO"),
];

/// HFSR bits and their names.
const HFSR_BITS: &[(u32, &str)] = &[(1, "VECTTBL"), (30, "FORCED"), (31, "DEBUGEVT")];

/// Every cause name [`FaultStatus::causes`] can report.
pub fn cause_names() -> impl Iterator<Item = &'static str> {
    CFSR_BITS.iter().chain(HFSR_BITS).map(|(_, name)| *name)
}

/// The fault registers read at a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStatus {
    /// CFSR.
    pub cfsr: u32,
    /// HFSR.
    pub hfsr: u32,
    /// BFAR (valid when BFARVALID is set).
    pub bfar: u32,
    /// MMFAR (valid when MMARVALID is set).
    pub mmfar: u32,
}

impl FaultStatus {
    /// The names of the bits set in CFSR, then in HFSR.
    pub fn causes(&self) -> Vec<&'static str> {
        let set = |reg: u32, bits: &[(u32, &'static str)]| {
            bits.iter()
                .filter(move |(bit, _)| reg & (1 << bit) != 0)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
        };
        let mut names = set(self.cfsr, CFSR_BITS);
        names.extend(set(self.hfsr, HFSR_BITS));
        names
    }

    /// The faulting data address, when a valid one was recorded.
    pub fn fault_address(&self) -> Option<u32> {
        if self.cfsr & (1 << 15) != 0 {
            Some(self.bfar)
        } else if self.cfsr & (1 << 7) != 0 {
            Some(self.mmfar)
        } else {
            None
        }
    }
}

/// A HardFault caught on entry to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaughtFault {
    /// The fault registers.
    pub status: FaultStatus,
    /// The faulting instruction: the PC in the stacked exception frame.
    pub pc: u64,
}

/// What reading a caught fault needs of a halted Cortex-M core: registers
/// by name (`lr`, `msp`, `psp`) and 32-bit words of memory. QEMU's gdbstub
/// and a probe's core both give that.
pub trait HaltedCore {
    /// Why an access failed.
    type Error;
    /// A core register by its name in the target description.
    fn register(&mut self, name: &str) -> Result<u64, Self::Error>;
    /// The 32-bit word at `addr`.
    fn word(&mut self, addr: u64) -> Result<u32, Self::Error>;
}

impl<S: Transport> HaltedCore for GdbClient<S> {
    type Error = GdbError;

    fn register(&mut self, name: &str) -> Result<u64, GdbError> {
        self.read_register_by_name(name)
    }

    fn word(&mut self, addr: u64) -> Result<u32, GdbError> {
        self.read_u32(addr)
    }
}

/// The entry of the firmware's HardFault handler, whatever it is named:
/// its vector, read through VTOR, without the Thumb bit.
pub fn hardfault_handler<C: HaltedCore>(core: &mut C) -> Result<u64, C::Error> {
    let table = u64::from(core.word(VTOR)?);
    let vector = core.word(table + 4 * HARDFAULT_EXCEPTION)?;
    Ok(u64::from(vector & !1))
}

/// What a core halted on entry to its HardFault handler caught: the
/// stacked PC and the fault registers.
pub fn read_caught<C: HaltedCore>(core: &mut C) -> Result<CaughtFault, C::Error> {
    // On entry LR holds EXC_RETURN; its bit 2 says which stack the frame
    // (r0-r3, r12, lr, pc, xpsr) went to.
    let exc_return = core.register("lr")?;
    let sp = core.register(if exc_return & 4 != 0 { "psp" } else { "msp" })?;
    let pc = u64::from(core.word(sp + 24)?);
    let status = FaultStatus {
        cfsr: core.word(CFSR)?,
        hfsr: core.word(HFSR)?,
        bfar: core.word(BFAR)?,
        mmfar: core.word(MMFAR)?,
    };
    Ok(CaughtFault { status, pc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undefined_instruction_escalated_to_hardfault() {
        let s = FaultStatus {
            cfsr: 0x0001_0000,
            hfsr: 0x4000_0000,
            ..Default::default()
        };
        assert_eq!(s.causes(), ["UNDEFINSTR", "FORCED"]);
        assert_eq!(s.fault_address(), None);
    }

    #[test]
    fn a_precise_bus_fault_names_its_address() {
        let s = FaultStatus {
            cfsr: 0x0000_8200,
            hfsr: 0x4000_0000,
            bfar: 0xF000_0000,
            mmfar: 0,
        };
        assert_eq!(s.causes(), ["PRECISERR", "BFARVALID", "FORCED"]);
        assert_eq!(s.fault_address(), Some(0xF000_0000));
    }

    #[test]
    fn every_cause_has_a_distinct_name() {
        let mut names: Vec<_> = cause_names().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
