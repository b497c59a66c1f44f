/*
 * ratelimit.c - failure counting with bounded memory (see ratelimit.h).
 *
 * Slots are grouped in stripes, each with its own mutex; a key hashes to one slot. Jitter
 * comes from a per-call xorshift seeded from the key's hash and the time: it only has to
 * spread a fleet's reconnects, not be unpredictable.
 */
#include "session/ratelimit.h"

#include "iot_error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_SLOTS   16384
#define RATELIMIT_STRIPES 64
#define RATELIMIT_KEY_MAX 80

struct slot {
    char key[RATELIMIT_KEY_MAX];
    unsigned failures;
    unsigned blocks; /* consecutive blocks, for the doubling */
    int64_t window_start_ms;
    int64_t blocked_until_ms;
};

struct ratelimit {
    struct ratelimit_options o;
    pthread_mutex_t locks[RATELIMIT_STRIPES];
    struct slot slots[RATELIMIT_SLOTS];
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

int ratelimit_new(ratelimit_t **out, const struct ratelimit_options *o)
{
    ratelimit_t *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return IOT_ENOMEM;
    rl->o = *o;
    if (!rl->o.window_ms)
        rl->o.window_ms = 60000;
    if (!rl->o.block_ms)
        rl->o.block_ms = 30000;
    if (!rl->o.max_block_ms)
        rl->o.max_block_ms = 15 * 60000;
    if (!rl->o.retry_base_ms)
        rl->o.retry_base_ms = 5000;
    for (int i = 0; i < RATELIMIT_STRIPES; i++)
        pthread_mutex_init(&rl->locks[i], NULL);
    *out = rl;
    return IOT_OK;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < RATELIMIT_STRIPES; i++)
        pthread_mutex_destroy(&rl->locks[i]);
    free(rl);
}

/* base plus a uniform jitter of up to base, in whole seconds, at least 1. */
static uint32_t jittered_s(uint64_t seed, int64_t base_ms)
{
    uint64_t x = seed ^ 0x9E3779B97F4A7C15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int64_t ms = base_ms + (int64_t)(x % (uint64_t)(base_ms > 0 ? base_ms : 1));
    uint32_t s = (uint32_t)((ms + 999) / 1000);
    return s ? s : 1;
}

/* Lock the key's stripe and return its slot (claimed for key if another key held it). */
static struct slot *acquire(ratelimit_t *rl, const char *key, uint64_t h, pthread_mutex_t **lock)
{
    size_t index = h % RATELIMIT_SLOTS;
    *lock = &rl->locks[index % RATELIMIT_STRIPES];
    pthread_mutex_lock(*lock);
    struct slot *s = &rl->slots[index];
    if (strncmp(s->key, key, RATELIMIT_KEY_MAX) != 0) {
        memset(s, 0, sizeof(*s));
        strncpy(s->key, key, RATELIMIT_KEY_MAX - 1);
    }
    return s;
}

bool ratelimit_blocked(ratelimit_t *rl, const char *key, int64_t now_ms, uint32_t *retry_s)
{
    uint64_t h = hash_key(key);
    size_t index = h % RATELIMIT_SLOTS;
    pthread_mutex_t *lock = &rl->locks[index % RATELIMIT_STRIPES];
    bool blocked = false;
    pthread_mutex_lock(lock);
    struct slot *s = &rl->slots[index];
    /* Only look: a lookup must not evict another key's failures. */
    if (strncmp(s->key, key, RATELIMIT_KEY_MAX) == 0 && s->blocked_until_ms > now_ms) {
        blocked = true;
        *retry_s = jittered_s(h ^ (uint64_t)now_ms, s->blocked_until_ms - now_ms);
    }
    pthread_mutex_unlock(lock);
    return blocked;
}

uint32_t ratelimit_fail(ratelimit_t *rl, const char *key, unsigned threshold, int64_t now_ms)
{
    uint64_t h = hash_key(key);
    pthread_mutex_t *lock;
    struct slot *s = acquire(rl, key, h, &lock);
    int64_t wait_ms = rl->o.retry_base_ms;

    if (now_ms - s->window_start_ms > rl->o.window_ms) {
        s->window_start_ms = now_ms;
        s->failures = 0;
    }
    if (++s->failures >= (threshold ? threshold : 1)) {
        uint64_t block = (uint64_t)rl->o.block_ms << (s->blocks < 16 ? s->blocks : 16);
        if (block > rl->o.max_block_ms)
            block = rl->o.max_block_ms;
        s->blocked_until_ms = now_ms + (int64_t)block;
        s->blocks++;
        s->failures = 0;
        s->window_start_ms = now_ms;
        wait_ms = (int64_t)block;
    }
    pthread_mutex_unlock(lock);
    return jittered_s(h ^ (uint64_t)now_ms, wait_ms);
}

void ratelimit_reset(ratelimit_t *rl, const char *key)
{
    uint64_t h = hash_key(key);
    size_t index = h % RATELIMIT_SLOTS;
    pthread_mutex_t *lock = &rl->locks[index % RATELIMIT_STRIPES];
    pthread_mutex_lock(lock);
    struct slot *s = &rl->slots[index];
    if (strncmp(s->key, key, RATELIMIT_KEY_MAX) == 0)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(lock);
}
