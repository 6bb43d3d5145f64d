/*
 * start.c - vector table, reset handler and the call into main.
 */
#include "rt.h"

/* Largest command line and argument count taken from semihosting. */
#define RT_CMDLINE_MAX 256
#define RT_ARGV_MAX 16

/* Interrupt Program Status Register: number of the active exception. */
#define IPSR_EXCEPTION_MASK 0x1FFu

#define RT_STR_(x) #x
#define RT_STR(x) RT_STR_(x)

typedef void (*rt_vector)(void);

extern uint32_t __stack_top__[];
extern uint32_t __stack_bottom__[];

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SysTick_Handler(void);
__attribute__((noreturn, used)) void rt_start(void);

/* Exceptions and interrupts nobody handles go to Default_Handler unless a
 * firmware defines a handler with the same name. */
#define RT_WEAK __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) RT_WEAK;
void SVC_Handler(void) RT_WEAK;
void DebugMon_Handler(void) RT_WEAK;
void PendSV_Handler(void) RT_WEAK;

/* The MPS2 boards in QEMU have 32 external interrupts. */
#define RT_IRQS(X)                                                           \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)     \
  X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)      \
  X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31)
#define RT_IRQ_DECLARE(n) void IRQ##n##_Handler(void) RT_WEAK;
#define RT_IRQ_ENTRY(n) IRQ##n##_Handler,
RT_IRQS(RT_IRQ_DECLARE)

/* The vector table; the linker script puts .vectors at the start of TEXT,
 * where QEMU's armv7m loader reads the initial SP and PC. */
__attribute__((section(".vectors"), used))
const rt_vector rt_vectors[16 + 32] = {
    (rt_vector)(uintptr_t)__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    RT_IRQS(RT_IRQ_ENTRY)
};

/* Reset entry. Runs without touching RAM until .data and .bss are set up:
 * sets up the clock tree on an STM32F4, starts SysTick first so boot time
 * counts from reset, copies .data, zeroes
 * .bss, paints the whole (still unused) main stack with RT_STACK_PAINT,
 * enables the FPU if the code is built for one, then calls rt_start.
 * Interrupts stay masked until rt_start so the SysTick handler cannot run
 * while .bss is being cleared. */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
  __asm__ volatile(
      "cpsid i\n"
#ifdef LAB_UART_STM32F4
      /* STM32F4: the core clock first, so SysTick counts at LAB_CPU_HZ. */
      "bl rt_clock_init\n"
#endif
      "bl rt_systick_start\n"
      /* .data: copy words from the load image in TEXT. */
      "ldr r0, =__data_start__\n"
      "ldr r1, =__data_end__\n"
      "ldr r2, =__data_load__\n"
      "1: cmp r0, r1\n"
      "bhs 2f\n"
      "ldr r3, [r2], #4\n"
      "str r3, [r0], #4\n"
      "b 1b\n"
      /* .bss: zero. */
      "2: ldr r0, =__bss_start__\n"
      "ldr r1, =__bss_end__\n"
      "movs r3, #0\n"
      "3: cmp r0, r1\n"
      "bhs 4f\n"
      "str r3, [r0], #4\n"
      "b 3b\n"
      /* Stack: paint from the bottom up to the top (the current SP). */
      "4: ldr r0, =__stack_bottom__\n"
      "ldr r1, =__stack_top__\n"
      "ldr r3, =" RT_STR(RT_STACK_PAINT) "\n"
      "5: cmp r0, r1\n"
      "bhs 6f\n"
      "str r3, [r0], #4\n"
      "b 5b\n"
      "6:\n"
#ifdef __ARM_FP
      /* CPACR: full access to CP10 and CP11. */
      "ldr r0, =0xE000ED88\n"
      "ldr r1, [r0]\n"
      "orr r1, r1, #(0xF << 20)\n"
      "str r1, [r0]\n"
      "dsb\n"
      "isb\n"
#endif
      "bl rt_start\n"
      ".ltorg\n");
}

/* Splits the command line in place at spaces into argv; returns argc.
 * QEMU joins its arg= values with single spaces, so arguments cannot
 * contain spaces themselves. */
static int rt_split_args(char *s, char **argv)
{
  int argc = 0;

  while (*s != '\0' && argc < RT_ARGV_MAX) {
    while (*s == ' ')
      *s++ = '\0';
    if (*s == '\0')
      break;
    argv[argc++] = s;
    while (*s != '\0' && *s != ' ')
      s++;
  }
  argv[argc] = 0;
  return argc;
}

/* C part of reset: brings up the UART, unmasks interrupts, builds argv
 * from the semihosting command line, runs main and exits with its value. */
void rt_start(void)
{
  static char cmdline[RT_CMDLINE_MAX];
  static char *argv[RT_ARGV_MAX + 1];
  int argc = 0;

  rt_uart_init();
  __asm__ volatile("cpsie i" ::: "memory");
  if (rt_get_cmdline(cmdline, sizeof cmdline) >= 0)
    argc = rt_split_args(cmdline, argv);
  rt_exit(main(argc, argv));
}

/* Reports an exception or interrupt without a handler and exits. */
void Default_Handler(void)
{
  uint32_t ipsr;

  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  rt_printf("UNHANDLED EXCEPTION %u\n", (unsigned)(ipsr & IPSR_EXCEPTION_MASK));
  rt_exit(RT_EXIT_FAULT);
}

/* Measures the stack high-water mark from the paint left by reset. */
size_t rt_stack_used(void)
{
  const uint32_t *p = __stack_bottom__;

  while (p < __stack_top__ && *p == RT_STACK_PAINT)
    p++;
  return (size_t)((uintptr_t)__stack_top__ - (uintptr_t)p);
}
