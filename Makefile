# lab: the two entry points a user needs are `make demo` and `make test`.

CARGO ?= cargo
LAB := target/release/lab
# The default scenario suite that `make demo` runs.
DEMO_SUITE := scenarios/hello.yaml scenarios/echo.yaml scenarios/faults/ scenarios/debug-attach.yaml scenarios/netduinoplus2/ scenarios/cortex-m/ scenarios/raspi/ scenarios/scripted/

.PHONY: demo test deps build images check-style clean

## Install system dependencies if missing, build everything, run the default suite.
demo: deps build images
	$(LAB) run -j 2 $(DEMO_SUITE) --json target/demo-report.json --junit target/demo-junit.xml

## Install system dependencies if missing, then run every test and style check.
test: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

## System packages from Debian (QEMU 10 from backports where available).
deps:
	@scripts/install-deps.sh

build:
	$(CARGO) build --release --locked

images: build
	$(LAB) images build

clean:
	$(CARGO) clean
	rm -rf build
