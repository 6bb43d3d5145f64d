/*
 * semihost.c - Arm semihosting calls (bkpt 0xAB, r0 = operation,
 * r1 = parameter block); QEMU needs -semihosting-config enable=on.
 */
#include "rt.h"

#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

/* Performs one semihosting call and returns the host's r0. */
static uintptr_t rt_semihost(uintptr_t op, void *arg)
{
  register uintptr_t r0 __asm__("r0") = op;
  register void *r1 __asm__("r1") = arg;

  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

/* Exits QEMU with `code`; spins with interrupts masked if the host does not
 * stop the guest. */
void rt_exit(int code)
{
  uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)code};

#ifdef LAB_UART_STM32F4
  rt_uart_flush();
#endif
  rt_semihost(SYS_EXIT_EXTENDED, block);
  __asm__ volatile("cpsid i" ::: "memory");
  for (;;)
    __asm__ volatile("wfi");
}

/* Reads the command line; QEMU returns its arg= values joined by spaces. */
int rt_get_cmdline(char *buf, size_t size)
{
  struct {
    char *buf;
    size_t len;
  } block = {buf, size};

  if (size == 0 || rt_semihost(SYS_GET_CMDLINE, &block) != 0)
    return -1;
  buf[block.len < size ? block.len : size - 1] = '\0';
  return (int)block.len;
}

/* Returns non-zero when the NUL-terminated strings a and b are equal. */
int rt_str_eq(const char *a, const char *b)
{
  while (*a != '\0' && *a == *b) {
    a++;
    b++;
  }
  return *a == *b;
}
