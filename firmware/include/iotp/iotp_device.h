/*
 * iotp_device.h - the whole device side of the protocol as one state machine fed bytes and time.
 *
 * What a device links: the handshake, keepalive, dispatch of the server's requests to handlers
 * registered by message type, their answers, the event outbox (ACK, busy with retry=,
 * retransmission after a reconnect), BYE, and when to connect again (jittered exponential
 * backoff that honours retry=). It allocates nothing and does no I/O of its own: it sends
 * through the platform's transport, reads the platform's clock and random source, persists the
 * sequence high-water mark through the platform's store, and parses into a buffer the caller
 * owns. Opening and closing a connection is the port's business (TCP, TLS, an AT modem):
 *
 *            init                        tick: backoff over
 *             |                       +-------------------+
 *             v                       |                   |
 *   CONNECT --connecting()--> CONNECTING --transport_up()--> HANDSHAKE --WELCOME--> ONLINE
 *      ^                          |            (HELLO sent)     |                      |
 *      |                          +----------------+------------+----------------------+
 *   BACKOFF <--transport_down()-- CLOSING <--------+  (timeout, refusal, missed PONG, BYE,
 *                                                      a failed send: note CLOSE)
 *
 * CONNECT means "open a connection now"; the port may first call iotp_device_connecting() to
 * start the handshake deadline while it connects, and calls iotp_device_transport_up() once
 * bytes can flow. When the engine ends a session it moves to CLOSING and notes CLOSE: the port
 * closes the connection and calls iotp_device_transport_down(), which picks the backoff delay.
 * A connection the port loses (a read error, the peer closed) also ends with
 * iotp_device_transport_down(), from any state.
 *
 * Two ways to drive it: a port that is told about bytes (libuv, an interrupt) calls
 * iotp_device_feed() with them; a port that polls calls iotp_device_poll(), which reads the
 * transport itself. Either calls iotp_device_tick() when iotp_device_next_timeout_ms() says so.
 * Every entry point runs to completion and may call the note callback and handlers; none may
 * be called from inside those, except iotp_device_transport_down() (a port that closes at
 * once), iotp_device_send_frame(), iotp_device_answer() and iotp_device_event().
 *
 * Requests: an application frame addressed to the device is given to the handler registered
 * for its type (a table of {type, fn, ctx}; an entry with type NULL takes every other type),
 * with its fields parsed (struct iotp_frame: from, id, args). The handler fills an answer,
 * which the engine sends as `dev <from> OK <id> args...` or `... ERROR <id> code=... [msg=...]`,
 * or answers later itself (or never). A type without a handler gets `ERROR code=unknown_type`.
 *
 * Servers: a device may know several addresses of one service (the nodes of a cluster). The
 * params list them; the engine keeps which one is current (params.first_server mod their
 * number at first, so a fleet spreads by giving device i the start i) and moves to the next
 * whenever an attempt ends in iotp_device_transport_down(): a connection that failed to open,
 * a handshake that failed, a session lost. The backoff runs as usual between attempts. The
 * port asks iotp_device_server() where to connect; a port that knows one address itself may
 * leave the list empty.
 *
 * Keepalive: while online, a PING every ping seconds (the server's WELCOME ping=, unless the
 * params override it); a PING still without PONG when the next is due means the link is dead.
 * The server's PINGs get PONG.
 */
#ifndef IOTP_DEVICE_H
#define IOTP_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "iotp_backoff.h"
#include "iotp_config_defaults.h"
#include "iotp_frame.h"
#include "iotp_handshake.h"
#include "iotp_outbox.h"
#include "iotp_platform.h"

/* Connect + HELLO..WELCOME must fit in this. */
#ifndef IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS
#define IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS 10000
#endif
/* Positional args an answer may carry (iotp_device_answer). */
#ifndef IOTP_DEVICE_ANSWER_ARGS
#define IOTP_DEVICE_ANSWER_ARGS 8
#endif
/* Pause after `ERROR code=busy` without retry=, in seconds. */
#ifndef IOTP_DEVICE_BUSY_DEFAULT_S
#define IOTP_DEVICE_BUSY_DEFAULT_S 1
#endif
/* Consecutive 0-byte sends tolerated before a send counts as failed (a non-blocking transport
 * that stays full). */
#ifndef IOTP_DEVICE_SEND_IDLE
#define IOTP_DEVICE_SEND_IDLE 1000
#endif

/* The longest keepalive period honoured, in seconds (a day): deadlines are 32-bit ms. */
#ifndef IOTP_DEVICE_MAX_PING_S
#define IOTP_DEVICE_MAX_PING_S 86400
#endif

/* 1: the engine calls params.note with what happens (online, close and why, ACKs, refusals);
 * 0: a device that takes no notes leaves them out (some 300 bytes of code on a Cortex-M0), and
 * iotp_device_init refuses a params.note. */
#ifndef IOTP_DEVICE_NOTES
#define IOTP_DEVICE_NOTES 1
#endif

/* iotp_device_next_timeout_ms when nothing is due at any time. */
#define IOTP_DEVICE_NO_TIMEOUT UINT32_MAX

enum iotp_device_state {
    IOTP_DEVICE_CONNECT = 0, /* open a connection now */
    IOTP_DEVICE_CONNECTING,  /* the port is opening it; the handshake deadline runs */
    IOTP_DEVICE_HANDSHAKE,   /* HELLO sent, waiting for CHALLENGE / WELCOME */
    IOTP_DEVICE_ONLINE,      /* authenticated */
    IOTP_DEVICE_CLOSING,     /* the engine ended the session: close it, then transport_down */
    IOTP_DEVICE_BACKOFF,     /* waiting before the next attempt */
    IOTP_DEVICE_STOPPED,     /* iotp_device_stop: for good */
};

/* What a handler answers: OK with args (error_code NULL) or ERROR code=error_code
 * [msg=error_msg]. The strings must stay valid until the handler returns. */
struct iotp_device_answer {
    const char *error_code;
    const char *error_msg;
    unsigned nargs;
    const char *args[IOTP_DEVICE_ANSWER_ARGS];
};

#define IOTP_DEVICE_REPLY    0 /* send *answer now */
#define IOTP_DEVICE_NO_REPLY 1 /* nothing now: the handler answers later itself, or never */

struct iotp_device;

/* A request handler: request is the parsed frame (valid only during the call), answer is zeroed.
 * Returns IOTP_DEVICE_REPLY or IOTP_DEVICE_NO_REPLY. */
typedef int (*iotp_device_handler_fn)(void *ctx, struct iotp_device *dev,
                                      const struct iotp_frame *request,
                                      struct iotp_device_answer *answer);

struct iotp_device_handler {
    const char *type; /* the message type (read_temp); NULL: every type not listed before */
    iotp_device_handler_fn fn;
    void *ctx;
};

/* What the engine tells its port and application. */
enum iotp_device_note_kind {
    IOTP_DEVICE_NOTE_CONNECT,       /* the backoff is over: open a connection */
    IOTP_DEVICE_NOTE_ONLINE,        /* WELCOME verified; value = the keepalive period (s) */
    IOTP_DEVICE_NOTE_CLOSE,         /* the engine ended the session (see struct) */
    IOTP_DEVICE_NOTE_PING_SENT,     /* id */
    IOTP_DEVICE_NOTE_PONG,          /* id: the answer to our PING */
    IOTP_DEVICE_NOTE_ANSWERED,      /* id: a request was answered by the engine */
    IOTP_DEVICE_NOTE_EVENT_SENT,    /* id = seq; value = 1 when sent before (a retransmission) */
    IOTP_DEVICE_NOTE_EVENT_ACKED,   /* id = seq; frame/len = the event as stored */
    IOTP_DEVICE_NOTE_EVENT_DROPPED, /* id = seq; code, msg: refused for good */
    IOTP_DEVICE_NOTE_EVENT_BUSY,    /* id = seq; value = the pause in seconds */
    IOTP_DEVICE_NOTE_ACK_UNKNOWN,   /* id: an ACK for no pending event */
    IOTP_DEVICE_NOTE_SERVER_ERROR,  /* id, code, msg: an ERROR about nothing of ours */
    IOTP_DEVICE_NOTE_BAD_FRAME,     /* error: a malformed frame from the server (skipped) */
};

struct iotp_device_note {
    enum iotp_device_note_kind kind;
    /* CLOSE: why. IOTP_ETIMEOUT (no WELCOME in time when was < ONLINE; no PONG when ONLINE),
     * IOTP_EAUTH (refused: code is "auth"; or the server's WELCOME mac is wrong: code NULL),
     * IOTP_EIO (a send failed), 0 (the server said BYE: code is its reason=, may be NULL),
     * or the handshake's error. BAD_FRAME: the parser's error. */
    int error;
    enum iotp_device_state was; /* CLOSE: the state the session ended in */
    uint32_t id;
    uint32_t value; /* CLOSE: the server's retry= (0 if none), or the ping period for a PONG */
    const char *code;
    const char *msg;
    const char *frame_type; /* CLOSE in the handshake: the TYPE of the frame it failed at */
    const uint8_t *frame;
    size_t len;
};

typedef void (*iotp_device_note_fn)(void *ctx, struct iotp_device *dev,
                                    const struct iotp_device_note *note);

/* One address of the service: a host name (or address literal) and a TCP port. */
struct iotp_server {
    const char *host;
    uint16_t port;
};

struct iotp_device_params {
    const char *device_id;   /* FROM of every frame (the strings must outlive the engine) */
    const char *device_type; /* HELLO type= */
    const char *fw_version;  /* HELLO fw= */
    enum iotp_alg alg;       /* 0 means hmac-sha256 */
    const uint8_t *key;      /* IOTP_KEY_LEN bytes, for hmac-sha256 */
    const struct iotp_atecc_chip *chip; /* for atecc508a-mac */
    uint32_t handshake_timeout_ms;      /* 0 means IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS */
    uint32_t ping_s;                    /* 0: the period WELCOME asks for */
    struct iotp_backoff_params backoff; /* zeros: the defaults */
    const struct iotp_device_handler *handlers;
    unsigned nhandlers;
    iotp_device_note_fn note; /* may be NULL (must be, with IOTP_DEVICE_NOTES 0) */
    void *note_ctx;
    const struct iotp_server *servers; /* where to connect, in turn (may be NULL, see above) */
    unsigned nservers;
    unsigned first_server; /* the first attempt goes to servers[first_server % nservers] */
};

struct iotp_device_platform {
    struct iotp_transport transport;
    struct iotp_clock clock;
    struct iotp_random random; /* nonces and jitter */
    struct iotp_persist persist;
};

/* The fields are the engine's own; read them through the functions below. The small ones
 * come first: a Cortex-M0 loads a byte at an offset up to 31 and a word up to 124 in one
 * instruction, and the engine reads these everywhere; the large members follow. */
struct iotp_device {
    enum iotp_device_state state;
    int has_outbox;
    uint8_t *tx;
    size_t tx_cap;
    uint32_t deadline_ms;  /* CONNECTING/HANDSHAKE: the handshake's; BACKOFF: the next try */
    uint32_t ping_due_ms;  /* ONLINE with ping_s: when the next PING goes */
    uint32_t resume_ms;    /* outbox paused: when sending resumes (deadlines: clock mod 2^32) */
    uint32_t ping_s;       /* this session's keepalive period (0: none) */
    uint32_t ping_id;      /* last PING id sent */
    uint32_t ping_waiting; /* id of a PING without PONG, 0 if none */
    uint32_t retry_hint_s; /* the server's retry= for the next backoff */
    uint32_t max_sent_seq; /* highest event seq sent (a lower one is a retransmission) */
    unsigned server;       /* index of the current address in params.servers */
    struct iotp_device_params params;
    struct iotp_device_platform platform;
    struct iotp_backoff backoff;
    struct iotp_outbox outbox;
    struct iotp_device_hs hs;
    struct iotp_parser parser;
};

/* Prepare dev. rx (rx_cap bytes) holds the frame being received and bounds what the device
 * accepts (at most IOTP_MAX_FRAME is used); tx (tx_cap bytes) is where the engine writes what it
 * sends (HELLO, AUTH, PONG, answers): both at least 128 bytes, and a frame limit of 512 is
 * enough for the handshake. The state is CONNECT. Returns 0 or IOTP_EINVAL (a missing id, type,
 * fw, key or chip, clock, random, transport or buffer; a note callback with IOTP_DEVICE_NOTES
 * 0). */
int iotp_device_init(struct iotp_device *dev, const struct iotp_device_params *params,
                     const struct iotp_device_platform *platform, uint8_t *rx, size_t rx_cap,
                     uint8_t *tx, size_t tx_cap);

/* Give the engine event storage (see iotp_outbox_init; persisted_high_water is the mark the
 * persist store last made durable). Until then iotp_device_event refuses with IOTP_ESTATE. May
 * be called once, at any time. Returns 0, IOTP_EINVAL or IOTP_ESTATE (already attached). */
int iotp_device_attach_outbox(struct iotp_device *dev, void *storage, size_t len,
                              uint32_t persisted_high_water);

/* The port starts opening a connection (CONNECT or BACKOFF -> CONNECTING): the handshake
 * deadline starts now. Optional: transport_up starts it otherwise. Returns 0 or IOTP_ESTATE. */
int iotp_device_connecting(struct iotp_device *dev);

/* Bytes can flow: send HELLO (-> HANDSHAKE). Returns 0, IOTP_ESTATE, or a negative code after
 * which the state is CLOSING (noted). */
int iotp_device_transport_up(struct iotp_device *dev);

/* Bytes received from the server. Returns 0, or IOTP_ESTATE when no session is up (the bytes
 * are ignored); the session may have ended on the way (see iotp_device_state). */
int iotp_device_feed(struct iotp_device *dev, const uint8_t *data, size_t len);

/* For polling ports: read what the transport has (in chunks, at most 16 reads) and feed it,
 * then tick. A read error ends the connection as if transport_down were called. Returns 0 or
 * the transport's negative code. */
int iotp_device_poll(struct iotp_device *dev);

/* Act on the time: the handshake deadline, keepalive, the end of a busy pause, the end of the
 * backoff (-> CONNECT, noted). Call it when iotp_device_next_timeout_ms says, or more often. */
void iotp_device_tick(struct iotp_device *dev);

/* Milliseconds until iotp_device_tick has something to do (0: now), or IOTP_DEVICE_NO_TIMEOUT. */
uint32_t iotp_device_next_timeout_ms(const struct iotp_device *dev);

/* The connection is gone, whoever closed it (or it never opened): -> BACKOFF with a jittered
 * delay (the server's retry= as a floor) and the next server address current, or stays
 * STOPPED. Returns the delay in ms (0 when stopped or when there
 * was no connection). Harmless in BACKOFF and STOPPED. */
uint32_t iotp_device_transport_down(struct iotp_device *dev);

/* Stop for good: BYE when online (-> STOPPED). The port then closes the connection. Returns 1
 * when BYE was sent, else 0. */
int iotp_device_stop(struct iotp_device *dev);

/* Queue an event or alarm (iotp_outbox_push) and send it at once when online; a new block of
 * sequence numbers is persisted first when needed. Returns 0 with *seq set (may be NULL), or
 * IOTP_ESTATE (no outbox, or no durable number), IOTP_ENOSPC (full) or a frame error. */
int iotp_device_event(struct iotp_device *dev, enum iotp_event_kind kind, const char *name,
                      unsigned nfields, const struct iotp_event_field *fields, uint32_t *seq);

/* Answer request id from `to` later (a handler returned IOTP_DEVICE_NO_REPLY). Returns 0,
 * IOTP_ESTATE (not online: the request died with its session) or a send/frame error. */
int iotp_device_answer(struct iotp_device *dev, const char *to, uint32_t id,
                       const struct iotp_device_answer *answer);

/* Send a frame the caller built (len bytes, EOT included) on the session. Returns 0,
 * IOTP_ESTATE (not online) or IOTP_EIO (the send failed: the session is CLOSING). */
int iotp_device_send_frame(struct iotp_device *dev, const uint8_t *frame, size_t len);

enum iotp_device_state iotp_device_state(const struct iotp_device *dev);
/* "connect", "connecting", "handshake", "online", "closing", "backoff", "stopped". */
const char *iotp_device_state_name(enum iotp_device_state state);
/* The event outbox (NULL before iotp_device_attach_outbox), for counts and last_seq. */
const struct iotp_outbox *iotp_device_outbox(const struct iotp_device *dev);
/* The address to connect to now (the current one of params.servers), or NULL when the params
 * list none. */
const struct iotp_server *iotp_device_server(const struct iotp_device *dev);
/* Its index in params.servers (0 when there are none). */
unsigned iotp_device_server_index(const struct iotp_device *dev);
/* The keepalive period of the current session in seconds (0: none or not online). */
uint32_t iotp_device_ping_s(const struct iotp_device *dev);

#endif
