#!/usr/bin/env python3
"""Writes version V of the OTA experiment's application module to FILE: the
template ota-app.js.in (beside this script) with @VERSION@ and @TABLE@
replaced, the same text ota.js's source() builds, so the disk's version 1
is the file Node would write for `UPDATE 1`.

The table has ROWS rows "  [i, 'HEX'],", HEX being SHA-256("LABAPP V i"):
about 200 KiB, a realistic bundle's size.

usage: ota-app.py VERSION FILE
"""
import hashlib
import sys
from pathlib import Path

ROWS = 2600


def source(version):
    template = (Path(__file__).parent / "ota-app.js.in").read_text()
    table = "".join(
        f"  [{i}, '{hashlib.sha256(f'LABAPP {version} {i}'.encode()).hexdigest()}'],\n"
        for i in range(ROWS))
    return template.replace("@VERSION@", str(version)).replace("@TABLE@", table)


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__.splitlines()[-1])
    version, out = int(sys.argv[1]), Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    text = source(version).encode()
    out.write_bytes(text)
    print(f"{out}: version {version}, {len(text)} bytes")


if __name__ == "__main__":
    main()
