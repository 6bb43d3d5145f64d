//! Board profiles: how QEMU models each board, read from `qemu-configs/*.yaml`.
//!
//! The profiles of the lab's own `qemu-configs/` are built into the binary,
//! so an installed lab knows its boards anywhere; a workspace's
//! `qemu-configs/` adds boards and overrides built-in ones by name.
//!
//! A profile is data, so a new board needs no Rust change. It names the QEMU
//! binary and machine, the memory map, how firmware is loaded, how the serial
//! port is wired, how the guest exits and the icount setting that
//! `clock: virtual` uses. A profile with a `hardware:` section also names
//! the real board's probe-rs chip and how its console is reached; a board
//! that exists only as hardware has no `qemu:` section.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::LazyFiles;

/// Errors while reading board profiles.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// Could not read a board profile file.
    #[error("cannot read board profile {path}: {source}")]
    Read {
        /// The profile file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A board profile is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// The profile file.
        path: PathBuf,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// Two profiles claim the same name.
    #[error("board `{name}` is defined twice: {first} and {second}")]
    Duplicate {
        /// The board name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
}

/// The instruction set family of a board's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// ARMv7-M (Cortex-M3, M4, M7).
    Armv7m,
    /// ARMv8-A in AArch64 state (Cortex-A53).
    Aarch64,
}

impl Arch {
    /// The name used in profiles and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Armv7m => "armv7m",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// The baud rate of a UART console when the profile names none.
const DEFAULT_BAUD: u32 = 115_200;

/// One board profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// The name scenarios use (`board: mps2-an385`).
    pub name: String,
    /// One line for `lab list`.
    pub description: String,
    /// The CPU's architecture.
    pub arch: Arch,
    /// How to start QEMU for this board; `None` for a board that exists
    /// only as hardware.
    #[serde(default)]
    pub qemu: Option<QemuMachine>,
    /// How firmware gets into the board.
    pub load: LoadMethod,
    /// The console UART that firmware drives (`None` when the console is
    /// RTT, on hardware only).
    #[serde(default)]
    pub serial: Option<Serial>,
    /// How the guest ends the emulation with an exit code.
    pub exit: ExitMethod,
    /// The icount setting for `clock: virtual` (QEMU boards only).
    #[serde(default)]
    pub icount: Option<Icount>,
    /// A counter that runs on the guest's clock, for `sleep_guest()`.
    #[serde(default)]
    pub guest_clock: Option<GuestClock>,
    /// How the board warns its firmware that power is failing, for
    /// `power-cut: {mode: graceful}`.
    #[serde(default)]
    pub power_fail: Option<PowerFail>,
    /// What a snapshot of this board needs (QEMU boards only).
    #[serde(default)]
    pub snapshot: Option<SnapshotRules>,
    /// The real board, reached through a debug probe.
    #[serde(default)]
    pub hardware: Option<Hardware>,
    /// Named memory regions.
    pub memory: Vec<MemoryRegion>,
    /// Layout for firmware built by the lab (bare-metal boards only).
    #[serde(default)]
    pub firmware: Option<FirmwareLayout>,
    /// How a Linux kernel boots on this board (Linux boards only).
    #[serde(default)]
    pub linux: Option<LinuxBoot>,
    /// Where the profile comes from.
    #[serde(skip)]
    pub origin: ProfileOrigin,
    /// The profile's YAML text, as cache keys hash it.
    #[serde(skip)]
    pub yaml: String,
}

/// Where a board profile comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProfileOrigin {
    /// Built into the lab, from the `qemu-configs/` it was built from.
    #[default]
    BuiltIn,
    /// A file of a workspace's `qemu-configs/`: a board of its own, or one
    /// in place of the built-in board of that name.
    File(PathBuf),
}

impl std::fmt::Display for ProfileOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileOrigin::BuiltIn => f.write_str("built in"),
            ProfileOrigin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The QEMU side of a board.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuMachine {
    /// The emulator binary (`qemu-system-arm`).
    pub binary: String,
    /// The Debian package that provides the binary.
    pub package: String,
    /// `-M` value.
    pub machine: String,
    /// `-cpu` value.
    pub cpu: String,
    /// `-m` value, e.g. `16M`.
    pub memory: String,
    /// Extra arguments appended verbatim (each one argument).
    #[serde(default)]
    pub args: Vec<String>,
}

/// The real board behind a profile: what probe-rs attaches to and where the
/// console is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// The probe-rs chip name (`STM32F767ZITx`); see `probe-rs chip list`.
    pub chip: String,
    /// How the board's console is reached.
    pub console: HardwareConsole,
    /// Only the probe with this serial number runs the board (default: any
    /// probe that answers for the chip).
    #[serde(default)]
    pub probe: Option<String>,
}

/// How a real board's console is reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum HardwareConsole {
    /// SEGGER RTT through the probe: up and down channel 0.
    Rtt,
    /// A UART wired to a serial port of the host.
    Uart {
        /// The host's serial port (`/dev/ttyACM0`).
        port: String,
        /// The baud rate.
        baud: u32,
    },
}

impl HardwareConsole {
    /// A one-word description for tables (`rtt`, `uart /dev/ttyACM0`).
    pub fn describe(&self) -> String {
        match self {
            HardwareConsole::Rtt => "rtt".to_owned(),
            HardwareConsole::Uart { port, baud } => format!("uart {port} @{baud}"),
        }
    }
}

/// How firmware gets into the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMethod {
    /// QEMU's `-kernel` loader (an ELF for Cortex-M, an Image for Linux).
    Kernel,
    /// Written to the chip's flash by the debug probe (real boards).
    Flash,
}

/// The console UART.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serial {
    /// The UART model, which picks the runtime's driver.
    pub uart: UartModel,
    /// Its base address.
    pub base: u64,
    /// QEMU's serial port number for this UART (the position of the lab's
    /// `-serial` among the machine's ports); 0 unless the console is not
    /// the machine's first UART.
    #[serde(default)]
    pub index: u8,
    /// The real chip's pins for the UART (STM32 only): the runtime hands
    /// them to the UART's alternate function.
    #[serde(default)]
    pub pins: Option<UartPins>,
}

/// The model of a board's console UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UartModel {
    /// Arm's CMSDK APB UART (the MPS2 boards).
    CmsdkApbUart,
    /// The USART of STM32F2/F4 chips (QEMU's `stm32f2xx-usart`); on a real
    /// chip the runtime also starts its clocks and muxes its pins.
    Stm32f4Usart,
    /// Arm's PL011 (Linux boards: the kernel drives it, the runtime does not).
    Pl011,
}

/// Where a UART's signals leave an STM32 chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UartPins {
    /// The transmit pin (`PC6`).
    pub tx: GpioPin,
    /// The receive pin (`PC7`).
    pub rx: GpioPin,
    /// The alternate function number that connects both pins to the UART.
    pub af: u8,
}

/// An STM32 GPIO pin, written `P<port letter><number>` (`PC6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct GpioPin {
    /// The port: 0 for A, 1 for B, ...
    pub port: u8,
    /// The pin within the port, 0 to 15.
    pub pin: u8,
}

impl TryFrom<String> for GpioPin {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let bad = || format!("`{name}` is not a GPIO pin; write it like PC6 (port A-K, pin 0-15)");
        let rest = name.strip_prefix('P').ok_or_else(bad)?;
        let mut chars = rest.chars();
        let port = chars
            .next()
            .filter(|c| ('A'..='K').contains(c))
            .ok_or_else(bad)?;
        let pin: u8 = chars.as_str().parse().map_err(|_| bad())?;
        if pin > 15 {
            return Err(bad());
        }
        Ok(GpioPin {
            port: port as u8 - b'A',
            pin,
        })
    }
}

/// How the guest ends the emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitMethod {
    /// ARM semihosting; SYS_EXIT_EXTENDED passes the exit code through.
    Semihosting,
    /// PSCI power-off (Linux guests); the exit code is not passed through.
    Psci,
}

/// QEMU `-icount` parameters.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Icount {
    /// One instruction takes 2^shift ns of guest time.
    pub shift: u8,
    /// Whether QEMU can record and replay runs on this board (`lab run
    /// --record`); QEMU records only machines with one CPU.
    #[serde(default = "recordable")]
    pub record: bool,
}

/// Boards record unless their profile says otherwise.
fn recordable() -> bool {
    true
}

/// A free-running memory-mapped counter that QEMU drives from its virtual
/// clock, so reading it tells guest time (under icount as under wall time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestClock {
    /// The counter register's physical address (a 32-bit read).
    pub counter: u64,
    /// How often it counts, in Hz.
    pub hz: u64,
}

/// What saving a snapshot of a board needs beyond QEMU's migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRules {
    /// 32-bit registers (physical addresses, read with the monitor's `xp`)
    /// that must all read zero at the instant a snapshot is taken: the
    /// pending-interrupt registers of an interrupt controller whose QEMU
    /// model does not migrate its input lines, so that a restore cannot
    /// lose an interrupt that was pending when the machine was saved. A
    /// save pauses the guest, and while one of them is set lets it run a
    /// moment and looks again.
    #[serde(default)]
    pub quiet: Vec<u64>,
}

/// The kind of a memory region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegionKind {
    /// Code memory (flash or code RAM).
    Rom,
    /// Read-write memory.
    Ram,
    /// Peripherals.
    Io,
    /// Nonvolatile storage (a scenario's `storage:`): RAM in QEMU, which
    /// has no flash controller for these boards, that the lab saves at a
    /// power cut and loads again at the next power-on.
    Nvm,
}

/// The board's power-fail warning: an interrupt line, as a supply
/// supervisor (an STM32's PVD, a brown-out detector) raises when the input
/// voltage drops and the capacitors still hold the board up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerFail {
    /// The external interrupt (NVIC IRQ number) the lab sets pending.
    pub irq: u32,
}

/// A named memory region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryRegion {
    /// The region's name (`sram`).
    pub name: String,
    /// Start address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// What the region holds.
    pub kind: RegionKind,
}

/// How the lab builds firmware for this board.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareLayout {
    /// Compiler flags for the CPU (`-mcpu=cortex-m3`, `-mthumb`, ...).
    pub cflags: Vec<String>,
    /// The core clock that drives SysTick, in Hz.
    pub clock_hz: u64,
    /// Which memory regions hold code, data and heap.
    pub regions: FirmwareRegions,
}

/// The board's part of a Linux boot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinuxBoot {
    /// The fixed start of the kernel command line (`console=ttyAMA0`, ...);
    /// a scenario's `args` follow it.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// The device tree, relative to a built image's `dtbs` folder. Without
    /// it QEMU generates the device tree (the `virt` machine).
    #[serde(default)]
    pub dtb: Option<String>,
    /// How the board takes a disk, for a scenario's `storage:`; without
    /// it the board has none.
    #[serde(default)]
    pub disk: Option<DiskAttach>,
}

/// How a Linux board takes a disk image: the QEMU arguments that attach
/// it, and the block device the guest sees.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskAttach {
    /// QEMU arguments, each one argument; [`DISK_FILE`] in them stands for
    /// the run's copy of the disk image (its commas doubled, as QEMU's
    /// option lists want).
    pub qemu: Vec<String>,
    /// The guest's block device for it (`/dev/vda`); the lab hands it to
    /// the image's `/init` as `lab.disk=DEVICE` on the kernel command line.
    pub device: String,
}

/// What stands for the disk image's path in [`DiskAttach::qemu`].
pub const DISK_FILE: &str = "{file}";

/// Region names for the linker script's `TEXT`, `DATA` and `HEAP` aliases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareRegions {
    /// Code and read-only data.
    pub text: String,
    /// Data, bss and the stack.
    pub data: String,
    /// The heap.
    pub heap: String,
}

impl BoardProfile {
    /// Parses a profile from YAML text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, BoardError> {
        let invalid = |message: String| BoardError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mut profile: BoardProfile =
            serde_saphyr::from_str(text).map_err(|e| invalid(e.to_string()))?;
        profile.origin = ProfileOrigin::File(path.to_owned());
        profile.yaml = text.to_owned();
        profile.validate().map_err(invalid)?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), String> {
        if self.qemu.is_none() && self.hardware.is_none() {
            return Err("a board needs a `qemu:` section, a `hardware:` section or both".into());
        }
        if self.qemu.is_some() && self.icount.is_none() {
            return Err("a QEMU board needs `icount:` (the shift for `clock: virtual`)".into());
        }
        if self.qemu.is_none() && self.snapshot.is_some() {
            return Err("`snapshot:` is for QEMU boards (snapshots are QEMU's)".into());
        }
        if self.qemu.is_some() && self.serial.is_none() {
            return Err("a QEMU board needs `serial:` (the UART its console is wired to)".into());
        }
        if let Some(serial) = &self.serial
            && serial.pins.is_some()
            && serial.uart != UartModel::Stm32f4Usart
        {
            return Err("`serial.pins` is for STM32 USARTs (`uart: stm32f4-usart`) only".into());
        }
        if let Some(serial) = &self.serial
            && serial.uart == UartModel::Pl011
            && self.firmware.is_some()
        {
            return Err(
                "the Cortex-M runtime has no driver for `uart: pl011`; use cmsdk-apb-uart or stm32f4-usart"
                    .into(),
            );
        }
        if let Some(fw) = &self.firmware {
            for name in [&fw.regions.text, &fw.regions.data, &fw.regions.heap] {
                if self.region(name).is_none() {
                    return Err(format!(
                        "firmware region `{name}` is not in the memory map; known: {}",
                        self.memory
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        if self
            .memory
            .iter()
            .filter(|r| r.kind == RegionKind::Nvm)
            .count()
            > 1
        {
            return Err("a board has at most one `kind: nvm` region (its `storage:`)".into());
        }
        if let Some(disk) = self.linux.as_ref().and_then(|l| l.disk.as_ref()) {
            if !disk.qemu.iter().any(|a| a.contains(DISK_FILE)) {
                return Err(format!(
                    "`linux.disk.qemu` never names the disk: write {DISK_FILE} where its path goes"
                ));
            }
            if !disk.device.starts_with("/dev/") || disk.device.contains(char::is_whitespace) {
                return Err("`linux.disk.device` is a device path like /dev/vda".into());
            }
        }
        if self.power_fail.is_some() && self.firmware.is_none() {
            return Err("`power_fail.irq` is for Cortex-M boards (with `firmware:`)".into());
        }
        Ok(())
    }

    /// Whether QEMU models this board.
    pub fn emulated(&self) -> bool {
        self.qemu.is_some()
    }

    /// The region with this name.
    pub fn region(&self, name: &str) -> Option<&MemoryRegion> {
        self.memory.iter().find(|r| r.name == name)
    }

    /// The kernel command line: the profile's fixed part, then `env` as
    /// `KEY=VALUE` words (the kernel hands those to init's environment),
    /// then `args`.
    pub fn kernel_cmdline(&self, env: &BTreeMap<String, String>, args: &[String]) -> String {
        let env = env.iter().map(|(k, v)| format!("{k}={v}"));
        self.linux
            .iter()
            .flat_map(|l| l.cmdline.iter().cloned())
            .chain(env)
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Compiler arguments for firmware built for this board: the CPU flags
    /// plus `LAB_CPU_HZ`, `LAB_UART_BASE` (or `LAB_CONSOLE_RTT` for a board
    /// without a UART console) and `LAB_BOARD` defines; an STM32 USART adds
    /// `LAB_UART_STM32F4`, `LAB_UART_BAUD` and its pins.
    pub fn firmware_cflags(&self) -> Option<Vec<String>> {
        let fw = self.firmware.as_ref()?;
        let mut flags = fw.cflags.clone();
        flags.push(format!("-DLAB_CPU_HZ={}", fw.clock_hz));
        match &self.serial {
            Some(serial) => {
                flags.push(format!("-DLAB_UART_BASE={:#x}", serial.base));
                if serial.uart == UartModel::Stm32f4Usart {
                    flags.extend(self.stm32_uart_flags(serial));
                }
            }
            None => flags.push("-DLAB_CONSOLE_RTT=1".to_owned()),
        }
        if let Some(nvm) = self.nonvolatile() {
            flags.push(format!("-DLAB_NVM_BASE={:#x}", nvm.base));
            flags.push(format!("-DLAB_NVM_SIZE={:#x}", nvm.size));
        }
        if let Some(power_fail) = self.power_fail {
            flags.push(format!("-DLAB_POWER_FAIL_IRQ={}", power_fail.irq));
        }
        flags.push(format!("-DLAB_BOARD=\"{}\"", self.name));
        Some(flags)
    }

    /// The STM32 USART driver's defines: `LAB_UART_STM32F4`, the baud rate
    /// (the hardware console's, else 115200) and the pins when given.
    fn stm32_uart_flags(&self, serial: &Serial) -> Vec<String> {
        let baud = match self.hardware.as_ref().map(|h| &h.console) {
            Some(HardwareConsole::Uart { baud, .. }) => *baud,
            _ => DEFAULT_BAUD,
        };
        let mut flags = vec![
            "-DLAB_UART_STM32F4=1".to_owned(),
            format!("-DLAB_UART_BAUD={baud}"),
        ];
        if let Some(pins) = &serial.pins {
            flags.extend([
                format!("-DLAB_UART_TX_PORT={}", pins.tx.port),
                format!("-DLAB_UART_TX_PIN={}", pins.tx.pin),
                format!("-DLAB_UART_RX_PORT={}", pins.rx.port),
                format!("-DLAB_UART_RX_PIN={}", pins.rx.pin),
                format!("-DLAB_UART_AF={}", pins.af),
            ]);
        }
        flags
    }

    /// The region that holds a scenario's `storage:` on a bare-metal board.
    pub fn nonvolatile(&self) -> Option<&MemoryRegion> {
        self.memory.iter().find(|r| r.kind == RegionKind::Nvm)
    }

    /// The `memory.ld` fragment for firmware: a `MEMORY` block from the
    /// memory map and `TEXT`/`DATA`/`HEAP` region aliases.
    pub fn memory_ld(&self) -> Option<String> {
        let fw = self.firmware.as_ref()?;
        let mut out = String::from("/* Generated by lab from the board profile. */\nMEMORY\n{\n");
        for r in self.memory.iter().filter(|r| r.kind != RegionKind::Io) {
            let attrs = if r.kind == RegionKind::Rom {
                "rx"
            } else {
                "rwx"
            };
            let _ = writeln!(
                out,
                "  {} ({attrs}) : ORIGIN = {:#010x}, LENGTH = {:#010x}",
                r.name.to_uppercase(),
                r.base,
                r.size
            );
        }
        out.push_str("}\n");
        for (alias, region) in [
            ("TEXT", &fw.regions.text),
            ("DATA", &fw.regions.data),
            ("HEAP", &fw.regions.heap),
        ] {
            let _ = writeln!(out, "REGION_ALIAS(\"{alias}\", {});", region.to_uppercase());
        }
        Some(out)
    }
}

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_boards.rs"));
}

/// The board profiles of a lab, by name: a profile's name is its file's
/// name. A profile is read and checked the first time it is asked for, so
/// that a run pays for the boards it uses, not for every board there is.
#[derive(Debug, Clone)]
pub struct BoardCatalog {
    boards: LazyFiles<BoardProfile, ProfileOrigin>,
}

impl BoardCatalog {
    /// The boards built into the lab, from the `qemu-configs/` it was built
    /// from.
    pub fn builtin() -> Self {
        let mut boards = LazyFiles::default();
        for (name, _) in builtin::BUILTIN_BOARDS {
            boards.insert((*name).to_owned(), ProfileOrigin::BuiltIn);
        }
        BoardCatalog { boards }
    }

    /// Adds the `*.yaml` profiles in `dir`, reading none of them yet; each
    /// takes the place of a board of the same name (a built-in one).
    pub fn with_folder(mut self, dir: &Path) -> Result<Self, BoardError> {
        let read_err = |source| BoardError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        for path in std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            if let Some(first) = seen.get(&name) {
                let (first, second) = if first < &path {
                    (first.clone(), path)
                } else {
                    (path, first.clone())
                };
                return Err(BoardError::Duplicate {
                    name,
                    first,
                    second,
                });
            }
            seen.insert(name.clone(), path.clone());
            self.boards.insert(name, ProfileOrigin::File(path));
        }
        Ok(self)
    }

    /// The profile with this name, read on first use; `None` when there is
    /// no such board.
    pub fn get(&self, name: &str) -> Result<Option<&BoardProfile>, BoardError> {
        self.boards.get(name, |origin| read_profile(origin, name))
    }

    /// Where the board `name` comes from; `None` when there is no such board.
    pub fn origin(&self, name: &str) -> Option<&ProfileOrigin> {
        self.boards.source(name)
    }

    /// Every profile, sorted by name; the first broken one is an error.
    pub fn all(&self) -> Result<Vec<&BoardProfile>, BoardError> {
        self.boards.all(|name, origin| read_profile(origin, name))
    }

    /// Every board name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.boards.names()
    }
}

/// Reads and checks the profile `name` from `origin`; a profile must call
/// itself by its file's name.
fn read_profile(origin: &ProfileOrigin, name: &str) -> Result<BoardProfile, BoardError> {
    let (path, text) = match origin {
        ProfileOrigin::BuiltIn => {
            let (_, text) = builtin::BUILTIN_BOARDS
                .iter()
                .find(|(builtin, _)| *builtin == name)
                .expect("a built-in board is listed under its own name");
            let label = Path::new("(built in)")
                .join("qemu-configs")
                .join(format!("{name}.yaml"));
            (label, Cow::Borrowed(*text))
        }
        ProfileOrigin::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| BoardError::Read {
                path: path.clone(),
                source,
            })?;
            (path.clone(), Cow::Owned(text))
        }
    };
    let mut profile = BoardProfile::parse(&path, &text)?;
    profile.origin = origin.clone();
    if profile.name != name {
        return Err(BoardError::Invalid {
            path,
            message: format!(
                "the profile calls itself `{}`, but a profile's `name` is its file's name: \
                 write `name: {name}` or rename the file",
                profile.name
            ),
        });
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_boards() -> BoardCatalog {
        BoardCatalog::builtin()
    }

    #[test]
    fn psram_sits_where_each_board_has_it() {
        let boards = repo_boards();
        let base = |b: &str| {
            boards
                .get(b)
                .unwrap()
                .unwrap()
                .region("psram")
                .unwrap()
                .base
        };
        assert_eq!(base("mps2-an385"), 0x2100_0000);
        assert_eq!(base("mps2-an386"), 0x2100_0000);
        assert_eq!(base("mps2-an500"), 0x6000_0000);
    }

    #[test]
    fn memory_ld_aliases_the_firmware_regions() {
        let boards = repo_boards();
        let ld = boards
            .get("mps2-an500")
            .unwrap()
            .unwrap()
            .memory_ld()
            .unwrap();
        assert!(ld.contains("PSRAM (rwx) : ORIGIN = 0x60000000, LENGTH = 0x00ff0000"));
        assert!(ld.contains("NVM (rwx) : ORIGIN = 0x60ff0000, LENGTH = 0x00010000"));
        assert!(ld.contains("REGION_ALIAS(\"HEAP\", PSRAM);"));
        assert!(!ld.contains("PERIPHERALS"), "io regions stay out of MEMORY");
    }

    #[test]
    fn linux_boards_put_their_cmdline_before_the_scenario_args() {
        let boards = repo_boards();
        let pi = boards.get("raspi3b").unwrap().unwrap();
        assert_eq!(
            pi.kernel_cmdline(&BTreeMap::new(), &["lab.run=/bin/hello".into()]),
            "console=ttyAMA0 rdinit=/init quiet lab.run=/bin/hello"
        );
        let env = BTreeMap::from([("GOGC".to_owned(), "50".to_owned())]);
        assert_eq!(
            pi.kernel_cmdline(&env, &["--".into(), "x".into()]),
            "console=ttyAMA0 rdinit=/init quiet GOGC=50 -- x",
            "the environment goes before the program's arguments"
        );
        let dtb = pi.linux.as_ref().and_then(|l| l.dtb.as_deref());
        assert_eq!(dtb, Some("broadcom/bcm2837-rpi-3-b.dtb"));
        let virt = boards.get("virt-a53").unwrap().unwrap();
        assert!(
            virt.linux.as_ref().unwrap().dtb.is_none(),
            "QEMU makes virt's"
        );
        assert!(virt.firmware.is_none() && virt.memory_ld().is_none());
        let m3 = boards.get("mps2-an385").unwrap().unwrap();
        assert_eq!(
            m3.kernel_cmdline(&BTreeMap::new(), &["a".into(), "b".into()]),
            "a b"
        );
    }

    #[test]
    fn an_stm32_usart_passes_its_driver_baud_and_pins_to_firmware() {
        let boards = repo_boards();
        let nd = boards.get("netduinoplus2").unwrap().unwrap();
        assert!(nd.emulated() && nd.hardware.is_some(), "both worlds");
        let flags = nd.firmware_cflags().unwrap().join(" ");
        assert!(
            flags.ends_with(
                "-DLAB_CPU_HZ=168000000 -DLAB_UART_BASE=0x40011400 -DLAB_UART_STM32F4=1 -DLAB_UART_BAUD=115200 -DLAB_UART_TX_PORT=2 -DLAB_UART_TX_PIN=6 -DLAB_UART_RX_PORT=2 -DLAB_UART_RX_PIN=7 -DLAB_UART_AF=8 -DLAB_BOARD=\"netduinoplus2\""
            ),
            "{flags}"
        );
        let m3 = boards
            .get("mps2-an385")
            .unwrap()
            .unwrap()
            .firmware_cflags()
            .unwrap();
        assert!(
            !m3.iter().any(|f| f.contains("STM32") || f.contains("BAUD")),
            "the CMSDK build is unchanged: {m3:?}"
        );
    }

    #[test]
    fn gpio_pins_are_checked() {
        let pin = |s: &str| GpioPin::try_from(s.to_owned());
        assert_eq!(pin("PC6"), Ok(GpioPin { port: 2, pin: 6 }));
        assert_eq!(pin("PA15"), Ok(GpioPin { port: 0, pin: 15 }));
        for bad in ["PC16", "C6", "PZ1", "P", "PC", "pc6"] {
            assert!(pin(bad).unwrap_err().contains("write it like PC6"), "{bad}");
        }
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs/netduinoplus2.yaml"),
        )
        .unwrap();
        let err = BoardProfile::parse(Path::new("x.yaml"), &text.replace("tx: PC6", "tx: PC66"))
            .unwrap_err();
        assert!(
            err.to_string().contains("`PC66` is not a GPIO pin"),
            "{err}"
        );
        let err = BoardProfile::parse(
            Path::new("x.yaml"),
            &text.replace("uart: stm32f4-usart", "uart: cmsdk-apb-uart"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`serial.pins` is for STM32"),
            "{err}"
        );
    }

    #[test]
    fn raspi3b_saves_snapshots_only_with_no_interrupt_pending() {
        let boards = repo_boards();
        let quiet = &boards
            .get("raspi3b")
            .unwrap()
            .unwrap()
            .snapshot
            .as_ref()
            .unwrap()
            .quiet;
        // IRQSRC, then FIQSRC, of cores 0 to 3 in bcm2836-control.
        let want: Vec<u64> = (0..8).map(|i| 0x4000_0060 + 4 * i).collect();
        assert_eq!(quiet, &want);
        assert!(boards.get("virt-a53").unwrap().unwrap().snapshot.is_none());
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs/raspi3b.yaml"),
        )
        .unwrap();
        let err = BoardProfile::parse(Path::new("x.yaml"), &text.replace("quiet:", "quite:"))
            .unwrap_err();
        assert!(err.to_string().contains("quite"), "{err}");
        let probe_only = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs/nucleo-f767zi.yaml"),
        )
        .unwrap()
            + "snapshot: {quiet: [0x40000060]}\n";
        let err = BoardProfile::parse(Path::new("x.yaml"), &probe_only).unwrap_err();
        assert!(
            err.to_string().contains("`snapshot:` is for QEMU boards"),
            "{err}"
        );
    }

    #[test]
    fn linux_boards_say_how_they_take_a_disk() {
        let boards = repo_boards();
        let disk = |b: &str| {
            let board = boards.get(b).unwrap().unwrap();
            board.linux.as_ref().unwrap().disk.clone().unwrap()
        };
        assert_eq!(disk("virt-a53").device, "/dev/vda");
        assert_eq!(disk("raspi3b").device, "/dev/mmcblk0");
        assert!(boards.get("mps2-an385").unwrap().unwrap().linux.is_none());
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs/raspi3b.yaml"),
        )
        .unwrap();
        let err = BoardProfile::parse(Path::new("x.yaml"), &text.replace("file={file}", "file=x"))
            .unwrap_err();
        assert!(err.to_string().contains("never names the disk"), "{err}");
        let err = BoardProfile::parse(Path::new("x.yaml"), &text.replace("/dev/mmcblk0", "sd0"))
            .unwrap_err();
        assert!(err.to_string().contains("a device path"), "{err}");
    }

    #[test]
    fn unknown_region_is_rejected() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs/mps2-an385.yaml"),
        )
        .unwrap()
        .replace("heap: psram", "heap: dram");
        let err = BoardProfile::parse(Path::new("x.yaml"), &text).unwrap_err();
        assert!(err.to_string().contains("firmware region `dram`"), "{err}");
    }

    #[test]
    fn a_profile_is_read_when_asked_for_and_must_bear_its_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let good = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu-configs/mps2-an385.yaml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "name: [").unwrap();
        std::fs::write(dir.path().join("renamed.yaml"), &good).unwrap();
        let boards = BoardCatalog::builtin()
            .with_folder(dir.path())
            .expect("listing reads no profile");
        assert!(boards.names().contains(&"broken"));
        assert!(boards.names().contains(&"renamed"));
        assert!(boards.get("absent").unwrap().is_none());
        let err = boards.get("broken").unwrap_err();
        assert!(err.to_string().contains("broken.yaml"), "{err}");
        let err = boards.get("renamed").unwrap_err().to_string();
        assert!(
            err.contains("calls itself `mps2-an385`") && err.contains("name: renamed"),
            "{err}"
        );
        assert!(boards.all().is_err(), "listing them all reads them all");
    }

    #[test]
    fn the_lab_knows_its_own_boards_and_a_workspace_overrides_them() {
        let builtin = BoardCatalog::builtin();
        let names = builtin.names();
        for board in ["mps2-an385", "netduinoplus2", "raspi3b", "virt-a53"] {
            assert!(names.contains(&board), "{names:?}");
        }
        for profile in builtin.all().expect("every built-in profile is valid") {
            assert_eq!(profile.origin, ProfileOrigin::BuiltIn);
            assert!(profile.yaml.contains(&format!("name: {}", profile.name)));
        }

        let dir = tempfile::tempdir().unwrap();
        let own = builtin
            .get("mps2-an385")
            .unwrap()
            .unwrap()
            .yaml
            .replace("MPS2", "MPS2 (a workspace's own)");
        let path = dir.path().join("mps2-an385.yaml");
        std::fs::write(&path, &own).unwrap();
        let boards = BoardCatalog::builtin().with_folder(dir.path()).unwrap();
        assert_eq!(boards.names(), names, "an override adds no board");
        let board = boards.get("mps2-an385").unwrap().unwrap();
        assert_eq!(board.origin, ProfileOrigin::File(path.clone()));
        assert_eq!(board.yaml, own);
        assert_eq!(
            boards.origin("mps2-an385"),
            Some(&ProfileOrigin::File(path))
        );
        assert_eq!(boards.origin("raspi3b"), Some(&ProfileOrigin::BuiltIn));

        std::fs::write(dir.path().join("mps2-an385.yml"), &own).unwrap();
        let err = BoardCatalog::builtin().with_folder(dir.path()).unwrap_err();
        assert!(matches!(err, BoardError::Duplicate { .. }), "{err}");
    }
}
