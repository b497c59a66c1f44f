/*
 * conn.h - one connection interface for TCP, TLS and WebSocket, so session code never
 * branches on the transport.
 *
 * A conn lives on one io thread. Received bytes (plaintext, after TLS) are handed to the
 * owner's on_data; outgoing bytes are appended with conn_write to a per-connection buffer and
 * flushed once per loop iteration (a uv_check and a uv_prepare on the io thread walk the
 * connections written to since the last flush), so a burst of frames to one peer costs one
 * write syscall, not one each (conn_flush_now writes one conn sooner). For TLS the burst is
 * also encrypted as one record.
 * The output buffer is bounded: past the bound conn_write fails with IOT_EBUSY and the owner
 * decides (answer busy, or close).
 *
 * Closing is asynchronous: conn_close stops reading, tries to flush what is queued (bounded
 * time), then sends FIN and drains what the peer still sends (bounded bytes and time, so the
 * kernel does not answer it with a RST that could destroy our last bytes) before closing the
 * socket; on_close runs exactly once, never from inside conn_close, after which the conn memory
 * is released by the net module. The owner must not touch the conn after on_close returns.
 */
#ifndef IOTD_CONN_H
#define IOTD_CONN_H

#include "base/peer_addr.h"
#include "loop/io_thread.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct conn conn_t;
typedef struct net_loop net_loop_t;

struct conn_callbacks {
    /* Plaintext bytes received. May call conn_write/conn_close. */
    void (*on_data)(conn_t *c, const uint8_t *data, size_t len);
    /* The connection is closed (peer hung up, error, or conn_close finished). reason is a
     * static sentence ("peer closed", "tls handshake failed: …"). */
    void (*on_close)(conn_t *c, const char *reason);
};

enum conn_transport { CONN_TCP, CONN_TLS, CONN_WS };

/* "tcp", "tls" or "ws": the transport's name in logs, the connection log and iottop. */
const char *conn_transport_name(enum conn_transport t);

/* Read-only facts about a connection (for presence, logs and stats). */
struct conn_info {
    enum conn_transport transport;
    /* The remote address, binary: conn_peer prints it ("203.0.113.7:51234",
     * "[2001:db8::1]:51234"). */
    struct peer_addr peer;
    bool peer_is_loopback; /* 127.0.0.0/8 or ::1 (native LOGIN without TLS is allowed from here) */
    bool encrypted;        /* TLS under it: CONN_TLS, or a WebSocket upgraded from a TLS conn */
    uint64_t bytes_in, bytes_out;
};

/* Called on the io thread for each new accepted connection (after the TLS handshake for TLS).
 * The owner sets its callbacks and owner pointer with conn_set_owner; if it does not, the
 * connection is closed. */
typedef void (*conn_accept_fn)(net_loop_t *nl, conn_t *c, void *arg);

/* Per-io-thread network state: the connections of this loop and the flush check. Call on the
 * io thread itself (io_thread_call). A thread may have several (one per kind of listener); the
 * first made on a thread receives the TLS connections placed on it (net_listener_options). */
int net_loop_init(net_loop_t **out, io_thread_t *io, conn_accept_fn on_accept, void *arg);
/* Close every connection of this loop (their on_close run); then free once all are closed.
 * On the io thread, before io_thread_stop. */
void net_loop_close(net_loop_t *nl);
/* Number of open connections and bytes waiting in output buffers (stats). Any thread. */
void net_loop_stats(const net_loop_t *nl, size_t *conns, size_t *pending_bytes);

/* Cumulative counters of one loop, readable from any thread (iottop, tests). */
struct net_loop_counters {
    uint64_t accepted;            /* connections handed to on_accept */
    uint64_t closed;              /* connections whose socket was closed and memory released */
    uint64_t flushes;             /* dirty connections flushed (at most one per conn per pass) */
    uint64_t try_writes;          /* send calls */
    uint64_t async_writes;        /* waits for a full socket to take the rest (EPOLLOUT) */
    uint64_t bytes_in, bytes_out; /* wire bytes (ciphertext for TLS) */
    uint64_t busy_rejects;        /* conn_write refused with IOT_EBUSY */
    uint64_t linger_expired;      /* closes that gave up on unflushed output */
    uint64_t tls_handshakes;      /* TLS handshakes completed */
    uint64_t tls_failures;        /* TLS handshakes failed (bad protocol, old version, garbage) */
    uint64_t tls_timeouts;        /* TLS handshakes not finished in time */
    uint64_t moves;               /* connections handed to another io thread (conn_handoff_take) */
    uint64_t tls13_records;       /* TLS 1.3 handshakes after which iotd took the records over */
};
void net_loop_counters(const net_loop_t *nl, struct net_loop_counters *out);

void conn_set_owner(conn_t *c, const struct conn_callbacks *cb, void *owner);
/* c's remote address as text into out (PEER_ADDR_TEXT bytes); returns out. */
const char *conn_peer(const conn_t *c, char *out);
void *conn_owner(const conn_t *c);
const struct conn_info *conn_info(const conn_t *c);
/* Queue bytes for the next flush. IOT_EBUSY when the output bound would be exceeded (nothing
 * queued), IOT_EINVAL once closing. */
int conn_write(conn_t *c, const void *data, size_t len);
/* Write what c has queued now instead of at the end of the loop pass. */
void conn_flush_now(conn_t *c);
/* Stop reading (backpressure: what the peer sends waits in the kernel, then in its own
 * buffers) and start again. Writing goes on meanwhile. Only an open connection pauses; resuming
 * one that is closing does nothing. */
void conn_pause(conn_t *c);
void conn_resume(conn_t *c);
/* Bytes queued and not yet written, and the most that may be (the output bound). */
size_t conn_pending(const conn_t *c);
size_t conn_output_limit(const conn_t *c);
/* Stop reading and close after a final flush (at most a short linger). Idempotent; the first
 * reason is the one on_close receives. reason must outlive the connection (a literal). */
void conn_close(conn_t *c, const char *reason);
/* The io thread this connection lives on (to address it through the inbox). */
io_thread_t *conn_io_thread(const conn_t *c);

/* Moving a connection to another io thread (conn_handoff.c), for owners that learn where it
 * belongs only after it has spoken. conn_handoff_take, on c's thread: c (an open TCP or TLS
 * conn, not a WebSocket) gives up its socket, TLS state and unsent
 * output, and closes here (its owner, if any, is told: clear it first); NULL when c cannot
 * move now, and nothing changed. The handoff is then carried (an inbox message) to the new
 * thread, where conn_handoff_open makes it an open conn of nl without an owner (the caller sets
 * one at once; nl's on_accept is not called), or NULL when nl is closing (the socket is
 * closed). conn_handoff_drop closes and frees a handoff that goes nowhere. Plaintext the old
 * owner read and did not consume is the caller's to carry. */
typedef struct conn_handoff conn_handoff_t;
conn_handoff_t *conn_handoff_take(conn_t *c);
conn_t *conn_handoff_open(net_loop_t *nl, conn_handoff_t *h);
void conn_handoff_drop(conn_handoff_t *h);

/* A WebSocket (RFC 6455) over an upgraded connection: after conn_ws_upgrade, what the owner
 * writes and reads are units of its own protocol (a frame of iot-protocol(7), ended by
 * unit_end), and each unit travels as one text message that the codec translates (iotd/web's
 * ws_frames: JSON). Framing is libwslay's: pings are answered, fragments reassembled, a message
 * over max_message closes with 1009, an unmasked client frame with 1002; closing sends a close
 * frame. The codec is called on the conn's io thread and must not block. */
struct conn_ws_codec {
    /* A text message from the peer: the unit it stands for into out[0, cap), returning its
     * length; or 0, and reply (NUL-terminated) goes back to the peer as a text message
     * instead. Binary messages are the same with binary set. */
    int (*decode)(void *state, const uint8_t *msg, size_t len, bool binary, uint8_t *out,
                  size_t cap, char *reply);
    /* One whole unit the owner wrote (unit_end included): its message into out[0, cap),
     * returning its length, 0 to send nothing, or a negative code to close the connection. */
    int (*encode)(void *state, const uint8_t *unit, size_t len, char *out, size_t cap);
    /* The conn is released: state is not used after this. May be NULL. */
    void (*release)(void *state);
    uint8_t unit_end;
    size_t max_unit;    /* largest unit either way (decode's cap) */
    size_t max_message; /* largest message from the peer; encode's cap is 3x max_unit + 1 KiB */
};
/* The longest reply a codec's decode may write, NUL included. */
#define CONN_WS_REPLY_MAX 256
/* Messages answered by decode's reply (refused) a WebSocket tolerates; one more closes it. */
#define CONN_WS_MAX_REFUSED 16
/* Make c, an open TCP or TLS connection whose owner has written the 101 answer, a WebSocket
 * (over TLS, the TLS stays under it: info.encrypted tells): the owner is unchanged until it
 * calls conn_set_owner, and must return from on_data without reading more of c. codec must
 * outlive c. Bytes the peer sent behind the upgrade request go through conn_ws_feed once the
 * new owner is set. IOT_EINVAL (not an open TCP or TLS conn), IOT_ENOMEM. */
int conn_ws_upgrade(conn_t *c, const struct conn_ws_codec *codec, void *state);
/* Plaintext of c already read by its previous owner, handled as if just read (then what the
 * TLS layer holds, if any). Call it once the new owner is set, even with len 0. */
void conn_ws_feed(conn_t *c, const uint8_t *data, size_t len);

/* Listeners run on the main loop and hand accepted sockets to io threads (round robin, or by
 * a place function, see net_listener_options). */
typedef struct net_listener net_listener_t;
/* Which io thread a new connection belongs on, from the first bytes it sent: an index below
 * the listener's count, -1 for the next in turn, or NET_PLACE_MORE when these bytes do not
 * decide yet. Plain TCP: the bytes are peeked at on the main loop (they stay in the socket for
 * the io thread to read). TLS: the plaintext, read on the io thread that did the handshake,
 * which then hands the connection over; so it runs on any thread and must be thread-safe. */
#define NET_PLACE_MORE (-2)
typedef int (*net_place_fn)(const uint8_t *data, size_t len, void *arg);

struct net_listener_options {
    const char *address; /* "host:port"; port 0 picks a free port */
    enum conn_transport transport;
    const char *tls_cert, *tls_key; /* PEM files, for CONN_TLS */
    size_t output_limit;            /* per-connection output bound in bytes (0: 1 MiB) */
    unsigned handshake_timeout_ms;  /* CONN_TLS: drop a handshake not done by then (0: 10 s) */
    unsigned linger_ms;             /* conn_close waits this long for queued output (0: 2 s) */
    /* Place each connection by its first bytes (NULL: every connection in turn). A connection
     * that says nothing decisive within NET_PLACE_WAIT_MS goes in turn (TCP) or stays where
     * its handshake was done (TLS). */
    net_place_fn place;
    void *place_arg;
};
#define NET_PLACE_WAIT_MS 500
/* Bind and listen on loop (the main loop); accepted sockets go to nl[i % count]'s thread (or
 * the one o->place picks) through its io thread inbox. Call on the main loop's thread. The
 * loops must stay alive until net_listener_stop: stop listeners before net_loop_close (a
 * socket already in an inbox is handled before a later net_loop_close, since an inbox runs
 * its messages in order). On failure returns a negative IOT_E* code and a sentence in err. */
int net_listener_start(net_listener_t **out, uv_loop_t *loop, const struct net_listener_options *o,
                       net_loop_t **loops, unsigned count, char *err, size_t errlen);
/* The bound port (useful with port 0). */
unsigned net_listener_port(const net_listener_t *l);
/* Reload the TLS certificate and key (SIGHUP): new connections use the new ones, open ones
 * keep theirs. On failure the old ones stay in use and err says why. Main loop thread. */
int net_listener_reload_tls(net_listener_t *l, char *err, size_t errlen);
/* Whether cert (a PEM chain) and key (its PEM private key) would start a TLS listener: both
 * readable regular files, parsed, and the key the certificate's. 0, or IOT_EINVAL with a
 * sentence naming the file and what is wrong with it (iotd -t). */
int net_tls_check(const char *cert, const char *key, char *err, size_t errlen);
/* Stop accepting and close the listening socket; the listener is freed from the loop. */
void net_listener_stop(net_listener_t *l);

/* Accept counters of a listener (main loop thread). */
struct net_listener_counters {
    uint64_t accepted;      /* sockets accepted and handed to an io thread */
    uint64_t dropped;       /* closed at once because the io thread's inbox was full */
    uint64_t accept_errors; /* accept4 failures other than "nothing pending" */
};
void net_listener_counters(const net_listener_t *l, struct net_listener_counters *out);

#endif
