/*
 * test_handshake.c - the device and server handshake machines talking in memory.
 *
 * Frames travel as bytes: each side's output is written, then parsed by the other side's
 * parser, exactly as on a socket. Covers: a full hmac-sha256 handshake with both macs checked
 * against OpenSSL; wrong key; unknown device indistinguishable from a wrong key; a forged
 * WELCOME detected by the device; a replayed AUTH (and HELLO) against a new challenge; a
 * reflected mac; the atecc508a-mac handshake with the software chip; malformed HELLO and AUTH
 * frames; device-side errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "iotp/iotp.h"

#define US  "\x1f"
#define EOT "\x04"

static const uint8_t device_key[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t serial[9] = {0x01, 0x23, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0xee};

/* Deterministic "random": a counter run through SHA-256, different per source. */
struct fake_random {
    uint8_t seed;
    uint32_t counter;
    int fail;
};

static int fake_fill(void *ctx, uint8_t *buf, size_t len)
{
    struct fake_random *r = ctx;

    if (r->fail)
        return IOTP_ERANDOM;
    while (len > 0) {
        uint8_t in[5] = {r->seed, (uint8_t)(r->counter >> 24), (uint8_t)(r->counter >> 16),
                         (uint8_t)(r->counter >> 8), (uint8_t)r->counter};
        uint8_t block[32];
        size_t n = len < 32 ? len : 32;
        iotp_sha256(in, sizeof(in), block);
        memcpy(buf, block, n);
        buf += n;
        len -= n;
        r->counter++;
    }
    return 0;
}

static struct iotp_random make_random(struct fake_random *r, uint8_t seed)
{
    struct iotp_random out;

    memset(r, 0, sizeof(*r));
    r->seed = seed;
    out.ctx = r;
    out.fill = fake_fill;
    return out;
}

/* A one-way in-memory link: bytes in, parsed frame out. */
struct link {
    uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_parser parser;
};

static const struct iotp_frame *deliver(struct link *l, const uint8_t *bytes, size_t len)
{
    const struct iotp_frame *f = NULL;
    size_t used;

    assert_int_equal(iotp_parser_init(&l->parser, l->buf, sizeof(l->buf), 0, 0), 0);
    assert_int_equal(iotp_parser_feed(&l->parser, bytes, len, &used, &f, NULL), 1);
    assert_int_equal(used, len);
    return f;
}

struct session {
    struct fake_random dev_rand, srv_rand;
    struct iotp_device_config cfg;
    struct iotp_device_hs dev;
    struct iotp_server_hs srv;
    struct link to_server, to_device;
    uint8_t hello[512], challenge[512], auth[512], reply[512];
    size_t hello_len, challenge_len, auth_len, reply_len;
};

static void session_init(struct session *s, const uint8_t *key, uint8_t dev_seed, uint8_t srv_seed)
{
    struct iotp_random srv_random;

    memset(s, 0, sizeof(*s));
    s->cfg.device_id = "lamp-0042";
    s->cfg.device_type = "lamp";
    s->cfg.fw_version = "1.2.3";
    s->cfg.alg = IOTP_ALG_HMAC_SHA256;
    s->cfg.key = key;
    s->cfg.random = make_random(&s->dev_rand, dev_seed);
    srv_random = make_random(&s->srv_rand, srv_seed);
    iotp_server_hs_init(&s->srv, &srv_random);
}

/* HELLO -> server -> CHALLENGE with the given secret (NULL: unknown device). */
static void run_to_challenge(struct session *s, const struct iotp_device_secret *secret)
{
    const struct iotp_frame *f;

    assert_int_equal(
        iotp_device_hs_start(&s->dev, &s->cfg, s->hello, sizeof(s->hello), &s->hello_len), 0);
    f = deliver(&s->to_server, s->hello, s->hello_len);
    assert_int_equal(iotp_server_hs_on_hello(&s->srv, f), 0);
    assert_string_equal(s->srv.device_id, s->cfg.device_id);
    assert_string_equal(s->srv.device_type, "lamp");
    assert_string_equal(s->srv.fw_version, "1.2.3");
    assert_int_equal(s->srv.alg, s->cfg.alg);
    assert_int_equal(iotp_server_hs_challenge(&s->srv, secret, s->challenge, sizeof(s->challenge),
                                              &s->challenge_len),
                     0);
}

/* CHALLENGE -> device -> AUTH. */
static void run_to_auth(struct session *s)
{
    const struct iotp_frame *f = deliver(&s->to_device, s->challenge, s->challenge_len);

    assert_int_equal(iotp_device_hs_on_frame(&s->dev, f, s->auth, sizeof(s->auth), &s->auth_len),
                     0);
    assert_true(s->auth_len > 0);
}

static int server_on_auth(struct session *s, const uint8_t *auth, size_t len)
{
    const struct iotp_frame *f = deliver(&s->to_server, auth, len);

    return iotp_server_hs_on_auth(&s->srv, f, 30, 0, s->reply, sizeof(s->reply), &s->reply_len);
}

static int device_on_reply(struct session *s)
{
    uint8_t out[64];
    size_t out_len = 99;
    const struct iotp_frame *f = deliver(&s->to_device, s->reply, s->reply_len);
    int r = iotp_device_hs_on_frame(&s->dev, f, out, sizeof(out), &out_len);

    assert_int_equal(out_len, 0);
    return r;
}

static struct iotp_device_secret hmac_secret(const uint8_t *key)
{
    struct iotp_device_secret s;

    memset(&s, 0, sizeof(s));
    s.alg = IOTP_ALG_HMAC_SHA256;
    memcpy(s.key, key, 32);
    return s;
}

/* HMAC-SHA256(key, label | id | 0x00 | a | b) computed with OpenSSL, as hex. */
static void openssl_mac_hex(const uint8_t *key, const char *label, const char *id, const uint8_t *a,
                            const uint8_t *b, char *hex)
{
    uint8_t msg[256], mac[32];
    size_t n = 0;
    unsigned int mac_len;

    memcpy(msg + n, label, strlen(label));
    n += strlen(label);
    memcpy(msg + n, id, strlen(id));
    n += strlen(id);
    msg[n++] = 0;
    memcpy(msg + n, a, 32);
    n += 32;
    memcpy(msg + n, b, 32);
    n += 32;
    assert_non_null(HMAC(EVP_sha256(), key, 32, msg, n, mac, &mac_len));
    iotp_hex_encode(mac, 32, hex);
}

static void test_hmac_handshake(void **state)
{
    static struct session s;
    struct iotp_device_secret secret = hmac_secret(device_key);
    const struct iotp_frame *f;
    char want[65];
    char hello_head[] = "lamp-0042" US "iotd" US "HELLO" US "1" US "proto=1" US "type=lamp" US
                        "fw=1.2.3" US "cnonce=";

    (void)state;
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    assert_memory_equal(s.hello, hello_head, strlen(hello_head));
    assert_int_equal(s.hello_len, strlen(hello_head) + 64 + 1);
    f = deliver(&s.to_device, s.challenge, s.challenge_len);
    assert_string_equal(f->from, "iotd");
    assert_string_equal(f->to, "lamp-0042");
    assert_string_equal(f->type, "CHALLENGE");
    assert_int_equal(f->id, 1);
    assert_string_equal(iotp_frame_arg(f, "alg"), "hmac-sha256");
    assert_int_equal(strlen(iotp_frame_arg(f, "snonce")), 64);

    run_to_auth(&s);
    f = deliver(&s.to_server, s.auth, s.auth_len);
    assert_string_equal(f->type, "AUTH");
    assert_int_equal(f->id, 2);
    openssl_mac_hex(device_key, "iotp1-device", "lamp-0042", s.dev.snonce, s.dev.cnonce, want);
    assert_string_equal(iotp_frame_arg(f, "mac"), want);
    assert_null(iotp_frame_arg(f, "slot"));

    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len), IOTP_HS_DONE);
    assert_int_equal(s.srv.state, IOTP_SERVER_HS_DONE);
    f = deliver(&s.to_device, s.reply, s.reply_len);
    assert_string_equal(f->type, "WELCOME");
    assert_int_equal(f->id, 2);
    openssl_mac_hex(device_key, "iotp1-server", "lamp-0042", s.dev.cnonce, s.dev.snonce, want);
    assert_string_equal(iotp_frame_arg(f, "mac"), want);
    assert_string_equal(iotp_frame_arg(f, "ping"), "30");

    assert_int_equal(device_on_reply(&s), IOTP_HS_DONE);
    assert_int_equal(s.dev.state, IOTP_DEVICE_HS_DONE);
    assert_int_equal(s.dev.ping_s, 30);
    /* Both nonces came from their own sides and differ. */
    assert_memory_equal(s.dev.cnonce, s.srv.cnonce, 32);
    assert_memory_equal(s.dev.snonce, s.srv.snonce, 32);
    assert_memory_not_equal(s.dev.cnonce, s.dev.snonce, 32);
}

static void test_wrong_key(void **state)
{
    static struct session s;
    uint8_t other[32];
    struct iotp_device_secret secret;
    const struct iotp_frame *f;

    (void)state;
    memcpy(other, device_key, 32);
    other[31] ^= 1;
    secret = hmac_secret(other);
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len), IOTP_EAUTH);
    assert_int_equal(s.srv.state, IOTP_SERVER_HS_FAILED);
    f = deliver(&s.to_device, s.reply, s.reply_len);
    assert_string_equal(f->type, "ERROR");
    assert_int_equal(f->id, 2);
    assert_int_equal(f->nargs, 1);
    assert_string_equal(iotp_frame_arg(f, "code"), "auth");
    assert_int_equal(device_on_reply(&s), IOTP_EAUTH);
    assert_int_equal(s.dev.state, IOTP_DEVICE_HS_FAILED);
}

/* Unknown device vs wrong key: identical CHALLENGE shape and identical ERROR bytes. */
static void test_unknown_device_indistinguishable(void **state)
{
    static struct session a, b;
    uint8_t other[32];
    struct iotp_device_secret secret;
    const struct iotp_frame *f;

    (void)state;
    memset(other, 0x77, sizeof(other));
    secret = hmac_secret(other);
    session_init(&a, device_key, 1, 2);
    session_init(&b, device_key, 1, 2);
    run_to_challenge(&a, &secret);
    run_to_challenge(&b, NULL);
    /* Same random source, so even the nonces match: the bytes are exactly equal. */
    assert_int_equal(a.challenge_len, b.challenge_len);
    assert_memory_equal(a.challenge, b.challenge, a.challenge_len);
    run_to_auth(&a);
    run_to_auth(&b);
    f = deliver(&a.to_server, a.auth, a.auth_len);
    assert_int_equal(
        iotp_server_hs_on_auth(&a.srv, f, 30, 17, a.reply, sizeof(a.reply), &a.reply_len),
        IOTP_EAUTH);
    f = deliver(&b.to_server, b.auth, b.auth_len);
    assert_int_equal(
        iotp_server_hs_on_auth(&b.srv, f, 30, 17, b.reply, sizeof(b.reply), &b.reply_len),
        IOTP_EAUTH);
    assert_int_equal(a.reply_len, b.reply_len);
    assert_memory_equal(a.reply, b.reply, a.reply_len);
    f = deliver(&a.to_device, a.reply, a.reply_len);
    assert_string_equal(iotp_frame_arg(f, "retry"), "17");
    /* Even the right mac is refused when the server said the device is unknown. */
    session_init(&b, device_key, 1, 2);
    run_to_challenge(&b, NULL);
    run_to_auth(&b);
    assert_int_equal(server_on_auth(&b, b.auth, b.auth_len), IOTP_EAUTH);
}

/* A fake server cannot produce the WELCOME mac: the device rejects a forged one. */
static void test_wrong_server_mac(void **state)
{
    static struct session s;
    struct iotp_device_secret secret = hmac_secret(device_key);
    uint8_t *mac;

    (void)state;
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len), IOTP_HS_DONE);
    mac = (uint8_t *)strstr((char *)s.reply, "mac=");
    assert_non_null(mac);
    mac[4] = mac[4] == '0' ? '1' : '0';
    assert_int_equal(device_on_reply(&s), IOTP_EAUTH);
    assert_int_equal(s.dev.state, IOTP_DEVICE_HS_FAILED);
}

/* A server that does not know the key, answering WELCOME with a mac under another key. */
static void test_impostor_server(void **state)
{
    static struct session s;
    struct iotp_device_secret secret;
    uint8_t other[32], mac[32];
    struct iotp_writer w;
    int len;

    (void)state;
    memset(other, 0x42, sizeof(other));
    secret = hmac_secret(other);
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    iotp_hs_server_mac(other, "lamp-0042", s.dev.cnonce, s.dev.snonce, mac);
    iotp_writer_begin(&w, s.reply, sizeof(s.reply), "iotd", "lamp-0042", "WELCOME", 2);
    iotp_writer_kv_hex(&w, "mac", mac, 32);
    iotp_writer_kv_u32(&w, "ping", 30);
    len = iotp_writer_end(&w);
    assert_true(len > 0);
    s.reply_len = (size_t)len;
    assert_int_equal(device_on_reply(&s), IOTP_EAUTH);
}

/* A recorded AUTH (and its HELLO) replayed to a new server session fails: new snonce. */
static void test_replayed_auth(void **state)
{
    static struct session first, second, third;
    struct iotp_device_secret secret = hmac_secret(device_key);
    const struct iotp_frame *f;

    (void)state;
    session_init(&first, device_key, 1, 2);
    run_to_challenge(&first, &secret);
    run_to_auth(&first);
    assert_int_equal(server_on_auth(&first, first.auth, first.auth_len), IOTP_HS_DONE);

    /* Attacker replays HELLO and AUTH verbatim; the server draws a fresh snonce. */
    session_init(&second, device_key, 1, 3);
    f = deliver(&second.to_server, first.hello, first.hello_len);
    assert_int_equal(iotp_server_hs_on_hello(&second.srv, f), 0);
    assert_int_equal(iotp_server_hs_challenge(&second.srv, &secret, second.challenge,
                                              sizeof(second.challenge), &second.challenge_len),
                     0);
    assert_memory_not_equal(second.srv.snonce, first.srv.snonce, 32);
    assert_int_equal(server_on_auth(&second, first.auth, first.auth_len), IOTP_EAUTH);

    /* Or the genuine device's new session, with the old AUTH injected in place of the new. */
    session_init(&third, device_key, 4, 5);
    run_to_challenge(&third, &secret);
    assert_int_equal(server_on_auth(&third, first.auth, first.auth_len), IOTP_EAUTH);
}

/* A fake server that sends the device's own cnonce as snonce and reflects the AUTH mac. */
static void test_reflection(void **state)
{
    static struct session s;
    struct iotp_writer w;
    const struct iotp_frame *f;
    char mac_hex[65];
    int len;

    (void)state;
    session_init(&s, device_key, 1, 2);
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, s.hello, sizeof(s.hello), &s.hello_len),
                     0);
    iotp_writer_begin(&w, s.challenge, sizeof(s.challenge), "iotd", "lamp-0042", "CHALLENGE", 1);
    iotp_writer_kv_hex(&w, "snonce", s.dev.cnonce, 32);
    iotp_writer_kv(&w, "alg", "hmac-sha256");
    len = iotp_writer_end(&w);
    assert_true(len > 0);
    s.challenge_len = (size_t)len;
    run_to_auth(&s);
    f = deliver(&s.to_server, s.auth, s.auth_len);
    strcpy(mac_hex, iotp_frame_arg(f, "mac"));
    iotp_writer_begin(&w, s.reply, sizeof(s.reply), "iotd", "lamp-0042", "WELCOME", 2);
    iotp_writer_kv(&w, "mac", mac_hex);
    iotp_writer_kv_u32(&w, "ping", 30);
    len = iotp_writer_end(&w);
    assert_true(len > 0);
    s.reply_len = (size_t)len;
    assert_int_equal(device_on_reply(&s), IOTP_EAUTH);
}

static void atecc_session(struct session *s, struct iotp_atecc_soft *soft,
                          struct iotp_atecc_chip *chip, uint16_t slot)
{
    session_init(s, NULL, 1, 2);
    iotp_atecc_soft_init(soft, device_key, slot, serial, chip);
    s->cfg.alg = IOTP_ALG_ATECC508A_MAC;
    s->cfg.chip = chip;
}

static void test_atecc_handshake(void **state)
{
    static struct session s;
    struct iotp_atecc_soft soft;
    struct iotp_atecc_chip chip;
    struct iotp_device_secret secret;
    struct iotp_atecc_mac_input in;
    const struct iotp_frame *f;
    uint8_t challenge[32], mac[32];
    char hex[65];

    (void)state;
    memset(&secret, 0, sizeof(secret));
    secret.alg = IOTP_ALG_ATECC508A_MAC;
    memcpy(secret.key, device_key, 32);
    memcpy(secret.serial, serial, 9);
    atecc_session(&s, &soft, &chip, 9);
    run_to_challenge(&s, &secret);
    f = deliver(&s.to_server, s.hello, s.hello_len);
    assert_string_equal(iotp_frame_arg(f, "alg"), "atecc508a-mac");
    f = deliver(&s.to_device, s.challenge, s.challenge_len);
    assert_string_equal(iotp_frame_arg(f, "alg"), "atecc508a-mac");
    run_to_auth(&s);
    f = deliver(&s.to_server, s.auth, s.auth_len);
    assert_string_equal(iotp_frame_arg(f, "slot"), "9");
    /* The AUTH mac is the chip MAC over the derived device challenge. */
    iotp_hs_device_challenge("lamp-0042", s.dev.snonce, s.dev.cnonce, challenge);
    in.key = device_key;
    in.challenge = challenge;
    in.mode = IOTP_ATECC_MAC_MODE;
    in.key_id = 9;
    in.otp = NULL;
    in.serial = serial;
    assert_int_equal(iotp_atecc_mac(&in, mac), 0);
    iotp_hex_encode(mac, 32, hex);
    assert_string_equal(iotp_frame_arg(f, "mac"), hex);
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len), IOTP_HS_DONE);
    assert_int_equal(device_on_reply(&s), IOTP_HS_DONE);

    /* A server that stored another serial number refuses the chip's answer. */
    secret.serial[5] ^= 1;
    atecc_session(&s, &soft, &chip, 9);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len), IOTP_EAUTH);

    /* A device provisioned for hmac-sha256 that says atecc508a-mac counts as unknown. */
    secret = hmac_secret(device_key);
    atecc_session(&s, &soft, &chip, 9);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len), IOTP_EAUTH);
}

static int hello_error(const char *bytes)
{
    struct iotp_server_hs srv;
    struct fake_random r;
    struct iotp_random random = make_random(&r, 9);
    static struct link l;

    iotp_server_hs_init(&srv, &random);
    return iotp_server_hs_on_hello(&srv, deliver(&l, (const uint8_t *)bytes, strlen(bytes)));
}

#define NONCE64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_bad_hello(void **state)
{
    (void)state;
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 EOT),
                     0);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 US "alg=hmac-sha256" EOT),
                     0);
    assert_int_equal(hello_error("d" US "iotd" US "HELO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 EOT),
                     IOTP_EPROTO);
    assert_int_equal(hello_error("d" US "other" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 EOT),
                     IOTP_EPROTO);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "2" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 EOT),
                     IOTP_EPROTO);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=2" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(
        hello_error("d" US "iotd" US "HELLO" US "1" US "type=t" US "fw=1" US "cnonce=" NONCE64 EOT),
        IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "fw=1" US
                                 "cnonce=" NONCE64 EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=" US
                                 "fw=1" US "cnonce=" NONCE64 EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "cnonce=" NONCE64 EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=0011" EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 "00" EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US "type=t" US
                                 "fw=1" US "cnonce=" NONCE64 US "alg=md5" EOT),
                     IOTP_EBAD_ARGS);
    assert_int_equal(hello_error("d" US "iotd" US "HELLO" US "1" US "proto=1" US
                                 "type=tttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
                                 "ttttttttt" US "fw=1" US "cnonce=" NONCE64 EOT),
                     IOTP_EBAD_ARGS);
}

/* AUTH frames that are wrong in any way fail exactly like a wrong mac. */
static void test_bad_auth_frames(void **state)
{
    static struct session s;
    struct iotp_device_secret secret = hmac_secret(device_key);
    static const char *const mutations[][2] = {
        {"lamp-0042" US "iotd" US "AUTH" US "2", "lamp-0043" US "iotd" US "AUTH" US "2"},
        {"lamp-0042" US "iotd" US "AUTH" US "2", "lamp-0042" US "iots" US "AUTH" US "2"},
        {"lamp-0042" US "iotd" US "AUTH" US "2", "lamp-0042" US "iotd" US "AUTH" US "3"},
        {"lamp-0042" US "iotd" US "AUTH" US "2", "lamp-0042" US "iotd" US "AUTx" US "2"},
        {"mac=", "mak="},
    };
    uint8_t bad[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
        char *at;
        session_init(&s, device_key, 1, 2);
        run_to_challenge(&s, &secret);
        run_to_auth(&s);
        memcpy(bad, s.auth, s.auth_len);
        at = strstr((char *)bad, mutations[i][0]);
        assert_non_null(at);
        memcpy(at, mutations[i][1], strlen(mutations[i][1]));
        assert_int_equal(server_on_auth(&s, bad, s.auth_len), IOTP_EAUTH);
    }
    /* A truncated mac. */
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    s.auth[s.auth_len - 2] = EOT[0];
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len - 1), IOTP_EAUTH);
    /* State errors: AUTH before CHALLENGE, twice. */
    assert_int_equal(server_on_auth(&s, s.auth, s.auth_len - 1), IOTP_ESTATE);
}

static void test_device_errors(void **state)
{
    static struct session s;
    struct iotp_device_secret secret = hmac_secret(device_key);
    uint8_t out[512];
    size_t out_len;
    const struct iotp_frame *f;
    static const char busy[] = "iotd" US "lamp-0042" US "ERROR" US "1" US "code=busy" EOT;
    static const char wrong_alg[] =
        "iotd" US "lamp-0042" US "CHALLENGE" US "1" US "snonce=" NONCE64 US "alg=atecc508a-mac" EOT;
    static const char no_snonce[] =
        "iotd" US "lamp-0042" US "CHALLENGE" US "1" US "alg=hmac-sha256" EOT;
    static const char from_other[] = "mallory" US "lamp-0042" US "CHALLENGE" US "1" US
                                     "snonce=" NONCE64 US "alg=hmac-sha256" EOT;
    static const char no_ping[] = "iotd" US "lamp-0042" US "WELCOME" US "2" US "mac=" NONCE64 EOT;

    (void)state;
    session_init(&s, device_key, 1, 2);
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len), 0);
    f = deliver(&s.to_device, (const uint8_t *)busy, strlen(busy));
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len), IOTP_EPEER);
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len), IOTP_ESTATE);

    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len), 0);
    f = deliver(&s.to_device, (const uint8_t *)wrong_alg, strlen(wrong_alg));
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len), IOTP_EPROTO);

    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len), 0);
    f = deliver(&s.to_device, (const uint8_t *)no_snonce, strlen(no_snonce));
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len),
                     IOTP_EBAD_ARGS);

    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len), 0);
    f = deliver(&s.to_device, (const uint8_t *)from_other, strlen(from_other));
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len), IOTP_EPROTO);

    /* WELCOME without ping. */
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    run_to_auth(&s);
    f = deliver(&s.to_device, (const uint8_t *)no_ping, strlen(no_ping));
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len),
                     IOTP_EBAD_ARGS);

    /* AUTH that does not fit the caller's buffer. */
    session_init(&s, device_key, 1, 2);
    run_to_challenge(&s, &secret);
    f = deliver(&s.to_device, s.challenge, s.challenge_len);
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, 20, &out_len), IOTP_ENOSPC);

    /* Configuration and random-source failures. */
    session_init(&s, device_key, 1, 2);
    s.dev_rand.fail = 1;
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len),
                     IOTP_ERANDOM);
    s.dev_rand.fail = 0;
    s.cfg.key = NULL;
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len), IOTP_EINVAL);
    s.cfg.key = device_key;
    s.cfg.alg = IOTP_ALG_ATECC508A_MAC;
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len), IOTP_EINVAL);
    s.cfg.alg = IOTP_ALG_HMAC_SHA256;
    s.cfg.device_id = "bad\nid";
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, out, sizeof(out), &out_len),
                     IOTP_ECONTROL);
    assert_int_equal(iotp_device_hs_on_frame(&s.dev, f, out, sizeof(out), &out_len), IOTP_ESTATE);

    /* Server random failure. */
    session_init(&s, device_key, 1, 2);
    assert_int_equal(iotp_device_hs_start(&s.dev, &s.cfg, s.hello, sizeof(s.hello), &s.hello_len),
                     0);
    f = deliver(&s.to_server, s.hello, s.hello_len);
    assert_int_equal(iotp_server_hs_on_hello(&s.srv, f), 0);
    assert_int_equal(iotp_server_hs_on_hello(&s.srv, f), IOTP_ESTATE);
    s.srv_rand.fail = 1;
    assert_int_equal(iotp_server_hs_challenge(&s.srv, &secret, out, sizeof(out), &out_len),
                     IOTP_ERANDOM);
}

/* The worked example of iot-protocol(7): if this fails, the man page is wrong. */
static void test_worked_example(void **state)
{
    static const uint8_t sn9[9] = {0x01, 0x23, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0xee};
    uint8_t key[32], cnonce[32], snonce[32], mac[32], challenge[32];
    struct iotp_atecc_mac_input in;
    char hex[65];
    int i;

    (void)state;
    for (i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
        cnonce[i] = (uint8_t)(0xa0 + i);
        snonce[i] = (uint8_t)(0x50 + i);
    }
    iotp_hs_device_mac(key, "lamp-0042", snonce, cnonce, mac);
    iotp_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "b0a3a5582165a62a3c7002d77ca7ace089f2b2a6d1b081885cc399fa7f4bd137");
    iotp_hs_server_mac(key, "lamp-0042", cnonce, snonce, mac);
    iotp_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "d747ae1f024631ab1bb316e9768419a8be84603904a5b7b8ea35eabcfa166e02");

    in.key = key;
    in.challenge = challenge;
    in.mode = 0x40;
    in.key_id = 9;
    in.otp = NULL;
    in.serial = sn9;
    iotp_hs_device_challenge("lamp-0042", snonce, cnonce, challenge);
    iotp_hex_encode(challenge, 32, hex);
    assert_string_equal(hex, "b6fecaaeb88f06266b2e59a7d4f739b4412913a5eeece4361469f7eb7a9d3099");
    assert_int_equal(iotp_atecc_mac(&in, mac), 0);
    iotp_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "050edc0a922daab2821b6f3e9470e2fea20d4e0c5f191bc2350ef1807e5758fd");
    iotp_hs_server_challenge("lamp-0042", cnonce, snonce, challenge);
    iotp_hex_encode(challenge, 32, hex);
    assert_string_equal(hex, "a33cabd30428c21c3985abf652167fc4511d4032b92c88e7f481d12177d05d30");
    assert_int_equal(iotp_atecc_mac(&in, mac), 0);
    iotp_hex_encode(mac, 32, hex);
    assert_string_equal(hex, "2774d04da90a914d462125502292e965f733a1feb68a3a95ee0d07275399f7fd");
}

static void test_alg_names(void **state)
{
    enum iotp_alg alg;

    (void)state;
    assert_string_equal(iotp_alg_name(IOTP_ALG_HMAC_SHA256), "hmac-sha256");
    assert_string_equal(iotp_alg_name(IOTP_ALG_ATECC508A_MAC), "atecc508a-mac");
    assert_null(iotp_alg_name((enum iotp_alg)0));
    assert_int_equal(iotp_alg_parse("atecc508a-mac", &alg), 0);
    assert_int_equal(alg, IOTP_ALG_ATECC508A_MAC);
    assert_int_equal(iotp_alg_parse("HMAC-SHA256", &alg), IOTP_EBAD_ARGS);
    assert_int_equal(iotp_alg_parse(NULL, &alg), IOTP_EBAD_ARGS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_handshake),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_unknown_device_indistinguishable),
        cmocka_unit_test(test_wrong_server_mac),
        cmocka_unit_test(test_impostor_server),
        cmocka_unit_test(test_replayed_auth),
        cmocka_unit_test(test_reflection),
        cmocka_unit_test(test_atecc_handshake),
        cmocka_unit_test(test_bad_hello),
        cmocka_unit_test(test_bad_auth_frames),
        cmocka_unit_test(test_device_errors),
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_alg_names),
    };
    return cmocka_run_group_tests_name("firmware_handshake", tests, NULL, NULL);
}
