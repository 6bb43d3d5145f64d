#!/usr/bin/env python3
"""Writes a build-time variant of an engine source with the lab's hooks.

usage: patch_source.py KIND SRC OUT

KIND is one of:
  duktape          SRC = duktape.c (amalgamation). Renames the definition of
                   duk_heap_mark_and_sweep to lab__duk_heap_mark_and_sweep
                   (noinline) and puts a wrapper with the original name in
                   front of it that calls lab_gc_begin/lab_gc_end around
                   every collection that actually runs (calls rejected by
                   Duktape's recursion guard, ms_prevent_count != 0, are
                   passed through untimed).
  mquickjs         SRC = mquickjs.c. The same for JS_GC2 (the collector
                   behind JS_GC and the automatic collection in
                   check_free_mem); JS_ThrowOutOfMemory (every refused
                   allocation in the arena ends there) first calls
                   lab_mqjs_oom(ctx); appends lab_mqjs_mem(), which reports
                   the arena bytes in use.
  mquickjs-stdlib  SRC = mqjs_stdlib.c (the stdlib definition compiled into
                   the host-side table generator). Adds the globals
                   setInterval(fn, ms), clearInterval(id), poke(addr, value),
                   peek(addr), msg_next(), msg_closed(), msg_poll_ms() and
                   heap_used()
                   after clearTimeout.

Every edit replaces an exact anchor that must occur exactly once, so a
different engine version fails the build loudly instead of silently losing a
hook. The output starts with a #line directive so compiler messages point at
SRC. The output is a build product: never commit it.
"""
import os
import sys

HOOK_DECL = "void lab_gc_begin(void);\nvoid lab_gc_end(void);\n"

PATCHES = {
    "duktape": [
        (
            "DUK_INTERNAL void duk_heap_mark_and_sweep(duk_heap *heap, duk_small_uint_t flags) {\n",
            "/* lab: GC timing wrapper (images/cortex-m/jscommon/patch_source.py) */\n"
            + HOOK_DECL
            + "DUK_LOCAL DUK_NOINLINE void lab__duk_heap_mark_and_sweep(duk_heap *heap, duk_small_uint_t flags);\n"
            "DUK_INTERNAL void duk_heap_mark_and_sweep(duk_heap *heap, duk_small_uint_t flags) {\n"
            "\tif (heap->ms_prevent_count != 0) {\n"
            "\t\tlab__duk_heap_mark_and_sweep(heap, flags); /* rejected: no collection */\n"
            "\t\treturn;\n"
            "\t}\n"
            "\tlab_gc_begin();\n"
            "\tlab__duk_heap_mark_and_sweep(heap, flags);\n"
            "\tlab_gc_end();\n"
            "}\n"
            "DUK_LOCAL DUK_NOINLINE void lab__duk_heap_mark_and_sweep(duk_heap *heap, duk_small_uint_t flags) {\n",
        ),
    ],
    "mquickjs": [
        (
            "static void JS_GC2(JSContext *ctx, BOOL keep_atoms)\n{\n",
            "/* lab: GC timing wrapper (images/cortex-m/jscommon/patch_source.py) */\n"
            + HOOK_DECL
            + "static void __attribute__((noinline)) lab__JS_GC2(JSContext *ctx, BOOL keep_atoms);\n"
            "static void JS_GC2(JSContext *ctx, BOOL keep_atoms)\n{\n"
            "    lab_gc_begin();\n"
            "    lab__JS_GC2(ctx, keep_atoms);\n"
            "    lab_gc_end();\n"
            "}\n"
            "static void __attribute__((noinline)) lab__JS_GC2(JSContext *ctx, BOOL keep_atoms)\n{\n",
        ),
        (
            "JSValue JS_ThrowOutOfMemory(JSContext *ctx)\n{\n",
            "/* lab: out-of-memory hook (images/cortex-m/jscommon/patch_source.py) */\n"
            "void lab_mqjs_oom(JSContext *ctx);\n"
            "JSValue JS_ThrowOutOfMemory(JSContext *ctx)\n{\n"
            "    lab_mqjs_oom(ctx);\n",
        ),
    ],
    "mquickjs-stdlib": [
        (
            '    JS_CFUNC_DEF("clearTimeout", 1, js_clearTimeout),\n',
            '    JS_CFUNC_DEF("clearTimeout", 1, js_clearTimeout),\n'
            '    JS_CFUNC_DEF("setInterval", 2, js_setInterval),\n'
            '    JS_CFUNC_DEF("clearInterval", 1, js_clearTimeout),\n'
            '    JS_CFUNC_DEF("poke", 2, js_poke),\n'
            '    JS_CFUNC_DEF("peek", 1, js_peek),\n'
            '    JS_CFUNC_DEF("msg_next", 0, js_msg_next),\n'
            '    JS_CFUNC_DEF("msg_closed", 0, js_msg_closed),\n'
            '    JS_CFUNC_DEF("msg_poll_ms", 0, js_msg_poll_ms),\n'
            '    JS_CFUNC_DEF("heap_used", 0, js_heap_used),\n',
        ),
    ],
}

APPEND = {
    "mquickjs": (
        "\n/* lab: arena accounting (images/cortex-m/jscommon/patch_source.py).\n"
        " * The arena holds the JSContext and the heap growing up from its start\n"
        " * and the JS stack growing down from its end. */\n"
        "void lab_mqjs_mem(JSContext *ctx, size_t *heap, size_t *stack);\n"
        "void lab_mqjs_mem(JSContext *ctx, size_t *heap, size_t *stack)\n{\n"
        "    *heap = (size_t)(ctx->heap_free - (uint8_t *)ctx);\n"
        "    *stack = (size_t)(ctx->stack_top - (uint8_t *)ctx->sp);\n"
        "}\n"
    ),
}


def main(argv):
    if len(argv) != 4 or argv[1] not in PATCHES:
        sys.stderr.write(__doc__)
        return 2
    kind, src, out = argv[1], argv[2], argv[3]
    with open(src, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    path = os.path.abspath(src)
    for anchor, replacement in PATCHES[kind]:
        n = text.count(anchor)
        if n != 1:
            sys.stderr.write(
                f"patch_source.py: {src}: anchor found {n} times (expected 1):\n{anchor}"
            )
            return 1
        # Line of SRC right after the anchor, for a #line that resyncs.
        after = text[: text.index(anchor)].count("\n") + anchor.count("\n") + 1
        replacement += f'#line {after} "{path}"\n'
        text = text.replace(anchor, replacement)
    text = f'#line 1 "{path}"\n' + text + APPEND.get(kind, "")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
