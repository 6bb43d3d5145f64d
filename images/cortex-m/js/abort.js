// abort: an error that escapes the event loop. The embedding meets it as
// an unrecoverable error (Duktape: its fatal handler, for an error thrown
// outside any protected call; Micro QuickJS and native: the embedding's
// own handler), which ends in abort(): on a device, a system reset.
print("arming");
setTimeout(function () {
  print("failing");
  var sensor = null;
  return sensor.value;
}, 1);
