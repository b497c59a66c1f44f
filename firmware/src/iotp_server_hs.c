/*
 * iotp_server_hs.c - the server end of the handshake (contract in iotp_handshake.h).
 *
 * WAIT_HELLO --HELLO--> WAIT_KEY --challenge(secret or NULL): CHALLENGE--> WAIT_AUTH
 * --AUTH--> DONE (WELCOME) or FAILED (ERROR code=auth).
 *
 * The machine pauses in WAIT_KEY because the key lookup belongs to the caller (iotd asks a
 * database thread). Nothing the peer sees depends on whether the device exists: an unknown
 * device gets a CHALLENGE with a fresh nonce like any other, and at AUTH the expected mac is
 * computed with a zero key and compared in constant time before the "known" flag is looked
 * at, so an unknown device and a wrong mac cost the same work and get the same ERROR.
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_handshake.h"
#include "iotp/iotp_hex.h"

#include <string.h>

void iotp_server_hs_init(struct iotp_server_hs *hs, const struct iotp_random *random)
{
    memset(hs, 0, sizeof(*hs));
    if (random)
        hs->random = *random;
    hs->state = IOTP_SERVER_HS_WAIT_HELLO;
}

/* Copy a HELLO value of at most max bytes; IOTP_EBAD_ARGS if absent, empty or longer. */
static int copy_value(const struct iotp_frame *f, const char *key, char *dst, size_t max)
{
    const char *v = iotp_frame_arg(f, key);
    size_t len;

    if (!v)
        return IOTP_EBAD_ARGS;
    len = strlen(v);
    if (len == 0 || len > max)
        return IOTP_EBAD_ARGS;
    memcpy(dst, v, len + 1);
    return 0;
}

int iotp_server_hs_on_hello(struct iotp_server_hs *hs, const struct iotp_frame *f)
{
    const char *alg;
    uint32_t proto;
    size_t id_len;
    int r;

    if (hs->state != IOTP_SERVER_HS_WAIT_HELLO)
        return IOTP_ESTATE;
    hs->state = IOTP_SERVER_HS_FAILED;
    if (!f || !f->from || !f->to || !f->type)
        return IOTP_EINVAL;
    if (iotp_frame_type(f) != IOTP_TYPE_HELLO || f->id != 1 ||
        strcmp(f->to, IOTP_SERVER_ADDRESS) != 0)
        return IOTP_EPROTO;
    id_len = strlen(f->from);
    if (id_len == 0 || id_len > IOTP_MAX_ADDRESS_LEN)
        return IOTP_EFIELD_TOO_LONG;
    if (iotp_frame_arg_u32(f, "proto", &proto) != 0 || proto != IOTP_PROTO_VERSION)
        return IOTP_EBAD_ARGS;
    if ((r = copy_value(f, "type", hs->device_type, IOTP_MAX_HELLO_VALUE_LEN)) ||
        (r = copy_value(f, "fw", hs->fw_version, IOTP_MAX_HELLO_VALUE_LEN)))
        return r;
    if (iotp_frame_arg_hex(f, "cnonce", hs->cnonce, sizeof(hs->cnonce)) != 0)
        return IOTP_EBAD_ARGS;
    alg = iotp_frame_arg(f, "alg");
    hs->alg = IOTP_ALG_HMAC_SHA256;
    if (alg && iotp_alg_parse(alg, &hs->alg) != 0)
        return IOTP_EBAD_ARGS;
    memcpy(hs->device_id, f->from, id_len + 1);
    hs->state = IOTP_SERVER_HS_WAIT_KEY;
    return 0;
}

int iotp_server_hs_challenge(struct iotp_server_hs *hs, const struct iotp_device_secret *secret,
                             uint8_t *out, size_t cap, size_t *out_len)
{
    struct iotp_writer w;
    int r;

    *out_len = 0;
    if (hs->state != IOTP_SERVER_HS_WAIT_KEY)
        return IOTP_ESTATE;
    hs->state = IOTP_SERVER_HS_FAILED;
    if (!hs->random.fill || hs->random.fill(hs->random.ctx, hs->snonce, sizeof(hs->snonce)) != 0)
        return IOTP_ERANDOM;
    hs->known = secret != NULL && secret->alg == hs->alg;
    if (hs->known)
        hs->secret = *secret;
    else
        memset(&hs->secret, 0, sizeof(hs->secret));

    iotp_writer_begin(&w, out, cap, IOTP_SERVER_ADDRESS, hs->device_id,
                      iotp_type_name(IOTP_TYPE_CHALLENGE), 1);
    iotp_writer_kv_hex(&w, "snonce", hs->snonce, sizeof(hs->snonce));
    iotp_writer_kv(&w, "alg", iotp_alg_name(hs->alg));
    r = iotp_writer_end(&w);
    if (r < 0) {
        iotp_wipe(&hs->secret, sizeof(hs->secret));
        return r;
    }
    *out_len = (size_t)r;
    hs->state = IOTP_SERVER_HS_WAIT_AUTH;
    return 0;
}

/* The mac a genuine device sends, or the mac the server answers with (server != 0). */
static int expected_mac(const struct iotp_server_hs *hs, int server, uint16_t key_id,
                        uint8_t mac[IOTP_MAC_LEN])
{
    struct iotp_atecc_mac_input in;
    uint8_t challenge[32];

    if (hs->alg == IOTP_ALG_HMAC_SHA256) {
        if (server)
            iotp_hs_server_mac(hs->secret.key, hs->device_id, hs->cnonce, hs->snonce, mac);
        else
            iotp_hs_device_mac(hs->secret.key, hs->device_id, hs->snonce, hs->cnonce, mac);
        return 0;
    }
    if (server)
        iotp_hs_server_challenge(hs->device_id, hs->cnonce, hs->snonce, challenge);
    else
        iotp_hs_device_challenge(hs->device_id, hs->snonce, hs->cnonce, challenge);
    in.key = hs->secret.key;
    in.challenge = challenge;
    in.mode = IOTP_ATECC_MAC_MODE;
    in.key_id = key_id;
    in.otp = NULL;
    in.serial = hs->secret.serial;
    return iotp_atecc_mac(&in, mac);
}

int iotp_server_hs_on_auth(struct iotp_server_hs *hs, const struct iotp_frame *f, uint32_t ping_s,
                           uint32_t retry_s, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t got[IOTP_MAC_LEN], expected[IOTP_MAC_LEN];
    struct iotp_writer w;
    uint32_t slot = 0;
    int ok, r;

    *out_len = 0;
    if (hs->state != IOTP_SERVER_HS_WAIT_AUTH)
        return IOTP_ESTATE;
    hs->state = IOTP_SERVER_HS_FAILED;

    /* Every check only clears ok; the comparison below runs whatever they found, so the
     * work done does not tell a prober which check failed. */
    ok = hs->known;
    if (!f || !f->from || !f->to || !f->type || iotp_frame_type(f) != IOTP_TYPE_AUTH ||
        f->id != 2 || strcmp(f->from, hs->device_id) != 0 ||
        strcmp(f->to, IOTP_SERVER_ADDRESS) != 0)
        ok = 0;
    if (!f || iotp_frame_arg_hex(f, "mac", got, sizeof(got)) != 0) {
        memset(got, 0, sizeof(got));
        ok = 0;
    }
    if (hs->alg == IOTP_ALG_ATECC508A_MAC &&
        (!f || iotp_frame_arg_u32(f, "slot", &slot) != 0 || slot > IOTP_ATECC_MAX_KEY_ID)) {
        slot = 0;
        ok = 0;
    }
    if (expected_mac(hs, 0, (uint16_t)slot, expected) != 0)
        ok = 0;
    ok &= iotp_ct_equal(got, expected, sizeof(got));

    if (ok) {
        if (expected_mac(hs, 1, (uint16_t)slot, expected) != 0) {
            r = IOTP_EINVAL;
            goto out;
        }
        iotp_writer_begin(&w, out, cap, IOTP_SERVER_ADDRESS, hs->device_id,
                          iotp_type_name(IOTP_TYPE_WELCOME), 2);
        iotp_writer_kv_hex(&w, "mac", expected, sizeof(expected));
        iotp_writer_kv_u32(&w, "ping", ping_s);
        r = iotp_writer_end(&w);
    } else {
        r = iotp_frame_write_error(out, cap, IOTP_SERVER_ADDRESS, hs->device_id, 2, "auth", retry_s,
                                   NULL);
    }
    if (r < 0)
        goto out;
    *out_len = (size_t)r;
    if (ok) {
        hs->state = IOTP_SERVER_HS_DONE;
        r = IOTP_HS_DONE;
    } else {
        r = IOTP_EAUTH;
    }
out:
    iotp_wipe(&hs->secret, sizeof(hs->secret));
    iotp_wipe(expected, sizeof(expected));
    return r;
}
