/*
 * boot.h - the boot record: which slot runs, which one is on trial.
 *
 * Two copies, one page each (NV_RECORD0, NV_RECORD1). A write goes to the
 * copy that does not hold the newest valid record, with the sequence number
 * one higher, so a torn write (power cut while erasing or programming that
 * page) leaves the previous record intact in the other copy. A copy is
 * valid when its magic and its CRC-32 (over the fields before `crc`) match;
 * the valid copy with the highest sequence number wins.
 */
#ifndef OTA_BOOT_H
#define OTA_BOOT_H

#include <stdint.h>

#define BOOT_MAGIC 0x31544F42u /* "BOT1" */
#define BOOT_TRIES 3           /* trial boots a pending image gets */

struct boot_record {
  uint32_t magic;
  uint32_t seq;       /* higher = newer */
  uint8_t active;     /* committed slot: SLOT_A or SLOT_B */
  uint8_t pending;    /* slot on trial, or SLOT_NONE */
  uint8_t tries;      /* trial boots left for `pending` */
  uint8_t committed;  /* 1 when no trial is pending */
  uint32_t crc;       /* CRC-32 of the bytes above */
};

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32). */
uint32_t crc32(const void *data, uint32_t len);
/* Reads the newest valid record into *r; returns its copy (0 or 1), or -1
 * when neither copy is valid. */
int boot_record_read(struct boot_record *r);
/* Non-zero when both record pages are erased (a blank device). */
int boot_records_erased(void);
/* Writes *r (seq, magic and crc are filled in) into the other copy than
 * the newest valid one. Returns 0, or -1 when power is failing. */
int boot_record_write(struct boot_record *r);

#endif /* OTA_BOOT_H */
