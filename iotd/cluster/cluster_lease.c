/*
 * cluster_lease.c - leases counted cluster-wide (iotd-cluster(7)).
 *
 * The node a device is online on is the authority of its leases: it counts the holders of
 * every node and sends the start and stop commands. Another node's hub holds its lease there
 * (hub_cluster_port) with iotd.n.<node>.lease {node, tenant, device, event, hold}: hold true
 * holds or renews it (every HUB_LEASE_RENEW_MS), false releases it. Here the other node is one
 * holder, hub_node_holder(its id), whose lease expires if its renewals stop (a lost release)
 * and which is dropped at once when that node is gone (cluster.c's peer_gone).
 */
#include "cluster/cluster_internal.h"

#include "base/log.h"
#include "iot_error.h"

#include <stdio.h>

static void on_hub_lease(void *arg, uint16_t node, const char *tenant, const char *device,
                         const char *event, bool hold)
{
    cluster_t *c = arg;
    char name[33], subject[CLUSTER_SUBJECT_LEN];
    if (!presence_node_name(c->presence, node, name))
        return;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "node", c->node);
    cJSON_AddStringToObject(body, "tenant", tenant);
    cJSON_AddStringToObject(body, "device", device);
    cJSON_AddStringToObject(body, "event", event);
    cJSON_AddBoolToObject(body, "hold", hold);
    snprintf(subject, sizeof(subject), "iotd.n.%s.lease", name);
    cluster_publish(c, subject, NULL, body);
}

void cluster_lease_start(cluster_t *c)
{
    struct hub_cluster_port port = {.arg = c, .lease = on_hub_lease};
    hub_set_cluster(c->deps.hub, &port);
}

void cluster_lease_stop(cluster_t *c)
{
    hub_set_cluster(c->deps.hub, NULL);
}

void cluster_on_lease(cluster_t *c, const cJSON *body)
{
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "tenant"));
    const char *device = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "device"));
    const char *event = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "event"));
    bool hold = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "hold"));
    struct cluster_peer *p = cluster_peer_seen(c, from);
    if (!p || !tenant || !device || !event)
        return;
    uint64_t holder = hub_node_holder(p->id);
    if (!hold) {
        hub_release_one(c->deps.hub, holder, device, event);
        return;
    }
    /* Renewals stop when the node dies (dropped then, in peer_gone) or loses a release: the
     * lease outlives a few of them, so that a late one does not end it. */
    char err[160] = "";
    uint32_t ttl_ms = c->opts.node_timeout_ms + 2 * HUB_LEASE_RENEW_MS;
    if (hub_lease(c->deps.hub, holder, tenant, device, event, ttl_ms, err, sizeof(err)) != IOT_OK)
        log_warn("cluster: node %s's lease of %s on %s: %s", p->name, event, device, err);
}

void cluster_lease_node_gone(cluster_t *c, uint16_t id)
{
    hub_release(c->deps.hub, hub_node_holder(id));
}
