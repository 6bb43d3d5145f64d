// The Node.js side of the peripheral-access experiment (issue 15, 4.4); the
// Go side is `app devmem N` (images/raspi/go/devmem.go), the same N writes
// to the same GPIO pin through an mmap of /dev/mem.
//
//   node /app/gpio.js N
//
// Node has no mmap without a native addon, and Debian's Node.js ships none
// for GPIO. The nearest path it provides is the kernel's sysfs GPIO
// interface (CONFIG_GPIO_SYSFS, on in Debian's kernel): export the pin,
// make it an output and write "1" or "0" to its value file, one pwrite
// system call per access, as the `onoff` npm package does. The other
// candidate, a write to /dev/mem at the register's offset (fs.writeSync
// with a position), fails on arm64: the kernel's /dev/mem read and write
// accept only system RAM (valid_phys_addr_range), never device registers.
//
// The pin is the one devmem.go drives: BCM2835 pin 17 on raspi3b and
// raspi3ap (gpiochip "pinctrl-bcm2835"), PL061 pin 0 on virt-a53 (gpiochip
// "9030000.pl061"). Prints "NODE start" and "NODE ready mode=gpio" as app.js
// does; with LAB_HOLD=1 waits for a line on stdin after the ready line (see
// app.js's hold); then makes N writes, alternately high and low, timed on
// process.hrtime (CLOCK_MONOTONIC: guest time under clock: virtual), and
// prints "NODE gpio path=sysfs chip=<label> pin=<n> writes=<N>
// total_us=<µs> ns_per_access=<ns> t_us=<µs>".
'use strict';
const startUs = process.hrtime.bigint() / 1000n;
const nowUs = () => process.hrtime.bigint() / 1000n;
const fs = require('fs');

// The gpiochips the boards have, and the pin driven on each.
const PINS = { 'pinctrl-bcm2835': 17, '9030000.pl061': 0 };

function print(line) {
  process.stdout.write(line + '\n');
}

// Waits for the lab when LAB_HOLD=1 and this is the first start, as app.js's
// hold: fd 0 read one byte at a time up to the first newline.
function hold() {
  const restarts = process.env.LAB_RESTARTS;
  if (process.env.LAB_HOLD !== '1' || (restarts !== undefined && restarts !== '' && restarts !== '0')) return;
  const byte = Buffer.alloc(1);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, byte, 0, 1, null);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      break;
    }
    if (n === 0 || byte[0] === 0x0a) break;
  }
  print(`NODE resumed t_us=${nowUs()}`);
}

// Exports the board's pin through sysfs as an output and returns its chip's
// label, the pin and its value file, open for writing.
function exportPin() {
  const root = '/sys/class/gpio';
  for (const chip of fs.readdirSync(root).filter((name) => name.startsWith('gpiochip'))) {
    const label = fs.readFileSync(`${root}/${chip}/label`, 'latin1').trim();
    if (!(label in PINS)) continue;
    const pin = PINS[label];
    const gpio = Number(fs.readFileSync(`${root}/${chip}/base`, 'latin1')) + pin;
    if (!fs.existsSync(`${root}/gpio${gpio}`)) fs.writeFileSync(`${root}/export`, String(gpio));
    fs.writeFileSync(`${root}/gpio${gpio}/direction`, 'out');
    return { label, pin, fd: fs.openSync(`${root}/gpio${gpio}/value`, 'r+') };
  }
  throw new Error(`no gpiochip labelled ${Object.keys(PINS).join(' or ')} in ${root}`);
}

function main() {
  const writes = Number(process.argv[2]);
  if (!Number.isInteger(writes) || writes < 1) {
    process.stderr.write('usage: node /app/gpio.js N\n');
    process.exit(64);
  }
  print(`NODE start t_us=${startUs}`);
  const t = nowUs();
  print(`NODE ready mode=gpio t_ms=${t / 1000n} t_us=${t}`);
  hold();
  const { label, pin, fd } = exportPin();
  const HIGH = Buffer.from('1');
  const LOW = Buffer.from('0');

  // What is measured: the writes alone, one pwrite to the value file each.
  const begin = process.hrtime.bigint();
  for (let i = 0; i < writes; i++) {
    fs.writeSync(fd, i % 2 === 0 ? HIGH : LOW, 0, 1, 0);
  }
  const elapsed = process.hrtime.bigint() - begin;

  // The writes reached the pin: it reads back as driven.
  const level = Buffer.alloc(1);
  fs.writeSync(fd, HIGH, 0, 1, 0);
  fs.readSync(fd, level, 0, 1, 0);
  const high = level[0] === 0x31;
  fs.writeSync(fd, LOW, 0, 1, 0);
  fs.readSync(fd, level, 0, 1, 0);
  if (!high || level[0] !== 0x30) {
    process.stderr.write(`gpio: pin ${pin} of ${label} does not follow its writes\n`);
    process.exit(1);
  }
  const n = BigInt(writes);
  print(`NODE gpio path=sysfs chip=${label} pin=${pin} writes=${writes} ` +
    `total_us=${elapsed / 1000n} ns_per_access=${(elapsed + n / 2n) / n} t_us=${nowUs()}`);
}

main();
