// timerclean: the same ticks as timerleak.js, but each tick clears the
// previous tick's interval before it starts its own, so one buffer is live
// at a time; after TICKS ticks it clears both timers and the loop ends.
var TICK_MS = 10;
var READ_MS = 1000;
var TICKS = 400;
var ticks = 0;
var reader = null;
var ticker = setInterval(function () {
  var data = new Uint8Array(4096);
  data[0] = ticks & 255;
  if (reader !== null) clearInterval(reader);
  reader = setInterval(function () { return data[0]; }, READ_MS);
  ticks++;
  if (ticks === TICKS) {
    clearInterval(reader);
    clearInterval(ticker);
    print("timerclean ticks=" + ticks);
  }
}, TICK_MS);
