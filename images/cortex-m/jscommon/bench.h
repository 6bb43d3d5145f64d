/*
 * bench.h - what the JS-engine and native benchmark firmwares share:
 * workload names and embedded scripts, option parsing, the machine-readable
 * report lines, GC timing, heap accounting and a small timer queue.
 *
 * Report lines (one per line, numbers in decimal, times in µs since reset
 * from rt_micros):
 *   PHASE <name> us=N        reset_to_main, engine_created, script_parsed,
 *                            first_line (after the script's first print)
 *   READY us=N               the script and all its timers have run
 *   GC count=N total_us=N max_us=N run_us=N
 *   HEAP t_us=N used=N       during the timer loop, every interval_us
 *   POKE n=N us=N ns_per_access=N   poke workload
 *   UNCAUGHT <message>       exit LAB_EXIT_UNCAUGHT
 *   FATAL <message>          then abort(): a system reset (abort workload)
 *   OOM <message>            exit LAB_EXIT_OOM
 *   ALLOC_FAIL us=N run_us=N used=N error_us=N refusals=N
 *                            after OOM: the first refused allocation (since
 *                            reset, and since the script began to run: 0 if
 *                            it came before), the
 *                            bytes in use then, when the error reached the
 *                            embedding, and how many were refused in all
 *   FOOTPRINT heap_peak=N stack_used=N   always last
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "rt.h"

/* Exit statuses (QEMU's exit status through semihosting). */
#define LAB_EXIT_OK 0
#define LAB_EXIT_USAGE 2     /* no or unknown workload, bad option */
#define LAB_EXIT_UNCAUGHT 3  /* the script threw and nobody caught it */
#define LAB_EXIT_OOM 4       /* the engine ran out of memory */
#define LAB_EXIT_FATAL 5     /* engine fatal error / could not start */

/* One embedded workload script (NUL-terminated; len excludes the NUL). */
typedef struct {
  const char *name;
  const char *src;
  size_t len;
} lab_script;

/* The workload names, in a fixed order, NULL-terminated. */
extern const char *const lab_workloads[];
/* The embedded script for a workload, or NULL. */
const lab_script *lab_find_script(const char *name);
/* Prints the usage line listing the workloads. */
void lab_usage(const char *engine);

/* Parses "key=N" among argv[2..] (decimal, or hex with 0x, suffix k/K for
 * KiB or m/M for MiB). Returns def when absent; exits LAB_EXIT_USAGE on an
 * unknown key (keys lists the accepted ones, NULL-terminated). */
unsigned long lab_opt(int argc, char **argv, const char *key, unsigned long def,
                      const char *const *keys);

/* Prints "PHASE <name> us=<now>". */
void lab_phase(const char *name);
/* The script begins to run (after the parse): returns now, which
 * ALLOC_FAIL's run_us counts from. */
uint64_t lab_run_begin(void);
/* Called by the print bindings after each printed line: the first one
 * prints PHASE first_line. */
void lab_after_print(void);

/* GC timing: the engine's collector calls these around every collection. */
void lab_gc_begin(void);
void lab_gc_end(void);
/* Called by lab_gc_begin (before timing starts) when set, e.g. to record
 * the engine's memory use at its fullest. */
extern void (*lab_gc_observer)(void);
/* Prints the GC line with run_us. */
void lab_gc_report(uint64_t run_us);

/* Heap accounting allocator (newlib malloc under a size header). Refuses
 * an allocation that would take the bytes in use past lab_heap_limit. */
extern size_t lab_heap_used;
extern size_t lab_heap_peak;
extern size_t lab_heap_limit;
extern unsigned lab_alloc_failures;
void *lab_malloc(size_t size);
void *lab_realloc(void *ptr, size_t size);
void lab_free(void *ptr);
/* Counts a refused allocation; the first one's time and the bytes in use
 * then (`used`) are kept for ALLOC_FAIL. lab_malloc/lab_realloc call it; an
 * engine with an allocator of its own (Micro QuickJS's arena) calls it from
 * its out-of-memory path. */
void lab_alloc_failed(size_t used);
/* Prints the ALLOC_FAIL line when an allocation was refused. */
void lab_alloc_fail_report(void);

/* Timer queue: lab_timer_add (one-shot) and lab_interval_add (repeats
 * every period_ms until cancelled) return an id (>= 0, a slot number below
 * LAB_TIMERS; the lowest free one) or -1 when full; lab_timer_next waits
 * until the earliest timer is due (ties: the one added first) and returns
 * it, or returns -1 when there are none: a one-shot timer is removed, an
 * interval is due again period_ms later (lab_timer_repeats tells which).
 * While waiting and between timers it calls the sampler when a HEAP
 * sample is due. Room for the timerleak workload's intervals: one per
 * 4 KiB buffer it keeps. */
#define LAB_TIMERS 256
int lab_timer_add(uint32_t delay_ms);
int lab_interval_add(uint32_t period_ms);
int lab_timer_repeats(int id);
void lab_timer_cancel(int id);
int lab_timer_next(void (*sample)(void));
/* Non-zero: lab_timer_next waits with WFI, so the core sleeps until the
 * next interrupt instead of spinning on the clock; a timer then runs at
 * the first interrupt after it is due. Set by lab_msgq_start, which also
 * starts a 1 kHz tick interrupt (see msgq.h). */
extern int lab_timer_sleep;
/* Interval between HEAP samples (µs); 0 disables them. */
extern uint64_t lab_sample_interval_us;
/* Prints "HEAP t_us=<now> used=<used>". */
void lab_heap_sample(size_t used);

/* poke/peek bindings share these: a 32-bit store/load and the count. */
extern uint32_t lab_poke_count;
void lab_poke(uint32_t addr, uint32_t value);
uint32_t lab_peek(uint32_t addr);
/* Prints "POKE n=<count> us=<run_us> ns_per_access=<run_us over count, in
 * ns>": the guest time of the whole run spread over the pokes. */
void lab_poke_report(uint64_t run_us);

/* Prints the error line: OOM when the message says the engine ran out of
 * memory (oom_marker found in it), UNCAUGHT otherwise; only its first line
 * is printed. Returns the matching exit status. */
int lab_report_error(const char *message, const char *oom_marker);

/* Prints "FOOTPRINT heap_peak=<heap_peak> stack_used=<rt_stack_used()>". */
void lab_footprint(size_t heap_peak);

/* An unrecoverable error, as an embedding's fatal handler meets it: prints
 * "FATAL <message>" and the footprint, then abort(), which resets the
 * board (runtime/syscalls.c). */
__attribute__((noreturn)) void lab_fatal(const char *message, size_t heap_peak);

#endif /* BENCH_H */
