/*
 * fuzz_tls13_record.c - libFuzzer target for iotd's TLS 1.3 record layer (iotd/net/
 * tls13_record.c), what a TLS client's bytes reach after the handshake.
 *
 * The first byte picks the suite and whether the rest is raw wire bytes (garbage records:
 * headers, lengths, tags) or a list of inner plaintexts that the fuzzer seals properly with
 * the client's keys, so that the checks after decryption (padding, content types, alerts,
 * KeyUpdate and other handshake messages, lengths) are explored too. The second byte sets
 * the chunk size the bytes are fed in and whether the reader stops after each record (and is
 * resumed). Checked: data handed out is never more than 2^14 bytes a call, a reply is one
 * record (an alert or a KeyUpdate), and after an error or close nothing more is read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls13_record.h"

#include <openssl/evp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

struct sink {
    bool stop;
    size_t data_bytes;
};

static bool on_data(void *arg, const uint8_t *data, size_t len)
{
    struct sink *s = arg;
    (void)data;
    check(len > 0 && len <= TLS13_MAX_PLAINTEXT);
    s->data_bytes += len;
    return !s->stop;
}

static int on_send(void *arg, const uint8_t *wire, size_t len)
{
    (void)arg;
    check(len == TLS13_RECORD_LEN(2) || len == TLS13_RECORD_LEN(5));
    check(wire[0] == 23 && wire[1] == 3 && wire[2] == 3);
    return 0;
}

static const uint16_t suites[] = {TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384,
                                  TLS13_CHACHA20_POLY1305_SHA256};

/* Any inner plaintext, sealed as the client would with d (its sequence advances). */
static size_t seal_inner(uint16_t suite, struct tls13_direction *d, uint8_t outer,
                         const uint8_t *inner, size_t n, uint8_t *out)
{
    const EVP_CIPHER *cipher = suite == TLS13_AES_128_GCM_SHA256   ? EVP_aes_128_gcm()
                               : suite == TLS13_AES_256_GCM_SHA384 ? EVP_aes_256_gcm()
                                                                   : EVP_chacha20_poly1305();
    uint8_t nonce[TLS13_IV_LEN];
    int len;
    memcpy(nonce, d->iv, sizeof(nonce));
    for (int i = 0; i < 8; i++)
        nonce[TLS13_IV_LEN - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
    d->seq++;
    size_t body = n + TLS13_TAG_LEN;
    uint8_t header[5] = {outer, 3, 3, (uint8_t)(body >> 8), (uint8_t)body};
    memcpy(out, header, 5);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    check(ctx && EVP_EncryptInit_ex(ctx, cipher, NULL, d->key, nonce) == 1);
    check(EVP_EncryptUpdate(ctx, NULL, &len, header, 5) == 1);
    check(n == 0 || EVP_EncryptUpdate(ctx, out + 5, &len, inner, (int)n) == 1);
    check(EVP_EncryptFinal_ex(ctx, out + 5 + n, &len) == 1);
    check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS13_TAG_LEN, out + 5 + n) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return 5 + body;
}

/* Server (r) and client (m) record layers over fixed secrets. */
static void pair_start(uint16_t suite, tls13_record_t *r, tls13_record_t *m)
{
    memset(r->read.secret, 0x11, TLS13_MAX_SECRET);
    memset(r->write.secret, 0x22, TLS13_MAX_SECRET);
    memset(m->read.secret, 0x22, TLS13_MAX_SECRET);
    memset(m->write.secret, 0x11, TLS13_MAX_SECRET);
    r->have = m->have = 3;
    check(tls13_record_start(r, suite, 0) == 0);
    check(tls13_record_start(m, suite, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tls13_engine_t *e;
    static uint8_t wire[1 << 17];
    if (!e)
        e = tls13_engine_new();
    check(e != NULL);
    if (size < 2)
        return 0;
    uint16_t suite = suites[(data[0] & 0x7f) % 3];
    bool craft = data[0] & 0x80;
    size_t chunk = (size_t)(data[1] & 0x7f) + 1;
    struct sink s = {.stop = data[1] & 0x80};
    data += 2;
    size -= 2;

    tls13_record_t *r = tls13_record_new(), *m = tls13_record_new();
    check(r && m);
    pair_start(suite, r, m);
    size_t n = 0;
    if (!craft) {
        n = size < sizeof(wire) ? size : sizeof(wire);
        memcpy(wire, data, n);
    } else {
        /* Entries: [outer type or 0 for application_data][length][inner bytes]. */
        size_t i = 0;
        while (i + 2 <= size && n + 5 + 255 + TLS13_TAG_LEN <= sizeof(wire)) {
            uint8_t outer = data[i] ? data[i] : 23;
            size_t len = data[i + 1];
            i += 2;
            if (len > size - i)
                len = size - i;
            n += seal_inner(suite, &m->write, outer, data + i, len, wire + n);
            i += len;
        }
    }

    struct tls13_reader rd = {.data = on_data, .send = on_send, .arg = &s};
    int rc = TLS13_MORE;
    for (size_t off = 0; off < n && (rc == TLS13_MORE || rc == TLS13_STOPPED);) {
        size_t take = n - off < chunk ? n - off : chunk;
        rc = tls13_record_read(r, e, wire + off, take, &rd);
        off += take;
        /* A stopped reader keeps the rest: resume it with no new bytes, as conn_tls does. */
        for (int resumes = 0; rc == TLS13_STOPPED && resumes < 4096; resumes++)
            rc = tls13_record_read(r, e, NULL, 0, &rd);
    }
    if (rc < 0 || rc == TLS13_PEER_CLOSED)
        check(tls13_record_read(r, e, wire, n, &rd) == TLS13_EFAILED);
    tls13_record_free(r);
    tls13_record_free(m);
    return 0;
}
