// The Node.js side of the Go against Node.js experiments: the same program
// as images/raspi/go (main.go, work.go), in plain JavaScript with no
// dependencies. One mode per experiment, chosen by the first argument.
//
// Every mode first prints "NODE start t_us=<µs>", the time at which the first
// line of this script ran, then "NODE ready mode=<mode> t_ms=<ms> t_us=<µs>"
// once that first output is written. All times are CLOCK_MONOTONIC in µs since the kernel
// started: process.hrtime reads it (libuv's uv_hrtime).
//
// With LAB_HOLD=1 in the environment, the gc, listeners, crash, footprint,
// leak and leakclean modes wait after the ready line, on the first start only, until
// a line arrives on stdin, print "NODE resumed t_us=<µs>" and only then do
// their work: the lab saves a snapshot while the program waits (warm-up:),
// and every run restored from it sends the line.
'use strict';
const startUs = process.hrtime.bigint() / 1000n;
// The same instant in ms since performance.timeOrigin, Node's own start
// (on the same monotonic clock), for the start's split in phases().
const startSinceOriginMs = performance.now();
const nowUs = () => process.hrtime.bigint() / 1000n;
const fs = require('fs');

// The GC workload, the same as in work.go.
const ROUNDS = 60;
const PER_ROUND = 5000;
const WINDOW = 8;

function print(line) {
  process.stdout.write(line + '\n');
}

// Prints the ready line (the first output has been written) and returns its time.
function ready(mode) {
  const t = nowUs();
  print(`NODE ready mode=${mode} t_ms=${t / 1000n} t_us=${t}`);
  return t;
}

// Whether the supervisor has restarted the program (LAB_RESTARTS above 0).
function restarted() {
  const restarts = process.env.LAB_RESTARTS;
  return restarts !== undefined && restarts !== '' && restarts !== '0';
}

// Waits for the lab when LAB_HOLD=1 and this is the first start: reads fd 0
// synchronously up to the first newline (or its end), one byte at a time so
// nothing past the line is consumed and no stream is opened on stdin, then
// prints "NODE resumed t_us=<µs>".
function hold() {
  if (process.env.LAB_HOLD !== '1' || restarted()) return;
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

// The cold start in phases, in µs, as in main.go: kernel start to /init,
// /init to the supervisor's exec (LAB_INIT_US and LAB_EXEC_US, stamped by the
// guest's /init and /bin/supervise), exec to the first line of this script
// (the runtime's own start-up), from there to the first output written, and
// the total. Then the runtime's start-up split as the seed splits it, from
// Node's own milestones (performance.nodeTiming, ms since its timeOrigin):
//   load_us       exec to V8's platform started: the 100 MB binary loaded,
//                 its libraries linked, Node's C++ start-up and V8 set up
//   bootstrap_us  V8 started to Node's bootstrap complete: its own
//                 JavaScript (from its startup snapshot) and environment
//   compile_us    bootstrap complete to this script's first line: the
//                 CommonJS loader finding, reading, parsing and compiling
//                 app.js
// The three add up to runtime_us.
function phases(readyUs) {
  const stamp = (name) => (/^\d+$/.test(process.env[name] || '') ? BigInt(process.env[name]) : null);
  const initUs = stamp('LAB_INIT_US');
  const execUs = stamp('LAB_EXEC_US');
  if (initUs === null || execUs === null) {
    process.stderr.write('phases: LAB_INIT_US and LAB_EXEC_US are set by /init and /bin/supervise\n');
    process.exit(1);
  }
  const timing = performance.nodeTiming;
  const us = (ms) => BigInt(Math.round(ms * 1000));
  const originUs = startUs - us(startSinceOriginMs);
  const v8Us = originUs + us(timing.v8Start);
  const bootstrappedUs = originUs + us(timing.bootstrapComplete);
  print(`NODE phases kernel_us=${initUs} init_us=${execUs - initUs} runtime_us=${startUs - execUs} ` +
    `first_output_us=${readyUs - startUs} total_us=${readyUs} load_us=${v8Us - execUs} ` +
    `bootstrap_us=${bootstrappedUs - v8Us} compile_us=${startUs - bootstrappedUs}`);
}

// Rounds of building a map of small objects, of which the last WINDOW rounds
// stay alive; prints "NODE done rounds=<n> objects=<n> live=<n> t_us=<µs the work took>".
function gcPressure() {
  hold();
  const begin = nowUs();
  const live = new Array(WINDOW);
  let objects = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const m = new Map();
    for (let i = 0; i < PER_ROUND; i++) {
      m.set(i, { id: r * PER_ROUND + i, name: 'item-' + i, tags: [r, i] });
    }
    objects += m.size;
    live[r % WINDOW] = m;
  }
  const kept = live.reduce((n, m) => n + m.size, 0);
  print(`NODE done rounds=${ROUNDS} objects=${objects} live=${kept} t_us=${nowUs() - begin}`);
}

// The seed's GC workload (3.2), the same in work.go: LISTENERS listener
// closures on one EventEmitter, each over its own state (a count, a running
// total and a ring of its last HISTORY readings). Each round emits EMITS
// events to every listener, and each call allocates a reading it keeps in
// its ring, so a reading lives HISTORY emits (long enough to leave the young
// generation) and then dies. After each round the CHURN oldest listeners
// are removed (their state becomes garbage, by then in the old generation)
// and as many new ones are added. EventEmitter's emit calls a copy of the
// listener array, and removeListener searches it from the end: work.go's
// dispatcher does the same. Prints "NODE done mode=listeners listeners=<n>
// rounds=<n> calls=<n> churned=<n> checksum=<n> t_us=<µs the work took>
// since_exec_us=<µs from the exec to here>" (LAB_EXEC_US, stamped by the
// supervisor just before it ran node: the whole life of the process, for a
// GC trace read from its start; 0 without it).
const LISTENERS = 4000;
const LISTENER_ROUNDS = 50;
const EMITS = 5;
const CHURN = 200;
const HISTORY = 16;

function listeners() {
  hold();
  const begin = nowUs();
  const { EventEmitter } = require('events');
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  // The listeners in registration order, oldest first, to remove the oldest.
  const registered = [];
  let nextId = 0;
  let calls = 0;
  let retired = 0;
  const add = () => {
    const id = nextId++;
    const state = { count: 0, total: 0, history: new Array(HISTORY) };
    const listener = (event) => {
      state.history[state.count % HISTORY] = { seq: event.seq, value: event.value + id };
      state.count += 1;
      state.total += (id * 31 + event.seq) % 1000;
      calls += 1;
    };
    emitter.on('reading', listener);
    registered.push({ listener, state });
  };
  for (let i = 0; i < LISTENERS; i++) add();
  let seq = 0;
  let churned = 0;
  for (let r = 0; r < LISTENER_ROUNDS; r++) {
    for (let e = 0; e < EMITS; e++) {
      emitter.emit('reading', { seq, value: seq * 0.5 });
      seq += 1;
    }
    for (const { listener, state } of registered.splice(0, CHURN)) {
      emitter.removeListener('reading', listener);
      retired += state.total;
      churned += 1;
    }
    for (let i = 0; i < CHURN; i++) add();
  }
  const checksum = registered.reduce((sum, { state }) => sum + state.total, retired);
  const end = nowUs();
  const exec = /^\d+$/.test(process.env.LAB_EXEC_US || '') ? BigInt(process.env.LAB_EXEC_US) : end;
  print(`NODE done mode=listeners listeners=${emitter.listenerCount('reading')} rounds=${LISTENER_ROUNDS} ` +
    `calls=${calls} churned=${churned} checksum=${checksum} t_us=${end - begin} since_exec_us=${end - exec}`);
}

// The seed's leak (3.3; Node only), as images/cortex-m/js/timerleak.js: every TICK_MS
// a tick allocates a 4 KiB Uint8Array and starts a READ_MS interval whose
// callback is a closure over it. In `leak` nobody clears those intervals,
// so Node's timer list keeps every closure and buffer alive; `leakclean`
// clears the previous tick's interval first. The ticks run WARM_MS before the
// first sample: meanwhile V8 compiles and optimises the tick and its heap
// grows by a few hundred KB in either mode (on raspi3b that alone made the
// clean run's 20 s rise by 14%). Then every SAMPLE_MS, after a full
// collection when node runs with --expose-gc, it prints
//   NODE heap t_us=<µs> used=<heapUsed + arrayBuffers> heap_used=<n> array_buffers=<n> external=<n> rss_kb=<VmRSS>
// V8 keeps a Uint8Array's 4 KiB outside its heap (in arrayBuffers, which
// external includes), so heapUsed grows only by the small objects: the
// Timeout, the closure, its context and the typed array's wrappers. After
// the run's seconds from the first sample (the next argument; 20 when
// absent) it prints
// "NODE done mode=<mode> ticks=<n> heap_used_slope=<B/µs>
// array_buffers_slope=<B/µs> rss_kb=<n> t_us=<µs the run took>" (least-squares
// slopes over the samples) and exits 0; with 0 seconds it runs until Node
// fails (under --max-old-space-size, V8's heap limit). Each sample line ends
// with run_us=<µs since the ticks began>; t_us of the done line counts from
// there too.
const TICK_MS = 10;
const READ_MS = 1000;
const SAMPLE_MS = 500;
const WARM_MS = 10000;

// The least-squares slope of y over x.
function slope(points) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) * (x - mx);
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

function timerLeak(clean) {
  const arg = process.argv[3] === undefined ? '20' : process.argv[3];
  if (!/^\d+$/.test(arg)) {
    process.stderr.write(`leak: the run's seconds must be a whole number, not ${arg}\n`);
    process.exit(64);
  }
  const runUs = BigInt(arg) * 1000000n;
  hold();
  const start = nowUs();
  let begin = start;
  const heap = [];
  const buffers = [];
  let ticks = 0;
  let reader = null;
  const sample = () => {
    if (typeof global.gc === 'function') global.gc();
    const m = process.memoryUsage();
    const t = nowUs();
    heap.push([Number(t), m.heapUsed]);
    buffers.push([Number(t), m.arrayBuffers]);
    print(`NODE heap t_us=${t} used=${m.heapUsed + m.arrayBuffers} heap_used=${m.heapUsed} ` +
      `array_buffers=${m.arrayBuffers} external=${m.external} rss_kb=${status('VmRSS')} run_us=${t - start}`);
  };
  const ticker = setInterval(() => {
    const data = new Uint8Array(4096);
    data[0] = ticks & 255;
    if (clean && reader !== null) clearInterval(reader);
    reader = setInterval(() => data[0], READ_MS);
    ticks += 1;
  }, TICK_MS);
  let sampler = null;
  setTimeout(() => {
    begin = nowUs();
    sample();
    sampler = setInterval(() => {
      sample();
      if (runUs === 0n || nowUs() - begin < runUs) return;
      finish();
    }, SAMPLE_MS);
  }, WARM_MS);
  const finish = () => {
    clearInterval(ticker);
    clearInterval(sampler);
    print(`NODE done mode=${clean ? 'leakclean' : 'leak'} ticks=${ticks} ` +
      `heap_used_slope=${slope(heap).toFixed(5)} array_buffers_slope=${slope(buffers).toFixed(5)} ` +
      `rss_kb=${status('VmRSS')} t_us=${nowUs() - start}`);
    // The leaked intervals would keep the event loop alive for ever.
    process.exit(0);
  };
}

// A "<key>: <n> kB" line of /proc/self/status.
function status(key) {
  const text = fs.readFileSync('/proc/self/status', 'latin1');
  const m = text.match(new RegExp(`^${key}:\\s*(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : 0;
}

// Answers each "MSG <seq>" line on stdin with "ACK <seq> rss_kb=<VmRSS>" on
// the event loop; VmRSS is sampled every 100 messages. It ends at "QUIT" or
// the end of input, after printing "NODE done received=<n> t_us=<µs>".
function messages() {
  let rss = status('VmRSS');
  let count = 0;
  let rest = '';
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    print(`NODE done received=${count} t_us=${nowUs()}`);
    process.stdin.pause();
    process.exit(0);
  };
  process.stdin.setEncoding('latin1');
  process.stdin.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    for (const raw of lines) {
      const line = raw.trim();
      if (line === 'QUIT') return finish();
      if (!line.startsWith('MSG ')) continue;
      count += 1;
      if (count % 100 === 0) rss = status('VmRSS');
      print(`ACK ${line.slice(4)} rss_kb=${rss}`);
    }
  });
  process.stdin.on('end', finish);
}

// Fails the way an unhandled JavaScript error does, on the first start
// only: an exception thrown from a callback on the event loop ends the
// process with status 1 and a stack trace. After a restart
// (LAB_RESTARTS > 0) it exits cleanly.
function crash() {
  hold();
  if (restarted()) {
    print(`NODE done recovered t_us=${nowUs()}`);
    return;
  }
  setImmediate(() => handle({}));
}

// Looks up a key that is not there and throws on it.
function handle(request) {
  if (!('user' in request)) {
    throw new Error('lab crash: request without a user');
  }
}

// Prints "NODE footprint app_bytes=<n> runtime_bytes=<n> rss_kb=<n> hwm_kb=<n>":
// the script's size, the size of every file mapped into the process (node,
// libnode and the libraries it loads) and the resident set at ready and its
// peak so far. It measures before the hold (see hold), so the figures are
// those at ready either way.
function footprint() {
  const app = fs.statSync(__filename).size;
  const seen = new Set();
  let runtime = 0;
  for (const line of fs.readFileSync('/proc/self/maps', 'latin1').split('\n')) {
    const fields = line.trim().split(/\s+/);
    const file = fields[5];
    if (fields.length < 6 || !file.startsWith('/') || seen.has(file)) continue;
    seen.add(file);
    try {
      const info = fs.statSync(file);
      if (info.isFile()) runtime += info.size;
    } catch (_) {
      // a mapping whose file is gone
    }
  }
  const line = `NODE footprint app_bytes=${app} runtime_bytes=${runtime} rss_kb=${status('VmRSS')} hwm_kb=${status('VmHWM')}`;
  hold();
  print(line);
}

print(`NODE start t_us=${startUs}`);
const modes = {
  cold: phases, gc: gcPressure, listeners, msg: messages, crash, footprint,
  leak: () => timerLeak(false), leakclean: () => timerLeak(true),
};
const mode = process.argv[2];
if (!Object.hasOwn(modes, mode)) {
  process.stderr.write('usage: app.js cold|gc|listeners|msg|crash|footprint|leak|leakclean\n');
  process.exit(64);
}
modes[mode](ready(mode));
