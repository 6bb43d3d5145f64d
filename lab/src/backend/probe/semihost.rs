//! Arm semihosting on a real core: a halted core whose PC is at `BKPT
//! 0xAB` is asking the host for a service (r0 = operation, r1 = parameter).
//! The lab answers the two calls its runtime makes: SYS_GET_CMDLINE (the
//! scenario's `args`) and SYS_EXIT / SYS_EXIT_EXTENDED (the exit code).

use super::{CoreAccess, ProbeError};

/// `BKPT 0xAB` in Thumb, little-endian.
const TRAP: [u8; 2] = [0xAB, 0xBE];
/// SYS_GET_CMDLINE.
const SYS_GET_CMDLINE: u32 = 0x15;
/// SYS_EXIT (on 32-bit, r1 is the reason code itself).
const SYS_EXIT: u32 = 0x18;
/// SYS_EXIT_EXTENDED: r1 points at `{reason, subcode}`.
const SYS_EXIT_EXTENDED: u32 = 0x20;
/// ADP_Stopped_ApplicationExit: the subcode is the exit status.
const APPLICATION_EXIT: u32 = 0x20026;
/// Register selectors of r0, r1 and pc.
const R0: u16 = 0;
const R1: u16 = 1;
const PC: u16 = 15;

/// What a halted core asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// The program exited with this code.
    Exit(i32),
    /// The program asked for its command line; the lab answered and the
    /// core may run on.
    Answered,
    /// A semihosting call the lab does not serve (the operation number);
    /// it was answered with -1.
    Unsupported(u32),
    /// The core is not halted on a semihosting trap.
    NotSemihosting,
}

/// Reads the call a halted core is making. Exits leave the core halted on
/// the trap; other calls are answered, the PC is moved past the trap, and
/// the caller runs the core on. `cmdline` answers SYS_GET_CMDLINE.
pub fn serve<C: CoreAccess + ?Sized>(core: &mut C, cmdline: &str) -> Result<Call, ProbeError> {
    let pc = core.read_reg(PC)?;
    let mut insn = [0u8; 2];
    core.read_memory(u64::from(pc), &mut insn)?;
    if insn != TRAP {
        return Ok(Call::NotSemihosting);
    }
    let op = core.read_reg(R0)?;
    let param = core.read_reg(R1)?;
    let call = match op {
        SYS_EXIT => Call::Exit(if param == APPLICATION_EXIT { 0 } else { 1 }),
        SYS_EXIT_EXTENDED => {
            let block = read_words::<2, C>(core, param)?;
            Call::Exit(if block[0] == APPLICATION_EXIT {
                block[1] as i32
            } else {
                1
            })
        }
        SYS_GET_CMDLINE => {
            let [buf, size] = read_words::<2, C>(core, param)?;
            let mut text = cmdline.as_bytes().to_vec();
            text.push(0);
            let status = if text.len() <= size as usize {
                core.write_memory(u64::from(buf), &text)?;
                let len = (text.len() - 1) as u32;
                core.write_memory(u64::from(param) + 4, &len.to_le_bytes())?;
                0
            } else {
                u32::MAX
            };
            core.write_reg(R0, status)?;
            Call::Answered
        }
        other => {
            core.write_reg(R0, u32::MAX)?;
            Call::Unsupported(other)
        }
    };
    if !matches!(call, Call::Exit(_)) {
        core.write_reg(PC, pc + 2)?;
    }
    Ok(call)
}

fn read_words<const N: usize, C: CoreAccess + ?Sized>(
    core: &mut C,
    addr: u32,
) -> Result<[u32; N], ProbeError> {
    let mut bytes = vec![0u8; N * 4];
    core.read_memory(u64::from(addr), &mut bytes)?;
    let mut words = [0u32; N];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(words)
}

/// The semihosting command line QEMU would pass: the program's name, then
/// the arguments, separated by spaces.
pub fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}
