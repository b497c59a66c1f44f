/*
 * stats_json.h - a stats sample as JSON: pure functions from gathered numbers to the object the
 * control server's "stats" command streams, every key taken from common/stats_schema.h.
 *
 * stats.c gathers (threads, queues, counters; later the sessions table and the events tail)
 * and calls these; they read nothing but their arguments, so a unit test can feed them fake
 * counters and compare the keys they write with the schema.
 */
#ifndef IOTD_STATS_JSON_H
#define IOTD_STATS_JSON_H

#include "events/event.h"
#include "events/store.h"
#include "hub/hub.h"
#include "relay/relay.h"
#include "session/session.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stats_thread {
    char name[32];
    const char *role; /* "main", "io" or "db" */
    int tid;
    uint64_t cpu_ns, busy_ns;
    bool io; /* the counters below are written for io threads only */
    uint64_t sessions, frames_in, frames_out, bytes_in, bytes_out;
};

struct stats_queue {
    char name[32];
    uint64_t depth, high_water, capacity, enqueued, dequeued, drops;
};

/* Everything in a sample but the sessions table and the events tail. */
struct stats_sample {
    int64_t time_ms;
    uint64_t uptime_s;
    const char *version;
    int pid;
    uint64_t rss_bytes;
    const struct stats_thread *threads;
    size_t thread_count;
    const struct stats_queue *queues;
    size_t queue_count;
    uint64_t devices, users, control_clients; /* open connections */
    uint64_t auth_failures, rate_limited;
    uint64_t outcomes[RELAY_OUTCOME_COUNT];
    const struct event_store_stats *store;   /* NULL: no event store, its fields are left out */
    const struct hub_stats *hub;             /* NULL: no hub, its fields are left out */
    uint64_t items_delivered, items_dropped; /* by the io threads (the hub's are added) */
    /* The cluster's status (cluster_status, as iotctl status has it), copied by the schema's
     * keys into the cluster section; NULL: a single node, no section. */
    const cJSON *cluster;
};

/* The sample object with an empty events array, or NULL on ENOMEM. */
cJSON *stats_sample_json(const struct stats_sample *s);

/* Add the sessions table (total, sort, top rows) and the requests waiting at devices. */
void stats_json_add_sessions(cJSON *sample, const char *sort, const struct session_row *rows,
                             size_t n, size_t total, const struct request_row *requests,
                             size_t nrequests);

/* Append to the sample's events array: a connection event (conn_log), or a device event or
 * alarm change (the hub) with a detail line "NAME key=value ...". */
void stats_json_add_connection_event(cJSON *sample, int64_t at_ms, const char *event,
                                     const char *device_id, const char *address,
                                     const char *reason);
void stats_json_add_item(cJSON *sample, const struct event *item);

#endif
