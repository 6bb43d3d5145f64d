/*
 * flash.h - the board's nonvolatile region (LAB_NVM_BASE, LAB_NVM_SIZE)
 * used as emulated NOR flash.
 *
 * In QEMU the region is plain RAM; the lab keeps it across power cycles
 * (erased, all 0xFF, at the first boot of a run). This layer makes writes
 * behave like flash: a page must be erased (0xFF) before it is programmed,
 * programming only clears bits, and both take time, spent in a busy-wait on
 * rt_micros in small steps, so a power cut can leave a page half erased or
 * half programmed.
 */
#ifndef OTA_FLASH_H
#define OTA_FLASH_H

#include <stdint.h>

#if !defined(LAB_NVM_BASE) || !defined(LAB_NVM_SIZE)
#error "LAB_NVM_BASE and LAB_NVM_SIZE must be defined (board profile with a kind: nvm region)"
#endif

#define FLASH_PAGE 256u           /* erase and program unit, bytes */
#define FLASH_ERASE_US 500u       /* page erase time */
#define FLASH_PROGRAM_US 1000u    /* page program time */
#define FLASH_ERASE_STEPS 4u      /* an erase clears the page in 4 parts */
#define FLASH_PROGRAM_STEPS 8u    /* programming writes it in 8 parts */

/* Read access: the byte at offset `off` of the region. */
static inline const uint8_t *flash_ptr(uint32_t off)
{
  return (const uint8_t *)(uintptr_t)(LAB_NVM_BASE + off);
}

/* Set by flash_power_fail(): no new erase or program starts afterwards
 * (one already running completes). */
extern volatile int flash_power_failing;
/* Non-zero while an erase or program is running. */
extern volatile int flash_busy;
/* rt_micros() when the operation that was running at the power-fail
 * warning ended (0 until then). */
extern volatile uint64_t flash_quiet_us;

/* Called from the power-fail interrupt. */
void flash_power_fail(void);
/* Erases the page at `off` (a multiple of FLASH_PAGE). Returns 0, or -1
 * without touching it once power is failing. */
int flash_erase_page(uint32_t off);
/* Programs FLASH_PAGE bytes at `off` (each word ANDed into the page, as on
 * NOR flash: erase first). Returns 0, or -1 as flash_erase_page. */
int flash_program_page(uint32_t off, const void *data);
/* Erase, then program. */
int flash_write_page(uint32_t off, const void *data);
/* Non-zero when `len` bytes at `off` all read 0xFF. */
int flash_is_erased(uint32_t off, uint32_t len);

#endif /* OTA_FLASH_H */
