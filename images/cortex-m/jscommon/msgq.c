/*
 * msgq.c - the msgload workload's bounded line queue, fed by the console
 * UART's receive interrupt (see msgq.h).
 */
#include <string.h>

#include "bench.h"
#include "msgq.h"

#if defined(LAB_UART_BASE) && !defined(LAB_UART_STM32F4)
/* CMSDK APB UART registers (uart.c owns the rest of the driver). */
#define UART_REG(off) (*(volatile uint32_t *)(uintptr_t)(LAB_UART_BASE + (off)))
#define UART_DATA UART_REG(0x00)
#define UART_STATE UART_REG(0x04)
#define UART_CTRL UART_REG(0x08)
#define UART_INTCLEAR UART_REG(0x0C) /* write 1 to clear */
#define UART_STATE_RX_FULL (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INT_RX (1u << 1)
/* On the MPS2 boards UART0's RX interrupt is external interrupt 0. */
#define MSGQ_RX_IRQ 0
/* CMSDK APB TIMER0 (clocked at LAB_CPU_HZ), external interrupt 8: the
 * event loop's 1 kHz tick. */
#define TIMER_REG(off) (*(volatile uint32_t *)(uintptr_t)(0x40000000u + (off)))
#define TIMER_CTRL TIMER_REG(0x00)
#define TIMER_VALUE TIMER_REG(0x04)
#define TIMER_RELOAD TIMER_REG(0x08)
#define TIMER_INTCLEAR TIMER_REG(0x0C)
#define TIMER_CTRL_EN (1u << 0)
#define TIMER_CTRL_IRQ_EN (1u << 3)
#define MSGQ_TICK_IRQ 8
#define MSGQ_TICK_HZ 1000u
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define MSGQ_HAVE_UART 1
#endif

/* The ring: written by the interrupt handler at tail, read by the main
 * loop at head; both only grow, and tail - head lines are waiting. */
static char slots[LAB_MSGQ_SLOTS][LAB_MSGQ_LINE];
static uint8_t slot_len[LAB_MSGQ_SLOTS];
static volatile uint32_t head, tail;
static volatile int ended;
static volatile uint32_t received, dropped, max_depth;

unsigned long lab_msgq_poll_ms = 1;

/* The line being received. */
static char rx_line[LAB_MSGQ_LINE];
static size_t rx_len;

/* Orders the slot's bytes before the index that publishes them. */
static inline void msgq_barrier(void)
{
  __asm__ volatile("dmb" ::: "memory");
}

/* One received byte (interrupt context). */
static void msgq_byte(char c)
{
  uint32_t depth;

  if (c == '\r')
    return;
  if (c != '\n') {
    if (rx_len < LAB_MSGQ_LINE - 1)
      rx_line[rx_len++] = c;
    return;
  }
  if (rx_len == 3 && memcmp(rx_line, "END", 3) == 0) {
    ended = 1;
    rx_len = 0;
    return;
  }
  received++;
  depth = tail - head;
  if (depth >= LAB_MSGQ_SLOTS) {
    /* The main loop is behind by a whole ring: this message is lost. */
    dropped++;
  } else {
    memcpy(slots[tail % LAB_MSGQ_SLOTS], rx_line, rx_len);
    slot_len[tail % LAB_MSGQ_SLOTS] = (uint8_t)rx_len;
    msgq_barrier();
    tail = tail + 1;
    if (depth + 1 > max_depth)
      max_depth = depth + 1;
  }
  rx_len = 0;
}

#ifdef MSGQ_HAVE_UART
/* RX interrupt: clear it first, then take every byte the UART holds, so a
 * byte arriving meanwhile raises it again. */
void IRQ0_Handler(void)
{
  UART_INTCLEAR = UART_INT_RX;
  while (UART_STATE & UART_STATE_RX_FULL)
    msgq_byte((char)(UART_DATA & 0xFFu));
}

/* The tick only wakes the core from WFI, so that a due timer runs. */
void IRQ8_Handler(void)
{
  TIMER_INTCLEAR = 1;
}

int lab_msgq_start(void)
{
  UART_INTCLEAR = UART_INT_RX;
  UART_CTRL |= UART_CTRL_RX_INTEN;
  TIMER_RELOAD = LAB_CPU_HZ / MSGQ_TICK_HZ - 1;
  TIMER_VALUE = LAB_CPU_HZ / MSGQ_TICK_HZ - 1;
  TIMER_CTRL = TIMER_CTRL_EN | TIMER_CTRL_IRQ_EN;
  NVIC_ISER0 = (1u << MSGQ_RX_IRQ) | (1u << MSGQ_TICK_IRQ);
  /* Between timers the event loop sleeps until an interrupt, as a
   * device's idle loop does, rather than spinning on the clock (which in
   * QEMU also keeps the I/O thread that delivers input off the lock). */
  lab_timer_sleep = 1;
  rt_printf("MSGQ ready slots=%u\n", (unsigned)LAB_MSGQ_SLOTS);
  return 0;
}
#else
int lab_msgq_start(void)
{
  rt_printf("msgload needs the CMSDK UART's receive interrupt (the MPS2 boards)\n");
  return -1;
}
#endif

int lab_msgq_pop(char *buf, size_t size)
{
  uint32_t h = head;
  size_t n;

  if (h == tail || size == 0)
    return -1;
  msgq_barrier();
  n = slot_len[h % LAB_MSGQ_SLOTS];
  if (n > size - 1)
    n = size - 1;
  memcpy(buf, slots[h % LAB_MSGQ_SLOTS], n);
  buf[n] = '\0';
  msgq_barrier();
  head = h + 1;
  return (int)n;
}

int lab_msgq_closed(void)
{
  return ended && head == tail;
}

void lab_msgq_report(void)
{
  rt_printf("MSGQ received=%u queued=%u dropped=%u max_depth=%u slots=%u\n",
            (unsigned)received, (unsigned)(received - dropped),
            (unsigned)dropped, (unsigned)max_depth, (unsigned)LAB_MSGQ_SLOTS);
}
