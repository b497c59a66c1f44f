/* Unit tests of iotd/net/tls13_record: the TLS 1.3 record layer iotd runs after OpenSSL's
 * handshake.
 *  - RFC 8448 section 3 (simple 1-RTT handshake): keys and IVs from the application traffic
 *    secrets, the client's application data record opened, the server's sealed byte for
 *    byte, the client's close_notify.
 *  - A real OpenSSL 3 client, for each TLS 1.3 suite: the handshake with an OpenSSL server
 *    set up as iotd's (no tickets, keylog callback) over memory BIOs, then the server's SSL is
 *    freed and the record layer talks to the client both ways: small and large writes, bytes
 *    fed one at a time, KeyUpdate from either side, close_notify either way.
 *  - Refusals, each answered with the alert RFC 8446 names (read back by a mirror record layer
 *    that holds the client's side): a bad tag, a record over 2^14 + 256 bytes, an inner
 *    plaintext over 2^14 + 1, all-zero padding, a plaintext record, a NewSessionTicket or
 *    malformed KeyUpdate from the client, a sequence number about to wrap.
 *  - A reader that stops keeps what follows and goes on when called again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/tls13_record.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned byte;
        assert_int_equal(sscanf(p, "%2x", &byte), 1);
        out[n++] = (uint8_t)byte;
        p += 2;
    }
    return n;
}

/* RFC 8448 section 3. */
#define C_AP  "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
#define S_AP  "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"
#define C_KEY "17422dda596ed5d9acd890e3c63f5051"
#define C_IV  "5b78923dee08579033e523d9"
#define S_KEY "9f02283b6c9c07efc26bb9f2ac92e356"
#define S_IV  "cf782b88dd83549aadf1e984"
#define C_APP_RECORD                                                                               \
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc "   \
    "ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd "   \
    "1e 3d ea e6 3a ee bb 21 69 49 15 e4"
#define S_APP_RECORD                                                                               \
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa "   \
    "1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 "   \
    "ab f3 32 54 0d d0 32 e1 67 c2 95 5d"
#define C_ALERT_RECORD "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3"

/* What a reader saw: data and sent wire bytes, appended. */
struct seen {
    uint8_t data[300000];
    size_t data_len;
    uint8_t sent[4096];
    size_t sent_len;
    size_t stop_after; /* data callbacks before saying stop (0: never) */
    size_t calls;
};

static bool seen_data(void *arg, const uint8_t *data, size_t len)
{
    struct seen *s = arg;
    assert_true(s->data_len + len <= sizeof(s->data));
    memcpy(s->data + s->data_len, data, len);
    s->data_len += len;
    s->calls++;
    return !(s->stop_after && s->calls >= s->stop_after);
}

static int seen_send(void *arg, const uint8_t *wire, size_t len)
{
    struct seen *s = arg;
    assert_true(s->sent_len + len <= sizeof(s->sent));
    memcpy(s->sent + s->sent_len, wire, len);
    s->sent_len += len;
    return 0;
}

static struct seen *seen_new(void)
{
    struct seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    return s;
}

static struct tls13_reader reader_of(struct seen *s)
{
    return (struct tls13_reader){.data = seen_data, .send = seen_send, .arg = s};
}

/* A record layer on RFC 8448's secrets; mirror: the client's side of it (secrets swapped), to
 * write what a client sends and read what the server sent. */
static tls13_record_t *rfc_record(bool mirror)
{
    tls13_record_t *r = tls13_record_new();
    assert_non_null(r);
    unhex(mirror ? S_AP : C_AP, r->read.secret);
    unhex(mirror ? C_AP : S_AP, r->write.secret);
    r->have = 3;
    assert_int_equal(tls13_record_start(r, TLS13_AES_128_GCM_SHA256, 0), 0);
    return r;
}

static void test_rfc8448_keys(void **state)
{
    (void)state;
    uint8_t secret[32], key[16], iv[12], want[32];
    unhex(S_AP, secret);
    assert_int_equal(
        tls13_hkdf_expand_label(TLS13_AES_128_GCM_SHA256, secret, "key", NULL, 0, key, 16), 0);
    unhex(S_KEY, want);
    assert_memory_equal(key, want, 16);
    assert_int_equal(
        tls13_hkdf_expand_label(TLS13_AES_128_GCM_SHA256, secret, "iv", NULL, 0, iv, 12), 0);
    unhex(S_IV, want);
    assert_memory_equal(iv, want, 12);

    /* The same from keylog lines, as OpenSSL writes them. */
    uint8_t random[32];
    memset(random, 0xab, sizeof(random));
    char line[256], random_hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(random_hex + 2 * i, 3, "%02x", random[i]);
    tls13_record_t *r = tls13_record_new();
    snprintf(line, sizeof(line), "CLIENT_HANDSHAKE_TRAFFIC_SECRET %s %s", random_hex, C_AP);
    assert_false(tls13_record_take_keylog(r, line, random));
    snprintf(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0 %s %s", random_hex, C_AP);
    uint8_t other[32];
    memset(other, 0xcd, sizeof(other));
    assert_false(tls13_record_take_keylog(r, line, other)); /* another connection's */
    assert_true(tls13_record_take_keylog(r, line, random));
    snprintf(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0 %s %s", random_hex, S_AP);
    assert_int_equal(tls13_record_start(r, TLS13_AES_128_GCM_SHA256, 0), TLS13_EINTERNAL);
    assert_true(tls13_record_take_keylog(r, line, random));
    assert_int_equal(tls13_record_start(r, 0x1304, 0), TLS13_EINTERNAL); /* CCM: not ours */
    assert_int_equal(tls13_record_start(r, TLS13_AES_128_GCM_SHA256, 0), 0);
    unhex(C_KEY, want);
    assert_memory_equal(r->read.key, want, 16);
    unhex(C_IV, want);
    assert_memory_equal(r->read.iv, want, 12);
    unhex(S_KEY, want);
    assert_memory_equal(r->write.key, want, 16);
    unhex(S_IV, want);
    assert_memory_equal(r->write.iv, want, 12);
    assert_int_equal(r->read.seq, 0);
    assert_int_equal(r->write.seq, 0);
    tls13_record_free(r);
}

static void test_rfc8448_records(void **state)
{
    (void)state;
    tls13_engine_t *e = tls13_engine_new();
    tls13_record_t *r = rfc_record(false);
    struct seen *s = seen_new();
    struct tls13_reader rd = reader_of(s);
    uint8_t wire[128], payload[50], out[128];
    for (int i = 0; i < 50; i++)
        payload[i] = (uint8_t)i;

    size_t n = unhex(C_APP_RECORD, wire);
    assert_int_equal(n, 72);
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_MORE);
    assert_int_equal(s->data_len, 50);
    assert_memory_equal(s->data, payload, 50);
    assert_null(r->buf); /* nothing held once the record is read */

    /* The server sent a NewSessionTicket first (sequence 0): its data record is number 1. */
    r->write.seq = 1;
    assert_int_equal(tls13_record_sealed_len(r, 50), 72);
    assert_int_equal(tls13_record_seal(r, e, payload, 50, out), 72);
    n = unhex(S_APP_RECORD, wire);
    assert_memory_equal(out, wire, 72);

    n = unhex(C_ALERT_RECORD, wire);
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_PEER_CLOSED);
    assert_int_equal(s->sent_len, 0);
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_EFAILED);

    /* Byte by byte, on a fresh layer: the same 50 bytes, no data before the last byte. */
    tls13_record_free(r);
    r = rfc_record(false);
    memset(s, 0, sizeof(*s));
    n = unhex(C_APP_RECORD, wire);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s->data_len, 0);
        assert_int_equal(tls13_record_read(r, e, wire + i, 1, &rd), TLS13_MORE);
    }
    assert_int_equal(s->data_len, 50);
    assert_memory_equal(s->data, payload, 50);
    assert_null(r->buf);

    /* One bit changed: bad_record_mac, sent under our keys (the mirror reads it). */
    tls13_record_free(r);
    r = rfc_record(false);
    memset(s, 0, sizeof(*s));
    wire[40] ^= 0x01;
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_EBAD_MAC);
    assert_int_equal(s->data_len, 0);
    tls13_record_t *m = rfc_record(true);
    struct seen *ms = seen_new();
    struct tls13_reader mrd = reader_of(ms);
    assert_int_equal(s->sent_len, TLS13_RECORD_LEN(2));
    assert_int_equal(tls13_record_read(m, e, s->sent, s->sent_len, &mrd), TLS13_EPEER_ALERT);
    assert_int_equal(tls13_record_seal(r, e, payload, 10, out), TLS13_EFAILED); /* after it */

    tls13_record_free(m);
    tls13_record_free(r);
    free(ms);
    free(s);
    tls13_engine_free(e);
}

/* A record of any inner plaintext (padding, types, lengths this layer never writes), sealed
 * with the key and IV of d at its sequence, which advances. */
static size_t raw_record(const struct tls13_direction *d, uint8_t outer, const uint8_t *inner,
                         size_t inner_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t nonce[12];
    int len;
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
    size_t body = inner_len + 16;
    out[0] = outer;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, d->key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &len, out, 5), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, out + 5, &len, inner, (int)inner_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, out + 5 + len, &len), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out + 5 + inner_len), 1);
    EVP_CIPHER_CTX_free(ctx);
    return 5 + body;
}

/* Read wire on a fresh RFC 8448 layer; the status, and (for an error) the alert it sent. */
static int read_fresh(tls13_engine_t *e, const uint8_t *wire, size_t n, struct seen *s, int *alert)
{
    tls13_record_t *r = rfc_record(false), *m = rfc_record(true);
    struct tls13_reader rd = reader_of(s);
    memset(s, 0, sizeof(*s));
    int rc = tls13_record_read(r, e, wire, n, &rd);
    *alert = -1;
    if (s->sent_len > 0) {
        /* The mirror opens what we sent: read it with a raw decrypt of the alert. */
        struct seen *ms = seen_new();
        struct tls13_reader mrd = reader_of(ms);
        /* An alert reads as "peer alert" (or closed); to see which, decrypt it by hand. */
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        uint8_t nonce[12], plain[16];
        int len;
        memcpy(nonce, m->read.iv, 12);
        nonce[11] ^= (uint8_t)m->read.seq;
        assert_int_equal(s->sent_len, TLS13_RECORD_LEN(2));
        EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, m->read.key, nonce);
        EVP_DecryptUpdate(ctx, NULL, &len, s->sent, 5);
        EVP_DecryptUpdate(ctx, plain, &len, s->sent + 5, 3);
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, s->sent + 8);
        assert_int_equal(EVP_DecryptFinal_ex(ctx, plain + 3, &len), 1);
        EVP_CIPHER_CTX_free(ctx);
        assert_int_equal(plain[2], 21); /* an alert */
        assert_int_equal(plain[0], 2);  /* fatal */
        *alert = plain[1];
        assert_int_equal(tls13_record_read(m, e, s->sent, s->sent_len, &mrd), TLS13_EPEER_ALERT);
        free(ms);
    }
    tls13_record_free(r);
    tls13_record_free(m);
    return rc;
}

static void test_refusals(void **state)
{
    (void)state;
    tls13_engine_t *e = tls13_engine_new();
    tls13_record_t *m = rfc_record(true); /* only for its write keys: the client's */
    struct seen *s = seen_new();
    static uint8_t inner[TLS13_MAX_PLAINTEXT + 300], wire[TLS13_MAX_PLAINTEXT + 400];
    int alert;
    size_t n;

    /* Padding after the content type is fine; content, type, zeros. */
    memcpy(inner, "hi\x17\0\0\0\0", 7);
    n = raw_record(&m->write, 23, inner, 7, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_MORE);
    assert_int_equal(s->data_len, 2);
    assert_memory_equal(s->data, "hi", 2);

    /* All zeros: no content type. */
    memset(inner, 0, 8);
    n = raw_record(&m->write, 23, inner, 8, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EUNEXPECTED);
    assert_int_equal(alert, 10);

    /* A header announcing more than 2^14 + 256: refused before the body arrives. */
    memcpy(wire, "\x17\x03\x03\x41\x01", 5);
    assert_int_equal(read_fresh(e, wire, 5, s, &alert), TLS13_EOVERFLOW);
    assert_int_equal(alert, 22);

    /* An inner plaintext of 2^14 + 2 bytes (within the ciphertext limit). */
    memset(inner, 'x', TLS13_MAX_PLAINTEXT + 1);
    inner[TLS13_MAX_PLAINTEXT + 1] = 23;
    n = raw_record(&m->write, 23, inner, TLS13_MAX_PLAINTEXT + 2, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EOVERFLOW);
    assert_int_equal(alert, 22);
    /* 2^14 bytes of content is the most, and fine. */
    inner[TLS13_MAX_PLAINTEXT] = 23;
    n = raw_record(&m->write, 23, inner, TLS13_MAX_PLAINTEXT + 1, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_MORE);
    assert_int_equal(s->data_len, TLS13_MAX_PLAINTEXT);

    /* Too short to hold a tag. */
    memcpy(wire, "\x17\x03\x03\x00\x05hello", 10);
    assert_int_equal(read_fresh(e, wire, 10, s, &alert), TLS13_EBAD_MAC);
    assert_int_equal(alert, 20);

    /* A plaintext alert or change_cipher_spec after the handshake. */
    memcpy(wire, "\x15\x03\x03\x00\x02\x02\x28", 7);
    assert_int_equal(read_fresh(e, wire, 7, s, &alert), TLS13_EUNEXPECTED);
    assert_int_equal(alert, 10);
    memcpy(wire, "\x14\x03\x03\x00\x01\x01", 6);
    assert_int_equal(read_fresh(e, wire, 6, s, &alert), TLS13_EUNEXPECTED);

    /* Post-handshake messages other than KeyUpdate: a NewSessionTicket, a Finished. */
    memcpy(inner, "\x04\x00\x00\x01\x00\x16", 6);
    n = raw_record(&m->write, 23, inner, 6, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EUNEXPECTED);
    assert_int_equal(alert, 10);
    /* A KeyUpdate with a wrong length, or an unknown request; two in one record. */
    memcpy(inner, "\x18\x00\x00\x02\x00\x00\x16", 7);
    n = raw_record(&m->write, 23, inner, 7, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EDECODE);
    assert_int_equal(alert, 50);
    memcpy(inner, "\x18\x00\x00\x01\x02\x16", 6);
    n = raw_record(&m->write, 23, inner, 6, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EPARAM);
    assert_int_equal(alert, 47);
    memcpy(inner, "\x18\x00\x00\x01\x00\x18\x00\x00\x01\x00\x16", 11);
    n = raw_record(&m->write, 23, inner, 11, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EDECODE);
    /* An empty handshake record, a malformed alert, an unknown content type. */
    memcpy(inner, "\x16", 1);
    n = raw_record(&m->write, 23, inner, 1, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EUNEXPECTED);
    memcpy(inner, "\x01\x15", 2);
    n = raw_record(&m->write, 23, inner, 2, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EDECODE);
    memcpy(inner, "\x01\x18", 2); /* heartbeat */
    n = raw_record(&m->write, 23, inner, 2, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EUNEXPECTED);
    /* An error alert from the client: closed, no answer. */
    memcpy(inner, "\x02\x28\x15", 3);
    n = raw_record(&m->write, 23, inner, 3, wire);
    assert_int_equal(read_fresh(e, wire, n, s, &alert), TLS13_EPEER_ALERT);
    assert_int_equal(alert, -1);

    /* A peer whose sequence would wrap. */
    tls13_record_t *r = rfc_record(false);
    struct tls13_reader rd = reader_of(s);
    memset(s, 0, sizeof(*s));
    r->read.seq = UINT64_MAX;
    m->write.seq = UINT64_MAX;
    memcpy(inner, "hi\x17", 3);
    n = raw_record(&m->write, 23, inner, 3, wire);
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_ESEQUENCE);
    assert_int_equal(s->data_len, 0);
    tls13_record_free(r);

    tls13_record_free(m);
    free(s);
    tls13_engine_free(e);
}

static void test_key_update_and_stop(void **state)
{
    (void)state;
    tls13_engine_t *e = tls13_engine_new();
    tls13_record_t *r = rfc_record(false), *m = rfc_record(true);
    struct seen *s = seen_new(), *ms = seen_new();
    struct tls13_reader rd = reader_of(s), mrd = reader_of(ms);
    static uint8_t wire[8192];
    size_t n = 0;
    long k;

    /* Three records in one read; the reader stops after the first and resumes. */
    for (int i = 0; i < 3; i++) {
        char msg[8];
        snprintf(msg, sizeof(msg), "msg%d", i);
        k = tls13_record_seal(m, e, (const uint8_t *)msg, 4, wire + n);
        assert_true(k > 0);
        n += (size_t)k;
    }
    s->stop_after = 1;
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_STOPPED);
    assert_int_equal(s->data_len, 4);
    assert_non_null(r->buf); /* the two other records wait */
    s->stop_after = 0;
    assert_int_equal(tls13_record_read(r, e, NULL, 0, &rd), TLS13_MORE);
    assert_int_equal(s->data_len, 12);
    assert_memory_equal(s->data, "msg0msg1msg2", 12);
    assert_null(r->buf);

    /* The client's KeyUpdate with update_requested: we answer with ours. */
    k = tls13_record_seal_key_update(m, e, true, wire);
    assert_int_equal(k, TLS13_RECORD_LEN(5));
    n = (size_t)k;
    k = tls13_record_seal(m, e, (const uint8_t *)"after", 5, wire + n);
    n += (size_t)k;
    memset(s, 0, sizeof(*s));
    assert_int_equal(tls13_record_read(r, e, wire, n, &rd), TLS13_MORE);
    assert_memory_equal(s->data, "after", 5);
    assert_int_equal(r->read.seq, 1);
    assert_int_equal(s->sent_len, TLS13_RECORD_LEN(5)); /* our KeyUpdate */
    /* The mirror reads it (update_not_requested: it sends nothing) and then our new keys. */
    k = tls13_record_seal(r, e, (const uint8_t *)"new keys", 8, s->sent + s->sent_len);
    s->sent_len += (size_t)k;
    assert_int_equal(tls13_record_read(m, e, s->sent, s->sent_len, &mrd), TLS13_MORE);
    assert_int_equal(ms->sent_len, 0);
    assert_memory_equal(ms->data, "new keys", 8);

    /* Our write side re-keys by itself when its sequence reaches TLS13_REKEY_AFTER. */
    r->write.seq = TLS13_REKEY_AFTER - 1;
    uint8_t *big = malloc(3 * TLS13_MAX_PLAINTEXT);
    memset(big, 'b', 3 * TLS13_MAX_PLAINTEXT);
    size_t cap = tls13_record_sealed_len(r, 3 * TLS13_MAX_PLAINTEXT);
    assert_int_equal(cap, 3 * TLS13_RECORD_LEN(TLS13_MAX_PLAINTEXT) + TLS13_RECORD_LEN(5));
    uint8_t *out = malloc(cap);
    k = tls13_record_seal(r, e, big, 3 * TLS13_MAX_PLAINTEXT, out);
    assert_int_equal(k, (long)cap);
    assert_int_equal(r->write.seq, 2);
    m->read.seq = TLS13_REKEY_AFTER - 1;
    memset(ms, 0, sizeof(*ms));
    struct seen *big_seen = ms;
    assert_int_equal(tls13_record_read(m, e, out, (size_t)k, &mrd), TLS13_MORE);
    assert_int_equal(big_seen->data_len, 3 * TLS13_MAX_PLAINTEXT);
    free(out);
    free(big);

    tls13_record_free(r);
    tls13_record_free(m);
    free(s);
    free(ms);
    tls13_engine_free(e);
}

/* ---- against a real OpenSSL client ---- */

struct peer {
    SSL_CTX *sctx, *cctx;
    SSL *server, *client;
    tls13_record_t *rec;
};

static void keylog(const SSL *ssl, const char *line)
{
    struct peer *p = SSL_get_app_data(ssl);
    uint8_t random[32];
    SSL_get_client_random(ssl, random, sizeof(random));
    tls13_record_take_keylog(p->rec, line, random);
}

static void pump(SSL *from, SSL *to)
{
    char buf[4096];
    int n;
    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
        assert_int_equal(BIO_write(SSL_get_rbio(to), buf, n), n);
}

static SSL *ssl_with_bios(SSL_CTX *ctx)
{
    SSL *s = SSL_new(ctx);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r, -1);
    SSL_set_bio(s, r, w);
    return s;
}

/* Client wire bytes from its write BIO into buf. */
static size_t take_wire(SSL *ssl, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    int got;
    while (n < cap && (got = BIO_read(SSL_get_wbio(ssl), buf + n, (int)(cap - n))) > 0)
        n += (size_t)got;
    return n;
}

/* A TLS 1.3 handshake with suite, the server set up as iotd sets it up; first: what the client
 * writes right after its Finished (in the same flight, as a pipelined LOGIN). Then the server's
 * SSL is freed, its records handed to p->rec, with what its read BIO still held. */
static void peer_start(struct peer *p, const char *suite, const char *first)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_sign(x, pkey, EVP_sha256());
    memset(p, 0, sizeof(*p));
    p->rec = tls13_record_new();
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_use_certificate(p->sctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, pkey), 1);
    SSL_CTX_set_num_tickets(p->sctx, 0);
    SSL_CTX_set_keylog_callback(p->sctx, keylog);
    SSL_CTX_set_ciphersuites(p->sctx, suite);
    SSL_CTX_set_ciphersuites(p->cctx, suite);
    SSL_CTX_set_min_proto_version(p->cctx, TLS1_3_VERSION);
    X509_free(x);
    EVP_PKEY_free(pkey);
    p->server = ssl_with_bios(p->sctx);
    p->client = ssl_with_bios(p->cctx);
    SSL_set_app_data(p->server, p);
    SSL_set_accept_state(p->server);
    SSL_set_connect_state(p->client);
    for (int round = 0; round < 8 && !SSL_is_init_finished(p->server); round++) {
        if (SSL_do_handshake(p->client) == 1 && first) {
            SSL_write(p->client, first, (int)strlen(first)); /* behind the Finished */
            first = NULL;
        }
        pump(p->client, p->server);
        SSL_do_handshake(p->server);
        pump(p->server, p->client);
    }
    assert_true(SSL_is_init_finished(p->server));
    assert_int_equal(SSL_version(p->server), TLS1_3_VERSION);
    /* What tls_offload relies on: OpenSSL holds nothing itself, all that follows the client
     * Finished is still in the read BIO. */
    assert_false(SSL_has_pending(p->server));
    assert_int_equal(SSL_pending(p->server), 0);
    uint16_t id = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p->server));
    assert_int_equal(p->rec->have, 3);
    assert_int_equal(tls13_record_start(p->rec, id, 0), 0);
    char *held;
    long held_len = BIO_get_mem_data(SSL_get_rbio(p->server), &held);
    if (held_len > 0)
        assert_int_equal(tls13_record_stash(p->rec, (uint8_t *)held, (size_t)held_len), 0);
    assert_int_equal(BIO_ctrl_pending(SSL_get_wbio(p->server)), 0);
    SSL_free(p->server);
    p->server = NULL;
    /* The client reads nothing (no ticket) but finishes its side. */
    char none[8];
    assert_true(SSL_read(p->client, none, sizeof(none)) <= 0);
    ERR_clear_error();
}

static void peer_free(struct peer *p)
{
    SSL_free(p->client);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    tls13_record_free(p->rec);
}

/* Feed the client's pending wire bytes to the record layer, chunk bytes at a time (0: all). */
static int feed(struct peer *p, tls13_engine_t *e, struct seen *s, size_t chunk)
{
    static uint8_t wire[400000];
    struct tls13_reader rd = reader_of(s);
    size_t n = take_wire(p->client, wire, sizeof(wire)), off = 0;
    int rc = TLS13_MORE;
    do {
        size_t take = chunk && n - off > chunk ? chunk : n - off;
        rc = tls13_record_read(p->rec, e, wire + off, take, &rd);
        off += take;
    } while (off < n && rc == TLS13_MORE);
    return rc;
}

/* Seal data for the client and let it read everything back; returns the bytes it read. */
static size_t to_client(struct peer *p, tls13_engine_t *e, const uint8_t *data, size_t len,
                        uint8_t *back, size_t cap)
{
    uint8_t *out = malloc(tls13_record_sealed_len(p->rec, len));
    long n = tls13_record_seal(p->rec, e, data, len, out);
    assert_true(n > 0);
    assert_int_equal(BIO_write(SSL_get_rbio(p->client), out, (int)n), (int)n);
    free(out);
    size_t got = 0;
    int r;
    while (got < cap && (r = SSL_read(p->client, back + got, (int)(cap - got))) > 0)
        got += (size_t)r;
    ERR_clear_error();
    return got;
}

static void with_openssl(const char *suite)
{
    tls13_engine_t *e = tls13_engine_new();
    struct seen *s = seen_new();
    struct peer p;
    static uint8_t big[100000], back[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i % 251);

    /* A LOGIN pipelined with the client's Finished: in the read BIO, sequence 0. */
    peer_start(&p, suite, "LOGIN pipelined");
    assert_int_equal(feed(&p, e, s, 0), TLS13_MORE);
    assert_int_equal(s->data_len, 15);
    assert_memory_equal(s->data, "LOGIN pipelined", 15);

    /* Both ways, small and large (the client and we split into 2^14-byte records). */
    memset(s, 0, sizeof(*s));
    assert_int_equal(SSL_write(p.client, "hello", 5), 5);
    assert_int_equal(feed(&p, e, s, 0), TLS13_MORE);
    assert_memory_equal(s->data, "hello", 5);
    assert_int_equal(to_client(&p, e, (const uint8_t *)"world", 5, back, sizeof(back)), 5);
    assert_memory_equal(back, "world", 5);
    assert_int_equal(to_client(&p, e, big, sizeof(big), back, sizeof(back)), sizeof(big));
    assert_memory_equal(back, big, sizeof(big));
    memset(s, 0, sizeof(*s));
    assert_int_equal(SSL_write(p.client, big, sizeof(big)), (int)sizeof(big));
    assert_int_equal(feed(&p, e, s, 0), TLS13_MORE);
    assert_int_equal(s->data_len, sizeof(big));
    assert_memory_equal(s->data, big, sizeof(big));

    /* Byte by byte. */
    memset(s, 0, sizeof(*s));
    assert_int_equal(SSL_write(p.client, big, 20000), 20000);
    assert_int_equal(feed(&p, e, s, 1), TLS13_MORE);
    assert_int_equal(s->data_len, 20000);
    assert_memory_equal(s->data, big, 20000);
    assert_null(p.rec->buf);

    /* The client updates its keys and asks us to update ours: we answer (through send),
     * and the client reads what we write under our new keys. */
    memset(s, 0, sizeof(*s));
    assert_int_equal(SSL_key_update(p.client, SSL_KEY_UPDATE_REQUESTED), 1);
    assert_int_equal(SSL_write(p.client, "after update", 12), 12);
    assert_int_equal(feed(&p, e, s, 0), TLS13_MORE);
    assert_memory_equal(s->data, "after update", 12);
    assert_int_equal(s->sent_len, TLS13_RECORD_LEN(5));
    assert_int_equal(BIO_write(SSL_get_rbio(p.client), s->sent, (int)s->sent_len),
                     (int)s->sent_len);
    assert_int_equal(to_client(&p, e, (const uint8_t *)"ours too", 8, back, sizeof(back)), 8);
    assert_memory_equal(back, "ours too", 8);
    /* Without a request: we only follow. */
    memset(s, 0, sizeof(*s));
    assert_int_equal(SSL_key_update(p.client, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    assert_int_equal(SSL_write(p.client, "again", 5), 5);
    assert_int_equal(feed(&p, e, s, 0), TLS13_MORE);
    assert_memory_equal(s->data, "again", 5);
    assert_int_equal(s->sent_len, 0);

    /* We ask the client to update: it answers with its KeyUpdate before its next data. */
    uint8_t ku[TLS13_RECORD_LEN(5)];
    assert_int_equal(tls13_record_seal_key_update(p.rec, e, true, ku), (long)sizeof(ku));
    assert_int_equal(BIO_write(SSL_get_rbio(p.client), ku, (int)sizeof(ku)), (int)sizeof(ku));
    assert_int_equal(to_client(&p, e, (const uint8_t *)"x", 1, back, sizeof(back)), 1);
    memset(s, 0, sizeof(*s));
    assert_int_equal(SSL_write(p.client, "client updated", 14), 14);
    assert_int_equal(feed(&p, e, s, 0), TLS13_MORE);
    assert_memory_equal(s->data, "client updated", 14);

    /* The client's close_notify ends it cleanly; ours reaches the client as one. */
    memset(s, 0, sizeof(*s));
    SSL_shutdown(p.client);
    assert_int_equal(feed(&p, e, s, 0), TLS13_PEER_CLOSED);
    uint8_t alert[TLS13_RECORD_LEN(2)];
    assert_int_equal(tls13_record_seal_close_notify(p.rec, e, alert), (long)sizeof(alert));
    assert_int_equal(BIO_write(SSL_get_rbio(p.client), alert, (int)sizeof(alert)),
                     (int)sizeof(alert));
    assert_true(SSL_read(p.client, back, 10) <= 0);
    assert_int_equal(SSL_get_error(p.client, 0), SSL_ERROR_ZERO_RETURN);
    assert_int_equal(tls13_record_seal(p.rec, e, big, 10, back), TLS13_EFAILED);
    peer_free(&p);

    /* Our close_notify first: the client sees a clean end. */
    peer_start(&p, suite, NULL);
    assert_int_equal(tls13_record_seal_close_notify(p.rec, e, alert), (long)sizeof(alert));
    BIO_write(SSL_get_rbio(p.client), alert, (int)sizeof(alert));
    assert_true(SSL_read(p.client, back, 10) <= 0);
    assert_int_equal(SSL_get_error(p.client, 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    peer_free(&p);

    free(s);
    tls13_engine_free(e);
}

static void test_openssl_aes128(void **state)
{
    (void)state;
    with_openssl("TLS_AES_128_GCM_SHA256");
}

static void test_openssl_aes256(void **state)
{
    (void)state;
    with_openssl("TLS_AES_256_GCM_SHA384");
}

static void test_openssl_chacha(void **state)
{
    (void)state;
    with_openssl("TLS_CHACHA20_POLY1305_SHA256");
}

/* A client that negotiated max_fragment_length 512 gets records of at most 512 bytes. */
static void test_max_fragment(void **state)
{
    (void)state;
    tls13_engine_t *e = tls13_engine_new();
    tls13_record_t *r = rfc_record(false);
    static uint8_t data[2000], out[4000];
    r->max_fragment = 512;
    long n = tls13_record_seal(r, e, data, sizeof(data), out);
    assert_int_equal(n, (long)tls13_record_sealed_len(r, sizeof(data)));
    assert_int_equal(n, 3 * TLS13_RECORD_LEN(512) + TLS13_RECORD_LEN(2000 - 3 * 512));
    assert_int_equal(out[3] << 8 | out[4], 512 + 17);
    tls13_record_free(r);
    tls13_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8448_keys),   cmocka_unit_test(test_rfc8448_records),
        cmocka_unit_test(test_refusals),       cmocka_unit_test(test_key_update_and_stop),
        cmocka_unit_test(test_openssl_aes128), cmocka_unit_test(test_openssl_aes256),
        cmocka_unit_test(test_openssl_chacha), cmocka_unit_test(test_max_fragment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
