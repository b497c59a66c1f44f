/*
 * fuzz_handshake.c - libFuzzer target for the two handshake state machines
 * (firmware/src/iotp_server_hs.c and iotp_device_hs.c) fed arbitrary frames.
 *
 * The first byte chooses the scenario: whether the server knows the device, whether its stored
 * secret is hmac-sha256 or atecc508a-mac, and whether the harness replaces the mac= of an AUTH
 * (server side) or of a WELCOME (device side) with the right one, so that the success paths
 * are reachable although no fuzzer guesses an HMAC. The rest is parsed into frames, and every
 * frame goes to a server machine and to a device machine; a machine that finished or failed
 * starts again, so a long input walks through many handshakes.
 *
 * Properties checked (a failure aborts):
 *   - every frame a machine writes parses back as one frame of the announced length;
 *   - the server completes only for a known device whose AUTH carried the right mac, and its
 *     WELCOME carries the right server mac; a canonical AUTH with the right mac is never
 *     refused; every refusal at AUTH is the same ERROR code=auth retry=5 (unknown and wrong
 *     mac look alike);
 *   - the device completes only on a WELCOME carrying the right server mac, and then has the
 *     WELCOME's ping;
 *   - the states only move forward, and an error always leaves a machine FAILED.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iotp/iotp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEVICE_ID "dev1"

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Deterministic "random" bytes, so a crash reproduces. */
static int fill(void *ctx, uint8_t *buf, size_t len)
{
    uint32_t *state = ctx;
    for (size_t i = 0; i < len; i++) {
        *state = *state * 1103515245u + 12345u;
        buf[i] = (uint8_t)(*state >> 16);
    }
    return 0;
}

static const uint8_t key[IOTP_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

/* The written frame out[0..len) parses as exactly one frame; returns it (parser's buffer). */
static const struct iotp_frame *parse_written(const uint8_t *out, size_t len)
{
    static uint8_t buf[IOTP_MAX_FRAME];
    static struct iotp_parser p;
    const struct iotp_frame *f = NULL;
    size_t used = 0;
    check(len > 0);
    check(iotp_parser_init(&p, buf, sizeof(buf), 0, 0) == 0);
    check(iotp_parser_feed(&p, out, len, &used, &f, NULL) == 1);
    check(used == len);
    return f;
}

static const char *arg_value(const struct iotp_frame *f, const char *key_eq)
{
    size_t n = strlen(key_eq);
    for (unsigned i = 0; i < f->nargs; i++)
        if (strncmp(f->args[i], key_eq, n) == 0)
            return f->args[i] + n;
    return NULL;
}

/* A copy of f whose mac= argument (if any) is replaced by mac_arg. */
static struct iotp_frame with_mac(const struct iotp_frame *f, const char *mac_arg)
{
    struct iotp_frame g = *f;
    for (unsigned i = 0; i < g.nargs; i++)
        if (strncmp(g.args[i], "mac=", 4) == 0)
            g.args[i] = mac_arg;
    return g;
}

struct server {
    struct iotp_server_hs hs;
    struct iotp_random random;
    int known, atecc, fix_auth;
};

static void server_frame(struct server *s, const struct iotp_frame *f)
{
    static uint8_t out[IOTP_MAX_FRAME];
    size_t out_len = 0;
    char mac_arg[4 + 2 * IOTP_MAC_LEN + 1], want[2 * IOTP_MAC_LEN + 1];
    uint8_t mac[IOTP_MAC_LEN];
    int rc;

    if (s->hs.state == IOTP_SERVER_HS_DONE || s->hs.state == IOTP_SERVER_HS_FAILED)
        iotp_server_hs_init(&s->hs, &s->random);
    if (s->hs.state == IOTP_SERVER_HS_WAIT_HELLO) {
        rc = iotp_server_hs_on_hello(&s->hs, f);
        if (rc != 0) {
            check(rc < 0);
            return;
        }
        check(s->hs.state == IOTP_SERVER_HS_WAIT_KEY);
        struct iotp_device_secret secret = {.alg = s->atecc ? IOTP_ALG_ATECC508A_MAC
                                                            : IOTP_ALG_HMAC_SHA256};
        memcpy(secret.key, key, sizeof(key));
        rc =
            iotp_server_hs_challenge(&s->hs, s->known ? &secret : NULL, out, sizeof(out), &out_len);
        check(rc == 0 && s->hs.state == IOTP_SERVER_HS_WAIT_AUTH);
        const struct iotp_frame *ch = parse_written(out, out_len);
        check(strcmp(ch->type, "CHALLENGE") == 0 && ch->id == 1);
        return;
    }
    check(s->hs.state == IOTP_SERVER_HS_WAIT_AUTH);
    /* The right device mac for this handshake, when the harness is asked to supply it. */
    iotp_hs_device_mac(key, s->hs.device_id, s->hs.snonce, s->hs.cnonce, mac);
    memcpy(mac_arg, "mac=", 4);
    iotp_hex_encode(mac, sizeof(mac), mac_arg + 4);
    struct iotp_frame g = s->fix_auth ? with_mac(f, mac_arg) : *f;
    const char *sent = arg_value(&g, "mac=");
    int right = s->known && !s->atecc && s->hs.alg == IOTP_ALG_HMAC_SHA256 && sent &&
                strcmp(sent, mac_arg + 4) == 0 && strcmp(g.type, "AUTH") == 0 && g.id == 2 &&
                strcmp(g.from, s->hs.device_id) == 0;
    char device_id[sizeof(s->hs.device_id)];
    memcpy(device_id, s->hs.device_id, sizeof(device_id));
    uint8_t cnonce[IOTP_NONCE_LEN], snonce[IOTP_NONCE_LEN];
    memcpy(cnonce, s->hs.cnonce, sizeof(cnonce));
    memcpy(snonce, s->hs.snonce, sizeof(snonce));

    rc = iotp_server_hs_on_auth(&s->hs, &g, 30, 5, out, sizeof(out), &out_len);
    const struct iotp_frame *answer = parse_written(out, out_len);
    if (rc == IOTP_HS_DONE) {
        check(s->known && s->hs.state == IOTP_SERVER_HS_DONE);
        check(strcmp(answer->type, "WELCOME") == 0 && answer->id == 2);
        if (!s->atecc) {
            check(right);
            iotp_hs_server_mac(key, device_id, cnonce, snonce, mac);
            iotp_hex_encode(mac, sizeof(mac), want);
            check(arg_value(answer, "mac=") && strcmp(arg_value(answer, "mac="), want) == 0);
        }
    } else {
        /* Extra or odd arguments may be refused too; the canonical AUTH never is. */
        int canonical = right && g.nargs == 1 && strcmp(g.to, IOTP_SERVER_ADDRESS) == 0;
        check(rc == IOTP_EAUTH && s->hs.state == IOTP_SERVER_HS_FAILED && !canonical);
        check(strcmp(answer->type, "ERROR") == 0 && answer->id == 2);
        check(answer->nargs == 2 && strcmp(answer->args[0], "code=auth") == 0 &&
              strcmp(answer->args[1], "retry=5") == 0);
    }
}

struct device {
    struct iotp_device_hs hs;
    struct iotp_device_config cfg;
    int fix_welcome;
};

static void device_start(struct device *d)
{
    static uint8_t out[IOTP_MAX_FRAME];
    size_t out_len = 0;
    check(iotp_device_hs_start(&d->hs, &d->cfg, out, sizeof(out), &out_len) == 0);
    const struct iotp_frame *hello = parse_written(out, out_len);
    check(strcmp(hello->type, "HELLO") == 0 && d->hs.state == IOTP_DEVICE_HS_WAIT_CHALLENGE);
}

static void device_frame(struct device *d, const struct iotp_frame *f)
{
    static uint8_t out[IOTP_MAX_FRAME];
    size_t out_len = 0;
    char mac_arg[4 + 2 * IOTP_MAC_LEN + 1];
    uint8_t mac[IOTP_MAC_LEN];

    if (d->hs.state == IOTP_DEVICE_HS_DONE || d->hs.state == IOTP_DEVICE_HS_FAILED)
        device_start(d);
    enum iotp_device_hs_state before = d->hs.state;
    iotp_hs_server_mac(key, DEVICE_ID, d->hs.cnonce, d->hs.snonce, mac);
    memcpy(mac_arg, "mac=", 4);
    iotp_hex_encode(mac, sizeof(mac), mac_arg + 4);
    struct iotp_frame g =
        d->fix_welcome && before == IOTP_DEVICE_HS_WAIT_WELCOME ? with_mac(f, mac_arg) : *f;

    int rc = iotp_device_hs_on_frame(&d->hs, &g, out, sizeof(out), &out_len);
    if (rc == 0) {
        check(before == IOTP_DEVICE_HS_WAIT_CHALLENGE &&
              d->hs.state == IOTP_DEVICE_HS_WAIT_WELCOME);
        const struct iotp_frame *auth = parse_written(out, out_len);
        check(strcmp(auth->type, "AUTH") == 0 && auth->id == 2);
        check(strcmp(auth->from, DEVICE_ID) == 0);
    } else if (rc == IOTP_HS_DONE) {
        check(before == IOTP_DEVICE_HS_WAIT_WELCOME && d->hs.state == IOTP_DEVICE_HS_DONE);
        const char *sent = arg_value(&g, "mac=");
        check(sent && strlen(sent) == 2 * IOTP_MAC_LEN);
        uint8_t got[IOTP_MAC_LEN];
        check(iotp_hex_decode(sent, strlen(sent), got, sizeof(got)) == IOTP_MAC_LEN);
        check(memcmp(got, mac, sizeof(mac)) == 0);
    } else {
        check(rc < 0 && d->hs.state == IOTP_DEVICE_HS_FAILED);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[IOTP_MAX_FRAME];
    static struct server s;
    static struct device d;
    struct iotp_parser p;
    uint32_t server_seed = 1, device_seed = 2;

    if (size == 0)
        return 0;
    memset(&s, 0, sizeof(s));
    memset(&d, 0, sizeof(d));
    s.random = (struct iotp_random){.ctx = &server_seed, .fill = fill};
    s.known = data[0] & 1;
    s.atecc = (data[0] >> 1) & 1;
    s.fix_auth = (data[0] >> 2) & 1;
    d.fix_welcome = (data[0] >> 3) & 1;
    d.cfg = (struct iotp_device_config){.device_id = DEVICE_ID,
                                        .device_type = "thermo",
                                        .fw_version = "1.0",
                                        .key = key,
                                        .random = {.ctx = &device_seed, .fill = fill}};
    iotp_server_hs_init(&s.hs, &s.random);
    device_start(&d);

    check(iotp_parser_init(&p, buf, sizeof(buf), 0, 0) == 0);
    size_t off = 1;
    while (off < size) {
        const struct iotp_frame *f = NULL;
        size_t used = 0;
        int r = iotp_parser_feed(&p, data + off, size - off, &used, &f, NULL);
        off += used;
        if (r == 1) {
            /* The parser's strings stay valid until the next feed: both machines see them. */
            server_frame(&s, f);
            device_frame(&d, f);
        } else if (r == 0 || used == 0) {
            break;
        }
    }
    return 0;
}
