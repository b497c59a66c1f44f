/*
 * ratelimit.h - authentication failures counted per key (peer address, device id), shared by
 * all io threads, and the jittered retry hint sent with every refusal.
 *
 * A key with `threshold` failures (given per call: an address shared by a NATed fleet deserves
 * more than one device id) within `window_ms` is blocked for `block_ms`, doubling for
 * each further block up to `max_block_ms`; while blocked, its attempts are refused before any
 * cryptography runs. The table has a fixed number of slots (memory is bounded whatever an
 * attacker sends); a collision evicts the older key, which at worst forgets some failures.
 */
#ifndef IOTD_RATELIMIT_H
#define IOTD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

struct ratelimit_options {
    uint32_t window_ms;     /* counting window (default 60 s) */
    uint32_t block_ms;      /* first block (default 30 s) */
    uint32_t max_block_ms;  /* cap of the doubling (default 15 min) */
    uint32_t retry_base_ms; /* hint after a single failure (default 5 s) */
};

int ratelimit_new(ratelimit_t **out, const struct ratelimit_options *o);
void ratelimit_free(ratelimit_t *rl);

/* Is key blocked at now_ms? If so, *retry_s gets the jittered wait. */
bool ratelimit_blocked(ratelimit_t *rl, const char *key, int64_t now_ms, uint32_t *retry_s);
/* Count a failure of key, blocking it at threshold failures in the window; returns the
 * jittered retry hint in seconds for the refusal. */
uint32_t ratelimit_fail(ratelimit_t *rl, const char *key, unsigned threshold, int64_t now_ms);
/* Forget key's failures (after a success). */
void ratelimit_reset(ratelimit_t *rl, const char *key);

#endif
