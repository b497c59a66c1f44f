/*
 * hub_internal.h - the hub's state, shared by its files: hub.c (durable batches, fan-out,
 * subscriptions, requests from sessions), lease.c (leases), hub_alarms.c (alarm rules and
 * transitions). Nothing outside iotd/hub includes it.
 */
#ifndef IOTD_HUB_INTERNAL_H
#define IOTD_HUB_INTERNAL_H

#include "hub/hub.h"
#include "hub/hub_index.h"

struct hub_bucket;

/* A subscription: allocated on its own, so that fan-out can hold pointers to it while a sink
 * ends subscriptions (hub_index.h). */
struct hub_sub {
    uint64_t id; /* 0 once removed during a fan-out (freed when the fan-out is done) */
    struct hub_filter f;
    /* where hub_index keeps it */
    struct hub_bucket *bucket;
    size_t bucket_pos, all_pos;
    struct hub_sub *next_dead; /* removed during a fan-out: freed after it */
    /* a main-loop sink... */
    hub_sink_fn sink;
    void *arg;
    /* ...or a user session on an io thread */
    bool remote;
    unsigned io;
    uint32_t slot;
    uint64_t serial;
};

struct lease_holder {
    uint64_t holder;
    uint64_t expires_ms; /* loop time */
};

struct lease {
    char tenant[65], device[65], event[65];
    char start[65], stop[65];
    struct lease_holder *holders;
    size_t nholders, cap;
    bool started;         /* the start command was answered OK */
    bool sending;         /* a start or stop is on its way */
    uint64_t last_try_ms; /* loop time of the last start attempt */
    uint16_t node;        /* not 0: held at that node, where the device is online (cluster) */
    uint64_t renewed_ms;  /* loop time of the last hold sent there */
};

struct hub_alarm_state;

#define HUB_RECENT 128

struct hub {
    struct hub_deps deps;
    struct hub_options opts;
    hub_index_t subs;
    struct hub_sub *dead; /* removed while fanning, not freed yet */
    uint64_t next_id;
    struct lease **leases;
    size_t nleases, cap_leases;
    struct hub_cluster_port cluster; /* lease is NULL without a cluster */
    uv_timer_t tick;                 /* leases' expiry and alarm deadlines */
    struct hub_stats stats;
    struct hub_alarm_state *alarm_state; /* hub_alarms.c; NULL without a database */
    struct event *recent[HUB_RECENT];    /* the last items fanned out (references) */
    uint64_t recent_seq;                 /* items ever fanned out; the k-th at recent[k % N] */
    bool stopping;
    unsigned fanning; /* hub_fanout calls under way: removed subscribers wait in dead */
    unsigned refs;    /* the hub, plus commands on their way to devices */
};

/* Loop time in ms. */
uint64_t hub_now(hub_t *hub);
/* Send one item to every matching subscriber. */
void hub_fanout(hub_t *hub, struct event *item);
void hub_unref(hub_t *hub);

/* lease.c */
void lease_tick(hub_t *hub);
void lease_device_online(hub_t *hub, const char *device);
void lease_free_all(hub_t *hub);

/* hub_alarms.c */
int hub_alarms_start(hub_t *hub);
void hub_alarms_event(hub_t *hub, struct event *ev);
void hub_alarms_presence(hub_t *hub, const char *tenant, const char *device, const char *type,
                         bool online);
void hub_alarms_tick(hub_t *hub);
void hub_alarms_stop(hub_t *hub);

#endif
