/*
 * sim_backoff.h - when a simulated device may try to connect again.
 *
 * Jittered exponential backoff with "full jitter": after the k-th failure in a row the delay is
 * uniform in [0, min(cap, base * 2^k)], so a fleet that lost its server spreads its reconnects
 * instead of arriving in waves. A server's `ERROR code=auth retry=N` is a floor: the delay is
 * then N seconds plus the same jitter. A connection that stayed authenticated for the stable
 * period proves the server healthy again, so the next failure starts over from base.
 *
 * Pure arithmetic: time and randomness come in as arguments, so it is tested without clocks.
 */
#ifndef SIM_BACKOFF_H
#define SIM_BACKOFF_H

#include <stdint.h>

struct sim_backoff_params {
    uint64_t base_ms;   /* first window (500) */
    uint64_t cap_ms;    /* largest window (60000) */
    uint64_t stable_ms; /* authenticated this long resets the backoff (30000) */
};

#define SIM_BACKOFF_DEFAULTS                                                                       \
    {                                                                                              \
        500, 60000, 30000                                                                          \
    }

struct sim_backoff {
    struct sim_backoff_params params;
    unsigned failures;         /* failures since the last reset */
    uint64_t authenticated_ms; /* when the current connection authenticated */
    int authenticated;         /* the current connection is authenticated */
};

void sim_backoff_init(struct sim_backoff *b, const struct sim_backoff_params *params);

/* The connection authenticated at now_ms. */
void sim_backoff_authenticated(struct sim_backoff *b, uint64_t now_ms);

/* The connection ended (or failed) at now_ms: return how long to wait before the next attempt,
 * in ms. retry_hint_s is the server's retry= (0 if none); random is a uniformly distributed
 * 32-bit value for the jitter. Counts one more failure. */
uint64_t sim_backoff_next_ms(struct sim_backoff *b, uint64_t now_ms, uint32_t retry_hint_s,
                             uint32_t random);

/* The current jitter window in ms: min(cap, base * 2^failures). */
uint64_t sim_backoff_window_ms(const struct sim_backoff *b);

#endif
