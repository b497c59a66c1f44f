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

/* label | device-id | 0x00 | first | second, where the device's transcript is snonce then
 * cnonce and the server's cnonce then snonce: the zero byte ends the variable-length id, so
 * no (id, nonce) pair can be shifted into another. HMAC's update is its inner hash's, so both
 * the mac and the challenge feed h.inner. */
void iotp_hs_transcript(int server_side, const uint8_t *key, const char *device_id,
                        const uint8_t cnonce[IOTP_NONCE_LEN], const uint8_t snonce[IOTP_NONCE_LEN],
                        uint8_t out[32])
{
    static const uint8_t zero = 0;
    const char *label = server_side ? SERVER_LABEL : DEVICE_LABEL;
    const void *parts[5] = {label, device_id, &zero, server_side ? cnonce : snonce,
                            server_side ? snonce : cnonce};
    const size_t lens[5] = {strlen(label), strlen(device_id), 1, IOTP_NONCE_LEN, IOTP_NONCE_LEN};
    struct iotp_hmac_sha256 h;
    unsigned i;

    if (key)
        iotp_hmac_sha256_init(&h, key, IOTP_KEY_LEN);
    else
        iotp_sha256_init(&h.inner);
    for (i = 0; i < 5; i++)
        iotp_sha256_update(&h.inner, parts[i], lens[i]);
    if (key)
        iotp_hmac_sha256_final(&h, out);
    else
        iotp_sha256_final(&h.inner, out);
}

void iotp_hs_device_mac(const uint8_t key[IOTP_KEY_LEN], const char *device_id,
                        const uint8_t snonce[IOTP_NONCE_LEN], const uint8_t cnonce[IOTP_NONCE_LEN],
                        uint8_t mac[IOTP_MAC_LEN])
{
    iotp_hs_transcript(0, key, device_id, cnonce, snonce, mac);
}

void iotp_hs_server_mac(const uint8_t key[IOTP_KEY_LEN], const char *device_id,
                        const uint8_t cnonce[IOTP_NONCE_LEN], const uint8_t snonce[IOTP_NONCE_LEN],
                        uint8_t mac[IOTP_MAC_LEN])
{
    iotp_hs_transcript(1, key, device_id, cnonce, snonce, mac);
}

void iotp_hs_device_challenge(const char *device_id, const uint8_t snonce[IOTP_NONCE_LEN],
                              const uint8_t cnonce[IOTP_NONCE_LEN], uint8_t challenge[32])
{
    iotp_hs_transcript(0, NULL, device_id, cnonce, snonce, challenge);
}

void iotp_hs_server_challenge(const char *device_id, const uint8_t cnonce[IOTP_NONCE_LEN],
                              const uint8_t snonce[IOTP_NONCE_LEN], uint8_t challenge[32])
{
    iotp_hs_transcript(1, NULL, device_id, cnonce, snonce, challenge);
}
