#!/usr/bin/env python3
"""Compiles this package with the escape analysis's reasons
(`go build -gcflags='-m -m'`, its environment from the caller) and writes
what it decided about escape.go's parseSensor functions.

FULL gets every diagnostic the compiler gave for escape.go. SUMMARY gets one
line per parseSensor function:

    func=parseSensorPtr heap=1: escape.go:66:7: &Reading{} escapes to heap

heap=1 when the compiler put something of that function on the heap
("escapes to heap", "moved to heap"), else 0; after the colon, the
compiler's verdicts for that function ("... escapes to heap", "moved to
heap: ...", "... does not escape"), without their flow explanations.

usage: escape-summary.py SUMMARY FULL GO
"""
import os
import re
import subprocess
import sys
from pathlib import Path

SOURCE = "escape.go"
FUNCTIONS = ("parseSensorPtr", "parseSensorValue")
VERDICT = re.compile(r"escapes to heap$|^moved to heap: |does not escape$")
HEAP = re.compile(r"escapes to heap$|^moved to heap: ")


def functions(source):
    """(first line, name) of each top-level function in source, in order."""
    return [(n, m.group(1)) for n, line in enumerate(source.splitlines(), 1)
            if (m := re.match(r"func (\w+)\(", line))]


def enclosing(starts, line):
    """The name of the function whose body holds source line `line`."""
    name = None
    for first, function in starts:
        if first > line:
            break
        name = function
    return name


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.splitlines()[-1])
    summary, full, go = sys.argv[1:]
    build = subprocess.run(
        [go, "build", "-trimpath", "-buildvcs=false", "-gcflags=-m -m", "-o", os.devnull, "."],
        capture_output=True, text=True)
    if build.returncode != 0:
        sys.exit(f"escape-summary: go build failed:\n{build.stderr}")
    # "path/escape.go:LINE:COL: message"; -trimpath makes the path the
    # module's, so match the file name only.
    diagnostics = [m for line in build.stderr.splitlines()
                   if (m := re.match(r"(?:.*/)?(escape\.go):(\d+):(\d+): (.*)$", line))]
    if not diagnostics:
        sys.exit(f"escape-summary: no diagnostics for {SOURCE}:\n{build.stderr}")
    Path(full).write_text("".join(f"{m.group(0)}\n" for m in diagnostics))

    starts = functions(Path(SOURCE).read_text())
    verdicts = {name: [] for name in FUNCTIONS}
    for m in diagnostics:
        message = m.group(4)
        function = enclosing(starts, int(m.group(2)))
        if function in verdicts and VERDICT.search(message):
            verdicts[function].append(f"{SOURCE}:{m.group(2)}:{m.group(3)}: {message}")
    lines = []
    for name, found in verdicts.items():
        if not found:
            sys.exit(f"escape-summary: the compiler said nothing about {name}'s allocations")
        heap = int(any(HEAP.search(v.split(": ", 1)[1]) for v in found))
        lines.append(f"func={name} heap={heap}: {'; '.join(found)}\n")
    Path(summary).write_text("".join(lines))


if __name__ == "__main__":
    main()
