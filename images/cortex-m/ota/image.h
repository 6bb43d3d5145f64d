/*
 * image.h - program images in the slots.
 *
 * A slot holds a header page followed by the payload (from the slot's
 * second page on). The payload stands for the downloaded binary: it is
 * generated from the version (image_generate), IMAGE_SIZE(version) bytes.
 * The header carries the payload's SHA-256; its own fields are covered by
 * a CRC-32 so a torn header page is recognised as such.
 */
#ifndef OTA_IMAGE_H
#define OTA_IMAGE_H

#include <stdint.h>

#include "sha256.h"

#define IMAGE_MAGIC 0x49415451u /* "QTAI" */
#define IMAGE_FLAG_FAULTY 1u    /* the release fails its start-up health check */
#define IMAGE_MAX 16384u
/* Payload bytes of a version: 16 KiB minus 0..45 bytes, so most versions
 * end inside a page. */
#define IMAGE_SIZE(v) (IMAGE_MAX - 3u * ((v) % 16u))

struct image_header {
  uint32_t magic;
  uint32_t version;
  uint32_t length;   /* payload bytes */
  uint32_t flags;    /* IMAGE_FLAG_* */
  uint8_t sha256[SHA256_DIGEST_SIZE];
  uint32_t crc;      /* CRC-32 of the bytes above */
};

enum image_state {
  IMAGE_OK = 0,
  IMAGE_EMPTY,       /* header page erased */
  IMAGE_BAD_HEADER,  /* magic, CRC or length wrong */
  IMAGE_BAD_HASH,    /* the payload does not match the header's SHA-256 */
};

/* Writes version's payload into buf (IMAGE_MAX bytes) and fills *h. */
void image_generate(uint32_t version, uint32_t flags, uint8_t *buf, struct image_header *h);
/* Checks the slot's header (and with `hash`, the payload's SHA-256);
 * copies the header to *h whenever it is readable. */
enum image_state image_check(int slot, struct image_header *h, int hash);
/* Name of a state for the serial lines: ok, empty, bad-header, bad-hash. */
const char *image_state_name(enum image_state s);
/* Writes header and payload into the slot, page by page. header_last: the
 * header page is erased first and programmed after the payload (A/B);
 * otherwise the pages are rewritten in address order, header first
 * (in-place). Returns 0, or -1 when a write was refused (power failing). */
int image_write(int slot, const struct image_header *h, const uint8_t *payload, int header_last);

#endif /* OTA_IMAGE_H */
