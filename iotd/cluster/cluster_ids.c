/*
 * cluster_ids.c - requests to other nodes by id (see cluster_ids.h).
 */
#include "cluster/cluster_ids.h"

#include "iot_error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define FIRST_SLOTS 64

static size_t home(const struct cluster_ids *t, uint32_t id)
{
    /* A multiplicative hash with its high bits folded down: consecutive ids (the usual case)
     * land apart, and any other pattern of ids still spreads. */
    uint32_t h = id * 2654435769u;
    return (size_t)(h ^ h >> 16) & t->mask;
}

static void place(struct cluster_ids *t, uint32_t id, void *value)
{
    size_t i = home(t, id);
    while (t->slots[i].id)
        i = (i + 1) & t->mask;
    t->slots[i] = (struct cluster_id_slot){.id = id, .value = value};
}

/* Twice the slots (FIRST_SLOTS the first time), every entry placed again. */
static int grow(struct cluster_ids *t)
{
    size_t old_n = t->slots ? t->mask + 1 : 0, n = old_n ? old_n * 2 : FIRST_SLOTS;
    struct cluster_id_slot *old = t->slots, *slots = calloc(n, sizeof(*slots));
    if (!slots)
        return IOT_ENOMEM;
    t->slots = slots;
    t->mask = n - 1;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].id)
            place(t, old[i].id, old[i].value);
    free(old);
    return IOT_OK;
}

int cluster_ids_put(struct cluster_ids *t, uint32_t id, void *value)
{
    if (id == 0)
        return IOT_EINVAL;
    if ((!t->slots || (t->count + 1) * 2 > t->mask + 1) && grow(t) != IOT_OK)
        return IOT_ENOMEM;
    place(t, id, value);
    t->count++;
    return IOT_OK;
}

/* The slot of id, or SIZE_MAX. */
static size_t find(const struct cluster_ids *t, uint32_t id)
{
    if (!t->slots || id == 0)
        return SIZE_MAX;
    for (size_t i = home(t, id);; i = (i + 1) & t->mask) {
        if (t->slots[i].id == id)
            return i;
        if (!t->slots[i].id)
            return SIZE_MAX; /* the table is never full: a free slot ends every probe */
    }
}

void *cluster_ids_get(const struct cluster_ids *t, uint32_t id)
{
    size_t i = find(t, id);
    return i == SIZE_MAX ? NULL : t->slots[i].value;
}

void *cluster_ids_take(struct cluster_ids *t, uint32_t id)
{
    size_t i = find(t, id);
    if (i == SIZE_MAX)
        return NULL;
    void *value = t->slots[i].value;
    /* Backward shift: move up every later entry of the run whose home is not between the hole
     * and it, so that a probe never meets a hole before its entry. */
    for (size_t j = (i + 1) & t->mask; t->slots[j].id; j = (j + 1) & t->mask) {
        size_t h = home(t, t->slots[j].id);
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (stays)
            continue;
        t->slots[i] = t->slots[j];
        i = j;
    }
    t->slots[i] = (struct cluster_id_slot){0};
    t->count--;
    return value;
}

void cluster_ids_free(struct cluster_ids *t)
{
    free(t->slots);
    *t = (struct cluster_ids){0};
}
