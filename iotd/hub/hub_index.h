/*
 * hub_index.h - the hub's subscribers, indexed by what every item carries: its tenant and its
 * device.
 *
 * A subscriber's filter names a tenant or none (an operator's every-tenant stream) and a device
 * or none, and an item can only match it when both agree (hub.c's sub_matches tests them
 * first). So subscribers are kept in buckets keyed by the pair (tenant, device) of their
 * filter, and an item of (t, d) has at most four buckets to look at: ("", ""), ("", d),
 * (t, "") and (t, d). 10,000 subscribers watching other devices cost an item four hash
 * lookups, not 10,000 filter tests; the candidates are then tested in full as before. A
 * handful of subscribers (HUB_INDEX_SCAN) are all candidates: scanning them is cheaper.
 *
 * Every subscriber is also in one array (stats, a session's subscriptions, unsubscribing by
 * id). Adding and removing are O(1) (a subscriber knows its slot in both). Main loop only.
 */
#ifndef IOTD_HUB_INDEX_H
#define IOTD_HUB_INDEX_H

#include "iot_strmap.h"

#include <stddef.h>

struct hub_sub;

typedef struct hub_index {
    iot_strmap_t buckets; /* "tenant\x1fdevice" -> struct hub_bucket */
    struct hub_sub **all; /* every subscriber, in no particular order */
    size_t n, cap;
    size_t npresence; /* subscribers whose filter asks for presence changes */
    size_t shapes[4]; /* subscribers by shape: tenant given (2), device given (1) */
} hub_index_t;

/* Index sub by its filter (sub->f, which must not change while indexed). IOT_OK, or
 * IOT_ENOMEM with nothing changed. */
int hub_index_add(hub_index_t *x, struct hub_sub *sub);
/* Take sub (indexed) out; the caller still owns its memory. */
void hub_index_remove(hub_index_t *x, struct hub_sub *sub);

/* Up to this many subscribers, every one is a candidate (nlocal must be at least this): a
 * filter that fails costs ~10 instructions' worth of strcmp, the lookups ~550 instructions
 * per item (callgrind on tests/bench/hub/hub_bench.c with 10 watchers). */
#define HUB_INDEX_SCAN 32

/* The subscribers an item of (tenant, device) may match, each once: in local (room for nlocal)
 * when they fit, else in an array allocated here. *out is set to the array used and the count
 * returned; the caller frees *out when it is not local. (size_t)-1 when out of memory. */
size_t hub_index_candidates(const hub_index_t *x, const char *tenant, const char *device,
                            struct hub_sub **local, size_t nlocal, struct hub_sub ***out);

/* Forget everything (the subscribers' memory is the caller's: free it first). */
void hub_index_free(hub_index_t *x);

#endif
