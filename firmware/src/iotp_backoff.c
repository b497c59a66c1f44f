/*
 * iotp_backoff.c - jittered exponential backoff (contract in iotp_backoff.h).
 */
#include "iotp/iotp_backoff.h"

#include <string.h>

void iotp_backoff_init(struct iotp_backoff *b, const struct iotp_backoff_params *params)
{
    memset(b, 0, sizeof(*b));
    if (params)
        b->params = *params;
    if (b->params.base_ms == 0)
        b->params.base_ms = IOTP_BACKOFF_BASE_MS;
    if (b->params.cap_ms == 0)
        b->params.cap_ms = IOTP_BACKOFF_CAP_MS;
    if (b->params.stable_ms == 0)
        b->params.stable_ms = IOTP_BACKOFF_STABLE_MS;
}

void iotp_backoff_authenticated(struct iotp_backoff *b, uint64_t now_ms)
{
    b->authenticated = 1;
    b->authenticated_ms = now_ms;
}

uint32_t iotp_backoff_window_ms(const struct iotp_backoff *b)
{
    uint32_t window = b->params.base_ms;

    /* Doubling stops at the cap, which also keeps it from overflowing 32 bits. */
    for (unsigned i = 0; i < b->failures && window < b->params.cap_ms; i++)
        window = window > UINT32_MAX / 2 ? UINT32_MAX : window * 2;
    return window < b->params.cap_ms ? window : b->params.cap_ms;
}

uint32_t iotp_backoff_next_ms(struct iotp_backoff *b, uint64_t now_ms, uint32_t retry_hint_s,
                              uint32_t random)
{
    uint32_t window, delay;

    if (b->authenticated && now_ms - b->authenticated_ms >= b->params.stable_ms)
        b->failures = 0;
    b->authenticated = 0;
    window = iotp_backoff_window_ms(b);
    /* random is 32 bits, the window at most a few minutes: the modulo bias is negligible. */
    delay = window == UINT32_MAX ? random : random % (window + 1);
    if (retry_hint_s > IOTP_BACKOFF_MAX_HINT_S)
        retry_hint_s = IOTP_BACKOFF_MAX_HINT_S;
    if (retry_hint_s > 0)
        delay =
            delay > UINT32_MAX - retry_hint_s * 1000u ? UINT32_MAX : delay + retry_hint_s * 1000u;
    if (b->failures < 64)
        b->failures++;
    return delay;
}
