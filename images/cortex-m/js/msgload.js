// msgload: the seed's scheduling experiment on a microcontroller. Sensor
// messages "MSG <seq> <temperature>,<humidity>,<pressure>" arrive on the
// UART; its receive interrupt queues complete lines in a ring of 16 that
// drops when full (../jscommon/msgq.c). The event loop polls the ring from
// a setTimeout handler every POLL_MS (the firmware's poll_ms=N option,
// default 1), takes every waiting line, parses the
// reading, updates running averages and answers "ACK <seq> heap=<bytes in
// use>". The lab's "END" line closes the ring; the handler then stops
// re-arming and the loop ends. The C firmware does the same work.
var POLL_MS = msg_poll_ms();
var n = 0;
var temp = 0;
var hum = 0;
var press = 0;

function handle(line) {
  var parts = line.split(" ");
  var seq = parseInt(parts[1], 10);
  var reading = parts[2].split(",");
  n++;
  temp += (parseFloat(reading[0]) - temp) / n;
  hum += (parseFloat(reading[1]) - hum) / n;
  press += (parseFloat(reading[2]) - press) / n;
  print("ACK " + seq + " heap=" + heap_used());
}

function poll() {
  var line;
  while ((line = msg_next()) !== null) handle(line);
  if (!msg_closed()) {
    setTimeout(poll, POLL_MS);
  } else {
    print("msgload handled=" + n + " temp_x100=" + Math.round(temp * 100) +
          " hum_x100=" + Math.round(hum * 100) +
          " press_x100=" + Math.round(press * 100));
  }
}

setTimeout(poll, POLL_MS);
