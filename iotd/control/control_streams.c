/*
 * control_streams.c - the streams of the control socket and the leases they hold: "stats" (a
 * sample from the daemon per interval), "watch" (events and alarm changes from the hub as they
 * happen, a slow reader losing items rather than memory) and "lease" (an event kept started on
 * a device for an operator). A stream answers {"stream": true}, then {"item"}s until its count,
 * the client's disconnect or the daemon's stop ({"end": true, "reason": ...}).
 */
#include "control/control_dispatch.h"

#include "base/log.h"
#include "control/control_events.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "iot_hash.h"
#include "session/session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stream: a timer asking the provider for a sample per interval (stats), or a hub
 * subscription whose timer renews the stream's lease (watch). Referenced by its timer (until
 * closed) and by a sample being built; freed when both are gone. */
struct control_stream {
    struct control_stream *next;
    struct control_conn *conn;
    uint32_t id;
    uv_timer_t timer;
    cJSON *args;
    struct stats_cursors cursors;
    long long count, sent;
    unsigned refs;
    bool collecting, ended;
    /* watch */
    bool watch;
    uint64_t sub_id;  /* hub subscription, 0 = none */
    uint64_t holder;  /* lease holder, 0 = no lease */
    uint64_t dropped; /* items the client was too slow for, not yet reported */
    uint64_t ticks;
    char tenant[65], device[65], event[65];
};

/* A watch stream's lease is held for this long and renewed at a third of it; its timer ticks
 * once a second. */
#define WATCH_LEASE_MS 60000
#define WATCH_TICK_MS  1000

#define STREAM_MIN_INTERVAL_MS 100
#define STREAM_MAX_INTERVAL_MS 60000

static void stream_unref(struct control_stream *st)
{
    if (--st->refs > 0)
        return;
    struct control_conn *conn = st->conn;
    cJSON_Delete(st->args);
    free(st);
    control_conn_unref(conn);
}

static void on_stream_timer_closed(uv_handle_t *handle)
{
    stream_unref(handle->data);
}

/* Stop a stream, telling the client why (reason NULL: the client is gone). */
static void stream_end(struct control_stream *st, const char *reason)
{
    if (st->ended)
        return;
    st->ended = true;
    hub_t *hub = st->conn->srv->deps.hub;
    if (st->sub_id)
        hub_unsubscribe(hub, st->sub_id);
    if (st->holder)
        hub_release(hub, st->holder);
    st->sub_id = st->holder = 0;
    struct control_conn *conn = st->conn;
    for (struct control_stream **p = &conn->streams; *p; p = &(*p)->next) {
        if (*p == st) {
            *p = st->next;
            break;
        }
    }
    if (reason) {
        cJSON *end = cJSON_CreateObject();
        cJSON_AddNumberToObject(end, "id", st->id);
        cJSON_AddTrueToObject(end, "end");
        cJSON_AddStringToObject(end, "reason", reason);
        control_send(conn, end);
    }
    uv_close((uv_handle_t *)&st->timer, on_stream_timer_closed);
}

static void on_stream_sample(cJSON *sample, void *arg)
{
    struct control_stream *st = arg;
    st->collecting = false;
    if (!st->ended && sample) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddNumberToObject(msg, "id", st->id);
        cJSON_AddItemToObject(msg, "item", sample);
        sample = NULL;
        control_send(st->conn, msg);
        if (st->count > 0 && ++st->sent >= st->count)
            stream_end(st, "count reached");
    }
    cJSON_Delete(sample);
    stream_unref(st);
}

static void on_stream_tick(uv_timer_t *timer)
{
    struct control_stream *st = timer->data;
    control_server_t *srv = st->conn->srv;
    if (st->collecting || st->ended)
        return; /* the previous sample is still being built: skip, do not pile up */
    st->collecting = true;
    st->refs++;
    srv->deps.stats(srv->deps.stats_arg, st->args, &st->cursors, on_stream_sample, st);
}

/* A stream of conn with its timer (not started), linked into the connection; it owns args.
 * NULL (args freed, the client told) if out of memory. */
static struct control_stream *stream_new(struct control_conn *conn, uint32_t id, cJSON *args,
                                         long long count)
{
    struct control_stream *st = calloc(1, sizeof(*st));
    if (!st) {
        cJSON_Delete(args);
        control_send_error(conn, id, IOT_ENOMEM, NULL);
        return NULL;
    }
    *st = (struct control_stream){.conn = conn, .id = id, .args = args, .count = count, .refs = 1};
    uv_timer_init(conn->srv->deps.loop, &st->timer);
    st->timer.data = st;
    conn->refs++;
    st->next = conn->streams;
    conn->streams = st;
    return st;
}

/* Tell the client its stream is on: {"id": ..., "ok": true, "stream": true}. */
static void stream_accepted(struct control_stream *st)
{
    cJSON *ack = ctl_reply_ok(st->id, NULL);
    cJSON_DeleteItemFromObjectCaseSensitive(ack, "result");
    cJSON_AddTrueToObject(ack, "stream");
    control_send(st->conn, ack);
}

void control_stats_start(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                         cJSON *args)
{
    (void)cmd;
    if (!conn->srv->deps.stats) {
        cJSON_Delete(args);
        control_send_error(conn, id, IOT_EINVAL, "stats are not served by this daemon");
        return;
    }
    long long interval = ctl_get_int(args, "interval_ms", 1000);
    long long count = ctl_get_int(args, "count", 0);
    if (interval < STREAM_MIN_INTERVAL_MS || interval > STREAM_MAX_INTERVAL_MS || count < 0) {
        cJSON_Delete(args);
        control_send_error(conn, id, IOT_EINVAL,
                           "--interval must be 100..60000 ms and --count >= 0");
        return;
    }
    /* An unknown --sort is refused now: later, each sample would fail and the stream stay
     * silent forever (iotctl(8): bad input gets a clear error). */
    const char *sort = ctl_get_string(args, "sort");
    if (sort && !session_row_comparator(sort)) {
        cJSON_Delete(args);
        control_send_error(conn, id, IOT_EINVAL,
                           "--sort must be frames_in, frames_out, bytes_out, output_bytes, since, "
                           "last_activity or in_flight");
        return;
    }
    struct control_stream *st = stream_new(conn, id, args, count);
    if (!st)
        return;
    stream_accepted(st);
    /* The first sample at once (a monitor should not start blank), then one per interval. */
    uv_timer_start(&st->timer, on_stream_tick, 0, (uint64_t)interval);
}

/* ---- watch: events and alarm changes as they happen ---- */

static void send_item(struct control_stream *st, cJSON *item)
{
    cJSON *msg = cJSON_CreateObject();
    if (!msg || !item) {
        cJSON_Delete(msg);
        cJSON_Delete(item);
        return;
    }
    cJSON_AddNumberToObject(msg, "id", st->id);
    cJSON_AddItemToObject(msg, "item", item);
    control_send(st->conn, msg);
}

/* Is the watcher's unread output past the bound? */
static bool watch_backed_up(const struct control_stream *st)
{
    size_t backlog =
        st->conn->srv->deps.watch_backlog ? st->conn->srv->deps.watch_backlog : 1024u * 1024;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&st->conn->pipe) > backlog;
}

/* Tell the watcher how many items it missed, once it reads again. */
static void watch_report_dropped(struct control_stream *st)
{
    if (!st->dropped || watch_backed_up(st))
        return;
    cJSON *notice = cJSON_CreateObject();
    if (notice)
        cJSON_AddNumberToObject(notice, "dropped", (double)st->dropped);
    send_item(st, notice);
    st->dropped = 0;
}

/* The hub's sink: one item for this watcher. A watcher that does not read its socket loses
 * items (counted, then reported) instead of holding up the others or iotd's memory. */
static void on_watch_item(void *arg, struct event *item)
{
    struct control_stream *st = arg;
    if (st->ended || st->conn->closed)
        return;
    if (watch_backed_up(st)) {
        st->dropped++;
        return;
    }
    watch_report_dropped(st);
    send_item(st, control_event_item(item));
    if (st->count > 0 && ++st->sent >= st->count)
        stream_end(st, "count reached");
}

/* Once a second: report drops to a watcher that caught up with no new item to carry the
 * notice, and renew the stream's lease every third of its term. */
static void on_watch_tick(uv_timer_t *timer)
{
    struct control_stream *st = timer->data;
    char err[160];
    if (st->ended || st->conn->closed)
        return;
    watch_report_dropped(st);
    if (!st->holder || ++st->ticks % (WATCH_LEASE_MS / 3 / WATCH_TICK_MS) != 0)
        return;
    if (hub_lease(st->conn->srv->deps.hub, st->holder, st->tenant, st->device, st->event,
                  WATCH_LEASE_MS, err, sizeof(err)) != 0)
        log_warn("control: renewing the lease of %s on %s: %s", st->event, st->device, err);
}

/* The filter of a watch request; IOT_EINVAL / IOT_ENOTFOUND with a sentence in err. */
static int watch_filter(control_server_t *srv, const cJSON *args, struct hub_filter *f, char *err,
                        size_t errlen)
{
    static const struct {
        const char *key;
        size_t offset;
    } names[] = {{"tenant", offsetof(struct hub_filter, tenant)},
                 {"device", offsetof(struct hub_filter, device)},
                 {"group", offsetof(struct hub_filter, group)},
                 {"type", offsetof(struct hub_filter, type)},
                 {"event", offsetof(struct hub_filter, event)}};
    const char *as = ctl_get_string(args, "as");
    int rc = IOT_OK;
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = ctl_get_string(args, names[i].key);
        if (v)
            snprintf((char *)f + names[i].offset, 65, "%s", v);
    }
    f->alarms = ctl_get_bool(args, "alarms", 0) ? HUB_ALARMS_ONLY : HUB_EVENTS_AND_ALARMS;
    registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
    if (as) {
        struct registry_user_info u;
        if (registry_user_lookup(snap, as, &u) != 0) {
            snprintf(err, errlen, "no user %s", as);
            rc = IOT_ENOTFOUND;
        } else if (f->tenant[0] && strcmp(f->tenant, u.tenant) != 0) {
            snprintf(err, errlen, "user %s is not of tenant %s", as, f->tenant);
            rc = IOT_EINVAL;
        } else {
            snprintf(f->principal, sizeof(f->principal), "%s", u.address);
            snprintf(f->tenant, sizeof(f->tenant), "%s", u.tenant);
        }
    }
    struct registry_device_info d;
    if (rc == IOT_OK && f->device[0]) {
        if (registry_device_lookup(snap, f->device, &d) != 0 ||
            (f->tenant[0] && strcmp(d.tenant, f->tenant) != 0)) {
            snprintf(err, errlen, "no device %s%s%s", f->device, f->tenant[0] ? " in tenant " : "",
                     f->tenant);
            rc = IOT_ENOTFOUND;
        } else if (!f->tenant[0]) {
            snprintf(f->tenant, sizeof(f->tenant), "%s", d.tenant);
        }
    }
    registry_release(snap);
    return rc;
}

void control_watch_start(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                         cJSON *args)
{
    (void)cmd;
    control_server_t *srv = conn->srv;
    struct hub_filter f;
    char err[400] = "";
    long long count = ctl_get_int(args, "count", 0);
    bool lease = ctl_get_bool(args, "start", 0);
    int rc = srv->deps.hub ? watch_filter(srv, args, &f, err, sizeof(err)) : IOT_EINVAL;
    if (rc == IOT_OK && count < 0) {
        rc = IOT_EINVAL;
        snprintf(err, sizeof(err), "--count must be >= 0");
    }
    if (rc == IOT_OK && lease && (!f.device[0] || !f.event[0])) {
        rc = IOT_EINVAL;
        snprintf(err, sizeof(err), "--start needs --device and --event");
    }
    if (rc == IOT_OK && lease && f.principal[0]) {
        registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
        struct registry_user_info u;
        if (!registry_access_allows_read(snap, f.principal, f.device, f.event)) {
            rc = IOT_EDENIED;
            snprintf(err, sizeof(err), "%.128s may not read %.64s of %.64s", f.principal, f.event,
                     f.device);
        } else if (registry_user_lookup(snap, f.principal, &u) == 0 && !u.may_act) {
            /* Watching is reading; holding the lease starts commands on the device. */
            rc = IOT_EDENIED;
            snprintf(err, sizeof(err), "%.128s has role %s, which may not take leases", f.principal,
                     u.role);
        }
        registry_release(snap);
    }
    if (rc != IOT_OK) {
        control_send_error(conn, id, rc, err[0] ? err : "events are not served by this daemon");
        cJSON_Delete(args);
        return;
    }
    struct control_stream *st = stream_new(conn, id, args, count);
    if (!st)
        return;
    st->watch = true;
    snprintf(st->tenant, sizeof(st->tenant), "%s", f.tenant);
    snprintf(st->device, sizeof(st->device), "%s", f.device);
    snprintf(st->event, sizeof(st->event), "%s", f.event);
    if (lease) {
        st->holder = hub_holder_id(srv->deps.hub);
        rc = hub_lease(srv->deps.hub, st->holder, st->tenant, st->device, st->event, WATCH_LEASE_MS,
                       err, sizeof(err));
    }
    if (rc == IOT_OK)
        rc = hub_subscribe(srv->deps.hub, &f, on_watch_item, st, &st->sub_id);
    if (rc != IOT_OK) {
        control_send_error(conn, id, rc, err[0] ? err : NULL);
        stream_end(st, NULL);
        return;
    }
    stream_accepted(st);
    uv_timer_start(&st->timer, on_watch_tick, WATCH_TICK_MS, WATCH_TICK_MS);
}

/* "lease": held by the operator (not this connection, which a cron job closes at once) until
 * its ttl; renewing is asking again, ttl 0 gives it up. */
void control_lease(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                   const cJSON *args)
{
    (void)cmd;
    control_server_t *srv = conn->srv;
    long long ttl = ctl_get_int(args, "ttl_s", 600);
    char err[256] = "";
    const char *device = ctl_get_string(args, "device"), *event = ctl_get_string(args, "event");
    if (!srv->deps.hub) {
        control_send_error(conn, id, IOT_EINVAL, "events are not served by this daemon");
        return;
    }
    if (ttl < 0 || ttl > 7 * 86400) {
        control_send_error(conn, id, IOT_EINVAL, "--ttl must be 0..604800 seconds");
        return;
    }
    /* One holder per operator and lease: FNV-1a of who and what, kept clear of session serials.
     * Who is the actor without its process ("root (uid=0 pid=N)" -> "root (uid=0"), so that
     * the next iotctl run renews or releases the lease an earlier one took. */
    const char *pid = strstr(conn->actor, " pid=");
    size_t who_len = pid ? (size_t)(pid - conn->actor) : strlen(conn->actor);
    uint64_t holder = iot_fnv64(IOT_FNV64_SEED, conn->actor, who_len);
    const char *parts[] = {"\n", device, "\n", event};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        holder = iot_fnv64_str(holder, parts[i]);
    holder |= 1ull << 63;
    int rc = IOT_OK;
    if (ttl == 0)
        hub_release(srv->deps.hub, holder);
    else
        rc = hub_lease(srv->deps.hub, holder, ctl_get_string(args, "tenant"), device, event,
                       (uint32_t)ttl * 1000u, err, sizeof(err));
    if (rc != IOT_OK) {
        control_send_error(conn, id, rc, err[0] ? err : NULL);
        return;
    }
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "device", device);
    cJSON_AddStringToObject(result, "event", event);
    cJSON_AddNumberToObject(result, "ttl_s", (double)ttl);
    control_send(conn, ctl_reply_ok(id, result));
}

void control_streams_end_all(struct control_conn *conn, const char *reason)
{
    while (conn->streams)
        stream_end(conn->streams, reason);
}
