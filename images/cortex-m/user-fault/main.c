/*
 * A user's own firmware, deliberately not built on the lab's runtime: its
 * own vector table, reset code, UART writes and HardFault handler. The
 * handler is not called HardFault_Handler and reports in its own words, then
 * exits through semihosting with code 3, as many bare-metal projects do. The
 * lab must still catch the fault as a HardFault from outside (QEMU's gdbstub),
 * with CFSR/HFSR and the faulting PC.
 *
 * argv[1] (semihosting command line) picks the fault: `undef` or `bus`.
 */
#include <stdint.h>

extern uint32_t stack_top;

#define UART0_DATA (*(volatile uint32_t *)0x40004000)
#define UART0_STATE (*(volatile uint32_t *)0x40004004)
#define UART0_CTRL (*(volatile uint32_t *)0x40004008)
#define UART0_BAUDDIV (*(volatile uint32_t *)0x40004010)

static void put(const char *s)
{
    for (; *s; s++) {
        while (UART0_STATE & 1u) {
        }
        UART0_DATA = (uint32_t)*s;
    }
}

/* ARM semihosting: r0 = operation, r1 = argument block. */
static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void __attribute__((noreturn)) leave(uint32_t code)
{
    const uint32_t block[2] = {0x20026u, code}; /* ADP_Stopped_ApplicationExit */
    semihost(0x20u, block);                     /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

/* The user's own crash handler: no register dump, just its own words. */
void __attribute__((noreturn)) on_crash(void)
{
    put("oops: the device crashed, restarting is up to you\n");
    leave(3);
}

static void __attribute__((noinline)) crash_undefined(void)
{
    __asm__ volatile("udf #0");
}

static uint32_t __attribute__((noinline)) crash_bus(void)
{
    return *(volatile uint32_t *)0xF0000000u;
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

void __attribute__((noreturn)) reset(void)
{
    UART0_BAUDDIV = 16;
    UART0_CTRL = 1; /* TX enable */
    static char line[64]; /* zero: QEMU starts RAM cleared, and nothing else runs first */
    struct {
        char *buf;
        uint32_t len;
    } cmdline = {line, sizeof line - 1};
    semihost(0x15u, &cmdline); /* SYS_GET_CMDLINE: "prog arg" */
    const char *arg = line;
    while (*arg && *arg != ' ') {
        arg++;
    }
    while (*arg == ' ') {
        arg++;
    }
    put("user firmware up\n");
    if (streq(arg, "bus")) {
        crash_bus();
    } else {
        crash_undefined();
    }
    leave(0);
}

static void idle(void)
{
    for (;;) {
    }
}

/* Initial SP, reset, NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".isr_vector"), used)) static void (*const vectors[])(void) = {
    (void (*)(void))&stack_top, reset, idle, on_crash, idle, idle, idle,
};
