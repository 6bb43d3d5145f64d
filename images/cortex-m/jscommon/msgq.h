/*
 * msgq.h - the message queue of the msgload workload: complete lines from
 * the console UART's receive interrupt, in a bounded ring that drops.
 *
 * The RX interrupt handler assembles bytes into a line; at '\n' it puts the
 * line into the ring, or, when the ring already holds LAB_MSGQ_SLOTS lines
 * nobody has taken, drops it and counts the drop, as a device's driver
 * with a fixed buffer does. The line "END" is the lab's signal that the
 * load is over: it is never queued or dropped, it closes the queue. Lines
 * longer than LAB_MSGQ_LINE - 1 bytes are cut; CR is ignored.
 *
 * lab_msgq_start also starts a 1 kHz tick (CMSDK APB TIMER0, IRQ 8) and
 * makes the timer loop sleep (WFI) between timers: the core wakes for a
 * line or a tick, so a setTimeout(fn, 1) runs at most a tick late.
 *
 * Needs the MPS2 peripherals (UART0 at 0x40004000 with its RX interrupt,
 * IRQ 0; TIMER0 at 0x40000000); elsewhere lab_msgq_start fails.
 *
 * Report lines:
 *   MSGQ ready slots=N   the interrupt is on: send from now on
 *   MSGQ received=N queued=N dropped=N max_depth=N slots=N
 *                        once the queue is closed and empty;
 * received: lines seen (END excluded); queued + dropped = received;
 * max_depth: the most lines waiting at once.
 */
#ifndef MSGQ_H
#define MSGQ_H

#include <stddef.h>

/* Lines the ring holds, and the room for one line (NUL included). */
#define LAB_MSGQ_SLOTS 16
#define LAB_MSGQ_LINE 64

/* How often the workload's handler polls the ring, in ms: the option
 * poll_ms=N (default 1). A longer period is an event loop that lags: at
 * more than LAB_MSGQ_SLOTS lines a period, the ring drops. */
extern unsigned long lab_msgq_poll_ms;

/* Enables the UART's RX interrupt and prints "MSGQ ready slots=N"; returns
 * 0, or prints why not and returns -1 without a CMSDK UART (the console is
 * RTT or an STM32 USART). */
int lab_msgq_start(void);
/* Takes the oldest line into buf (NUL-terminated, cut to size); returns
 * its length, or -1 when the ring is empty. */
int lab_msgq_pop(char *buf, size_t size);
/* Non-zero once END has arrived and every queued line has been taken. */
int lab_msgq_closed(void);
/* Prints the MSGQ line. */
void lab_msgq_report(void);

#endif /* MSGQ_H */
