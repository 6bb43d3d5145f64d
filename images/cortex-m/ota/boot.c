/*
 * boot.c - the two-copy boot record (see boot.h).
 */
#include "boot.h"

#include <stddef.h>

#include "layout.h"

uint32_t crc32(const void *data, uint32_t len)
{
  const uint8_t *p = data;
  uint32_t crc = 0xFFFFFFFFu;

  while (len--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

/* Copies the record at `off` into *r; non-zero when it is valid. */
static int boot_record_load(uint32_t off, struct boot_record *r)
{
  const uint8_t *src = flash_ptr(off);
  uint8_t *dst = (uint8_t *)r;

  for (uint32_t i = 0; i < sizeof *r; i++)
    dst[i] = src[i];
  return r->magic == BOOT_MAGIC && r->crc == crc32(r, offsetof(struct boot_record, crc)) &&
         (r->active == SLOT_A || r->active == SLOT_B);
}

int boot_record_read(struct boot_record *r)
{
  struct boot_record c0, c1;
  int v0 = boot_record_load(NV_RECORD0, &c0);
  int v1 = boot_record_load(NV_RECORD1, &c1);

  if (v0 && (!v1 || c0.seq > c1.seq)) {
    *r = c0;
    return 0;
  }
  if (v1) {
    *r = c1;
    return 1;
  }
  return -1;
}

int boot_records_erased(void)
{
  return flash_is_erased(NV_RECORD0, FLASH_PAGE) && flash_is_erased(NV_RECORD1, FLASH_PAGE);
}

int boot_record_write(struct boot_record *r)
{
  static uint8_t page[FLASH_PAGE];
  struct boot_record cur;
  int copy = boot_record_read(&cur);
  uint8_t *src = (uint8_t *)r;

  r->magic = BOOT_MAGIC;
  r->seq = copy < 0 ? 1 : cur.seq + 1;
  r->crc = crc32(r, offsetof(struct boot_record, crc));
  for (uint32_t i = 0; i < FLASH_PAGE; i++)
    page[i] = i < sizeof *r ? src[i] : 0xFF;
  return flash_write_page(copy == 0 ? NV_RECORD1 : NV_RECORD0, page);
}
