// timerleak: the seed's leak. Every 10 ms a tick allocates a 4 KiB
// Uint8Array and starts a 1 s interval whose callback is a closure over it.
// Nobody clears that interval, so the timer keeps the closure alive and the
// closure the buffer: the heap grows by a buffer and a closure a tick until
// allocation fails (the embedding prints OOM and ALLOC_FAIL).
var TICK_MS = 10;
var READ_MS = 1000;
var ticks = 0;
setInterval(function () {
  var data = new Uint8Array(4096);
  data[0] = ticks & 255;
  setInterval(function () { return data[0]; }, READ_MS);
  ticks++;
}, TICK_MS);
