/*
 * presence.h - which devices are connected, where: device id -> (io thread, session, serial).
 *
 * Shared by every io thread and read by the control server, so it is a sharded hash map with
 * one mutex per shard: a connect or disconnect locks one shard for a few hundred nanoseconds.
 * An entry outlives its connection (online = false) so "last seen" is exact while iotd runs.
 * The session pointer is only a token: it may be dereferenced only on its own io thread, and
 * only after checking the serial (a reconnect on another thread gets a new serial).
 */
#ifndef IOTD_RELAY_PRESENCE_H
#define IOTD_RELAY_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct presence presence_t;

/* One per device ever seen, kept while iotd runs: fields are ordered so that nothing is lost to
 * padding (transport fills the gap after device_id and online). */
struct presence_entry {
    char device_id[65];
    bool online;
    char transport[4];    /* "tcp" or "tls" */
    unsigned io_index;    /* io thread owning the session */
    void *session;        /* token, see above */
    uint64_t serial;      /* unique per connection */
    int64_t since_ms;     /* connected at (wall clock, ms) */
    int64_t last_seen_ms; /* last frame received, or disconnect time */
    /* "[ipv6]:port" at most: 39 characters of address (glibc prints the embedded-IPv4 forms
     * compressed, well under that), brackets, colon, 5 digits, NUL. */
    char address[48];
};

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
/* Devices online now. */
size_t presence_online(presence_t *p);
/* A new connection serial (never 0). */
uint64_t presence_next_serial(presence_t *p);

#endif
