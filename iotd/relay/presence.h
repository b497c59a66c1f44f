/*
 * presence.h - which devices are connected, where: device id -> (io thread, session, serial).
 *
 * Shared by every io thread and read by the control server, so it is a sharded hash map with
 * one mutex per shard: a connect or disconnect locks one shard for a few hundred nanoseconds.
 * An entry outlives its connection (online = false) so "last seen" is exact while iotd runs.
 * The session pointer is only a token: it may be dereferenced only on its own io thread, and
 * only after checking the serial (a reconnect on another thread gets a new serial).
 *
 * In a cluster (iotd/cluster) the map also holds the devices online on other nodes: such an
 * entry has a node id (node != 0, named by presence_node_id) and no session; its serial is the
 * other node's. Only the cluster module writes those entries, and the relay routes a request
 * for one to its node. Local claims and releases are told to an observer, which the cluster
 * module publishes to the other nodes.
 */
#ifndef IOTD_RELAY_PRESENCE_H
#define IOTD_RELAY_PRESENCE_H

#include "base/peer_addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct presence presence_t;

/* One per device ever seen, kept while iotd runs: fields are ordered so that nothing is lost to
 * padding (transport fills the gap after device_id and online). */
struct presence_entry {
    char device_id[65];
    bool online;
    char transport[4];        /* "tcp" or "tls" */
    uint16_t node;            /* 0: this node; else the node the device is online on (cluster) */
    unsigned io_index;        /* io thread owning the session */
    struct peer_addr address; /* binary (peer_addr_format prints it): 20 bytes, not 48 text */
    void *session;            /* token, see above */
    uint64_t serial;          /* unique per connection */
    int64_t since_ms;         /* connected at (wall clock, ms) */
    int64_t last_seen_ms;     /* last frame received, or disconnect time */
};
_Static_assert(sizeof(struct presence_entry) == 128,
               "an entry per device ever seen: keep it packed");

int presence_new(presence_t **out);
void presence_free(presence_t *p);

/* Record a new authenticated connection. If the device is already online: with replace, the
 * old entry is copied to *previous (so the caller can ask its thread to close it), the new one
 * takes its place and 1 is returned; without replace, IOT_EEXIST is returned and nothing
 * changes. 0 when the device was offline. On success *device_id (if not NULL) is the entry's
 * own copy of the id: it stays valid and unchanged until presence_free, so a session may keep
 * it instead of a copy and read it without the lock. */
int presence_claim(presence_t *p, const struct presence_entry *e, bool replace,
                   struct presence_entry *previous, const char **device_id);
/* Mark offline, if serial still owns the entry (a replaced session must not undo its
 * successor). */
void presence_release(presence_t *p, const char *device_id, uint64_t serial, int64_t now_ms);
/* Refresh last_seen of an online entry (cheap; called at most once per second per session). */
void presence_touch(presence_t *p, const char *device_id, uint64_t serial, int64_t now_ms);
/* Copy the entry of device_id into *out. false if never seen since start. */
bool presence_lookup(presence_t *p, const char *device_id, struct presence_entry *out);
/* Where an online device's session is: what the relay needs of an entry. */
struct presence_route {
    uint16_t node; /* 0: here; else another node's id (the rest is then meaningless) */
    unsigned io_index;
    void *session; /* token, see above */
    uint64_t serial;
};

/* One io thread's memory of the routes it looked up, so that a relayed message takes no shard
 * lock (a mutex shared with every thread, and the entry's copy) when nothing connected or
 * disconnected since: any claim or release makes every remembered route stale. Owned by one
 * thread, never shared; zeroed to start. */
#define PRESENCE_ROUTE_SLOTS 64
struct presence_route_slot {
    uint64_t changes; /* the map's change count it was read at; 0: empty */
    struct presence_route route;
    char device_id[65];
};
struct presence_route_cache {
    struct presence_route_slot slots[PRESENCE_ROUTE_SLOTS];
};

/* The route to device_id if it is online (false otherwise), remembered in cache (which may be
 * NULL: then looked up every time). Like presence_lookup, it may be outdated by the time it is
 * used; the serial tells (the session at io_index checks it). */
bool presence_route(presence_t *p, struct presence_route_cache *cache, const char *device_id,
                    struct presence_route *out);
/* Devices online now on this node. */
size_t presence_online(presence_t *p);

/* ---- the cluster's side (iotd/cluster); a single node never calls these ---- */

/* Told of every local claim and release, after the shard lock is released, on the thread that
 * made it (an io thread). Set once, before the first claim. */
struct presence_observer {
    void *arg;
    void (*claimed)(void *arg, const struct presence_entry *e);
    void (*released)(void *arg, const char *device_id, uint64_t serial);
};
void presence_set_observer(presence_t *p, const struct presence_observer *observer);

/* The id (1..PRESENCE_MAX_NODES) of another node's name, given on first use and kept; 0 if the
 * table is full. presence_node_name copies the name of id into name (33 bytes): the local
 * node's for 0 (set by presence_set_local_name; "" until then). */
#define PRESENCE_MAX_NODES 1024
uint16_t presence_node_id(presence_t *p, const char *name);
void presence_set_local_name(presence_t *p, const char *name);
bool presence_node_name(presence_t *p, uint16_t id, char name[33]);

/* Another node says e->device_id is online there (e->node != 0, e->serial the other node's).
 * 0: recorded. 1: recorded, and a local connection of the device was online: copied to
 * *previous so that the caller closes it (a second node's connection replaces it, as a second
 * connection here would). IOT_EEXIST: a local connection is online and replace is off: the
 * local one stays. */
int presence_claim_remote(presence_t *p, const struct presence_entry *e, bool replace,
                          struct presence_entry *previous);
/* Another node says its connection serial of device_id ended. */
void presence_release_remote(presence_t *p, const char *device_id, uint16_t node, uint64_t serial,
                             int64_t now_ms);
/* Node is gone (or restarted): every entry online there goes offline, each given to fn (may be
 * NULL) under its shard's lock (fn must be quick and must not call presence). Returns how
 * many. */
size_t presence_drop_node(presence_t *p, uint16_t node, int64_t now_ms,
                          void (*fn)(void *arg, const struct presence_entry *e), void *arg);
/* Call fn for every device online on this node, under its shard's lock: fn must be quick and
 * must not call presence. */
void presence_each_local(presence_t *p, void (*fn)(void *arg, const struct presence_entry *e),
                         void *arg);
/* A new connection serial (never 0). */
uint64_t presence_next_serial(presence_t *p);

#endif
