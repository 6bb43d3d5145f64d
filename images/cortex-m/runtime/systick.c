/*
 * systick.c - 64-bit cycle counter from SysTick plus an overflow count.
 */
#include "rt.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)

#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SCB_ICSR_PENDSTSET (1u << 26)

#define SYST_RELOAD 0xFFFFFFu
#define SYST_PERIOD_LOG2 24

/* SysTick wraps since reset; written only by SysTick_Handler. */
static volatile uint32_t rt_systick_wraps;

/* Starts the counter; it must not use RAM beyond its own stack frame,
 * because .data and .bss are not initialised yet when it runs. */
void rt_systick_start(void)
{
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

/* Counts one wrap of the 24-bit counter. */
void SysTick_Handler(void)
{
  rt_systick_wraps++;
}

/* Reads SYST_CVR, skipping 0: the counter reads 0 during the tick in which
 * a wrap is signalled (in QEMU, until its timer callback has run), so 0 does
 * not tell whether the wrap is already pending. */
static uint32_t rt_systick_cvr_nonzero(void)
{
  uint32_t cvr;

  while ((cvr = SYST_CVR) == 0)
    ;
  return cvr;
}

/* Counts cycles as wraps * 2^24 plus the ticks into the current period,
 * (2^24 - CVR) mod 2^24, with interrupts masked. A wrap that is pending but
 * not yet counted shows in ICSR.PENDSTSET; the counter is then read again
 * so that both halves belong to the same period. */
uint64_t rt_cycles(void)
{
  uint32_t primask, wraps, cvr;

  __asm__ volatile("mrs %0, primask\n"
                   "cpsid i"
                   : "=r"(primask)::"memory");
  wraps = rt_systick_wraps;
  cvr = rt_systick_cvr_nonzero();
  if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
    wraps++;
    cvr = rt_systick_cvr_nonzero();
  }
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return ((uint64_t)wraps << SYST_PERIOD_LOG2) + ((0u - cvr) & SYST_RELOAD);
}

/* Converts rt_cycles to microseconds at LAB_CPU_HZ. */
uint64_t rt_micros(void)
{
  return rt_cycles() * 1000000u / LAB_CPU_HZ;
}
