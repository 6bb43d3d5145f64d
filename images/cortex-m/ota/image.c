/*
 * image.c - program images in the slots (see image.h).
 */
#include "image.h"

#include <stddef.h>

#include "boot.h"
#include "layout.h"

void image_generate(uint32_t version, uint32_t flags, uint8_t *buf, struct image_header *h)
{
  uint32_t x = version * 2654435761u ^ 0x5EED0000u;
  uint32_t len = IMAGE_SIZE(version);

  if (x == 0)
    x = 1;
  for (uint32_t i = 0; i < len; i++) {
    /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (uint8_t)(x >> 24);
  }
  h->magic = IMAGE_MAGIC;
  h->version = version;
  h->length = len;
  h->flags = flags;
  sha256(buf, len, h->sha256);
  h->crc = crc32(h, offsetof(struct image_header, crc));
}

enum image_state image_check(int slot, struct image_header *h, int hash)
{
  uint32_t off = slot_offset(slot);
  const uint8_t *src = flash_ptr(off);
  uint8_t *dst = (uint8_t *)h;
  uint8_t digest[SHA256_DIGEST_SIZE];

  if (flash_is_erased(off, sizeof *h))
    return IMAGE_EMPTY;
  for (uint32_t i = 0; i < sizeof *h; i++)
    dst[i] = src[i];
  if (h->magic != IMAGE_MAGIC || h->crc != crc32(h, offsetof(struct image_header, crc)) ||
      h->length > NV_SLOT_SIZE - FLASH_PAGE)
    return IMAGE_BAD_HEADER;
  if (!hash)
    return IMAGE_OK;
  sha256(flash_ptr(off + FLASH_PAGE), h->length, digest);
  for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
    if (digest[i] != h->sha256[i])
      return IMAGE_BAD_HASH;
  return IMAGE_OK;
}

const char *image_state_name(enum image_state s)
{
  switch (s) {
  case IMAGE_OK:
    return "ok";
  case IMAGE_EMPTY:
    return "empty";
  case IMAGE_BAD_HEADER:
    return "bad-header";
  default:
    return "bad-hash";
  }
}

/* Programs payload page `n` (from 0) of the slot at `off`; the last page is
 * padded with 0xFF. */
static int image_write_payload_page(uint32_t off, const uint8_t *payload, uint32_t len, uint32_t n)
{
  static uint8_t page[FLASH_PAGE];
  uint32_t start = n * FLASH_PAGE;

  for (uint32_t i = 0; i < FLASH_PAGE; i++)
    page[i] = start + i < len ? payload[start + i] : 0xFF;
  return flash_write_page(off + FLASH_PAGE + start, page);
}

int image_write(int slot, const struct image_header *h, const uint8_t *payload, int header_last)
{
  static uint8_t header_page[FLASH_PAGE];
  uint32_t off = slot_offset(slot);
  uint32_t pages = (h->length + FLASH_PAGE - 1) / FLASH_PAGE;
  const uint8_t *src = (const uint8_t *)h;

  for (uint32_t i = 0; i < FLASH_PAGE; i++)
    header_page[i] = i < sizeof *h ? src[i] : 0xFF;
  if (header_last) {
    if (flash_erase_page(off) != 0)
      return -1;
  } else if (flash_write_page(off, header_page) != 0) {
    return -1;
  }
  for (uint32_t n = 0; n < pages; n++)
    if (image_write_payload_page(off, payload, h->length, n) != 0)
      return -1;
  if (header_last && flash_program_page(off, header_page) != 0)
    return -1;
  return 0;
}
