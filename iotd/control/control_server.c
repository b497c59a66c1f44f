/*
 * control_server.c - the control socket (see control_server.h).
 *
 * Lifetimes: a connection is referenced by its open pipe, by each request still at the database
 * and by each stream; the server is referenced by its listener and by each connection. Whoever
 * drops the last
 * reference frees, so a client that disconnects mid-request, or a daemon that stops while jobs
 * are queued, never leaves a completion pointing at freed memory.
 *
 * Changes run through admin_apply (registry/admin.h), which commits, reloads and publishes the
 * registry under its own lock, so two concurrent changes never publish out of order.
 */
#include "control/control_server.h"

#include "base/log.h"
#include "ctl_commands.h"
#include "ctl_proto.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "control/control_events.h"
#include "registry/admin.h"
#include "relay/relay.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A client that stops reading its replies is cut off past this much queued output. */
#define CONTROL_MAX_PENDING_OUTPUT (8u * 1024 * 1024)
#define CONTROL_READ_CHUNK         65536

struct control_server {
    uv_pipe_t listener;
    struct control_deps deps;
    char *path;
    gid_t admin_gid;
    bool has_admin_gid;
    bool stopping;
    unsigned refs;
    unsigned clients;
    struct control_conn *conns;             /* list of open connections */
    uint64_t outcomes[RELAY_OUTCOME_COUNT]; /* of "send", main loop only */
};

struct control_stream;

struct control_conn {
    uv_pipe_t pipe;
    struct control_stream *streams;
    control_server_t *srv;
    struct control_conn *prev, *next;
    char actor[64];
    char *buf;
    size_t len, cap;
    unsigned refs;
    bool closed;
    bool finishing; /* last reply sent: discard input until the client hangs up */
    uv_timer_t linger;
    uv_shutdown_t shutdown;
};

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

static void stream_end(struct control_stream *st, const char *reason);

/* A request executed on a db thread. */
struct control_job {
    db_job_t job;
    control_server_t *srv;
    struct control_conn *conn;
    const struct ctl_command *cmd;
    uint32_t id;
    cJSON *args;
    cJSON *result;
    char actor[64];
    char err[256];
};

static void server_unref(control_server_t *srv)
{
    if (--srv->refs > 0)
        return;
    free(srv->path);
    free(srv);
}

static void on_listener_closed(uv_handle_t *handle)
{
    server_unref(handle->data);
}

static void client_unref(struct control_conn *conn)
{
    if (--conn->refs > 0)
        return;
    control_server_t *srv = conn->srv;
    free(conn->buf);
    free(conn);
    server_unref(srv);
}

static void on_conn_closed(uv_handle_t *handle)
{
    client_unref(handle->data);
}

static void client_close(struct control_conn *conn)
{
    if (conn->closed)
        return;
    while (conn->streams)
        stream_end(conn->streams, NULL); /* the client is gone: nobody to tell */
    conn->closed = true;
    if (conn->finishing)
        uv_close((uv_handle_t *)&conn->linger, on_conn_closed);
    control_server_t *srv = conn->srv;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    srv->clients--;
    uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
}

/* How long a refused or cut-off client may take to read its last reply and hang up. */
#define CONTROL_LINGER_MS 2000

static void on_linger_timeout(uv_timer_t *timer)
{
    client_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Close after the last reply has reached the client. Closing at once would reset the
 * connection while the client still has a request in flight, and it would never see why. */
static void client_finish(struct control_conn *conn)
{
    if (conn->closed || conn->finishing)
        return;
    conn->finishing = true;
    conn->refs++; /* held by the linger timer until its close callback */
    uv_timer_init(conn->srv->deps.loop, &conn->linger);
    conn->linger.data = conn;
    uv_timer_start(&conn->linger, on_linger_timeout, CONTROL_LINGER_MS, 0);
    if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->pipe, on_shutdown) != 0)
        client_close(conn);
}

struct write_req {
    uv_write_t req;
    char *data;
};

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    free(w->data);
    free(w);
    (void)status; /* a failed write shows up as a read error/EOF and closes the connection */
}

/* Queue one message (consumed) to the client. */
static void client_send(struct control_conn *conn, cJSON *msg)
{
    char *line = msg ? ctl_serialize_line(msg) : NULL;
    cJSON_Delete(msg);
    if (!line || conn->closed) {
        free(line);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&conn->pipe) > CONTROL_MAX_PENDING_OUTPUT) {
        log_warn("control: %s does not read its replies; disconnecting", conn->actor);
        free(line);
        client_close(conn);
        return;
    }
    struct write_req *w = malloc(sizeof(*w));
    if (!w) {
        free(line);
        client_close(conn);
        return;
    }
    w->data = line;
    uv_buf_t buf = uv_buf_init(line, (unsigned)strlen(line));
    if (uv_write(&w->req, (uv_stream_t *)&conn->pipe, &buf, 1, on_written) != 0) {
        free(line);
        free(w);
        client_close(conn);
    }
}

static void send_error(struct control_conn *conn, uint32_t id, int code, const char *message)
{
    client_send(conn, ctl_reply_error(id, code, message));
}

/* Runs on a db thread. */
static int control_job_run(db_job_t *job, MYSQL *db)
{
    struct control_job *cj = container_of(job, struct control_job, job);
    control_server_t *srv = cj->srv;
    struct admin_ctx ctx = {.secret_key = srv->deps.secret_key, .actor = cj->actor};
    int rc;

    cj->err[0] = '\0';
    cJSON_Delete(cj->result);
    cj->result = NULL;
    if (control_events_handles(cj->cmd)) {
        registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
        rc = control_events_execute(db, snap, cj->cmd, cj->args, cj->actor, &cj->result, cj->err,
                                    sizeof(cj->err));
        registry_release(snap);
        return rc;
    }
    return admin_apply(srv->deps.registry, db, &ctx, cj->cmd, cj->args, &cj->result, cj->err,
                       sizeof(cj->err));
}

/* What an events or alarm command changes beyond its own reply: rules reloaded into the
 * engine, an acknowledgement published on the streams. result may be NULL (already sent). */
static void after_events_command(control_server_t *srv, const struct ctl_command *cmd,
                                 const cJSON *args, const cJSON *result)
{
    hub_t *hub = srv->deps.hub;
    if (!hub)
        return;
    if (cmd->id == CTL_ALARM_RULE_ADD || cmd->id == CTL_ALARM_RULE_REMOVE) {
        hub_alarm_rules_changed(hub);
    } else if (cmd->id == CTL_ALARM_ACK && result) {
        registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
        long long rule = ctl_get_int(result, "rule", 0);
        struct event *item =
            control_ack_item(snap, ctl_get_string(args, "tenant"), result,
                             rule > 0 ? hub_alarm_rule_event(hub, (uint64_t)rule) : NULL);
        registry_release(snap);
        if (item)
            hub_publish(hub, item);
        event_unref(item);
    }
}

/* Runs on the main loop when the db thread is done. */
static void control_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct control_job *cj = container_of(msg, struct control_job, job.done);
    struct control_conn *conn = cj->conn;
    (void)loop_data;

    if (cj->job.status == 0 && !cj->srv->stopping)
        after_events_command(cj->srv, cj->cmd, cj->args, cj->result);
    if (!conn->closed) {
        if (cj->job.status == 0) {
            client_send(conn, ctl_reply_ok(cj->id, cj->result));
            cj->result = NULL;
        } else {
            send_error(conn, cj->id, cj->job.status, cj->err[0] ? cj->err : NULL);
        }
    }
    if (cj->job.status == 0 && (cj->cmd->flags & CTL_MUTATES))
        log_info("control: %s by %s", cj->cmd->name, cj->actor);

    cJSON_Delete(cj->args);
    cJSON_Delete(cj->result);
    client_unref(conn);
    free(cj);
}

static void submit_job(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                       cJSON *args)
{
    control_server_t *srv = conn->srv;
    struct control_job *cj = calloc(1, sizeof(*cj));
    if (!cj) {
        cJSON_Delete(args);
        send_error(conn, id, IOT_ENOMEM, NULL);
        return;
    }
    cj->srv = srv;
    cj->conn = conn;
    cj->cmd = cmd;
    cj->id = id;
    cj->args = args;
    snprintf(cj->actor, sizeof(cj->actor), "%s", conn->actor);
    cj->job.run = control_job_run;
    cj->job.reply_to = srv->deps.inbox;
    cj->job.done.handle = control_job_done;
    int rc = db_pool_submit(srv->deps.db, &cj->job);
    if (rc != 0) {
        cJSON_Delete(args);
        free(cj);
        send_error(conn, id, rc == IOT_EBUSY ? IOT_EBUSY : IOT_EDB, NULL);
        return;
    }
    conn->refs++; /* and through it the server, which a connection references */
}

static void replace_string(cJSON *obj, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddStringToObject(obj, key, value);
}

/* The registry says what a device is; presence says whether and where it is connected. */
static void add_presence(presence_t *presence, cJSON *device)
{
    const char *id = ctl_get_string(device, "id");
    struct presence_entry e;
    char when[CTL_TIME_LEN];
    bool seen = id && presence_lookup(presence, id, &e);

    cJSON_DeleteItemFromObjectCaseSensitive(device, "online");
    cJSON_AddBoolToObject(device, "online", seen && e.online);
    if (!seen)
        return;
    if (e.online) {
        ctl_format_time_ms(e.since_ms, when, sizeof(when));
        replace_string(device, "online_since", when);
        replace_string(device, "address", e.address);
        replace_string(device, "transport", e.transport);
    }
    /* Fresher than the database's last_seen, which is written in batches. */
    ctl_format_time_ms(e.last_seen_ms, when, sizeof(when));
    replace_string(device, "last_seen", when);
    replace_string(device, "last_address", e.address);
}

static void add_presence_to_result(control_server_t *srv, const struct ctl_command *cmd,
                                   cJSON *result)
{
    if (!srv->deps.presence)
        return;
    if (cmd->id == CTL_DEVICE_SHOW) {
        add_presence(srv->deps.presence, result);
    } else if (cmd->id == CTL_DEVICE_LIST) {
        cJSON *device;
        cJSON_ArrayForEach(device, cJSON_GetObjectItemCaseSensitive(result, cmd->list_key))
            add_presence(srv->deps.presence, device);
    }
}

static void stream_unref(struct control_stream *st)
{
    if (--st->refs > 0)
        return;
    struct control_conn *conn = st->conn;
    cJSON_Delete(st->args);
    free(st);
    client_unref(conn);
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
        client_send(conn, end);
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
        client_send(st->conn, msg);
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
        send_error(conn, id, IOT_ENOMEM, NULL);
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
    client_send(st->conn, ack);
}

static void stream_start(struct control_conn *conn, uint32_t id, cJSON *args)
{
    long long interval = ctl_get_int(args, "interval_ms", 1000);
    long long count = ctl_get_int(args, "count", 0);
    if (interval < STREAM_MIN_INTERVAL_MS || interval > STREAM_MAX_INTERVAL_MS || count < 0) {
        cJSON_Delete(args);
        send_error(conn, id, IOT_EINVAL, "interval_ms must be 100..60000 and count >= 0");
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
    client_send(st->conn, msg);
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

static void watch_start(struct control_conn *conn, uint32_t id, cJSON *args)
{
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
        if (!registry_access_allows_read(snap, f.principal, f.device, f.event)) {
            rc = IOT_EDENIED;
            snprintf(err, sizeof(err), "%.128s may not read %.64s of %.64s", f.principal, f.event,
                     f.device);
        }
        registry_release(snap);
    }
    if (rc != IOT_OK) {
        send_error(conn, id, rc, err[0] ? err : "events are not served by this daemon");
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
        send_error(conn, id, rc, err[0] ? err : NULL);
        stream_end(st, NULL);
        return;
    }
    stream_accepted(st);
    uv_timer_start(&st->timer, on_watch_tick, WATCH_TICK_MS, WATCH_TICK_MS);
}

/* "lease": held by the operator (not this connection, which a cron job closes at once) until
 * its ttl; renewing is asking again, ttl 0 gives it up. */
static void handle_lease(struct control_conn *conn, uint32_t id, const cJSON *args)
{
    control_server_t *srv = conn->srv;
    long long ttl = ctl_get_int(args, "ttl_s", 600);
    char err[256] = "";
    const char *device = ctl_get_string(args, "device"), *event = ctl_get_string(args, "event");
    if (!srv->deps.hub) {
        send_error(conn, id, IOT_EINVAL, "events are not served by this daemon");
        return;
    }
    if (ttl < 0 || ttl > 7 * 86400) {
        send_error(conn, id, IOT_EINVAL, "--ttl must be 0..604800 seconds");
        return;
    }
    /* One holder per operator and lease: FNV-1a of who and what, kept clear of session serials. */
    uint64_t holder = 1469598103934665603ull;
    const char *parts[] = {conn->actor, "\n", device, "\n", event};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        for (const char *p = parts[i]; *p; p++)
            holder = (holder ^ (uint8_t)*p) * 1099511628211ull;
    holder |= 1ull << 63;
    int rc = IOT_OK;
    if (ttl == 0)
        hub_release(srv->deps.hub, holder);
    else
        rc = hub_lease(srv->deps.hub, holder, ctl_get_string(args, "tenant"), device, event,
                       (uint32_t)ttl * 1000u, err, sizeof(err));
    if (rc != IOT_OK) {
        send_error(conn, id, rc, err[0] ? err : NULL);
        return;
    }
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "device", device);
    cJSON_AddStringToObject(result, "event", event);
    cJSON_AddNumberToObject(result, "ttl_s", (double)ttl);
    client_send(conn, ctl_reply_ok(id, result));
}

/* ---- send: the control connection as a relay sender ---- */

static void on_send_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    struct control_conn *conn = a->origin.cookie;
    (void)loop_data;
    conn->srv->outcomes[a->outcome < RELAY_OUTCOME_COUNT ? a->outcome : RELAY_INTERNAL]++;

    if (!conn->closed) {
        if (a->outcome == RELAY_OK) {
            cJSON *result = cJSON_CreateObject();
            cJSON_AddStringToObject(result, "outcome", "ok");
            cJSON_AddStringToObject(result, "device", a->device);
            cJSON *args = cJSON_AddArrayToObject(result, "args");
            for (unsigned i = 0; i < a->nargs; i++)
                cJSON_AddItemToArray(
                    args, cJSON_CreateString(relay_arg(a->args, a->args_len, i, a->nargs)));
            cJSON_AddNumberToObject(result, "latency_ms", (double)a->latency_ns / 1e6);
            client_send(conn, ctl_reply_ok(a->origin.id, result));
        } else {
            /* The device's own ERROR keeps its words (code=..., msg=...) as the message. */
            char text[512] = "";
            size_t used = 0;
            for (unsigned i = 0; i < a->nargs && used < sizeof(text) - 1; i++)
                used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? " " : "",
                                         relay_arg(a->args, a->args_len, i, a->nargs));
            if (a->outcome == RELAY_ERROR && !text[0])
                snprintf(text, sizeof(text), "the device answered ERROR");
            send_error(conn, a->origin.id, relay_outcome_code(a->outcome),
                       a->outcome == RELAY_ERROR ? text : (a->why[0] ? a->why : NULL));
        }
    }
    client_unref(conn);
    free(a);
}

static void handle_send(struct control_conn *conn, uint32_t id, const cJSON *args)
{
    control_server_t *srv = conn->srv;
    const char *as = ctl_get_string(args, "as");
    const char *tenant = ctl_get_string(args, "tenant");
    const char *device = ctl_get_string(args, "device");
    const char *message = ctl_get_string(args, "message");
    long long requested = ctl_get_int(args, "timeout_ms", 0);
    const char *argv[CTL_MAX_REST];
    unsigned argc = 0;
    char why[128];
    uint32_t timeout_ms = 0;

    if ((!as) == (!tenant)) {
        send_error(conn, id, IOT_EINVAL, "give either --as USER@TENANT or --tenant TENANT");
        return;
    }
    if (requested < 0 || requested > UINT32_MAX) {
        send_error(conn, id, IOT_EINVAL, "--timeout must be a positive number of milliseconds");
        return;
    }
    const cJSON *word;
    cJSON_ArrayForEach(word, cJSON_GetObjectItemCaseSensitive(args, "args")) argv[argc++] =
        word->valuestring;

    registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
    enum relay_outcome outcome =
        relay_check(snap, as, tenant, device, message, argc, argv, (uint32_t)requested,
                    srv->deps.max_timeout_ms, &timeout_ms, why, sizeof(why));
    /* The audit's tenant is the sender's: the operator's --tenant, or the user's own. */
    char sender_tenant[65] = "";
    struct registry_user_info user;
    if (tenant)
        snprintf(sender_tenant, sizeof(sender_tenant), "%s", tenant);
    else if (registry_user_lookup(snap, as, &user) == 0)
        snprintf(sender_tenant, sizeof(sender_tenant), "%s", user.tenant);
    registry_release(snap);
    const char *sender = as ? as : "iotd";
    if (outcome != RELAY_OK) {
        srv->outcomes[outcome]++;
        relay_audit_record(srv->deps.audit, sender_tenant, sender, device, message, outcome, 0, 0);
        send_error(conn, id, relay_outcome_code(outcome), why);
        return;
    }
    struct relay_origin origin = {
        .inbox = srv->deps.inbox, .on_answer = on_send_answer, .cookie = conn, .id = id};
    /* The operator is "iotd" to the device; a user is itself. */
    struct relay_request *req = relay_request_new(&origin, sender, sender_tenant, device, message,
                                                  argc, argv, timeout_ms, NULL, uv_hrtime());
    outcome = req ? sessions_relay(srv->deps.sessions, -1, req) : RELAY_INTERNAL;
    if (outcome != RELAY_OK) {
        free(req);
        srv->outcomes[outcome]++;
        relay_audit_record(srv->deps.audit, sender_tenant, sender, device, message, outcome, 0, 0);
        send_error(conn, id, relay_outcome_code(outcome), NULL);
        return;
    }
    conn->refs++; /* until the answer comes back */
}

/* Answer one request line. */
static void handle_line(struct control_conn *conn, const char *line, size_t len)
{
    control_server_t *srv = conn->srv;
    char err[256];
    cJSON *req = cJSON_ParseWithLength(line, len);
    uint32_t id = 0;

    if (!cJSON_IsObject(req)) {
        send_error(conn, 0, IOT_EPROTO, "request is not a JSON object");
        goto out;
    }
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (!cJSON_IsNumber(jid) || jid->valuedouble < 0 || jid->valuedouble > UINT32_MAX ||
        jid->valuedouble != (double)(uint32_t)jid->valuedouble) {
        send_error(conn, 0, IOT_EPROTO, "\"id\" must be an integer from 0 to 4294967295");
        goto out;
    }
    id = (uint32_t)jid->valuedouble;
    const char *name = ctl_get_string(req, "cmd");
    const struct ctl_command *cmd = ctl_command_by_name(name);
    if (!cmd) {
        snprintf(err, sizeof(err), "unknown command '%s'", name ? name : "");
        send_error(conn, id, IOT_EPROTO, err);
        goto out;
    }
    cJSON *args = cJSON_DetachItemFromObjectCaseSensitive(req, "args");
    if (!args)
        args = cJSON_CreateObject();
    if (!args || ctl_args_validate(cmd, args, err, sizeof(err)) != 0) {
        cJSON_Delete(args);
        send_error(conn, id, IOT_EINVAL, args ? err : NULL);
        goto out;
    }
    if (cmd->id == CTL_WATCH) {
        watch_start(conn, id, args);
    } else if (cmd->id == CTL_LEASE) {
        handle_lease(conn, id, args);
        cJSON_Delete(args);
    } else if ((cmd->flags & CTL_STREAM) && srv->deps.stats) {
        stream_start(conn, id, args);
    } else if (cmd->id == CTL_SEND && srv->deps.sessions) {
        handle_send(conn, id, args);
        cJSON_Delete(args);
    } else if (cmd->id == CTL_STATUS) {
        cJSON_Delete(args);
        client_send(conn, ctl_reply_ok(id, srv->deps.status(srv->deps.status_arg)));
    } else if (registry_answers(cmd)) {
        registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
        cJSON *result = NULL;
        err[0] = '\0';
        int rc = registry_query(snap, cmd, args, &result, err, sizeof(err));
        registry_release(snap);
        cJSON_Delete(args);
        if (rc == 0) {
            add_presence_to_result(srv, cmd, result);
            client_send(conn, ctl_reply_ok(id, result));
        } else
            send_error(conn, id, rc, err[0] ? err : NULL);
    } else {
        submit_job(conn, id, cmd, args);
    }
out:
    cJSON_Delete(req);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct control_conn *conn = handle->data;
    (void)suggested;
    if (conn->cap - conn->len < CONTROL_READ_CHUNK) {
        size_t cap = conn->len + CONTROL_READ_CHUNK;
        char *grown = realloc(conn->buf, cap);
        if (!grown) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS: we close */
            return;
        }
        conn->buf = grown;
        conn->cap = cap;
    }
    *buf = uv_buf_init(conn->buf + conn->len, (unsigned)(conn->cap - conn->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct control_conn *conn = stream->data;
    (void)buf;
    if (nread < 0) {
        client_close(conn);
        return;
    }
    if (conn->finishing)
        return; /* input after the last reply is discarded */
    conn->len += (size_t)nread;
    size_t start = 0;
    char *nl;
    while (!conn->closed && (nl = memchr(conn->buf + start, '\n', conn->len - start))) {
        size_t line_len = (size_t)(nl - (conn->buf + start));
        if (line_len > 0)
            handle_line(conn, conn->buf + start, line_len);
        start += line_len + 1;
    }
    if (conn->closed)
        return;
    memmove(conn->buf, conn->buf + start, conn->len - start);
    conn->len -= start;
    if (conn->len > CTL_MAX_LINE) {
        send_error(conn, 0, IOT_EPROTO, "request line too long");
        log_warn("control: %s sent a line over %u bytes; disconnecting", conn->actor,
                 (unsigned)CTL_MAX_LINE);
        conn->len = 0;
        client_finish(conn);
    }
}

/* Whether the peer may administer: root, our own uid, or a member of the admin group. */
static bool peer_allowed(control_server_t *srv, int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0)
        return false;
    if (cred->uid == 0 || cred->uid == geteuid())
        return true;
    if (!srv->has_admin_gid)
        return false;
    if (cred->gid == srv->admin_gid)
        return true;
    gid_t groups[256];
    socklen_t glen = sizeof(groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) != 0)
        return false;
    for (size_t i = 0; i < glen / sizeof(gid_t); i++)
        if (groups[i] == srv->admin_gid)
            return true;
    return false;
}

static void on_connection(uv_stream_t *listener, int status)
{
    control_server_t *srv = listener->data;
    if (status < 0 || srv->stopping)
        return;
    struct control_conn *conn = calloc(1, sizeof(*conn));
    if (!conn)
        return; /* the client stays in the backlog and is retried on the next connection */
    conn->srv = srv;
    conn->refs = 1;
    srv->refs++;
    uv_pipe_init(srv->deps.loop, &conn->pipe, 0);
    conn->pipe.data = conn;
    conn->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = conn;
    srv->conns = conn;
    srv->clients++;
    if (uv_accept(listener, (uv_stream_t *)&conn->pipe) != 0) {
        client_close(conn);
        return;
    }
    uv_os_fd_t fd;
    struct ucred cred = {0};
    uv_fileno((uv_handle_t *)&conn->pipe, &fd);
    bool allowed = peer_allowed(srv, fd, &cred);
    snprintf(conn->actor, sizeof(conn->actor), "uid=%u pid=%d", (unsigned)cred.uid, (int)cred.pid);
    if (!allowed) {
        log_warn("control: refused %s (not root, not our uid, not in the admin group)",
                 conn->actor);
        send_error(conn, 0, IOT_EDENIED, "not allowed to administer this iotd");
        uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
        client_finish(conn);
        return;
    }
    uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read);
}

static int apply_permissions(control_server_t *srv, const struct control_options *opts, char *err,
                             size_t errlen)
{
    srv->has_admin_gid = false;
    gid_t gid = (gid_t)-1;
    if (opts->group && opts->group[0]) {
        struct group *gr = getgrnam(opts->group);
        if (!gr) {
            snprintf(err, errlen, "control_group '%s' does not exist", opts->group);
            return IOT_EINVAL;
        }
        gid = gr->gr_gid;
        srv->admin_gid = gid;
        srv->has_admin_gid = true;
    }
    if (chmod(srv->path, opts->mode) != 0 || (gid != (gid_t)-1 && chown(srv->path, -1, gid) != 0)) {
        snprintf(err, errlen, "%s: cannot set mode/group: %s", srv->path, strerror(errno));
        return IOT_EIO;
    }
    return IOT_OK;
}

/* True if a process accepts connections on path (another iotd). */
static bool socket_is_live(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool live = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return live;
}

int control_server_start(control_server_t **out, const struct control_options *opts,
                         const struct control_deps *deps, char *err, size_t errlen)
{
    int rc = IOT_ENOMEM;
    control_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv || !(srv->path = strdup(opts->path))) {
        free(srv);
        return IOT_ENOMEM;
    }
    srv->deps = *deps;
    srv->refs = 1;
    uv_pipe_init(deps->loop, &srv->listener, 0);
    srv->listener.data = srv;

    if (socket_is_live(opts->path)) {
        snprintf(err, errlen, "%s: another iotd is already listening there", opts->path);
        rc = IOT_EEXIST;
        goto fail;
    }
    unlink(opts->path); /* stale socket of a previous run */
    /* Create the socket file with no permissions for others from the start, then chmod. */
    mode_t old = umask(0177);
    int uvrc = uv_pipe_bind(&srv->listener, opts->path);
    umask(old);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (uvrc != 0) {
        snprintf(err, errlen, "%s: %s", opts->path, uv_strerror(uvrc));
        rc = IOT_EIO;
        goto fail;
    }
    if ((rc = apply_permissions(srv, opts, err, errlen)) != 0)
        goto fail;
    *out = srv;
    return IOT_OK;

fail:
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    return rc;
}

int control_server_reconfigure(control_server_t *srv, const struct control_options *opts, char *err,
                               size_t errlen)
{
    return apply_permissions(srv, opts, err, errlen);
}

void control_server_outcomes(const control_server_t *srv, uint64_t *counts, unsigned n)
{
    for (unsigned i = 0; i < n && i < RELAY_OUTCOME_COUNT; i++)
        counts[i] = srv->outcomes[i];
}

unsigned control_server_clients(const control_server_t *srv)
{
    return srv->clients;
}

void control_server_stop(control_server_t *srv)
{
    srv->stopping = true;
    for (struct control_conn *c = srv->conns; c; c = c->next)
        while (c->streams)
            stream_end(c->streams, "shutdown");
    /* A small reply such as a stream's "end" is written at once by uv_write when nothing is
     * queued before it, so closing now still delivers it in practice; waiting for slow clients
     * would hold up the daemon's stop. */
    while (srv->conns)
        client_close(srv->conns);
    unlink(srv->path);
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
}
