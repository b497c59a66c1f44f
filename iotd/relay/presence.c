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
        rc = 1;
        goto out;
    }
    if (!n) {
        if (s->count >= s->nbuckets)
            grow(s);
        n = s->nbuckets ? node_take(s) : NULL;
        if (!n) {
            rc = IOT_ENOMEM;
            goto out;
        }
        size_t slot = (h / PRESENCE_SHARDS) % s->nbuckets;
        n->next = s->buckets[slot];
        s->buckets[slot] = n;
        s->count++;
        n->e = *e; /* nobody holds this node's device_id yet */
    } else {
        entry_update(&n->e, e);
    }
    n->e.online = true;
    atomic_fetch_add(&p->online, 1);
out:
    if (rc >= 0 && device_id)
        *device_id = n->e.device_id;
    if (rc >= 0)
        atomic_fetch_add(&p->changes, 1);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void presence_release(presence_t *p, const char *device_id, uint64_t serial, int64_t now_ms)
{
    uint64_t h = hash_id(device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, device_id, h);
    if (n && n->e.online && n->e.serial == serial) {
        n->e.online = false;
        n->e.session = NULL;
        n->e.last_seen_ms = now_ms;
        atomic_fetch_sub(&p->online, 1);
        atomic_fetch_add(&p->changes, 1);
    }
    pthread_mutex_unlock(&s->lock);
}

void presence_touch(presence_t *p, const char *device_id, uint64_t serial, int64_t now_ms)
{
    uint64_t h = hash_id(device_id);
    struct shard *s = &p->shards[h % PRESENCE_SHARDS];
    pthread_mutex_lock(&s->lock);
    struct node *n = find(s, device_id, h);
    if (n && n->e.online && n->e.serial == serial)
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
    *out =
        (struct presence_route){.io_index = e.io_index, .session = e.session, .serial = e.serial};
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
