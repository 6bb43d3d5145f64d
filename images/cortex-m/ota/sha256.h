/*
 * sha256.h - SHA-256 (FIPS 180-4), small and freestanding.
 */
#ifndef OTA_SHA256_H
#define OTA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

struct sha256 {
  uint32_t h[8];
  uint64_t bytes;   /* message bytes hashed so far */
  uint8_t block[64];
  size_t used;      /* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t digest[SHA256_DIGEST_SIZE]);
/* One-shot digest of data[0..len). */
void sha256(const void *data, size_t len, uint8_t digest[SHA256_DIGEST_SIZE]);
/* Checks the FIPS 180-2 vectors "abc" and the 448-bit two-block message;
 * returns 0 when both digests match. */
int sha256_selftest(void);

#endif /* OTA_SHA256_H */
