/*
 * stats.h - one sample of what iottop shows: threads, queues, sessions, totals and the
 * connection events since the subscriber's previous sample.
 *
 * Counters are cumulative and cheap (per-thread atomics and queue counters, summed on demand);
 * rates are the subscriber's business (iottop divides deltas by time). The sessions table
 * is gathered from the io threads through their inboxes, so a sample completes asynchronously
 * on the main loop.
 */
#ifndef IOTD_STATS_H
#define IOTD_STATS_H

#include "db/db.h"
#include "loop/io_thread.h"
#include "session/conn_log.h"
#include "relay/presence.h"
#include "session/session.h"

#include <cjson/cJSON.h>
#include <stdint.h>

struct stats_sources {
    const char *version;
    uint64_t started_ns; /* uv_hrtime() at start */
    inbox_t *main_inbox;
    int main_tid;
    _Atomic uint64_t *main_busy_ns;
    io_thread_t *io;
    unsigned io_count;
    sessions_t *sessions;
    db_pool_t *db;
    conn_log_t *conn_log;
    relay_audit_t *audit;
    presence_t *presence;
    struct event_store *events;        /* may be NULL */
    struct alarm_writer *alarm_writer; /* may be NULL */
    struct hub *hub;                   /* may be NULL */
    /* The cluster's status object (freed by the caller), or NULL: a single node (no cluster
     * section in the sample). Called with control_arg; may be NULL. */
    cJSON *(*cluster_status)(void *arg);
    unsigned (*control_clients)(void *arg);
    /* Outcomes of the control socket's "send" requests (may be NULL). */
    void (*control_outcomes)(void *arg, uint64_t *counts, unsigned n);
    void *control_arg;
};

struct stats_query {
    size_t top;          /* sessions in the sample */
    const char *sort;    /* session sort key */
    uint64_t *event_seq; /* the subscriber's position in the connection events */
    uint64_t *item_seq;  /* ...and in the device events and alarm changes */
};

/* Receives the sample (owned by the callee) or NULL if it could not be built. Runs on the
 * main loop. */
typedef void (*stats_done_fn)(cJSON *sample, void *arg);

/* Start building a sample. IOT_EINVAL for an unknown sort key; otherwise fn runs exactly once
 * (perhaps before this returns). */
int stats_collect(const struct stats_sources *src, const struct stats_query *q, stats_done_fn fn,
                  void *arg);

#endif
