/*
 * cluster.c - the cluster's lifecycle, its NATS link, the dispatch of what arrives, heartbeats
 * and the table of live nodes (see cluster.h).
 *
 * Which thread talks to NATS: the C client's own. It reads the socket, reconnects forever
 * (with RetryOnFailedConnect even when no server answers at start) and calls our message
 * handlers on its delivery threads. Its libuv adapter (nats/adapters/libuv.h) would only move
 * the socket reads onto a loop of ours: the handlers would still run on the client's threads
 * and a connection's reconnects would have to be driven from that loop, so it would add a
 * thread hop and a second reconnection path for nothing. Instead every message is handed to
 * the main loop's inbox as it is (the natsMsg, one allocation more), and everything the
 * cluster keeps (nodes, requests out, registry waits) lives on the main loop with no lock.
 * Publishing is thread-safe in the client, so the presence observer (io threads) publishes
 * directly.
 */
#include "cluster/cluster_internal.h"

#include "base/log.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A NATS message on its way to the main loop. */
struct cluster_msg {
    inbox_msg_t msg;
    cluster_t *c;
    natsMsg *m; /* NULL: a link change (connected says which) */
    bool connected;
};

static void on_heartbeat(uv_timer_t *timer);

int cluster_new(cluster_t **out, const struct cluster_options *opts, presence_t *presence)
{
    cluster_t *c = calloc(1, sizeof(*c));
    if (!c)
        return IOT_ENOMEM;
    c->opts = *opts;
    c->presence = presence;
    snprintf(c->node, sizeof(c->node), "%.32s", opts->node);
    /* Tells a restarted node from the one before it, whose devices are gone. */
    snprintf(c->boot, sizeof(c->boot), "%016llx",
             (unsigned long long)(uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL)));
    atomic_init(&c->connected, false);
    atomic_init(&c->stopping, false);
    atomic_init(&c->link, NULL);
    presence_set_local_name(presence, c->node);
    cluster_presence_observe(c);
    *out = c;
    return IOT_OK;
}

bool cluster_publish(cluster_t *c, const char *subject, const char *reply, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    natsConnection *nc = atomic_load(&c->link);
    if (!text || !nc) {
        free(text);
        return false;
    }
    natsStatus s = reply ? natsConnection_PublishRequestString(nc, subject, reply, text)
                         : natsConnection_PublishString(nc, subject, text);
    free(text);
    if (s != NATS_OK)
        log_debug("cluster: publish on %s: %s", subject, natsStatus_GetText(s));
    return s == NATS_OK;
}

bool cluster_publish_bytes(cluster_t *c, const char *subject, const void *data, size_t len)
{
    natsConnection *nc = atomic_load(&c->link);
    if (!nc || len > INT_MAX)
        return false;
    natsStatus s = natsConnection_Publish(nc, subject, data, (int)len);
    if (s != NATS_OK)
        log_debug("cluster: publish on %s: %s", subject, natsStatus_GetText(s));
    return s == NATS_OK;
}

struct cluster_peer *cluster_peer_seen(cluster_t *c, const char *name)
{
    struct cluster_peer *p = NULL;
    for (size_t i = 0; i < c->npeers && !p; i++)
        if (strcmp(c->peers[i].name, name) == 0)
            p = &c->peers[i];
    if (!p) {
        uint16_t id = presence_node_id(c->presence, name);
        if (id == 0)
            return NULL;
        struct cluster_peer *grown =
            iot_grow(c->peers, c->npeers, &c->cap_peers, 8, sizeof(*grown));
        if (!grown)
            return NULL;
        c->peers = grown;
        p = &c->peers[c->npeers++];
        *p = (struct cluster_peer){.id = id};
        snprintf(p->name, sizeof(p->name), "%.32s", name);
    }
    if (!p->live) {
        log_info("cluster: node %s %s", p->name, p->last_ms ? "is back" : "joined");
        /* A node back from the dead was apart (a partition, its link): changes made through it
         * meanwhile were not heard here. */
        if (p->last_ms)
            cluster_catch_up(c, "a node is back");
        p->live = true;
        cluster_presence_announce(c); /* it knows nothing of our devices yet */
    }
    p->last_ms = uv_now(c->deps.loop);
    return p;
}

unsigned cluster_strings(const cJSON *array, const char **out, unsigned max)
{
    unsigned n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, array)
    {
        if (n < max && cJSON_IsString(a))
            out[n++] = a->valuestring;
    }
    return n;
}

struct cluster_peer *cluster_peer_by_id(cluster_t *c, uint16_t id)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].id == id && c->peers[i].live)
            return &c->peers[i];
    return NULL;
}

static void collect_dropped(void *arg, const struct presence_entry *e)
{
    cJSON *ids = arg;
    cJSON_AddItemToArray(ids, cJSON_CreateString(e->device_id));
}

/* A node is gone (silent too long, or restarted): its devices, its requests, its waits. Its
 * devices' subscribers hear them go offline here, since their node cannot tell. */
static void peer_gone(cluster_t *c, size_t index, const char *why)
{
    struct cluster_peer *p = &c->peers[index];
    cJSON *ids = cJSON_CreateArray();
    size_t dropped =
        presence_drop_node(c->presence, p->id, ctl_wall_ms(), ids ? collect_dropped : NULL, ids);
    cluster_presence_offline(c, ids);
    cJSON_Delete(ids);
    log_warn("cluster: node %s %s: %zu device%s dropped", p->name, why, dropped,
             dropped == 1 ? "" : "s");
    p->live = false;
    p->devices = 0;
    cluster_relay_node_gone(c, p->id);
    cluster_lease_node_gone(c, p->id);
    cluster_sync_peer_gone(c, index);
}

static void on_heartbeat_body(cluster_t *c, const cJSON *body)
{
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    const char *boot = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "boot"));
    const cJSON *devices = cJSON_GetObjectItemCaseSensitive(body, "devices");
    bool leaving = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "leaving"));
    if (!node || !boot || strcmp(node, c->node) == 0)
        return; /* not ours to keep (or a second node with our name: its heartbeats are ignored) */
    for (size_t i = 0; i < c->npeers; i++) {
        struct cluster_peer *p = &c->peers[i];
        if (strcmp(p->name, node) != 0 || !p->live)
            continue;
        if (leaving)
            peer_gone(c, i, "left");
        else if (p->boot[0] && strcmp(p->boot, boot) != 0)
            peer_gone(c, i, "restarted");
        break;
    }
    struct cluster_peer *p = leaving ? NULL : cluster_peer_seen(c, node);
    if (!p)
        return;
    snprintf(p->boot, sizeof(p->boot), "%.16s", boot);
    p->devices = cJSON_IsNumber(devices) ? (uint64_t)devices->valuedouble : 0;
}

/* leaving: this node stops, and its devices with it: the others drop them now rather than
 * after node_timeout_ms. */
static void heartbeat_send(cluster_t *c, bool leaving)
{
    cJSON *hb = cJSON_CreateObject();
    cJSON_AddStringToObject(hb, "node", c->node);
    cJSON_AddStringToObject(hb, "boot", c->boot);
    cJSON_AddNumberToObject(hb, "devices", (double)presence_online(c->presence));
    if (leaving)
        cJSON_AddTrueToObject(hb, "leaving");
    cluster_publish(c, "iotd.hb", NULL, hb);
}

/* The node table's clock, every node_timeout_ms / 20: a silent node is dropped within
 * node_timeout_ms of its last message (so of its death) give or take that tick, not a whole
 * heartbeat later; the heartbeat goes out when due. */
static void on_heartbeat(uv_timer_t *timer)
{
    cluster_t *c = timer->data;
    uint64_t now = uv_now(c->deps.loop);
    if (now - c->heartbeat_sent_ms >= c->opts.heartbeat_ms) {
        heartbeat_send(c, false);
        c->heartbeat_sent_ms = now;
    }
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].live && now - c->peers[i].last_ms >= c->opts.node_timeout_ms)
            peer_gone(c, i, "silent too long");
    cluster_sync_expire(c, false);
}

/* Handlers by subject: the broadcast ones, then the last token of ours (iotd.n.<me>.X). */
static const struct {
    const char *subject;
    void (*handle)(cluster_t *c, const cJSON *body);
} broadcast_handlers[] =
    {
        {"iotd.hb", on_heartbeat_body},
        {"iotd.presence", cluster_on_presence},
        {"iotd.registry", cluster_on_registry},
        {"iotd.events", cluster_on_events},
},
  node_handlers[] = {
      {"ack", cluster_on_registry_ack},
      {"lease", cluster_on_lease},
};

/* The relay's batches (binary, cluster_wire.h), by the last token of ours. */
static const struct {
    const char *subject;
    void (*handle)(cluster_t *c, struct cluster_wire_reader *rd);
} batch_handlers[] = {
    {"relays", cluster_on_relay_requests},
    {"answers", cluster_on_relay_answers},
};

/* Any message names its node. Our own never come back (no echo): one in our name is another
 * node configured with it, whose messages are not ours to take. */
static bool from_another_node(cluster_t *c, const char *from)
{
    if (from && strcmp(from, c->node) != 0)
        return true;
    if (from && !c->warned_name)
        log_error("cluster: another node is also named %s: its messages are ignored; give "
                  "each node its own [cluster] node",
                  c->node);
    c->warned_name |= from != NULL;
    return false;
}

/* A batch of the relay's on subject (whose last token is last): true if it was one. */
static bool dispatch_batch(cluster_t *c, natsMsg *m, const char *subject, const char *last)
{
    for (size_t i = 0; last && i < sizeof(batch_handlers) / sizeof(batch_handlers[0]); i++) {
        if (strcmp(last + 1, batch_handlers[i].subject) != 0)
            continue;
        struct cluster_wire_reader rd;
        if (cluster_wire_open(&rd, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m)) != 0)
            log_debug("cluster: a message on %s is not a batch", subject);
        else if (from_another_node(c, rd.node))
            batch_handlers[i].handle(c, &rd);
        return true;
    }
    return false;
}

static void dispatch(cluster_t *c, natsMsg *m)
{
    const char *subject = natsMsg_GetSubject(m);
    const char *last = strrchr(subject, '.');
    cJSON *body = NULL;
    if (dispatch_batch(c, m, subject, last))
        goto out;
    body = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    if (!cJSON_IsObject(body)) {
        log_debug("cluster: a message on %s is not a JSON object", subject);
        goto out;
    }
    /* Any message names its node: a sign of life as good as a heartbeat. */
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    if (!from_another_node(c, from))
        goto out;
    for (size_t i = 0; i < sizeof(broadcast_handlers) / sizeof(broadcast_handlers[0]); i++)
        if (strcmp(subject, broadcast_handlers[i].subject) == 0) {
            if (i != 0)
                cluster_peer_seen(c, from);
            broadcast_handlers[i].handle(c, body);
            goto out;
        }
    for (size_t i = 0; last && i < sizeof(node_handlers) / sizeof(node_handlers[0]); i++)
        if (strcmp(last + 1, node_handlers[i].subject) == 0) {
            node_handlers[i].handle(c, body);
            goto out;
        }
out:
    cJSON_Delete(body);
}

/* On the main loop: a message, or a change of the link. */
static void on_cluster_msg(inbox_msg_t *msg, void *loop_data)
{
    struct cluster_msg *cm = container_of(msg, struct cluster_msg, msg);
    cluster_t *c = cm->c;
    (void)loop_data;
    if (c->stopping) {
        /* nothing: the link is closing */
    } else if (cm->m) {
        dispatch(c, cm->m);
    } else if (cm->connected) {
        log_info("cluster: connected to NATS as node %s", c->node);
        heartbeat_send(c, false);
        cluster_presence_announce(c); /* what we published while away may be lost */
        if (c->was_connected)         /* and what the others published: their changes */
            cluster_catch_up(c, "back on NATS");
        c->was_connected = true;
    } else {
        log_warn("cluster: NATS link lost; reconnecting");
    }
    if (cm->m)
        natsMsg_Destroy(cm->m);
    free(cm);
}

/* To the main loop (any NATS thread): waits while its inbox is full, which holds NATS back. */
static void to_main(cluster_t *c, natsMsg *m, bool connected)
{
    struct cluster_msg *cm = malloc(sizeof(*cm));
    if (cm) {
        *cm = (struct cluster_msg){
            .msg.handle = on_cluster_msg, .c = c, .m = m, .connected = connected};
        if (inbox_push_wait(c->deps.inbox, &cm->msg) == 0)
            return;
        free(cm);
    }
    if (m)
        natsMsg_Destroy(m); /* stopping, or out of memory: lost like a message on a lost link */
}

static void on_nats_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc, (void)sub;
    to_main(closure, m, false);
}

static void on_connected(natsConnection *nc, void *closure)
{
    cluster_t *c = closure;
    (void)nc;
    atomic_store(&c->connected, true);
    to_main(c, NULL, true);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    cluster_t *c = closure;
    (void)nc;
    if (!atomic_exchange(&c->connected, false))
        return;
    to_main(c, NULL, false);
}

/* The client's options: every server of the list, reconnect forever, detect a dead server
 * within about node_timeout_ms (pings), no echo of our own broadcasts. */
static natsStatus make_options(cluster_t *c, natsOptions **out)
{
    natsOptions *o = NULL;
    char *list = strdup(c->opts.nats), *save = NULL;
    const char *urls[32];
    int n = 0;
    char name[64];
    natsStatus s = list ? natsOptions_Create(&o) : NATS_NO_MEMORY;
    for (char *u = list ? strtok_r(list, ", \t", &save) : NULL; u && n < 32;
         u = strtok_r(NULL, ", \t", &save))
        urls[n++] = u;
    snprintf(name, sizeof(name), "iotd-%s", c->node);
    int64_t ping = c->opts.node_timeout_ms / 3 ? c->opts.node_timeout_ms / 3 : 1;
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, n);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetNoEcho(o, true);
    /* A relayed request or answer is written to NATS at once: the client's own flusher would
     * hold it for its next round (measured: a cross-node p50 of 2.0 ms against 0.8 ms with
     * this, tests/bench/cluster). */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, ping);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 2);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, c);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_connected, c);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
    free(list);
    if (s != NATS_OK)
        natsOptions_Destroy(o);
    else
        *out = o;
    return s;
}

int cluster_start(cluster_t *c, const struct cluster_deps *deps, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    c->deps = *deps;
    natsStatus s = nats_Open(-1);
    if (s == NATS_OK)
        s = make_options(c, &o);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&c->nc, o);
        atomic_store(&c->link, c->nc);
        if (s == NATS_NOT_YET_CONNECTED) {
            log_warn("cluster: no NATS server of %s answers yet; retrying in the background",
                     c->opts.nats);
            s = NATS_OK;
        } else if (s == NATS_OK) {
            /* on_connected runs only for a connect that first failed */
            atomic_store(&c->connected, true);
            to_main(c, NULL, true);
        }
    }
    const char *broadcast[] = {"iotd.hb", "iotd.presence", "iotd.registry", "iotd.events"};
    for (size_t i = 0; s == NATS_OK && i < 4; i++)
        s = natsConnection_Subscribe(&c->subs[i], c->nc, broadcast[i], on_nats_msg, c);
    char mine[CLUSTER_SUBJECT_LEN];
    snprintf(mine, sizeof(mine), "iotd.n.%s.*", c->node);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&c->subs[4], c->nc, mine, on_nats_msg, c);
    natsOptions_Destroy(o);
    if (s == NATS_OK && cluster_alarms_start(c) != 0)
        s = NATS_NO_MEMORY;
    if (s != NATS_OK) {
        snprintf(err, errlen, "[cluster] nats %s: %s", c->opts.nats, natsStatus_GetText(s));
        return IOT_EIO;
    }
    cluster_lease_start(c);
    cluster_relay_start(c);
    uv_timer_init(c->deps.loop, &c->heartbeat);
    uv_timer_init(c->deps.loop, &c->deadline);
    c->heartbeat.data = c->deadline.data = c;
    unsigned tick = c->opts.node_timeout_ms / 20 > 5 ? c->opts.node_timeout_ms / 20 : 5;
    c->heartbeat_sent_ms = uv_now(c->deps.loop);
    uv_timer_start(&c->heartbeat, on_heartbeat, tick, tick);
    c->started = true;
    log_info("cluster: node %s, NATS %s, heartbeat %u ms, node timeout %u ms", c->node,
             c->opts.nats, c->opts.heartbeat_ms, c->opts.node_timeout_ms);
    return IOT_OK;
}

static int peer_by_name(const void *a, const void *b)
{
    return strcmp(((const struct cluster_peer *)a)->name, ((const struct cluster_peer *)b)->name);
}

cJSON *cluster_status(cluster_t *c)
{
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return NULL;
    uint64_t now = uv_now(c->deps.loop);
    cJSON_AddStringToObject(st, "node", c->node);
    cJSON_AddStringToObject(st, "nats", atomic_load(&c->connected) ? "connected" : "disconnected");
    /* The live nodes by name, this one among them. */
    struct cluster_peer *rows = calloc(c->npeers + 1, sizeof(*rows));
    size_t n = 0;
    if (rows) {
        rows[n++] = (struct cluster_peer){.devices = presence_online(c->presence), .last_ms = now};
        snprintf(rows[0].name, sizeof(rows[0].name), "%s", c->node);
        for (size_t i = 0; i < c->npeers; i++)
            if (c->peers[i].live)
                rows[n++] = c->peers[i];
        qsort(rows, n, sizeof(*rows), peer_by_name);
    }
    cJSON *nodes = cJSON_AddArrayToObject(st, "nodes");
    for (size_t i = 0; i < n; i++) {
        cJSON *node = cJSON_CreateObject();
        cJSON_AddStringToObject(node, "node", rows[i].name);
        cJSON_AddNumberToObject(node, "devices", (double)rows[i].devices);
        cJSON_AddNumberToObject(node, "age_ms", (double)(now - rows[i].last_ms));
        cJSON_AddItemToArray(nodes, node);
    }
    free(rows);
    const struct cluster_traffic *t = &c->traffic;
    cJSON *traffic = cJSON_AddObjectToObject(st, "traffic");
    cJSON_AddNumberToObject(traffic, "requests_out", (double)t->requests_out);
    cJSON_AddNumberToObject(traffic, "answers_in", (double)t->answers_in);
    cJSON_AddNumberToObject(traffic, "timeouts", (double)t->timeouts);
    cJSON_AddNumberToObject(traffic, "node_gone", (double)t->node_gone);
    cJSON_AddNumberToObject(traffic, "latency_ms_avg",
                            t->answers_in ? (double)t->latency_ns_sum / 1e6 / t->answers_in : 0);
    cJSON_AddNumberToObject(traffic, "requests_in", (double)t->requests_in);
    cJSON_AddNumberToObject(traffic, "events_out", (double)t->events_out);
    cJSON_AddNumberToObject(traffic, "events_in", (double)t->events_in);
    cJSON_AddNumberToObject(traffic, "changes_out", (double)t->changes_out);
    cJSON_AddNumberToObject(traffic, "changes_in", (double)t->changes_in);
    return st;
}

void cluster_stop(cluster_t *c)
{
    if (!c || c->stopping)
        return;
    c->stopping = true;
    for (size_t i = 0; i < sizeof(c->subs) / sizeof(c->subs[0]); i++)
        if (c->subs[i])
            natsSubscription_Unsubscribe(c->subs[i]);
    cluster_relay_stop(c);
    if (c->nc) {
        heartbeat_send(c, true);
        atomic_store(&c->link, NULL);
        /* Flushes what is queued (our last releases reach the others), then closes. */
        natsConnection_FlushTimeout(c->nc, 500);
        natsConnection_Close(c->nc);
    }
    cluster_alarms_stop(c);
    if (c->started)
        cluster_lease_stop(c);
    cluster_sync_expire(c, true);
    if (c->started) {
        uv_close((uv_handle_t *)&c->heartbeat, NULL);
        uv_close((uv_handle_t *)&c->deadline, NULL);
    }
}

void cluster_free(cluster_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < sizeof(c->subs) / sizeof(c->subs[0]); i++)
        natsSubscription_Destroy(c->subs[i]);
    natsConnection_Destroy(c->nc);
    nats_CloseAndWait(2000);
    cluster_relay_free(c);
    free(c->peers);
    free(c);
}
