/*
 * tls13_record.c - the TLS 1.3 record layer after the handshake (see tls13_record.h).
 *
 * Why this is as safe as OpenSSL's own record layer:
 *  - Same primitives: the AEAD is EVP's (the same provider code OpenSSL's record layer calls),
 *    keys and IVs come from the traffic secrets by HKDF-Expand-Label exactly as RFC 8446 7.3
 *    says, and the suite is the one OpenSSL negotiated (nothing is chosen here).
 *  - Same nonces: per-record nonce = IV xor the 64-bit sequence number, left-padded (RFC 8446
 *    5.3); the sequence numbers start at 0 for the application keys and count every record
 *    either way. A nonce is never reused under one key: our write side re-keys with a
 *    KeyUpdate long before the sequence could wrap (TLS13_REKEY_AFTER), and a peer whose
 *    sequence would wrap is closed.
 *  - Same authentication: the 5-byte record header is the additional data; a record is used
 *    only once its tag verified, and EVP compares tags in constant time (CRYPTO_memcmp in the
 *    providers). A bad tag is fatal (bad_record_mac), as RFC 8446 5.2 requires, so an attacker
 *    gets one guess per connection.
 *  - Less to attack than before: TLS 1.3 has no renegotiation, no compression, no CBC; after
 *    the handshake the only handshake message a client may send (without post-handshake
 *    authentication, which iotd never requests) is KeyUpdate, and anything else is refused
 *    with unexpected_message. Lengths are checked before anything is buffered or decrypted
 *    (record_overflow above 2^14 + 256), so a peer cannot make us hold more than one record.
 *  - The secrets are cleansed when the connection ends, and an old secret as soon as a
 *    KeyUpdate replaced it.
 *
 * Cost: a record is sealed or opened with one of the io thread's EVP_CIPHER_CTXs (a few slots
 * per direction, see KEY_SLOTS), re-keyed only when its slot holds another key, so a busy
 * connection usually pays for setting the nonce only. The plaintext of a record goes to the
 * engine's scratch, never to per-connection memory.
 */
#include "net/tls13_record.h"

#include "iotp/iotp_hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

/* Record content types (RFC 8446 5.1) and the alerts this layer sends (6.2). */
enum { TYPE_ALERT = 21, TYPE_HANDSHAKE = 22, TYPE_APPLICATION_DATA = 23 };
enum {
    ALERT_WARNING = 1,
    ALERT_FATAL = 2,
    ALERT_CLOSE_NOTIFY = 0,
    ALERT_UNEXPECTED_MESSAGE = 10,
    ALERT_BAD_RECORD_MAC = 20,
    ALERT_RECORD_OVERFLOW = 22,
    ALERT_ILLEGAL_PARAMETER = 47,
    ALERT_DECODE_ERROR = 50,
    ALERT_INTERNAL_ERROR = 80,
    ALERT_USER_CANCELED = 90,
};
#define HANDSHAKE_KEY_UPDATE 24
#define KEY_UPDATE_LEN       5 /* type, 24-bit length 1, request_update */

struct suite {
    uint16_t id;
    const char *cipher; /* EVP name */
    const EVP_MD *(*digest)(void);
    uint8_t key_len, hash_len;
};
static const struct suite suites[] = {
    {TLS13_AES_128_GCM_SHA256, "AES-128-GCM", EVP_sha256, 16, 32},
    {TLS13_AES_256_GCM_SHA384, "AES-256-GCM", EVP_sha384, 32, 48},
    {TLS13_CHACHA20_POLY1305_SHA256, "ChaCha20-Poly1305", EVP_sha256, 32, 32},
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

static const struct suite *suite_find(uint16_t id)
{
    for (size_t i = 0; i < NSUITES; i++)
        if (suites[i].id == id)
            return &suites[i];
    return NULL;
}

/* A cipher context and the key it holds, so that a record under the same key only sets the
 * nonce. */
struct keyed_ctx {
    EVP_CIPHER_CTX *ctx;       /* made at first use */
    const struct suite *suite; /* NULL: holds no key we know */
    uint8_t key[TLS13_MAX_KEY];
};

/* Keyed contexts per direction, picked by the key's first bytes (random, so a fair hash).
 * Setting a key costs more than the record it protects (an AES-GCM key schedule and GHASH
 * table: about 1.8 us against 1.2 us for a whole 100-byte record on the test machine), and a
 * relay alternates between two connections at least: with a few slots each connection that
 * is busy keeps its key set. A slot shared by two keys only costs a re-key. */
#define KEY_SLOTS 16

struct tls13_engine {
    EVP_CIPHER *cipher[NSUITES]; /* fetched once: an implicit fetch per record takes a lock */
    struct keyed_ctx seal[KEY_SLOTS], open[KEY_SLOTS];
    uint8_t plain[TLS13_MAX_PLAINTEXT + 1]; /* the largest TLSInnerPlaintext allowed */
};

tls13_engine_t *tls13_engine_new(void)
{
    tls13_engine_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    /* A cipher the provider lacks (ChaCha20 under FIPS) stays NULL: its suite is refused by
     * tls13_record_start and such connections stay on OpenSSL. */
    for (size_t i = 0; i < NSUITES; i++)
        e->cipher[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher, NULL);
    return e;
}

void tls13_engine_free(tls13_engine_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < NSUITES; i++)
        EVP_CIPHER_free(e->cipher[i]);
    for (size_t i = 0; i < KEY_SLOTS; i++) {
        EVP_CIPHER_CTX_free(e->seal[i].ctx);
        EVP_CIPHER_CTX_free(e->open[i].ctx);
    }
    OPENSSL_cleanse(e, sizeof(*e)); /* the last keys and plaintext */
    free(e);
}

const char *tls13_strerror(int status)
{
    switch (status) {
    case TLS13_MORE:
        return "more bytes needed";
    case TLS13_STOPPED:
        return "stopped";
    case TLS13_PEER_CLOSED:
        return "peer closed";
    case TLS13_EBAD_MAC:
        return "tls: bad record mac";
    case TLS13_EOVERFLOW:
        return "tls: record overflow";
    case TLS13_EUNEXPECTED:
        return "tls: unexpected message";
    case TLS13_EDECODE:
        return "tls: decode error";
    case TLS13_EPARAM:
        return "tls: illegal parameter";
    case TLS13_EPEER_ALERT:
        return "tls: alert from peer";
    case TLS13_EINTERNAL:
        return "tls: internal error";
    case TLS13_ESEND:
        return "tls: output bound reached";
    case TLS13_ESEQUENCE:
        return "tls: sequence number would wrap";
    case TLS13_EFAILED:
        return "tls: connection already failed";
    default:
        return "tls: unknown status";
    }
}

int tls13_hkdf_expand_label(uint16_t suite, const uint8_t *secret, const char *label,
                            const uint8_t *context, size_t context_len, uint8_t *out,
                            size_t out_len)
{
    const struct suite *s = suite_find(suite);
    /* struct HkdfLabel: uint16 length, opaque label<7..255> ("tls13 " + label), opaque
     * context<0..255> (RFC 8446 7.1). */
    uint8_t info[2 + 1 + 255 + 1 + 255];
    size_t label_len = strlen(label), n = 0;
    if (!s || 6 + label_len > 255 || context_len > 255 || out_len > 255u * s->hash_len)
        return TLS13_EINTERNAL;
    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)(6 + label_len);
    memcpy(info + n, "tls13 ", 6);
    memcpy(info + n + 6, label, label_len);
    n += 6 + label_len;
    info[n++] = (uint8_t)context_len;
    if (context_len > 0)
        memcpy(info + n, context, context_len);
    n += context_len;

    /* HKDF-Expand (RFC 5869 2.3): T(i) = HMAC(secret, T(i-1) | info | i), out = T(1) | T(2)... */
    uint8_t block[EVP_MAX_MD_SIZE + sizeof(info) + 1], t[EVP_MAX_MD_SIZE];
    size_t t_len = 0, done = 0;
    int rc = 0;
    for (uint8_t i = 1; done < out_len; i++) {
        memcpy(block, t, t_len);
        memcpy(block + t_len, info, n);
        block[t_len + n] = i;
        unsigned md_len = 0;
        if (!HMAC(s->digest(), secret, s->hash_len, block, t_len + n + 1, t, &md_len)) {
            rc = TLS13_EINTERNAL;
            break;
        }
        t_len = md_len;
        size_t take = out_len - done < t_len ? out_len - done : t_len;
        memcpy(out + done, t, take);
        done += take;
    }
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(t, sizeof(t));
    return rc;
}

/* key and iv of d from its secret (RFC 8446 7.3). */
static int direction_derive(const struct suite *s, struct tls13_direction *d)
{
    if (tls13_hkdf_expand_label(s->id, d->secret, "key", NULL, 0, d->key, s->key_len) != 0 ||
        tls13_hkdf_expand_label(s->id, d->secret, "iv", NULL, 0, d->iv, TLS13_IV_LEN) != 0)
        return TLS13_EINTERNAL;
    d->seq = 0;
    return 0;
}

/* The next generation of d (KeyUpdate, RFC 8446 7.2): application_traffic_secret_N+1 =
 * HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length); the old one is overwritten. */
static int direction_update(const struct suite *s, struct tls13_direction *d)
{
    uint8_t next[TLS13_MAX_SECRET];
    int rc = tls13_hkdf_expand_label(s->id, d->secret, "traffic upd", NULL, 0, next, s->hash_len);
    if (rc == 0) {
        memcpy(d->secret, next, s->hash_len);
        rc = direction_derive(s, d);
    }
    OPENSSL_cleanse(next, sizeof(next));
    return rc;
}

bool tls13_record_take_keylog(tls13_record_t *r, const char *line, const uint8_t client_random[32])
{
    /* "<LABEL> <64 hex client random> <hex secret>" (the NSS key log format). Only the first
     * application secrets are taken: the handshake's are of no use after it. */
    static const struct {
        const char *label;
        uint8_t bit;
    } wanted[] = {{"CLIENT_TRAFFIC_SECRET_0 ", 1}, {"SERVER_TRAFFIC_SECRET_0 ", 2}};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        size_t n = strlen(wanted[i].label);
        if (strncmp(line, wanted[i].label, n) != 0)
            continue;
        const char *p = line + n;
        uint8_t random[32], secret[TLS13_MAX_SECRET];
        bool took = false;
        if (strlen(p) < 65 || iotp_hex_decode(p, 64, random, sizeof(random)) != 32 ||
            CRYPTO_memcmp(random, client_random, 32) != 0 || p[64] != ' ')
            return false; /* another connection's line, or not one OpenSSL writes */
        p += 65;
        size_t hex_len = strcspn(p, "\n");
        /* A SHA-256 or SHA-384 secret. */
        if ((hex_len == 64 || hex_len == 96) &&
            iotp_hex_decode(p, hex_len, secret, sizeof(secret)) == (int)hex_len / 2) {
            struct tls13_direction *d = wanted[i].bit == 1 ? &r->read : &r->write;
            memcpy(d->secret, secret, hex_len / 2);
            r->have |= wanted[i].bit;
            took = true;
        }
        OPENSSL_cleanse(secret, sizeof(secret));
        return took;
    }
    return false;
}

int tls13_record_start(tls13_record_t *r, uint16_t suite, unsigned max_fragment)
{
    const struct suite *s = suite_find(suite);
    if (!s || r->have != 3)
        return TLS13_EINTERNAL;
    r->suite = suite;
    r->max_fragment =
        (uint16_t)(max_fragment == 0 || max_fragment > TLS13_MAX_PLAINTEXT ? TLS13_MAX_PLAINTEXT
                                                                           : max_fragment);
    r->read_closed = r->write_closed = false;
    if (direction_derive(s, &r->read) != 0 || direction_derive(s, &r->write) != 0) {
        r->suite = 0;
        return TLS13_EINTERNAL;
    }
    return 0;
}

tls13_record_t *tls13_record_new(void)
{
    return calloc(1, sizeof(tls13_record_t));
}

void tls13_record_free(tls13_record_t *r)
{
    if (!r)
        return;
    free(r->buf);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

/* Room for n more bytes at the end of r's buffer (moving what waits to its start). */
static int buf_reserve(tls13_record_t *r, size_t n)
{
    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len);
        r->off = 0;
    }
    if ((size_t)r->len + n <= r->cap)
        return 0;
    if ((size_t)r->len + n > UINT32_MAX)
        return TLS13_EINTERNAL;
    uint8_t *grown = realloc(r->buf, r->len + n);
    if (!grown)
        return TLS13_EINTERNAL;
    r->buf = grown;
    r->cap = (uint32_t)(r->len + n);
    return 0;
}

int tls13_record_stash(tls13_record_t *r, const uint8_t *wire, size_t len)
{
    if (len == 0)
        return 0;
    if (buf_reserve(r, len) != 0)
        return TLS13_EINTERNAL;
    memcpy(r->buf + r->len, wire, len);
    r->len += (uint32_t)len;
    return 0;
}

/* Give the buffer back once nothing waits in it: an idle connection holds none. */
static void buf_consumed(tls13_record_t *r, size_t n)
{
    r->off += (uint32_t)n;
    r->len -= (uint32_t)n;
    if (r->len == 0) {
        free(r->buf);
        r->buf = NULL;
        r->off = r->cap = 0;
    }
}

/* nonce = iv xor the sequence number, big-endian in the last 8 bytes (RFC 8446 5.3). */
static void make_nonce(const struct tls13_direction *d, uint8_t nonce[TLS13_IV_LEN])
{
    memcpy(nonce, d->iv, TLS13_IV_LEN);
    for (int i = 0; i < 8; i++)
        nonce[TLS13_IV_LEN - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* A context of slots (e->seal or e->open) ready for a record of s under key with this nonce:
 * the full init only when its slot holds another key. NULL on failure. */
static EVP_CIPHER_CTX *keyed_begin(tls13_engine_t *e, struct keyed_ctx *slots,
                                   const struct suite *s, const uint8_t *key, const uint8_t *nonce,
                                   int enc)
{
    EVP_CIPHER *cipher = e->cipher[s - suites];
    struct keyed_ctx *k = &slots[(key[0] | key[1] << 8) % KEY_SLOTS];
    if (!cipher || (!k->ctx && !(k->ctx = EVP_CIPHER_CTX_new())))
        return NULL;
    if (k->suite == s && CRYPTO_memcmp(k->key, key, s->key_len) == 0)
        return EVP_CipherInit_ex(k->ctx, NULL, NULL, NULL, nonce, enc) == 1 ? k->ctx : NULL;
    k->suite = NULL;
    if (EVP_CipherInit_ex(k->ctx, cipher, NULL, key, nonce, enc) != 1)
        return NULL;
    k->suite = s;
    memcpy(k->key, key, s->key_len);
    return k->ctx;
}

/* After a failed call the context's state is not trusted: its slot starts afresh. */
static void keyed_forget(struct keyed_ctx *slots, const uint8_t *key)
{
    slots[(key[0] | key[1] << 8) % KEY_SLOTS].suite = NULL;
}

static void header_write(uint8_t *out, size_t body_len)
{
    out[0] = TYPE_APPLICATION_DATA; /* the outer type of every protected record */
    out[1] = 0x03;                  /* legacy_record_version 0x0303 */
    out[2] = 0x03;
    out[3] = (uint8_t)(body_len >> 8);
    out[4] = (uint8_t)body_len;
}

/* One record of content type `type` carrying content[0, n) (n <= 2^14), sealed with d into
 * out[TLS13_RECORD_LEN(n)]; d's sequence advances. */
static int seal_one(tls13_engine_t *e, const struct suite *s, struct tls13_direction *d,
                    uint8_t type, const uint8_t *content, size_t n, uint8_t *out)
{
    uint8_t nonce[TLS13_IV_LEN];
    int len1 = 0, len2 = 0, len3 = 0;
    make_nonce(d, nonce);
    header_write(out, n + 1 + TLS13_TAG_LEN);
    uint8_t *body = out + TLS13_HEADER_LEN;
    /* The inner plaintext is content || type, with no padding: two updates, no copy. */
    EVP_CIPHER_CTX *ctx = keyed_begin(e, e->seal, s, d->key, nonce, 1);
    if (!ctx || EVP_EncryptUpdate(ctx, NULL, &len1, out, TLS13_HEADER_LEN) != 1 ||
        (n > 0 && EVP_EncryptUpdate(ctx, body, &len1, content, (int)n) != 1) ||
        EVP_EncryptUpdate(ctx, body + (n > 0 ? len1 : 0), &len2, &type, 1) != 1 ||
        EVP_EncryptFinal_ex(ctx, body + (n > 0 ? len1 : 0) + len2, &len3) != 1 ||
        (size_t)((n > 0 ? len1 : 0) + len2 + len3) != n + 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLS13_TAG_LEN, body + n + 1) != 1) {
        keyed_forget(e->seal, d->key);
        return TLS13_EINTERNAL;
    }
    d->seq++;
    return 0;
}

/* Our KeyUpdate into out[TLS13_RECORD_LEN(5)], then our write keys change. */
static long seal_key_update(tls13_record_t *r, tls13_engine_t *e, bool request_peer, uint8_t *out)
{
    const struct suite *s = suite_find(r->suite);
    uint8_t msg[KEY_UPDATE_LEN] = {HANDSHAKE_KEY_UPDATE, 0, 0, 1, request_peer ? 1 : 0};
    if (!s || seal_one(e, s, &r->write, TYPE_HANDSHAKE, msg, sizeof(msg), out) != 0 ||
        direction_update(s, &r->write) != 0) {
        r->write_closed = true;
        return TLS13_EINTERNAL;
    }
    return TLS13_RECORD_LEN(KEY_UPDATE_LEN);
}

long tls13_record_seal_key_update(tls13_record_t *r, tls13_engine_t *e, bool request_peer,
                                  uint8_t *out)
{
    if (r->write_closed || r->suite == 0)
        return TLS13_EFAILED;
    return seal_key_update(r, e, request_peer, out);
}

size_t tls13_record_sealed_len(const tls13_record_t *r, size_t len)
{
    size_t fragment = r->max_fragment ? r->max_fragment : TLS13_MAX_PLAINTEXT;
    size_t records = (len + fragment - 1) / fragment;
    size_t n = len + records * TLS13_RECORD_LEN(0);
    if (r->write.seq + records >= TLS13_REKEY_AFTER)
        n += TLS13_RECORD_LEN(KEY_UPDATE_LEN);
    return n;
}

long tls13_record_seal(tls13_record_t *r, tls13_engine_t *e, const uint8_t *data, size_t len,
                       uint8_t *out)
{
    const struct suite *s = suite_find(r->suite);
    size_t done = 0, written = 0;
    if (r->write_closed || !s)
        return TLS13_EFAILED;
    while (done < len) {
        if (r->write.seq >= TLS13_REKEY_AFTER) {
            long n = seal_key_update(r, e, false, out + written);
            if (n < 0)
                return n;
            written += (size_t)n;
        }
        size_t n = len - done < r->max_fragment ? len - done : r->max_fragment;
        if (seal_one(e, s, &r->write, TYPE_APPLICATION_DATA, data + done, n, out + written) != 0) {
            r->write_closed = true;
            return TLS13_EINTERNAL;
        }
        done += n;
        written += TLS13_RECORD_LEN(n);
    }
    return (long)written;
}

/* One alert record into out[TLS13_RECORD_LEN(2)]. */
static long seal_alert(tls13_record_t *r, tls13_engine_t *e, uint8_t level, uint8_t description,
                       uint8_t *out)
{
    const struct suite *s = suite_find(r->suite);
    uint8_t alert[2] = {level, description};
    if (r->write_closed || !s)
        return TLS13_EFAILED;
    /* A failed read leaves the write side sound: the fatal alert that reports a bad record
     * goes out under our keys. After any alert, nothing more. */
    r->write_closed = true;
    if (seal_one(e, s, &r->write, TYPE_ALERT, alert, sizeof(alert), out) != 0)
        return TLS13_EINTERNAL;
    return TLS13_RECORD_LEN(2);
}

long tls13_record_seal_close_notify(tls13_record_t *r, tls13_engine_t *e, uint8_t *out)
{
    return seal_alert(r, e, ALERT_WARNING, ALERT_CLOSE_NOTIFY, out);
}

/* The alert each error sends (0: none). */
static uint8_t alert_for(int status)
{
    switch (status) {
    case TLS13_EBAD_MAC:
        return ALERT_BAD_RECORD_MAC;
    case TLS13_EOVERFLOW:
        return ALERT_RECORD_OVERFLOW;
    case TLS13_EUNEXPECTED:
        return ALERT_UNEXPECTED_MESSAGE;
    case TLS13_EDECODE:
        return ALERT_DECODE_ERROR;
    case TLS13_EPARAM:
        return ALERT_ILLEGAL_PARAMETER;
    case TLS13_EINTERNAL:
    case TLS13_ESEQUENCE:
        return ALERT_INTERNAL_ERROR;
    default:
        return 0;
    }
}

/* Reading failed with status: say so to the peer with a fatal alert if the status has one
 * (and nothing was sent after our last record). */
static int fail(tls13_record_t *r, tls13_engine_t *e, const struct tls13_reader *rd, int status)
{
    uint8_t alert = alert_for(status), out[TLS13_RECORD_LEN(2)];
    r->read_closed = true;
    if (alert != 0) {
        long n = seal_alert(r, e, ALERT_FATAL, alert, out);
        if (n > 0)
            rd->send(rd->arg, out, (size_t)n);
    }
    return status;
}

/* The length of the record at p (its header complete), or a negative status. */
static long record_length(const uint8_t *p)
{
    size_t body = (size_t)p[3] << 8 | p[4];
    /* Checked on the header, before anything is buffered (RFC 8446 5.2). */
    if (body > TLS13_MAX_CIPHERTEXT)
        return TLS13_EOVERFLOW;
    /* After the handshake every record is protected, so its outer type is application_data:
     * a plaintext alert, change_cipher_spec or handshake record now is unexpected. */
    if (p[0] != TYPE_APPLICATION_DATA)
        return TLS13_EUNEXPECTED;
    return (long)(TLS13_HEADER_LEN + body);
}

/* A post-handshake handshake record: only a whole KeyUpdate (RFC 8446 4.6.3) is allowed,
 * and it must end its record (5.1: key changes align with record boundaries). */
static int on_handshake(tls13_record_t *r, tls13_engine_t *e, const struct tls13_reader *rd,
                        const uint8_t *m, size_t n)
{
    const struct suite *s = suite_find(r->suite);
    if (n == 0 || m[0] != HANDSHAKE_KEY_UPDATE)
        return TLS13_EUNEXPECTED; /* NewSessionTicket, Certificate, ...: never from a client */
    if (n != KEY_UPDATE_LEN || m[1] != 0 || m[2] != 0 || m[3] != 1)
        return TLS13_EDECODE;
    if (m[4] > 1)
        return TLS13_EPARAM;
    if (direction_update(s, &r->read) != 0)
        return TLS13_EINTERNAL;
    if (m[4] == 1) { /* update_requested: answer with ours, then use our next keys */
        uint8_t out[TLS13_RECORD_LEN(KEY_UPDATE_LEN)];
        long len = seal_key_update(r, e, false, out);
        if (len < 0)
            return (int)len;
        if (rd->send(rd->arg, out, (size_t)len) < 0)
            return TLS13_ESEND;
    }
    return 0;
}

/* Authenticate and decrypt the complete record rec[0, len) into e->plain; its content type
 * and content length in *type and *content_len. */
static int open_one(tls13_record_t *r, tls13_engine_t *e, const uint8_t *rec, size_t len,
                    uint8_t *type, size_t *content_len)
{
    const struct suite *s = suite_find(r->suite);
    size_t body = len - TLS13_HEADER_LEN;
    uint8_t nonce[TLS13_IV_LEN];
    int out1 = 0, out2 = 0;
    if (body < TLS13_TAG_LEN)
        return TLS13_EBAD_MAC; /* no room for a tag: it cannot authenticate */
    size_t inner = body - TLS13_TAG_LEN;
    if (inner > TLS13_MAX_PLAINTEXT + 1)
        return TLS13_EOVERFLOW; /* TLSInnerPlaintext over 2^14 + 1 (RFC 8446 5.4) */
    if (r->read.seq == UINT64_MAX)
        return TLS13_ESEQUENCE;
    make_nonce(&r->read, nonce);
    EVP_CIPHER_CTX *ctx = keyed_begin(e, e->open, s, r->read.key, nonce, 0);
    if (!ctx || EVP_DecryptUpdate(ctx, NULL, &out1, rec, TLS13_HEADER_LEN) != 1) {
        keyed_forget(e->open, r->read.key);
        return TLS13_EINTERNAL;
    }
    /* The tag is set before the final call, which compares it (in constant time). Nothing
     * of the plaintext is used unless that call succeeds. */
    if ((inner > 0 &&
         EVP_DecryptUpdate(ctx, e->plain, &out1, rec + TLS13_HEADER_LEN, (int)inner) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TLS13_TAG_LEN,
                            (void *)(rec + TLS13_HEADER_LEN + inner)) != 1 ||
        EVP_DecryptFinal_ex(ctx, e->plain + (inner > 0 ? out1 : 0), &out2) != 1) {
        keyed_forget(e->open, r->read.key);
        return TLS13_EBAD_MAC;
    }
    r->read.seq++;
    /* The content type is the last non-zero byte; zeros after it are padding (5.4). */
    size_t i = inner;
    while (i > 0 && e->plain[i - 1] == 0)
        i--;
    if (i == 0)
        return TLS13_EUNEXPECTED; /* all padding, no content type */
    *type = e->plain[i - 1];
    *content_len = i - 1;
    return 0;
}

/* Outcome of one record for the read loop: 0 go on, TLS13_STOPPED (r is not ours anymore),
 * TLS13_PEER_CLOSED, or an error. Every byte after this record must be in r's buffer
 * already (see tls13_record_read). */
static int process_record(tls13_record_t *r, tls13_engine_t *e, const struct tls13_reader *rd,
                          const uint8_t *rec, size_t len)
{
    uint8_t type;
    size_t n;
    int rc = open_one(r, e, rec, len, &type, &n);
    if (rc != 0)
        return rc;
    switch (type) {
    case TYPE_APPLICATION_DATA:
        if (n > 0 && !rd->data(rd->arg, e->plain, n))
            return TLS13_STOPPED;
        return 0;
    case TYPE_ALERT:
        if (n != 2)
            return TLS13_EDECODE;
        /* close_notify ends the connection cleanly; user_canceled is the other closure alert
         * (6.1). Every other alert is an error alert whatever its level says (6.2). */
        r->read_closed = true;
        if (e->plain[1] == ALERT_CLOSE_NOTIFY || e->plain[1] == ALERT_USER_CANCELED)
            return TLS13_PEER_CLOSED;
        return TLS13_EPEER_ALERT;
    case TYPE_HANDSHAKE:
        return on_handshake(r, e, rd, e->plain, n);
    default:
        return TLS13_EUNEXPECTED; /* change_cipher_spec, heartbeat, unknown types */
    }
}

int tls13_record_read(tls13_record_t *r, tls13_engine_t *e, const uint8_t *wire, size_t len,
                      const struct tls13_reader *rd)
{
    if (r->read_closed || r->suite == 0)
        return TLS13_EFAILED;
    for (;;) {
        int rc;
        if (r->len > 0) {
            /* A record started in the buffer: complete it from wire, header first. */
            size_t need = TLS13_HEADER_LEN;
            if (r->len >= TLS13_HEADER_LEN) {
                long rl = record_length(r->buf + r->off);
                if (rl < 0)
                    return fail(r, e, rd, (int)rl);
                need = (size_t)rl;
            }
            if (r->len < need) {
                size_t take = need - r->len < len ? need - r->len : len;
                if (take == 0)
                    return TLS13_MORE;
                if (tls13_record_stash(r, wire, take) != 0)
                    return fail(r, e, rd, TLS13_EINTERNAL);
                wire += take;
                len -= take;
                continue; /* the header may now say how long the record is */
            }
            /* Everything not processed goes into the buffer before data is handed out. */
            if (len > 0 && tls13_record_stash(r, wire, len) != 0)
                return fail(r, e, rd, TLS13_EINTERNAL);
            len = 0;
            /* The record is consumed before it is processed, so that a callback sees a
             * consistent r; its bytes stay where they are until the buffer is freed below,
             * and the plaintext goes to e->plain. */
            const uint8_t *rec = r->buf + r->off;
            r->off += (uint32_t)need;
            r->len -= (uint32_t)need;
            rc = process_record(r, e, rd, rec, need);
            if (rc == TLS13_STOPPED)
                return rc;
            if (r->len == 0)
                buf_consumed(r, 0);
        } else {
            if (len == 0)
                return TLS13_MORE;
            long rl = len >= TLS13_HEADER_LEN ? record_length(wire) : 0;
            if (rl < 0)
                return fail(r, e, rd, (int)rl);
            if (rl == 0 || (size_t)rl > len) {
                if (tls13_record_stash(r, wire, len) != 0)
                    return fail(r, e, rd, TLS13_EINTERNAL);
                return TLS13_MORE;
            }
            /* More after this record: keep it in the buffer before data is handed out. */
            if ((size_t)rl < len && tls13_record_stash(r, wire + rl, len - (size_t)rl) != 0)
                return fail(r, e, rd, TLS13_EINTERNAL);
            const uint8_t *rec = wire;
            len = 0;
            rc = process_record(r, e, rd, rec, (size_t)rl);
            if (rc == TLS13_STOPPED)
                return rc;
        }
        if (rc == TLS13_PEER_CLOSED) {
            buf_consumed(r, r->len); /* what follows close_notify is ignored */
            return rc;
        }
        if (rc == TLS13_EPEER_ALERT)
            return rc; /* no answer to an alert */
        if (rc < 0)
            return fail(r, e, rd, rc);
    }
}
