/*
 * presence.c - the sharded presence map (see presence.h).
 *
 * Each shard is an open hash table of entries with chaining; entries are never removed while
 * iotd runs (a device that was seen stays as "offline, last seen"), so the map is bounded by
 * the number of distinct devices that authenticated, which the registry bounds.
 *
 * Since entries are never removed, a shard takes its nodes one after the other from chunks of
 * PRESENCE_CHUNK bytes mapped straight from the system rather than one malloc each: no per-node
 * malloc header, and above all no node in the malloc heap. Nodes are made during connect
 * storms, by the io threads, between their short-lived handshake allocations: from the heap
 * (even in blocks of a few KB) each one pinned pages of freed handshake memory, measured at
 * ~190 bytes of resident memory per device beyond the node itself. A chunk's pages become
 * resident only as nodes are written to them, so a shard's unused tail costs address space,
 * not memory.
 */
#include "relay/presence.h"

#include "iot_error.h"
#include "iot_hash.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRESENCE_SHARDS 64
#define PRESENCE_CHUNK  (64 * 1024) /* bytes mapped at a time per shard: ~380 nodes */

struct node {
    struct node *next;
    struct presence_entry e;
};

struct node_chunk {
    struct node_chunk *next;
    struct node nodes[];
};

#define PRESENCE_CHUNK_NODES ((PRESENCE_CHUNK - sizeof(struct node_chunk)) / sizeof(struct node))

struct shard {
    pthread_mutex_t lock;
    struct node **buckets;
    size_t nbuckets, count;
    struct node_chunk *chunks; /* newest first; the newest has `used` nodes handed out */
    size_t used;
};

struct presence {
    struct shard shards[PRESENCE_SHARDS];
    _Atomic uint64_t serial;
    _Atomic size_t online;
    /* Claims and releases so far, counted under the shard lock after the entry changed: a
     * route read at count c is current while the count is still c (presence_route). Starts at
     * 1 so that an empty cache slot (0) never matches. */
    _Atomic uint64_t changes;
    /* The cluster's (presence.h): set before any claim, read without a lock after. */
    struct presence_observer observer;
    pthread_mutex_t names_lock; /* node names: 0 is this node's */
    char (*names)[33];
    unsigned nnames;
};

static uint64_t hash_id(const char *s)
{
    return iot_fnv64_str(IOT_FNV64_SEED, s);
}

int presence_new(presence_t **out)
{
    presence_t *p = calloc(1, sizeof(*p));
    if (!p)
        return IOT_ENOMEM;
    for (int i = 0; i < PRESENCE_SHARDS; i++)
        pthread_mutex_init(&p->shards[i].lock, NULL);
    atomic_init(&p->changes, 1);
    pthread_mutex_init(&p->names_lock, NULL);
    *out = p;
    return IOT_OK;
}

void presence_free(presence_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < PRESENCE_SHARDS; i++) {
        struct shard *s = &p->shards[i];
        while (s->chunks) {
            struct node_chunk *next = s->chunks->next;
            munmap(s->chunks, PRESENCE_CHUNK);
            s->chunks = next;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    pthread_mutex_destroy(&p->names_lock);
    free(p->names);
    free(p);
}

/* Find the node of id in a locked shard. */
static struct node *find(struct shard *s, const char *id, uint64_t h)
{
    if (!s->nbuckets)
        return NULL;
    for (struct node *n = s->buckets[(h / PRESENCE_SHARDS) % s->nbuckets]; n; n = n->next)
        if (strcmp(n->e.device_id, id) == 0)
            return n;
    return NULL;
}

/* A zeroed node of a locked shard (entries are never removed, so it is never given back). */
static struct node *node_take(struct shard *s)
{
    if (!s->chunks || s->used == PRESENCE_CHUNK_NODES) {
        /* Anonymous mappings are zeroed, and resident only once written. */
        void *m =
            mmap(NULL, PRESENCE_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        struct node_chunk *chunk = m;
        chunk->next = s->chunks;
        s->chunks = chunk;
        s->used = 0;
    }
    return &s->chunks->nodes[s->used++];
}

/* Grow a locked shard's table to keep chains short. Failure only costs speed. */
static void grow(struct shard *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : 16;
    struct node **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct node *node = s->buckets[i];
        while (node) {
            struct node *next = node->next;
            size_t slot = (hash_id(node->e.device_id) / PRESENCE_SHARDS) % n;
            node->next = b[slot];
            b[slot] = node;
            node = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Overwrite an entry with e, except its device_id: the ids are equal, and sessions read the
 * entry's id without the lock (see presence_claim), so it must never be written again. */
static void entry_update(struct presence_entry *dst, const struct presence_entry *e)
{
    const size_t skip = offsetof(struct presence_entry, device_id) + sizeof(dst->device_id);
    _Static_assert(offsetof(struct presence_entry, device_id) == 0, "device_id must come first");
    memcpy((char *)dst + skip, (const char *)e + skip, sizeof(*dst) - skip);
}

/* A new node holding e in a locked shard, linked under hash h; NULL if out of memory. */
static struct node *node_insert(struct shard *s, const struct presence_entry *e, uint64_t h)
{
    if (s->count >= s->nbuckets)
        grow(s);
    struct node *n = s->nbuckets ? node_take(s) : NULL;
    if (!n)
        return NULL;
    size_t slot = (h / PRESENCE_SHARDS) % s->nbuckets;
    n->next = s->buckets[slot];
    s->buckets[slot] = n;
    s->count++;
    n->e = *e; /* nobody holds this node's device_id yet */
    return n;
}

/* n (the node of e's device, or NULL) set to e, or a new node for it; NULL if out of memory. */
static struct node *node_set(struct shard *s, struct node *n, const struct presence_entry *e,
                             uint64_t h)
{
    if (!n)
        return node_insert(s, e, h);
    entry_update(&n->e, e);
    return n;
}

int presence_claim(presence_t *p, const struct presence_entry *e, bool replace,
                   struct presence_entry *previous, const char **device_id)
{
    uint64_t h = hash_id(e->device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, e->device_id, h);
    if (n && n->e.online) {
        if (!replace) {
            rc = IOT_EEXIST;
            goto out;
        }
        *previous = n->e;
        entry_update(&n->e, e);
        n->e.online = true;
        if (previous->node != 0) /* it was counted by its own node, this one is ours now */
            atomic_fetch_add(&p->online, 1);
        rc = 1;
        goto out;
    }
    if (!(n = node_set(s, n, e, h))) {
        rc = IOT_ENOMEM;
        goto out;
    }
    n->e.online = true;
    atomic_fetch_add(&p->online, 1);
out:
    if (rc >= 0 && device_id)
        *device_id = n->e.device_id;
    if (rc >= 0)
        atomic_fetch_add(&p->changes, 1);
    pthread_mutex_unlock(&s->lock);
    if (rc >= 0 && p->observer.claimed)
        p->observer.claimed(p->observer.arg, e);
    return rc;
}

void presence_release(presence_t *p, const char *device_id, uint64_t serial, int64_t now_ms)
{
    uint64_t h = hash_id(device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, device_id, h);
    bool released = n && n->e.online && n->e.node == 0 && n->e.serial == serial;
    if (released) {
        n->e.online = false;
        n->e.session = NULL;
        n->e.last_seen_ms = now_ms;
        atomic_fetch_sub(&p->online, 1);
        atomic_fetch_add(&p->changes, 1);
    }
    pthread_mutex_unlock(&s->lock);
    if (released && p->observer.released)
        p->observer.released(p->observer.arg, device_id, serial);
}

void presence_touch(presence_t *p, const char *device_id, uint64_t serial, int64_t now_ms)
{
    uint64_t h = hash_id(device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, device_id, h);
    if (n && n->e.online && n->e.node == 0 && n->e.serial == serial)
        n->e.last_seen_ms = now_ms;
    pthread_mutex_unlock(&s->lock);
}

bool presence_lookup(presence_t *p, const char *device_id, struct presence_entry *out)
{
    uint64_t h = hash_id(device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, device_id, h);
    if (n)
        *out = n->e;
    pthread_mutex_unlock(&s->lock);
    return n != NULL;
}

bool presence_route(presence_t *p, struct presence_route_cache *cache, const char *device_id,
                    struct presence_route *out)
{
    uint64_t h = hash_id(device_id);
    /* Read before the lookup: a change after this read makes what the lookup finds stale. */
    uint64_t changes = atomic_load_explicit(&p->changes, memory_order_acquire);
    struct presence_route_slot *slot = cache ? &cache->slots[h % PRESENCE_ROUTE_SLOTS] : NULL;
    if (slot && slot->changes == changes && strcmp(slot->device_id, device_id) == 0) {
        *out = slot->route;
        return true;
    }
    /* Not remembered, or stale since a claim or release: the entry, under its shard lock. */
    struct presence_entry e;
    if (!presence_lookup(p, device_id, &e) || !e.online)
        return false;
    *out = (struct presence_route){
        .node = e.node, .io_index = e.io_index, .session = e.session, .serial = e.serial};
    if (slot) {
        slot->changes = changes;
        slot->route = *out;
        memcpy(slot->device_id, e.device_id, sizeof(slot->device_id)); /* both char[65] */
    }
    return true;
}

size_t presence_online(presence_t *p)
{
    return atomic_load(&p->online);
}

uint64_t presence_next_serial(presence_t *p)
{
    return atomic_fetch_add(&p->serial, 1) + 1;
}

void presence_set_observer(presence_t *p, const struct presence_observer *observer)
{
    p->observer = *observer;
}

/* The id of name in the locked names table, adding it (add) if it is not there; 0: none. */
static uint16_t name_find(presence_t *p, const char *name, bool add)
{
    for (unsigned i = 1; i < p->nnames; i++)
        if (strcmp(p->names[i], name) == 0)
            return (uint16_t)i;
    if (!add || p->nnames >= PRESENCE_MAX_NODES)
        return 0;
    if (!p->names && !(p->names = calloc(PRESENCE_MAX_NODES, sizeof(*p->names))))
        return 0;
    if (p->nnames == 0)
        p->nnames = 1; /* 0 is this node */
    snprintf(p->names[p->nnames], sizeof(p->names[0]), "%.32s", name);
    return (uint16_t)p->nnames++;
}

uint16_t presence_node_id(presence_t *p, const char *name)
{
    pthread_mutex_lock(&p->names_lock);
    uint16_t id = name_find(p, name, true);
    pthread_mutex_unlock(&p->names_lock);
    return id;
}

void presence_set_local_name(presence_t *p, const char *name)
{
    pthread_mutex_lock(&p->names_lock);
    if (!p->names)
        p->names = calloc(PRESENCE_MAX_NODES, sizeof(*p->names));
    if (p->names) {
        snprintf(p->names[0], sizeof(p->names[0]), "%.32s", name);
        if (p->nnames == 0)
            p->nnames = 1;
    }
    pthread_mutex_unlock(&p->names_lock);
}

bool presence_node_name(presence_t *p, uint16_t id, char name[33])
{
    pthread_mutex_lock(&p->names_lock);
    bool found = p->names && id < p->nnames && p->names[id][0];
    if (found)
        memcpy(name, p->names[id], 33);
    pthread_mutex_unlock(&p->names_lock);
    return found;
}

int presence_claim_remote(presence_t *p, const struct presence_entry *e, bool replace,
                          struct presence_entry *previous)
{
    uint64_t h = hash_id(e->device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, e->device_id, h);
    if (n && n->e.online && n->e.node == 0) {
        if (!replace) {
            rc = IOT_EEXIST;
            goto out;
        }
        *previous = n->e;
        atomic_fetch_sub(&p->online, 1); /* ours no more */
        rc = 1;
    }
    if (!(n = node_set(s, n, e, h))) {
        rc = IOT_ENOMEM;
        goto out;
    }
    n->e.online = true;
    n->e.session = NULL;
    atomic_fetch_add(&p->changes, 1);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void presence_release_remote(presence_t *p, const char *device_id, uint16_t node, uint64_t serial,
                             int64_t now_ms)
{
    uint64_t h = hash_id(device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, device_id, h);
    if (n && n->e.online && n->e.node == node && node != 0 && n->e.serial == serial) {
        n->e.online = false;
        n->e.last_seen_ms = now_ms;
        atomic_fetch_add(&p->changes, 1);
    }
    pthread_mutex_unlock(&s->lock);
}

size_t presence_drop_node(presence_t *p, uint16_t node, int64_t now_ms,
                          void (*fn)(void *arg, const struct presence_entry *e), void *arg)
{
    size_t dropped = 0;
    for (int i = 0; node != 0 && i < PRESENCE_SHARDS; i++) {
        struct shard *s = &p->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < s->nbuckets; b++)
            for (struct node *n = s->buckets[b]; n; n = n->next)
                if (n->e.online && n->e.node == node) {
                    n->e.online = false;
                    n->e.last_seen_ms = now_ms;
                    dropped++;
                    if (fn)
                        fn(arg, &n->e);
                }
        if (dropped)
            atomic_fetch_add(&p->changes, 1);
        pthread_mutex_unlock(&s->lock);
    }
    return dropped;
}

void presence_each_local(presence_t *p, void (*fn)(void *arg, const struct presence_entry *e),
                         void *arg)
{
    for (int i = 0; i < PRESENCE_SHARDS; i++) {
        struct shard *s = &p->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; b < s->nbuckets; b++)
            for (struct node *n = s->buckets[b]; n; n = n->next)
                if (n->e.online && n->e.node == 0)
                    fn(arg, &n->e);
        pthread_mutex_unlock(&s->lock);
    }
}
