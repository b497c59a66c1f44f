/*
 * cluster_internal.h - what the files of iotd/cluster share; nothing else includes it.
 *
 *   cluster.c           lifecycle, the NATS link, message dispatch, heartbeats, the node table
 *   cluster_presence.c  this node's claims and releases out, the other nodes' in
 *   cluster_relay.c     requests to devices on other nodes, and requests from other nodes
 *   cluster_wire.c      their batches as they cross (cluster_wire.h)
 *   cluster_ids.c       the requests sent, by id (cluster_ids.h)
 *   cluster_sync.c      registry change notifications and their acknowledgements; events
 *   cluster_lease.c     leases held at the device's node, and the other nodes' held here
 *
 * Subjects (JSON bodies, but the relay's batches, cluster_wire.h):
 *   iotd.hb                 heartbeats {node, boot, devices}
 *   iotd.presence           {op: claim|release, node, boot, devices: [{id, serial, ...}]}
 *   iotd.registry           a change {node, seq, ends, tenant, reason}
 *   iotd.events             durable events {node, events: [...]}
 *   iotd.n.NODE.relays      requests for devices on NODE (a batch: id, from, tenant, device,
 *                           type, timeout_ms, args each)
 *   iotd.n.NODE.answers     their answers, back to the sender NODE (a batch: id, outcome,
 *                           why, args each)
 *   iotd.n.NODE.ack         a registry change reloaded {node, seq}
 *   iotd.n.NODE.lease       hold (renew) or release a lease at NODE {node, tenant, device,
 *                           event, hold}
 */
#ifndef IOTD_CLUSTER_INTERNAL_H
#define IOTD_CLUSTER_INTERNAL_H

#include "cluster/cluster.h"
#include "cluster/cluster_ids.h"
#include "cluster/cluster_wire.h"
#include "loop/deadlines.h"

#include <nats/nats.h>
#include <stdatomic.h>

#define CLUSTER_SUBJECT_LEN 96

/* A node heard from (not this one). */
struct cluster_peer {
    char name[33];
    uint16_t id;      /* presence's id of the name */
    char boot[17];    /* its boot id: a new one is a restarted node, whose old presence goes */
    uint64_t devices; /* online there, per its last heartbeat */
    uint64_t last_ms; /* loop time of its last message */
    bool live;
    /* What goes to it at the end of this turn of the main loop (cluster_relay.c). */
    struct cluster_wire requests, answers;
};

/* What crossed to and from the other nodes, counted on the main loop (iotctl status). */
struct cluster_traffic {
    uint64_t requests_out, answers_in, timeouts, node_gone; /* requests sent to other nodes */
    uint64_t latency_ns_sum;                                /* of the answered ones */
    uint64_t requests_in;                                   /* requests run for other nodes */
    uint64_t events_out, events_in, changes_out, changes_in;
};

/* A registry change waiting for the other nodes' acknowledgements. */
struct cluster_wait {
    struct cluster_wait *next;
    uint64_t seq;
    uint64_t deadline_ms; /* loop time */
    bool *waiting;        /* by peer index: not acknowledged yet */
    void (*done)(void *arg);
    void *arg;
};

struct cluster {
    struct cluster_options opts;
    struct cluster_deps deps;
    presence_t *presence;
    char node[33];
    char boot[17];
    natsConnection *nc; /* the main loop's */
    /* nc for the other threads (the presence observer on the io threads): NULL before the
     * start and from the stop on. nc itself is destroyed only once they are all gone. */
    _Atomic(natsConnection *) link;
    natsSubscription *subs[5];
    atomic_bool connected;
    atomic_bool stopping; /* read by the io threads too */
    bool started;
    bool was_connected;         /* a connect after this is a reconnect */
    bool warned_name;           /* that another node has our name (logged once) */
    uv_timer_t heartbeat;       /* heartbeats and the node table's expiry */
    uint64_t heartbeat_sent_ms; /* loop time of our last heartbeat */
    uv_timer_t deadline;        /* head of requests_out's deadlines */
    struct cluster_peer *peers;
    size_t npeers, cap_peers;
    /* Requests sent to other nodes, by deadline (struct relay_request's deadline node). */
    struct deadline_list requests_out;
    struct cluster_ids requests_by_id; /* the same requests, by their relay_id */
    uint32_t next_request_id;
    uv_check_t flush;     /* sends the peers' batches at the end of a loop turn... */
    uv_idle_t flush_idle; /* ...and keeps the loop from sleeping until then */
    bool flush_armed;
    struct cluster_traffic traffic; /* the main loop's, for status */
    uint64_t alarm_sub;             /* our subscription to this node's alarm and presence items */
    bool injecting; /* handing another node's items to the hub: not ours to send on */
    struct cluster_wait *waits;
    uint64_t next_seq;
    uint64_t reloads_pending;
};

/* ---- cluster.c ---- */

/* Publish body (a JSON object, consumed) on subject, with reply (NULL: none). Any thread.
 * false if it could not be queued (logged at debug: the link is down, and reconnecting). */
bool cluster_publish(cluster_t *c, const char *subject, const char *reply, cJSON *body);
/* Publish len bytes of data on subject, no reply. Any thread. false as cluster_publish. */
bool cluster_publish_bytes(cluster_t *c, const char *subject, const void *data, size_t len);
/* The peer named name, made live (and added) now: a message from it is a sign of life. NULL
 * if out of memory or the node table is full. */
struct cluster_peer *cluster_peer_seen(cluster_t *c, const char *name);
/* The strings of a JSON array (others skipped), at most max, pointing into it. How many. */
unsigned cluster_strings(const cJSON *array, const char **out, unsigned max);
/* The live peer of presence id, or NULL. */
struct cluster_peer *cluster_peer_by_id(cluster_t *c, uint16_t id);

/* ---- cluster_presence.c ---- */

/* presence's observer (set by cluster_new). */
void cluster_presence_observe(cluster_t *c);
/* Publish every device online here (a node joined or came back; the link came back). */
void cluster_presence_announce(cluster_t *c);
void cluster_on_presence(cluster_t *c, const cJSON *body);

/* ---- cluster_relay.c ---- */

/* A batch of requests from another node (run here), of answers to ours. */
void cluster_on_relay_requests(cluster_t *c, struct cluster_wire_reader *rd);
void cluster_on_relay_answers(cluster_t *c, struct cluster_wire_reader *rd);
/* Fail every request waiting at node id (0: at every node) with offline; those not sent yet
 * are not sent. */
void cluster_relay_node_gone(cluster_t *c, uint16_t id);
/* Set up the batches' flush (cluster_start). */
void cluster_relay_start(cluster_t *c);
/* Stopping, while the link is still up: fail the requests waiting at other nodes, send the
 * answers not sent yet, close the flush's handles. */
void cluster_relay_stop(cluster_t *c);
/* Free the batches and the table of ids (cluster_free). */
void cluster_relay_free(cluster_t *c);

/* ---- cluster_lease.c ---- */

/* Become (stop being) the hub's way to other nodes' leases. */
void cluster_lease_start(cluster_t *c);
void cluster_lease_stop(cluster_t *c);
void cluster_on_lease(cluster_t *c, const cJSON *body);
/* Node id is gone: its leases here end. */
void cluster_lease_node_gone(cluster_t *c, uint16_t id);

/* ---- cluster_sync.c ---- */

void cluster_on_registry(cluster_t *c, const cJSON *body);
void cluster_on_registry_ack(cluster_t *c, const cJSON *body);
void cluster_on_events(cluster_t *c, const cJSON *body);
/* PRESENCE items online=0 for the devices (a JSON array of ids) of a node that died, to this
 * node's subscribers. */
void cluster_presence_offline(cluster_t *c, const cJSON *ids);
/* Send this node's alarm transitions and presence items on to the others (a hub
 * subscription); and stop. */
int cluster_alarms_start(cluster_t *c);
void cluster_alarms_stop(cluster_t *c);
/* Reload the registry and the alarm rules from the database, acknowledging nothing: after a
 * time apart from the others (the link came back, a dead node is back), whose notifications
 * of changes may have been lost. why: a literal, for the log. */
void cluster_catch_up(cluster_t *c, const char *why);
/* A peer (index) is gone: the waits no longer wait for it. */
void cluster_sync_peer_gone(cluster_t *c, size_t peer);
/* Finish the waits past their deadline (all of them with all). */
void cluster_sync_expire(cluster_t *c, bool all);

#endif
