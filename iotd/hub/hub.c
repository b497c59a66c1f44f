/*
 * hub.c - durable batches, fan-out, subscriptions, and the requests of sessions (see hub.h).
 *
 * Subscribers are indexed by the tenant and device of their filter (hub_index.h), so an item
 * costs what its candidate subscribers cost, not what all of them do (10,000 streams of other
 * devices included); the costly part of fan-out, writing to sockets, happens on the io
 * threads, one inbox message per thread per item. Everything here runs on the main loop.
 */
#include "hub/hub_internal.h"

#include "base/log.h"
#include "ctl_time.h"
#include "events/store.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUB_TICK_MS 250
/* Subscriptions one app connection may hold at once. */
#define HUB_MAX_SUBS_PER_SESSION 64

uint64_t hub_now(hub_t *hub)
{
    return uv_now(hub->deps.loop);
}

/* The walk over candidates is done: free the subscribers removed during it. */
static void free_dead(hub_t *hub)
{
    while (hub->dead) {
        struct hub_sub *sub = hub->dead;
        hub->dead = sub->next_dead;
        free(sub);
    }
}

static void subs_free_all(hub_t *hub)
{
    free_dead(hub);
    for (size_t i = 0; i < hub->subs.n; i++)
        free(hub->subs.all[i]);
    hub_index_free(&hub->subs);
}

void hub_unref(hub_t *hub)
{
    if (--hub->refs > 0)
        return;
    for (size_t i = 0; i < HUB_RECENT; i++)
        event_unref(hub->recent[i]);
    subs_free_all(hub);
    free(hub->leases);
    free(hub);
}

static void on_tick(uv_timer_t *timer)
{
    hub_t *hub = timer->data;
    lease_tick(hub);
    hub_alarms_tick(hub);
}

int hub_start(hub_t **out, const struct hub_deps *deps, const struct hub_options *opts)
{
    hub_t *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return IOT_ENOMEM;
    hub->deps = *deps;
    hub->opts = *opts;
    if (!hub->opts.lease_max_s)
        hub->opts.lease_max_s = 3600;
    hub->next_id = 1;
    hub->refs = 1;
    uv_timer_init(deps->loop, &hub->tick);
    hub->tick.data = hub;
    uv_timer_start(&hub->tick, on_tick, HUB_TICK_MS, HUB_TICK_MS);
    /* On failure the caller still stops and frees the hub like any other. */
    *out = hub;
    return hub_alarms_start(hub);
}

void hub_set_store(hub_t *hub, struct event_store *store)
{
    hub->deps.store = store;
}

void hub_set_sessions(hub_t *hub, sessions_t *sessions)
{
    hub->deps.sessions = sessions;
}

uint64_t hub_holder_id(hub_t *hub)
{
    /* Sessions use their serials as holder ids; these stay clear of them. */
    return (1ull << 62) | hub->next_id++;
}

/* ---- fan-out ---- */

/* The message type whose access rule lets a user read the item. */
static const char *access_name(const struct event *item)
{
    if (item->kind == EVENT_KIND_ALARM) {
        const char *ev = event_field(item, "event");
        if (ev && ev[0])
            return ev;
    }
    return item->name;
}

static bool sub_matches(const struct hub_sub *sub, const registry_snapshot_t *snap,
                        const struct event *item)
{
    const struct hub_filter *f = &sub->f;
    bool alarm = item->kind == EVENT_KIND_ALARM;
    if (f->tenant[0] && strcmp(f->tenant, item->tenant) != 0)
        return false;
    if (item->kind == EVENT_KIND_PRESENCE)
        /* The devices of the scope the user may see at all (event= does not apply). */
        return f->presence && (!f->device[0] || strcmp(f->device, item->device) == 0) &&
               (!f->type[0] || strcmp(f->type, item->type) == 0) &&
               (!f->group[0] || registry_device_in_group(snap, item->device, f->group)) &&
               (!f->principal[0] || registry_device_visible(snap, f->principal, item->device));
    if ((alarm && f->alarms == HUB_EVENTS_ONLY) || (!alarm && f->alarms == HUB_ALARMS_ONLY))
        return false;
    if (f->device[0] && strcmp(f->device, item->device) != 0)
        return false;
    if (f->type[0] && strcmp(f->type, item->type) != 0)
        return false;
    if (f->event[0] && strcmp(f->event, access_name(item)) != 0)
        return false;
    if (f->group[0] && !registry_device_in_group(snap, item->device, f->group))
        return false;
    return !f->principal[0] ||
           registry_access_allows_read(snap, f->principal, item->device, access_name(item));
}

struct remote_match {
    unsigned io;
    struct session_target target;
};

/* By io thread, then session: one run per thread, and a session's matches side by side. */
static int remote_match_cmp(const void *a, const void *b)
{
    const struct remote_match *x = a, *y = b;
    if (x->io != y->io)
        return x->io < y->io ? -1 : 1;
    if (x->target.serial != y->target.serial)
        return x->target.serial < y->target.serial ? -1 : 1;
    return 0;
}

void hub_fanout(hub_t *hub, struct event *item)
{
    sessions_t *sessions = hub->deps.sessions;
    struct remote_match *remote = NULL;
    struct session_target *run = NULL;
    struct hub_sub *local[HUB_INDEX_SCAN], **cand = local;
    size_t nremote = 0;
    registry_snapshot_t *snap = registry_acquire(hub->deps.registry);

    if (item->kind == EVENT_KIND_ALARM)
        hub->stats.alarms++;
    if (item->kind != EVENT_KIND_PRESENCE) { /* monitors see events and alarms */
        struct event **slot = &hub->recent[hub->recent_seq++ % HUB_RECENT];
        event_unref(*slot);
        *slot = event_ref(item);
    }
    /* A sink may end its own subscription (a watch that reached its count) or another's:
     * the candidates are a copy of the index's pointers, and a subscriber removed during the
     * walk is only marked (id 0) and freed after it, so no other subscriber is skipped and
     * none is called after its removal. */
    hub->fanning++;
    size_t ncand = hub_index_candidates(&hub->subs, item->tenant, item->device, local,
                                        sizeof(local) / sizeof(local[0]), &cand);
    if (ncand == (size_t)-1) {
        cand = local;
        log_warn("hub: out of memory delivering an item to subscribers");
        goto out;
    }
    for (size_t i = 0; i < ncand; i++) {
        const struct hub_sub *sub = cand[i];
        if (!sub->id || !sub_matches(sub, snap, item))
            continue;
        if (!sub->remote) {
            sub->sink(sub->arg, item);
            hub->stats.delivered++;
            continue;
        }
        if (!remote && !(remote = malloc(ncand * sizeof(*remote)))) {
            log_warn("hub: out of memory delivering an item to subscribers");
            goto out;
        }
        remote[nremote++] = (struct remote_match){sub->io, {sub->slot, sub->serial}};
    }
    /* Remote subscribers get one message per io thread, and a connection gets the item once
     * however many of its subscriptions match (iot-protocol(7)): sessions are told apart by
     * serial, unique among all threads. */
    if (nremote && sessions && (run = malloc(nremote * sizeof(*run)))) {
        qsort(remote, nremote, sizeof(*remote), remote_match_cmp);
        for (size_t i = 0; i < nremote;) {
            unsigned io = remote[i].io;
            size_t n = 0;
            for (; i < nremote && remote[i].io == io; i++)
                if (n == 0 || run[n - 1].serial != remote[i].target.serial)
                    run[n++] = remote[i].target;
            /* Counted as delivered (or dropped) on the io thread, unless it never gets there. */
            if (hub->deps.port.deliver(sessions, io, item, run, n) != 0)
                hub->stats.dropped += n;
        }
    }
out:
    if (--hub->fanning == 0)
        free_dead(hub);
    registry_release(snap);
    if (cand != local)
        free(cand);
    free(remote);
    free(run);
}

void hub_recent(hub_t *hub, uint64_t *seq, void (*fn)(void *arg, const struct event *item),
                void *arg)
{
    uint64_t first = *seq;
    if (hub->recent_seq > HUB_RECENT && first < hub->recent_seq - HUB_RECENT)
        first = hub->recent_seq - HUB_RECENT; /* older ones were overwritten */
    for (uint64_t k = first; k < hub->recent_seq; k++)
        fn(arg, hub->recent[k % HUB_RECENT]);
    *seq = hub->recent_seq;
}

void hub_publish(hub_t *hub, struct event *item)
{
    hub_fanout(hub, item);
}

/* ---- the store's completion ---- */

void hub_durable(struct event *const *events, size_t n, void *arg)
{
    hub_t *hub = arg;
    if (hub->stopping)
        return; /* the sessions are gone: devices retransmit, and get a duplicate's ACK */
    if (hub->deps.sessions)
        hub->deps.port.ack(hub->deps.sessions, events, n);
    for (size_t i = 0; i < n; i++) {
        struct event *ev = events[i];
        if (ev->duplicate) {
            /* Stored (and streamed) when it first arrived; this was a retransmission. */
            hub->stats.duplicates++;
            continue;
        }
        hub->stats.events++;
        if (ev->kind == EVENT_KIND_EVENT)
            hub_fanout(hub, ev);
        /* Device alarms reach streams as their lifecycle's transitions. */
        hub_alarms_event(hub, ev);
    }
}

/* ---- subscriptions ---- */

/* A new subscription (id given, filter empty), not indexed yet: sub_index indexes it once its
 * filter is set. */
static struct hub_sub *sub_new(hub_t *hub)
{
    struct hub_sub *sub = calloc(1, sizeof(*sub));
    if (sub)
        sub->id = hub->next_id++;
    return sub;
}

/* Index sub (its filter set) or free it: IOT_OK or IOT_ENOMEM. */
static int sub_index(hub_t *hub, struct hub_sub *sub)
{
    int rc = hub_index_add(&hub->subs, sub);
    if (rc != IOT_OK)
        free(sub);
    return rc;
}

static void sub_remove(hub_t *hub, struct hub_sub *sub)
{
    hub_index_remove(&hub->subs, sub);
    if (hub->fanning) {
        sub->id = 0; /* the walk may still hold it: freed when the walk is done */
        sub->next_dead = hub->dead;
        hub->dead = sub;
    } else {
        free(sub);
    }
}

int hub_subscribe(hub_t *hub, const struct hub_filter *f, hub_sink_fn sink, void *arg, uint64_t *id)
{
    struct hub_sub *sub = sub_new(hub);
    if (!sub)
        return IOT_ENOMEM;
    sub->f = *f;
    sub->sink = sink;
    sub->arg = arg;
    uint64_t sub_id = sub->id;
    int rc = sub_index(hub, sub); /* frees sub when it fails */
    if (rc == IOT_OK)
        *id = sub_id;
    return rc;
}

void hub_unsubscribe(hub_t *hub, uint64_t id)
{
    for (size_t i = 0; i < hub->subs.n; i++) {
        if (hub->subs.all[i]->id == id) {
            sub_remove(hub, hub->subs.all[i]);
            return;
        }
    }
}

/* ---- requests of user sessions (arrive through the inbox) ---- */

struct request_msg {
    inbox_msg_t msg;
    hub_t *hub;
    struct session_sub_request r;
};

static void reply(hub_t *hub, const struct session_sub_request *r, const char *code,
                  const char *key, const char *value)
{
    if (hub->deps.sessions)
        hub->deps.port.reply(hub->deps.sessions, r->io, r->slot, r->serial, r->id, code, key,
                             value);
}

/* Does the scope name something of the user's tenant? A device of another tenant gets the same
 * answer as one that does not exist ("denied"), as in the relay. */
static const char *check_scope(const registry_snapshot_t *snap, const struct session_sub_request *r,
                               const char **why)
{
    struct registry_device_info d;
    if (r->device[0] &&
        (registry_device_lookup(snap, r->device, &d) != 0 || strcmp(d.tenant, r->tenant) != 0)) {
        *why = "no such device in your tenant";
        return "denied";
    }
    if ((r->device[0] != 0) + (r->group[0] != 0) + (r->type[0] != 0) > 1) {
        *why = "give one of device=, group=, type=";
        return "bad_args";
    }
    return NULL;
}

/* Is r->event an event of what r's scope covers (the device's type, the type, or any type of
 * the tenant)? A name that is not could never match: the client mistyped it. */
static bool event_in_scope(const registry_snapshot_t *snap, const struct session_sub_request *r)
{
    struct registry_device_info d;
    if (r->device[0])
        return registry_device_lookup(snap, r->device, &d) == 0 &&
               registry_event_defined(snap, r->tenant, d.type, r->event);
    return registry_event_defined(snap, r->tenant, r->type, r->event);
}

static void on_subscribe(hub_t *hub, const registry_snapshot_t *snap,
                         const struct session_sub_request *r)
{
    const char *why = NULL;
    const char *code = check_scope(snap, r, &why);
    size_t held = 0;
    if (!code && r->event[0] && !event_in_scope(snap, r)) {
        code = "bad_args";
        why = "event= names no event of the catalogue";
    }
    if (code) {
        reply(hub, r, code, NULL, why);
        return;
    }
    /* One client cannot grow the hub without bound. */
    for (size_t i = 0; i < hub->subs.n; i++)
        held += hub->subs.all[i]->remote && hub->subs.all[i]->serial == r->serial;
    if (held >= HUB_MAX_SUBS_PER_SESSION) {
        reply(hub, r, "busy", NULL, "too many subscriptions on this connection");
        return;
    }
    struct hub_sub *sub = sub_new(hub);
    if (!sub) {
        reply(hub, r, "busy", NULL, "out of memory");
        return;
    }
    snprintf(sub->f.tenant, sizeof(sub->f.tenant), "%s", r->tenant);
    snprintf(sub->f.principal, sizeof(sub->f.principal), "%s", r->principal);
    memcpy(sub->f.device, r->device, sizeof(sub->f.device));
    memcpy(sub->f.group, r->group, sizeof(sub->f.group));
    memcpy(sub->f.type, r->type, sizeof(sub->f.type));
    memcpy(sub->f.event, r->event, sizeof(sub->f.event));
    sub->f.presence = r->presence;
    sub->f.alarms = r->alarms == 2 ? HUB_ALARMS_ONLY
                    : r->alarms    ? HUB_EVENTS_AND_ALARMS
                                   : HUB_EVENTS_ONLY;
    sub->remote = true;
    sub->io = r->io;
    sub->slot = r->slot;
    sub->serial = r->serial;
    if (sub_index(hub, sub) != IOT_OK) {
        reply(hub, r, "busy", NULL, "out of memory");
        return;
    }
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)sub->id);
    reply(hub, r, NULL, "sub", id);
}

static void on_unsubscribe(hub_t *hub, const struct session_sub_request *r)
{
    for (size_t i = 0; i < hub->subs.n; i++) {
        struct hub_sub *sub = hub->subs.all[i];
        if (sub->id == r->sub && sub->remote && sub->serial == r->serial) {
            sub_remove(hub, sub);
            reply(hub, r, NULL, NULL, NULL);
            return;
        }
    }
    reply(hub, r, "bad_args", NULL, "no such subscription");
}

static void on_lease_request(hub_t *hub, const registry_snapshot_t *snap,
                             const struct session_sub_request *r)
{
    const char *why = NULL;
    const char *code = check_scope(snap, r, &why);
    char err[160] = "";
    if (!code && (!r->device[0] || !r->event[0])) {
        code = "bad_args";
        why = "a lease needs device= and event=";
    }
    /* A command (read_temp) is not leased: said as such, before the access map is asked
     * about reading it, which only events can be. */
    if (!code && !event_in_scope(snap, r)) {
        code = "unknown_type";
        why = "not an event of the device's type";
    }
    if (!code) {
        if (!registry_access_allows_read(snap, r->principal, r->device, r->event)) {
            code = "denied";
            why = "the access map does not let you read this event";
        }
    }
    struct registry_user_info user;
    if (!code && r->ttl_s != 0 && registry_user_lookup(snap, r->principal, &user) == 0 &&
        !user.may_act) {
        /* A lease starts and stops commands on the device: acting, not reading. */
        snprintf(err, sizeof(err), "role %s may not take leases", user.role);
        code = "denied";
        why = err;
    }
    if (!code && r->ttl_s == 0) {
        hub_release(hub, r->serial); /* ttl=0: give the lease up */
        reply(hub, r, NULL, NULL, NULL);
        return;
    }
    if (!code) {
        uint32_t ttl_s = r->ttl_s < hub->opts.lease_max_s ? r->ttl_s : hub->opts.lease_max_s;
        int rc = hub_lease(hub, r->serial, r->tenant, r->device, r->event, ttl_s * 1000u, err,
                           sizeof(err));
        if (rc == 0) {
            char ttl[16];
            snprintf(ttl, sizeof(ttl), "%u", ttl_s);
            reply(hub, r, NULL, "ttl", ttl);
            return;
        }
        code = rc == IOT_ENOTFOUND ? "unknown_type" : "bad_args";
        why = err;
    }
    reply(hub, r, code, NULL, why);
}

static void on_request(inbox_msg_t *msg, void *loop_data)
{
    struct request_msg *m = container_of(msg, struct request_msg, msg);
    hub_t *hub = m->hub;
    (void)loop_data;
    if (!hub->stopping) {
        registry_snapshot_t *snap = registry_acquire(hub->deps.registry);
        switch (m->r.op) {
        case SESSION_SUBSCRIBE:
            on_subscribe(hub, snap, &m->r);
            break;
        case SESSION_UNSUBSCRIBE:
            on_unsubscribe(hub, &m->r);
            break;
        case SESSION_LEASE:
            on_lease_request(hub, snap, &m->r);
            break;
        }
        registry_release(snap);
    }
    free(m);
}

struct gone_msg {
    inbox_msg_t msg;
    hub_t *hub;
    unsigned io;
    uint32_t slot;
    uint64_t serial;
};

static void on_gone(inbox_msg_t *msg, void *loop_data)
{
    struct gone_msg *g = container_of(msg, struct gone_msg, msg);
    hub_t *hub = g->hub;
    (void)loop_data;
    for (size_t i = 0; i < hub->subs.n;) {
        struct hub_sub *sub = hub->subs.all[i];
        if (sub->remote && sub->serial == g->serial)
            sub_remove(hub, sub); /* the last one takes its place */
        else
            i++;
    }
    if (!hub->stopping)
        hub_release(hub, g->serial);
    free(g);
}

struct presence_msg {
    inbox_msg_t msg;
    hub_t *hub;
    bool online;
    char tenant[65], device[65], type[65];
};

/* The change as a PRESENCE item to the subscribers that asked for it (presence=1): made only
 * when one did, since most presence changes have nobody watching them. */
static void publish_presence(hub_t *hub, const struct presence_msg *p)
{
    if (!hub->subs.npresence)
        return;
    char online[16], dtype[80], at[40];
    int64_t now = ctl_wall_ms();
    snprintf(online, sizeof(online), "online=%d", p->online ? 1 : 0);
    snprintf(dtype, sizeof(dtype), "dtype=%s", p->type);
    snprintf(at, sizeof(at), "at=%lld", (long long)now);
    const char *fields[] = {online, dtype, at};
    struct event *item = event_new(EVENT_KIND_PRESENCE, p->tenant, p->device, p->type, "presence",
                                   0, now, 3, fields);
    if (!item) {
        log_warn("hub: out of memory telling subscribers that %s went %s", p->device,
                 p->online ? "online" : "offline");
        return;
    }
    hub_fanout(hub, item);
    event_unref(item);
}

static void on_presence(inbox_msg_t *msg, void *loop_data)
{
    struct presence_msg *p = container_of(msg, struct presence_msg, msg);
    hub_t *hub = p->hub;
    struct presence_entry e;
    (void)loop_data;
    /* A replaced connection's offline arrives after its successor's online: the device is
     * still online then, and no silence rule should fire for it. */
    bool stale = !p->online && presence_lookup(hub->deps.presence, p->device, &e) && e.online;
    if (!hub->stopping && !stale) {
        hub_alarms_presence(hub, p->tenant, p->device, p->type, p->online);
        if (p->online)
            lease_device_online(hub, p->device);
        publish_presence(hub, p);
    }
    free(p);
}

/* ---- session hooks (io threads) ---- */

static int hook_event(void *arg, struct event *ev, uint32_t *retry_s)
{
    hub_t *hub = arg;
    int rc = hub->deps.store ? event_store_add(hub->deps.store, ev) : IOT_EBUSY;
    if (rc != 0)
        *retry_s = event_store_retry_s(hub->deps.store);
    return rc;
}

static void hook_presence(void *arg, const char *tenant, const char *device, const char *type,
                          bool online)
{
    hub_t *hub = arg;
    struct presence_msg *p = calloc(1, sizeof(*p));
    if (!p)
        return; /* a silence rule notices the missing device later */
    p->msg.handle = on_presence;
    p->hub = hub;
    p->online = online;
    snprintf(p->tenant, sizeof(p->tenant), "%s", tenant);
    snprintf(p->device, sizeof(p->device), "%s", device);
    snprintf(p->type, sizeof(p->type), "%s", type);
    /* An io thread must not wait for the main loop: with its inbox full the edge is lost, and
     * a silence rule notices a device that went quiet anyway. */
    if (inbox_push(hub->deps.inbox, &p->msg) != 0)
        free(p);
}

static void hook_request(void *arg, const struct session_sub_request *r)
{
    hub_t *hub = arg;
    struct request_msg *m = malloc(sizeof(*m));
    if (!m)
        return;
    m->msg.handle = on_request;
    m->hub = hub;
    m->r = *r;
    /* A full main inbox (or a stopping daemon) leaves the request unanswered: the client's
     * own timeout covers it. The hub's fields are the main loop's, not to be read here. */
    if (inbox_push(hub->deps.inbox, &m->msg) != 0)
        free(m);
}

static void hook_gone(void *arg, unsigned io, uint32_t slot, uint64_t serial)
{
    hub_t *hub = arg;
    struct gone_msg *g = malloc(sizeof(*g));
    if (!g)
        return;
    *g = (struct gone_msg){
        .msg.handle = on_gone, .hub = hub, .io = io, .slot = slot, .serial = serial};
    if (inbox_push(hub->deps.inbox, &g->msg) != 0)
        free(g);
}

struct session_event_hooks hub_session_hooks(hub_t *hub)
{
    return (struct session_event_hooks){.arg = hub,
                                        .event = hook_event,
                                        .presence = hook_presence,
                                        .request = hook_request,
                                        .gone = hook_gone};
}

void hub_stats(const hub_t *hub, struct hub_stats *out)
{
    *out = hub->stats;
    out->subscribers = hub->subs.n;
    out->leases = hub->nleases;
    out->leases_started = 0;
    for (size_t i = 0; i < hub->nleases; i++)
        out->leases_started += hub->leases[i]->started;
}

void hub_stop(hub_t *hub)
{
    if (!hub || hub->stopping)
        return;
    hub->stopping = true;
    hub_alarms_stop(hub);
    lease_free_all(hub);
    subs_free_all(hub);
    uv_close((uv_handle_t *)&hub->tick, NULL);
}

void hub_free(hub_t *hub)
{
    if (hub)
        hub_unref(hub);
}
