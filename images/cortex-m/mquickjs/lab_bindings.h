/*
 * lab_bindings.h - the C functions behind the globals the lab's scripts get
 * (print, gc, setTimeout, poke, msg_next, ...). main.c defines them; the stdlib table
 * that prepare.py generates names them.
 */
#ifndef LAB_BINDINGS_H
#define LAB_BINDINGS_H

#include "mquickjs.h"

JSValue js_print(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_gc(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_date_now(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_performance_now(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_load(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_setTimeout(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_clearTimeout(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_setInterval(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_poke(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_peek(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_msg_next(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_msg_closed(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_msg_poll_ms(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);
JSValue js_heap_used(JSContext *ctx, JSValue *this_val, int argc, JSValue *argv);

#endif
