/*
 * bench.c - shared part of the benchmark firmwares (see bench.h).
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

const char *const lab_workloads[] = {
    "hello", "gc", "leak", "clean", "throw", "oom", "poke", "abort",
    "timerleak", "timerclean", "msgload", NULL,
};

void lab_usage(const char *engine)
{
  rt_printf("usage: %s WORKLOAD [key=N ...]; workloads:", engine);
  for (int i = 0; lab_workloads[i] != NULL; i++)
    rt_printf(" %s", lab_workloads[i]);
  rt_printf("\n");
}

/* Parses a decimal or 0x-hex number with an optional k/K/m/M suffix.
 * Returns 0 on success. */
static int lab_parse_num(const char *s, unsigned long *out)
{
  unsigned long v = 0;
  int base = 10, digits = 0;

  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  for (;; s++, digits++) {
    int d;
    if (*s >= '0' && *s <= '9')
      d = *s - '0';
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = *s - 'a' + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      d = *s - 'A' + 10;
    else
      break;
    v = v * (unsigned long)base + (unsigned long)d;
  }
  if (digits == 0)
    return -1;
  if (*s == 'k' || *s == 'K') {
    v <<= 10;
    s++;
  } else if (*s == 'm' || *s == 'M') {
    v <<= 20;
    s++;
  }
  if (*s != '\0')
    return -1;
  *out = v;
  return 0;
}

unsigned long lab_opt(int argc, char **argv, const char *key, unsigned long def,
                      const char *const *keys)
{
  size_t klen = strlen(key);
  unsigned long v = def;

  for (int i = 2; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    int known = 0;
    for (int k = 0; eq != NULL && keys[k] != NULL; k++)
      if (strlen(keys[k]) == (size_t)(eq - argv[i]) &&
          strncmp(keys[k], argv[i], (size_t)(eq - argv[i])) == 0)
        known = 1;
    if (!known) {
      rt_printf("bad option '%s' (key=N expected; keys:", argv[i]);
      for (int k = 0; keys[k] != NULL; k++)
        rt_printf(" %s", keys[k]);
      rt_printf(")\n");
      rt_exit(LAB_EXIT_USAGE);
    }
    if ((size_t)(eq - argv[i]) == klen && strncmp(argv[i], key, klen) == 0 &&
        lab_parse_num(eq + 1, &v) != 0) {
      rt_printf("bad number in '%s'\n", argv[i]);
      rt_exit(LAB_EXIT_USAGE);
    }
  }
  return v;
}

void lab_phase(const char *name)
{
  rt_printf("PHASE %s us=%llu\n", name, (unsigned long long)rt_micros());
}

static uint64_t run_begin_us;

uint64_t lab_run_begin(void)
{
  run_begin_us = rt_micros();
  return run_begin_us;
}

void lab_after_print(void)
{
  static int printed;

  if (!printed) {
    printed = 1;
    lab_phase("first_line");
  }
}

/* --- GC timing --- */

static uint32_t gc_count;
static uint64_t gc_total_us, gc_max_us, gc_started_us;
static int gc_depth;

void (*lab_gc_observer)(void);

void lab_gc_begin(void)
{
  if (gc_depth == 0 && lab_gc_observer != NULL)
    lab_gc_observer();
  if (gc_depth++ == 0)
    gc_started_us = rt_micros();
}

void lab_gc_end(void)
{
  if (--gc_depth == 0) {
    uint64_t d = rt_micros() - gc_started_us;
    gc_count++;
    gc_total_us += d;
    if (d > gc_max_us)
      gc_max_us = d;
  }
}

void lab_gc_report(uint64_t run_us)
{
  /* The share of run time spent collecting, in parts per million. */
  uint64_t share_ppm = run_us ? gc_total_us * 1000000u / run_us : 0;

  rt_printf("GC count=%u total_us=%llu max_us=%llu run_us=%llu share_ppm=%llu\n",
            (unsigned)gc_count, (unsigned long long)gc_total_us,
            (unsigned long long)gc_max_us, (unsigned long long)run_us,
            (unsigned long long)share_ppm);
}

/* --- heap accounting --- */

/* Header in front of every block: keeps the 8-byte alignment newlib's
 * malloc gives and records the requested size. */
typedef union {
  size_t size;
  uint64_t align;
} lab_block;

size_t lab_heap_used;
size_t lab_heap_peak;
size_t lab_heap_limit = (size_t)-1;
unsigned lab_alloc_failures;
static uint64_t alloc_fail_us;
static size_t alloc_fail_used;

void lab_alloc_failed(size_t used)
{
  if (lab_alloc_failures++ == 0) {
    alloc_fail_us = rt_micros();
    alloc_fail_used = used;
  }
}

void lab_alloc_fail_report(void)
{
  if (lab_alloc_failures != 0)
    rt_printf("ALLOC_FAIL us=%llu run_us=%llu used=%u error_us=%llu refusals=%u\n",
              (unsigned long long)alloc_fail_us,
              (unsigned long long)(alloc_fail_us > run_begin_us
                                       ? alloc_fail_us - run_begin_us : 0),
              (unsigned)alloc_fail_used, (unsigned long long)rt_micros(),
              lab_alloc_failures);
}

static void lab_account(size_t add, size_t sub)
{
  lab_heap_used = lab_heap_used + add - sub;
  if (lab_heap_used > lab_heap_peak)
    lab_heap_peak = lab_heap_used;
}

void *lab_malloc(size_t size)
{
  lab_block *b;

  if (size > lab_heap_limit - lab_heap_used ||
      (b = malloc(sizeof *b + size)) == NULL) {
    lab_alloc_failed(lab_heap_used);
    return NULL;
  }
  b->size = size;
  lab_account(size, 0);
  return b + 1;
}

void lab_free(void *ptr)
{
  lab_block *b;

  if (ptr == NULL)
    return;
  b = (lab_block *)ptr - 1;
  lab_account(0, b->size);
  free(b);
}

void *lab_realloc(void *ptr, size_t size)
{
  lab_block *b, *nb;
  size_t old;

  if (ptr == NULL)
    return lab_malloc(size);
  if (size == 0) {
    lab_free(ptr);
    return NULL;
  }
  b = (lab_block *)ptr - 1;
  old = b->size;
  if (size > old && size - old > lab_heap_limit - lab_heap_used) {
    lab_alloc_failed(lab_heap_used);
    return NULL;
  }
  nb = realloc(b, sizeof *nb + size);
  if (nb == NULL) {
    lab_alloc_failed(lab_heap_used);
    return NULL;
  }
  nb->size = size;
  lab_account(size, old);
  return nb + 1;
}

/* --- timers --- */

typedef struct {
  int used;
  uint32_t seq;
  uint32_t period_ms; /* 0: one-shot */
  uint64_t due_us;
} lab_timer;

static lab_timer timers[LAB_TIMERS];
/* One past the highest slot ever used: the scans stop there, so a few
 * timers cost what they cost with a small table. */
static int timers_top;
static uint32_t timer_seq;
uint64_t lab_sample_interval_us = 10000;
int lab_timer_sleep;
static uint64_t next_sample_us;

/* Takes the lowest free slot: due in delay_ms, then every period_ms. */
static int lab_timer_take(uint32_t delay_ms, uint32_t period_ms)
{
  for (int i = 0; i < LAB_TIMERS; i++) {
    if (!timers[i].used) {
      timers[i].used = 1;
      timers[i].seq = timer_seq++;
      timers[i].period_ms = period_ms;
      timers[i].due_us = rt_micros() + (uint64_t)delay_ms * 1000u;
      if (i >= timers_top)
        timers_top = i + 1;
      return i;
    }
  }
  return -1;
}

int lab_timer_add(uint32_t delay_ms)
{
  return lab_timer_take(delay_ms, 0);
}

int lab_interval_add(uint32_t period_ms)
{
  /* As in browsers and Node, an interval repeats no faster than 1 ms. */
  if (period_ms == 0)
    period_ms = 1;
  return lab_timer_take(period_ms, period_ms);
}

int lab_timer_repeats(int id)
{
  return id >= 0 && id < LAB_TIMERS && timers[id].used &&
         timers[id].period_ms != 0;
}

void lab_timer_cancel(int id)
{
  if (id >= 0 && id < LAB_TIMERS)
    timers[id].used = 0;
}

int lab_timer_next(void (*sample)(void))
{
  int best = -1;

  for (int i = 0; i < timers_top; i++) {
    if (timers[i].used &&
        (best < 0 || timers[i].due_us < timers[best].due_us ||
         (timers[i].due_us == timers[best].due_us &&
          timers[i].seq < timers[best].seq)))
      best = i;
  }
  if (best < 0)
    return -1;
  for (;;) {
    uint64_t now = rt_micros();
    if (sample != NULL && lab_sample_interval_us != 0 && now >= next_sample_us) {
      sample();
      next_sample_us = rt_micros() + lab_sample_interval_us;
      continue;
    }
    if (now >= timers[best].due_us)
      break;
    if (lab_timer_sleep)
      __asm__ volatile("wfi");
  }
  if (timers[best].period_ms != 0) {
    /* Due again a period after this run starts (as Node reschedules). */
    timers[best].seq = timer_seq++;
    timers[best].due_us = rt_micros() + (uint64_t)timers[best].period_ms * 1000u;
  } else {
    timers[best].used = 0;
  }
  return best;
}

void lab_heap_sample(size_t used)
{
  rt_printf("HEAP t_us=%llu used=%u\n", (unsigned long long)rt_micros(),
            (unsigned)used);
}

/* --- peripheral access --- */

uint32_t lab_poke_count;

void lab_poke(uint32_t addr, uint32_t value)
{
  *(volatile uint32_t *)(uintptr_t)addr = value;
  lab_poke_count++;
}

uint32_t lab_peek(uint32_t addr)
{
  return *(volatile uint32_t *)(uintptr_t)addr;
}

void lab_poke_report(uint64_t run_us)
{
  uint64_t n = lab_poke_count ? lab_poke_count : 1;
  rt_printf("POKE n=%u us=%llu ns_per_access=%llu\n", (unsigned)lab_poke_count,
            (unsigned long long)run_us,
            (unsigned long long)((run_us * 1000u + n / 2u) / n));
}

/* --- errors and exit --- */

int lab_report_error(const char *message, const char *oom_marker)
{
  int oom = oom_marker != NULL && strstr(message, oom_marker) != NULL;

  rt_puts(oom ? "OOM " : "UNCAUGHT ");
  for (const char *p = message; *p != '\0' && *p != '\n'; p++)
    rt_putc(*p);
  rt_putc('\n');
  if (oom)
    lab_alloc_fail_report();
  return oom ? LAB_EXIT_OOM : LAB_EXIT_UNCAUGHT;
}

void lab_footprint(size_t heap_peak)
{
  rt_printf("FOOTPRINT heap_peak=%u stack_used=%u\n", (unsigned)heap_peak,
            (unsigned)rt_stack_used());
}

void lab_fatal(const char *message, size_t heap_peak)
{
  rt_puts("FATAL ");
  for (const char *p = message; *p != '\0' && *p != '\n'; p++)
    rt_putc(*p);
  rt_putc('\n');
  lab_footprint(heap_peak);
  abort();
}
