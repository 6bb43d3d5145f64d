/*
 * hello - prints the board name and the boot time in microseconds since
 * reset, then exits 0.
 */
#include "rt.h"

/* Prints both marker lines. */
int main(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  rt_printf("hello from %s\n", LAB_BOARD);
  rt_printf("READY boot_us=%llu\n", (unsigned long long)rt_micros());
  return 0;
}
