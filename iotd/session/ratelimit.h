/*
 * ratelimit.h - authentication failures counted per key, shared by all io threads, the
 * authentication policy built on them, and the jittered retry hint sent with every refusal.
 *
 * A key with its threshold of failures within `window_ms` is blocked for `block_ms`,
 * doubling for each further block up to `max_block_ms`; while blocked, its attempts are
 * refused before any cryptography runs. The table has a fixed number of slots
 * (memory is bounded whatever an attacker sends); a collision evicts the older key, which at
 * worst forgets some failures.
 *
 * The authentication policy (ratelimit_auth_*, iotd.conf(5) auth_fail_limit = L) limits by
 * (address, id) first, so that knowing a device id is not enough to lock the device out:
 *  - L failures a minute of one id from one address block that pair;
 *  - 10 L failures a minute from one address, whatever the ids, block the address (a NATed
 *    fleet shares one, hence the factor);
 *  - 20 L failures a minute of one id, whatever the addresses, block the id, except at the
 *    addresses it last authenticated from: the legitimate device at its usual address is
 *    never refused by what others do with its id.
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

/* Factors of the policy over auth_fail_limit (see above). */
#define RATELIMIT_ADDRESS_FACTOR 10
#define RATELIMIT_ID_FACTOR      20

int ratelimit_new(ratelimit_t **out, const struct ratelimit_options *o);
void ratelimit_free(ratelimit_t *rl);

/* One authentication attempt: kind 'd' (a device's handshake) or 'u' (a user's LOGIN), the id
 * it claims, the peer ("203.0.113.7:51234": the port is ignored), and auth_fail_limit. */
struct ratelimit_auth {
    char kind;
    const char *id;
    const char *peer;
    unsigned limit;
};

/* Is the attempt refused before any cryptography? If so, *retry_s gets the hint. */
bool ratelimit_auth_blocked(ratelimit_t *rl, const struct ratelimit_auth *a, int64_t now_ms,
                            uint32_t *retry_s);
/* Count a failed attempt against its pair, its address and its id; returns the hint for the
 * refusal (the longest of the three). */
uint32_t ratelimit_auth_failed(ratelimit_t *rl, const struct ratelimit_auth *a, int64_t now_ms);
/* A successful attempt: its pair's failures are forgotten and its address becomes one the id
 * is not blocked at. The id's own count is kept: others' failures are not forgiven by it. */
void ratelimit_auth_succeeded(ratelimit_t *rl, const struct ratelimit_auth *a);

#endif
