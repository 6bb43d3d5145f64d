/*
 * scripts.S - embeds the JS workloads of ../js/ into .rodata.
 *
 * Assembled with the image folder as the working directory, so the paths
 * below are relative to images/cortex-m/<engine>/. Each script gets the
 * symbols lab_js_<name> and lab_js_<name>_end, followed by a NUL byte
 * (not counted) so it can also be used as a C string.
 */
  .section .rodata.lab_js, "a"

  .macro LAB_SCRIPT name
  .global lab_js_\name
  .global lab_js_\name\()_end
  .balign 4
lab_js_\name:
  .incbin "../js/\name\().js"
lab_js_\name\()_end:
  .byte 0
  .endm

  LAB_SCRIPT hello
  LAB_SCRIPT gc
  LAB_SCRIPT leak
  LAB_SCRIPT clean
  LAB_SCRIPT throw
  LAB_SCRIPT oom
  LAB_SCRIPT poke
  LAB_SCRIPT abort
  LAB_SCRIPT timerleak
  LAB_SCRIPT timerclean
  LAB_SCRIPT msgload
