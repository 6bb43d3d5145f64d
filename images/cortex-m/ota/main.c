/*
 * ota - over-the-air update firmware for power-loss experiments.
 *
 * argv[1] selects the update strategy:
 *   ab       the new image goes into the inactive slot, its SHA-256 is
 *            verified, the boot record marks it pending with BOOT_TRIES
 *            trial boots, the device reboots into it and the first healthy
 *            start commits it; a trial that fails (bad hash, unhealthy,
 *            trials used up) rolls back to the committed slot
 *   inplace  the new image overwrites slot A page by page, then the device
 *            reboots into it; a cut in between leaves no valid image
 *
 * NV layout: layout.h. Serial protocol: images/cortex-m/README.md.
 *
 * Power-fail warning (IRQ LAB_POWER_FAIL_IRQ): prints POWERFAIL and stops
 * the flash layer from starting a new erase or program; the one running
 * completes. The code that wanted to write then prints
 * "POWERFAIL stopped quiet_us=<n>" and idles until the power goes. For the
 * A/B strategy every state between two page writes is consistent; the
 * in-place writer leaves a half-written slot A.
 *
 * Reboot: SCB->AIRCR SYSRESETREQ, which QEMU turns into a machine reset
 * that keeps RAM and the NV region. A small note at the start of the HEAP
 * region (PSRAM, unused by this image) survives it but not a power cut
 * (a new QEMU process starts with zeroed RAM): the reset count and the
 * version an UPDATE command is waiting for.
 */
#include "rt.h"

#include "boot.h"
#include "flash.h"
#include "image.h"
#include "layout.h"
#include "sha256.h"

#ifndef LAB_POWER_FAIL_IRQ
#error "LAB_POWER_FAIL_IRQ must be defined (board profile with power_fail.irq)"
#endif

#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define AIRCR_VECTKEY 0x05FA0000u
#define AIRCR_SYSRESETREQ (1u << 2)

/* IRQ<LAB_POWER_FAIL_IRQ>_Handler, overriding the runtime's weak alias. */
#define OTA_CAT_(a, b, c) a##b##c
#define OTA_CAT(a, b, c) OTA_CAT_(a, b, c)
#define POWER_FAIL_HANDLER OTA_CAT(IRQ, LAB_POWER_FAIL_IRQ, _Handler)
void POWER_FAIL_HANDLER(void);

#define LINE_MAX 64
#define NOTE_MAGIC 0x4E4F5445u /* "NOTE" */

enum strategy { STRATEGY_AB, STRATEGY_INPLACE };

/* Survives a guest reset, not a power cut (see the top of this file). */
struct reset_note {
  uint32_t magic;
  uint32_t resets;          /* guest resets since power-on */
  uint32_t update_version;  /* UPDATE in progress across the reboot, or 0 */
  uint32_t check;           /* magic ^ resets ^ update_version */
};
extern uint32_t __heap_start__[];
#define NOTE ((volatile struct reset_note *)(uintptr_t)__heap_start__)

static enum strategy strategy;
static uint8_t payload[IMAGE_MAX];
static volatile uint64_t powerfail_us;   /* time of the warning */
static volatile uint64_t quiet_us;       /* end of the flash operation running then */

/* Power-fail warning: no new flash operation from now on. */
void POWER_FAIL_HANDLER(void)
{
  powerfail_us = rt_micros();
  flash_power_fail();
  if (!flash_busy)
    quiet_us = powerfail_us;
  rt_puts("POWERFAIL\n");
}

/* Idles with interrupts on; never returns. */
static __attribute__((noreturn)) void idle(void)
{
  for (;;)
    __asm__ volatile("wfi");
}

/* A flash write was refused because power is failing: reports how long
 * after the warning the flash went quiet, and waits for the cut. */
static __attribute__((noreturn)) void power_stop(void)
{
  uint64_t quiet = quiet_us != 0 ? quiet_us : flash_quiet_us;

  rt_printf("POWERFAIL stopped quiet_us=%u\n", (unsigned)(quiet - powerfail_us));
  idle();
}

static __attribute__((noreturn)) void bricked(const char *reason)
{
  rt_printf("BRICKED reason=%s\n", reason);
  idle();
}

static void note_write(uint32_t resets, uint32_t update_version)
{
  NOTE->magic = NOTE_MAGIC;
  NOTE->resets = resets;
  NOTE->update_version = update_version;
  NOTE->check = NOTE_MAGIC ^ resets ^ update_version;
}

/* Reads the note, starting a fresh one at power-on. */
static void note_boot(void)
{
  if (NOTE->magic != NOTE_MAGIC ||
      NOTE->check != (NOTE_MAGIC ^ NOTE->resets ^ NOTE->update_version))
    note_write(0, 0);
}

static __attribute__((noreturn)) void reboot(void)
{
  note_write(NOTE->resets + 1, NOTE->update_version);
  rt_printf("REBOOT us=%u\n", (unsigned)rt_micros());
  __asm__ volatile("dsb" ::: "memory");
  SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
  __asm__ volatile("dsb" ::: "memory");
  for (;;)
    ;
}

/* Blank device: factory-programs version 1 into slot A and commits it. */
static void provision(void)
{
  struct image_header h;
  struct boot_record r = {.active = SLOT_A, .pending = SLOT_NONE, .tries = 0, .committed = 1};

  image_generate(1, 0, payload, &h);
  if (image_write(SLOT_A, &h, payload, 1) != 0 || boot_record_write(&r) != 0)
    power_stop();
  rt_printf("PROVISIONED version=%u\n", (unsigned)h.version);
}

/* The boot decision; returns the running slot and its header, or does not
 * return (bricked, power failing, or a failed trial rebooting). */
static int start(struct image_header *h)
{
  struct boot_record r;
  struct image_header ph;
  enum image_state st;
  int slot, trial = 0, rolled_back = 0;
  uint32_t from = 0;

  if (boot_record_read(&r) < 0) {
    if (!boot_records_erased())
      bricked("no-boot-record");
    provision();
    if (boot_record_read(&r) < 0)
      bricked("no-boot-record");
  }
  if (strategy == STRATEGY_AB && r.pending != SLOT_NONE) {
    st = image_check(r.pending, &ph, 1);
    if (st == IMAGE_OK && r.tries > 0) {
      r.tries--;
      if (boot_record_write(&r) != 0)
        power_stop();
      rt_printf("TRIAL version=%u slot=%c tries_left=%u\n", (unsigned)ph.version,
                slot_name(r.pending), (unsigned)r.tries);
      trial = 1;
    } else {
      rt_printf("TRIAL failed slot=%c reason=%s\n", slot_name(r.pending),
                st == IMAGE_OK ? "tries" : image_state_name(st));
      from = (st == IMAGE_OK || st == IMAGE_BAD_HASH) ? ph.version : 0;
      r.pending = SLOT_NONE;
      r.tries = 0;
      r.committed = 1;
      if (boot_record_write(&r) != 0)
        power_stop();
      rolled_back = 1;
    }
  }
  if (trial) {
    slot = r.pending;
    *h = ph; /* verified above */
  } else {
    slot = r.active;
    st = image_check(slot, h, 1);
    if (st != IMAGE_OK)
      bricked(image_state_name(st));
  }
  if (rolled_back)
    rt_printf("ROLLBACK from=%u to=%u\n", (unsigned)from, (unsigned)h->version);
  if (h->flags & IMAGE_FLAG_FAULTY) {
    rt_printf("HEALTH fail version=%u slot=%c\n", (unsigned)h->version, slot_name(slot));
    if (trial)
      reboot();
    bricked("unhealthy");
  }
  if (trial) {
    r.active = (uint8_t)slot;
    r.pending = SLOT_NONE;
    r.tries = 0;
    r.committed = 1;
    if (boot_record_write(&r) != 0)
      power_stop();
    rt_printf("COMMITTED version=%u\n", (unsigned)h->version);
  }
  if (NOTE->update_version != 0) {
    if (NOTE->update_version == h->version)
      rt_printf("UPDATE done version=%u\n", (unsigned)h->version);
    else
      rt_printf("UPDATE failed version=%u reason=%s\n", (unsigned)NOTE->update_version,
                rolled_back ? "rollback" : "not-running");
    note_write(NOTE->resets, 0);
  }
  return slot;
}

/* "UPDATE <v>" or "UPDATE <v> faulty". */
static void cmd_update(const char *arg)
{
  struct image_header h, chk;
  struct boot_record r;
  uint32_t version = 0, flags = 0;
  int target;
  enum image_state st;

  while (*arg >= '0' && *arg <= '9')
    version = version * 10 + (uint32_t)(*arg++ - '0');
  if (rt_str_eq(arg, " faulty"))
    flags = IMAGE_FLAG_FAULTY;
  else if (*arg != '\0')
    version = 0;
  if (version == 0) {
    rt_puts("ERR usage: UPDATE <version> [faulty]\n");
    return;
  }
  if (boot_record_read(&r) < 0) {
    rt_puts("ERR no boot record\n");
    return;
  }
  target = strategy == STRATEGY_AB ? (r.active == SLOT_A ? SLOT_B : SLOT_A) : SLOT_A;
  image_generate(version, flags, payload, &h);
  rt_printf("UPDATE begin version=%u bytes=%u\n", (unsigned)version, (unsigned)h.length);
  rt_printf("UPDATE writing slot=%c pages=%u us=%u\n", slot_name(target),
            (unsigned)(1 + (h.length + FLASH_PAGE - 1) / FLASH_PAGE), (unsigned)rt_micros());
  if (image_write(target, &h, payload, strategy == STRATEGY_AB) != 0)
    power_stop();
  if (strategy == STRATEGY_AB) {
    st = image_check(target, &chk, 1);
    if (st != IMAGE_OK) {
      rt_printf("UPDATE failed version=%u reason=%s\n", (unsigned)version, image_state_name(st));
      return;
    }
    rt_printf("VERIFY ok slot=%c us=%u\n", slot_name(target), (unsigned)rt_micros());
    r.pending = (uint8_t)target;
    r.tries = BOOT_TRIES;
    r.committed = 0;
    if (boot_record_write(&r) != 0)
      power_stop();
  }
  note_write(NOTE->resets, version);
  reboot();
}

/* Prints "<slot>=<version|->:<state>". */
static void status_slot(int slot)
{
  struct image_header h;
  enum image_state st = image_check(slot, &h, 1);

  if (st == IMAGE_OK || st == IMAGE_BAD_HASH)
    rt_printf(" %c=%u:%s", slot_name(slot), (unsigned)h.version, image_state_name(st));
  else
    rt_printf(" %c=-:%s", slot_name(slot), image_state_name(st));
}

static void cmd_status(void)
{
  struct boot_record r;
  int copy = boot_record_read(&r);

  rt_printf("STATUS strategy=%s", strategy == STRATEGY_AB ? "ab" : "inplace");
  if (copy < 0) {
    rt_puts(" record=none");
  } else {
    rt_printf(" record=%d:%u active=%c", copy, (unsigned)r.seq, slot_name(r.active));
    if (r.pending == SLOT_NONE)
      rt_puts(" pending=-");
    else
      rt_printf(" pending=%c", slot_name(r.pending));
    rt_printf(" tries=%u committed=%u", (unsigned)r.tries, (unsigned)r.committed);
  }
  status_slot(SLOT_A);
  status_slot(SLOT_B);
  rt_puts("\n");
}

/* Reads one line (CR dropped, cut at LINE_MAX - 1 bytes). */
static void read_line(char *buf)
{
  int n = 0, c;

  while ((c = rt_getc()) != '\n')
    if (c != '\r' && n < LINE_MAX - 1)
      buf[n++] = (char)c;
  buf[n] = '\0';
}

static int starts_with(const char *s, const char *prefix)
{
  while (*prefix != '\0')
    if (*s++ != *prefix++)
      return 0;
  return 1;
}

int main(int argc, char **argv)
{
  struct image_header h;
  char line[LINE_MAX];
  int slot;

  if (argc >= 2 && rt_str_eq(argv[1], "ab")) {
    strategy = STRATEGY_AB;
  } else if (argc >= 2 && rt_str_eq(argv[1], "inplace")) {
    strategy = STRATEGY_INPLACE;
  } else {
    rt_puts("usage: ota ab|inplace\n");
    return 2;
  }
  NVIC_ISER[LAB_POWER_FAIL_IRQ / 32] = 1u << (LAB_POWER_FAIL_IRQ % 32);
  note_boot();
  rt_printf("BOOT strategy=%s resets=%u\n", argv[1], (unsigned)NOTE->resets);
  slot = start(&h);
  rt_printf("READY version=%u slot=%c\n", (unsigned)h.version, slot_name(slot));
  for (;;) {
    read_line(line);
    if (starts_with(line, "UPDATE "))
      cmd_update(line + 7);
    else if (rt_str_eq(line, "STATUS"))
      cmd_status();
    else if (rt_str_eq(line, "SELFTEST"))
      rt_printf("SELFTEST sha256=%s\n", sha256_selftest() == 0 ? "ok" : "fail");
    else if (rt_str_eq(line, "EXIT"))
      return 0;
    else if (line[0] != '\0')
      rt_printf("ERR unknown command: %s\n", line);
  }
}
