/*
 * hub_index.c - subscribers by (tenant, device) of their filter (see hub_index.h).
 *
 * A bucket is one allocation: its node, its array of subscribers and its key. A subscriber
 * knows its bucket and its positions, so removal swaps the last entry into its place in the
 * bucket and in the array of all; an emptied bucket is freed, so buckets do not accumulate
 * as streams for short-lived devices come and go.
 */
#include "hub/hub_internal.h"

#include "iot_error.h"
#include "iot_grow.h"

#include <stdlib.h>
#include <string.h>

struct hub_bucket {
    struct iot_strmap_node node;
    struct hub_sub **subs;
    size_t n, cap;
    char key[]; /* tenant, 0x1f, device: names never hold control characters */
};

/* The key of (tenant, device) in buf (room for HUB_INDEX_KEY bytes): names are at most 64
 * bytes (struct hub_filter, struct event), longer ones are cut as there. Copied by hand: this
 * runs four times per item, where snprintf cost more than the lookups. */
#define HUB_INDEX_NAME 64
#define HUB_INDEX_KEY  (HUB_INDEX_NAME + 1 + HUB_INDEX_NAME + 1)
static void make_key(char *buf, const char *tenant, const char *device)
{
    size_t t = strnlen(tenant, HUB_INDEX_NAME), d = strnlen(device, HUB_INDEX_NAME);
    memcpy(buf, tenant, t);
    buf[t] = 0x1f;
    memcpy(buf + t + 1, device, d);
    buf[t + 1 + d] = 0;
}

static struct hub_bucket *bucket_of(const hub_index_t *x, const char *key)
{
    struct iot_strmap_node *n = iot_strmap_find(&x->buckets, key);
    return n ? container_of(n, struct hub_bucket, node) : NULL;
}

/* Which of the four kinds of bucket sub is in: an item looks up only kinds that hold some. */
static unsigned shape_of(const struct hub_sub *sub)
{
    return (sub->f.tenant[0] ? 2u : 0u) | (sub->f.device[0] ? 1u : 0u);
}

int hub_index_add(hub_index_t *x, struct hub_sub *sub)
{
    char key[HUB_INDEX_KEY];
    struct hub_bucket *b;
    int rc = IOT_ENOMEM;
    bool fresh = false;
    struct hub_sub **all = iot_grow(x->all, x->n, &x->cap, 16, sizeof(*all));
    if (!all)
        goto out;
    x->all = all;
    make_key(key, sub->f.tenant, sub->f.device);
    if (!(b = bucket_of(x, key))) {
        size_t len = strlen(key) + 1;
        if (!(b = calloc(1, sizeof(*b) + len)))
            goto out;
        memcpy(b->key, key, len);
        fresh = true;
    }
    struct hub_sub **subs = iot_grow(b->subs, b->n, &b->cap, 4, sizeof(*subs));
    if (!subs)
        goto out;
    b->subs = subs;
    if (fresh && iot_strmap_insert(&x->buckets, &b->node, b->key) != IOT_OK)
        goto out;
    fresh = false; /* the table owns it now */
    sub->bucket = b;
    sub->bucket_pos = b->n;
    b->subs[b->n++] = sub;
    sub->all_pos = x->n;
    x->all[x->n++] = sub;
    x->npresence += sub->f.presence;
    x->shapes[shape_of(sub)]++;
    rc = IOT_OK;
out:
    if (fresh) {
        free(b->subs);
        free(b);
    }
    return rc;
}

void hub_index_remove(hub_index_t *x, struct hub_sub *sub)
{
    struct hub_bucket *b = sub->bucket;
    b->subs[sub->bucket_pos] = b->subs[--b->n];
    b->subs[sub->bucket_pos]->bucket_pos = sub->bucket_pos;
    if (b->n == 0) {
        iot_strmap_remove(&x->buckets, &b->node);
        free(b->subs);
        free(b);
    }
    x->all[sub->all_pos] = x->all[--x->n];
    x->all[sub->all_pos]->all_pos = sub->all_pos;
    x->npresence -= sub->f.presence;
    x->shapes[shape_of(sub)]--;
    sub->bucket = NULL;
}

size_t hub_index_candidates(const hub_index_t *x, const char *tenant, const char *device,
                            struct hub_sub **local, size_t nlocal, struct hub_sub ***out)
{
    /* An item without a tenant or device (none today) has fewer distinct buckets: each key
     * is looked up once, so no subscriber is a candidate twice. */
    const char *tenants[2] = {"", tenant}, *devices[2] = {"", device};
    const struct hub_bucket *found[4];
    size_t nfound = 0, total = 0;
    char key[HUB_INDEX_KEY];
    if (x->n <= HUB_INDEX_SCAN) {
        /* So few that testing them all costs less than four lookups. */
        if (x->n)
            memcpy(local, x->all, x->n * sizeof(*local));
        *out = local;
        return x->n;
    }
    for (int t = 0; t < (tenant[0] ? 2 : 1); t++)
        for (int d = 0; d < (device[0] ? 2 : 1); d++) {
            if (!x->shapes[t * 2 + d])
                continue;
            make_key(key, tenants[t], devices[d]);
            const struct hub_bucket *b = bucket_of(x, key);
            if (b) {
                found[nfound++] = b;
                total += b->n;
            }
        }
    struct hub_sub **dst = local;
    if (total > nlocal && !(dst = malloc(total * sizeof(*dst))))
        return (size_t)-1;
    size_t n = 0;
    for (size_t i = 0; i < nfound; i++) {
        memcpy(dst + n, found[i]->subs, found[i]->n * sizeof(*dst));
        n += found[i]->n;
    }
    *out = dst;
    return n;
}

void hub_index_free(hub_index_t *x)
{
    struct iot_strmap_walk w = {0};
    struct iot_strmap_node *node;
    while ((node = iot_strmap_walk(&x->buckets, &w))) {
        struct hub_bucket *b = container_of(node, struct hub_bucket, node);
        free(b->subs);
        free(b);
    }
    iot_strmap_free(&x->buckets);
    free(x->all);
    *x = (hub_index_t){0};
}
