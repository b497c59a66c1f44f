/*
 * ratelimit.c - failure counting with bounded memory, and the authentication policy on top
 * (see ratelimit.h).
 *
 * Slots are grouped in stripes, each with its own mutex; a key hashes to one slot and is held
 * there by its 64-bit hash (a key may be a 128-byte device id with an address: the hash keeps
 * slots small and long ids apart). Jitter comes from a per-call xorshift seeded from the key's
 * hash and the time: it only has to spread a fleet's reconnects, not be unpredictable.
 *
 * The addresses an id last authenticated from live in a table of their own, written only on a
 * success: an attacker without the key cannot evict them by flooding failures.
 */
#include "session/ratelimit.h"

#include "iot_error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_SLOTS   16384
#define RATELIMIT_STRIPES 64
#define TRUST_SLOTS       65536 /* ids with known-good addresses: 1.5 MiB */
#define TRUST_ADDRESSES   2     /* per id: a device that moves between two networks */

struct slot {
    uint64_t hash; /* of the key; 0 = free */
    unsigned failures;
    unsigned blocks; /* consecutive blocks, for the doubling */
    int64_t window_start_ms;
    int64_t blocked_until_ms;
};

struct trust {
    uint64_t id;                       /* hash of kind and id; 0 = free */
    uint64_t address[TRUST_ADDRESSES]; /* hashes, newest first */
};

struct ratelimit {
    struct ratelimit_options o;
    pthread_mutex_t locks[RATELIMIT_STRIPES];
    struct slot slots[RATELIMIT_SLOTS];
    struct trust trusted[TRUST_SLOTS];
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h ? h : 1; /* 0 marks a free slot */
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

static pthread_mutex_t *lock_of(ratelimit_t *rl, size_t index)
{
    return &rl->locks[index % RATELIMIT_STRIPES];
}

static bool blocked_hash(ratelimit_t *rl, uint64_t h, int64_t now_ms, uint32_t *retry_s)
{
    size_t index = h % RATELIMIT_SLOTS;
    pthread_mutex_t *lock = lock_of(rl, index);
    bool blocked = false;
    pthread_mutex_lock(lock);
    const struct slot *s = &rl->slots[index];
    /* Only look: a lookup must not evict another key's failures. */
    if (s->hash == h && s->blocked_until_ms > now_ms) {
        blocked = true;
        *retry_s = jittered_s(h ^ (uint64_t)now_ms, s->blocked_until_ms - now_ms);
    }
    pthread_mutex_unlock(lock);
    return blocked;
}

static uint32_t fail_hash(ratelimit_t *rl, uint64_t h, unsigned threshold, int64_t now_ms)
{
    size_t index = h % RATELIMIT_SLOTS;
    pthread_mutex_t *lock = lock_of(rl, index);
    int64_t wait_ms = rl->o.retry_base_ms;
    pthread_mutex_lock(lock);
    struct slot *s = &rl->slots[index];
    if (s->hash != h)
        *s = (struct slot){.hash = h}; /* claimed: the older key's failures are forgotten */
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

static void reset_hash(ratelimit_t *rl, uint64_t h)
{
    size_t index = h % RATELIMIT_SLOTS;
    pthread_mutex_t *lock = lock_of(rl, index);
    pthread_mutex_lock(lock);
    struct slot *s = &rl->slots[index];
    if (s->hash == h)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(lock);
}

/* ---- the authentication policy ---- */

struct auth_keys {
    uint64_t pair, address, id;
};

/* The hashes of an attempt's three keys. The id comes last in the pair's key and is cut at
 * 256 bytes, beyond any id the protocol allows. */
static struct auth_keys auth_keys(const struct ratelimit_auth *a)
{
    char buf[400];
    const char *colon = strrchr(a->peer, ':');
    int alen = colon ? (int)(colon - a->peer) : (int)strlen(a->peer);
    struct auth_keys k;
    snprintf(buf, sizeof(buf), "a:%.*s", alen, a->peer);
    k.address = hash_key(buf);
    snprintf(buf, sizeof(buf), "%c:%.256s", a->kind, a->id);
    k.id = hash_key(buf);
    snprintf(buf, sizeof(buf), "p:%.*s|%c:%.256s", alen, a->peer, a->kind, a->id);
    k.pair = hash_key(buf);
    return k;
}

static bool trusted_at(ratelimit_t *rl, const struct auth_keys *k)
{
    size_t index = k->id % TRUST_SLOTS;
    pthread_mutex_t *lock = lock_of(rl, index);
    bool trusted = false;
    pthread_mutex_lock(lock);
    const struct trust *t = &rl->trusted[index];
    for (int i = 0; t->id == k->id && i < TRUST_ADDRESSES; i++)
        trusted |= t->address[i] == k->address;
    pthread_mutex_unlock(lock);
    return trusted;
}

bool ratelimit_auth_blocked(ratelimit_t *rl, const struct ratelimit_auth *a, int64_t now_ms,
                            uint32_t *retry_s)
{
    struct auth_keys k = auth_keys(a);
    return blocked_hash(rl, k.pair, now_ms, retry_s) ||
           blocked_hash(rl, k.address, now_ms, retry_s) ||
           (blocked_hash(rl, k.id, now_ms, retry_s) && !trusted_at(rl, &k));
}

uint32_t ratelimit_auth_failed(ratelimit_t *rl, const struct ratelimit_auth *a, int64_t now_ms)
{
    struct auth_keys k = auth_keys(a);
    unsigned limit = a->limit ? a->limit : 1;
    uint32_t r1 = fail_hash(rl, k.pair, limit, now_ms);
    uint32_t r2 = fail_hash(rl, k.address, limit * RATELIMIT_ADDRESS_FACTOR, now_ms);
    uint32_t r3 = fail_hash(rl, k.id, limit * RATELIMIT_ID_FACTOR, now_ms);
    uint32_t r = r1 > r2 ? r1 : r2;
    return r > r3 ? r : r3;
}

void ratelimit_auth_succeeded(ratelimit_t *rl, const struct ratelimit_auth *a)
{
    struct auth_keys k = auth_keys(a);
    reset_hash(rl, k.pair);
    size_t index = k.id % TRUST_SLOTS;
    pthread_mutex_t *lock = lock_of(rl, index);
    pthread_mutex_lock(lock);
    struct trust *t = &rl->trusted[index];
    if (t->id != k.id)
        *t = (struct trust){.id = k.id};
    if (t->address[0] != k.address) {
        memmove(&t->address[1], &t->address[0], sizeof(t->address) - sizeof(t->address[0]));
        t->address[0] = k.address;
    }
    pthread_mutex_unlock(lock);
}
