/*
 * iotp_sha256.c - SHA-256 per FIPS 180-4, HMAC-SHA-256 per RFC 2104, constant-time compare.
 *
 * Plain portable C99: words are assembled from bytes explicitly (big-endian, as the standard
 * says), so the code is the same on a little-endian Cortex-M0+, an Xtensa and x86-64 and needs
 * no alignment. Written for size (a device hashes only a handshake): the compression function
 * keeps the 64-word message schedule in a 16-word ring to save 192 bytes of stack on small
 * devices.
 */
#include "iotp/iotp_sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The working variables a..h are v[0..7]; each round shifts them down by one instead of naming
 * eight registers, which on a Cortex-M0 (8 low registers) is both smaller and no slower. */
static void compress(uint32_t state[8], const uint8_t block[IOTP_SHA256_BLOCK])
{
    uint32_t w[16], v[8];
    unsigned t;

    memcpy(v, state, sizeof(v));
    for (t = 0; t < 64; t++) {
        uint32_t *wt = &w[t & 15], t1, t2, x;

        if (t < 16) {
            *wt = load_be32(block + 4 * t);
        } else {
            /* W[t] = sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16], in the ring. */
            uint32_t w2 = w[(t - 2) & 15], w15 = w[(t - 15) & 15];
            *wt += (rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)) +
                   (rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10)) + w[(t - 7) & 15];
        }
        /* Ch(e,f,g) and Maj(a,b,c) in their forms with fewer operations, each argument read
         * into x once (fewer loads on a Cortex-M0). */
        x = v[4];
        t1 = v[7] + (rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25)) + (v[6] ^ (x & (v[5] ^ v[6]))) + K[t] +
             *wt;
        x = v[0];
        t2 = (rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22)) + ((x & v[1]) | (v[2] & (x | v[1])));
        memmove(v + 1, v, 7 * sizeof(v[0]));
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (t = 0; t < 8; t++)
        state[t] += v[t];
}

void iotp_sha256_init(struct iotp_sha256 *c)
{
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

    memcpy(c->state, initial, sizeof(initial));
    c->total = 0;
    c->used = 0;
}

void iotp_sha256_update(struct iotp_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;

    /* A byte at a time through the block: the copy is small next to compress(), and a device
     * hashes only a handshake's worth of bytes. */
    c->total += len;
    while (len--) {
        c->block[c->used++] = *p++;
        if (c->used == IOTP_SHA256_BLOCK) {
            compress(c->state, c->block);
            c->used = 0;
        }
    }
}

void iotp_sha256_final(struct iotp_sha256 *c, uint8_t digest[IOTP_SHA256_LEN])
{
    uint64_t bits = c->total * 8;
    uint8_t pad[8] = {0x80};
    unsigned i;

    /* Padding through update: 0x80, zeros up to 56 mod 64, then the message length in bits,
     * big-endian. A byte at a time is slow only for the few padding bytes and saves code. */
    iotp_sha256_update(c, pad, 1);
    pad[0] = 0;
    while (c->used != IOTP_SHA256_BLOCK - 8)
        iotp_sha256_update(c, pad, 1);
    store_be32(pad, (uint32_t)(bits >> 32));
    store_be32(pad + 4, (uint32_t)bits);
    iotp_sha256_update(c, pad, 8);
    for (i = 0; i < 8; i++)
        store_be32(digest + 4 * i, c->state[i]);
    iotp_wipe(c, sizeof(*c));
}

void iotp_sha256(const void *data, size_t len, uint8_t digest[IOTP_SHA256_LEN])
{
    struct iotp_sha256 c;

    iotp_sha256_init(&c);
    iotp_sha256_update(&c, data, len);
    iotp_sha256_final(&c, digest);
}

void iotp_hmac_sha256_init(struct iotp_hmac_sha256 *c, const uint8_t *key, size_t key_len)
{
    uint8_t pad[IOTP_SHA256_BLOCK];
    uint8_t hashed_key[IOTP_SHA256_LEN];
    unsigned i;

    if (key_len > IOTP_SHA256_BLOCK) {
        iotp_sha256(key, key_len, hashed_key);
        key = hashed_key;
        key_len = IOTP_SHA256_LEN;
    }
    for (i = 0; i < IOTP_SHA256_BLOCK; i++)
        pad[i] = (uint8_t)((i < key_len ? key[i] : 0) ^ 0x36);
    iotp_sha256_init(&c->inner);
    iotp_sha256_update(&c->inner, pad, sizeof(pad));
    /* 0x36 ^ 0x5c turns the inner pad into the outer pad without keeping the key around. */
    for (i = 0; i < IOTP_SHA256_BLOCK; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    iotp_sha256_init(&c->outer);
    iotp_sha256_update(&c->outer, pad, sizeof(pad));
    iotp_wipe(pad, sizeof(pad));
    iotp_wipe(hashed_key, sizeof(hashed_key));
}

void iotp_hmac_sha256_update(struct iotp_hmac_sha256 *c, const void *data, size_t len)
{
    iotp_sha256_update(&c->inner, data, len);
}

void iotp_hmac_sha256_final(struct iotp_hmac_sha256 *c, uint8_t mac[IOTP_SHA256_LEN])
{
    uint8_t inner[IOTP_SHA256_LEN];

    iotp_sha256_final(&c->inner, inner);
    iotp_sha256_update(&c->outer, inner, sizeof(inner));
    iotp_sha256_final(&c->outer, mac);
    iotp_wipe(inner, sizeof(inner));
}

void iotp_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[IOTP_SHA256_LEN])
{
    struct iotp_hmac_sha256 c;

    iotp_hmac_sha256_init(&c, key, key_len);
    iotp_hmac_sha256_update(&c, data, len);
    iotp_hmac_sha256_final(&c, mac);
}

int iotp_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t diff = 0;
    size_t i;

    /* No early exit: the loop always reads every byte, and the result is derived without a
     * data-dependent branch. volatile keeps the compiler from turning it into memcmp. */
    for (i = 0; i < len; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return (int)(1 & ((diff - 1u) >> 8));
}

void iotp_wipe(void *p, size_t len)
{
    volatile uint8_t *v = p;

    while (len--)
        *v++ = 0;
}
