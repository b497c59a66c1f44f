/*
 * cluster_ids.h - the requests a node has sent to other nodes, by their id: how an answer
 * finds its request.
 *
 * A linear search over the requests in flight cost each answer a walk of the deadline list
 * (fine at 16 in flight, thousands of steps at thousands). This is an open-addressing table
 * (linear probing, a multiplicative hash of the id, at most half full, deletion by backward
 * shift so that no tombstones pile up): one or two probes per answer whatever the number in
 * flight. Ids are the sender's own, nonzero, and unique among the requests in flight. Not
 * thread-safe: the main loop's.
 */
#ifndef IOTD_CLUSTER_IDS_H
#define IOTD_CLUSTER_IDS_H

#include <stddef.h>
#include <stdint.h>

struct cluster_id_slot {
    uint32_t id; /* 0: free */
    void *value;
};

/* Zeroed: empty, owning nothing. */
struct cluster_ids {
    struct cluster_id_slot *slots;
    size_t mask; /* slots - 1 (a power of two), when slots */
    size_t count;
};

/* Map id (nonzero, not in t) to value. IOT_OK, IOT_EINVAL (id 0), IOT_ENOMEM (t unchanged). */
int cluster_ids_put(struct cluster_ids *t, uint32_t id, void *value);
/* The value of id, or NULL. */
void *cluster_ids_get(const struct cluster_ids *t, uint32_t id);
/* Remove id and return its value (NULL if it was not there). */
void *cluster_ids_take(struct cluster_ids *t, uint32_t id);
void cluster_ids_free(struct cluster_ids *t);

#endif
