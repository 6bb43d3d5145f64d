//! The GDB remote client against QEMU's gdbstub running the `debuggee`
//! firmware, and against a fake stub for broken connections.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use lab::gdb::{BreakKind, ConnError, GdbClient, GdbError, StopReason};
use object::{Object, ObjectSymbol};

const SIGINT: u8 = 2;
const SIGTRAP: u8 = 5;

/// Symbol addresses and the entry point of an ELF.
struct Elf {
    entry: u64,
    data: Vec<u8>,
}

impl Elf {
    fn load(path: &Path) -> Self {
        let data = std::fs::read(path).unwrap();
        let entry = object::File::parse(&*data).unwrap().entry();
        Self { entry, data }
    }

    /// A symbol's address, Thumb bit cleared.
    fn sym(&self, name: &str) -> u64 {
        let file = object::File::parse(&*self.data).unwrap();
        let sym = file.symbols().find(|s| s.name() == Ok(name));
        sym.unwrap_or_else(|| panic!("no symbol {name}")).address() & !1
    }
}

/// QEMU paused at reset running the debuggee, and its symbols.
struct Qemu {
    halted: common::HaltedQemu,
    sock: PathBuf,
    elf: Elf,
}

impl Qemu {
    fn start(board: &str, args: &[&str]) -> Self {
        let halted = common::HaltedQemu::start(board, args);
        Self {
            sock: halted.sock.clone(),
            elf: Elf::load(&halted.elf),
            halted,
        }
    }

    fn connect(&self) -> GdbClient {
        let mut gdb = GdbClient::connect_unix(&self.sock, Duration::from_secs(5)).unwrap();
        gdb.set_timeout(Duration::from_secs(2));
        gdb
    }

    /// QEMU's exit status, waiting up to `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.halted.wait_exit(timeout)
    }
}

fn signal(reason: &StopReason) -> u8 {
    match reason {
        StopReason::Signal { signal, .. } => *signal,
        other => panic!("not a signal stop: {other:?}"),
    }
}

/// Continues and waits for the stop.
fn cont(gdb: &mut GdbClient) -> StopReason {
    gdb.resume(false).unwrap();
    gdb.wait_stop(Duration::from_secs(5))
        .unwrap()
        .expect("the target stops")
}

#[test]
fn break_at_main_write_a_global_and_exit_with_it() {
    let mut qemu = Qemu::start("mps2-an385", &[]);
    let mut gdb = qemu.connect();
    assert_eq!(gdb.packet_size(), 4096);
    assert!(gdb.features().xfer_features);

    let xml = String::from_utf8(gdb.target_xml("target.xml").unwrap()).unwrap();
    assert!(xml.contains("arm-m-profile.xml"), "{xml}");
    let map = gdb.register_map().unwrap();
    assert_eq!(map.architecture(), Some("arm"));
    for name in ["r0", "sp", "pc", "xpsr", "msp", "psp", "control"] {
        assert!(map.get(name).is_some(), "{name} missing");
    }
    assert_eq!(map.get("xpsr").unwrap().regnum, 25);
    assert!(map.get("d0").is_none(), "the M3 has no FPU");

    assert_eq!(signal(&gdb.halt_reason().unwrap()), SIGTRAP);
    let entry = qemu.elf.entry & !1;
    assert_eq!(gdb.read_register_by_name("pc").unwrap(), entry);
    let g = gdb.read_registers().unwrap();
    assert_eq!(g.len(), 17 * 4, "r0-r15 and xpsr");
    assert_eq!(
        u32::from_le_bytes(g[60..64].try_into().unwrap()) as u64,
        entry
    );
    assert_eq!(
        gdb.read_register(16).unwrap(),
        None,
        "an undescribed number"
    );
    assert_ne!(
        gdb.read_register_by_name("xpsr").unwrap() & (1 << 24),
        0,
        "Thumb"
    );
    assert_eq!(
        gdb.read_register_by_name("msp").unwrap(),
        gdb.read_register_by_name("sp").unwrap()
    );

    // The vector table: reset vector at 4, read through a 64 KiB chunked read.
    let code = gdb.read_memory_vec(0, 64 << 10).unwrap();
    assert_eq!(
        u32::from_le_bytes(code[4..8].try_into().unwrap()) as u64,
        qemu.elf.entry
    );

    let main = qemu.elf.sym("main");
    assert!(gdb.insert_break(BreakKind::Software, main, 2).unwrap());
    let stop = cont(&mut gdb);
    assert_eq!(signal(&stop), SIGTRAP);
    assert_eq!(gdb.read_register_by_name("pc").unwrap(), main);
    assert!(gdb.remove_break(BreakKind::Software, main, 2).unwrap());

    let signed = gdb.read_u32(qemu.elf.sym("lab_signed")).unwrap() as i32;
    assert_eq!(signed, -5);
    let float = f32::from_bits(gdb.read_u32(qemu.elf.sym("lab_float")).unwrap());
    assert_eq!(float, 1.5);
    let exit_code = qemu.elf.sym("lab_exit_code");
    assert_eq!(gdb.read_u32(exit_code).unwrap(), 0);
    gdb.write_u32(exit_code, 42).unwrap();
    assert_eq!(gdb.read_u32(exit_code).unwrap(), 42);
    let err = gdb.read_u32(0xF000_0000).unwrap_err();
    assert!(matches!(err, GdbError::Refused { .. }), "{err}");

    let pc = gdb.read_register_by_name("pc").unwrap();
    assert_eq!(signal(&gdb.step().unwrap()), SIGTRAP);
    assert_ne!(gdb.read_register_by_name("pc").unwrap(), pc);

    assert_eq!(cont(&mut gdb), StopReason::Exited(42));
    assert!(matches!(gdb.halt_reason(), Err(GdbError::Gone(_))));
    let status = qemu.wait_exit(Duration::from_secs(2)).expect("QEMU exits");
    assert_eq!(status.code(), Some(42));
}

#[test]
fn interrupt_a_spinning_target_then_catch_a_watchpoint() {
    let mut qemu = Qemu::start("mps2-an385", &["spin"]);
    let mut gdb = qemu.connect();
    let counter = qemu.elf.sym("lab_counter");
    gdb.resume(false).unwrap();
    assert_eq!(gdb.wait_stop(Duration::from_millis(50)).unwrap(), None);
    assert!(matches!(gdb.read_u32(counter), Err(GdbError::Running)));
    gdb.interrupt().unwrap();
    let stop = gdb.wait_stop(Duration::from_secs(2)).unwrap().unwrap();
    assert_eq!(signal(&stop), SIGINT);
    let first = gdb.read_u32(counter).unwrap();
    assert!(first > 0, "the loop ran");

    assert!(gdb.insert_break(BreakKind::WriteWatch, counter, 4).unwrap());
    match cont(&mut gdb) {
        StopReason::Signal {
            signal: SIGTRAP,
            watch: Some((_, addr)),
            ..
        } => assert_eq!(addr, counter),
        other => panic!("expected a watchpoint stop, got {other:?}"),
    }
    assert!(gdb.read_u32(counter).unwrap() >= first);
    assert!(gdb.remove_break(BreakKind::WriteWatch, counter, 4).unwrap());

    gdb.write_u32(qemu.elf.sym("lab_spin"), 0).unwrap();
    assert_eq!(cont(&mut gdb), StopReason::Exited(0));
    assert_eq!(
        qemu.wait_exit(Duration::from_secs(2)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn fpu_registers_on_an500_then_kill() {
    let mut qemu = Qemu::start("mps2-an500", &[]);
    let mut gdb = qemu.connect();
    let map = gdb.register_map().unwrap();
    for name in ["d0", "d15", "fpscr", "xpsr", "msp", "psp", "control"] {
        assert!(map.get(name).is_some(), "{name} missing");
    }
    assert_eq!(map.get("d0").unwrap().bitsize, 64);
    let work = qemu.elf.sym("work");
    assert!(gdb.insert_break(BreakKind::Hardware, work, 2).unwrap());
    let stop = cont(&mut gdb);
    assert_eq!(signal(&stop), SIGTRAP);
    assert_eq!(gdb.read_register_by_name("pc").unwrap(), work);
    assert_eq!(gdb.read_register_by_name("r0").unwrap(), 1, "work(1)");
    gdb.write_register_by_name("d7", 0x4008_0000_0000_0000)
        .unwrap();
    assert_eq!(
        gdb.read_register_by_name("d7").unwrap(),
        0x4008_0000_0000_0000
    );
    gdb.read_register_by_name("fpscr").unwrap();
    assert_eq!(
        gdb.read_register_by_name("control").unwrap() & 1,
        0,
        "privileged"
    );
    gdb.kill().unwrap();
    assert!(
        qemu.wait_exit(Duration::from_secs(2)).is_some(),
        "k ends QEMU"
    );
}

#[test]
fn detach_leaves_the_target_running() {
    let mut qemu = Qemu::start("mps2-an385", &[]);
    let mut gdb = qemu.connect();
    gdb.detach().unwrap();
    assert!(matches!(gdb.halt_reason(), Err(GdbError::Gone(_))));
    let status = qemu
        .wait_exit(Duration::from_secs(3))
        .expect("runs to the end");
    assert_eq!(status.code(), Some(0));
}

/// Reads one framed packet from the fake stub's side; returns its body.
fn read_packet(stream: &mut UnixStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0];
    loop {
        stream.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
        if got.len() >= 3 && got[got.len() - 3] == b'#' {
            let start = got.iter().position(|&b| b == b'$').unwrap();
            return got[start + 1..got.len() - 3].to_vec();
        }
    }
}

fn frame(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

#[test]
fn a_nack_resends_and_a_dropped_connection_fails_in_time() {
    let (client_side, mut stub) = UnixStream::pair().unwrap();
    let fake = std::thread::spawn(move || {
        // Refuse the first qSupported, answer the resend in RLE.
        assert!(read_packet(&mut stub).starts_with(b"qSupported"));
        stub.write_all(b"-").unwrap();
        assert!(read_packet(&mut stub).starts_with(b"qSupported"));
        stub.write_all(b"+").unwrap();
        stub.write_all(&frame("PacketSize=100;qXfer:features:read+"))
            .unwrap();
        // A register read answered with run-length encoding.
        assert_eq!(read_packet(&mut stub), b"p0");
        stub.write_all(&frame("0* 01")).unwrap();
        // Half a stop reply, then silence.
        assert_eq!(read_packet(&mut stub), b"?");
        stub.write_all(b"+$T0").unwrap();
        assert_eq!(read_packet(&mut stub), b"?");
        // Then the connection drops.
    });
    let mut gdb = GdbClient::new(client_side).unwrap();
    assert_eq!(gdb.packet_size(), 256);
    assert_eq!(gdb.read_register(0).unwrap(), Some(vec![0, 0, 1]));
    gdb.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = gdb.halt_reason().unwrap_err();
    assert!(matches!(err, GdbError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let err = gdb.halt_reason().unwrap_err();
    assert!(
        matches!(err, GdbError::Connection(ConnError::Closed)),
        "{err}"
    );
    fake.join().unwrap();
}

/// Parses `m<addr>,<len>`.
fn parse_m(body: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(&body[1..]).unwrap();
    let (addr, len) = text.split_once(',').unwrap();
    (
        usize::from_str_radix(addr, 16).unwrap(),
        usize::from_str_radix(len, 16).unwrap(),
    )
}

#[test]
fn pipelined_reads_survive_a_nack_and_stop_at_a_refusal() {
    let (client_side, mut stub) = UnixStream::pair().unwrap();
    let fake = std::thread::spawn(move || {
        assert!(read_packet(&mut stub).starts_with(b"qSupported"));
        stub.write_all(b"+").unwrap();
        stub.write_all(&frame("PacketSize=40")).unwrap();
        // Chunks of 32 bytes; the third is nacked once, the sixth refused.
        let mut nacked = false;
        let mut served = Vec::new();
        loop {
            let body = read_packet(&mut stub);
            if body == b"p0" {
                stub.write_all(b"+").unwrap();
                stub.write_all(&frame("2a000000")).unwrap();
                return served;
            }
            let (addr, len) = parse_m(&body);
            if addr == 64 && !nacked {
                nacked = true;
                stub.write_all(b"-").unwrap();
                continue;
            }
            served.push(addr);
            stub.write_all(b"+").unwrap();
            if addr == 160 {
                stub.write_all(&frame("E14")).unwrap();
            } else {
                let hex: String = (addr..addr + len)
                    .map(|a| format!("{:02x}", a as u8))
                    .collect();
                stub.write_all(&frame(&hex)).unwrap();
            }
        }
    });
    let mut gdb = GdbClient::new(client_side).unwrap();
    gdb.set_read_window(4);
    let mut buf = vec![0xee; 256];
    assert_eq!(gdb.read_memory(0, &mut buf).unwrap(), 160);
    assert!(buf[..160].iter().enumerate().all(|(i, &b)| b == i as u8));
    // The replies in flight were drained: the next request gets its own.
    assert_eq!(gdb.read_register(0).unwrap(), Some(vec![42, 0, 0, 0]));
    let served = fake.join().unwrap();
    // Nothing was asked past the window after the refusal.
    assert!(served.iter().all(|&a| a < 160 + 4 * 32), "{served:?}");
}

#[test]
fn a_frame_larger_than_the_receive_buffer_is_received() {
    let (client_side, mut stub) = UnixStream::pair().unwrap();
    let fake = std::thread::spawn(move || {
        assert!(read_packet(&mut stub).starts_with(b"qSupported"));
        stub.write_all(b"+").unwrap();
        stub.write_all(&frame("PacketSize=1000")).unwrap();
        assert_eq!(read_packet(&mut stub), b"p0");
        stub.write_all(b"+").unwrap();
        stub.write_all(&frame(&"5a".repeat(200_000))).unwrap();
    });
    let mut gdb = GdbClient::new(client_side).unwrap();
    let value = gdb.read_register(0).unwrap().unwrap();
    assert_eq!(value.len(), 200_000);
    assert!(value.iter().all(|&b| b == 0x5a));
    fake.join().unwrap();
}
