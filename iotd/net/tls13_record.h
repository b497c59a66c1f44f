/*
 * tls13_record.h - the TLS 1.3 record layer (RFC 8446 section 5) of a connection whose
 * handshake OpenSSL has done: what kernel TLS does, in user space, so that an idle TLS
 * connection costs a few hundred bytes instead of an OpenSSL SSL object (about 14.8 KB).
 *
 * The caller hands over the two application traffic secrets (from OpenSSL's keylog callback,
 * tls13_record_take_keylog) and the negotiated cipher suite; from then on this module protects
 * and unprotects records with EVP's AEAD ciphers: TLS_AES_128_GCM_SHA256,
 * TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256. It never allocates per record and
 * never does I/O: wire bytes come in through tls13_record_read, wire bytes go out into the
 * caller's buffer (tls13_record_seal) or through its send callback (replies while reading).
 *
 * What a connection holds (tls13_record_t): both secrets, keys, IVs and sequence numbers, the
 * suite, and a buffer of wire bytes not yet processed that exists only while a record is
 * incomplete (or the reader was asked to stop): none when idle. What is per io thread
 * (tls13_engine_t): the cipher contexts, re-keyed per record, and the plaintext scratch.
 *
 * Server side only: the "read" direction is the client's traffic, "write" the server's.
 */
#ifndef IOTD_TLS13_RECORD_H
#define IOTD_TLS13_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Cipher suites (their IANA numbers, SSL_CIPHER_get_protocol_id's answer). */
#define TLS13_AES_128_GCM_SHA256       0x1301
#define TLS13_AES_256_GCM_SHA384       0x1302
#define TLS13_CHACHA20_POLY1305_SHA256 0x1303

#define TLS13_MAX_SECRET    48 /* SHA-384 */
#define TLS13_MAX_KEY       32
#define TLS13_IV_LEN        12
#define TLS13_TAG_LEN       16
#define TLS13_HEADER_LEN    5
#define TLS13_MAX_PLAINTEXT 16384 /* 2^14: the most content one record carries */
/* 2^14 + 256: a longer record is refused with record_overflow (RFC 8446 5.2). */
#define TLS13_MAX_CIPHERTEXT (TLS13_MAX_PLAINTEXT + 256)
/* Wire bytes of one record carrying n bytes of content (no padding is ever added). */
#define TLS13_RECORD_LEN(n) (TLS13_HEADER_LEN + (n) + 1 + TLS13_TAG_LEN)
/* Our write side re-keys (a KeyUpdate) after this many records: RFC 8446 5.5 allows about
 * 2^24.5 full records under one AES-GCM key; this also keeps the sequence from ever wrapping. */
#define TLS13_REKEY_AFTER (UINT64_C(1) << 24)

/* Outcomes of tls13_record_read, and errors. An error was answered with a fatal alert (through
 * the send callback) when RFC 8446 names one; either way the connection must be closed, and
 * nothing more is read (nor sealed, after a fatal alert) on this record layer. */
enum tls13_status {
    TLS13_MORE = 0,         /* every byte used: waiting for the rest of a record */
    TLS13_STOPPED = 1,      /* the data callback said stop: unread bytes are kept */
    TLS13_PEER_CLOSED = 2,  /* close_notify: clean end (what follows it is ignored) */
    TLS13_EBAD_MAC = -1,    /* a record did not authenticate: bad_record_mac */
    TLS13_EOVERFLOW = -2,   /* a record over the limits: record_overflow */
    TLS13_EUNEXPECTED = -3, /* a record or message not allowed now: unexpected_message */
    TLS13_EDECODE = -4,     /* a malformed alert or KeyUpdate: decode_error */
    TLS13_EPARAM = -5,      /* a KeyUpdate with an unknown request: illegal_parameter */
    TLS13_EPEER_ALERT = -6, /* the peer sent an error alert */
    TLS13_EINTERNAL = -7,   /* the cipher or KDF failed, or out of memory: internal_error */
    TLS13_ESEND = -8,       /* the send callback failed (the caller's output bound) */
    TLS13_ESEQUENCE = -9,   /* the peer's sequence number would wrap */
    TLS13_EFAILED = -10,    /* this record layer already failed or closed */
};
/* A sentence for a status, for logs ("bad record mac"). */
const char *tls13_strerror(int status);

/* One direction: its traffic secret, and the key and IV derived from it. */
struct tls13_direction {
    uint8_t secret[TLS13_MAX_SECRET];
    uint8_t key[TLS13_MAX_KEY];
    uint8_t iv[TLS13_IV_LEN];
    uint64_t seq;
};

/* A connection's record layer. Callers read its fields only (tests set sequence numbers). */
typedef struct tls13_record {
    struct tls13_direction read, write; /* the client's and the server's traffic */
    uint16_t suite;                     /* TLS13_*; 0 until tls13_record_start */
    uint16_t max_fragment;              /* content per record we send (2^14, or less) */
    uint8_t have;      /* which secrets tls13_record_take_keylog found: bit 0 read, bit 1 write */
    bool read_closed;  /* an error, or the peer's alert: nothing more is read */
    bool write_closed; /* we sent an alert (close_notify or fatal): nothing more is sealed */
    /* Wire bytes not processed yet, buf[off, off + len): part of a record, or what follows
     * a stop. NULL while nothing waits. */
    uint8_t *buf;
    uint32_t off, len, cap;
} tls13_record_t;

/* Per io thread: cipher contexts and scratch. Not shared between threads. */
typedef struct tls13_engine tls13_engine_t;
tls13_engine_t *tls13_engine_new(void); /* NULL: out of memory */
void tls13_engine_free(tls13_engine_t *e);

/* Take one line of OpenSSL's keylog callback (NSS key log format) for the connection whose
 * ClientHello.random is client_random: CLIENT_TRAFFIC_SECRET_0 and SERVER_TRAFFIC_SECRET_0 are
 * stored in r, any other line (or another connection's) is ignored. True when it took one. */
bool tls13_record_take_keylog(tls13_record_t *r, const char *line, const uint8_t client_random[32]);

/* Both secrets are in r (by tls13_record_take_keylog or set by the caller, their length the
 * suite's hash length): derive keys and IVs for suite, sequences at 0. max_fragment: the most
 * content per record we send (0: 2^14; less when the client negotiated max_fragment_length).
 * 0, or TLS13_EINTERNAL on an unknown suite, missing secrets or a KDF failure. */
int tls13_record_start(tls13_record_t *r, uint16_t suite, unsigned max_fragment);

/* Wire bytes to append the unprocessed buffer (what OpenSSL's read BIO still held after the
 * handshake: the client's first records). TLS13_EINTERNAL when out of memory. */
int tls13_record_stash(tls13_record_t *r, const uint8_t *wire, size_t len);

/* What reading needs from its caller. */
struct tls13_reader {
    /* Application data in order, valid only during the call. false: stop reading here (the
     * rest is kept; call tls13_record_read again, with no new bytes, to go on). */
    bool (*data)(void *arg, const uint8_t *data, size_t len);
    /* Wire bytes this layer sends on its own while reading: our KeyUpdate, a fatal alert.
     * Negative: could not be queued. */
    int (*send)(void *arg, const uint8_t *wire, size_t len);
    void *arg;
};

/* Process what was kept, then wire[0, len) (len may be 0): each complete record is
 * authenticated and decrypted (data to rd->data, a KeyUpdate applied and, if the client asks,
 * answered with ours, an alert ending the read). Returns a tls13_status.
 * Before each rd->data call every byte not yet processed is in r's own buffer, and after a
 * call that returns false r is not touched again: so the callback may hand r to another
 * thread (a connection moving), or read r again itself (a WebSocket upgrade reading what
 * follows). The plaintext lives in e's scratch: a nested read overwrites it. */
int tls13_record_read(tls13_record_t *r, tls13_engine_t *e, const uint8_t *wire, size_t len,
                      const struct tls13_reader *rd);

/* The most wire bytes tls13_record_seal writes for len bytes of application data (a
 * KeyUpdate included when a re-key is due, see TLS13_REKEY_AFTER). */
size_t tls13_record_sealed_len(const tls13_record_t *r, size_t len);
/* Protect data[0, len) as application-data records of at most max_fragment bytes each into
 * out, which has room for tls13_record_sealed_len(r, len) bytes. Returns the bytes written,
 * or a negative status. */
long tls13_record_seal(tls13_record_t *r, tls13_engine_t *e, const uint8_t *data, size_t len,
                       uint8_t *out);
/* Our close_notify alert into out[TLS13_RECORD_LEN(2)]; after it nothing more is sealed.
 * Returns its length or a negative status. */
long tls13_record_seal_close_notify(tls13_record_t *r, tls13_engine_t *e, uint8_t *out);
/* Ask the client to update its keys too (our KeyUpdate with update_requested, then ours
 * change) into out[TLS13_RECORD_LEN(5)]. Returns its length or a negative status. */
long tls13_record_seal_key_update(tls13_record_t *r, tls13_engine_t *e, bool request_peer,
                                  uint8_t *out);

/* A zeroed record layer to fill (NULL: out of memory), and its end: the secrets cleansed and
 * everything it holds freed (NULL is fine). */
tls13_record_t *tls13_record_new(void);
void tls13_record_free(tls13_record_t *r);

/* HKDF-Expand-Label(secret, label, context, out_len) of RFC 8446 7.1 with the suite's hash,
 * for the tests and the KeyUpdate. 0 or TLS13_EINTERNAL. */
int tls13_hkdf_expand_label(uint16_t suite, const uint8_t *secret, const char *label,
                            const uint8_t *context, size_t context_len, uint8_t *out,
                            size_t out_len);

#endif
