/*
 * rtt.h - the console over SEGGER RTT, for boards whose console is reached
 * through the debug probe (LAB_CONSOLE_RTT, set by the board profile).
 *
 * Included once, by uart.c, in place of the UART driver. The control block
 * `_SEGGER_RTT` has SEGGER's layout, so any RTT host (probe-rs, the lab)
 * finds it by symbol or by its ID: one up buffer (target to host) and one
 * down buffer (host to target), each a ring with a write and a read offset.
 * Output blocks while the up buffer is full (the host always drains it).
 */
#ifndef LAB_RTT_H
#define LAB_RTT_H

#include <stdint.h>

#define RTT_UP_SIZE 1024u
#define RTT_DOWN_SIZE 64u
/* SEGGER's mode: block the writer while the buffer is full. */
#define RTT_MODE_BLOCK_IF_FULL 2u

typedef struct {
  const char *name;
  char *buffer;
  uint32_t size;
  volatile uint32_t wr;
  volatile uint32_t rd;
  uint32_t flags;
} rtt_ring;

typedef struct {
  char id[16];
  int32_t max_up;
  int32_t max_down;
  rtt_ring up[1];
  rtt_ring down[1];
} rtt_control_block;

rtt_control_block _SEGGER_RTT;
static char rtt_up_buffer[RTT_UP_SIZE];
static char rtt_down_buffer[RTT_DOWN_SIZE];

static inline void rtt_barrier(void)
{
  __asm volatile("dmb" ::: "memory");
}

/* Fills in the control block; the ID goes last, so a host never sees a
 * half-made block. */
void rt_uart_init(void)
{
  static const char id[] = "SEGGER RTT";
  _SEGGER_RTT.max_up = 1;
  _SEGGER_RTT.max_down = 1;
  _SEGGER_RTT.up[0] = (rtt_ring){"Terminal", rtt_up_buffer, RTT_UP_SIZE, 0, 0,
                                 RTT_MODE_BLOCK_IF_FULL};
  _SEGGER_RTT.down[0] = (rtt_ring){"Terminal", rtt_down_buffer, RTT_DOWN_SIZE, 0, 0,
                                   RTT_MODE_BLOCK_IF_FULL};
  rtt_barrier();
  for (unsigned i = 0; i < sizeof id; i++)
    _SEGGER_RTT.id[i] = id[i];
  rtt_barrier();
}

/* Waits for room in the up buffer, then appends the byte. */
void rt_putc(char c)
{
  rtt_ring *up = &_SEGGER_RTT.up[0];
  uint32_t next = (up->wr + 1u) % up->size;
  while (next == up->rd)
    ;
  up->buffer[up->wr] = c;
  rtt_barrier();
  up->wr = next;
}

/* Writes each byte of s. */
void rt_puts(const char *s)
{
  while (*s != '\0')
    rt_putc(*s++);
}

/* Waits for a byte in the down buffer and takes it. */
int rt_getc(void)
{
  rtt_ring *down = &_SEGGER_RTT.down[0];
  while (down->rd == down->wr)
    ;
  rtt_barrier();
  int c = (unsigned char)down->buffer[down->rd];
  down->rd = (down->rd + 1u) % down->size;
  return c;
}

#endif
