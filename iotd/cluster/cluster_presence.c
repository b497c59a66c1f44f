/*
 * cluster_presence.c - presence across nodes: this node's claims and releases go out on
 * iotd.presence as they happen (from the io thread that made them), and the whole of this
 * node's presence again whenever a node joins or the link comes back; the other nodes' come
 * in and are kept in presence as their entries (node != 0), which the relay routes to them.
 *
 * A claim from another node for a device online here is a second connection of the device:
 * with [devices] duplicate = replace the newer one wins, so the local session ends (BYE
 * reason=replaced), as a second connection to this node would have replaced it; with refuse,
 * the node that took the second connection refused it already if it knew of the first, and
 * if both claimed at once, the local one stays. A release names the connection's serial, so a
 * late release never undoes the device's newer connection on another node.
 */
#include "cluster/cluster_internal.h"

#include "base/log.h"
#include "ctl_time.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A claim or release: one device in a batch of one. */
static cJSON *presence_body(cluster_t *c, const char *op)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "op", op);
    cJSON_AddStringToObject(body, "node", c->node);
    cJSON_AddStringToObject(body, "boot", c->boot);
    cJSON_AddArrayToObject(body, "devices");
    return body;
}

static void add_claim(cJSON *devices, const struct presence_entry *e)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", e->device_id);
    cJSON_AddNumberToObject(d, "serial", (double)e->serial);
    cJSON_AddNumberToObject(d, "since", (double)e->since_ms);
    char address[PEER_ADDR_TEXT];
    cJSON_AddStringToObject(d, "address", peer_addr_format(&e->address, address));
    cJSON_AddStringToObject(d, "transport", e->transport);
    cJSON_AddItemToArray(devices, d);
}

/* presence's observer: on the io thread of the claim or release. */
static void on_claimed(void *arg, const struct presence_entry *e)
{
    cluster_t *c = arg;
    if (c->stopping)
        return; /* (and before the start, cluster_publish finds no link) */
    cJSON *body = presence_body(c, "claim");
    add_claim(cJSON_GetObjectItemCaseSensitive(body, "devices"), e);
    cluster_publish(c, "iotd.presence", NULL, body);
}

static void on_released(void *arg, const char *device_id, uint64_t serial)
{
    cluster_t *c = arg;
    if (c->stopping)
        return; /* (and before the start, cluster_publish finds no link) */
    cJSON *body = presence_body(c, "release");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", device_id);
    cJSON_AddNumberToObject(d, "serial", (double)serial);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(body, "devices"), d);
    cluster_publish(c, "iotd.presence", NULL, body);
}

void cluster_presence_observe(cluster_t *c)
{
    struct presence_observer o = {.arg = c, .claimed = on_claimed, .released = on_released};
    presence_set_observer(c->presence, &o);
}

/* Batches of this many devices a message: far below NATS's 1 MB payload limit. */
#define ANNOUNCE_BATCH 500

struct announce {
    cJSON *list; /* a JSON array of claims, built under presence's shard locks */
};

static void collect(void *arg, const struct presence_entry *e)
{
    struct announce *a = arg;
    if (a->list)
        add_claim(a->list, e);
}

void cluster_presence_announce(cluster_t *c)
{
    struct announce a = {.list = cJSON_CreateArray()};
    presence_each_local(c->presence, collect, &a);
    if (!a.list)
        return;
    cJSON *body = NULL;
    while (cJSON_GetArraySize(a.list) > 0) {
        if (!body)
            body = presence_body(c, "claim");
        cJSON *devices = cJSON_GetObjectItemCaseSensitive(body, "devices");
        cJSON_AddItemToArray(devices, cJSON_DetachItemFromArray(a.list, 0));
        if (cJSON_GetArraySize(devices) >= ANNOUNCE_BATCH) {
            cluster_publish(c, "iotd.presence", NULL, body);
            body = NULL;
        }
    }
    if (body)
        cluster_publish(c, "iotd.presence", NULL, body);
    cJSON_Delete(a.list);
}

static void on_replaced_ended(size_t ended, void *arg)
{
    (void)ended, (void)arg;
}

/* A device online here has connected to another node (replace): its session here ends. */
static void end_local(cluster_t *c, const char *device, const char *node)
{
    log_info("cluster: device %s connected to node %s: its connection here is replaced", device,
             node);
    if (c->deps.sessions)
        sessions_end(c->deps.sessions, c->deps.inbox, SESSIONS_OF_PRINCIPAL, device, "replaced",
                     on_replaced_ended, NULL);
}

static void claim_one(cluster_t *c, struct cluster_peer *p, const cJSON *d)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "id"));
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(d, "serial");
    const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "address"));
    const char *transport = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "transport"));
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(d, "since");
    if (!id || !cJSON_IsNumber(serial) || strlen(id) > 64)
        return;
    struct presence_entry e = {0}, previous;
    snprintf(e.device_id, sizeof(e.device_id), "%s", id);
    e.node = p->id;
    e.serial = (uint64_t)serial->valuedouble;
    e.since_ms = cJSON_IsNumber(since) ? (int64_t)since->valuedouble : ctl_wall_ms();
    e.last_seen_ms = ctl_wall_ms();
    /* As this node prints it (peer_addr.h); anything else is shown as no address. */
    if (!peer_addr_parse(&e.address, address ? address : ""))
        peer_addr_parse(&e.address, "");
    snprintf(e.transport, sizeof(e.transport), "%s", transport ? transport : "");
    int rc = presence_claim_remote(c->presence, &e, c->opts.replace_duplicate, &previous);
    if (rc == 1)
        end_local(c, id, p->name);
    else if (rc == IOT_EEXIST)
        log_info("cluster: device %s is online here and connected to node %s too: kept here "
                 "([devices] duplicate = refuse)",
                 id, p->name);
}

void cluster_on_presence(cluster_t *c, const cJSON *body)
{
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "op"));
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    const cJSON *devices = cJSON_GetObjectItemCaseSensitive(body, "devices");
    struct cluster_peer *p = node ? cluster_peer_seen(c, node) : NULL;
    const cJSON *d;
    if (!p || !op || !cJSON_IsArray(devices))
        return;
    bool claim = strcmp(op, "claim") == 0;
    cJSON_ArrayForEach(d, devices)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "id"));
        const cJSON *serial = cJSON_GetObjectItemCaseSensitive(d, "serial");
        if (claim)
            claim_one(c, p, d);
        else if (id && cJSON_IsNumber(serial))
            presence_release_remote(c->presence, id, p->id, (uint64_t)serial->valuedouble,
                                    ctl_wall_ms());
    }
}
