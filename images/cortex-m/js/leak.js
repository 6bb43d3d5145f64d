// leak: a timer callback that runs TICKS times; each run registers a
// closure over fresh data in a global list that is never emptied.
var TICKS = 200;
var handlers = [];
var ticks = 0;
function tick() {
  var data = [];
  for (var j = 0; j < 10; j++) data.push("tick" + ticks + "_" + j);
  handlers.push(function () { return data.length; });
  ticks++;
  if (ticks < TICKS) setTimeout(tick, 1);
  else print("leak ticks=" + ticks + " handlers=" + handlers.length);
}
setTimeout(tick, 1);
