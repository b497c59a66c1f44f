/*
 * stats.c - building a stats sample (see stats.h).
 *
 * CPU time of every thread is read from /proc/self/task/TID/schedstat (nanoseconds on CPU), so
 * no thread has to measure itself; loop busy time comes from the loops' prepare/check meters.
 */
#include "stats/stats.h"

#include "ctl_time.h"
#include "iot_error.h"
#include "alarm/alarm_writer.h"
#include "events/store.h"
#include "hub/hub.h"
#include "net/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Nanoseconds thread tid has run, 0 if unknown. */
static uint64_t thread_cpu_ns(int tid)
{
    char path[64];
    unsigned long long ns = 0;
    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%llu", &ns) != 1)
        ns = 0;
    fclose(f);
    return ns;
}

static uint64_t rss_bytes(void)
{
    unsigned long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &pages_total, &pages_resident) != 2)
        pages_resident = 0;
    fclose(f);
    return (uint64_t)pages_resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static cJSON *thread_row(cJSON *threads, const char *name, const char *role, int tid,
                         uint64_t busy_ns)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddItemToArray(threads, t);
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "role", role);
    cJSON_AddNumberToObject(t, "tid", tid);
    cJSON_AddNumberToObject(t, "cpu_ns", (double)thread_cpu_ns(tid));
    cJSON_AddNumberToObject(t, "busy_ns", (double)busy_ns);
    return t;
}

static void queue_row(cJSON *queues, const char *name, size_t depth, size_t high, size_t cap,
                      uint64_t enq, uint64_t deq, uint64_t drops)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToArray(queues, q);
    cJSON_AddStringToObject(q, "name", name);
    cJSON_AddNumberToObject(q, "depth", (double)depth);
    cJSON_AddNumberToObject(q, "high_water", (double)high);
    cJSON_AddNumberToObject(q, "capacity", (double)cap);
    cJSON_AddNumberToObject(q, "enqueued", (double)enq);
    cJSON_AddNumberToObject(q, "dequeued", (double)deq);
    cJSON_AddNumberToObject(q, "drops", (double)drops);
}

static void inbox_row(cJSON *queues, const char *name, inbox_t *inbox)
{
    size_t depth, high, cap;
    uint64_t enq, deq, rej;
    inbox_stats(inbox, &depth, &high, &cap, &enq, &deq, &rej);
    queue_row(queues, name, depth, high, cap, enq, deq, rej);
}

static void add_event(void *arg, int64_t at_ms, const char *event, const char *device_id,
                      const char *address, const char *reason)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToArray(arg, e);
    cJSON_AddNumberToObject(e, "time_ms", (double)at_ms);
    cJSON_AddStringToObject(e, "kind", event);
    cJSON_AddStringToObject(e, "principal", device_id);
    cJSON_AddStringToObject(e, "address", address);
    cJSON_AddStringToObject(e, "reason", reason);
}

/* A device event or alarm change in the sample's event tail: the kind, the device, and a
 * detail line "NAME key=value ...". */
static void add_item(void *arg, const struct event *item)
{
    char detail[512];
    size_t len = (size_t)snprintf(detail, sizeof(detail), "%s", item->name);
    for (unsigned i = 0; i < item->nfields && len < sizeof(detail); i++)
        len += (size_t)snprintf(detail + len, sizeof(detail) - len, " %s", event_field_at(item, i));
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToArray(arg, e);
    cJSON_AddNumberToObject(e, "time_ms", (double)item->ts_ms);
    cJSON_AddStringToObject(e, "kind", event_kind_name(item->kind));
    cJSON_AddStringToObject(e, "principal", item->device);
    cJSON_AddStringToObject(e, "tenant", item->tenant);
    cJSON_AddStringToObject(e, "message", detail);
}

/* Everything but the sessions table, which arrives later from the io threads. */
/* totals.events: what the store, the hub and the subscribers did. Items to user sessions are
 * counted on the io threads; those to control streams by the hub. */
static void add_event_totals(const struct stats_sources *src, cJSON *totals,
                             uint64_t items_delivered, uint64_t items_dropped)
{
    cJSON *ev = cJSON_AddObjectToObject(totals, "events");
    if (!ev)
        return;
    if (src->events) {
        struct event_store_stats es;
        event_store_stats(src->events, &es);
        cJSON_AddStringToObject(ev, "state", es.state);
        cJSON_AddNumberToObject(ev, "stored", (double)es.stored);
        cJSON_AddNumberToObject(ev, "duplicates", (double)es.duplicates);
        cJSON_AddNumberToObject(ev, "batches", (double)es.batches);
        cJSON_AddNumberToObject(ev, "spooled", (double)es.spooled);
        cJSON_AddNumberToObject(ev, "spool_bytes", (double)es.spool_bytes);
        cJSON_AddNumberToObject(ev, "replayed", (double)es.replayed);
        cJSON_AddNumberToObject(ev, "busy", (double)es.busy);
        /* iottop's events/s: every event made durable (stored or spooled). */
        cJSON_AddNumberToObject(totals, "events_stored", (double)(es.stored + es.spooled));
    }
    if (src->hub) {
        struct hub_stats hs;
        hub_stats(src->hub, &hs);
        cJSON_AddNumberToObject(ev, "alarm_changes", (double)hs.alarms);
        cJSON_AddNumberToObject(ev, "subscribers", (double)hs.subscribers);
        cJSON_AddNumberToObject(ev, "leases", (double)hs.leases);
        items_delivered += hs.delivered;
        items_dropped += hs.dropped;
    }
    cJSON_AddNumberToObject(ev, "delivered", (double)items_delivered);
    cJSON_AddNumberToObject(ev, "dropped", (double)items_dropped);
}

static cJSON *sample_base(const struct stats_sources *src, const struct stats_query *q)
{
    cJSON *s = cJSON_CreateObject();
    if (!s)
        return NULL;
    cJSON_AddNumberToObject(s, "time_ms", (double)ctl_wall_ms());
    cJSON_AddNumberToObject(s, "uptime_s", (double)((uv_hrtime() - src->started_ns) / 1000000000));
    cJSON_AddStringToObject(s, "version", src->version);
    cJSON_AddNumberToObject(s, "pid", getpid());
    cJSON_AddNumberToObject(s, "rss_bytes", (double)rss_bytes());

    cJSON *threads = cJSON_AddArrayToObject(s, "threads");
    cJSON *queues = cJSON_AddArrayToObject(s, "queues");
    thread_row(threads, "main", "main", src->main_tid, atomic_load(src->main_busy_ns));
    inbox_row(queues, "inbox:main", src->main_inbox);

    uint64_t devices = 0, users = 0, auth_failures = 0, rate_limited = 0;
    uint64_t items_delivered = 0, items_dropped = 0;
    uint64_t outcomes[RELAY_OUTCOME_COUNT] = {0};
    if (src->control_outcomes)
        src->control_outcomes(src->control_arg, outcomes, RELAY_OUTCOME_COUNT);
    for (unsigned i = 0; i < src->io_count; i++) {
        io_thread_t *io = &src->io[i];
        const struct session_counters *c = sessions_counters(src->sessions, i);
        cJSON *t = thread_row(threads, io->name, "io", atomic_load(&io->os_tid),
                              atomic_load(&io->meter.busy_ns));
        cJSON_AddNumberToObject(t, "sessions", (double)atomic_load(&c->sessions));
        cJSON_AddNumberToObject(t, "frames_in", (double)atomic_load(&c->frames_in));
        cJSON_AddNumberToObject(t, "frames_out", (double)atomic_load(&c->frames_out));
        struct net_loop_counters nc;
        net_loop_counters(sessions_net_loop(src->sessions, i), &nc);
        cJSON_AddNumberToObject(t, "bytes_in", (double)nc.bytes_in);
        cJSON_AddNumberToObject(t, "bytes_out", (double)nc.bytes_out);
        char name[32];
        snprintf(name, sizeof(name), "inbox:%s", io->name);
        inbox_row(queues, name, &io->inbox);
        devices += atomic_load(&c->devices);
        users += atomic_load(&c->users);
        for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++)
            outcomes[k] += atomic_load(&c->outcomes[k]);
        auth_failures += atomic_load(&c->auth_failures);
        items_delivered += atomic_load(&c->items_delivered);
        items_dropped += atomic_load(&c->items_dropped);
        rate_limited += atomic_load(&c->rate_limited);
    }
    for (unsigned i = 0; i < db_pool_threads(src->db); i++) {
        const struct db_thread_info *info = db_pool_thread(src->db, i);
        char name[16];
        snprintf(name, sizeof(name), "db%u", i);
        thread_row(threads, name, "db", atomic_load(&info->tid), atomic_load(&info->busy_ns));
    }
    size_t depth, high, cap, pending;
    uint64_t done, failed, written, dropped;
    unsigned connected;
    db_pool_stats(src->db, &depth, &high, &cap, &done, &failed, &connected);
    queue_row(queues, "db:jobs", depth, high, cap, done + failed + depth, done + failed, failed);
    conn_log_stats(src->conn_log, &written, &dropped, &pending);
    queue_row(queues, "conn_log", pending, 0, 0, written + dropped + pending, written, dropped);
    if (src->audit) {
        relay_audit_stats(src->audit, &written, &dropped, &pending);
        queue_row(queues, "relay_audit", pending, 0, 0, written + dropped + pending, written,
                  dropped);
    }

    if (src->events) {
        struct event_store_stats es;
        event_store_stats(src->events, &es);
        queue_row(queues, "events", es.queued, es.high_water, es.capacity,
                  es.stored + es.duplicates + es.spooled + es.queued + es.busy,
                  es.stored + es.duplicates + es.spooled, es.busy);
    }
    if (src->alarm_writer) {
        struct alarm_writer_stats as;
        alarm_writer_stats(src->alarm_writer, &as);
        queue_row(queues, "alarm_writer", as.queued + as.in_flight, 0, as.capacity,
                  as.written + as.failed + as.dropped + as.queued + as.in_flight,
                  as.written + as.failed, as.dropped);
    }

    cJSON *totals = cJSON_AddObjectToObject(s, "totals");
    cJSON *conns = cJSON_AddObjectToObject(totals, "connections");
    cJSON_AddNumberToObject(conns, "device", (double)devices);
    cJSON_AddNumberToObject(conns, "user", (double)users);
    cJSON_AddNumberToObject(conns, "control", src->control_clients(src->control_arg));
    cJSON_AddNumberToObject(totals, "auth_failures", (double)auth_failures);
    cJSON_AddNumberToObject(totals, "rate_limited", (double)rate_limited);
    /* iottop's names: the relay's outcomes, with internal failures counted as "error". */
    cJSON *oc = cJSON_AddObjectToObject(totals, "outcomes");
    for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++) {
        const char *name = k == RELAY_INTERNAL ? "internal" : relay_outcome_name(k);
        cJSON_AddNumberToObject(oc, name, (double)outcomes[k]);
    }

    add_event_totals(src, totals, items_delivered, items_dropped);

    cJSON *events = cJSON_AddArrayToObject(s, "events");
    conn_log_recent(src->conn_log, q->event_seq, add_event, events);
    if (src->hub && q->item_seq)
        hub_recent(src->hub, q->item_seq, add_item, events);
    return s;
}

struct pending_sample {
    cJSON *sample;
    const char *sort;
    stats_done_fn fn;
    void *arg;
};

static void on_sessions(const struct session_row *rows, size_t n, size_t total,
                        const struct request_row *requests, size_t nrequests, void *arg)
{
    struct pending_sample *p = arg;
    cJSON *sessions = cJSON_AddObjectToObject(p->sample, "sessions");
    cJSON_AddNumberToObject(sessions, "total", (double)total);
    cJSON_AddStringToObject(sessions, "sort", p->sort);
    cJSON *top = cJSON_AddArrayToObject(sessions, "top");
    for (size_t i = 0; i < n; i++) {
        const struct session_row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(top, o);
        cJSON_AddStringToObject(o, "principal", r->principal);
        cJSON_AddStringToObject(o, "tenant", r->tenant);
        cJSON_AddStringToObject(o, "kind", r->kind);
        cJSON_AddStringToObject(o, "state", r->state);
        cJSON_AddStringToObject(o, "transport", r->transport);
        cJSON_AddStringToObject(o, "address", r->address);
        cJSON_AddNumberToObject(o, "since_ms", (double)r->since_ms);
        cJSON_AddNumberToObject(o, "last_activity_ms", (double)r->last_activity_ms);
        cJSON_AddNumberToObject(o, "in_flight", r->in_flight);
        cJSON_AddNumberToObject(o, "output_bytes", (double)r->output_bytes);
        cJSON_AddNumberToObject(o, "bytes_out", (double)r->bytes_out);
        cJSON_AddNumberToObject(o, "frames_in", (double)r->frames_in);
        cJSON_AddNumberToObject(o, "frames_out", (double)r->frames_out);
    }
    cJSON *reqs = cJSON_AddArrayToObject(p->sample, "requests");
    for (size_t i = 0; i < nrequests; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(reqs, o);
        cJSON_AddStringToObject(o, "origin", requests[i].origin);
        cJSON_AddStringToObject(o, "device", requests[i].device);
        cJSON_AddStringToObject(o, "type", requests[i].type);
        cJSON_AddNumberToObject(o, "age_ms", (double)requests[i].age_ms);
        cJSON_AddNumberToObject(o, "deadline_ms", (double)requests[i].deadline_ms);
    }
    p->fn(p->sample, p->arg);
    free(p);
}

int stats_collect(const struct stats_sources *src, const struct stats_query *q, stats_done_fn fn,
                  void *arg)
{
    const char *sort = q->sort ? q->sort : "frames_in";
    session_row_cmp cmp = session_row_comparator(sort);
    if (!cmp)
        return IOT_EINVAL;
    struct pending_sample *p = malloc(sizeof(*p));
    cJSON *sample = p ? sample_base(src, q) : NULL;
    if (!sample) {
        free(p);
        fn(NULL, arg);
        return IOT_OK;
    }
    *p = (struct pending_sample){sample, sort, fn, arg};
    if (sessions_collect(src->sessions, src->main_inbox, cmp, q->top, on_sessions, p) != 0) {
        /* The io threads cannot take the request now: answer without the sessions table. */
        on_sessions(NULL, 0, 0, NULL, 0, p);
    }
    return IOT_OK;
}
