/*
 * io_thread.h - an io thread: one uv_loop_t, its inbox, and every session accepted onto it.
 *
 * Sessions are touched only by their own thread; other threads reach them through the inbox.
 * The thread reports cheap counters (loop iterations, busy time) that stats sums on demand.
 */
#ifndef IOTD_IO_THREAD_H
#define IOTD_IO_THREAD_H

#include "loop/inbox.h"

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

/* A loop's busy time and the clocks of its current pass (loop_meter_start). Embedded by the
 * loop's owner; touched only on the loop's thread but for the two counters. */
struct loop_meter {
    _Atomic uint64_t busy_ns; /* time spent on passes (poll returned .. next poll), summed */
    _Atomic uint64_t iterations;
    uint64_t pass_ns;       /* the pass's uv_hrtime() (loop_pass_ns); 0 until read */
    int64_t pass_wall_ms;   /* the pass's ctl_wall_ms() (loop_pass_wall_ms); 0 until read */
    uint64_t after_poll_ns; /* when the poll's callbacks ended (the check); 0 after the prepare */
    uv_prepare_t prepare;   /* ends the pass: about to poll */
    uv_check_t check;       /* ends the poll's callbacks: the clocks are read again after it */
};

typedef struct io_thread {
    unsigned index;
    char name[16]; /* "io0" */
    uv_thread_t thread;
    uv_loop_t loop;
    inbox_t inbox;
    uv_sem_t started;
    int start_status;
    _Atomic int os_tid; /* gettid(), for iottop */
    struct loop_meter meter;
    inbox_msg_t stop_msg;
    /* The thread's net_loop_t while it lives: set and cleared on this thread by net/conn.c,
     * read only here, so a connection handed over from another thread (a TLS connection
     * placed after its handshake) finds out whether the loop is still there. */
    void *net;
} io_thread_t;

/* Start the thread; returns once its loop and inbox are ready. inbox_capacity bounds the inbox. */
int io_thread_start(io_thread_t *t, unsigned index, size_t inbox_capacity);
/* Run fn(t, arg) on the io thread and wait for it to return (set-up and tear-down of per-thread
 * state, such as handles that must be created on their own loop). Not from t's own thread.
 * Returns fn's result, or IOT_EINVAL if the thread is stopping. */
int io_thread_call(io_thread_t *t, int (*fn)(io_thread_t *t, void *arg), void *arg);
/* Ask the thread to close its handles and exit, then join it. */
void io_thread_stop(io_thread_t *t);

/* For any loop (main loop included): count passes and their busy time, from the pass's first
 * clock read (at the latest, the check after the poll) to the next poll. */
void loop_meter_start(uv_loop_t *loop, struct loop_meter *m);
/* Close the meter's two handles (before the loop's last run). */
void loop_meter_stop(struct loop_meter *m);
/* The clocks of the loop's current pass: read at the first call after the poll returned, then
 * shared by everything the poll's callbacks handle (a busy pass handles many reads, and on a
 * virtual machine a clock read costs as much as parsing a frame). They may be behind by the
 * length of those callbacks, tens of microseconds. Timers and closing callbacks (after the
 * check) read them afresh: a timer never sees a time older than the one that made it fire.
 * Only on the loop's own thread. */
uint64_t loop_pass_ns(struct loop_meter *m);     /* uv_hrtime() */
int64_t loop_pass_wall_ms(struct loop_meter *m); /* ctl_wall_ms() */

#endif
