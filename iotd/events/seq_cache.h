/*
 * seq_cache.h - device id -> the highest sequence number known to be durable (stored or
 * spooled), and the incarnation of the device row it counts for (event_incarnation_cmp). A hint
 * used while spooling to recognise retransmissions of durable events; the database's event_seq is
 * the authority. Single-threaded (the store's main loop).
 */
#ifndef IOTD_EVENTS_SEQ_CACHE_H
#define IOTD_EVENTS_SEQ_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct seq_cache seq_cache_t;

seq_cache_t *seq_cache_new(void);
void seq_cache_free(seq_cache_t *c);
/* true and *seq if device is known for incarnation inc. */
bool seq_cache_get(const seq_cache_t *c, const char *device, uint64_t inc, uint32_t *seq);
/* Raise device's value to seq (never lowers it) for incarnation inc; a later incarnation
 * replaces the value, an earlier one leaves it. IOT_ENOMEM: the cache is only a hint, so a
 * caller may ignore it. */
int seq_cache_raise(seq_cache_t *c, const char *device, uint64_t inc, uint32_t seq);
/* Set device's value to seq, lower or higher, unless inc is an earlier incarnation: for what
 * the database just said is its mark. IOT_ENOMEM as above. */
int seq_cache_set(seq_cache_t *c, const char *device, uint64_t inc, uint32_t seq);
size_t seq_cache_count(const seq_cache_t *c);

#endif
