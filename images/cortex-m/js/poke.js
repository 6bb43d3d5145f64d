// poke: 10,000 writes to the MPS2 FPGAIO LED register (0x40028000, two
// LED bits; harmless in QEMU), then one read back. The loop lives in a
// function so its variables are locals, as in a real driver script.
function run() {
  var LED = 0x40028000;
  for (var i = 0; i < 10000; i++) poke(LED, i & 3);
  return peek(LED);
}
print("poke led=" + run());
