/*
 * iot_strmap.h - the one string-keyed hash table of the project: intrusive and chained.
 *
 * A table of names (devices in the alarm engine, sequence numbers per device, presence) keeps
 * its entries in structs of its own, each embedding a struct iot_strmap_node whose key points
 * at the entry's name: the table allocates only its bucket array, never per entry, so callers
 * keep their own allocation strategy (malloc, arenas, mmap'ed chunks). Lookups are inline and
 * allocate nothing: one FNV-1a of the key, one bucket, a chain compared by cached hash first.
 *
 * The bucket is chosen by the hash's high bits, so a caller that shards by the low bits of the
 * same hash (presence) still gets well-spread chains. The table doubles when it holds as many
 * entries as buckets; if that fails the entry goes in anyway (chains only get longer).
 *
 * Not thread-safe: a table is touched by one thread, or under its owner's lock.
 */
#ifndef IOT_STRMAP_H
#define IOT_STRMAP_H

#include "iot_hash.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct iot_strmap_node {
    struct iot_strmap_node *next;
    uint64_t hash;
    const char *key; /* the entry's own name: must not change while in the table */
};

typedef struct iot_strmap {
    struct iot_strmap_node **buckets;
    size_t nbuckets; /* 0 (empty, nothing allocated) or a power of two */
    size_t count;
    unsigned shift; /* 64 - log2(nbuckets) */
} iot_strmap_t;

#define IOT_STRMAP_INIT                                                                            \
    {                                                                                              \
        0                                                                                          \
    }

/* The hash the table uses for key; pass it to the _hashed variants to hash once. */
static inline uint64_t iot_strmap_hash(const char *key)
{
    return iot_fnv64_str(IOT_FNV64_SEED, key);
}

/* The node whose key equals key (hash being iot_strmap_hash(key)), or NULL. */
static inline struct iot_strmap_node *iot_strmap_find_hashed(const iot_strmap_t *m, const char *key,
                                                             uint64_t hash)
{
    if (!m->nbuckets)
        return NULL;
    for (struct iot_strmap_node *n = m->buckets[hash >> m->shift]; n; n = n->next)
        if (n->hash == hash && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static inline struct iot_strmap_node *iot_strmap_find(const iot_strmap_t *m, const char *key)
{
    return iot_strmap_find_hashed(m, key, iot_strmap_hash(key));
}

/* Add node under key (the caller's string, kept by pointer), which must not be in the table
 * yet. IOT_OK, or IOT_ENOMEM when the table has no bucket array and cannot get one (node not
 * added). */
int iot_strmap_insert_hashed(iot_strmap_t *m, struct iot_strmap_node *node, const char *key,
                             uint64_t hash);

static inline int iot_strmap_insert(iot_strmap_t *m, struct iot_strmap_node *node, const char *key)
{
    return iot_strmap_insert_hashed(m, node, key, iot_strmap_hash(key));
}

/* Take node (which is in the table) out of it. */
void iot_strmap_remove(iot_strmap_t *m, struct iot_strmap_node *node);

/* A walk over the table: struct iot_strmap_walk w = {0}; while ((n = iot_strmap_walk(m, &w)))
 * ... The node just returned may be removed (and freed) before the next call, since the walk
 * has already looked past it; nothing else may be inserted or removed during a walk. */
struct iot_strmap_walk {
    size_t bucket;
    struct iot_strmap_node *next;
    int started;
};

static inline struct iot_strmap_node *iot_strmap_first_from(const iot_strmap_t *m, size_t *bucket)
{
    for (; *bucket < m->nbuckets; ++*bucket)
        if (m->buckets[*bucket])
            return m->buckets[*bucket];
    return NULL;
}

/* The next node of the walk, or NULL at its end. */
static inline struct iot_strmap_node *iot_strmap_walk(const iot_strmap_t *m,
                                                      struct iot_strmap_walk *w)
{
    struct iot_strmap_node *node;
    if (!w->started) {
        w->started = 1;
        node = iot_strmap_first_from(m, &w->bucket);
    } else {
        node = w->next;
    }
    if (!node)
        return NULL;
    if (!(w->next = node->next)) {
        w->bucket++;
        w->next = iot_strmap_first_from(m, &w->bucket);
    }
    return node;
}

/* Free the bucket array (the entries are the caller's) and empty the table. */
void iot_strmap_free(iot_strmap_t *m);

#endif
