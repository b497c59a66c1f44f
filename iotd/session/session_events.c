/*
 * session_events.c - the event side of sessions: a device's EVENT and ALARM frames, a user's
 * SUBSCRIBE, UNSUBSCRIBE and LEASE, and the way back (ACKs, deliveries, answers).
 *
 * A device's event is checked here, on its io thread, against the registry snapshot (the name
 * must be an event of the device type's catalogue, the fields must match its spec), then handed
 * to the event side through session_deps.events (the hub, which stores it); the ACK comes back
 * through sessions_ack only once the event is durable. Everything the hub sends to a session
 * travels as one inbox message per io thread, addressed by (slot, serial), so a session is
 * still touched only by its own thread and a session that has gone is simply skipped.
 *
 * A subscriber whose connection is backed up (more than [events] subscriber_backlog_kb waiting)
 * does not get the item: it is counted, and the subscriber is told "NOTICE dropped=N" before the
 * next item it does get. A slow reader thus loses items it could not have read in time, and
 * never holds up the device, the store, or the other subscribers.
 */
#include "session/session_internal.h"

#include "base/log.h"
#include "events/event.h"
#include "iot_error.h"
#include "iot_text.h"
#include "registry/argspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of an ALARM frame that are not the event's own fields. */
static const char *const alarm_reserved[] = {"state", "severity", "msg", NULL};

static bool one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

/* The value of key=... among a frame's args from index first, or NULL. */
static const char *frame_kv(const struct iotp_frame *f, unsigned first, const char *key)
{
    size_t klen = strlen(key);
    for (unsigned i = first; i < f->nargs; i++)
        if (strncmp(f->args[i], key, klen) == 0 && f->args[i][klen] == '=')
            return f->args[i] + klen + 1;
    return NULL;
}

static void send_event_error(struct session *s, uint32_t seq, const char *code, const char *why,
                             uint32_t retry_s)
{
    session_send_error_from(s, IOTP_SERVER_ADDRESS, seq, code, retry_s, why);
}

/* A device's EVENT or ALARM: name first, then key=value fields per the catalogue. */
static void on_device_event(struct session *s, const struct iotp_frame *f, enum event_kind kind)
{
    struct session_env *env = s->env;
    const struct session_event_hooks *h = &env->all->deps.events;
    registry_snapshot_t *snap = session_snapshot(env);
    struct registry_message_info m;
    struct registry_device_info d;
    char why[128] = "";

    if (f->id == 0 || f->nargs < 1) {
        send_event_error(s, f->id, "bad_frame", "an event needs a sequence number and a name", 0);
        session_bad_frame(s);
        return;
    }
    const char *name = f->args[0];
    if (registry_device_lookup(snap, s->principal, &d) != 0 ||
        registry_message_lookup(snap, s->principal, name, &m) != 0 || !m.event) {
        /* Permanent: the device drops it rather than retransmitting forever. */
        send_event_error(s, f->id, "unknown_type", "not an event of this device's type", 0);
        return;
    }
    if (argspec_check_fields(m.spec, f->nargs - 1, f->args + 1,
                             kind == EVENT_KIND_ALARM ? alarm_reserved : NULL, why,
                             sizeof(why)) != 0) {
        send_event_error(s, f->id, "bad_args", why, 0);
        return;
    }
    if (kind == EVENT_KIND_ALARM) {
        static const char *const states[] = {"raised", "cleared", NULL};
        static const char *const severities[] = {"info",  "warning",  "minor",
                                                 "major", "critical", NULL};
        const char *state = frame_kv(f, 1, "state"), *severity = frame_kv(f, 1, "severity");
        if ((state && !one_of(state, states)) || (severity && !one_of(severity, severities))) {
            send_event_error(s, f->id, "bad_args",
                             "state must be raised|cleared, severity "
                             "info|warning|minor|major|critical",
                             0);
            return;
        }
    }
    if (!h->event) {
        send_event_error(s, f->id, "internal", "events are not stored by this server", 0);
        return;
    }
    /* Once an event was refused busy, later ones must wait for it: storing seq S+1 first would
     * make the retransmitted S look like a duplicate (seq <= the device's high-water) and lose
     * it. The device resends the refused one first (iot-protocol(7)). */
    if (s->busy_seq && f->id > s->busy_seq) {
        send_event_error(s, f->id, "busy", "an earlier event is waiting", 1);
        return;
    }
    if (f->id == s->busy_seq)
        s->busy_seq = 0;
    struct event *ev = event_new(kind, s->tenant, s->principal, d.type, name, f->id, ctl_wall_ms(),
                                 f->nargs - 1, f->args + 1);
    if (!ev) {
        send_event_error(s, f->id, "busy", "out of memory", 1);
        if (!s->busy_seq)
            s->busy_seq = f->id;
        return;
    }
    ev->incarnation = d.incarnation;
    ev->io = env->index;
    ev->slot = s->slot;
    ev->serial = s->serial;
    uint32_t retry_s = 1;
    int rc = h->event(h->arg, ev, &retry_s);
    if (rc != 0) {
        send_event_error(s, f->id, "busy", "event storage is full", retry_s ? retry_s : 1);
        if (!s->busy_seq)
            s->busy_seq = f->id;
    }
    event_unref(ev);
}

/* The keys each request takes (iot-protocol(7), SUBSCRIPTIONS AND LEASES). */
static const char *const request_keys[][7] = {
    [SESSION_SUBSCRIBE] = {"device", "group", "type", "event", "alarms", "presence", NULL},
    [SESSION_UNSUBSCRIBE] = {"sub", NULL},
    [SESSION_LEASE] = {"device", "event", "ttl", NULL},
};

/* Check a request's arguments and fill r from them: NULL, or why they are refused (bad_args),
 * written in why. What needs the registry (does the device exist, is the event one) is the
 * hub's to check. */
static const char *parse_request(const struct iotp_frame *f, struct session_sub_request *r,
                                 char *why, size_t whylen)
{
    static const struct {
        const char *key;
        size_t offset;
    } names[] = {
        {"device", offsetof(struct session_sub_request, device)},
        {"group", offsetof(struct session_sub_request, group)},
        {"type", offsetof(struct session_sub_request, type)},
        {"event", offsetof(struct session_sub_request, event)},
    };
    for (unsigned i = 0; i < f->nargs; i++) {
        const char *eq = strchr(f->args[i], '=');
        if (!eq || eq == f->args[i])
            return "arguments are key=value";
        size_t klen = (size_t)(eq - f->args[i]);
        bool known = false;
        for (const char *const *k = request_keys[r->op]; *k && !known; k++)
            known = strlen(*k) == klen && strncmp(*k, f->args[i], klen) == 0;
        if (!known || !eq[1]) {
            snprintf(why, whylen, "%s key %.*s", known ? "empty value for" : "unknown",
                     (int)(klen < 32 ? klen : 32), f->args[i]);
            return why;
        }
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = frame_kv(f, 0, names[i].key);
        if (v && strlen(v) >= 65)
            return "a name is longer than 64 bytes";
        if (v)
            memcpy((char *)r + names[i].offset, v, strlen(v) + 1);
    }
    const char *alarms = frame_kv(f, 0, "alarms");
    if (alarms && strcmp(alarms, "0") != 0 && strcmp(alarms, "1") != 0 &&
        strcmp(alarms, "only") != 0)
        return "alarms= is 0, 1 or only";
    r->alarms = !alarms || strcmp(alarms, "0") == 0 ? 0 : strcmp(alarms, "only") == 0 ? 2 : 1;
    const char *presence = frame_kv(f, 0, "presence");
    if (presence && strcmp(presence, "0") != 0 && strcmp(presence, "1") != 0)
        return "presence= is 0 or 1";
    r->presence = presence && strcmp(presence, "1") == 0;
    const char *sub = frame_kv(f, 0, "sub");
    if (r->op == SESSION_UNSUBSCRIBE && (!sub || !iot_text_decimal(sub, UINT64_MAX, &r->sub)))
        return "sub= is the number OK sub= gave";
    const char *ttl = frame_kv(f, 0, "ttl");
    uint64_t ttl_s = 0;
    if (r->op == SESSION_LEASE && (!ttl || !iot_text_decimal(ttl, UINT32_MAX, &ttl_s)))
        return "ttl= is a number of seconds, 0 to 4294967295";
    r->ttl_s = (uint32_t)ttl_s;
    if (r->op == SESSION_LEASE && (!r->device[0] || !r->event[0]))
        return "a lease needs device= and event=";
    return NULL;
}

/* A user's SUBSCRIBE / UNSUBSCRIBE / LEASE: its arguments checked here, then handed to the
 * hub, which answers. */
static void on_user_request(struct session *s, const struct iotp_frame *f, enum session_sub_op op)
{
    const struct session_event_hooks *h = &s->env->all->deps.events;
    struct session_sub_request r = {
        .op = op, .io = s->env->index, .slot = s->slot, .serial = s->serial, .id = f->id};
    char why[96];
    if (!h->request) {
        session_send_error(s, f->id, "internal", 0);
        return;
    }
    const char *refused = parse_request(f, &r, why, sizeof(why));
    if (refused) {
        send_event_error(s, f->id, "bad_args", refused, 0);
        return;
    }
    snprintf(r.principal, sizeof(r.principal), "%s", s->principal);
    snprintf(r.tenant, sizeof(r.tenant), "%s", s->tenant);
    h->request(h->arg, &r);
}

void session_on_event(struct session *s, const struct iotp_frame *f)
{
    on_device_event(s, f, EVENT_KIND_EVENT);
}

void session_on_alarm(struct session *s, const struct iotp_frame *f)
{
    on_device_event(s, f, EVENT_KIND_ALARM);
}

void session_on_subscribe(struct session *s, const struct iotp_frame *f)
{
    on_user_request(s, f, SESSION_SUBSCRIBE);
}

void session_on_unsubscribe(struct session *s, const struct iotp_frame *f)
{
    on_user_request(s, f, SESSION_UNSUBSCRIBE);
}

void session_on_lease(struct session *s, const struct iotp_frame *f)
{
    on_user_request(s, f, SESSION_LEASE);
}

void session_events_online(struct session *s)
{
    const struct session_event_hooks *h = &s->env->all->deps.events;
    struct registry_device_info d;
    if (h->presence && registry_device_lookup(session_snapshot(s->env), s->principal, &d) == 0)
        h->presence(h->arg, s->tenant, s->principal, d.type, true);
}

void session_events_closed(struct session *s)
{
    const struct session_event_hooks *h = &s->env->all->deps.events;
    if (!s->authenticated)
        return;
    if (s->kind == SESSION_DEVICE) {
        struct registry_device_info d;
        if (h->presence && registry_device_lookup(session_snapshot(s->env), s->principal, &d) == 0)
            h->presence(h->arg, s->tenant, s->principal, d.type, false);
    } else if (h->gone) {
        h->gone(h->arg, s->env->index, s->slot, s->serial);
    }
}

/* ---- the way back: ACKs ---- */

struct ack_msg {
    inbox_msg_t msg;
    sessions_t *all;
    size_t n;
    struct event *events[];
};

static void on_acks(inbox_msg_t *msg, void *loop_data)
{
    struct ack_msg *a = container_of(msg, struct ack_msg, msg);
    struct session_env *env = &a->all->envs[((io_thread_t *)loop_data)->index];
    for (size_t i = 0; i < a->n; i++) {
        struct event *ev = a->events[i];
        struct session *s = session_at(env, ev->slot, ev->serial);
        if (s && s->state == SESSION_ESTABLISHED)
            session_send_system(s, IOTP_TYPE_ACK, ev->seq, NULL, NULL);
        event_unref(ev);
    }
    free(a);
}

void sessions_ack(sessions_t *all, struct event *const *events, size_t n)
{
    for (unsigned io = 0; io < all->deps.io_count; io++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++)
            count += events[i]->io == io;
        if (count == 0)
            continue;
        struct ack_msg *a = malloc(sizeof(*a) + count * sizeof(a->events[0]));
        if (!a) {
            log_warn("events: out of memory acknowledging %zu events (devices will retransmit)",
                     count);
            continue;
        }
        a->msg.handle = on_acks;
        a->all = all;
        a->n = 0;
        for (size_t i = 0; i < n; i++)
            if (events[i]->io == io)
                a->events[a->n++] = event_ref(events[i]);
        if (inbox_push(&all->deps.io[io].inbox, &a->msg) != 0) {
            /* Full or stopping: the devices retransmit; the duplicates are acknowledged then. */
            for (size_t i = 0; i < a->n; i++)
                event_unref(a->events[i]);
            free(a);
        }
    }
}

/* ---- the way back: items to subscribers ---- */

struct deliver_msg {
    inbox_msg_t msg;
    sessions_t *all;
    struct event *item;
    size_t n;
    struct session_target targets[];
};

static void write_item(struct session *s, const struct event *item)
{
    uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_writer w;
    if (s->dropped) {
        char count[16];
        snprintf(count, sizeof(count), "%u", s->dropped);
        session_send_system(s, IOTP_TYPE_NOTICE, 0, "dropped", count);
        s->dropped = 0;
    }
    static const enum iotp_type types[] = {[EVENT_KIND_EVENT] = IOTP_TYPE_EVENT,
                                           [EVENT_KIND_ALARM] = IOTP_TYPE_ALARM,
                                           [EVENT_KIND_PRESENCE] = IOTP_TYPE_PRESENCE};
    if (item->kind == EVENT_KIND_PRESENCE) {
        /* From iotd, about the device: `PRESENCE 0 device=dev1 online=1 dtype=thermo at=ms`. */
        iotp_writer_begin(&w, buf, sizeof(buf), IOTP_SERVER_ADDRESS, s->principal,
                          iotp_type_name(IOTP_TYPE_PRESENCE), 0);
        iotp_writer_kv(&w, "device", item->device);
    } else {
        iotp_writer_begin(&w, buf, sizeof(buf), item->device, s->principal,
                          iotp_type_name(types[item->kind]), item->seq);
        iotp_writer_arg(&w, item->name);
    }
    for (unsigned i = 0; i < item->nfields; i++)
        iotp_writer_arg(&w, event_field_at(item, i));
    int len = iotp_writer_end(&w);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
}

static void on_deliver(inbox_msg_t *msg, void *loop_data)
{
    struct deliver_msg *d = container_of(msg, struct deliver_msg, msg);
    struct session_env *env = &d->all->envs[((io_thread_t *)loop_data)->index];
    for (size_t i = 0; i < d->n; i++) {
        struct session *s = session_at(env, d->targets[i].slot, d->targets[i].serial);
        if (!s || s->state != SESSION_ESTABLISHED)
            continue;
        if (conn_pending(s->conn) > env->all->opts.subscriber_backlog) {
            s->dropped++;
            atomic_fetch_add_explicit(&env->counters.items_dropped, 1, memory_order_relaxed);
            continue;
        }
        write_item(s, d->item);
        atomic_fetch_add_explicit(&env->counters.items_delivered, 1, memory_order_relaxed);
    }
    event_unref(d->item);
    free(d);
}

int sessions_deliver(sessions_t *all, unsigned io, struct event *item,
                     const struct session_target *targets, size_t n)
{
    if (io >= all->deps.io_count || n == 0)
        return IOT_EINVAL;
    struct deliver_msg *d = malloc(sizeof(*d) + n * sizeof(d->targets[0]));
    if (!d)
        return IOT_ENOMEM;
    d->msg.handle = on_deliver;
    d->all = all;
    d->item = event_ref(item);
    d->n = n;
    memcpy(d->targets, targets, n * sizeof(*targets));
    int rc = inbox_push(&all->deps.io[io].inbox, &d->msg);
    if (rc != 0) {
        event_unref(item);
        free(d);
    }
    return rc;
}

/* ---- the way back: answers to SUBSCRIBE / UNSUBSCRIBE / LEASE ---- */

struct reply_msg {
    inbox_msg_t msg;
    sessions_t *all;
    uint32_t slot, id;
    uint64_t serial;
    char code[32], key[32], value[128];
};

static void on_reply(inbox_msg_t *msg, void *loop_data)
{
    struct reply_msg *r = container_of(msg, struct reply_msg, msg);
    struct session_env *env = &r->all->envs[((io_thread_t *)loop_data)->index];
    struct session *s = session_at(env, r->slot, r->serial);
    if (s && s->state == SESSION_ESTABLISHED) {
        if (r->code[0])
            send_event_error(s, r->id, r->code, r->value, 0);
        else
            session_send_system(s, IOTP_TYPE_OK, r->id, r->key[0] ? r->key : NULL, r->value);
    }
    free(r);
}

void sessions_reply(sessions_t *all, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                    const char *code, const char *key, const char *value)
{
    struct reply_msg *r = io < all->deps.io_count ? calloc(1, sizeof(*r)) : NULL;
    if (!r)
        return; /* the client's request stays unanswered: it times out on its side */
    r->msg.handle = on_reply;
    r->all = all;
    r->slot = slot;
    r->serial = serial;
    r->id = id;
    snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
    snprintf(r->key, sizeof(r->key), "%s", key ? key : "");
    snprintf(r->value, sizeof(r->value), "%s", value ? value : "");
    if (inbox_push(&all->deps.io[io].inbox, &r->msg) != 0)
        free(r);
}
