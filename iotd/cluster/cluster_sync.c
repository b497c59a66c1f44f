/*
 * cluster_sync.c - what the nodes share besides presence: registry changes and events.
 *
 * Registry: the nodes share the database, and each holds its own snapshot of the registry. A
 * change committed through one node is published in that node's snapshot (admin_apply), then
 * announced on iotd.registry; every other node reloads its snapshot from the database
 * (admin_reload, on a db thread), ends the sessions the change cut off as the first node did,
 * and acknowledges on iotd.n.<first>.ack. The first node answers iotctl once every node that
 * was live at the change has acknowledged, or after node_timeout_ms (a node that does not
 * answer in that time would be declared dead anyway): so a revocation through one node holds
 * on every node before iotctl returns.
 *
 * Events: stored once, by the device's node, as on a single node; once durable they are sent
 * on iotd.events and every other node gives them to its subscribers (hub_publish), so a watch
 * on any node sees every node's devices. Alarm rules run only on the device's node (its hub);
 * the transitions its hub streams (raised, cleared, acknowledged: also an operator's ack on
 * this node) are sent on the same way, and so are its devices' PRESENCE items (online, offline),
 * taken from the hub by a subscription of our own, which skips the items we are handing to the
 * hub from other nodes.
 */
#include "cluster/cluster_internal.h"

#include "base/log.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "registry/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the changing node ---- */

static void wait_finish(cluster_t *c, struct cluster_wait *w)
{
    struct cluster_wait **pp = &c->waits;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    w->done(w->arg);
    free(w->waiting);
    free(w);
}

static bool wait_complete(const cluster_t *c, const struct cluster_wait *w)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (w->waiting[i])
            return false;
    return true;
}

/* done(arg) on the main loop's next turn, for a change with nothing to wait for. */
struct later {
    inbox_msg_t msg;
    void (*done)(void *arg);
    void *arg;
};

static void on_later(inbox_msg_t *msg, void *loop_data)
{
    struct later *l = container_of(msg, struct later, msg);
    (void)loop_data;
    l->done(l->arg);
    free(l);
}

void cluster_registry_changed(cluster_t *c, bool registry, const char *ends, bool ends_tenant,
                              const char *reason, void (*done)(void *arg), void *arg)
{
    struct cluster_wait *w = calloc(1, sizeof(*w));
    bool any = false;
    if (w && c->npeers && !(w->waiting = calloc(c->npeers, sizeof(bool)))) {
        free(w);
        w = NULL;
    }
    for (size_t i = 0; w && i < c->npeers; i++)
        any |= w->waiting[i] = c->peers[i].live;
    if (w && any && !c->stopping) {
        w->seq = ++c->next_seq;
        w->deadline_ms = uv_now(c->deps.loop) + c->opts.node_timeout_ms;
        w->done = done;
        w->arg = arg;
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "node", c->node);
        cJSON_AddNumberToObject(body, "seq", (double)w->seq);
        cJSON_AddBoolToObject(body, "registry", registry);
        if (ends) {
            cJSON_AddStringToObject(body, "ends", ends);
            cJSON_AddBoolToObject(body, "tenant", ends_tenant);
            cJSON_AddStringToObject(body, "reason", reason ? reason : "removed");
        }
        if (cluster_publish(c, "iotd.registry", NULL, body)) {
            c->traffic.changes_out++;
            w->next = c->waits;
            c->waits = w;
            return;
        }
        log_warn("cluster: cannot tell the other nodes of a registry change (the link is down): "
                 "they see it at their next reload");
    }
    if (w) {
        free(w->waiting);
        free(w);
    }
    /* Nobody to wait for: answered on the next turn, as promised (never before this returns). */
    struct later *l = malloc(sizeof(*l));
    if (l) {
        *l = (struct later){.msg.handle = on_later, .done = done, .arg = arg};
        if (inbox_push(c->deps.inbox, &l->msg) == 0)
            return;
        free(l);
    }
    done(arg); /* the inbox is full or closing: better now than never */
}

void cluster_on_registry_ack(cluster_t *c, const cJSON *body)
{
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(body, "seq");
    if (!node || !cJSON_IsNumber(seq))
        return;
    for (struct cluster_wait *w = c->waits; w; w = w->next) {
        if (w->seq != (uint64_t)seq->valuedouble)
            continue;
        for (size_t i = 0; i < c->npeers; i++)
            if (strcmp(c->peers[i].name, node) == 0)
                w->waiting[i] = false;
        if (wait_complete(c, w))
            wait_finish(c, w);
        return;
    }
}

void cluster_sync_peer_gone(cluster_t *c, size_t peer)
{
    struct cluster_wait *w = c->waits;
    while (w) {
        struct cluster_wait *next = w->next;
        w->waiting[peer] = false;
        if (wait_complete(c, w))
            wait_finish(c, w);
        w = next;
    }
}

void cluster_sync_expire(cluster_t *c, bool all)
{
    uint64_t now = c->started ? uv_now(c->deps.loop) : 0;
    struct cluster_wait *w = c->waits;
    while (w) {
        struct cluster_wait *next = w->next;
        if (all || now >= w->deadline_ms) {
            if (!all)
                log_warn("cluster: a registry change was not acknowledged by every node within "
                         "%u ms; answering anyway",
                         c->opts.node_timeout_ms);
            wait_finish(c, w);
        }
        w = next;
    }
}

/* ---- the other nodes ---- */

/* A reload for another node's change, then its cut-offs, then the acknowledgement. */
struct reload {
    db_job_t job;
    cluster_t *c;
    char node[33];
    uint64_t seq;
    char *ends;
    bool tenant;
    const char *reason; /* one of the literals below: sessions_end keeps the pointer */
    const char *why;    /* a catch-up's reason (a literal); node is then "" */
    uint64_t asked_ns;  /* when the notification arrived */
};

static int run_reload(db_job_t *job, MYSQL *conn)
{
    struct reload *r = container_of(job, struct reload, job);
    char err[256];
    int rc = admin_reload(r->c->deps.registry, conn, err, sizeof(err));
    if (rc != IOT_OK && rc != IOT_EDB)
        log_error("cluster: reload after node %s's change: %s", r->node, err);
    return rc;
}

static void ack(cluster_t *c, const char *node, uint64_t seq)
{
    if (!node[0])
        return; /* a catch-up: nobody waits */
    char subject[CLUSTER_SUBJECT_LEN];
    snprintf(subject, sizeof(subject), "iotd.n.%s.ack", node);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "node", c->node);
    cJSON_AddNumberToObject(body, "seq", (double)seq);
    cluster_publish(c, subject, NULL, body);
}

static void reload_free(struct reload *r)
{
    free(r->ends);
    free(r);
}

static void on_reload_ended(size_t ended, void *arg)
{
    struct reload *r = arg;
    if (ended)
        log_info("cluster: node %s's change of %s: %zu session%s ended here", r->node, r->ends,
                 ended, ended == 1 ? "" : "s");
    if (!r->c->stopping)
        ack(r->c, r->node, r->seq);
    reload_free(r);
}

/* The reasons a change gives its cut-offs (control_commands.c), as literals that outlive the
 * closes; anything else reads "removed". */
static const char *reason_literal(const char *reason)
{
    static const char *const known[] = {"removed", "disabled",         "rekeyed",
                                        "kicked",  "password_changed", "role_changed"};
    for (size_t i = 0; reason && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(reason, known[i]) == 0)
            return known[i];
    return "removed";
}

static void on_reloaded(inbox_msg_t *msg, void *loop_data)
{
    struct reload *r = container_of(msg, struct reload, job.done);
    cluster_t *c = r->c;
    (void)loop_data;
    if (c->stopping) {
        reload_free(r);
        return;
    }
    if (r->node[0])
        log_debug("cluster: node %s's change %llu reloaded in %llu ms", r->node,
                  (unsigned long long)r->seq,
                  (unsigned long long)((uv_hrtime() - r->asked_ns) / 1000000));
    else
        log_info("cluster: registry and alarm rules reloaded in %llu ms (%s)",
                 (unsigned long long)((uv_hrtime() - r->asked_ns) / 1000000), r->why);
    if (c->deps.hub)
        hub_alarm_rules_changed(c->deps.hub); /* the change may have been an alarm rule's */
    /* A device removed, disabled or rekeyed loses its leases on every node, as on the one the
     * change was made through (control_dispatch.c); a kicked one keeps them. */
    if (r->ends && !r->tenant && !strchr(r->ends, '@') && strcmp(r->reason, "kicked") != 0 &&
        c->deps.hub)
        hub_release_device(c->deps.hub, r->ends);
    if (r->ends && c->deps.sessions &&
        sessions_end(c->deps.sessions, c->deps.inbox,
                     r->tenant ? SESSIONS_OF_TENANT : SESSIONS_OF_PRINCIPAL, r->ends, r->reason,
                     on_reload_ended, r) == IOT_OK)
        return;
    ack(c, r->node, r->seq);
    reload_free(r);
}

static void reload_submit(cluster_t *c, struct reload *r, bool registry);

void cluster_on_registry(cluster_t *c, const cJSON *body)
{
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(body, "seq");
    const char *ends = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "ends"));
    if (!node || !cJSON_IsNumber(seq) || strlen(node) > 32)
        return;
    struct reload *r = calloc(1, sizeof(*r));
    if (!r || (ends && !(r->ends = strdup(ends)))) {
        free(r);
        log_error("cluster: out of memory for node %s's registry change", node);
        return;
    }
    r->c = c;
    snprintf(r->node, sizeof(r->node), "%s", node);
    r->seq = (uint64_t)seq->valuedouble;
    r->tenant = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "tenant"));
    r->reason =
        reason_literal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "reason")));
    c->traffic.changes_in++;
    reload_submit(c, r, !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "registry")));
}

/* Reload the registry (registry false: only the alarm rules) for r, then on_reloaded. */
static void reload_submit(cluster_t *c, struct reload *r, bool registry)
{
    r->asked_ns = uv_hrtime();
    r->job.run = run_reload;
    r->job.reply_to = c->deps.inbox;
    r->job.done.handle = on_reloaded;
    if (!registry) {
        on_reloaded(&r->job.done, NULL); /* alarm rules only: the hub reloads them */
        return;
    }
    if (db_pool_submit(c->deps.db, &r->job) != IOT_OK) {
        log_error("cluster: the database queue refused a registry reload");
        reload_free(r);
    }
}

void cluster_catch_up(cluster_t *c, const char *why)
{
    struct reload *r = calloc(1, sizeof(*r));
    if (!r || c->stopping || !c->deps.db) {
        free(r);
        return;
    }
    r->c = c;
    r->why = why;
    reload_submit(c, r, true);
}

/* ---- events ---- */

/* An event or alarm item as JSON, into list. */
static void add_item(cJSON *list, const struct event *ev)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kind", event_kind_name(ev->kind));
    cJSON_AddStringToObject(e, "tenant", ev->tenant);
    cJSON_AddStringToObject(e, "device", ev->device);
    cJSON_AddStringToObject(e, "type", ev->type);
    cJSON_AddStringToObject(e, "name", ev->name);
    cJSON_AddNumberToObject(e, "seq", ev->seq);
    cJSON_AddNumberToObject(e, "ts", (double)ev->ts_ms);
    cJSON_AddNumberToObject(e, "id", (double)ev->id);
    cJSON *fields = cJSON_AddArrayToObject(e, "fields");
    for (unsigned k = 0; k < ev->nfields; k++)
        cJSON_AddItemToArray(fields, cJSON_CreateString(event_field_at(ev, k)));
    cJSON_AddItemToArray(list, e);
}

void cluster_events_durable(cluster_t *c, struct event *const *events, size_t n)
{
    cJSON *body = NULL, *list = NULL;
    for (size_t i = 0; c && !c->stopping && i < n; i++) {
        const struct event *ev = events[i];
        if (ev->duplicate || ev->kind != EVENT_KIND_EVENT)
            continue;
        if (!body) {
            body = cJSON_CreateObject();
            cJSON_AddStringToObject(body, "node", c->node);
            list = cJSON_AddArrayToObject(body, "events");
        }
        add_item(list, ev);
        c->traffic.events_out++;
    }
    if (body)
        cluster_publish(c, "iotd.events", NULL, body);
}

/* Our hub subscription: a transition of this node's alarms, or one of its devices going online
 * or offline (a PRESENCE item, for the subscribers that follow presence, such as the web
 * console), unless it came from elsewhere. */
static void on_local_item(void *arg, struct event *item)
{
    cluster_t *c = arg;
    if (c->injecting || c->stopping || item->kind == EVENT_KIND_EVENT)
        return;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "node", c->node);
    add_item(cJSON_AddArrayToObject(body, "events"), item);
    c->traffic.events_out++;
    cluster_publish(c, "iotd.events", NULL, body);
}

int cluster_alarms_start(cluster_t *c)
{
    /* Every tenant, as an operator. With presence, the hub makes PRESENCE items for every
     * connect and disconnect (it makes them only when someone follows): one small message to
     * the other nodes each, as for the claims and releases. */
    struct hub_filter f = {.alarms = HUB_ALARMS_ONLY, .presence = true};
    return c->deps.hub ? hub_subscribe(c->deps.hub, &f, on_local_item, c, &c->alarm_sub) : 0;
}

void cluster_alarms_stop(cluster_t *c)
{
    if (c->deps.hub && c->alarm_sub)
        hub_unsubscribe(c->deps.hub, c->alarm_sub);
    c->alarm_sub = 0;
}

void cluster_on_events(cluster_t *c, const cJSON *body)
{
    const cJSON *e;
    if (!c->deps.hub)
        return;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, "events"))
    {
        const char *fields[64];
        unsigned nfields =
            cluster_strings(cJSON_GetObjectItemCaseSensitive(e, "fields"), fields, 64);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "seq"),
                    *ts = cJSON_GetObjectItemCaseSensitive(e, "ts"),
                    *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "tenant"));
        const char *device = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "device"));
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
        if (!tenant || !device || !type || !name || !cJSON_IsNumber(seq) || !cJSON_IsNumber(ts))
            continue;
        const char *kind_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "kind"));
        enum event_kind kind = EVENT_KIND_EVENT;
        for (enum event_kind k = EVENT_KIND_EVENT; kind_name && k <= EVENT_KIND_PRESENCE; k++)
            if (strcmp(kind_name, event_kind_name(k)) == 0)
                kind = k;
        struct event *ev = event_new(kind, tenant, device, type, name, (uint32_t)seq->valuedouble,
                                     (int64_t)ts->valuedouble, nfields, fields);
        if (!ev)
            continue;
        ev->id = cJSON_IsNumber(id) ? (uint64_t)id->valuedouble : 0;
        c->injecting = true; /* our own subscription must not send it back */
        hub_publish(c->deps.hub, ev);
        c->injecting = false;
        c->traffic.events_in++;
        event_unref(ev);
    }
}

void cluster_presence_offline(cluster_t *c, const cJSON *ids)
{
    const cJSON *id;
    if (!c->deps.hub || !c->deps.registry)
        return;
    registry_snapshot_t *snap = registry_acquire(c->deps.registry);
    char at[40];
    snprintf(at, sizeof(at), "at=%lld", (long long)ctl_wall_ms());
    cJSON_ArrayForEach(id, ids)
    {
        struct registry_device_info d;
        char dtype[80];
        if (!cJSON_IsString(id) || registry_device_lookup(snap, id->valuestring, &d) != 0)
            continue;
        snprintf(dtype, sizeof(dtype), "dtype=%s", d.type);
        const char *fields[] = {"online=0", dtype, at};
        struct event *item = event_new(EVENT_KIND_PRESENCE, d.tenant, d.id, d.type, "presence", 0,
                                       ctl_wall_ms(), 3, fields);
        if (!item)
            continue;
        c->injecting = true; /* not ours to send on: every node makes its own */
        hub_publish(c->deps.hub, item);
        c->injecting = false;
        event_unref(item);
    }
    registry_release(snap);
}
