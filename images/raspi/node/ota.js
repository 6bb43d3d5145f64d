// The Node.js side of the OTA power-loss experiment (issue 14): an update
// the way a typical JavaScript deployment does it, in place and hot. The
// Go side (images/raspi/go/ota.go) is an A/B update; both print the lines
// of images/cortex-m/ota, so one campaign script sorts them.
//
// The application is a module on the disk, /data/app/app.js (a real
// module exporting its version and a start function, about 200 KiB; see
// ota-app.js.in). At start this program require()s it: if that throws (an
// empty or torn file, a syntax error) or the module is not whole, it prints
// "BRICKED reason=R detail=D" and exits 1; else it starts it and prints
// "READY version=V t_ms=T t_us=U".
//
// Then it reads lines on stdin. `UPDATE V`: build version V's source text
// (the template with V's table), print "UPDATE writing bytes=N t_us=U",
// fs.writeFile it over /data/app/app.js with no fsync (what the page cache
// holds reaches the disk when the kernel writes it back, ext4 commits its
// journal every 5 s), then in the callback drop it from require.cache,
// require it again (the hot swap) and print "UPDATE done version=V t_us=U"
// and "READY version=V ...". A failed write or swap prints "UPDATE failed
// version=V reason=R".
//
// While it runs it appends a telemetry line to /data/telemetry.log every
// second, without fsync (telemetry): as on a device that logs, the disk
// always has unsynced writes, so an ext4 journal transaction is usually
// open when an update begins. (The Go side does the same.)
//
// Run as `node /app/ota.js` (LAB_OTA_APP names another module file, to try
// it on a host).
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const APP = path.resolve(process.env.LAB_OTA_APP || '/data/app/app.js');
const TEMPLATE = path.join(__dirname, 'ota-app.js.in');
// The log appended to every TELEMETRY_EVERY_MS.
const TELEMETRY = path.join(path.dirname(APP), '..', 'telemetry.log');
const TELEMETRY_EVERY_MS = 1000;
// The table's rows, as in ota-app.py.
const ROWS = 2600;

const nowUs = () => process.hrtime.bigint() / 1000n;

function print(line) {
  process.stdout.write(line + '\n');
}

// Version `version`'s module text: what ota-app.py writes.
function source(version) {
  let table = '';
  for (let i = 0; i < ROWS; i++) {
    const hex = crypto.createHash('sha256').update(`LABAPP ${version} ${i}`).digest('hex');
    table += `  [${i}, '${hex}'],\n`;
  }
  const template = fs.readFileSync(TEMPLATE, 'utf8');
  return template.replace(/@VERSION@/g, String(version)).replace('@TABLE@', table);
}

// Loads the module afresh and starts it; returns the version that runs or
// throws with a short reason in `reason`.
function load() {
  delete require.cache[APP];
  let app;
  try {
    app = require(APP);
  } catch (e) {
    e.reason = e.code === 'MODULE_NOT_FOUND' ? 'missing' : `require-${e.name}`;
    throw e;
  }
  if (!app || !Number.isInteger(app.version) || typeof app.start !== 'function') {
    const e = new Error(`${APP} exports no version and start`);
    e.reason = 'no-version';
    throw e;
  }
  let started;
  try {
    started = app.start();
  } catch (e) {
    e.reason = 'start';
    throw e;
  }
  return started.version;
}

function ready(version) {
  const t = nowUs();
  print(`READY version=${version} t_ms=${t / 1000n} t_us=${t}`);
}

function detail(e) {
  return String(e.message || e).split('\n')[0];
}

let version;
try {
  version = load();
} catch (e) {
  print(`BRICKED reason=${e.reason || 'load'} detail=${detail(e)}`);
  process.exit(1);
}
ready(version);

// "t_us=T version=V seq=N", appended without fsync; a failed write is
// dropped, as a logger would.
let seq = 0;
setInterval(() => {
  fs.appendFile(TELEMETRY, `t_us=${nowUs()} version=${version} seq=${seq++}\n`, () => {});
}, TELEMETRY_EVERY_MS).unref();

let busy = false;

function update(v) {
  if (busy) {
    print(`UPDATE failed version=${v} reason=busy`);
    return;
  }
  busy = true;
  const text = source(v);
  print(`UPDATE writing bytes=${Buffer.byteLength(text)} t_us=${nowUs()}`);
  fs.writeFile(APP, text, (err) => {
    busy = false;
    if (err) {
      print(`UPDATE failed version=${v} reason=write-${err.code}`);
      return;
    }
    try {
      version = load();
    } catch (e) {
      print(`UPDATE failed version=${v} reason=${e.reason || 'load'} detail=${detail(e)}`);
      return;
    }
    print(`UPDATE done version=${version} t_us=${nowUs()}`);
    ready(version);
  });
}

function command(line) {
  const fields = line.trim().split(/\s+/).filter(Boolean);
  if (fields.length === 0) return;
  if (fields[0] === 'UPDATE' && fields.length === 2 && /^\d+$/.test(fields[1]) && Number(fields[1]) >= 1) {
    update(Number(fields[1]));
  } else if (fields[0] === 'STATUS') {
    print(`STATUS version=${version}`);
  } else {
    print(`ERR unknown command: ${line.trim()}`);
  }
}

let rest = '';
process.stdin.setEncoding('latin1');
process.stdin.on('data', (chunk) => {
  const lines = (rest + chunk).split('\n');
  rest = lines.pop();
  for (const line of lines) command(line);
});
process.stdin.on('end', () => {
  if (rest) command(rest);
});
