/*
 * sim_backoff.c - jittered exponential backoff (contract in sim_backoff.h).
 */
#include "sim_backoff.h"

#include <string.h>

void sim_backoff_init(struct sim_backoff *b, const struct sim_backoff_params *params)
{
    memset(b, 0, sizeof(*b));
    b->params = *params;
}

void sim_backoff_authenticated(struct sim_backoff *b, uint64_t now_ms)
{
    b->authenticated = 1;
    b->authenticated_ms = now_ms;
}

uint64_t sim_backoff_window_ms(const struct sim_backoff *b)
{
    uint64_t window = b->params.base_ms;

    /* Doubling stops at the cap, which also keeps the shift from overflowing. */
    for (unsigned i = 0; i < b->failures && window < b->params.cap_ms; i++)
        window *= 2;
    return window < b->params.cap_ms ? window : b->params.cap_ms;
}

uint64_t sim_backoff_next_ms(struct sim_backoff *b, uint64_t now_ms, uint32_t retry_hint_s,
                             uint32_t random)
{
    uint64_t window, delay;

    if (b->authenticated && now_ms - b->authenticated_ms >= b->params.stable_ms)
        b->failures = 0;
    b->authenticated = 0;
    window = sim_backoff_window_ms(b);
    /* random is 32 bits, the window at most a few minutes: the modulo bias is negligible. */
    delay = (uint64_t)random % (window + 1);
    if (retry_hint_s > 0)
        delay += (uint64_t)retry_hint_s * 1000;
    if (b->failures < 64)
        b->failures++;
    return delay;
}
