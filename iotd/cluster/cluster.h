/*
 * cluster.h - several iotd nodes as one service, over NATS (iotd-cluster(7)).
 *
 * With [cluster] nats set, a node joins the others through a NATS server or cluster: it
 * announces itself every heartbeat_ms (name, boot id, devices online here), keeps a table of
 * the live nodes (a node silent for node_timeout_ms is dead: its devices are dropped from
 * presence), publishes its devices' claims and releases so that presence is cluster-wide,
 * carries requests to devices online on other nodes and their answers back (relay_deliver's
 * remote path; in batches, one NATS message per node and turn of the main loop), tells the
 * other nodes of a registry change and waits for them to have reloaded it, streams its
 * devices' durable events to the other nodes' subscribers, and counts leases
 * across the nodes (the device's node counts every node's holders and sends the commands; the
 * hub's hub_cluster_port is set by cluster_start).
 *
 * Without [cluster] nats nothing here is started: a single node needs no NATS.
 *
 * Everything of the cluster runs on the main loop, but the presence observer (io threads) and
 * the relay's remote path (any thread), which only publish or hand over to the main loop's
 * inbox.
 */
#ifndef IOTD_CLUSTER_H
#define IOTD_CLUSTER_H

#include "db/db.h"
#include "events/event.h"
#include "hub/hub.h"
#include "loop/inbox.h"
#include "registry/registry.h"
#include "relay/audit.h"
#include "relay/pending.h"
#include "relay/presence.h"
#include "session/session.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct cluster cluster_t;

struct cluster_options {
    const char *nats; /* comma-separated nats:// URLs (checked by config_finish) */
    const char *node; /* this node's name: [a-z0-9_-]{1,32} */
    unsigned heartbeat_ms;
    unsigned node_timeout_ms;
    bool replace_duplicate; /* [devices] duplicate = replace: a second node's connection wins */
};

/* What the cluster works with, set by cluster_start. The main loop's. */
struct cluster_deps {
    uv_loop_t *loop;
    inbox_t *inbox; /* the main loop's: every NATS message is handled there */
    registry_t *registry;
    db_pool_t *db; /* registry reloads */
    sessions_t *sessions;
    hub_t *hub;
    relay_audit_t *audit; /* requests sent to other nodes are audited here, once */
};

/* Make the cluster of this node (no connection yet): names this node in presence and becomes
 * its observer, so that it must come before the first claim. IOT_ENOMEM. */
int cluster_new(cluster_t **out, const struct cluster_options *opts, presence_t *presence);
/* relay_deliver's remote path, for relay_options (via session_deps). */
struct relay_remote cluster_relay_remote(cluster_t *c);
/* On the main loop, once the sessions run: connect to NATS (in the background: a server that
 * cannot be reached is retried forever, and the node serves its own devices meanwhile) and
 * start the heartbeats. IOT_EIO with a sentence in err if NATS cannot even be set up. */
int cluster_start(cluster_t *c, const struct cluster_deps *deps, char *err, size_t errlen);

/* The "cluster" object of iotctl status and of the stats samples: node, nats
 * (connected|disconnected), nodes (the live ones, this one included, by name: node, devices,
 * age_ms), traffic. Main loop. */
cJSON *cluster_status(cluster_t *c);

/* A registry change committed here (already published in this node's snapshot): tell the other
 * nodes, which reload it (registry false: only their alarm rules; and end the sessions of ends,
 * a principal or with ends_tenant a tenant, with reason, as this node did), and call done(arg)
 * once every live node has acknowledged, or after node_timeout_ms (logged), or at once when
 * there is no other node. Main loop; done runs on it, never before this returns. ends may be
 * NULL. */
void cluster_registry_changed(cluster_t *c, bool registry, const char *ends, bool ends_tenant,
                              const char *reason, void (*done)(void *arg), void *arg);

/* Durable events of this node's devices (the store's completion, after hub_durable): streamed
 * to the other nodes' subscribers. Duplicates are not. Main loop. */
void cluster_events_durable(cluster_t *c, struct event *const *events, size_t n);

/* Main loop, when stopping (before the sessions stop): leave NATS, answer the requests still
 * waiting at other nodes (offline) and the registry waits. */
void cluster_stop(cluster_t *c);
/* After the main loop has ended. NULL is allowed. */
void cluster_free(cluster_t *c);

#endif
