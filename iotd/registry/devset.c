/*
 * devset.c - the persistent sorted set of device records (see devset.h for the design and the
 * costs). A chunk is changed in place only while unsealed, i.e. made by the edit in progress
 * and reachable from no published snapshot; a sealed chunk is copied first (writable()).
 * Chunks are split when full and dropped when empty; they are not merged when sparse, so a
 * fleet that shrinks by removals keeps up to one root pointer per surviving device until the
 * next full load rebuilds the set at 3/4 fill.
 */
#include "registry_internal.h"

#include "iot_error.h"
#include "iot_grow.h"

#include <stdlib.h>
#include <string.h>

#define BUILD_FILL (DEVSET_CHUNK * 3 / 4) /* room for inserts before the first split */

struct reg_device *reg_device_new(const struct reg_device *row)
{
    size_t id_len = strlen(row->id) + 1;
    size_t name_len = row->display_name ? strlen(row->display_name) + 1 : 0;
    size_t addr_len = row->last_address ? strlen(row->last_address) + 1 : 0;
    struct reg_device *d = malloc(sizeof(*d) + id_len + name_len + addr_len);
    if (!d)
        return NULL;
    memcpy(d, row, sizeof(*d));
    atomic_init(&d->refs, 1);
    char *p = (char *)(d + 1);
    d->id = memcpy(p, row->id, id_len);
    p += id_len;
    d->display_name = name_len ? memcpy(p, row->display_name, name_len) : NULL;
    p += name_len;
    d->last_address = addr_len ? memcpy(p, row->last_address, addr_len) : NULL;
    return d;
}

void reg_device_retain(struct reg_device *d)
{
    atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
}

void reg_device_release(struct reg_device *d)
{
    if (d && atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1)
        free(d);
}

static struct reg_devchunk *chunk_new(void)
{
    struct reg_devchunk *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->sealed = false;
    c->n = 0;
    return c;
}

static void chunk_release(struct reg_devchunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (unsigned i = 0; i < c->n; i++)
        reg_device_release(c->dev[i]);
    free(c);
}

/* The chunk whose range holds id: the last one starting at or before it (0 if none). */
static size_t chunk_for(const struct reg_devset *set, const char *id)
{
    size_t lo = 0, hi = set->nchunks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(set->chunks[mid]->dev[0]->id, id) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

/* First position in c whose id is >= id. */
static unsigned position(const struct reg_devchunk *c, const char *id)
{
    unsigned lo = 0, hi = c->n;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (strcmp(c->dev[mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* chunks[ci], copied first if sealed (the copy replaces it in this set only). */
static struct reg_devchunk *writable(struct reg_devset *set, size_t ci)
{
    struct reg_devchunk *c = set->chunks[ci];
    if (!c->sealed)
        return c;
    struct reg_devchunk *copy = chunk_new();
    if (!copy)
        return NULL;
    copy->n = c->n;
    memcpy(copy->dev, c->dev, c->n * sizeof(c->dev[0]));
    for (unsigned i = 0; i < c->n; i++)
        reg_device_retain(copy->dev[i]);
    set->chunks[ci] = copy;
    chunk_release(c); /* still held by the snapshot it was sealed in */
    return copy;
}

static int root_reserve(struct reg_devset *set, size_t need)
{
    void *grown = iot_reserve(set->chunks, need, &set->cap, 16, sizeof(*set->chunks));
    if (!grown)
        return IOT_ENOMEM;
    set->chunks = grown;
    return IOT_OK;
}

static void root_insert(struct reg_devset *set, size_t at, struct reg_devchunk *c)
{
    memmove(&set->chunks[at + 1], &set->chunks[at], (set->nchunks - at) * sizeof(*set->chunks));
    set->chunks[at] = c;
    set->nchunks++;
}

int devset_build(struct reg_devset *set, struct reg_device **sorted, size_t n)
{
    size_t i = 0;
    int rc = n ? root_reserve(set, (n + BUILD_FILL - 1) / BUILD_FILL) : IOT_OK;
    while (rc == IOT_OK && i < n) {
        struct reg_devchunk *c = chunk_new();
        if (!c) {
            rc = IOT_ENOMEM;
            break;
        }
        while (i < n && c->n < BUILD_FILL)
            c->dev[c->n++] = sorted[i++];
        set->chunks[set->nchunks++] = c;
        set->count += c->n;
    }
    for (; i < n; i++) /* what no chunk took on failure */
        reg_device_release(sorted[i]);
    return rc;
}

int devset_copy(struct reg_devset *dst, const struct reg_devset *src)
{
    /* Exactly the root plus room for one split, not iot_reserve's power of two: a derived set
     * usually takes one change, and the root is most of what a change allocates. */
    dst->chunks = src->nchunks ? malloc((src->nchunks + 1) * sizeof(*dst->chunks)) : NULL;
    if (src->nchunks && !dst->chunks)
        return IOT_ENOMEM;
    dst->cap = src->nchunks ? src->nchunks + 1 : 0;
    for (size_t i = 0; i < src->nchunks; i++) {
        dst->chunks[i] = src->chunks[i];
        atomic_fetch_add_explicit(&src->chunks[i]->refs, 1, memory_order_relaxed);
    }
    dst->nchunks = src->nchunks;
    dst->count = src->count;
    return IOT_OK;
}

int devset_put(struct reg_devset *set, struct reg_device *dev, struct reg_device **old)
{
    int rc = IOT_ENOMEM;
    struct reg_devchunk *c, *right = NULL;
    *old = NULL;
    if (set->nchunks == 0) {
        if (root_reserve(set, 1) != IOT_OK || !(c = chunk_new()))
            goto out;
        c->dev[c->n++] = dev;
        set->chunks[set->nchunks++] = c;
        set->count++;
        return IOT_OK;
    }
    size_t ci = chunk_for(set, dev->id);
    if (!(c = writable(set, ci)))
        goto out;
    unsigned pos = position(c, dev->id);
    if (pos < c->n && strcmp(c->dev[pos]->id, dev->id) == 0) {
        *old = c->dev[pos];
        c->dev[pos] = dev;
        return IOT_OK;
    }
    if (c->n == DEVSET_CHUNK) { /* full: the upper half moves to a new chunk after it */
        if (root_reserve(set, set->nchunks + 1) != IOT_OK || !(right = chunk_new()))
            goto out;
        right->n = DEVSET_CHUNK / 2;
        memcpy(right->dev, &c->dev[DEVSET_CHUNK / 2], right->n * sizeof(c->dev[0]));
        c->n = DEVSET_CHUNK / 2;
        root_insert(set, ci + 1, right);
        if (pos > c->n) {
            pos -= c->n;
            c = right;
        }
    }
    memmove(&c->dev[pos + 1], &c->dev[pos], (c->n - pos) * sizeof(c->dev[0]));
    c->dev[pos] = dev;
    c->n++;
    set->count++;
    return IOT_OK;
out:
    reg_device_release(dev);
    return rc;
}

int devset_remove(struct reg_devset *set, const char *id, struct reg_device **old)
{
    *old = NULL;
    if (set->nchunks == 0)
        return IOT_ENOTFOUND;
    size_t ci = chunk_for(set, id);
    unsigned pos = position(set->chunks[ci], id);
    if (pos >= set->chunks[ci]->n || strcmp(set->chunks[ci]->dev[pos]->id, id) != 0)
        return IOT_ENOTFOUND;
    struct reg_devchunk *c = writable(set, ci);
    if (!c)
        return IOT_ENOMEM;
    *old = c->dev[pos];
    memmove(&c->dev[pos], &c->dev[pos + 1], (c->n - pos - 1) * sizeof(c->dev[0]));
    c->n--;
    set->count--;
    if (c->n == 0) {
        chunk_release(c);
        memmove(&set->chunks[ci], &set->chunks[ci + 1],
                (set->nchunks - ci - 1) * sizeof(*set->chunks));
        set->nchunks--;
    }
    return IOT_OK;
}

void devset_seal(struct reg_devset *set)
{
    for (size_t i = 0; i < set->nchunks; i++)
        if (!set->chunks[i]->sealed)
            set->chunks[i]->sealed = true;
}

void devset_free(struct reg_devset *set)
{
    for (size_t i = 0; i < set->nchunks; i++)
        chunk_release(set->chunks[i]);
    free(set->chunks);
    memset(set, 0, sizeof(*set));
}

const struct reg_device *devset_find(const struct reg_devset *set, const char *id)
{
    if (!id || set->nchunks == 0)
        return NULL;
    const struct reg_devchunk *c = set->chunks[chunk_for(set, id)];
    unsigned pos = position(c, id);
    return pos < c->n && strcmp(c->dev[pos]->id, id) == 0 ? c->dev[pos] : NULL;
}

const struct reg_device *devset_next(const struct reg_devset *set, struct devset_iter *it)
{
    while (it->chunk < set->nchunks) {
        const struct reg_devchunk *c = set->chunks[it->chunk];
        if (it->index < c->n)
            return c->dev[it->index++];
        it->chunk++;
        it->index = 0;
    }
    return NULL;
}

struct devset_iter devset_after(const struct reg_devset *set, const char *after)
{
    struct devset_iter it = {0, 0};
    if (!after || set->nchunks == 0)
        return it;
    it.chunk = chunk_for(set, after);
    const struct reg_devchunk *c = set->chunks[it.chunk];
    it.index = position(c, after);
    if (it.index < c->n && strcmp(c->dev[it.index]->id, after) == 0)
        it.index++;
    return it; /* devset_next moves on to the next chunk from the end of this one */
}

/* The record at (*ci, *i) of set, NULL at the end. */
static const struct reg_device *at(const struct reg_devset *set, size_t ci, unsigned i)
{
    return ci < set->nchunks ? set->chunks[ci]->dev[i] : NULL;
}

static void step(const struct reg_devset *set, size_t *ci, unsigned *i)
{
    if (++*i == set->chunks[*ci]->n) {
        ++*ci;
        *i = 0;
    }
}

void devset_diff(const struct reg_devset *a, const struct reg_devset *b,
                 void (*fn)(const struct reg_device *old, const struct reg_device *now, void *arg),
                 void *arg)
{
    size_t ca = 0, cb = 0;
    unsigned ia = 0, ib = 0;
    while (ca < a->nchunks || cb < b->nchunks) {
        /* Past a changed chunk the two sets line up again on the chunks they share. */
        if (ia == 0 && ib == 0 && ca < a->nchunks && cb < b->nchunks &&
            a->chunks[ca] == b->chunks[cb]) {
            ca++;
            cb++;
            continue;
        }
        const struct reg_device *x = at(a, ca, ia), *y = at(b, cb, ib);
        int c = !x ? 1 : !y ? -1 : strcmp(x->id, y->id);
        if (c <= 0 && x != y)
            fn(x, c == 0 ? y : NULL, arg);
        else if (c > 0)
            fn(NULL, y, arg);
        if (c <= 0)
            step(a, &ca, &ia);
        if (c >= 0)
            step(b, &cb, &ib);
    }
}
