/*
 * rt.h - API of the lab's Cortex-M guest runtime.
 *
 * Freestanding C11; no vendor headers. Every firmware is built with the
 * board defines below, which the lab passes on the compiler command line:
 *   LAB_CPU_HZ     core clock that drives SysTick, in Hz
 *   LAB_UART_BASE  base address of the CMSDK APB UART used as the console,
 *                  or LAB_CONSOLE_RTT for a console over SEGGER RTT (real
 *                  boards whose console is reached through the probe)
 *   LAB_UART_STM32F4, LAB_UART_BAUD and optionally LAB_UART_TX_PORT,
 *   LAB_UART_TX_PIN, LAB_UART_RX_PORT, LAB_UART_RX_PIN, LAB_UART_AF
 *                  the console is the STM32F4 USART at LAB_UART_BASE
 *                  (usart_stm32f4.h), on those pins on a real chip
 *   LAB_BOARD      board profile name, a string literal
 *
 * The reset handler (start.c) starts the SysTick time base, initialises
 * memory, paints the stack and then calls main(argc, argv) with the
 * arguments from the semihosting command line. main's return value becomes
 * QEMU's exit status.
 */
#ifndef RT_H
#define RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifndef LAB_CPU_HZ
#error "LAB_CPU_HZ must be defined (core clock in Hz)"
#endif
#if !defined(LAB_UART_BASE) && !defined(LAB_CONSOLE_RTT)
#error "LAB_UART_BASE (CMSDK APB UART base address) or LAB_CONSOLE_RTT must be defined"
#endif
#ifndef LAB_BOARD
#error "LAB_BOARD must be defined (board name as a string literal)"
#endif

/* Exit status used after a fault report (EX_SOFTWARE from sysexits.h). */
#define RT_EXIT_FAULT 70

/* Word written over the whole main stack at reset (see rt_stack_used). */
#define RT_STACK_PAINT 0xC5AC5AC5

/* Firmware entry point, called by the runtime after initialisation. */
int main(int argc, char **argv);

/* --- console: CMSDK APB UART at LAB_UART_BASE (uart.c) --- */

/* Enables the UART transmitter and receiver (done by the reset code). */
void rt_uart_init(void);
#ifdef LAB_UART_STM32F4
/* Runs the core at LAB_CPU_HZ (the reset code calls it before anything
 * else; it touches no RAM beyond its stack frame). */
void rt_clock_init(void);
/* Waits until the last byte has left the USART (before an exit, whose
 * reset on a real board would cut it off). */
void rt_uart_flush(void);
#endif
/* Writes one byte, waiting while the TX buffer is full. */
void rt_putc(char c);
/* Writes a NUL-terminated string as is (no newline is added). */
void rt_puts(const char *s);
/* Waits until a byte has been received and returns it. */
int rt_getc(void);
/* Formats to the UART; supports %d %u %x %c %s %%, the l and ll length
 * modifiers, a 0 flag and a field width (e.g. %08x). Returns bytes written. */
int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* rt_printf with a va_list. */
int rt_vprintf(const char *fmt, va_list ap);

/* --- semihosting (semihost.c) --- */

/* Ends the emulation with `code` as QEMU's exit status (SYS_EXIT_EXTENDED). */
__attribute__((noreturn)) void rt_exit(int code);
/* Returns non-zero when the NUL-terminated strings a and b are equal (for
 * matching arguments). */
int rt_str_eq(const char *a, const char *b);
/* Reads the command line (SYS_GET_CMDLINE) into buf, NUL-terminated.
 * Returns its length, or -1 if it is unavailable or does not fit. */
int rt_get_cmdline(char *buf, size_t size);

/* --- time base: SysTick at LAB_CPU_HZ, counting from reset (systick.c) --- */

/* Starts SysTick (processor clock, reload 0xFFFFFF, wrap interrupt).
 * Called first thing by the reset handler; touches no RAM. */
void rt_systick_start(void);
/* Core clock cycles since reset; safe from thread and handler mode. */
uint64_t rt_cycles(void);
/* Microseconds since reset. */
uint64_t rt_micros(void);

/* --- faults (fault.c) --- */

/* When non-zero, the fault handler executes an undefined instruction after
 * printing its report, which locks the core up (QEMU aborts). */
extern volatile int rt_fault_in_handler;

/* --- stack (start.c) --- */

/* Bytes of the main stack that have been written since reset (high-water
 * mark), found by scanning for the RT_STACK_PAINT pattern. */
size_t rt_stack_used(void);

#endif /* RT_H */
