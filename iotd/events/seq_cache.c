/*
 * seq_cache.c - the last sequence number stored per device (see seq_cache.h): an iot_strmap of
 * entries that each carry their device's name; entries are never removed (one per device ever
 * seen), so each is one allocation for the life of the cache. An entry goes down only when
 * the database says so (seq_cache_set) or a later incarnation of the name replaces it: a device
 * removed and added again restarts at 1.
 */
#include "events/seq_cache.h"

#include "events/event.h"
#include "iot_error.h"
#include "iot_strmap.h"

#include <stdlib.h>
#include <string.h>

struct seq_entry {
    struct iot_strmap_node node;
    uint64_t inc;
    uint32_t seq;
    char device[];
};

struct seq_cache {
    iot_strmap_t map;
};

static struct seq_entry *entry_of(struct iot_strmap_node *node)
{
    return node ? (struct seq_entry *)((char *)node - offsetof(struct seq_entry, node)) : NULL;
}

seq_cache_t *seq_cache_new(void)
{
    return calloc(1, sizeof(seq_cache_t));
}

void seq_cache_free(seq_cache_t *c)
{
    if (!c)
        return;
    struct iot_strmap_walk w = {0};
    for (struct iot_strmap_node *n; (n = iot_strmap_walk(&c->map, &w));)
        free(entry_of(n));
    iot_strmap_free(&c->map);
    free(c);
}

bool seq_cache_get(const seq_cache_t *c, const char *device, uint64_t inc, uint32_t *seq)
{
    const struct seq_entry *e = entry_of(iot_strmap_find(&c->map, device));
    if (!e || event_incarnation_cmp(inc, e->inc) != 0)
        return false;
    *seq = e->seq;
    return true;
}

static int seq_cache_put(seq_cache_t *c, const char *device, uint64_t inc, uint32_t seq, bool lower)
{
    uint64_t hash = iot_strmap_hash(device);
    struct seq_entry *e = entry_of(iot_strmap_find_hashed(&c->map, device, hash));
    if (e) {
        int rel = event_incarnation_cmp(inc, e->inc);
        if (rel < 0)
            return IOT_OK; /* an earlier device of the name: not this one's mark */
        if (rel > 0 || seq > e->seq || lower)
            e->seq = seq;
        if (inc > e->inc)
            e->inc = inc; /* a later incarnation, or the first known of an unknown one */
        return IOT_OK;
    }
    size_t len = strlen(device);
    if (!(e = malloc(sizeof(*e) + len + 1)))
        return IOT_ENOMEM;
    memcpy(e->device, device, len + 1);
    e->inc = inc;
    e->seq = seq;
    if (iot_strmap_insert_hashed(&c->map, &e->node, e->device, hash) != IOT_OK) {
        free(e);
        return IOT_ENOMEM;
    }
    return IOT_OK;
}

int seq_cache_raise(seq_cache_t *c, const char *device, uint64_t inc, uint32_t seq)
{
    return seq_cache_put(c, device, inc, seq, false);
}

int seq_cache_set(seq_cache_t *c, const char *device, uint64_t inc, uint32_t seq)
{
    return seq_cache_put(c, device, inc, seq, true);
}

size_t seq_cache_count(const seq_cache_t *c)
{
    return c->map.count;
}
