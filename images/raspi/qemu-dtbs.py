#!/usr/bin/env python3
"""Fits Debian's Raspberry Pi device trees to the machines QEMU 10 models.

Run by `lab images build` after build-linux-image.py (see an image.yaml next
to this file), never by a shell: `qemu-dtbs.py OUT/dtbs/broadcom`. It edits,
in place, with fdtput from Debian's device-tree-compiler, the device trees
of the boards the lab runs (each edit is why QEMU differs from the board):

  Serial input. The Pi 3 and Zero 2 W trees give the PL011
  (/soc/serial@7e201000) to a Bluetooth child node, so Linux binds the UART
  to the Bluetooth serdev driver and the console never reads what the lab
  types. The node goes.

  The SD card across a snapshot restore. QEMU's bcm2835_gpio moves the card
  from the SDHCI (where the machine creates it) to the SD host controller
  when Linux muxes GPIO 48-53 to the latter, as these trees ask; its
  migration state keeps the mux but not the move, so a restored machine has
  the card on the SDHCI while Linux reads the SD host, and every access
  fails. The SD host is turned off and the SDHCI loses its Wi-Fi child and
  power sequence (a pin on the firmware's GPIO expander, which QEMU lacks):
  Linux reads the card through the SDHCI (module sdhci-iproc), where it
  stays. docs/qemu-notes.md has the details.

  The Zero 2 W on raspi3ap. QEMU's raspi3ap does not map the power
  manager's ASB registers (0x3f00a000), which the Pi 3 B's raspi3b does:
  bcm2835-power's probe reads them and takes a synchronous external abort,
  and the kernel panics before /init ("Attempted to kill init!
  exitcode=0x0000000b"). Without the "asb" region the power manager stays a
  watchdog and reset controller, and no power-domain driver binds.
"""

import subprocess
import sys
from pathlib import Path

# The trees to fit, with the edits each takes beyond the common ones.
BOARDS = {
    "bcm2837-rpi-3-b.dtb": [],
    "bcm2837-rpi-zero-2-w.dtb": [
        ["-t", "x", "/soc/watchdog@7e100000", "reg", "7e100000", "114"],
        ["-t", "s", "/soc/watchdog@7e100000", "reg-names", "pm"],
    ],
}

# Edits every tree above takes: serial input and the SD card.
COMMON = [
    ["-r", "/soc/serial@7e201000/bluetooth"],
    ["-t", "s", "/soc/mmc@7e202000", "status", "disabled"],
    ["-r", "/soc/mmc@7e300000/wifi@1"],
    ["-d", "/soc/mmc@7e300000", "mmc-pwrseq"],
]


def fdtput(dtb: Path, edit: list[str]) -> None:
    """Runs one fdtput edit on dtb: the mode flags, then the file, then the rest."""
    flags = edit[:2] if edit[0] == "-t" else edit[:1]
    rest = edit[len(flags):]
    done = subprocess.run(["fdtput", *flags, str(dtb), *rest], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"qemu-dtbs.py: fdtput {' '.join(edit)} on {dtb}: {done.stderr.strip()}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: qemu-dtbs.py DTB_FOLDER")
    folder = Path(sys.argv[1])
    for name, own in BOARDS.items():
        dtb = folder / name
        if not dtb.is_file():
            sys.exit(f"qemu-dtbs.py: {dtb} is missing: build-linux-image.py --dtbs broadcom copies it")
        for edit in COMMON + own:
            fdtput(dtb, edit)


if __name__ == "__main__":
    main()
