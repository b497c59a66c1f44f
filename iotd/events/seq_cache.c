/*
 * seq_cache.c - open-addressing hash map device -> seq (see seq_cache.h). Linear probing,
 * FNV-1a, grown at 3/4 load; entries are never removed (one per device ever seen).
 */
#include "events/seq_cache.h"

#include "iot_error.h"

#include <stdlib.h>
#include <string.h>

struct seq_entry {
    char *device; /* NULL: free slot */
    uint32_t seq;
};

struct seq_cache {
    struct seq_entry *slots;
    size_t cap, count; /* cap is a power of two */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

seq_cache_t *seq_cache_new(void)
{
    seq_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cap = 256;
    c->slots = calloc(c->cap, sizeof(*c->slots));
    if (!c->slots) {
        free(c);
        return NULL;
    }
    return c;
}

void seq_cache_free(seq_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i].device);
    free(c->slots);
    free(c);
}

static struct seq_entry *find(struct seq_entry *slots, size_t cap, const char *device)
{
    size_t i = hash(device) & (cap - 1);
    while (slots[i].device && strcmp(slots[i].device, device) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

bool seq_cache_get(const seq_cache_t *c, const char *device, uint32_t *seq)
{
    const struct seq_entry *e = find(c->slots, c->cap, device);
    if (!e->device)
        return false;
    *seq = e->seq;
    return true;
}

static int grow(seq_cache_t *c)
{
    size_t cap = c->cap * 2;
    struct seq_entry *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return IOT_ENOMEM;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].device)
            *find(slots, cap, c->slots[i].device) = c->slots[i];
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return IOT_OK;
}

int seq_cache_raise(seq_cache_t *c, const char *device, uint32_t seq)
{
    struct seq_entry *e = find(c->slots, c->cap, device);
    if (e->device) {
        if (seq > e->seq)
            e->seq = seq;
        return IOT_OK;
    }
    if ((c->count + 1) * 4 > c->cap * 3) {
        if (grow(c) != IOT_OK)
            return IOT_ENOMEM;
        e = find(c->slots, c->cap, device);
    }
    if (!(e->device = strdup(device)))
        return IOT_ENOMEM;
    e->seq = seq;
    c->count++;
    return IOT_OK;
}

size_t seq_cache_count(const seq_cache_t *c)
{
    return c->count;
}
