/*
 * native - the JS workloads of ../js/ written in C, for comparison with the
 * engines. Same command line (native WORKLOAD [heap=N] [sample_us=N]
 * [poll_ms=N]), same report lines (../jscommon/bench.h) and exit
 * statuses. Allocations go
 * through the same accounting wrapper over newlib-nano's malloc as
 * Duktape's. There is no collector: the GC line reports count=0, and the
 * "parse" phases are empty (engine_created and script_parsed follow
 * reset_to_main directly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "msgq.h"

/* The script's print(): one line, then the first_line bookkeeping. */
static void say(const char *line)
{
  rt_puts(line);
  rt_putc('\n');
  lab_after_print();
}

/* gc.js: objects with a name, three tags and a self-reference; a derived
 * string; a rolling window of 16 live objects. */
typedef struct item {
  int id;
  char *name;
  int *tags;
  struct item *self;
} item;

static void item_free(item *o)
{
  if (o != NULL) {
    lab_free(o->name);
    lab_free(o->tags);
    lab_free(o);
  }
}

static int run_gc(void)
{
  enum { N = 5000, KEEP = 16 };
  item *keep[KEEP] = {0};
  unsigned long sum = 0;
  char line[64];

  for (int i = 0; i < N; i++) {
    item *o = lab_malloc(sizeof *o);
    char *s;
    if (o == NULL)
      return -1;
    o->id = i;
    o->name = lab_malloc(16);
    o->tags = lab_malloc(3 * sizeof(int));
    if (o->name == NULL || o->tags == NULL)
      return -1;
    snprintf(o->name, 16, "item%d", i);
    o->tags[0] = i;
    o->tags[1] = i * 2;
    o->tags[2] = i * 3;
    o->self = o;
    s = lab_malloc(64);
    if (s == NULL)
      return -1;
    snprintf(s, 64, "%s:%d,%d,%d", o->name, o->tags[0], o->tags[1], o->tags[2]);
    sum += strlen(s);
    lab_free(s);
    item_free(keep[i % KEEP]);
    keep[i % KEEP] = o;
  }
  snprintf(line, sizeof line, "gc n=%d sum=%lu", N, sum);
  say(line);
  for (int k = 0; k < KEEP; k++)
    item_free(keep[k]);
  return 0;
}

/* leak.js / clean.js: a 1 ms timer that runs TICKS times; each run builds
 * ten strings and a "closure" holding them, kept forever (leak) or in a
 * ring of 8 (clean). */
typedef struct handler {
  struct handler *next;
  char *data[10];
} handler;

enum { TICKS = 200, RING = 8 };
static handler *handlers;     /* leak: every handler */
static handler *ring[RING];   /* clean: the last 8 */
static int ticks, handler_count;

static void handler_free(handler *h)
{
  if (h != NULL) {
    for (int j = 0; j < 10; j++)
      lab_free(h->data[j]);
    lab_free(h);
  }
}

static int tick(int leak)
{
  handler *h = lab_malloc(sizeof *h);

  if (h == NULL)
    return -1;
  for (int j = 0; j < 10; j++) {
    h->data[j] = lab_malloc(16);
    if (h->data[j] == NULL)
      return -1;
    snprintf(h->data[j], 16, "tick%d_%d", ticks, j);
  }
  if (leak) {
    h->next = handlers;
    handlers = h;
    handler_count++;
  } else {
    handler_free(ring[ticks % RING]);
    ring[ticks % RING] = h;
    handler_count = ticks + 1 < RING ? ticks + 1 : RING;
  }
  ticks++;
  if (ticks < TICKS) {
    lab_timer_add(1);
  } else {
    char line[64];
    snprintf(line, sizeof line, "%s ticks=%d handlers=%d",
             leak ? "leak" : "clean", ticks, handler_count);
    say(line);
  }
  return 0;
}

static void sample(void)
{
  lab_heap_sample(lab_heap_used);
}

static int run_timers(int leak)
{
  lab_timer_add(1);
  while (lab_timer_next(sample) >= 0)
    if (tick(leak) != 0)
      return -1;
  return 0;
}

/* timerleak.js / timerclean.js: a 10 ms interval; each tick allocates a
 * 4 KiB buffer (zeroed, as a Uint8Array) and a reader, the closure: the
 * context of a 1 s interval that reads the buffer, kept by timer id. leak
 * never cancels a reader's interval, so the timer list keeps every buffer
 * until malloc fails; clean cancels the previous one and frees it, and
 * stops after TIMER_TICKS ticks. */
enum { TICK_MS = 10, READ_MS = 1000, TIMER_TICKS = 400, BUF_BYTES = 4096 };

typedef struct {
  uint8_t *data;
} reader;

static reader *readers[LAB_TIMERS]; /* by the id of the reader's interval */
static unsigned reader_sink;        /* what the readers read */

static void reader_free(int id)
{
  lab_timer_cancel(id);
  lab_free(readers[id]->data);
  lab_free(readers[id]);
  readers[id] = NULL;
}

/* One tick; returns 0, -1 when malloc failed or -2 when the timer list is
 * full. */
static int timer_tick(int leak, int ticker, int *last)
{
  reader *r = lab_malloc(sizeof *r);
  int id;

  if (r == NULL)
    return -1;
  r->data = lab_malloc(BUF_BYTES);
  if (r->data == NULL) {
    lab_free(r);
    return -1;
  }
  memset(r->data, 0, BUF_BYTES);
  r->data[0] = (uint8_t)ticks;
  if (!leak && *last >= 0)
    reader_free(*last);
  id = lab_interval_add(READ_MS);
  if (id < 0)
    return -2;
  readers[id] = r;
  *last = id;
  ticks++;
  if (!leak && ticks == TIMER_TICKS) {
    char line[32];
    reader_free(*last);
    lab_timer_cancel(ticker);
    snprintf(line, sizeof line, "timerclean ticks=%d", ticks);
    say(line);
  }
  return 0;
}

static int run_timer_leak(int leak)
{
  int ticker = lab_interval_add(TICK_MS), last = -1, id, status;

  while ((id = lab_timer_next(sample)) >= 0) {
    if (id != ticker) {
      reader_sink += readers[id]->data[0];
    } else if ((status = timer_tick(leak, ticker, &last)) != 0) {
      return status;
    }
  }
  return 0;
}

/* msgload.js: every poll_ms a timer takes every line waiting in the
 * message queue, parses "MSG <seq> <temperature>,<humidity>,<pressure>",
 * updates the running averages and answers "ACK <seq> heap=<bytes in
 * use>"; after the lab's END it stops re-arming. The line is parsed where
 * it lies, so the heap stays empty. */
static int run_msgload(void)
{
  double avg[3] = {0, 0, 0};
  unsigned long n = 0;
  char line[LAB_MSGQ_LINE];

  if (lab_msgq_start() != 0)
    return LAB_EXIT_USAGE;
  lab_timer_add((uint32_t)lab_msgq_poll_ms);
  while (lab_timer_next(NULL) >= 0) {
    while (lab_msgq_pop(line, sizeof line) >= 0) {
      char *p = strchr(line, ' ');
      unsigned long seq;
      if (p == NULL)
        continue;
      seq = strtoul(p + 1, &p, 10);
      n++;
      for (int k = 0; k < 3; k++) {
        double v = strtod(p + 1, &p);
        avg[k] += (v - avg[k]) / (double)n;
      }
      rt_printf("ACK %lu heap=%u\n", seq, (unsigned)lab_heap_used);
      lab_after_print();
    }
    if (!lab_msgq_closed())
      lab_timer_add((uint32_t)lab_msgq_poll_ms);
  }
  rt_printf("msgload handled=%lu temp_x100=%ld hum_x100=%ld press_x100=%ld\n", n,
            (long)(avg[0] * 100 + 0.5), (long)(avg[1] * 100 + 0.5),
            (long)(avg[2] * 100 + 0.5));
  return 0;
}

/* oom.js: 1.3 KB strings kept until allocation fails. */
static int run_oom(void)
{
  static char base[1281];
  unsigned long n = 0;
  char **hog = NULL;
  size_t cap = 0;

  memset(base, 0, sizeof base);
  strcpy(base, "0123456789");
  for (int k = 0; k < 7; k++)
    memcpy(base + strlen(base), base, strlen(base));
  for (;; n++) {
    char *s;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **nh = lab_realloc(hog, ncap * sizeof *hog);
      if (nh == NULL)
        break;
      hog = nh;
      cap = ncap;
    }
    s = lab_malloc(1280 + 12);
    if (s == NULL)
      break;
    snprintf(s, 1280 + 12, "%s%lu", base, n);
    hog[n] = s;
  }
  rt_printf("OOM out of memory after %lu strings\n", n);
  lab_alloc_fail_report();
  return LAB_EXIT_OOM;
}

int main(int argc, char **argv)
{
  static const char *const keys[] = {"heap", "sample_us", "poll_ms", NULL};
  const char *w;
  uint64_t run_start, run_us;
  int status = 0;

  lab_phase("reset_to_main");
  if (argc < 2) {
    lab_usage("native");
    return LAB_EXIT_USAGE;
  }
  w = argv[1];
  lab_heap_limit = lab_opt(argc, argv, "heap", (unsigned long)-1, keys);
  lab_sample_interval_us = lab_opt(argc, argv, "sample_us", 10000, keys);
  lab_msgq_poll_ms = lab_opt(argc, argv, "poll_ms", 1, keys);
  lab_phase("engine_created");
  lab_phase("script_parsed");
  run_start = lab_run_begin();

  if (strcmp(w, "hello") == 0) {
    say("hello from c");
  } else if (strcmp(w, "gc") == 0) {
    status = run_gc();
  } else if (strcmp(w, "leak") == 0 || strcmp(w, "clean") == 0) {
    status = run_timers(strcmp(w, "leak") == 0);
  } else if (strcmp(w, "timerleak") == 0 || strcmp(w, "timerclean") == 0) {
    status = run_timer_leak(strcmp(w, "timerleak") == 0);
    if (status == -2) {
      rt_printf("UNCAUGHT RangeError: too many timers\n");
      lab_footprint(lab_heap_peak);
      return LAB_EXIT_UNCAUGHT;
    }
  } else if (strcmp(w, "msgload") == 0) {
    if (run_msgload() != 0) {
      lab_footprint(lab_heap_peak);
      return LAB_EXIT_USAGE;
    }
  } else if (strcmp(w, "throw") == 0) {
    say("throwing");
    rt_printf("UNCAUGHT Error: boom\n");
    lab_footprint(lab_heap_peak);
    return LAB_EXIT_UNCAUGHT;
  } else if (strcmp(w, "oom") == 0) {
    status = run_oom();
    lab_footprint(lab_heap_peak);
    return status;
  } else if (strcmp(w, "abort") == 0) {
    /* The C firmware's way to an unrecoverable error: a failed check. */
    const volatile int *sensor = NULL;
    say("arming");
    say("failing");
    if (sensor == NULL)
      lab_fatal("assertion failed: sensor != NULL", lab_heap_peak);
  } else if (strcmp(w, "poke") == 0) {
    char line[32];
    for (uint32_t i = 0; i < 10000; i++)
      lab_poke(0x40028000u, i & 3u);
    snprintf(line, sizeof line, "poke led=%u", (unsigned)lab_peek(0x40028000u));
    say(line);
  } else {
    lab_usage("native");
    return LAB_EXIT_USAGE;
  }
  if (status != 0) {
    rt_printf("OOM out of memory\n");
    lab_alloc_fail_report();
    lab_footprint(lab_heap_peak);
    return LAB_EXIT_OOM;
  }
  run_us = rt_micros() - run_start;
  rt_printf("READY us=%llu\n", (unsigned long long)rt_micros());
  lab_gc_report(run_us);
  if (strcmp(w, "msgload") == 0)
    lab_msgq_report();
  if (strcmp(w, "poke") == 0)
    lab_poke_report(run_us);
  lab_footprint(lab_heap_peak);
  return LAB_EXIT_OK;
}
