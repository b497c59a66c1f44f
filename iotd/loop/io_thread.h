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

typedef struct io_thread {
    unsigned index;
    char name[16]; /* "io0" */
    uv_thread_t thread;
    uv_loop_t loop;
    inbox_t inbox;
    uv_sem_t started;
    int start_status;
    _Atomic int os_tid;       /* gettid(), for iottop */
    _Atomic uint64_t busy_ns; /* time spent outside the poll, summed */
    _Atomic uint64_t iterations;
    uv_prepare_t prepare; /* marks the end of busy time (about to poll) */
    uv_check_t check;     /* marks the start of busy time (poll returned) */
    uint64_t busy_since;
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

/* Helpers for any loop (main loop included): mark busy time around polls. */
void loop_busy_meter_start(uv_loop_t *loop, uv_prepare_t *prepare, uv_check_t *check,
                           _Atomic uint64_t *busy_ns, _Atomic uint64_t *iterations,
                           uint64_t *busy_since);
/* Close the two meter handles (frees the meter in their close callbacks). */
void loop_busy_meter_stop(uv_prepare_t *prepare, uv_check_t *check);

#endif
