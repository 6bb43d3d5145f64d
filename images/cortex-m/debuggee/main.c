/*
 * debuggee - a small, deterministic target for the lab's debugger tests.
 *
 * Prints READY. With argv[1] == "spin" it then loops while lab_spin is set,
 * counting in lab_counter (a debugger interrupts it or clears lab_spin).
 * Otherwise it calls work() a few times. Finally it prints
 * "DONE code=<lab_exit_code>" and returns lab_exit_code, so a debugger that
 * writes lab_exit_code before main returns chooses QEMU's exit status.
 */
#include "rt.h"

volatile uint32_t lab_exit_code = 0;
volatile uint32_t lab_spin = 1;
volatile uint32_t lab_counter = 0;
volatile int32_t lab_signed = -5;
volatile float lab_float = 1.5f;

/* Adds a little arithmetic to lab_counter; kept out of line to break on. */
__attribute__((noinline)) int work(int n)
{
  int sum = 0;

  for (int i = 0; i < n; i++)
    sum += i * 3 + 1;
  lab_counter += (uint32_t)sum;
  lab_float = lab_float * 2.0f;
  return sum;
}

/* Spins or works as argv[1] says, then exits with lab_exit_code. */
int main(int argc, char **argv)
{
  rt_puts("READY\n");
  if (argc > 1 && rt_str_eq(argv[1], "spin")) {
    while (lab_spin)
      lab_counter++;
  } else {
    for (int i = 1; i <= 3; i++)
      lab_signed += work(i);
  }
  rt_printf("DONE code=%u\n", (unsigned)lab_exit_code);
  return (int)lab_exit_code;
}
