/*
 * syscalls.c - newlib system call glue for firmwares that link newlib
 * (e.g. with --specs=nano.specs). The heap is the linker script's HEAP
 * region; stdin, stdout and stderr are the UART.
 */
#include <errno.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "rt.h"

extern char __heap_start__[];
extern char __heap_end__[];

/* Prototypes for the names newlib calls. */
void *_sbrk(ptrdiff_t incr);
int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
int _kill(int pid, int sig);
int _getpid(void);
int _gettimeofday(struct timeval *tv, void *tz);
__attribute__((noreturn)) void _exit(int code);
__attribute__((noreturn)) void abort(void);

/* Grows the heap by incr bytes; fails with ENOMEM beyond __heap_end__. */
void *_sbrk(ptrdiff_t incr)
{
  static char *brk = __heap_start__;
  char *old = brk;

  if (incr > __heap_end__ - brk || incr < __heap_start__ - brk) {
    errno = ENOMEM;
    return (void *)-1;
  }
  brk += incr;
  return old;
}

/* Writes every byte to the UART, whatever the descriptor. */
int _write(int fd, const char *buf, int len)
{
  (void)fd;
  for (int i = 0; i < len; i++)
    rt_putc(buf[i]);
  return len;
}

/* Blocks for at least one byte, then returns what fits up to a newline. */
int _read(int fd, char *buf, int len)
{
  int n = 0;

  (void)fd;
  while (n < len) {
    buf[n] = (char)rt_getc();
    if (buf[n++] == '\n')
      break;
  }
  return n;
}

/* There are no files to close. */
int _close(int fd)
{
  (void)fd;
  errno = EBADF;
  return -1;
}

/* Every descriptor is a character device (the UART). */
int _fstat(int fd, struct stat *st)
{
  (void)fd;
  st->st_mode = S_IFCHR;
  return 0;
}

/* Every descriptor is a terminal, so stdout is line-buffered. */
int _isatty(int fd)
{
  (void)fd;
  return 1;
}

/* The UART cannot seek. */
int _lseek(int fd, int offset, int whence)
{
  (void)fd;
  (void)offset;
  (void)whence;
  errno = ESPIPE;
  return -1;
}

/* Signals are not supported (abort() ends up here). */
int _kill(int pid, int sig)
{
  (void)pid;
  (void)sig;
  errno = EINVAL;
  return -1;
}

/* The only process. */
int _getpid(void)
{
  return 1;
}

/* exit() ends the emulation with this code. */
void _exit(int code)
{
  rt_exit(code);
}

/* abort() does what it does on a device: a system reset, as CMSIS's
 * NVIC_SystemReset() asks for it (SYSRESETREQ in the SCB's AIRCR), once
 * the console has drained. The board then starts the firmware again from
 * its reset vector. (newlib's own abort() would end the emulation.) */
void abort(void)
{
  volatile uint32_t *const aircr = (volatile uint32_t *)0xE000ED0Cu;

  rt_puts("ABORT system reset\n");
#ifdef LAB_UART_STM32F4
  rt_uart_flush();
#endif
  __asm volatile("dsb 0xF" ::: "memory");
  *aircr = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
  __asm volatile("dsb 0xF" ::: "memory");
  for (;;) {
  }
}

/* gettimeofday() and time(): the clock starts at 0 at reset (there is no
 * calendar), counted by rt_micros, so it is deterministic under icount. */
int _gettimeofday(struct timeval *tv, void *tz)
{
  (void)tz;
  if (tv != NULL) {
    uint64_t us = rt_micros();
    tv->tv_sec = (time_t)(us / 1000000u);
    tv->tv_usec = (suseconds_t)(us % 1000000u);
  }
  return 0;
}
