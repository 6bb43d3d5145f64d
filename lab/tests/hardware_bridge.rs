//! The GDB bridge's probe-rs backend on a fake core (no probe is attached
//! here): registers, memory, breakpoints and stops through the
//! `DebugBackend` trait, real gdb-multiarch through the bridge in front of
//! it, and probe-rs's own fake probe behind the lab's probe-rs session.

mod hardware_fake;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardware_fake::{Board, FakeSession};
use lab::backend::probe::{CoreAccess, CoreState, HaltCause, ProbeSession};
use lab::gdb::{
    BackendFactory, BreakKind, BridgeServer, DebugBackend, DebugHost, ProbeBackend, StopReason,
};

/// Records what the backend tells its target.
#[derive(Default)]
struct Host {
    debugging: Mutex<Vec<bool>>,
    exits: Mutex<Vec<i32>>,
}

impl DebugHost for Host {
    fn debugging(&self, attached: bool) {
        self.debugging.lock().unwrap().push(attached);
    }
    fn exited(&self, code: i32) {
        self.exits.lock().unwrap().push(code);
    }
    fn command_line(&self) -> String {
        "fw.elf".into()
    }
}

fn board() -> Arc<Mutex<Board>> {
    let mut b = Board::new(&[], 0);
    for (i, r) in b.regs.iter_mut().enumerate() {
        *r = 0x1000 + i as u32;
    }
    b.regs[20] = 0x0301_0201; // CONTROL 3, FAULTMASK 1, BASEPRI 2, PRIMASK 1
    b.regs[64] = 0x0000_0000; // S0 and S1 make D0 = 1.0
    b.regs[65] = 0x3ff0_0000;
    Arc::new(Mutex::new(b))
}

fn backend(board: &Arc<Mutex<Board>>, host: &Arc<Host>) -> ProbeBackend<FakeSession> {
    let core = Arc::new(Mutex::new(Box::new(FakeSession(Arc::clone(board)))));
    ProbeBackend::attach(core, Arc::clone(host) as Arc<dyn DebugHost>).unwrap()
}

#[test]
fn registers_memory_and_breakpoints_through_the_debug_backend() {
    let board = board();
    let host = Arc::new(Host::default());
    let mut b = backend(&board, &host);
    assert_eq!(
        board.lock().unwrap().calls.first().map(String::as_str),
        Some("halt")
    );
    assert_eq!(*host.debugging.lock().unwrap(), vec![true]);

    let xml = String::from_utf8(b.target_xml("target.xml").unwrap()).unwrap();
    let map =
        lab::gdb::RegisterMap::parse(&xml, |_| -> Result<String, lab::gdb::DescriptionError> {
            unreachable!("one document")
        })
        .unwrap();
    assert_eq!(map.get("pc").unwrap().regnum, 15);
    assert_eq!(map.get("xpsr").unwrap().regnum, 16);
    assert_eq!(map.get("control").unwrap().regnum, 22);
    assert_eq!(map.get("d0").unwrap().regnum, 23);
    assert_eq!(map.get("fpscr").unwrap().regnum, 39);

    let g = b.read_registers().unwrap();
    assert_eq!(g.len(), 17 * 4);
    assert_eq!(&g[15 * 4..16 * 4], &0x100fu32.to_le_bytes());
    let reg = |b: &mut ProbeBackend<FakeSession>, n| b.read_register(n).unwrap().unwrap();
    assert_eq!(reg(&mut b, 17), 0x1011u32.to_le_bytes()); // msp
    assert_eq!(reg(&mut b, 19), 1u32.to_le_bytes()); // primask
    assert_eq!(reg(&mut b, 22), 3u32.to_le_bytes()); // control
    assert_eq!(reg(&mut b, 23), 1.0f64.to_le_bytes()); // d0
    assert_eq!(b.read_register(40).unwrap(), None);
    b.write_register(20, &[0x7f, 0, 0, 0]).unwrap(); // basepri
    assert_eq!(board.lock().unwrap().regs[20], 0x0301_7f01);

    b.write_memory(0x2000_0000, &[1, 2, 3, 4]).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(b.read_memory(0x2000_0000, &mut buf).unwrap(), 4);
    assert_eq!(buf, [1, 2, 3, 4]);

    // Software breakpoints become FPB comparators; watchpoints are not offered.
    assert!(b.insert_break(BreakKind::Software, 0x0800_0200, 2).unwrap());
    assert!(
        !b.insert_break(BreakKind::WriteWatch, 0x2000_0000, 4)
            .unwrap()
    );
    b.resume(false).unwrap();
    let stop = b.wait_stop(Duration::from_secs(1)).unwrap();
    assert_eq!(
        stop,
        Some(StopReason::Signal {
            signal: 5,
            watch: None,
            breakpoint: Some(BreakKind::Hardware)
        })
    );
    assert!(b.remove_break(BreakKind::Software, 0x0800_0200, 2).unwrap());
    b.resume(true).unwrap();
    assert!(matches!(
        b.wait_stop(Duration::ZERO).unwrap(),
        Some(StopReason::Signal { signal: 5, .. })
    ));
    let calls = board.lock().unwrap().calls.clone();
    for call in [
        "set_breakpoint 0x8000200",
        "clear_breakpoint 0x8000200",
        "step",
    ] {
        assert!(calls.iter().any(|c| c == call), "no `{call}` in {calls:?}");
    }
    drop(b);
    assert_eq!(*host.debugging.lock().unwrap(), vec![true, false]);
}

#[test]
fn a_semihosting_exit_under_the_debugger_is_gdbs_exit_stop() {
    let board = board();
    board.lock().unwrap().exit_code = 7;
    let host = Arc::new(Host::default());
    let mut b = backend(&board, &host);
    // From reset: the program asks for its command line (answered while
    // gdb waits), prints nothing and exits with 7.
    FakeSession(Arc::clone(&board)).reset(true).unwrap();
    b.resume(false).unwrap();
    let mut session = FakeSession(Arc::clone(&board));
    let mut out = Vec::new();
    let mut stop = None;
    for _ in 0..100 {
        stop = b.wait_stop(Duration::from_millis(10)).unwrap();
        if stop.is_some() {
            break;
        }
        session.rtt_read(&mut out).unwrap();
    }
    assert_eq!(stop, Some(StopReason::Exited(7)));
    assert_eq!(*host.exits.lock().unwrap(), vec![7]);
    assert_eq!(board.lock().unwrap().cmdline.as_deref(), Some("fw.elf"));
}

fn gdb_available() -> bool {
    Command::new("gdb-multiarch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn gdb_multiarch_reads_the_fake_core_through_the_bridge() {
    assert!(
        gdb_available(),
        "gdb-multiarch is required (scripts/install-deps.sh)"
    );
    let board = board();
    {
        let mut b = board.lock().unwrap();
        b.state = CoreState::Halted(HaltCause::Request);
        for (i, byte) in [0xde, 0xad, 0xbe, 0xef].iter().enumerate() {
            b.memory.insert(0x2000_0000 + i as u64, *byte);
        }
    }
    let host = Arc::new(Host::default());
    let core: Arc<Mutex<Box<FakeSession>>> =
        Arc::new(Mutex::new(Box::new(FakeSession(Arc::clone(&board)))));
    let factory: BackendFactory = {
        let host = Arc::clone(&host);
        Box::new(move || {
            let backend =
                ProbeBackend::attach(Arc::clone(&core), Arc::clone(&host) as Arc<dyn DebugHost>)?;
            Ok(Box::new(backend) as Box<dyn DebugBackend>)
        })
    };
    let bridge = BridgeServer::start(0, factory).unwrap();
    let addr = bridge.local_addr();
    let out = Command::new("gdb-multiarch")
        .args(["-nx", "-batch"])
        .args(["-ex", &format!("target remote {addr}")])
        .args(["-ex", "p/x $pc", "-ex", "p/x $msp", "-ex", "p/x $control"])
        .args(["-ex", "p $d0", "-ex", "x/4xb 0x20000000"])
        .args(["-ex", "set var *(unsigned char *)0x20000004 = 0x42"])
        .args(["-ex", "detach"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for want in [
        "= 0x100f",
        "= 0x1011",
        "= 0x3",
        "= 1",
        "0xde\t0xad\t0xbe\t0xef",
    ] {
        assert!(text.contains(want), "no `{want}` in:\n{text}");
    }
    bridge.shutdown();
    let b = board.lock().unwrap();
    assert_eq!(b.memory.get(&0x2000_0004), Some(&0x42));
    assert!(
        b.calls.iter().any(|c| c == "run"),
        "detach lets the core run: {:?}",
        b.calls
    );
}

#[cfg(feature = "hardware")]
#[test]
fn probe_rs_fake_probe_behind_the_labs_session() {
    use probe_rs::probe::fake_probe::FakeProbe;
    // probe-rs's mocked core answers DHCSR (halt, run, status) and reads
    // memory as zeros; flashing and RTT are beyond it.
    let probe = FakeProbe::with_mocked_core().into_probe();
    let mut session = lab::backend::probe::ProbeRsSession::attach(probe, "nrf51822_xxAC").unwrap();
    session.halt().unwrap();
    assert!(matches!(session.state().unwrap(), CoreState::Halted(_)));
    let mut buf = [0xffu8; 4];
    session.read_memory(0x2000_0000, &mut buf).unwrap();
    assert_eq!(buf, [0; 4]);
    assert_eq!(
        lab::backend::probe::semihost::serve(&mut session, "x").unwrap(),
        lab::backend::probe::semihost::Call::NotSemihosting
    );
}
