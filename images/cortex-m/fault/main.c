/*
 * fault - prints READY, then faults in the way argv[1] selects:
 *   undef   undefined instruction in fault_undef (UsageFault UNDEFINSTR)
 *   bus     load from an unmapped address in fault_bus (precise BusFault)
 *   lockup  like undef with rt_fault_in_handler set: the handler faults
 *           again and the core locks up (QEMU aborts)
 * Each fault escalates to HardFault, whose report exits with status 70.
 */
#include "rt.h"

/* Address with nothing mapped on the MPS2 boards. */
#define UNMAPPED_ADDR 0xF0000000u

/* Executes a permanently undefined instruction. */
__attribute__((noinline, noclone)) void fault_undef(void)
{
  __asm__ volatile("udf #0");
}

/* Loads a word from UNMAPPED_ADDR and returns it. */
__attribute__((noinline, noclone)) uint32_t fault_bus(void)
{
  return *(volatile uint32_t *)UNMAPPED_ADDR;
}

/* Dispatches on argv[1]; returns 1 after printing usage if it is unknown.
 * The faults do not return: the fault report ends the firmware. */
int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";

  if (rt_str_eq(mode, "undef")) {
    rt_puts("READY\n");
    fault_undef();
  } else if (rt_str_eq(mode, "bus")) {
    rt_puts("READY\n");
    (void)fault_bus();
  } else if (rt_str_eq(mode, "lockup")) {
    rt_puts("READY\n");
    rt_fault_in_handler = 1;
    fault_undef();
  } else {
    rt_puts("usage: fault undef|bus|lockup\n");
    return 1;
  }
  return 0;
}
