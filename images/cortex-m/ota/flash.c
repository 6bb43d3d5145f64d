/*
 * flash.c - emulated NOR flash on the nonvolatile region (see flash.h).
 */
#include "flash.h"

#include "rt.h"

volatile int flash_power_failing;
volatile int flash_busy;
volatile uint64_t flash_quiet_us;

void flash_power_fail(void)
{
  flash_power_failing = 1;
}

static volatile uint32_t *flash_words(uint32_t off)
{
  return (volatile uint32_t *)(uintptr_t)(LAB_NVM_BASE + off);
}

/* Busy-waits until `us` microseconds after `*t`, then advances `*t`. */
static void flash_wait(uint64_t *t, uint32_t us)
{
  *t += us;
  while (rt_micros() < *t)
    ;
}

int flash_erase_page(uint32_t off)
{
  const uint32_t words = FLASH_PAGE / 4 / FLASH_ERASE_STEPS;
  volatile uint32_t *p = flash_words(off);
  uint64_t t;

  if (flash_power_failing)
    return -1;
  flash_busy = 1;
  t = rt_micros();
  for (uint32_t step = 0; step < FLASH_ERASE_STEPS; step++) {
    for (uint32_t i = 0; i < words; i++)
      *p++ = 0xFFFFFFFFu;
    flash_wait(&t, FLASH_ERASE_US / FLASH_ERASE_STEPS);
  }
  flash_busy = 0;
  if (flash_power_failing)
    flash_quiet_us = rt_micros();
  return 0;
}

int flash_program_page(uint32_t off, const void *data)
{
  const uint32_t words = FLASH_PAGE / 4 / FLASH_PROGRAM_STEPS;
  const uint8_t *src = data;
  volatile uint32_t *p = flash_words(off);
  uint64_t t;

  if (flash_power_failing)
    return -1;
  flash_busy = 1;
  t = rt_micros();
  for (uint32_t step = 0; step < FLASH_PROGRAM_STEPS; step++) {
    for (uint32_t i = 0; i < words; i++, src += 4)
      *p++ &= (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
              (uint32_t)src[3] << 24;
    flash_wait(&t, FLASH_PROGRAM_US / FLASH_PROGRAM_STEPS);
  }
  flash_busy = 0;
  if (flash_power_failing)
    flash_quiet_us = rt_micros();
  return 0;
}

int flash_write_page(uint32_t off, const void *data)
{
  if (flash_erase_page(off) != 0)
    return -1;
  return flash_program_page(off, data);
}

int flash_is_erased(uint32_t off, uint32_t len)
{
  const uint8_t *p = flash_ptr(off);

  for (uint32_t i = 0; i < len; i++)
    if (p[i] != 0xFF)
      return 0;
  return 1;
}
