#!/usr/bin/env bash
# The lab's overhead: wall time of `lab run` booting hello to its READY
# marker, against the bare QEMU command for the same firmware and marker,
# measured side by side by hyperfine (installed from Debian if missing).
# Usage: bench/startup.sh [RUNS]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release --locked -q
lab=target/release/lab
$lab images build cortex-m/hello --board mps2-an385 >/dev/null
elf=build/images/mps2-an385/cortex-m/hello/hello.elf
qemu="qemu-system-arm -M mps2-an385 -cpu cortex-m3 -m 16M -nodefaults -display none \
-monitor none -serial stdio -semihosting-config enable=on,target=native -kernel $elf"
hyperfine --warmup 3 --runs "$runs" -N --export-json target/bench-startup.json \
  -n lab "$lab run -j 1 scenarios/bench/hello-to-marker.yaml" \
  -n qemu "sh -c '$qemu 2>/dev/null | grep -q -m1 READY'"
python3 - <<'PY'
import json
r = {x["command"]: x for x in json.load(open("target/bench-startup.json"))["results"]}
lab, qemu = r["lab"]["median"], r["qemu"]["median"]
print(f"median: lab {lab*1e3:.1f} ms, bare qemu {qemu*1e3:.1f} ms, ratio {lab/qemu:.2f}")
PY
