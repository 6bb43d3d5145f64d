/*
 * uart.c - CMSDK APB UART console (or RTT, with LAB_CONSOLE_RTT, or an
 * STM32F4 USART, with LAB_UART_STM32F4) and a small printf.
 */
#include "rt.h"

#ifdef LAB_CONSOLE_RTT
/* The board's console is RTT through the debug probe. */
#include "rtt.h"
#elif defined(LAB_UART_STM32F4)
/* The board's console is an STM32F4 USART. */
#include "usart_stm32f4.h"
#else
#define UART_REG(off) (*(volatile uint32_t *)(uintptr_t)(LAB_UART_BASE + (off)))
#define UART_DATA UART_REG(0x00)
#define UART_STATE UART_REG(0x04)
#define UART_CTRL UART_REG(0x08)
#define UART_BAUDDIV UART_REG(0x10)

#define UART_STATE_TX_FULL (1u << 0)
#define UART_STATE_RX_FULL (1u << 1)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
/* Smallest divisor the CMSDK UART accepts. */
#define UART_BAUDDIV_MIN 16u

/*
 * Sets the divisor and enables TX and RX, without interrupts.
 *
 * The dummy read of DATA matters under QEMU: its CMSDK UART refuses input
 * while RX is disabled (as it is at reset) and does not tell the character
 * backend when RX becomes enabled; only a read of DATA does. Without the
 * read, the first input byte waits for QEMU's main loop to wake for some
 * other reason, which took 250-670 ms in measurements.
 */
void rt_uart_init(void)
{
  UART_BAUDDIV = UART_BAUDDIV_MIN;
  UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;
  (void)UART_DATA;
}

/* Polls STATE.TX_FULL, then writes the byte. */
void rt_putc(char c)
{
  while (UART_STATE & UART_STATE_TX_FULL)
    ;
  UART_DATA = (uint8_t)c;
}

/* Writes each byte of s. */
void rt_puts(const char *s)
{
  while (*s != '\0')
    rt_putc(*s++);
}

/* Polls STATE.RX_FULL, then reads the byte. */
int rt_getc(void)
{
  while (!(UART_STATE & UART_STATE_RX_FULL))
    ;
  return (int)(UART_DATA & 0xFFu);
}
#endif

/* Writes `v` in base 10 or 16, right-aligned in `width` columns padded with
 * `pad`, after an optional minus sign; returns bytes written. */
static int rt_put_number(uint64_t v, unsigned base, int negative, int width, char pad)
{
  char digits[20];
  int n = 0, written = 0;

  do {
    unsigned d = (unsigned)(v % base);
    digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v != 0);
  width -= n + negative;
  if (negative && pad == '0') {
    rt_putc('-');
    written++;
  }
  for (; width > 0; width--, written++)
    rt_putc(pad);
  if (negative && pad != '0') {
    rt_putc('-');
    written++;
  }
  while (n > 0) {
    rt_putc(digits[--n]);
    written++;
  }
  return written;
}

/* Walks the format string; unknown conversions are printed literally. */
int rt_vprintf(const char *fmt, va_list ap)
{
  int written = 0;

  for (; *fmt != '\0'; fmt++) {
    char pad = ' ';
    int width = 0, longs = 0;
    uint64_t u;
    int64_t i;

    if (*fmt != '%') {
      rt_putc(*fmt);
      written++;
      continue;
    }
    fmt++;
    if (*fmt == '0') {
      pad = '0';
      fmt++;
    }
    while (*fmt >= '0' && *fmt <= '9')
      width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l' && longs < 2) {
      longs++;
      fmt++;
    }
    switch (*fmt) {
    case 'd':
      i = longs == 2 ? va_arg(ap, long long) : longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
      u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
      written += rt_put_number(u, 10, i < 0, width, pad);
      break;
    case 'u':
    case 'x':
      u = longs == 2   ? va_arg(ap, unsigned long long)
          : longs == 1 ? va_arg(ap, unsigned long)
                       : va_arg(ap, unsigned);
      written += rt_put_number(u, *fmt == 'u' ? 10 : 16, 0, width, pad);
      break;
    case 'c':
      rt_putc((char)va_arg(ap, int));
      written++;
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      for (; *s != '\0'; s++, written++)
        rt_putc(*s);
      break;
    }
    case '%':
      rt_putc('%');
      written++;
      break;
    case '\0':
      return written;
    default:
      rt_putc('%');
      rt_putc(*fmt);
      written += 2;
      break;
    }
  }
  return written;
}

/* printf to the UART; see rt.h for the supported conversions. */
int rt_printf(const char *fmt, ...)
{
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = rt_vprintf(fmt, ap);
  va_end(ap);
  return n;
}
