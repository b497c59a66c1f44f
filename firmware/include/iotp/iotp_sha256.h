/*
 * iotp_sha256.h - SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104) and a constant-time compare.
 *
 * The library carries its own hash because a microcontroller has no OpenSSL; the code is
 * portable C99 with no tables beyond the 64 round constants and uses ~110 bytes of state.
 * Streaming (init/update/final) and one-shot forms; a context may be reused after final only
 * through a new init. Nothing here allocates or fails: inputs are trusted to be valid pointers.
 */
#ifndef IOTP_SHA256_H
#define IOTP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define IOTP_SHA256_LEN   32
#define IOTP_SHA256_BLOCK 64

struct iotp_sha256 {
    uint32_t state[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[IOTP_SHA256_BLOCK];
    size_t used; /* bytes pending in block */
};

void iotp_sha256_init(struct iotp_sha256 *c);
void iotp_sha256_update(struct iotp_sha256 *c, const void *data, size_t len);
/* Write the digest and wipe the context. */
void iotp_sha256_final(struct iotp_sha256 *c, uint8_t digest[IOTP_SHA256_LEN]);
void iotp_sha256(const void *data, size_t len, uint8_t digest[IOTP_SHA256_LEN]);

struct iotp_hmac_sha256 {
    struct iotp_sha256 inner;
    struct iotp_sha256 outer;
};

/* Keys longer than a block are hashed first, as RFC 2104 says. */
void iotp_hmac_sha256_init(struct iotp_hmac_sha256 *c, const uint8_t *key, size_t key_len);
void iotp_hmac_sha256_update(struct iotp_hmac_sha256 *c, const void *data, size_t len);
/* Write the MAC and wipe the context. */
void iotp_hmac_sha256_final(struct iotp_hmac_sha256 *c, uint8_t mac[IOTP_SHA256_LEN]);
void iotp_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[IOTP_SHA256_LEN]);

/* 1 if the len bytes at a and b are equal, else 0, in time that depends only on len. */
int iotp_ct_equal(const void *a, const void *b, size_t len);

/* Overwrite len bytes with zeros in a way the compiler does not optimise away (secrets). */
void iotp_wipe(void *p, size_t len);

#endif
