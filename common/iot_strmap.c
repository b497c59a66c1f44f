/*
 * iot_strmap.c - growing and changing the intrusive string table (see iot_strmap.h).
 */
#include "iot_strmap.h"

#include "iot_error.h"

#include <stdlib.h>

/* Rehash into 2^bits buckets: 1, or 0 when out of memory (the table is unchanged). */
static int rehash(iot_strmap_t *m, unsigned bits)
{
    size_t n = (size_t)1 << bits;
    unsigned shift = 64 - bits;
    struct iot_strmap_node **b = calloc(n, sizeof(*b));
    if (!b)
        return 0;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct iot_strmap_node *node = m->buckets[i], *next; node; node = next) {
            next = node->next;
            node->next = b[node->hash >> shift];
            b[node->hash >> shift] = node;
        }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    m->shift = shift;
    return 1;
}

int iot_strmap_insert_hashed(iot_strmap_t *m, struct iot_strmap_node *node, const char *key,
                             uint64_t hash)
{
    if (m->count >= m->nbuckets) {
        unsigned bits = m->nbuckets ? 64 - m->shift + 1 : 4; /* 16 buckets at first */
        if (bits < 64 && !rehash(m, bits) && !m->nbuckets)
            return IOT_ENOMEM;
    }
    node->key = key;
    node->hash = hash;
    node->next = m->buckets[hash >> m->shift];
    m->buckets[hash >> m->shift] = node;
    m->count++;
    return IOT_OK;
}

void iot_strmap_remove(iot_strmap_t *m, struct iot_strmap_node *node)
{
    struct iot_strmap_node **link = &m->buckets[node->hash >> m->shift];
    while (*link != node)
        link = &(*link)->next;
    *link = node->next;
    m->count--;
}

void iot_strmap_free(iot_strmap_t *m)
{
    free(m->buckets);
    *m = (iot_strmap_t)IOT_STRMAP_INIT;
}
