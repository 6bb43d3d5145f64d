/*
 * mquickjs - runs one embedded JS workload (argv[1]) on Micro QuickJS
 * (the C sources of the crates.io package mquickjs-sys, located by
 * prepare.py).
 *
 * Usage (semihosting args): mquickjs WORKLOAD [arena=N] [sample_us=N] [poll_ms=N]
 *   arena=N      size of the engine's fixed arena at the start of the
 *                board's HEAP region (PSRAM), default 256k
 *   sample_us=N  interval of the HEAP samples in the timer loop (10000)
 *   poll_ms=N    msgload: how often the handler polls its queue (1)
 *
 * Globals for the scripts: print(...), console.log, setTimeout(fn, ms),
 * clearTimeout(id), setInterval(fn, ms), clearInterval(id), gc(),
 * poke(addr, value), peek(addr), Date.now(), performance.now() (ms since
 * reset), and for msgload msg_next(), msg_closed(), msg_poll_ms() and
 * heap_used().
 * Report lines: ../jscommon/bench.h and ../jscommon/msgq.h.
 * Every collection (JS_GC2: automatic, from gc() and JS_GC) is timed by the
 * wrapper that ../jscommon/patch_source.py adds to the build's mquickjs.c.
 * The heap figures are arena bytes in use: the context and heap growing up
 * from the start plus the JS stack growing down from the end.
 */
#include <string.h>

#include "bench.h"
#include "mquickjs.h"
#include "lab_bindings.h"
#include "msgq.h"

extern const JSSTDLibraryDef js_stdlib;
extern char __heap_start__[];
extern char __heap_end__[];

/* Added to mquickjs.c by patch_source.py. */
void lab_mqjs_mem(JSContext *ctx, size_t *heap, size_t *stack);
void lab_mqjs_oom(JSContext *ctx);


static JSContext *mq_ctx;
static size_t mq_peak;

/* Arena bytes in use now; also updates the high-water mark. */
static size_t mq_used(void)
{
  size_t heap, stack;

  lab_mqjs_mem(mq_ctx, &heap, &stack);
  if (heap + stack > mq_peak)
    mq_peak = heap + stack;
  return heap + stack;
}

/* Called by JS_ThrowOutOfMemory (patched in): the arena refused an
 * allocation. */
void lab_mqjs_oom(JSContext *ctx)
{
  size_t heap, stack;

  lab_mqjs_mem(ctx, &heap, &stack);
  lab_alloc_failed(heap + stack);
}

/* Before every collection: the arena is at its fullest. */
static void mq_gc_observer(void)
{
  if (mq_ctx != NULL)
    (void)mq_used();
}

static void mq_log(void *opaque, const void *buf, size_t len)
{
  (void)opaque;
  for (size_t i = 0; i < len; i++)
    rt_putc(((const char *)buf)[i]);
}

JSValue js_print(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  for (int i = 0; i < argc; i++) {
    if (i > 0)
      rt_putc(' ');
    if (JS_IsString(ctx, argv[i])) {
      JSCStringBuf buf;
      size_t len;
      const char *s = JS_ToCStringLen(ctx, &len, argv[i], &buf);
      for (size_t k = 0; s != NULL && k < len; k++)
        rt_putc(s[k]);
    } else {
      JS_PrintValueF(ctx, argv[i], JS_DUMP_LONG);
    }
  }
  rt_putc('\n');
  lab_after_print();
  return JS_UNDEFINED;
}

JSValue js_gc(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  (void)argc;
  (void)argv;
  JS_GC(ctx);
  return JS_UNDEFINED;
}

JSValue js_date_now(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  (void)argc;
  (void)argv;
  return JS_NewInt64(ctx, (int64_t)(rt_micros() / 1000u));
}

JSValue js_performance_now(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  return js_date_now(ctx, this_val, argc, argv);
}

/* There is no file system. */
JSValue js_load(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  (void)argc;
  (void)argv;
  return JS_ThrowTypeError(ctx, "load() is not available");
}

static JSGCRef mq_timer_func[LAB_TIMERS];
static int mq_timer_live[LAB_TIMERS];

/* setTimeout and setInterval: the callback is held by a GC reference
 * until it has run (one-shot) or is cleared. */
static JSValue mq_set_timer(JSContext *ctx, JSValue *argv, int repeat)
{
  int delay, id;
  uint32_t ms;

  if (!JS_IsFunction(ctx, argv[0]))
    return JS_ThrowTypeError(ctx, "not a function");
  if (JS_ToInt32(ctx, &delay, argv[1]))
    return JS_EXCEPTION;
  ms = delay < 0 ? 0u : (uint32_t)delay;
  id = repeat ? lab_interval_add(ms) : lab_timer_add(ms);
  if (id < 0)
    return JS_ThrowInternalError(ctx, "too many timers");
  *JS_AddGCRef(ctx, &mq_timer_func[id]) = argv[0];
  mq_timer_live[id] = 1;
  return JS_NewInt32(ctx, id);
}

JSValue js_setTimeout(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  (void)argc;
  return mq_set_timer(ctx, argv, 0);
}

JSValue js_setInterval(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  (void)argc;
  return mq_set_timer(ctx, argv, 1);
}

static void mq_timer_drop(JSContext *ctx, int id)
{
  if (mq_timer_live[id]) {
    JS_DeleteGCRef(ctx, &mq_timer_func[id]);
    mq_timer_live[id] = 0;
  }
}

JSValue js_clearTimeout(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  int id;

  (void)this_val;
  (void)argc;
  if (JS_ToInt32(ctx, &id, argv[0]))
    return JS_EXCEPTION;
  if (id >= 0 && id < LAB_TIMERS) {
    lab_timer_cancel(id);
    mq_timer_drop(ctx, id);
  }
  return JS_UNDEFINED;
}

JSValue js_poke(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  uint32_t addr, value;

  (void)this_val;
  (void)argc;
  if (JS_ToUint32(ctx, &addr, argv[0]) || JS_ToUint32(ctx, &value, argv[1]))
    return JS_EXCEPTION;
  lab_poke(addr, value);
  return JS_UNDEFINED;
}

JSValue js_peek(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  uint32_t addr;

  (void)this_val;
  (void)argc;
  if (JS_ToUint32(ctx, &addr, argv[0]))
    return JS_EXCEPTION;
  return JS_NewInt64(ctx, (int64_t)lab_peek(addr));
}

/* msg_next(): the oldest line in the message queue, or null. */
JSValue js_msg_next(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  char line[LAB_MSGQ_LINE];
  int n = lab_msgq_pop(line, sizeof line);

  (void)this_val;
  (void)argc;
  (void)argv;
  return n < 0 ? JS_NULL : JS_NewStringLen(ctx, line, (size_t)n);
}

/* msg_closed(): true once the lab's END has come and the queue is empty. */
JSValue js_msg_closed(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)ctx;
  (void)this_val;
  (void)argc;
  (void)argv;
  return JS_NewBool(lab_msgq_closed());
}

/* msg_poll_ms(): the poll_ms option. */
JSValue js_msg_poll_ms(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)this_val;
  (void)argc;
  (void)argv;
  return JS_NewInt64(ctx, (int64_t)lab_msgq_poll_ms);
}

/* heap_used(): arena bytes in use now (heap and JS stack). */
JSValue js_heap_used(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv)
{
  (void)ctx;
  (void)this_val;
  (void)argc;
  (void)argv;
  return JS_NewInt64(ctx, (int64_t)mq_used());
}

/* HEAP sampler: a full collection first, so the figure is the live heap. */
static void mq_sample(void)
{
  JS_GC(mq_ctx);
  lab_heap_sample(mq_used());
}

/* Reports the pending exception; returns the exit status. */
static int mq_error(JSContext *ctx)
{
  char buf[256];

  JS_GetErrorStr(ctx, buf, sizeof buf);
  return lab_report_error(buf, "out of memory");
}

static int mq_finish(int status)
{
  if (mq_ctx != NULL)
    (void)mq_used();
  lab_footprint(mq_peak);
  return status;
}

int main(int argc, char **argv)
{
  static const char *const keys[] = {"arena", "sample_us", "poll_ms", NULL};
  const lab_script *script;
  JSContext *ctx;
  JSValue val;
  size_t arena;
  uint64_t run_start, run_us;
  int id, msgload;

  lab_phase("reset_to_main");
  if (argc < 2 || (script = lab_find_script(argv[1])) == NULL) {
    lab_usage("mquickjs");
    return LAB_EXIT_USAGE;
  }
  arena = lab_opt(argc, argv, "arena", 256u * 1024u, keys) & ~(size_t)7;
  lab_sample_interval_us = lab_opt(argc, argv, "sample_us", 10000, keys);
  lab_msgq_poll_ms = lab_opt(argc, argv, "poll_ms", 1, keys);
  if (arena > (size_t)(__heap_end__ - __heap_start__)) {
    rt_printf("arena=%u is larger than the HEAP region (%u bytes)\n",
              (unsigned)arena, (unsigned)(__heap_end__ - __heap_start__));
    return LAB_EXIT_USAGE;
  }

  lab_gc_observer = mq_gc_observer;
  ctx = JS_NewContext(__heap_start__, arena, &js_stdlib);
  if (ctx == NULL) {
    rt_printf("FATAL JS_NewContext failed (arena=%u)\n", (unsigned)arena);
    return mq_finish(LAB_EXIT_FATAL);
  }
  mq_ctx = ctx;
  JS_SetLogFunc(ctx, mq_log);
  lab_phase("engine_created");

  val = JS_Parse(ctx, script->src, script->len, script->name, 0);
  if (JS_IsException(val))
    return mq_finish(mq_error(ctx));
  lab_phase("script_parsed");
  msgload = strcmp(script->name, "msgload") == 0;
  if (msgload && lab_msgq_start() != 0)
    return mq_finish(LAB_EXIT_USAGE);
  run_start = lab_run_begin();
  val = JS_Run(ctx, val);
  if (JS_IsException(val))
    return mq_finish(mq_error(ctx));

  /* Timer loop: callbacks in due order until none is left; an interval
   * keeps its callback. */
  while ((id = lab_timer_next(mq_sample)) >= 0) {
    if (JS_StackCheck(ctx, 2))
      return mq_finish(mq_error(ctx));
    JS_PushArg(ctx, mq_timer_func[id].val); /* function */
    JS_PushArg(ctx, JS_NULL);               /* this */
    if (!lab_timer_repeats(id))
      mq_timer_drop(ctx, id);
    if (JS_IsException(JS_Call(ctx, 0))) {
      if (strcmp(script->name, "abort") == 0) {
        /* The abort workload's embedding takes an error that escapes a
         * callback as fatal, as Duktape's fatal handler does. */
        char buf[256];
        JS_GetErrorStr(ctx, buf, sizeof buf);
        (void)mq_used();
        lab_fatal(buf, mq_peak);
      }
      return mq_finish(mq_error(ctx));
    }
  }
  run_us = rt_micros() - run_start;
  rt_printf("READY us=%llu\n", (unsigned long long)rt_micros());
  lab_gc_report(run_us);
  if (msgload)
    lab_msgq_report();
  if (strcmp(script->name, "poke") == 0)
    lab_poke_report(run_us);
  (void)mq_used();
  JS_FreeContext(ctx);
  mq_ctx = NULL;
  return mq_finish(LAB_EXIT_OK);
}
