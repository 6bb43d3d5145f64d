// The Node.js side of the recover experiment (issue 15, 2.5 on Linux); the
// Go side is `app serve` (images/raspi/go/recover.go), the same service.
//
//   node /app/recover.js uncaught|catch FAULT
//
// Prints "NODE start t_us=<µs>" and "NODE ready mode=serve t_ms=<ms>
// t_us=<µs>" as app.js does, then answers each "REQ <seq>" line on stdin
// with "OK <seq>", each request in its own callback on the event loop
// (setImmediate). Request FAULT has no user, and handle throws on it. With
// "uncaught" nothing catches the exception: it ends the process (status 1,
// Node's error report) and the supervisor restarts it. With "catch" the
// request's callback catches it, logs "NODE error request=<seq> caught:
// <message>" on stderr, answers "ERR <seq>" and the program goes on
// serving: a try/catch around the handler, where Go's recover sits (a
// process-wide process.on('uncaughtException') is a last resort Node's
// documentation says not to resume from).
//
// At "QUIT" or the end of input it prints "NODE done served=<n> errors=<n>
// after_fault=<n> restarts=<n> ready_again_us=<µs> serve_again_us=<µs>
// t_us=<µs>", as recover.go does.
'use strict';
const startUs = process.hrtime.bigint() / 1000n;
const nowUs = () => process.hrtime.bigint() / 1000n;
const fs = require('fs');

// The guest time of the fault (µs), written as the faulty request is
// dispatched, so that a restarted program can tell how long the service was
// out. /tmp is the initramfs's: it outlives the process.
const FAULT_FILE = '/tmp/lab-fault-us';

function print(line) {
  process.stdout.write(line + '\n');
}

// Looks up a key that is not there and throws on it (app.js's handle).
function handle(request) {
  if (!('user' in request)) {
    throw new Error('lab crash: request without a user');
  }
}

function serve(handling, fault, readyUs) {
  let faultUs = 0n;
  let readyAgainUs = 0n;
  let serveAgainUs = 0n;
  if (fs.existsSync(FAULT_FILE)) {
    // Restarted after the fault: ready again since the ready line.
    faultUs = BigInt(fs.readFileSync(FAULT_FILE, 'latin1').trim());
    readyAgainUs = readyUs - faultUs;
  }
  let served = 0;
  let errors = 0;
  let afterFault = 0;
  let rest = '';
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    // After the requests already dispatched (setImmediate runs in order).
    setImmediate(() => {
      const restarts = process.env.LAB_RESTARTS || '0';
      print(`NODE done served=${served} errors=${errors} after_fault=${afterFault} restarts=${restarts} ready_again_us=${readyAgainUs} serve_again_us=${serveAgainUs} t_us=${nowUs()}`);
      process.exit(0);
    });
  };
  const answer = (seq, request) => {
    handle(request);
    print(`OK ${seq}`);
    served += 1;
    if (faultUs !== 0n && seq > fault) {
      afterFault += 1;
      if (serveAgainUs === 0n) serveAgainUs = nowUs() - faultUs;
    }
  };
  process.stdin.setEncoding('latin1');
  process.stdin.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    for (const raw of lines) {
      const line = raw.trim();
      if (line === 'QUIT') return finish();
      if (!line.startsWith('REQ ')) continue;
      const seq = Number(line.slice(4));
      let request = { user: 1 };
      if (seq === fault) {
        request = {};
        faultUs = nowUs();
        fs.writeFileSync(FAULT_FILE, String(faultUs));
      }
      if (handling === 'uncaught') {
        setImmediate(() => answer(seq, request));
      } else {
        setImmediate(() => {
          // The exception becomes a logged error and an error answer; the
          // event loop goes on.
          try {
            answer(seq, request);
          } catch (e) {
            process.stderr.write(`NODE error request=${seq} caught: ${e.message}\n`);
            print(`ERR ${seq}`);
            errors += 1;
            readyAgainUs = nowUs() - faultUs;
          }
        });
      }
    }
  });
  process.stdin.on('end', finish);
}

print(`NODE start t_us=${startUs}`);
const handling = process.argv[2];
const fault = Number(process.argv[3]);
if (!['uncaught', 'catch'].includes(handling) || !Number.isInteger(fault)) {
  process.stderr.write('usage: recover.js uncaught|catch FAULT\n');
  process.exit(64);
}
const readyUs = nowUs();
print(`NODE ready mode=serve t_ms=${readyUs / 1000n} t_us=${readyUs}`);
serve(handling, fault, readyUs);
