/*
 * fault.c - HardFault report. MemManage, BusFault and UsageFault share the
 * handler; they stay disabled in SHCSR, so every fault escalates to
 * HardFault and HFSR shows FORCED.
 */
#include "rt.h"

#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* Word offsets in the exception frame pushed on entry. */
enum { FRAME_LR = 5, FRAME_PC = 6, FRAME_XPSR = 7 };

volatile int rt_fault_in_handler;

__attribute__((noreturn, used)) void rt_fault_report(const uint32_t *frame);

/* Passes the exception frame to rt_fault_report: EXC_RETURN bit 2 in LR
 * tells whether it was pushed on the main or the process stack. */
__attribute__((naked)) void HardFault_Handler(void)
{
  __asm__ volatile("tst lr, #4\n"
                   "ite eq\n"
                   "mrseq r0, msp\n"
                   "mrsne r0, psp\n"
                   "b rt_fault_report\n");
}

void MemManage_Handler(void) __attribute__((alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((alias("HardFault_Handler")));

/* Prints the one-line HARDFAULT report, then either locks up on purpose
 * (rt_fault_in_handler) or exits with RT_EXIT_FAULT. */
void rt_fault_report(const uint32_t *frame)
{
  rt_printf("HARDFAULT pc=0x%08x lr=0x%08x xpsr=0x%08x cfsr=0x%08x hfsr=0x%08x"
            " bfar=0x%08x mmfar=0x%08x\n",
            (unsigned)frame[FRAME_PC], (unsigned)frame[FRAME_LR],
            (unsigned)frame[FRAME_XPSR], (unsigned)SCB_CFSR, (unsigned)SCB_HFSR,
            (unsigned)SCB_BFAR, (unsigned)SCB_MMFAR);
  if (rt_fault_in_handler)
    __asm__ volatile("udf #0");
  rt_exit(RT_EXIT_FAULT);
}
