/*
 * session_internal.h - the session structures shared by the files of iotd/session, and the
 * functions one file gives the others (each file says its one job at its top). Nothing outside
 * iotd/session includes it but the session's own unit tests.
 */
#ifndef IOTD_SESSION_INTERNAL_H
#define IOTD_SESSION_INTERNAL_H

#include "session/session.h"

#include "ctl_time.h"
#include "iotp/iotp.h"
#include "loop/pool.h"

enum session_state { SESSION_HANDSHAKE, SESSION_ESTABLISHED, SESSION_CLOSING };
enum session_kind { SESSION_DEVICE, SESSION_USER };

/* The parser and its buffer, held by a session only while a frame is partly received: the
 * parser alone (its frame has room for every argument pointer) is a third of an idle session.
 * Between frames it goes back to its thread's one spare, which the next read on that thread
 * takes, so a busy thread does not pay a malloc and free per read either. */
struct frame_input {
    struct iotp_parser parser;
    uint8_t buf[];
};

struct session_env;

/* Fields are grouped by size so that nothing is lost to padding: at tens of thousands of idle
 * devices, every 16 bytes here is a malloc size class. */
struct session {
    struct session_env *env;
    conn_t *conn;
    uint64_t serial;
    /* Loop time. One field for two phases (an idle device's session is a third of its memory):
     * when the connection was accepted, for the handshake deadline, and once established
     * when the last PING went out, for the keepalive. */
    union {
        uint64_t accepted_ms;  /* SESSION_HANDSHAKE */
        uint64_t last_ping_ms; /* SESSION_ESTABLISHED */
    };
    uint64_t last_rx_ms;
    /* Wall clock, for iottop. Presence's last_seen is refreshed when the last activity moves
     * into a new second (no time of the last refresh is kept: at most once a second all the
     * same). */
    int64_t since_ms, last_activity_ms;
    uint64_t frames_in, frames_out;
    struct iotp_server_hs *hs;  /* only during the handshake */
    struct frame_input *input;  /* only while a frame is partly received */
    const char *lookup_failure; /* why the key lookup failed (a literal), for the log only */
    const char *close_reason;
    uint32_t slot;
    uint32_t ping_seq;
    uint32_t dropped;  /* items not delivered to this subscriber since it last got one */
    uint32_t busy_seq; /* devices: the first event answered busy, until it comes back (0: none) */
    /* Narrow on purpose (a pool size class is 16 bytes): bad frames are bounded by
     * max_bad_frames (the session closes past it, counting saturates), references are two at
     * most. */
    uint16_t bad_frames;
    uint8_t refs;  /* the connection until closed, plus a LOGIN being verified */
    uint8_t state; /* enum session_state */
    uint8_t kind;  /* enum session_kind: known after the first frame, HELLO or LOGIN */
    bool authenticated;
    bool principal_owned; /* principal is this session's own allocation (a user's) */
    bool held;            /* not read from for now (see holds.c) */
    /* Never NULL; "" until known. Not arrays: 194 bytes inline were half an idle session. A
     * device's id is first the handshake's (s->hs->device_id), then its presence entry's,
     * which is never freed while iotd runs; a user's is a small allocation of its own. */
    const char *principal;
    const char *tenant; /* interned in the env (see session_tenant_intern); "" until known */
};

/* A held session (see holds.c) and the rest of the read it was held in. */
struct held_sender {
    uint32_t slot;
    uint64_t serial;  /* the session's: a newer one in the same slot is another */
    uint8_t *backlog; /* bytes received and not yet parsed (malloc'ed), or NULL */
    size_t backlog_len;
    size_t pending;       /* its unread output, lowest seen while held for it */
    uint64_t progress_ms; /* loop time at which that output last went down */
};

#define SESSION_DISPATCH_MAX 8

struct session_env {
    sessions_t *all;
    unsigned index;
    io_thread_t *io;
    net_loop_t *net;
    registry_snapshot_t *snap;
    struct iotp_random random;
    struct session **slots; /* live sessions by slot; NULL = free */
    uint32_t nslots, free_hint;
    struct session_counters counters;
    uv_timer_t tick;                      /* deadlines of every session of this thread */
    relay_thread_t *relay;                /* the relay's device side on this thread */
    struct relay_check_cache check_cache; /* the relay's decisions in this snapshot */
    struct presence_route_cache routes;   /* where recently relayed-to devices are */
    /* The devices' conns written to by reads of this pass (session_on_data), the first nflushed of
     * them already flushed at the end of their read rather than at the end of the pass (see
     * session_dispatch_flush). Noted only while in_read: requests written at other times (from the
     * inbox, timers) wait for the pass's flush. dispatch_pass: the meter's iteration count. */
    conn_t *dispatched[SESSION_DISPATCH_MAX];
    unsigned ndispatched, nflushed;
    uint64_t dispatch_pass;
    bool in_read;
    uv_timer_t release_held;  /* runs while senders are held (see holds.c) */
    struct held_sender *held; /* the held sessions (some may be gone) */
    size_t nheld, held_cap;
    struct frame_input *spare_input; /* a parser between reads, see struct frame_input */
    unsigned accepts_since_trim;     /* see trim_after_storm in slots.c */
    char **tenants;                  /* interned tenant names, see session_tenant_intern */
    pool_t session_pool;             /* where this thread's sessions live (see session.c) */
    struct end_part *ending;         /* sessions_end requests waiting for closes (cutoff.c) */
    uint32_t ntenants;
    size_t tenants_cap;
};

struct sessions {
    struct session_deps deps;
    relay_t *relay; /* pending requests, deadlines and answers: the device side */
    struct session_options opts;
    struct session_env *envs;
};

/* A request to close a replaced session on its own thread. */
struct kick_msg {
    inbox_msg_t msg;
    sessions_t *all;
    uint32_t slot;
    uint64_t serial;
};

/* The thread's one copy of a tenant name (cut to 64 bytes, as tenant names are), which stays
 * until the thread's sessions are gone: sessions point at it instead of holding a copy each.
 * Tenants are few, so the table is a plain list. NULL when out of memory. */
const char *session_tenant_intern(struct session_env *env, const char *name);
/* Count one more malformed or refused frame (saturating: the field is 16 bits). */
static inline unsigned session_bad_frame(struct session *s)
{
    if (s->bad_frames < UINT16_MAX)
        s->bad_frames++;
    return s->bad_frames;
}

/* The snapshot of this thread, refreshed when a newer one was published. */
registry_snapshot_t *session_snapshot(struct session_env *env);
/* Queue bytes on the session's connection (a full output buffer closes it on the next check). */
void session_send_bytes(struct session *s, const uint8_t *buf, size_t len);
/* Send `iotd <principal> TYPE id [key=value]`. */
void session_send_system(struct session *s, enum iotp_type type, uint32_t id, const char *key,
                         const char *value);
/* Send `iotd <principal> ERROR id code=CODE [retry=S]`. */
void session_send_error(struct session *s, uint32_t id, const char *code, uint32_t retry_s);
/* Send `FROM <principal> ERROR id code=CODE [retry=S] [msg=MSG]`: every ERROR of a session is
 * written here, so that every code=busy carries retry= (at least 1). */
void session_send_error_from(struct session *s, const char *from, uint32_t id, const char *code,
                             uint32_t retry_s, const char *msg);
void session_close(struct session *s, const char *reason);
/* The live session at (slot, serial) of env, or NULL. */
struct session *session_at(struct session_env *env, uint32_t slot, uint64_t serial);

/* A session's life (session.c). */
/* Record a connect, disconnect or failure of s in the connection log; false if it is a failure
 * counted in an aggregate (conn_log_record): not worth a log line of its own. */
bool session_record(struct session *s, enum conn_event ev, const char *reason);
/* The net layer's on_data of a session's conn (also fed a held session's backlog). */
void session_on_data(conn_t *c, const uint8_t *data, size_t len);
/* Drop a reference (the connection's, or a LOGIN verification's); the last frees s. */
void session_unref(struct session *s);

/* handshake.c: a device's HELLO and AUTH (during the handshake). */
void session_on_hello(struct session *s, const struct iotp_frame *f);
void session_on_auth(struct session *s, const struct iotp_frame *f);
/* login.c: a client's LOGIN (during the handshake, instead of HELLO). */
void session_on_login(struct session *s, const struct iotp_frame *f);
/* login.c: log s in as user without a password (its identity was proven otherwise: a
 * browser's session cookie), with WELCOME id 0; ERROR code=auth if user is unknown. */
void session_login_trusted(struct session *s, const char *user);

/* relay_sender.c: a request (an application type) from an established session. */
void session_relay_request(struct session *s, const struct iotp_frame *f);
/* The inbox handler of a session's relay_origin: an answer for one of this thread's senders. */
void session_on_relay_answer(inbox_msg_t *msg, void *loop_data);
/* Write an answer to the sender of origin on this thread (env), if it is still connected. */
void session_answer_sender(struct session_env *env, const struct relay_origin *origin,
                           enum relay_outcome outcome, const char *device, const char *why,
                           unsigned nargs, const char *const *args);

/* relay_device.c: this thread's relay_port, given to the relay (on the io thread). */
int session_relay_start(struct session_env *env);
/* A device's OK or ERROR: the answer to one of its pending requests. */
void session_on_device_answer(struct session *s, const struct iotp_frame *f);
/* The read is handled: the requests it wrote to devices leave now. */
void session_dispatch_flush(struct session_env *env);

/* holds.c: backpressure on senders. */
void session_holds_start(struct session_env *env);
void session_holds_stop(struct session_env *env);
/* s's unread output is above its bound / divisor. */
bool session_output_above(const struct session *s, size_t divisor);
/* Stop reading s for now (counter: why); released by the thread's hold timer. */
void session_hold_sender(struct session *s, _Atomic uint64_t *counter);
/* Hold s while its LOGIN is verified (its later frames wait for WELCOME); false without memory. */
bool session_hold_login(struct session *s);
/* Keep data[0..len) of held s for its release; false (parse it now) without memory. */
bool session_stash_backlog(struct session *s, const uint8_t *data, size_t len);

/* slots.c: the thread's table of sessions and its tick. */
int session_slot_take(struct session_env *env, struct session *s);
void session_on_tick(uv_timer_t *timer);

/* cutoff.c: s has closed (on_conn_close); a sessions_end waiting for it may answer. */
void session_end_closed(struct session_env *env, const struct session *s);

/* session_events.c: a device's EVENT or ALARM; a client's SUBSCRIBE, UNSUBSCRIBE or LEASE. */
void session_on_event(struct session *s, const struct iotp_frame *f);
void session_on_alarm(struct session *s, const struct iotp_frame *f);
void session_on_subscribe(struct session *s, const struct iotp_frame *f);
void session_on_unsubscribe(struct session *s, const struct iotp_frame *f);
void session_on_lease(struct session *s, const struct iotp_frame *f);
/* session_query.c: a client's QUERY and ACK, handed to the query hooks. */
void session_on_query(struct session *s, const struct iotp_frame *f);
void session_on_client_ack(struct session *s, const struct iotp_frame *f);
/* A device or user session ends (presence, subscriptions and leases). */
void session_events_closed(struct session *s);
/* A device session was established. */
void session_events_online(struct session *s);

#endif
