/*
 * session.h - device sessions: the server side of the wire protocol on the io threads.
 *
 * One session per accepted connection, owned by its io thread. A session runs the mutual
 * handshake (firmware/ iotp_server_hs: the same code a device links), with the device's secret
 * taken from the registry snapshot (no database round trip), then keeps the device: PING/PONG
 * both ways, a silent device dropped, a second connection of the same device replacing the
 * first (or refused), malformed frames answered with ERROR and repeated abuse disconnected.
 * Presence (relay/presence.h) says where each online device lives; connects, disconnects and
 * failures are recorded (conn_log.h). Sessions are the relay's senders (relay_check, then
 * relay_deliver) and its devices: each io thread gives the relay a port (relay/pending.h) to
 * write requests to its device sessions, and tells it of their answers and closes.
 */
#ifndef IOTD_SESSION_H
#define IOTD_SESSION_H

#include "loop/io_thread.h"
#include "net/conn.h"
#include "registry/registry.h"
#include "session/conn_log.h"
#include "session/ratelimit.h"
#include "relay/audit.h"
#include "relay/pending.h"
#include "relay/presence.h"
#include "relay/relay.h"
#include "iotp/iotp_config_defaults.h"

#include <stdbool.h>
#include <stdint.h>

struct session_options {
    uint32_t handshake_timeout_ms; /* HELLO..AUTH must finish within this (default 10 s) */
    uint32_t ping_s;               /* keepalive period asked of devices (default 30) */
    uint32_t keepalive_timeout_s;  /* silent this long: dropped (default 2.5 x ping_s) */
    bool replace_duplicate;        /* a second connection replaces the first (default) */
    unsigned max_bad_frames;       /* malformed frames tolerated per connection (default 8) */
    size_t max_frame;              /* frame limit in bytes (default 4096) */
    unsigned auth_fail_limit;      /* failures per minute blocking a device id (default 5); an
                                    * address, possibly a NATed fleet, gets ten times that */
    unsigned max_in_flight;        /* requests waiting at one device (default 16) */
    uint32_t max_timeout_ms;       /* bound of any request's timeout (default 60000) */
    bool login_plain;              /* accept LOGIN over plain TCP from non-loopback peers */
    size_t subscriber_backlog;     /* unread output past which items to a subscriber drop */
};

/* Counters of one io thread's sessions (atomics: read by stats from other threads). */
struct session_counters {
    _Atomic uint64_t accepted, authenticated, auth_failures, rate_limited, handshake_timeouts,
        keepalive_timeouts, replaced, bad_frames, abuse_closes;
    _Atomic uint64_t frames_in, frames_out;
    _Atomic size_t sessions, devices, users;
    _Atomic uint64_t logins, outcomes[RELAY_OUTCOME_COUNT], late_answers;
    _Atomic uint64_t audit_holds;  /* senders not read from while the audit caught up */
    _Atomic uint64_t output_holds; /* senders not read from while they read their answers */
    _Atomic uint64_t items_delivered, items_dropped; /* events and alarms to subscribers */
};

typedef struct sessions sessions_t;

struct event;
struct iotp_frame;

/* A user's SUBSCRIBE, UNSUBSCRIBE or LEASE frame, for the event side to decide on (main loop).
 * It answers with sessions_reply to (io, slot, serial, id). */
enum session_sub_op { SESSION_SUBSCRIBE, SESSION_UNSUBSCRIBE, SESSION_LEASE };
struct session_sub_request {
    enum session_sub_op op;
    unsigned io;
    uint32_t slot;
    uint64_t serial;
    uint32_t id;                              /* the frame's id, echoed in the answer */
    char principal[IOTP_MAX_ADDRESS_LEN + 1]; /* user@tenant */
    char tenant[65];
    char device[65], group[65], type[65]; /* scope: at most one set; none = the whole tenant */
    char event[65];                       /* only this event name ("" = any) */
    int alarms;                           /* 0: events only, 1: events and alarms, 2: alarms only */
    bool presence;                        /* SUBSCRIBE presence=1: devices' online/offline too */
    uint64_t sub;                         /* UNSUBSCRIBE: which subscription */
    uint32_t ttl_s;                       /* LEASE: how long (0 = release) */
};

/* How sessions reach the event side (iotd/hub) without depending on it. Every hook runs on an
 * io thread and must not block; NULL hooks (tests, a daemon without events) are skipped. */
struct session_event_hooks {
    void *arg;
    /* A device's EVENT or ALARM, validated against the catalogue: take a reference for
     * storage. 0, or IOT_EBUSY (the device gets ERROR code=busy retry=*retry_s). */
    int (*event)(void *arg, struct event *ev, uint32_t *retry_s);
    /* A device came online (online) or went offline. */
    void (*presence)(void *arg, const char *tenant, const char *device, const char *type,
                     bool online);
    /* A user's subscription request (the hook copies what it needs). */
    void (*request)(void *arg, const struct session_sub_request *r);
    /* A user session ended: whatever it held (subscriptions, leases) ends too. */
    void (*gone)(void *arg, unsigned io, uint32_t slot, uint64_t serial);
};

/* Who sent a frame that another module answers (QUERY, a client's ACK): the session, by its
 * io thread, slot and serial, and the frame's id. Strings are valid during the hook only. */
struct session_origin {
    sessions_t *sessions;
    unsigned io;
    uint32_t slot;
    uint64_t serial;
    uint32_t id;
    const char *principal; /* user@tenant */
    const char *tenant;
};

/* How a logged-in client's QUERY and ACK frames reach the module that answers them
 * (iotd/query), without sessions depending on it. Hooks run on the session's io thread and must
 * not block; the answer comes back through sessions_send_frames (any thread). NULL hooks: the
 * frame is answered ERROR code=internal. */
struct session_query_hooks {
    void *arg;
    void (*query)(void *arg, const struct session_origin *o, const struct iotp_frame *f);
    void (*ack)(void *arg, const struct session_origin *o, const struct iotp_frame *f);
};

/* Everything sessions need, shared by all io threads. */
struct session_deps {
    registry_t *registry;
    presence_t *presence;
    ratelimit_t *ratelimit;
    conn_log_t *conn_log;
    relay_audit_t *audit;
    const uint8_t *secret_key;
    io_thread_t *io;   /* the io threads... */
    unsigned io_count; /* ...and how many */
    struct session_event_hooks events;
    struct session_query_hooks query;
    struct relay_remote remote; /* devices on other nodes (iotd/cluster); zero: a single node */
};

/* net_place_fn for the device listeners ([devices] placement = tenant): a connection goes to
 * its tenant's io thread, known from its first frame (HELLO from a device id, LOGIN from
 * user@tenant), so that relays within a tenant need no hop between threads. Other first
 * frames, and unknown devices, go in turn. arg: the sessions_t. Any thread (the main loop for
 * TCP, an io thread for TLS). */
int sessions_place(const uint8_t *data, size_t len, void *arg);
/* The same for a user@tenant already known (a browser's session cookie): its tenant's io
 * thread, or -1 when user has no tenant. Any thread. */
int sessions_place_user(const char *user, void *arg);

/* Create the session layer: one net loop per io thread (created on each thread). */
int sessions_start(sessions_t **out, const struct session_deps *deps,
                   const struct session_options *opts);
/* On io thread io: make c, a connection that reached iotd other than through the session
 * listeners (a browser's WebSocket, upgraded by iotd/web: the conn type does the framing), a
 * session as if accepted here. user: a user@tenant already authenticated (the browser's
 * session cookie), logged in at once (WELCOME id 0) if the registry still knows it (else
 * ERROR code=auth, and the client may LOGIN); NULL: the client must LOGIN. c must have no
 * owner; on failure it is closed. */
void sessions_adopt(sessions_t *s, unsigned io, conn_t *c, const char *user);
/* The net loops, one per io thread, written into loops[io_count]; returns loops. */
net_loop_t **sessions_net_loops(sessions_t *s, net_loop_t **loops);
/* The net loop of io thread i. */
net_loop_t *sessions_net_loop(sessions_t *s, unsigned i);
/* Counters of io thread i. */
const struct session_counters *sessions_counters(const sessions_t *s, unsigned i);
/* One row of the sessions table iottop shows. */
struct session_row {
    char principal[IOTP_MAX_ADDRESS_LEN + 1];
    char tenant[65];
    const char *kind;  /* "device" or "user" */
    const char *state; /* "handshake" or "online" */
    char transport[4];
    char address[64];
    int64_t since_ms, last_activity_ms;
    uint32_t in_flight;
    uint64_t output_bytes, bytes_out, frames_in, frames_out;
};

/* Sort keys of session rows ("frames_in" ...); NULL if name is not one. */
typedef int (*session_row_cmp)(const void *a, const void *b);
session_row_cmp session_row_comparator(const char *name);

/* Receives the merged top rows (sorted, at most top), the number of sessions in all, and the
 * requests waiting at devices (oldest first, at most top). Runs on the loop of reply_to; the
 * rows are freed after it returns. */
typedef void (*sessions_collect_fn)(const struct session_row *rows, size_t n, size_t total,
                                    const struct request_row *requests, size_t nrequests,
                                    void *arg);
/* Ask every io thread for its top sessions by cmp; fn(arg) runs once all have answered.
 * IOT_ENOMEM, or IOT_EBUSY if an inbox is full (fn is then not called). */
int sessions_collect(sessions_t *s, inbox_t *reply_to, session_row_cmp cmp, size_t top,
                     sessions_collect_fn fn, void *arg);

/* Receives how many sessions sessions_end closed, once all of them are closed. Runs on the
 * loop of reply_to. */
typedef void (*sessions_end_fn)(size_t ended, void *arg);
/* Whose sessions sessions_end ends: a principal's (name: a device id, or user@tenant), or those
 * of every device and user of a tenant (name: the tenant's). */
enum sessions_scope { SESSIONS_OF_PRINCIPAL, SESSIONS_OF_TENANT };
/* End every session of name, on every io thread, also one still in its handshake or LOGIN:
 * BYE reason=<reason>, then closed (its waiting requests answered offline at once, its
 * presence, subscriptions and leases released by the close). reason must outlive the closes
 * (a literal). fn(ended, arg) runs once every io thread has seen its matching sessions closed.
 * IOT_ENOMEM, or IOT_EBUSY if no io thread could be asked (fn is then not called). */
int sessions_end(sessions_t *s, inbox_t *reply_to, enum sessions_scope scope, const char *name,
                 const char *reason, sessions_end_fn fn, void *arg);

/* Hand a checked request (relay_check) to its device: relay_deliver with the relay these
 * sessions serve (and the calling io thread's remembered routes). current is the calling io
 * thread's index, or -1 off the io threads. RELAY_OK: the answer will reach req's origin
 * (perhaps before this returns). Otherwise the caller still owns req and answers the outcome
 * itself (offline, busy). */
enum relay_outcome sessions_relay(sessions_t *s, int current, struct relay_request *req);

/* ---- the event side's way back to sessions (any thread; through the inboxes) ---- */

/* Acknowledge durable events to their devices (ACK seq), each on its session's thread; a device
 * that has gone since gets nothing (it retransmits, and the duplicate is acknowledged then). */
void sessions_ack(sessions_t *s, struct event *const *events, size_t n);

/* One subscriber: a user session, addressed by its slot and serial on an io thread. */
struct session_target {
    uint32_t slot;
    uint64_t serial;
};
/* Write an event or alarm item (see iotd/hub) to n subscribers of io thread io. The item is
 * referenced until written. A subscriber whose output is backed up skips it and is told
 * "NOTICE dropped=N" once it drains. IOT_EBUSY if the inbox refused. */
int sessions_deliver(sessions_t *s, unsigned io, struct event *item,
                     const struct session_target *targets, size_t n);
/* Answer a user's request: code NULL for OK (with key=value if key), else ERROR code= msg=. */
void sessions_reply(sessions_t *s, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                    const char *code, const char *key, const char *value);

/* Write frames already encoded for one user session (a query's ROWs and its final OK, or one
 * ERROR), in order and together, on its io thread. frames (malloc'ed, len bytes holding n
 * frames) becomes the callee's, whatever happens. A session that has gone since gets nothing.
 * With more than n > 1 frames and the session's unread output past subscriber_backlog, the
 * frames are not written: the client gets ERROR <id> code=busy retry=1 instead, and asks for
 * the same page again (nothing is lost: the cursor did not move). Any thread. */
void sessions_send_frames(sessions_t *s, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                          uint8_t *frames, size_t len, size_t n);

/* Close every session (on their threads) and free the layer. Before the io threads stop. */
void sessions_stop(sessions_t *s);

#endif
