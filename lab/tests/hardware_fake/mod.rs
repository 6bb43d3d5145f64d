//! A fake board behind a fake probe, at the lab's probe seams
//! (`ProbeLister`, `ProbeSession`, `CoreAccess`): no probe is attached where
//! the tests run. It records every call, keeps registers and sparse memory,
//! and plays a tiny program: after reset it asks for its semihosting command
//! line, prints its RTT lines, echoes RTT input back, and exits through
//! SYS_EXIT_EXTENDED once its lines are out and it has echoed `expect_input`;
//! or, with a `fault`, takes a HardFault there, which the core's vector catch
//! halts on when armed, and its handler exits with the exit code.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use lab::backend::probe::{
    CoreAccess, CoreState, FlashEvent, HaltCause, ProbeError, ProbeInfo, ProbeLister, ProbeSession,
};

/// Where the fake program's semihosting trap and parameter blocks are.
pub const TRAP_PC: u32 = 0x0800_0100;
pub const BLOCK: u32 = 0x2000_1000;
pub const CMDLINE_BUF: u32 = 0x2000_1100;
/// The main stack pointer when the fake program faults.
pub const FAULT_MSP: u32 = 0x2000_1F00;

/// A HardFault the fake program takes instead of exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeFault {
    /// The faulting instruction, stacked by the exception entry.
    pub pc: u32,
    /// CFSR at the fault.
    pub cfsr: u32,
    /// HFSR at the fault.
    pub hfsr: u32,
}

/// What the fake program does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Reset,
    AskingCmdline,
    Printing,
    Faulted,
    Exited,
}

/// The board's state, shared by the test and every session opened on it.
#[derive(Debug)]
pub struct Board {
    pub calls: Vec<String>,
    pub regs: [u32; 96],
    pub memory: BTreeMap<u64, u8>,
    pub state: CoreState,
    pub breakpoints: Vec<u64>,
    pub fpu: bool,
    /// Lines the program prints over RTT once it runs.
    pub output: VecDeque<Vec<u8>>,
    /// RTT input the program has not echoed yet.
    pub input: Vec<u8>,
    /// The input that must arrive (and be echoed) before the program exits.
    pub expect_input: Vec<u8>,
    pub received: Vec<u8>,
    /// The exit code the program ends with.
    pub exit_code: u32,
    /// The command line the program read.
    pub cmdline: Option<String>,
    /// A HardFault the program takes where it would exit.
    pub fault: Option<FakeFault>,
    /// Whether the HardFault vector catch is on.
    pub catching: bool,
    phase: Phase,
}

impl Board {
    pub fn new(output: &[&str], exit_code: u32) -> Self {
        Self {
            calls: Vec::new(),
            regs: [0; 96],
            memory: BTreeMap::new(),
            state: CoreState::Running,
            breakpoints: Vec::new(),
            fpu: true,
            output: output.iter().map(|l| l.as_bytes().to_vec()).collect(),
            input: Vec::new(),
            expect_input: Vec::new(),
            received: Vec::new(),
            exit_code,
            cmdline: None,
            fault: None,
            catching: false,
            phase: Phase::Reset,
        }
    }

    /// Where `call` first stands in the calls the lab made; panics, naming
    /// them all, when it was never made.
    pub fn call_index(&self, call: &str) -> usize {
        self.calls
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no `{call}` in {:?}", self.calls))
    }

    fn poke_words(&mut self, addr: u32, words: &[u32]) {
        for (i, w) in words.iter().enumerate() {
            for (j, b) in w.to_le_bytes().iter().enumerate() {
                self.memory.insert(u64::from(addr) + (4 * i + j) as u64, *b);
            }
        }
    }

    /// Halts the program on a semihosting trap with `op` and `block`.
    fn trap(&mut self, op: u32, block: &[u32]) {
        self.poke_words(BLOCK, block);
        self.memory.insert(u64::from(TRAP_PC), 0xAB);
        self.memory.insert(u64::from(TRAP_PC) + 1, 0xBE);
        self.regs[15] = TRAP_PC;
        self.regs[0] = op;
        self.regs[1] = BLOCK;
        self.state = CoreState::Halted(HaltCause::Breakpoint);
    }

    fn read_c_string(&self, addr: u64) -> String {
        let mut out = Vec::new();
        let mut at = addr;
        while let Some(&b) = self.memory.get(&at) {
            if b == 0 {
                break;
            }
            out.push(b);
            at += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The program's next move when the host lets it run.
    fn on_run(&mut self) {
        match self.phase {
            Phase::Reset => {
                self.phase = Phase::AskingCmdline;
                self.trap(0x15, &[CMDLINE_BUF, 256]);
            }
            Phase::AskingCmdline => {
                if self.regs[15] == TRAP_PC + 2 && self.regs[0] == 0 {
                    self.cmdline = Some(self.read_c_string(u64::from(CMDLINE_BUF)));
                }
                self.phase = Phase::Printing;
                self.state = CoreState::Running;
            }
            // Let go at its handler's entry: the handler exits.
            Phase::Faulted => self.exit(),
            Phase::Printing | Phase::Exited => self.state = CoreState::Running,
        }
    }

    fn exit(&mut self) {
        self.phase = Phase::Exited;
        let code = self.exit_code;
        self.trap(0x20, &[0x20026, code]);
    }

    fn maybe_exit(&mut self) {
        if self.phase == Phase::Printing
            && self.output.is_empty()
            && self.input.is_empty()
            && self.received.ends_with(&self.expect_input)
        {
            match self.fault {
                Some(fault) if self.catching => {
                    // Exception entry: the frame on the main stack, then
                    // the vector catch halts at the handler's entry.
                    self.regs[14] = 0xFFFF_FFF9;
                    self.regs[17] = FAULT_MSP;
                    self.poke_words(FAULT_MSP + 24, &[fault.pc]);
                    self.poke_words(0xE000_ED28, &[fault.cfsr, fault.hfsr]);
                    self.phase = Phase::Faulted;
                    self.state = CoreState::Halted(HaltCause::Exception);
                }
                // The program's own handler runs at once and exits.
                _ => self.exit(),
            }
        }
    }
}

/// A session on the shared board.
pub struct FakeSession(pub Arc<Mutex<Board>>);

impl FakeSession {
    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.0.lock().unwrap()
    }
}

impl CoreAccess for FakeSession {
    fn read_reg(&mut self, regsel: u16) -> Result<u32, ProbeError> {
        self.board()
            .regs
            .get(usize::from(regsel))
            .copied()
            .ok_or_else(|| ProbeError::failed("read register", format!("no register {regsel}")))
    }

    fn write_reg(&mut self, regsel: u16, value: u32) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push(format!("write_reg {regsel} {value:#x}"));
        b.regs[usize::from(regsel)] = value;
        Ok(())
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), ProbeError> {
        let b = self.board();
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = b.memory.get(&(addr + i as u64)).copied().unwrap_or(0);
        }
        Ok(())
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls
            .push(format!("write_memory {addr:#x} {}", data.len()));
        for (i, byte) in data.iter().enumerate() {
            b.memory.insert(addr + i as u64, *byte);
        }
        Ok(())
    }

    fn halt(&mut self) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push("halt".into());
        if b.state == CoreState::Running {
            b.state = CoreState::Halted(HaltCause::Request);
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push("run".into());
        b.on_run();
        Ok(())
    }

    fn step(&mut self) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push("step".into());
        b.regs[15] += 2;
        b.state = CoreState::Halted(HaltCause::Step);
        Ok(())
    }

    fn state(&mut self) -> Result<CoreState, ProbeError> {
        let mut b = self.board();
        // A running program reaches a breakpoint at once.
        if b.state == CoreState::Running
            && let Some(&bp) = b.breakpoints.first()
        {
            b.regs[15] = bp as u32;
            b.state = CoreState::Halted(HaltCause::Breakpoint);
        }
        Ok(b.state)
    }

    fn reset(&mut self, halt: bool) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push(format!("reset halt={halt}"));
        b.phase = Phase::Reset;
        b.regs[15] = 0x0800_0000;
        b.state = if halt {
            CoreState::Halted(HaltCause::Request)
        } else {
            CoreState::Running
        };
        Ok(())
    }

    fn set_breakpoint(&mut self, addr: u64) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push(format!("set_breakpoint {addr:#x}"));
        b.breakpoints.push(addr);
        Ok(())
    }

    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push(format!("clear_breakpoint {addr:#x}"));
        b.breakpoints.retain(|a| *a != addr);
        Ok(())
    }

    fn has_fpu(&mut self) -> Result<bool, ProbeError> {
        Ok(self.board().fpu)
    }

    fn catch_hardfault(&mut self, on: bool) -> Result<(), ProbeError> {
        let mut b = self.board();
        b.calls.push(format!("catch_hardfault {on}"));
        b.catching = on;
        Ok(())
    }
}

impl ProbeSession for FakeSession {
    fn flash(
        &mut self,
        elf: &Path,
        progress: &mut dyn FnMut(FlashEvent),
    ) -> Result<(), ProbeError> {
        let size = std::fs::metadata(elf)
            .map_err(|e| ProbeError::failed("flash", e))?
            .len();
        self.board().calls.push(format!(
            "flash {}",
            elf.file_name().unwrap().to_string_lossy()
        ));
        progress(FlashEvent::Started { total: size });
        progress(FlashEvent::Programmed { bytes: size / 2 });
        progress(FlashEvent::Programmed {
            bytes: size - size / 2,
        });
        progress(FlashEvent::Finished);
        Ok(())
    }

    fn rtt_attach(&mut self, address: u64) -> Result<bool, ProbeError> {
        let mut b = self.board();
        let ready = b.phase == Phase::Printing || b.phase == Phase::Exited;
        if ready {
            b.calls.push(format!("rtt_attach {address:#x}"));
        }
        Ok(ready)
    }

    fn rtt_read(&mut self, into: &mut Vec<u8>) -> Result<(), ProbeError> {
        let mut b = self.board();
        if b.state == CoreState::Running {
            if let Some(line) = b.output.pop_front() {
                into.extend(line);
            } else if !b.input.is_empty() {
                let echo = std::mem::take(&mut b.input);
                into.extend_from_slice(b"echo ");
                into.extend(echo);
            }
            b.maybe_exit();
        }
        Ok(())
    }

    fn rtt_write(&mut self, data: &[u8]) -> Result<usize, ProbeError> {
        let mut b = self.board();
        b.input.extend_from_slice(data);
        b.received.extend_from_slice(data);
        Ok(data.len())
    }
}

/// A lister with one probe that answers only for `chip`.
pub struct FakeLister {
    pub board: Arc<Mutex<Board>>,
    pub chip: String,
    pub probe: ProbeInfo,
    pub opened: Mutex<Vec<String>>,
}

impl FakeLister {
    pub fn new(chip: &str, board: Board) -> Self {
        Self {
            board: Arc::new(Mutex::new(board)),
            chip: chip.to_owned(),
            probe: ProbeInfo {
                identifier: "Fake ST-LINK".into(),
                serial: Some("FAKE0001".into()),
                selector: "0483:374b:FAKE0001".into(),
            },
            opened: Mutex::new(Vec::new()),
        }
    }
}

impl ProbeLister for FakeLister {
    fn list(&self) -> Vec<ProbeInfo> {
        vec![self.probe.clone()]
    }

    fn open(&self, probe: &ProbeInfo, chip: &str) -> Result<Box<dyn ProbeSession>, ProbeError> {
        self.opened.lock().unwrap().push(chip.to_owned());
        if chip != self.chip || probe != &self.probe {
            return Err(ProbeError::failed(
                format!("attach to {chip}"),
                "the chip did not answer",
            ));
        }
        Ok(Box::new(FakeSession(Arc::clone(&self.board))))
    }
}
