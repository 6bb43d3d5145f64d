/*
 * layout.h - where things live in the nonvolatile region (offsets from
 * LAB_NVM_BASE; 256-byte pages, see flash.h).
 *
 *   0x0000  boot record, copy 0 (one page)
 *   0x0100  boot record, copy 1 (one page)
 *   0x0200  unused up to 0x1000
 *   0x1000  slot A, 24 KiB (96 pages): image header page, then the payload
 *   0x7000  slot B, 24 KiB (used by the A/B strategy only)
 *   0xD000  unused up to 0x10000
 */
#ifndef OTA_LAYOUT_H
#define OTA_LAYOUT_H

#include "flash.h"

#define NV_RECORD0 0x0000u
#define NV_RECORD1 0x0100u
#define NV_SLOT_A 0x1000u
#define NV_SLOT_B 0x7000u
#define NV_SLOT_SIZE 0x6000u
#define NV_END (NV_SLOT_B + NV_SLOT_SIZE)

#if LAB_NVM_SIZE < 0xD000
#error "the nonvolatile region is too small for the OTA layout (needs 52 KiB)"
#endif

#define SLOT_A 0
#define SLOT_B 1
#define SLOT_NONE 0xFF

static inline uint32_t slot_offset(int slot)
{
  return slot == SLOT_B ? NV_SLOT_B : NV_SLOT_A;
}

static inline char slot_name(int slot)
{
  return slot == SLOT_B ? 'B' : 'A';
}

#endif /* OTA_LAYOUT_H */
