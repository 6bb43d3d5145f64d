// oom: keeps 1.3 KB strings alive until the engine runs out of memory.
var base = "0123456789";
for (var k = 0; k < 7; k++) base = base + base;
var hog = [];
for (var i = 0; ; i++) hog.push(base + i);
