#!/usr/bin/env python3
"""Writes version V of the OTA experiment's application image into FOLDER
as FOLDER/app and FOLDER/app.sha256 (its SHA-256 in hex and a newline):
the bytes ota.go's payload() generates, so the disk's version 1 is the
image the Go program would write for `UPDATE 1`.

The image is 4 MiB: the line "LABAPP version=V\\n", then SHA-256("LABAPP V 0"),
SHA-256("LABAPP V 1"), ... (the counter in decimal), cut to the size.

usage: ota-payload.py VERSION FOLDER
"""
import hashlib
import sys
from pathlib import Path

PAYLOAD_SIZE = 4 << 20


def payload(version):
    out = bytearray(f"LABAPP version={version}\n".encode())
    i = 0
    while len(out) < PAYLOAD_SIZE:
        out += hashlib.sha256(f"LABAPP {version} {i}".encode()).digest()
        i += 1
    return bytes(out[:PAYLOAD_SIZE])


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__.splitlines()[-1])
    version, folder = int(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    image = payload(version)
    (folder / "app").write_bytes(image)
    (folder / "app.sha256").write_text(hashlib.sha256(image).hexdigest() + "\n")
    print(f"{folder}/app: version {version}, {len(image)} bytes")


if __name__ == "__main__":
    main()
