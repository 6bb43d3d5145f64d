// poke: 10,000 writes to the MPS2 FPGAIO LED register (0x40028000, two
// LED bits; harmless in QEMU), then one read back.
var LED = 0x40028000;
for (var i = 0; i < 10000; i++) poke(LED, i & 3);
print("poke led=" + peek(LED));
