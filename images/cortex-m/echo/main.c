/*
 * echo - prints READY, then writes every line received on the UART back
 * followed by "\n". Carriage returns are dropped; a line longer than the
 * buffer is cut at its size. The line "exit" ends the firmware with 0.
 */
#include "rt.h"

#define LINE_MAX 128

/* Reads one line into buf (NUL-terminated, without its newline). */
static void read_line(char *buf, size_t size)
{
  size_t n = 0;
  int c;

  while ((c = rt_getc()) != '\n') {
    if (c != '\r' && n + 1 < size)
      buf[n++] = (char)c;
  }
  buf[n] = '\0';
}

/* Echoes lines until "exit". */
int main(int argc, char **argv)
{
  char line[LINE_MAX];

  (void)argc;
  (void)argv;
  rt_puts("READY\n");
  for (;;) {
    read_line(line, sizeof line);
    if (rt_str_eq(line, "exit"))
      return 0;
    rt_puts(line);
    rt_putc('\n');
  }
}
