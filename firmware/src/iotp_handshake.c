/*
 * iotp_handshake.c - what both ends of the handshake compute identically: algorithm names,
 * the HMAC-SHA-256 macs and the ATECC508A challenges (formulas in iotp_handshake.h).
 *
 * Keeping them in one file used by both state machines is how the device and the server are
 * guaranteed to hash the same bytes in the same order.
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_handshake.h"

#include <string.h>

#define DEVICE_LABEL "iotp1-device"
#define SERVER_LABEL "iotp1-server"

const char *iotp_alg_name(enum iotp_alg alg)
{
    switch (alg) {
    case IOTP_ALG_HMAC_SHA256:
        return "hmac-sha256";
    case IOTP_ALG_ATECC508A_MAC:
        return "atecc508a-mac";
    default:
        return NULL;
    }
}

int iotp_alg_parse(const char *name, enum iotp_alg *alg)
{
    if (name && strcmp(name, "hmac-sha256") == 0)
        *alg = IOTP_ALG_HMAC_SHA256;
    else if (name && strcmp(name, "atecc508a-mac") == 0)
        *alg = IOTP_ALG_ATECC508A_MAC;
    else
        return IOTP_EBAD_ARGS;
    return 0;
}

/* label | device-id | 0x00 | first | second: the zero byte ends the variable-length id, so
 * no (id, nonce) pair can be shifted into another. */
static void feed_transcript(struct iotp_hmac_sha256 *hmac, struct iotp_sha256 *sha,
                            const char *label, const char *device_id, const uint8_t *first,
                            const uint8_t *second)
{
    static const uint8_t zero = 0;
    const void *parts[5];
    size_t lens[5];
    unsigned i;

    parts[0] = label;
    lens[0] = strlen(label);
    parts[1] = device_id;
    lens[1] = strlen(device_id);
    parts[2] = &zero;
    lens[2] = 1;
    parts[3] = first;
    lens[3] = IOTP_NONCE_LEN;
    parts[4] = second;
    lens[4] = IOTP_NONCE_LEN;
    for (i = 0; i < 5; i++) {
        if (hmac)
            iotp_hmac_sha256_update(hmac, parts[i], lens[i]);
        else
            iotp_sha256_update(sha, parts[i], lens[i]);
    }
}

void iotp_hs_device_mac(const uint8_t key[IOTP_KEY_LEN], const char *device_id,
                        const uint8_t snonce[IOTP_NONCE_LEN], const uint8_t cnonce[IOTP_NONCE_LEN],
                        uint8_t mac[IOTP_MAC_LEN])
{
    struct iotp_hmac_sha256 h;

    iotp_hmac_sha256_init(&h, key, IOTP_KEY_LEN);
    feed_transcript(&h, NULL, DEVICE_LABEL, device_id, snonce, cnonce);
    iotp_hmac_sha256_final(&h, mac);
}

void iotp_hs_server_mac(const uint8_t key[IOTP_KEY_LEN], const char *device_id,
                        const uint8_t cnonce[IOTP_NONCE_LEN], const uint8_t snonce[IOTP_NONCE_LEN],
                        uint8_t mac[IOTP_MAC_LEN])
{
    struct iotp_hmac_sha256 h;

    iotp_hmac_sha256_init(&h, key, IOTP_KEY_LEN);
    feed_transcript(&h, NULL, SERVER_LABEL, device_id, cnonce, snonce);
    iotp_hmac_sha256_final(&h, mac);
}

void iotp_hs_device_challenge(const char *device_id, const uint8_t snonce[IOTP_NONCE_LEN],
                              const uint8_t cnonce[IOTP_NONCE_LEN], uint8_t challenge[32])
{
    struct iotp_sha256 s;

    iotp_sha256_init(&s);
    feed_transcript(NULL, &s, DEVICE_LABEL, device_id, snonce, cnonce);
    iotp_sha256_final(&s, challenge);
}

void iotp_hs_server_challenge(const char *device_id, const uint8_t cnonce[IOTP_NONCE_LEN],
                              const uint8_t snonce[IOTP_NONCE_LEN], uint8_t challenge[32])
{
    struct iotp_sha256 s;

    iotp_sha256_init(&s);
    feed_transcript(NULL, &s, SERVER_LABEL, device_id, cnonce, snonce);
    iotp_sha256_final(&s, challenge);
}
