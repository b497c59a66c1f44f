/*
 * stats.c - building a stats sample (see stats.h).
 *
 * The counters are gathered into a struct stats_sample, which stats_json.c turns into JSON by
 * the schema (common/stats_schema.h). CPU time of every thread is read from
 * /proc/self/task/TID/schedstat (nanoseconds on CPU), so no thread has to measure itself; loop
 * busy time comes from the loops' prepare/check meters.
 */
#include "stats/stats.h"

#include "stats/stats_json.h"

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

static void add_thread(struct stats_thread *t, const char *name, const char *role, int tid,
                       uint64_t busy_ns)
{
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->role = role;
    t->tid = tid;
    t->cpu_ns = thread_cpu_ns(tid);
    t->busy_ns = busy_ns;
}

static void add_queue(struct stats_queue *q, const char *name, size_t depth, size_t high,
                      size_t cap, uint64_t enq, uint64_t deq, uint64_t drops)
{
    *q = (struct stats_queue){.depth = depth,
                              .high_water = high,
                              .capacity = cap,
                              .enqueued = enq,
                              .dequeued = deq,
                              .drops = drops};
    snprintf(q->name, sizeof(q->name), "%s", name);
}

static void add_inbox(struct stats_queue *q, const char *name, inbox_t *inbox)
{
    size_t depth, high, cap;
    uint64_t enq, deq, rej;
    inbox_stats(inbox, &depth, &high, &cap, &enq, &deq, &rej);
    add_queue(q, name, depth, high, cap, enq, deq, rej);
}

/* The queues other than the inboxes: at most this many. */
#define OTHER_QUEUES 5

/* Read every counter the sample shows into s (threads and queues into arrays sized by the
 * caller: 1 + io_count + db threads, and 1 + io_count + OTHER_QUEUES). */
static void gather(const struct stats_sources *src, struct stats_sample *s,
                   struct stats_thread *threads, struct stats_queue *queues,
                   struct event_store_stats *es, struct hub_stats *hs)
{
    size_t nt = 0, nq = 0;
    s->time_ms = ctl_wall_ms();
    s->uptime_s = (uv_hrtime() - src->started_ns) / 1000000000;
    s->version = src->version;
    s->pid = getpid();
    s->rss_bytes = rss_bytes();

    add_thread(&threads[nt++], "main", "main", src->main_tid, atomic_load(src->main_busy_ns));
    add_inbox(&queues[nq++], "inbox:main", src->main_inbox);

    if (src->control_outcomes)
        src->control_outcomes(src->control_arg, s->outcomes, RELAY_OUTCOME_COUNT);
    for (unsigned i = 0; i < src->io_count; i++) {
        io_thread_t *io = &src->io[i];
        const struct session_counters *c = sessions_counters(src->sessions, i);
        struct stats_thread *t = &threads[nt++];
        add_thread(t, io->name, "io", atomic_load(&io->os_tid), atomic_load(&io->meter.busy_ns));
        t->io = true;
        t->sessions = atomic_load(&c->sessions);
        t->frames_in = atomic_load(&c->frames_in);
        t->frames_out = atomic_load(&c->frames_out);
        struct net_loop_counters nc;
        net_loop_counters(sessions_net_loop(src->sessions, i), &nc);
        t->bytes_in = nc.bytes_in;
        t->bytes_out = nc.bytes_out;
        char name[32];
        snprintf(name, sizeof(name), "inbox:%s", io->name);
        add_inbox(&queues[nq++], name, &io->inbox);
        s->devices += atomic_load(&c->devices);
        s->users += atomic_load(&c->users);
        for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++)
            s->outcomes[k] += atomic_load(&c->outcomes[k]);
        s->auth_failures += atomic_load(&c->auth_failures);
        s->items_delivered += atomic_load(&c->items_delivered);
        s->items_dropped += atomic_load(&c->items_dropped);
        s->rate_limited += atomic_load(&c->rate_limited);
    }
    for (unsigned i = 0; i < db_pool_threads(src->db); i++) {
        const struct db_thread_info *info = db_pool_thread(src->db, i);
        char name[16];
        snprintf(name, sizeof(name), "db%u", i);
        add_thread(&threads[nt++], name, "db", atomic_load(&info->tid),
                   atomic_load(&info->busy_ns));
    }
    size_t depth, high, cap, pending;
    uint64_t done, failed, written, dropped;
    unsigned connected;
    db_pool_stats(src->db, &depth, &high, &cap, &done, &failed, &connected);
    add_queue(&queues[nq++], "db:jobs", depth, high, cap, done + failed + depth, done + failed,
              failed);
    conn_log_stats(src->conn_log, &written, &dropped, &pending);
    add_queue(&queues[nq++], "conn_log", pending, 0, 0, written + dropped + pending, written,
              dropped);
    if (src->audit) {
        relay_audit_stats(src->audit, &written, &dropped, &pending);
        add_queue(&queues[nq++], "relay_audit", pending, 0, 0, written + dropped + pending, written,
                  dropped);
    }
    if (src->events) {
        event_store_stats(src->events, es);
        add_queue(&queues[nq++], "events", es->queued, es->high_water, es->capacity,
                  es->stored + es->duplicates + es->spooled + es->queued + es->busy,
                  es->stored + es->duplicates + es->spooled, es->busy);
        s->store = es;
    }
    if (src->alarm_writer) {
        struct alarm_writer_stats as;
        alarm_writer_stats(src->alarm_writer, &as);
        add_queue(&queues[nq++], "alarm_writer", as.queued + as.in_flight, 0, as.capacity,
                  as.written + as.failed + as.dropped + as.queued + as.in_flight,
                  as.written + as.failed, as.dropped);
    }
    if (src->hub) {
        hub_stats(src->hub, hs);
        s->hub = hs;
    }
    s->control_clients = src->control_clients(src->control_arg);
    s->threads = threads;
    s->thread_count = nt;
    s->queues = queues;
    s->queue_count = nq;
}

static void add_event(void *arg, int64_t at_ms, const char *event, const char *device_id,
                      const char *address, const char *reason)
{
    stats_json_add_connection_event(arg, at_ms, event, device_id, address, reason);
}

static void add_item(void *arg, const struct event *item)
{
    stats_json_add_item(arg, item);
}

/* Everything but the sessions table, which arrives later from the io threads; NULL on ENOMEM. */
static cJSON *sample_base(const struct stats_sources *src, const struct stats_query *q)
{
    size_t max_threads = 1 + src->io_count + db_pool_threads(src->db);
    struct stats_thread *threads = calloc(max_threads, sizeof(*threads));
    struct stats_queue *queues = calloc(1 + src->io_count + OTHER_QUEUES, sizeof(*queues));
    struct stats_sample sample = {0};
    struct event_store_stats es;
    struct hub_stats hs;
    cJSON *s = NULL, *cluster = NULL;
    if (!threads || !queues)
        goto out;
    gather(src, &sample, threads, queues, &es, &hs);
    cluster = src->cluster_status ? src->cluster_status(src->control_arg) : NULL;
    sample.cluster = cluster;
    s = stats_sample_json(&sample);
    if (!s)
        goto out;
    conn_log_recent(src->conn_log, q->event_seq, add_event, s);
    if (src->hub && q->item_seq)
        hub_recent(src->hub, q->item_seq, add_item, s);
out:
    cJSON_Delete(cluster);
    free(threads);
    free(queues);
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
    stats_json_add_sessions(p->sample, p->sort, rows, n, total, requests, nrequests);
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
