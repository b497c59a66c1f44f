/*
 * net_harness.h - a small iotd inside a test: two io threads with a net_loop each, a main loop
 * thread with one listener, and an echo owner with a few commands, plus blocking clients.
 *
 * The echo owner answers every chunk with the same bytes, except chunks starting with '!':
 *   "!burst N"  N one-byte conn_write calls in one on_data (write coalescing)
 *   "!now N"    N one-byte conn_write calls, each followed by conn_flush_now
 *   "!fill N"   N-byte writes until conn_write fails (output bound), result in the harness
 *   "!bye N"    N pattern bytes (byte i is i % 251), then conn_close("bye")
 *   "!close"    conn_close("closed by owner") with nothing queued
 * Each connection the owner sees is recorded; teardown checks on_close ran exactly once each.
 */
#ifndef NET_HARNESS_H
#define NET_HARNESS_H

#include "loop/io_thread.h"
#include "net/conn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define HARNESS_THREADS 2

struct harness;
struct echo_conn {
    struct harness *h;
    conn_t *c;
    unsigned thread;
    enum conn_transport transport;
    bool loopback;
    int close_calls;
    char reason[64];
    struct echo_conn *next;
};

struct harness;
struct harness_loop_arg {
    struct harness *h;
    unsigned index;
};

struct harness {
    io_thread_t io[HARNESS_THREADS];
    net_loop_t *nl[HARNESS_THREADS];
    struct harness_loop_arg arg[HARNESS_THREADS];
    bool loops_closed;

    uv_loop_t main_loop;
    uv_thread_t main_thread;
    uv_async_t main_async;
    pthread_mutex_t call_lock;
    uv_sem_t call_done;
    void (*call_fn)(struct harness *h, void *arg);
    void *call_arg;

    net_listener_t *listener;
    unsigned port;

    pthread_mutex_t lock; /* conns */
    struct echo_conn *conns;
    _Atomic unsigned accepted[HARNESS_THREADS];
    _Atomic unsigned closed;
    _Atomic int fill_rc;       /* 1 until a "!fill" ends */
    _Atomic size_t fill_bytes; /* bytes queued by the last "!fill" */
};

/* Start everything with a listener on 127.0.0.1:0 using o (address ignored). */
void harness_start(struct harness *h, const struct net_listener_options *o);
/* Stop the listener, close the loops (unless done), wait for every on_close, stop threads,
 * and check that each connection was closed exactly once. */
void harness_stop(struct harness *h);
/* Run fn on the main loop thread and wait for it. */
void harness_main_call(struct harness *h, void (*fn)(struct harness *h, void *arg), void *arg);
/* net_loop_close on both loops (from their threads) and wait for every on_close. */
void harness_close_loops(struct harness *h);
/* Sum of both loops' counters. */
void harness_counters(struct harness *h, struct net_loop_counters *sum);
unsigned harness_accepted(struct harness *h);
/* The recorded connection whose on_close reported reason (NULL if none). */
struct echo_conn *harness_find_closed(struct harness *h, const char *reason);

/* Wait up to ms for cond to become true (polling); check cond again afterwards. */
#define WAIT_FOR(cond, ms)                                                                         \
    for (double wait_end_ = harness_now() + (ms) / 1000.0; !(cond) && harness_now() < wait_end_;)  \
    harness_sleep_ms(1)
void harness_sleep_ms(unsigned ms);
double harness_now(void);

/* Blocking TCP client to 127.0.0.1:port; rcvbuf > 0 sets a small receive buffer first. */
int client_connect(unsigned port, int rcvbuf);
int client_send(int fd, const void *data, size_t len);
int client_read_exact(int fd, void *buf, size_t len);
/* True when the server closed (EOF or reset) within ms. */
bool client_wait_closed(int fd, unsigned ms);

#endif
