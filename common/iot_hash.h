/*
 * iot_hash.h - FNV-1a, the one string hash of the project.
 *
 * Hash tables of names (presence, the relay's caches, rate limits, sequence numbers, alarm
 * state) and the io-thread placement of tenants all hash short names; FNV-1a is cheap on them
 * and good enough for power-of-two tables. The functions chain: pass the previous result as
 * the seed to hash several fields as one key. Inline because they run once per message.
 */
#ifndef IOT_HASH_H
#define IOT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define IOT_FNV32_SEED 0x811c9dc5u
#define IOT_FNV64_SEED 0xcbf29ce484222325ull

/* 32-bit FNV-1a of len bytes, continuing from h (IOT_FNV32_SEED to start). */
static inline uint32_t iot_fnv32(uint32_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* 32-bit FNV-1a of a NUL-terminated string (without its NUL), continuing from h. */
static inline uint32_t iot_fnv32_str(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* 64-bit FNV-1a of len bytes, continuing from h (IOT_FNV64_SEED to start). */
static inline uint64_t iot_fnv64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* 64-bit FNV-1a of a NUL-terminated string (without its NUL), continuing from h. */
static inline uint64_t iot_fnv64_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

#endif
