/*
 * duktape - runs one embedded JS workload (argv[1]) on Duktape 2.7.
 *
 * Usage (semihosting args): duktape WORKLOAD [heap=N] [sample_us=N] [poll_ms=N]
 *   heap=N       cap on the bytes Duktape may hold (default: no cap, i.e.
 *                the board's PSRAM through newlib's malloc and _sbrk)
 *   sample_us=N  interval of the HEAP samples in the timer loop (10000)
 *   poll_ms=N    msgload: how often the handler polls its queue (1)
 *
 * Globals for the scripts: print(...), setTimeout(fn, ms), clearTimeout(id),
 * setInterval(fn, ms), clearInterval(id), gc(), poke(addr, value),
 * peek(addr), and for msgload msg_next(), msg_closed(), msg_poll_ms() and
 * heap_used().
 * Report lines: see ../jscommon/bench.h and ../jscommon/msgq.h.
 * Every mark-and-sweep run (voluntary, emergency or from gc()) is timed by
 * the wrapper that ../jscommon/patch_source.py puts around
 * duk_heap_mark_and_sweep in the build's copy of duktape.c.
 */
#include <string.h>

#include "bench.h"
#include "duktape.h"
#include "msgq.h"

static void *dk_alloc(void *udata, duk_size_t size)
{
  (void)udata;
  return lab_malloc(size);
}

static void *dk_realloc(void *udata, void *ptr, duk_size_t size)
{
  (void)udata;
  return lab_realloc(ptr, size);
}

static void dk_free(void *udata, void *ptr)
{
  (void)udata;
  lab_free(ptr);
}

/* Unrecoverable engine errors (an error outside any protected call): as
 * Duktape's default fatal handler, abort(), which resets the board. */
static void dk_fatal(void *udata, const char *msg)
{
  (void)udata;
  lab_fatal(msg != NULL ? msg : "(no message)", lab_heap_peak);
}

/* print(...): the arguments as strings, separated by spaces. */
static duk_ret_t dk_print(duk_context *ctx)
{
  duk_idx_t n = duk_get_top(ctx);

  for (duk_idx_t i = 0; i < n; i++) {
    if (i > 0)
      rt_putc(' ');
    rt_puts(duk_safe_to_string(ctx, i));
  }
  rt_putc('\n');
  lab_after_print();
  return 0;
}

/* setTimeout(fn, ms) and setInterval(fn, ms) (magic 1): the callback
 * waits in the global stash under its id, an interval's until it is
 * cleared. */
static duk_ret_t dk_set_timer(duk_context *ctx)
{
  uint32_t ms;
  int id;

  duk_require_function(ctx, 0);
  ms = (uint32_t)duk_to_uint32(ctx, 1);
  id = duk_get_current_magic(ctx) ? lab_interval_add(ms) : lab_timer_add(ms);
  if (id < 0)
    return duk_error(ctx, DUK_ERR_RANGE_ERROR, "too many timers");
  duk_push_global_stash(ctx);
  duk_dup(ctx, 0);
  duk_put_prop_index(ctx, -2, (duk_uarridx_t)id);
  duk_push_int(ctx, id);
  return 1;
}

/* clearTimeout(id) and clearInterval(id). */
static duk_ret_t dk_clear_timer(duk_context *ctx)
{
  int id = duk_to_int(ctx, 0);

  if (id >= 0 && id < LAB_TIMERS) {
    lab_timer_cancel(id);
    duk_push_global_stash(ctx);
    duk_del_prop_index(ctx, -1, (duk_uarridx_t)id);
  }
  return 0;
}

static duk_ret_t dk_gc(duk_context *ctx)
{
  duk_gc(ctx, 0);
  return 0;
}

static duk_ret_t dk_poke(duk_context *ctx)
{
  lab_poke(duk_to_uint32(ctx, 0), duk_to_uint32(ctx, 1));
  return 0;
}

static duk_ret_t dk_peek(duk_context *ctx)
{
  duk_push_uint(ctx, lab_peek(duk_to_uint32(ctx, 0)));
  return 1;
}

/* msg_next(): the oldest line in the message queue, or null. */
static duk_ret_t dk_msg_next(duk_context *ctx)
{
  char line[LAB_MSGQ_LINE];
  int n = lab_msgq_pop(line, sizeof line);

  if (n < 0)
    duk_push_null(ctx);
  else
    duk_push_lstring(ctx, line, (duk_size_t)n);
  return 1;
}

/* msg_closed(): true once the lab's END has come and the queue is empty. */
static duk_ret_t dk_msg_closed(duk_context *ctx)
{
  duk_push_boolean(ctx, lab_msgq_closed());
  return 1;
}

/* msg_poll_ms(): the poll_ms option. */
static duk_ret_t dk_msg_poll_ms(duk_context *ctx)
{
  duk_push_uint(ctx, (duk_uint_t)lab_msgq_poll_ms);
  return 1;
}

/* heap_used(): bytes Duktape holds now (the accounting wrapper's count). */
static duk_ret_t dk_heap_used(duk_context *ctx)
{
  duk_push_uint(ctx, (duk_uint_t)lab_heap_used);
  return 1;
}

static const duk_function_list_entry dk_globals[] = {
    {"print", dk_print, DUK_VARARGS},
    {"clearTimeout", dk_clear_timer, 1},
    {"clearInterval", dk_clear_timer, 1},
    {"gc", dk_gc, 0},
    {"poke", dk_poke, 2},
    {"peek", dk_peek, 1},
    {"msg_next", dk_msg_next, 0},
    {"msg_closed", dk_msg_closed, 0},
    {"msg_poll_ms", dk_msg_poll_ms, 0},
    {"heap_used", dk_heap_used, 0},
    {NULL, NULL, 0},
};

static duk_context *dk_ctx;

/* HEAP sampler: a full collection first, so the figure is the live heap. */
static void dk_sample(void)
{
  duk_gc(dk_ctx, 0);
  lab_heap_sample(lab_heap_used);
}

/* Reports the error on top of the stack; returns the exit status. Running
 * out of memory reaches the script as a RangeError "alloc failed", or, when
 * not even that error could be allocated, as Duktape's DoubleError ("error
 * in error handling"): after a refused allocation, that is out of memory
 * too. Which one comes depends on what the heap holds when the allocation
 * fails. */
static int dk_error(duk_context *ctx)
{
  const char *message = duk_safe_to_string(ctx, -1);
  const char *oom = lab_alloc_failures != 0 && strstr(message, "DoubleError") != NULL
                        ? "DoubleError"
                        : "alloc failed";

  return lab_report_error(message, oom);
}

static int dk_finish(int status)
{
  lab_footprint(lab_heap_peak);
  return status;
}

int main(int argc, char **argv)
{
  static const char *const keys[] = {"heap", "sample_us", "poll_ms", NULL};
  const lab_script *script;
  duk_context *ctx;
  uint64_t run_start, run_us;
  int id, unprotected, msgload;

  lab_phase("reset_to_main");
  if (argc < 2 || (script = lab_find_script(argv[1])) == NULL) {
    lab_usage("duktape");
    return LAB_EXIT_USAGE;
  }
  lab_heap_limit = lab_opt(argc, argv, "heap", (unsigned long)-1, keys);
  lab_sample_interval_us = lab_opt(argc, argv, "sample_us", 10000, keys);
  lab_msgq_poll_ms = lab_opt(argc, argv, "poll_ms", 1, keys);
  /* The abort workload's timers run as a naive embedding calls them. */
  unprotected = strcmp(script->name, "abort") == 0;
  msgload = strcmp(script->name, "msgload") == 0;

  ctx = duk_create_heap(dk_alloc, dk_realloc, dk_free, NULL, dk_fatal);
  if (ctx == NULL) {
    rt_printf("FATAL duk_create_heap failed\n");
    return dk_finish(LAB_EXIT_FATAL);
  }
  dk_ctx = ctx;
  duk_push_global_object(ctx);
  duk_put_function_list(ctx, -1, dk_globals);
  duk_push_c_function(ctx, dk_set_timer, 2);
  duk_put_prop_string(ctx, -2, "setTimeout");
  duk_push_c_function(ctx, dk_set_timer, 2);
  duk_set_magic(ctx, -1, 1);
  duk_put_prop_string(ctx, -2, "setInterval");
  duk_pop(ctx);
  lab_phase("engine_created");

  duk_push_string(ctx, script->name);
  if (duk_pcompile_lstring_filename(ctx, 0, script->src, script->len) != 0)
    return dk_finish(dk_error(ctx));
  lab_phase("script_parsed");
  if (msgload && lab_msgq_start() != 0)
    return dk_finish(LAB_EXIT_USAGE);
  run_start = lab_run_begin();
  if (duk_pcall(ctx, 0) != DUK_EXEC_SUCCESS)
    return dk_finish(dk_error(ctx));
  duk_pop(ctx);

  /* Timer loop: callbacks in due order until none is left; an interval's
   * callback stays in the stash. */
  while ((id = lab_timer_next(dk_sample)) >= 0) {
    duk_push_global_stash(ctx);
    duk_get_prop_index(ctx, -1, (duk_uarridx_t)id);
    if (!lab_timer_repeats(id))
      duk_del_prop_index(ctx, -2, (duk_uarridx_t)id);
    if (unprotected) {
      /* An error here is outside any protected call: dk_fatal. */
      duk_call(ctx, 0);
    } else if (duk_pcall(ctx, 0) != DUK_EXEC_SUCCESS) {
      return dk_finish(dk_error(ctx));
    }
    duk_pop_2(ctx);
  }
  run_us = rt_micros() - run_start;
  rt_printf("READY us=%llu\n", (unsigned long long)rt_micros());
  lab_gc_report(run_us);
  if (msgload)
    lab_msgq_report();
  if (strcmp(script->name, "poke") == 0)
    lab_poke_report(run_us);
  duk_destroy_heap(ctx);
  return dk_finish(LAB_EXIT_OK);
}
