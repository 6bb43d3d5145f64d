/*
 * scripts_table.c - the workload scripts embedded by scripts.S.
 */
#include <string.h>

#include "bench.h"

#define LAB_JS(name)                                                        \
  extern const char lab_js_##name[];                                        \
  extern const char lab_js_##name##_end[];
LAB_JS(hello)
LAB_JS(gc)
LAB_JS(leak)
LAB_JS(clean)
LAB_JS(throw)
LAB_JS(oom)
LAB_JS(poke)
LAB_JS(abort)
LAB_JS(timerleak)
LAB_JS(timerclean)
LAB_JS(msgload)

#define LAB_ENTRY(name) {#name, lab_js_##name, 0},

/* Lengths are filled in on lookup (the symbols' difference is not a
 * constant expression for the C compiler). */
static lab_script lab_scripts[] = {
    LAB_ENTRY(hello) LAB_ENTRY(gc) LAB_ENTRY(leak) LAB_ENTRY(clean)
    LAB_ENTRY(throw) LAB_ENTRY(oom) LAB_ENTRY(poke) LAB_ENTRY(abort)
    LAB_ENTRY(timerleak) LAB_ENTRY(timerclean) LAB_ENTRY(msgload)
};

static const char *const lab_script_ends[] = {
    lab_js_hello_end, lab_js_gc_end, lab_js_leak_end, lab_js_clean_end,
    lab_js_throw_end, lab_js_oom_end, lab_js_poke_end, lab_js_abort_end,
    lab_js_timerleak_end, lab_js_timerclean_end, lab_js_msgload_end,
};

const lab_script *lab_find_script(const char *name)
{
  for (size_t i = 0; i < sizeof lab_scripts / sizeof lab_scripts[0]; i++) {
    if (strcmp(lab_scripts[i].name, name) == 0) {
      lab_scripts[i].len = (size_t)(lab_script_ends[i] - lab_scripts[i].src);
      return &lab_scripts[i];
    }
  }
  return NULL;
}
