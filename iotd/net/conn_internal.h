/*
 * conn_internal.h - what the files of iotd/net share and nobody else may rely on: the conn and
 * net_loop structs, the transport type table, output buffers, and the hand-over of an accepted
 * socket from a listener to an io thread.
 *
 * A transport (conn_tcp.c, conn_tls.c) is a table of functions; conn.c owns the socket, the
 * buffers, flushing and closing, and calls the table at the few points where transports differ
 * (start, bytes read, bytes written, graceful shutdown, free). Session code sees only conn.h.
 */
#ifndef IOTD_CONN_INTERNAL_H
#define IOTD_CONN_INTERNAL_H

#include "net/conn.h"
#include "net/tls13_record.h"

#include "loop/deadlines.h"
#include "loop/inbox.h"
#include "loop/pool.h"

#include <openssl/ssl.h>
#include <stdatomic.h>

#define NET_DEFAULT_OUTPUT_LIMIT      (1024 * 1024)
#define NET_DEFAULT_HANDSHAKE_TIMEOUT 10000 /* ms */
#define NET_DEFAULT_LINGER            2000  /* ms */
#define NET_READ_BUFFER               65536 /* one socket read at most */
#define NET_TLS_PLAINTEXT_BUFFER      16384 /* one TLS record of plaintext */
/* A graceful close reads and drops what the peer still sends for at most this long and this
 * many bytes before closing the socket (conn.c: why). */
#define NET_DRAIN_MS  2000
#define NET_DRAIN_MAX (256 * 1024)

/* A byte buffer owned by one conn: valid bytes are data[off, off + len). */
struct outbuf {
    uint8_t *data;
    size_t off, len, cap;
};

enum conn_state {
    CONN_HANDSHAKE, /* transport set-up (TLS handshake); the owner does not know the conn yet */
    CONN_OPEN,      /* announced to on_accept; reading and writing */
    CONN_CLOSING,   /* conn_close called: not reading, flushing what is queued (linger) */
    CONN_DRAINING,  /* all written and our FIN sent: dropping what the peer sends until its FIN */
    CONN_CLOSED,    /* uv_close called; memory released once every handle's callback ran */
};

/* Where a TLS connection may go once its handshake is done and its first bytes are read: the
 * listener's place function and the io threads its answers index. Shared and immutable, held
 * by the listener and by every connection still to be placed (counted references), so it
 * outlives a stopped listener. io threads outlive every connection. */
struct net_place_table {
    _Atomic unsigned refs;
    net_place_fn place;
    void *arg;
    unsigned count;
    io_thread_t *io[];
};
void net_place_table_unref(struct net_place_table *t);

/* What a listener hands to an io thread with each accepted socket. Copied by value, so the
 * listener may be stopped while sockets are still in inboxes. */
struct conn_params {
    enum conn_transport transport;
    size_t output_limit;
    unsigned handshake_timeout_ms;
    unsigned linger_ms;
    SSL_CTX *tls_ctx; /* CONN_TLS: one reference, owned by whoever holds the params */
    /* One reference, or NULL (not placed). Only TLS sockets reach an io thread with it: the
     * listener places TCP ones itself. */
    struct net_place_table *placer;
};

struct conn_type {
    enum conn_transport transport;
    /* The socket is open and reading. TCP announces the conn at once; TLS starts its handshake.
     * Takes over p->tls_ctx's reference. A negative code closes the conn. */
    int (*start)(conn_t *c, struct conn_params *p);
    /* Wire bytes arrived (c->state is HANDSHAKE or OPEN). */
    void (*on_read)(conn_t *c, const uint8_t *data, size_t len);
    /* Accept plaintext from conn_write (the bound is already checked). */
    int (*write)(conn_t *c, const void *data, size_t len);
    /* Turn staged plaintext into wire bytes in c->out before the flush (TLS encrypts); NULL
     * when writes go straight to c->out. */
    int (*prepare_flush)(conn_t *c);
    /* Graceful end before the final flush (TLS queues close_notify); may be NULL. */
    void (*shutdown)(conn_t *c);
    /* Release transport state; the socket is already closed. */
    void (*release)(conn_t *c);
};

extern const struct conn_type conn_type_tcp;
extern const struct conn_type conn_type_tls;
extern const struct conn_type conn_type_ws;

/* What only a TLS conn needs, apart so that the TCP conns of a device fleet do not carry it:
 * allocated by the TLS transport's start, freed by its release. */
struct conn_tls {
    SSL *ssl; /* NULL once a TLS 1.3 connection's records are iotd's own (rec) */
    /* TLS 1.3: the traffic secrets during the handshake, then the record layer (conn_tls.c).
     * NULL for TLS 1.2, which stays on OpenSSL. */
    tls13_record_t *rec;
    struct outbuf staged; /* accepted by conn_write, not yet encrypted into c->out */
    /* Placement after the handshake (conn_tls.c): the table until the connection is placed,
     * and the plaintext read meanwhile, which the owner receives first. */
    struct net_place_table *placer;
    uint8_t *first;
    size_t first_len;
    bool placing; /* handshake done, waiting for the bytes that place it */
};

/* What a conn is waiting for with a deadline (see conn_deadline_set). */
typedef void (*conn_deadline_fn)(conn_t *c);

struct conn {
    /* The socket, watched by the loop's own epoll set (see struct net_loop), not by a libuv
     * handle: a uv_tcp_t was 248 bytes of an idle device's ~850. -1 once closed. */
    int fd;
    /* What the epoll set watches for on fd: EPOLLIN while reading, EPOLLOUT while output waits
     * for the socket to take it; 0 when fd is not in the set. */
    uint32_t events;
    net_loop_t *nl;
    /* The transport's own state, by info.transport: NULL for TCP (and before the TLS start). */
    union {
        struct conn_tls *tls; /* CONN_TLS */
        struct conn_ws *ws;   /* CONN_WS (conn_ws.c) */
    };
    const struct conn_callbacks *cb;
    void *owner;
    struct conn_info info;
    /* Wire bytes not yet taken by the kernel. (TLS plaintext not yet encrypted waits in
     * c->tls->staged.) */
    struct outbuf out;
    const char *reason;
    /* Narrow on purpose: at tens of thousands of idle connections, 16 bytes here are a size
     * class of the pool (the output bound is at most 1 GiB, see iotd.conf(5)). */
    uint32_t output_limit;
    uint32_t linger_ms;
    uint8_t state; /* enum conn_state */
    bool dirty : 1;
    bool peer_eof : 1; /* the peer's FIN was read: a close has nothing to drain */
    bool moved : 1;    /* handed to another io thread (conn_handoff.c): its socket lives on */
    uint32_t drained;  /* bytes dropped while draining */
    /* TLS handshake deadline, then the close linger, then the drain: on the loop's deadline list
     * while on_deadline is set (loop time in ms). No timer handle per conn: see struct net_loop. */
    conn_deadline_fn on_deadline;
    struct deadline_node deadline;
    conn_t *prev, *next; /* every conn of the loop */
    /* Conns written to since the last flush; once closed, the loop's list of conns to free
     * (a closed conn is on no flush list, so the links serve both). */
    conn_t *dirty_prev, *dirty_next;
};
/* The type table of a connection, from its transport (not stored: one pointer less each). */
static inline const struct conn_type *conn_type_of(const struct conn *c)
{
    static const struct conn_type *const types[] = {
        [CONN_TCP] = &conn_type_tcp, [CONN_TLS] = &conn_type_tls, [CONN_WS] = &conn_type_ws};
    return types[c->info.transport];
}
/* The TLS under a WebSocket upgraded from a TLS conn, or NULL (conn_ws.c). */
struct conn_tls *conn_ws_tls(const conn_t *c);
/* The TLS state of c (its own, or under its WebSocket), NULL for plain transports. */
static inline struct conn_tls *conn_tls_of(const struct conn *c)
{
    if (c->info.transport == CONN_WS)
        return conn_ws_tls(c);
    return c->info.transport == CONN_TLS ? c->tls : NULL;
}

/* Counters: single writer (the loop's thread), any reader; a relaxed load and store compile
 * to plain moves, so counting costs nothing on the hot path. */
struct net_loop_stats_atomic {
    _Atomic uint64_t accepted, closed, flushes, try_writes, async_writes, bytes_in, bytes_out,
        busy_rejects, linger_expired, tls_handshakes, tls_failures, tls_timeouts, moves,
        tls13_records;
    _Atomic uint64_t conns, pending_bytes;
};

/* Emptied output buffers a loop keeps for its next writers (conn.c): a few, and small ones
 * only, so what idle connections do not hold, the loop does not hold either. */
#define NET_SPARES    8
#define NET_SPARE_MAX (16 * 1024)
struct outbuf_spare {
    uint8_t *data;
    size_t cap;
};

struct net_loop {
    io_thread_t *io;
    uv_loop_t *loop;
    conn_accept_fn on_accept;
    void *arg;
    uv_prepare_t prepare; /* flush before polling: writes made by timers and close callbacks */
    uv_check_t check;     /* flush after polling: writes made by read callbacks and inbox */
    /* One timer for every conn deadline of this loop, armed for the earliest: the deadline
     * list is kept sorted (inserted from the tail, where equal timeouts land in O(1)). */
    uv_timer_t deadline_timer;
    struct deadline_list deadlines;
    /* The epoll set of this loop's sockets, watched by one uv_poll_t: libuv sees one
     * descriptor however many connections the thread has (conn.c: why). */
    int epfd;
    uv_poll_t epoll_watch;
    /* Closed conns whose memory is released on the loop's next flush hook, so that their
     * owner's on_close never runs from inside the call that closed them. */
    conn_t *reap_head;
    int handles_open;
    bool closing;
    conn_t *conns;                   /* all conns */
    conn_t *dirty_head, *dirty_tail; /* conns to flush, in the order they were written to */
    pool_t conn_pool;                /* where conns live: see conn.c */
    struct outbuf_spare spares[NET_SPARES];
    unsigned nspares;
    struct net_loop_stats_atomic stats;
    uint8_t read_buffer[NET_READ_BUFFER]; /* shared: on_data consumes each read at once */
    uint8_t tls_plaintext[NET_TLS_PLAINTEXT_BUFFER];
    tls13_engine_t *tls13; /* the TLS 1.3 record layer's ciphers, made at first use */
};

static inline void stat_add(_Atomic uint64_t *counter, uint64_t delta)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

/* Bytes accepted by conn_write that are not wire bytes yet (TLS plaintext, the part of a
 * WebSocket unit not yet ended). */
size_t conn_ws_staged_len(const conn_t *c);
static inline size_t conn_staged_len(const conn_t *c)
{
    const struct conn_tls *t = conn_tls_of(c);
    size_t tls = t ? t->staged.len : 0;
    if (c->info.transport == CONN_WS)
        return conn_ws_staged_len(c) + tls;
    return tls;
}

/* Buffers of c, with c's share of the loop's pending_bytes kept in step. */
int conn_buf_append(conn_t *c, struct outbuf *b, const void *data, size_t len);
/* Room for at least n more bytes at b->data + b->off + b->len (commit with conn_buf_commit). */
uint8_t *conn_buf_reserve(conn_t *c, struct outbuf *b, size_t n);
void conn_buf_commit(conn_t *c, struct outbuf *b, size_t n);
void conn_buf_consume(conn_t *c, struct outbuf *b, size_t n);
void conn_buf_release(conn_t *c, struct outbuf *b);

/* Put c on the loop's flush list (idempotent). */
void conn_mark_dirty(conn_t *c);
/* The transport is ready: announce c to the loop's on_accept. */
void conn_announce(conn_t *c);
/* Close at once, without lingering for output: errors and failed handshakes. The first
 * reason wins. */
void conn_abort(conn_t *c, const char *reason);
/* Best-effort write of what is queued (one try_write, no waiting), then close at once. */
void conn_close_now(conn_t *c, const char *reason);
/* Call fn(c) once, ms from now (loop time), unless cleared or c closes first. A later call
 * replaces the earlier. fn runs from the loop's deadline timer and may close c. */
void conn_deadline_set(conn_t *c, unsigned ms, conn_deadline_fn fn);
void conn_deadline_clear(conn_t *c);

/* The TLS layer's parts that a WebSocket upgraded from a TLS conn uses too (conn_tls.c), on
 * conn_tls_of(c): take wire bytes and decrypt what they complete into sink; decrypt what is
 * held already into sink; encrypt the staged plaintext into c->out; queue close_notify; free
 * the state. */
void tls_read_wire(conn_t *c, const uint8_t *data, size_t len,
                   void (*sink)(conn_t *c, const uint8_t *data, size_t len));
void tls_read_into(conn_t *c, void (*sink)(conn_t *c, const uint8_t *data, size_t len));
int tls_encrypt_staged(conn_t *c);
void tls_goodbye(conn_t *c);
void tls_state_free(conn_t *c, struct conn_tls *t);

/* Build the server SSL_CTX from PEM files (TLS 1.2 minimum). On failure a sentence in err. */
int tls_context_new(SSL_CTX **out, const char *cert, const char *key, char *err, size_t errlen);

/* Io thread side of an accepted socket: create the conn on nl and start its transport. Takes
 * fd and p's references in every case. */
void net_loop_adopt(net_loop_t *nl, int fd, struct conn_params *p);
/* A conn on nl for a socket that is already set up elsewhere (a TLS connection moved after its
 * handshake): open and reading, not started, not announced. NULL (fd closed) on failure. */
conn_t *net_loop_adopt_open(net_loop_t *nl, int fd, const struct conn_params *p);
/* The TLS transport's side of a move (conn_tls.c): a TLS conn handed over by another thread. */
void tls_adopt_moved(inbox_msg_t *msg, void *loop_data);
/* A TLS conn waiting to be placed stays on its thread now: announced, and handed what it read
 * (conn.c calls it when the peer hangs up meanwhile, so that those bytes reach an owner). */
void tls_place_here(conn_t *c);

#endif
