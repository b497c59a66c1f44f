/*
 * seq_cache.h - device id -> the highest sequence number known to be durable (stored or
 * spooled). A hint used while spooling to recognise retransmissions of durable events; the
 * database's event_seq is the authority. Single-threaded (the store's main loop).
 */
#ifndef IOTD_EVENTS_SEQ_CACHE_H
#define IOTD_EVENTS_SEQ_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct seq_cache seq_cache_t;

seq_cache_t *seq_cache_new(void);
void seq_cache_free(seq_cache_t *c);
/* true and *seq if device is known. */
bool seq_cache_get(const seq_cache_t *c, const char *device, uint32_t *seq);
/* Raise device's value to seq (never lowers it). IOT_ENOMEM: the cache is only a hint, so a
 * caller may ignore it. */
int seq_cache_raise(seq_cache_t *c, const char *device, uint32_t seq);
/* Set device's value to seq, lower or higher: for what the database just said is its mark
 * (a device removed and added again starts over below its old mark). IOT_ENOMEM as above. */
int seq_cache_set(seq_cache_t *c, const char *device, uint32_t seq);
size_t seq_cache_count(const seq_cache_t *c);

#endif
