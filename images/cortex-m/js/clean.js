// clean: the same work as leak.js, but the list keeps only the last 8
// closures, so the live heap stays flat.
var TICKS = 200;
var handlers = [];
var ticks = 0;
function tick() {
  var data = [];
  for (var j = 0; j < 10; j++) data.push("tick" + ticks + "_" + j);
  handlers[ticks % 8] = function () { return data.length; };
  ticks++;
  if (ticks < TICKS) setTimeout(tick, 1);
  else print("clean ticks=" + ticks + " handlers=" + handlers.length);
}
setTimeout(tick, 1);
