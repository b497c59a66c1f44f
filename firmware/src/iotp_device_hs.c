/*
 * iotp_device_hs.c - the device end of the handshake (contract in iotp_handshake.h).
 *
 * IDLE --start: HELLO--> WAIT_CHALLENGE --CHALLENGE: AUTH--> WAIT_WELCOME --WELCOME--> DONE,
 * and any unexpected or failed step goes to FAILED, where the machine stays: a device retries
 * on a fresh connection with fresh nonces rather than patching up a half-done exchange.
 * With alg=atecc508a-mac the key never enters this code: both the AUTH answer and the check
 * of the server's WELCOME are MAC commands run by the chip.
 */
#include "iotp/iotp_error.h"
#include "iotp/iotp_handshake.h"
#include "iotp/iotp_hex.h"

#include <string.h>

/* Whether cfg has what its alg needs: a key for HMAC; a chip with a MAC command for the
 * ATECC508A, in a build with that path (IOTP_DEVICE_ATECC). Any other alg is refused. */
static int alg_ready(const struct iotp_device_config *cfg)
{
    if (cfg->alg == IOTP_ALG_HMAC_SHA256)
        return cfg->key != NULL;
    return IOTP_DEVICE_ATECC && cfg->alg == IOTP_ALG_ATECC508A_MAC && cfg->chip && cfg->chip->mac;
}

int iotp_device_hs_start(struct iotp_device_hs *hs, const struct iotp_device_config *cfg,
                         uint8_t *out, size_t cap, size_t *out_len)
{
    struct iotp_writer w;
    int r;

    memset(hs, 0, sizeof(*hs));
    hs->state = IOTP_DEVICE_HS_FAILED;
    *out_len = 0;
    if (!cfg || !cfg->device_id || !cfg->device_type || !cfg->fw_version || !cfg->random.fill)
        return IOTP_EINVAL;
    hs->cfg = *cfg;
    if (hs->cfg.alg == 0)
        hs->cfg.alg = IOTP_ALG_HMAC_SHA256;
    if (!alg_ready(&hs->cfg))
        return IOTP_EINVAL;
    if (hs->cfg.random.fill(hs->cfg.random.ctx, hs->cnonce, sizeof(hs->cnonce)) != 0)
        return IOTP_ERANDOM;

    iotp_writer_begin(&w, out, cap, cfg->device_id, IOTP_SERVER_ADDRESS,
                      iotp_type_name(IOTP_TYPE_HELLO), 1);
    iotp_writer_kv_u32(&w, "proto", IOTP_PROTO_VERSION);
    iotp_writer_kv(&w, "type", cfg->device_type);
    iotp_writer_kv(&w, "fw", cfg->fw_version);
    iotp_writer_kv_hex(&w, "cnonce", hs->cnonce, sizeof(hs->cnonce));
    /* HMAC is the default, so its HELLO stays exactly the one DESIGN.md shows. */
    if (IOTP_DEVICE_ATECC && hs->cfg.alg != IOTP_ALG_HMAC_SHA256)
        iotp_writer_kv(&w, "alg", iotp_alg_name(hs->cfg.alg));
    r = iotp_writer_end(&w);
    if (r < 0)
        return r;
    *out_len = (size_t)r;
    hs->state = IOTP_DEVICE_HS_WAIT_CHALLENGE;
    return 0;
}

/* The device's (AUTH) or the server's (WELCOME) mac of this handshake: by HMAC-SHA-256, or
 * as the chip's MAC over the challenge with the protocol's fixed mode. */
static int side_mac(const struct iotp_device_hs *hs, int server_side, uint8_t mac[IOTP_MAC_LEN])
{
    const struct iotp_atecc_chip *chip = hs->cfg.chip;
    uint8_t challenge[32];

    if (!IOTP_DEVICE_ATECC || hs->cfg.alg == IOTP_ALG_HMAC_SHA256) {
        iotp_hs_transcript(server_side, hs->cfg.key, hs->cfg.device_id, hs->cnonce, hs->snonce,
                           mac);
        return 0;
    }
    iotp_hs_transcript(server_side, NULL, hs->cfg.device_id, hs->cnonce, hs->snonce, challenge);
    return chip->mac(chip->ctx, IOTP_ATECC_MAC_MODE, chip->key_id, challenge, mac) ? IOTP_ECHIP : 0;
}

static int answer_challenge(struct iotp_device_hs *hs, const struct iotp_frame *f, uint8_t *out,
                            size_t cap, size_t *out_len)
{
    enum iotp_alg alg;
    uint8_t mac[IOTP_MAC_LEN];
    struct iotp_writer w;
    int r;

    if (iotp_frame_type(f) != IOTP_TYPE_CHALLENGE || f->id != 1)
        return IOTP_EPROTO;
    if (iotp_frame_arg_hex(f, "snonce", hs->snonce, sizeof(hs->snonce)) != 0)
        return IOTP_EBAD_ARGS;
    if (iotp_alg_parse(iotp_frame_arg(f, "alg"), &alg) != 0)
        return IOTP_EBAD_ARGS;
    if (alg != hs->cfg.alg)
        return IOTP_EPROTO;

    r = side_mac(hs, 0, mac);
    if (r)
        return r;
    iotp_writer_begin(&w, out, cap, hs->cfg.device_id, IOTP_SERVER_ADDRESS,
                      iotp_type_name(IOTP_TYPE_AUTH), 2);
    iotp_writer_kv_hex(&w, "mac", mac, sizeof(mac));
    if (IOTP_DEVICE_ATECC && alg == IOTP_ALG_ATECC508A_MAC)
        iotp_writer_kv_u32(&w, "slot", hs->cfg.chip->key_id);
    r = iotp_writer_end(&w);
    if (r < 0)
        return r;
    *out_len = (size_t)r;
    hs->state = IOTP_DEVICE_HS_WAIT_WELCOME;
    return 0;
}

static int check_welcome(struct iotp_device_hs *hs, const struct iotp_frame *f)
{
    uint8_t got[IOTP_MAC_LEN], expected[IOTP_MAC_LEN];
    uint32_t ping;
    int r;

    if (iotp_frame_type(f) != IOTP_TYPE_WELCOME || f->id != 2)
        return IOTP_EPROTO;
    if (iotp_frame_arg_hex(f, "mac", got, sizeof(got)) != 0 ||
        iotp_frame_arg_u32(f, "ping", &ping) != 0)
        return IOTP_EBAD_ARGS;
    r = side_mac(hs, 1, expected);
    if (r)
        return r;
    if (!iotp_ct_equal(got, expected, sizeof(got)))
        return IOTP_EAUTH;
    hs->ping_s = ping;
    hs->state = IOTP_DEVICE_HS_DONE;
    return IOTP_HS_DONE;
}

int iotp_device_hs_on_frame(struct iotp_device_hs *hs, const struct iotp_frame *f, uint8_t *out,
                            size_t cap, size_t *out_len)
{
    const char *code;
    int r;

    *out_len = 0;
    if (hs->state != IOTP_DEVICE_HS_WAIT_CHALLENGE && hs->state != IOTP_DEVICE_HS_WAIT_WELCOME)
        return IOTP_ESTATE;
    if (!f || !f->from || !f->to || !f->type) {
        r = IOTP_EINVAL;
        goto out;
    }
    if (strcmp(f->from, IOTP_SERVER_ADDRESS) != 0 || strcmp(f->to, hs->cfg.device_id) != 0) {
        r = IOTP_EPROTO;
        goto out;
    }
    if (iotp_frame_type(f) == IOTP_TYPE_ERROR) {
        code = iotp_frame_arg(f, "code");
        r = code && strcmp(code, "auth") == 0 ? IOTP_EAUTH : IOTP_EPEER;
        goto out;
    }
    if (hs->state == IOTP_DEVICE_HS_WAIT_CHALLENGE)
        r = answer_challenge(hs, f, out, cap, out_len);
    else
        r = check_welcome(hs, f);
out:
    if (r < 0) {
        hs->state = IOTP_DEVICE_HS_FAILED;
        *out_len = 0;
    }
    return r;
}
