// gc: allocation churn. Every iteration builds an object with a string, an
// array and a self-reference (a cycle, so reference counting alone cannot
// free it), derives a second string from it and drops it, except for a
// rolling window of 16 that stays alive.
function run(n) {
  var keep = [];
  var sum = 0;
  for (var i = 0; i < n; i++) {
    var o = { id: i, name: "item" + i, tags: [i, i * 2, i * 3] };
    o.self = o;
    var s = o.name + ":" + o.tags.join(",");
    sum += s.length;
    keep[i % 16] = o;
  }
  return sum;
}
var N = 5000;
print("gc n=" + N + " sum=" + run(N));
