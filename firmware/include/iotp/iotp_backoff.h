/*
 * iotp_backoff.h - when a device may try to connect again.
 *
 * Jittered exponential backoff with "full jitter": after the k-th failure in a row the delay is
 * uniform in [0, min(cap, base * 2^k)], so a fleet that lost its server spreads its reconnects
 * instead of arriving in waves. A server's `retry=N` (on `ERROR code=auth` or BYE) is a floor:
 * the delay is then N seconds plus the same jitter. A connection that stayed authenticated for
 * the stable period proves the server healthy again, so the next failure starts over from base.
 *
 * Pure arithmetic in 32-bit milliseconds (no 64-bit division on a Cortex-M0): time and
 * randomness come in as arguments, so it is tested without clocks.
 */
#ifndef IOTP_BACKOFF_H
#define IOTP_BACKOFF_H

#include <stdint.h>

#ifndef IOTP_BACKOFF_BASE_MS
#define IOTP_BACKOFF_BASE_MS 500
#endif
#ifndef IOTP_BACKOFF_CAP_MS
#define IOTP_BACKOFF_CAP_MS 60000
#endif
#ifndef IOTP_BACKOFF_STABLE_MS
#define IOTP_BACKOFF_STABLE_MS 30000
#endif
/* The largest retry= honoured, in seconds: a hint beyond it is taken as this. */
#ifndef IOTP_BACKOFF_MAX_HINT_S
#define IOTP_BACKOFF_MAX_HINT_S 3600
#endif

struct iotp_backoff_params {
    uint32_t base_ms;   /* first window; 0 means IOTP_BACKOFF_BASE_MS */
    uint32_t cap_ms;    /* largest window; 0 means IOTP_BACKOFF_CAP_MS */
    uint32_t stable_ms; /* authenticated this long resets the backoff; 0 means the default */
};

struct iotp_backoff {
    struct iotp_backoff_params params; /* with the defaults filled in */
    unsigned failures;                 /* failures since the last reset */
    uint64_t authenticated_ms;         /* when the current connection authenticated */
    int authenticated;                 /* the current connection is authenticated */
};

/* params may be NULL (all defaults). */
void iotp_backoff_init(struct iotp_backoff *b, const struct iotp_backoff_params *params);

/* The connection authenticated at now_ms. */
void iotp_backoff_authenticated(struct iotp_backoff *b, uint64_t now_ms);

/* The connection ended (or failed) at now_ms: return how long to wait before the next attempt,
 * in ms. retry_hint_s is the server's retry= (0 if none, capped at IOTP_BACKOFF_MAX_HINT_S);
 * random is a uniformly distributed 32-bit value for the jitter. Counts one more failure. */
uint32_t iotp_backoff_next_ms(struct iotp_backoff *b, uint64_t now_ms, uint32_t retry_hint_s,
                              uint32_t random);

/* The current jitter window in ms: min(cap, base * 2^failures). */
uint32_t iotp_backoff_window_ms(const struct iotp_backoff *b);

#endif
