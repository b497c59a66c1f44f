/*
 * conn_tls.c - the TLS transport: OpenSSL over the same socket as plain TCP, through a pair
 * of memory BIOs, so OpenSSL never touches the socket and conn.c stays the only thing that
 * reads and writes it.
 *
 * Wire bytes read from the socket are fed into the read BIO; the handshake, and afterwards
 * SSL_read, take them from there. Whatever OpenSSL wants to send (handshake messages, records,
 * alerts, close_notify) lands in the write BIO and is moved into the conn's output buffer,
 * which conn.c flushes like any other. conn_write stages plaintext; the flush encrypts all of
 * it with one SSL_write just before writing, so a burst of small frames becomes one record
 * (about 22-29 bytes of overhead per record, and one cipher call) rather than one per frame.
 *
 * TLS 1.3: what kernel TLS does, in user space. OpenSSL does the handshake; once it is done,
 * iotd takes the two application traffic secrets (OpenSSL's keylog callback hands them over,
 * tls_keylog), frees the SSL object and protects and unprotects records itself
 * (tls13_record.c, which says why that is as safe as OpenSSL's record layer). An idle TLS 1.3
 * connection then costs a few hundred bytes instead of OpenSSL's ~14.8 KB per SSL (tests/
 * bench/README.md). What makes the hand-over exact: no session tickets are sent (so the
 * server has written no record under its application keys, and its sequence starts at 0),
 * and without read-ahead OpenSSL reads the memory BIO one record at a time, so the bytes left
 * in the read BIO when the handshake completes are the client's first application records
 * (sequence 0), a LOGIN sent in the same packet as the client's Finished included. If OpenSSL
 * holds any byte itself (SSL_has_pending: decrypted or buffered), the read sequence would be
 * unknown: that connection stays on OpenSSL, as does every TLS 1.2 connection.
 *
 * The owner hears of the connection only once the handshake completed; a handshake that fails
 * is closed after a best-effort send of OpenSSL's alert, one that does not finish in time is
 * dropped. Both are counted and logged at debug level only, since a scanner can cause many.
 *
 * Placement: the listener cannot peek at what a TLS client says, so a listener with a place
 * function hands TLS sockets out in turn (which spreads the handshakes' CPU over the io
 * threads) and the connection places itself afterwards: it reads the first plaintext (up to
 * PLACE_FIRST bytes, for at most NET_PLACE_WAIT_MS), asks the place function, and if another
 * thread should own it, moves there whole: a duplicate of the socket, the TLS state (the TLS
 * 1.3 record layer with the wire bytes it has not decrypted yet, or for TLS 1.2 the SSL
 * object, whose memory BIOs hold them), the wire bytes not yet written and the plaintext read
 * so far, in one inbox message. The conn
 * left behind closes without an owner; its socket lives on through the duplicate. Nothing is
 * moved while a write is in flight (libuv owns that buffer): such a connection stays.
 */
#include "net/conn_internal.h"

#include "base/log.h"
#include "iot_error.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef void (*tls_sink_fn)(conn_t *c, const uint8_t *data, size_t len);

#define PLACE_FIRST 1024 /* plaintext read before placing: a HELLO or LOGIN fits */
/* A memory BIO keeps the largest buffer it ever held for as long as it lives: the handshake's
 * flight (the certificate chain) in the write BIO, the ClientHello in the read BIO, a burst's
 * bytes after a burst. An idle device should not pay for them (tests/bench/tls/ssl_idle.c:
 * 1.4 KB per idle connection after a TLS 1.3 handshake with a P-256 certificate), so a drained
 * BIO is replaced by an empty one once after the handshake, and after a burst that grew it
 * past TLS_BIO_KEEP. A busy connection (the relay) keeps its buffers: no allocation per read. */
#define TLS_BIO_KEEP (16 * 1024)

/* Move what OpenSSL wrote into the output buffer. The caller marks the conn dirty (not done
 * here, since the flush itself drains after encrypting). */
static int tls_drain(conn_t *c)
{
    BIO *wbio = SSL_get_wbio(conn_tls_of(c)->ssl);
    size_t n;
    while ((n = BIO_ctrl_pending(wbio)) > 0) {
        uint8_t *dst = conn_buf_reserve(c, &c->out, n);
        if (!dst)
            return IOT_ENOMEM;
        int got = BIO_read(wbio, dst, (int)n);
        if (got <= 0)
            break;
        conn_buf_commit(c, &c->out, (size_t)got);
    }
    return 0;
}

/* Does bio hold nothing, with a buffer worth giving back (any, with force)? */
static bool tls_bio_renewable(BIO *bio, bool force)
{
    BUF_MEM *mem = NULL;
    if (BIO_ctrl_pending(bio) != 0)
        return false;
    BIO_get_mem_ptr(bio, &mem);
    return mem && mem->max > 0 && (force || mem->max > TLS_BIO_KEEP);
}

/* Replace the drained memory BIOs whose buffers are worth giving back (see TLS_BIO_KEEP); a
 * BIO that cannot be made keeps the old one. Only after the handshake: during it OpenSSL
 * stacks a buffering BIO on the write BIO. */
static void tls_renew_bios(struct conn_tls *t, bool force)
{
    SSL *ssl = t->ssl;
    if (!ssl || !SSL_is_init_finished(ssl))
        return;
    if (tls_bio_renewable(SSL_get_rbio(ssl), force)) {
        BIO *rbio = BIO_new(BIO_s_mem());
        if (rbio) {
            BIO_set_mem_eof_return(rbio, -1); /* as in tls_start */
            SSL_set0_rbio(ssl, rbio);         /* frees the old one */
        }
    }
    if (tls_bio_renewable(SSL_get_wbio(ssl), force)) {
        BIO *wbio = BIO_new(BIO_s_mem());
        if (wbio)
            SSL_set0_wbio(ssl, wbio);
    }
    ERR_clear_error();
}

/* Drain outside a flush: what OpenSSL produced goes out in this loop pass. */
static int tls_drain_and_mark(conn_t *c)
{
    int rc = tls_drain(c);
    if (c->out.len > 0)
        conn_mark_dirty(c);
    return rc;
}

/* OpenSSL's keylog callback (set on the context by tls_context_new): keep this connection's
 * TLS 1.3 application traffic secrets for the record layer that takes over after the
 * handshake (tls_offload). Other lines (handshake secrets, TLS 1.2's CLIENT_RANDOM) are of no
 * use and allocate nothing. The secrets never leave the process: nothing is logged. */
static void tls_keylog(const SSL *ssl, const char *line)
{
    struct conn_tls *t = SSL_get_app_data(ssl);
    uint8_t random[SSL3_RANDOM_SIZE];
    /* "CLIENT_TRAFFIC_SECRET_0 <random> <secret>" or "SERVER_TRAFFIC_SECRET_0 ..." */
    if (!t || strlen(line) < 24 || strncmp(line + 6, "_TRAFFIC_SECRET_0 ", 18) != 0 ||
        SSL_get_client_random(ssl, random, sizeof(random)) != sizeof(random))
        return;
    if (!t->rec && !(t->rec = tls13_record_new()))
        return; /* out of memory: the connection stays on OpenSSL */
    tls13_record_take_keylog(t->rec, line, random);
}

/* This loop's TLS 1.3 ciphers, made at first use (a loop without TLS never pays for them). */
static tls13_engine_t *tls_engine(conn_t *c)
{
    if (!c->nl->tls13)
        c->nl->tls13 = tls13_engine_new();
    return c->nl->tls13;
}

/* Right after a handshake (its output drained): hand a TLS 1.3 connection's records over to
 * tls13_record and free the SSL object (see the top). False when the connection stays on
 * OpenSSL: TLS 1.2, a byte held inside OpenSSL (the read sequence would be unknown), or out
 * of memory. */
static bool tls_offload(conn_t *c)
{
    struct conn_tls *t = c->tls;
    SSL *ssl = t->ssl;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    char *held = NULL;
    bool done = false;
    SSL_set_app_data(ssl, NULL); /* no key lines after the handshake; the SSL may outlive t */
    /* Tickets are off in tls_context_new; were one sent, our write sequence would not be 0. */
    if (!t->rec || SSL_version(ssl) != TLS1_3_VERSION || SSL_has_pending(ssl) ||
        SSL_get_num_tickets(ssl) != 0 || BIO_ctrl_pending(SSL_get_wbio(ssl)) != 0 || !cipher ||
        !tls_engine(c))
        goto out;
    /* A client that negotiated max_fragment_length (RFC 6066, small devices do) gets records
     * no longer than it asked for: modes 1..4 are 512..4096 bytes. */
    uint8_t mfl = SSL_SESSION_get_max_fragment_length(SSL_get_session(ssl));
    unsigned max_fragment =
        mfl >= TLSEXT_max_fragment_length_512 && mfl <= TLSEXT_max_fragment_length_4096
            ? 256u << mfl
            : 0;
    if (tls13_record_start(t->rec, SSL_CIPHER_get_protocol_id(cipher), max_fragment) != 0)
        goto out;
    /* The client's first application records, if it sent any with its Finished. */
    long held_len = BIO_get_mem_data(SSL_get_rbio(ssl), &held);
    if (held_len > 0 && tls13_record_stash(t->rec, (const uint8_t *)held, (size_t)held_len) != 0)
        goto out;
    SSL_free(ssl);
    t->ssl = NULL;
    stat_add(&c->nl->stats.tls13_records, 1);
    done = true;
out:
    if (!done) {
        tls13_record_free(t->rec);
        t->rec = NULL;
    }
    ERR_clear_error();
    return done;
}

/* A read through the record layer, as its callbacks see it. */
struct tls_reading {
    conn_t *c;
    tls_sink_fn sink;
    enum conn_transport was;
    bool placing; /* reading the first plaintext for placement (tls_place) */
};

static bool rec_data(void *arg, const uint8_t *data, size_t len)
{
    struct tls_reading *rd = arg;
    conn_t *c = rd->c;
    rd->sink(c, data, len);
    if (rd->placing) /* still to be placed, and short of what placement reads */
        return c->state == CONN_HANDSHAKE && c->tls->first_len < PLACE_FIRST;
    /* Closed, moved or upgraded to a WebSocket meanwhile: the rest is not this reader's. */
    return c->state == CONN_OPEN && c->info.transport == rd->was;
}

/* Our KeyUpdate, or a fatal alert, written while reading. */
static int rec_send(void *arg, const uint8_t *wire, size_t len)
{
    conn_t *c = ((struct tls_reading *)arg)->c;
    if (conn_buf_append(c, &c->out, wire, len) != 0)
        return IOT_EBUSY;
    conn_mark_dirty(c);
    return 0;
}

/* Read wire[0, len), after what the record layer kept, into sink. Returns the record layer's
 * status, c closed on the peer's close_notify (after placing it, so that what it said first
 * still reaches an owner) or on an error (after the fatal alert the record layer queued). */
static int rec_read(conn_t *c, const uint8_t *wire, size_t len, tls_sink_fn sink, bool placing)
{
    struct conn_tls *t = conn_tls_of(c);
    struct tls_reading reading = {
        .c = c, .sink = sink, .was = c->info.transport, .placing = placing};
    struct tls13_reader rd = {.data = rec_data, .send = rec_send, .arg = &reading};
    tls13_engine_t *e = tls_engine(c);
    int rc = e ? tls13_record_read(t->rec, e, wire, len, &rd) : TLS13_EINTERNAL;
    if (rc == TLS13_MORE || rc == TLS13_STOPPED)
        return rc; /* after a stop, t->rec may be on its way to another thread */
    if (rc == TLS13_PEER_CLOSED) {
        if (placing)
            tls_place_here(c);
        conn_close(c, "peer closed");
        return rc;
    }
    conn_buf_release(c, &t->staged); /* nothing more goes out after a fatal alert */
    log_debug("tls with %s: %s", conn_peer(c, (char[PEER_ADDR_TEXT]){0}), tls13_strerror(rc));
    conn_close_now(c, tls13_strerror(rc));
    return rc;
}

/* Seal the staged plaintext into c->out as TLS 1.3 records. */
static int rec_encrypt_staged(conn_t *c, struct conn_tls *t)
{
    tls13_engine_t *e = tls_engine(c);
    if (!t->rec || t->rec->write_closed) {
        conn_buf_release(c, &t->staged); /* nothing goes after our alert */
        return 0;
    }
    if (!e)
        return IOT_ENOMEM;
    uint8_t *dst = conn_buf_reserve(c, &c->out, tls13_record_sealed_len(t->rec, t->staged.len));
    if (!dst)
        return IOT_ENOMEM;
    long n = tls13_record_seal(t->rec, e, t->staged.data + t->staged.off, t->staged.len, dst);
    if (n < 0)
        return IOT_EIO;
    conn_buf_commit(c, &c->out, (size_t)n);
    conn_buf_release(c, &t->staged);
    return 0;
}

static void on_handshake_timeout(conn_t *c)
{
    stat_add(&c->nl->stats.tls_timeouts, 1);
    log_debug("tls handshake with %s timed out", conn_peer(c, (char[PEER_ADDR_TEXT]){0}));
    conn_abort(c, "tls handshake timed out");
}

static void tls_handshake_failed(conn_t *c)
{
    char detail[160] = "no detail";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof(detail));
    ERR_clear_error();
    stat_add(&c->nl->stats.tls_failures, 1);
    log_debug("tls handshake with %s failed: %s", conn_peer(c, (char[PEER_ADDR_TEXT]){0}), detail);
    tls_drain(c); /* the alert, so the client learns why */
    conn_close_now(c, "tls handshake failed");
}

static int tls_start(conn_t *c, struct conn_params *p)
{
    BIO *rbio = NULL, *wbio = NULL;
    int rc = IOT_ENOMEM;
    if (!p->tls_ctx)
        return IOT_EINVAL;
    if (!(c->tls = calloc(1, sizeof(*c->tls))) || !(c->tls->ssl = SSL_new(p->tls_ctx)))
        goto out;
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (!rbio || !wbio)
        goto out;
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(c->tls->ssl, rbio, wbio);
    rbio = wbio = NULL;
    SSL_set_accept_state(c->tls->ssl);
    SSL_set_app_data(c->tls->ssl, c->tls); /* for tls_keylog */
    c->tls->placer = p->placer;            /* the params' reference, now the conn's */
    p->placer = NULL;
    unsigned ms = p->handshake_timeout_ms ? p->handshake_timeout_ms : NET_DEFAULT_HANDSHAKE_TIMEOUT;
    conn_deadline_set(c, ms, on_handshake_timeout);
    rc = 0;
out:
    BIO_free(rbio);
    BIO_free(wbio);
    if (rc < 0)
        ERR_clear_error();
    return rc;
}

static void deliver_to_owner(conn_t *c, const uint8_t *data, size_t len)
{
    if (c->cb && c->cb->on_data)
        c->cb->on_data(c, data, len);
}

/* Decrypt everything available and hand it to sink, until OpenSSL needs more bytes, the
 * connection is closed or its transport changed (a /ws upgrade). */
void tls_read_into(conn_t *c, tls_sink_fn sink)
{
    struct conn_tls *t = conn_tls_of(c);
    enum conn_transport was = c->info.transport;
    uint8_t *buf = c->nl->tls_plaintext;
    if (!t->ssl) {
        if (t->rec && !t->rec->read_closed)
            rec_read(c, NULL, 0, sink, false);
        return;
    }
    for (;;) {
        size_t got;
        if (SSL_read_ex(t->ssl, buf, sizeof(c->nl->tls_plaintext), &got)) {
            sink(c, buf, got);
            /* Upgraded to a WebSocket meanwhile: the rest is its (conn_ws_feed reads it). */
            if (c->state != CONN_OPEN || c->info.transport != was)
                return;
            continue;
        }
        int e = SSL_get_error(t->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN)
            conn_close(c, "peer closed");
        else
            conn_abort(c, "tls error");
        return;
    }
    /* TLS 1.3 may answer reads with records of its own (key updates). */
    if (tls_drain_and_mark(c) < 0) {
        conn_abort(c, "out of memory");
        return;
    }
    tls_renew_bios(t, false);
}

/* The connection stays on this thread: announce it and give the owner what was read. Also
 * the deadline of a connection that did not say enough in time, and the last step of a move
 * on the thread that receives it. */
void tls_place_here(conn_t *c)
{
    struct conn_tls *t = c->tls;
    conn_deadline_clear(c);
    t->placing = false;
    if (t->placer)
        net_place_table_unref(t->placer);
    t->placer = NULL;
    conn_announce(c);
    if (c->state == CONN_OPEN && t->first_len > 0 && c->cb && c->cb->on_data)
        c->cb->on_data(c, t->first, t->first_len);
    free(t->first);
    t->first = NULL;
    t->first_len = 0;
    if (c->state == CONN_OPEN)
        tls_read_into(c, deliver_to_owner); /* what OpenSSL still holds */
}

struct tls_move_msg {
    inbox_msg_t msg;
    conn_handoff_t *handoff;
    uint8_t *first; /* the plaintext read so far, which the owner receives first */
    size_t first_len;
};

/* A moved connection opens on nl (NULL: closed) and is placed there; m is freed. */
static void tls_arrive(net_loop_t *nl, struct tls_move_msg *m)
{
    conn_t *c = nl ? conn_handoff_open(nl, m->handoff) : NULL;
    if (!nl)
        conn_handoff_drop(m->handoff);
    if (c) {
        c->tls->first = m->first;
        c->tls->first_len = m->first_len;
        tls_place_here(c);
    } else {
        free(m->first);
    }
    free(m);
}

/* Hand c to io thread to (see the top of this file). 0 when it is on its way: c is then closed
 * here without an owner; otherwise it stays (a write in flight, or the inbox refused). */
static int tls_move(conn_t *c, io_thread_t *to)
{
    struct conn_tls *t = c->tls;
    struct tls_move_msg *m = calloc(1, sizeof(*m));
    net_loop_t *here = c->nl;
    if (!m)
        return -1;
    *m = (struct tls_move_msg){
        .msg.handle = tls_adopt_moved, .first = t->first, .first_len = t->first_len};
    t->first = NULL; /* the message's now: c's release must not free it */
    t->first_len = 0;
    if (!(m->handoff = conn_handoff_take(c))) {
        t->first = m->first;
        t->first_len = m->first_len;
        free(m);
        return -1;
    }
    if (inbox_push(&to->inbox, &m->msg) == 0)
        return 0;
    /* Refused (that thread is behind or stopping): the connection is placed here after all. */
    tls_arrive(here, m);
    return 0;
}

/* Placement's sink: the plaintext waits in t->first (grown past PLACE_FIRST when one record
 * brings more; the reading stops there). */
static void tls_keep_first(conn_t *c, const uint8_t *data, size_t len)
{
    struct conn_tls *t = c->tls;
    if (t->first_len + len > PLACE_FIRST) {
        uint8_t *grown = realloc(t->first, t->first_len + len);
        if (!grown) {
            conn_abort(c, "out of memory");
            return;
        }
        t->first = grown;
    }
    memcpy(t->first + t->first_len, data, len);
    t->first_len += len;
}

/* Read the first plaintext (from OpenSSL, or through the record layer with wire[0, len)) and
 * place the connection once it decides (see the top). */
static void tls_place(conn_t *c, const uint8_t *wire, size_t len)
{
    struct conn_tls *t = c->tls;
    if (!t->first && !(t->first = malloc(PLACE_FIRST))) {
        if (!t->ssl && tls13_record_stash(t->rec, wire, len) != 0) {
            conn_abort(c, "out of memory");
            return;
        }
        tls_place_here(c);
        return;
    }
    if (!t->ssl) {
        int rc = rec_read(c, wire, len, tls_keep_first, true);
        if ((rc != TLS13_MORE && rc != TLS13_STOPPED) || c->state != CONN_HANDSHAKE)
            return; /* closed */
    }
    while (t->ssl && t->first_len < PLACE_FIRST) {
        size_t got;
        if (SSL_read_ex(t->ssl, t->first + t->first_len, PLACE_FIRST - t->first_len, &got)) {
            t->first_len += got;
            continue;
        }
        int e = SSL_get_error(t->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        ERR_clear_error();
        /* A clean close_notify: what came before it still reaches an owner. */
        if (e == SSL_ERROR_ZERO_RETURN) {
            tls_place_here(c);
            conn_close(c, "peer closed");
        } else {
            conn_abort(c, "tls error");
        }
        return;
    }
    if (t->ssl && tls_drain_and_mark(c) < 0) {
        conn_abort(c, "out of memory");
        return;
    }
    int target = t->first_len > 0 ? t->placer->place(t->first, t->first_len, t->placer->arg)
                                  : NET_PLACE_MORE;
    if (target == NET_PLACE_MORE && t->first_len < PLACE_FIRST) {
        if (!c->on_deadline)
            conn_deadline_set(c, NET_PLACE_WAIT_MS, tls_place_here);
        return;
    }
    if (target >= 0 && (unsigned)target < t->placer->count && t->placer->io[target] != c->nl->io &&
        tls_move(c, t->placer->io[target]) == 0)
        return;
    tls_place_here(c);
}

void tls_adopt_moved(inbox_msg_t *msg, void *loop_data)
{
    struct tls_move_msg *m = container_of(msg, struct tls_move_msg, msg);
    io_thread_t *io = loop_data;
    tls_arrive(io->net, m); /* NULL once this thread's loop is gone */
}

static int tls_feed(conn_t *c, const uint8_t *data, size_t len)
{
    ERR_clear_error();
    if (BIO_write(SSL_get_rbio(conn_tls_of(c)->ssl), data, (int)len) != (int)len) {
        conn_abort(c, "out of memory");
        return IOT_ENOMEM;
    }
    return 0;
}

void tls_read_wire(conn_t *c, const uint8_t *data, size_t len, tls_sink_fn sink)
{
    struct conn_tls *t = conn_tls_of(c);
    if (!t->ssl) {
        if (t->rec && !t->rec->read_closed)
            rec_read(c, data, len, sink, false);
        return;
    }
    if (tls_feed(c, data, len) == 0)
        tls_read_into(c, sink);
}

static void tls_on_read(conn_t *c, const uint8_t *data, size_t len)
{
    if (!c->tls->ssl) { /* a TLS 1.3 connection whose records are iotd's own */
        if (c->tls->placing)
            tls_place(c, data, len);
        else
            tls_read_wire(c, data, len, deliver_to_owner);
        return;
    }
    if (tls_feed(c, data, len) != 0)
        return;
    if (c->tls->placing) {
        tls_place(c, NULL, 0);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        int r = SSL_do_handshake(c->tls->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->tls->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls_handshake_failed(c);
                return;
            }
            if (tls_drain_and_mark(c) < 0)
                conn_abort(c, "out of memory");
            return;
        }
        if (tls_drain_and_mark(c) < 0) {
            conn_abort(c, "out of memory");
            return;
        }
        conn_deadline_clear(c);
        stat_add(&c->nl->stats.tls_handshakes, 1);
        if (!tls_offload(c))
            tls_renew_bios(c->tls, true); /* what the handshake grew (see TLS_BIO_KEEP) */
        if (c->tls->placer) {
            c->tls->placing = true;
            tls_place(c, NULL, 0);
            return;
        }
        conn_announce(c);
        if (c->state != CONN_OPEN)
            return;
        /* Application data may have come in the same read as the end of the handshake. */
    }
    tls_read_into(c, deliver_to_owner);
}

static int tls_write(conn_t *c, const void *data, size_t len)
{
    return conn_buf_append(c, &c->tls->staged, data, len);
}

int tls_encrypt_staged(conn_t *c)
{
    struct conn_tls *t = conn_tls_of(c);
    size_t written;
    if (t->staged.len == 0)
        return 0;
    if (!t->ssl)
        return rec_encrypt_staged(c, t);
    ERR_clear_error();
    /* A memory BIO never refuses, so this takes everything (split into records as needed). */
    if (!SSL_write_ex(t->ssl, t->staged.data + t->staged.off, t->staged.len, &written)) {
        ERR_clear_error();
        return IOT_EIO;
    }
    conn_buf_release(c, &t->staged);
    int rc = tls_drain(c);
    if (rc == 0)
        tls_renew_bios(t, false);
    return rc;
}

void tls_goodbye(conn_t *c)
{
    if (c->state != CONN_OPEN)
        return;
    if (tls_encrypt_staged(c) < 0)
        return;
    struct conn_tls *t = conn_tls_of(c);
    if (!t->ssl) {
        uint8_t alert[TLS13_RECORD_LEN(2)];
        tls13_engine_t *e = tls_engine(c);
        long n = e && t->rec ? tls13_record_seal_close_notify(t->rec, e, alert) : -1;
        if (n > 0 && conn_buf_append(c, &c->out, alert, (size_t)n) == 0)
            conn_mark_dirty(c);
        return;
    }
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* queues close_notify; we do not wait for the peer's */
    ERR_clear_error();
    tls_drain_and_mark(c);
}

void tls_state_free(conn_t *c, struct conn_tls *t)
{
    if (!t)
        return; /* the start failed before allocating it */
    conn_buf_release(c, &t->staged);
    SSL_free(t->ssl);
    tls13_record_free(t->rec);
    free(t->first);
    if (t->placer)
        net_place_table_unref(t->placer);
    free(t);
}

static void tls_release(conn_t *c)
{
    tls_state_free(c, c->tls);
    c->tls = NULL;
}

const struct conn_type conn_type_tls = {
    .transport = CONN_TLS,
    .start = tls_start,
    .on_read = tls_on_read,
    .write = tls_write,
    .prepare_flush = tls_encrypt_staged,
    .shutdown = tls_goodbye,
    .release = tls_release,
};

/* "<what> <path>: <OpenSSL's reason in words>": an operator reads which file and what is wrong
 * with it ("no start line", "key values mismatch"), not an error number. */
static void tls_error_sentence(char *err, size_t errlen, const char *what, const char *path)
{
    const char *reason = NULL;
    /* The first error is the cause ("no start line"); later ones wrap it ("PEM lib"). */
    unsigned long e = ERR_peek_error();
    if (e)
        reason = ERR_reason_error_string(e);
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "",
             reason ? reason : "no detail from OpenSSL");
}

/* A file iotd must read: say so before OpenSSL does, in words (missing, a directory, no
 * permission). */
static int tls_file_readable(const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return IOT_EINVAL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s: not a regular file", what, path);
        return IOT_EINVAL;
    }
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return IOT_EINVAL;
    }
    return IOT_OK;
}

int tls_context_new(SSL_CTX **out, const char *cert, const char *key, char *err, size_t errlen)
{
    int rc = IOT_EINVAL;
    SSL_CTX *ctx = NULL;
    *out = NULL;
    if (!cert || !key) {
        snprintf(err, errlen, "tls needs a certificate and a key file");
        goto out;
    }
    if (tls_file_readable("certificate", cert, err, errlen) != 0 ||
        tls_file_readable("private key", key, err, errlen) != 0)
        goto out;
    if (!(ctx = SSL_CTX_new(TLS_server_method()))) {
        tls_error_sentence(err, errlen, "cannot create a tls context", NULL);
        rc = IOT_ENOMEM;
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Client-initiated renegotiation only costs the server CPU; compression leaks (CRIME). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* Idle devices are the common case: give OpenSSL's record buffers back between reads. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No server-side session cache: with TLS 1.2 clients it keeps every session for 300 s
     * after its connection ended (up to 20,480 of them), which after a reconnect storm is
     * memory held for resumptions devices seldom make; TLS 1.2 resumption still works
     * through stateless tickets, which cost the server nothing. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* TLS 1.3: no session tickets, so that when the handshake completes the server has sent
     * no record under its application keys and iotd's record layer starts at sequence 0; the
     * traffic secrets reach it through the keylog callback (see the top). The price: TLS 1.3
     * clients make a full handshake each time they connect. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_keylog_callback(ctx, tls_keylog);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_error_sentence(err, errlen, "cannot load the certificate chain", cert);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL already compares the key with the certificate here. */
        bool mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH ||
                        ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        tls_error_sentence(err, errlen,
                           mismatch ? "the private key does not match the certificate"
                                    : "cannot load the private key",
                           key);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error_sentence(err, errlen, "the private key does not match the certificate", key);
        goto out;
    }
    *out = ctx;
    ctx = NULL;
    rc = 0;
out:
    SSL_CTX_free(ctx);
    return rc;
}

int net_tls_check(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    int rc = tls_context_new(&ctx, cert, key, err, errlen);
    SSL_CTX_free(ctx);
    return rc;
}
