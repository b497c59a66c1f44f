/*
 * session.c - a session's life on its io thread (see session.h): accepted, fed bytes that the
 * firmware's parser turns into frames, each frame handed to the handler of its type, closed
 * and freed; and the layer's start and stop on every io thread.
 *
 * Memory per idle device is what decides how many devices one iotd holds, so a session keeps
 * only what an established connection needs: the frame parser (and its buffer) is held only
 * while a frame is partly received, and the handshake state (nonces, key) only until WELCOME.
 *
 * Lifetime: a session is created by the net layer's accept callback and freed when its
 * connection's on_close has run and no LOGIN verification still holds it (refs), so the session
 * always outlives its connection and is freed on exactly one path. Other threads address a
 * session only by (io thread, slot, serial) through the inbox, never by pointer.
 *
 * Sessions come from a pool of their io thread (loop/pool.h) rather than malloc: no header,
 * and a connect storm leaves them packed together instead of spread over pages between the
 * handshakes' short-lived allocations, which malloc could then not give back.
 *
 * The other jobs live beside it: handshake.c (HELLO, AUTH, WELCOME), login.c (LOGIN),
 * relay_sender.c and relay_device.c (the relay's two sides), holds.c (backpressure), slots.c
 * (slots, tick, trim), rows.c (iottop's rows), session_events.c (events and subscriptions),
 * cutoff.c (sessions ended by the operator).
 */
#include "session/session.h"

#include "base/log.h"
#include "iot_error.h"
#include "iot_grow.h"
#include "iotp/iotp.h"
#include "iotp_posix.h"
#include "session/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *session_tenant_intern(struct session_env *env, const char *name)
{
    char cut[65];
    snprintf(cut, sizeof(cut), "%s", name);
    for (uint32_t i = 0; i < env->ntenants; i++)
        if (strcmp(env->tenants[i], cut) == 0)
            return env->tenants[i];
    char **grown = iot_grow(env->tenants, env->ntenants, &env->tenants_cap, 8, sizeof(*grown));
    if (!grown)
        return NULL;
    env->tenants = grown;
    char *copy = strdup(cut);
    if (copy)
        env->tenants[env->ntenants++] = copy;
    return copy;
}

/* The snapshot of this thread, refreshed when a newer one was published. */
registry_snapshot_t *session_snapshot(struct session_env *env)
{
    registry_t *reg = env->all->deps.registry;
    if (!env->snap || registry_snapshot_generation(env->snap) != registry_generation(reg)) {
        if (env->snap)
            registry_release(env->snap);
        env->snap = registry_acquire(reg);
    }
    return env->snap;
}

void session_send_bytes(struct session *s, const uint8_t *buf, size_t len)
{
    if (conn_write(s->conn, buf, len) == 0) {
        s->frames_out++;
        atomic_fetch_add_explicit(&s->env->counters.frames_out, 1, memory_order_relaxed);
    } else if (s->state != SESSION_CLOSING)
        s->close_reason = "output buffer full"; /* closed by the caller's next check */
}

/* Send `iotd <device> TYPE id [k=v]`. */
void session_send_system(struct session *s, enum iotp_type type, uint32_t id, const char *key,
                         const char *value)
{
    uint8_t buf[256];
    struct iotp_writer w;
    iotp_writer_begin(&w, buf, sizeof(buf), IOTP_SERVER_ADDRESS,
                      s->principal[0] ? s->principal : "unknown", iotp_type_name(type), id);
    if (key)
        iotp_writer_kv(&w, key, value);
    int len = iotp_writer_end(&w);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
}

void session_send_error_from(struct session *s, const char *from, uint32_t id, const char *code,
                             uint32_t retry_s, const char *msg)
{
    uint8_t buf[512];
    /* Every busy says when to come back (iot-protocol(7)): 1 s unless the caller knows. */
    if (retry_s == 0 && strcmp(code, "busy") == 0)
        retry_s = 1;
    int len = iotp_frame_write_error(
        buf, sizeof(buf), from, s->principal[0] ? s->principal : "unknown", id, code, retry_s, msg);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
}

void session_send_error(struct session *s, uint32_t id, const char *code, uint32_t retry_s)
{
    session_send_error_from(s, IOTP_SERVER_ADDRESS, id, code, retry_s, NULL);
}

void session_close(struct session *s, const char *reason)
{
    if (s->state == SESSION_CLOSING)
        return;
    if (!s->close_reason)
        s->close_reason = reason;
    s->state = SESSION_CLOSING;
    if (s->authenticated && s->kind == SESSION_DEVICE)
        /* Requests waiting at this device fail at once rather than at their timeouts. */
        relay_device_closed(s->env->relay, s->slot, s->serial);
    conn_close(s->conn, reason);
}

bool session_record(struct session *s, enum conn_event ev, const char *reason)
{
    const struct conn_info *ci = conn_info(s->conn);
    char peer[PEER_ADDR_TEXT];
    return conn_log_record(s->env->all->deps.conn_log, ev, s->principal, conn_peer(s->conn, peer),
                           ci->transport == CONN_TLS ? "tls" : "tcp", reason, ctl_wall_ms());
}

/* ---- frames, by type: one table per session state (handshake, device, client) ----
 *
 * A frame goes to the handler of its type (iotp_frame_type: the firmware's table of types) in
 * the table of its session's state. An upper-case type the protocol does not define is
 * refused with ERROR code=unknown_type; a system type with no handler in the table is out of
 * place, refused with ERROR code=bad_frame (iot-protocol(7)). Adding a system type: its row in
 * firmware/ (iotp_types.h, .c), its handler here (or beside its job), a row in each table that
 * takes it, iot-protocol(7). */

typedef void (*frame_handler)(struct session *s, const struct iotp_frame *f);

static void on_ping(struct session *s, const struct iotp_frame *f)
{
    session_send_system(s, IOTP_TYPE_PONG, f->id, NULL, NULL);
}

static void on_pong(struct session *s, const struct iotp_frame *f)
{
    (void)s, (void)f; /* last_rx is all a PONG is for */
}

static void on_bye(struct session *s, const struct iotp_frame *f)
{
    (void)f;
    session_close(s, "peer said BYE");
}

/* Before WELCOME, waiting for the first frame: a device's HELLO or a client's LOGIN. Any other
 * type goes to the firmware's handshake too, which refuses it (out of place). After HELLO,
 * every frame goes to the handshake as AUTH, which refuses anything else. */
static const frame_handler hello_frames[IOTP_TYPE_COUNT] = {
    [IOTP_TYPE_HELLO] = session_on_hello,
    [IOTP_TYPE_LOGIN] = session_on_login,
};

/* An authenticated device. */
static const frame_handler device_frames[IOTP_TYPE_COUNT] = {
    [IOTP_TYPE_APP] = session_relay_request,   /* a request to another device */
    [IOTP_TYPE_OK] = session_on_device_answer, /* answers to the requests relayed to it */
    [IOTP_TYPE_ERROR] = session_on_device_answer,
    [IOTP_TYPE_PING] = on_ping,
    [IOTP_TYPE_PONG] = on_pong,
    [IOTP_TYPE_BYE] = on_bye,
    [IOTP_TYPE_EVENT] = session_on_event,
    [IOTP_TYPE_ALARM] = session_on_alarm,
};

/* A logged-in client (LOGIN). */
static const frame_handler client_frames[IOTP_TYPE_COUNT] = {
    [IOTP_TYPE_APP] = session_relay_request,
    [IOTP_TYPE_PING] = on_ping,
    [IOTP_TYPE_PONG] = on_pong,
    [IOTP_TYPE_BYE] = on_bye,
    [IOTP_TYPE_SUBSCRIBE] = session_on_subscribe,
    [IOTP_TYPE_UNSUBSCRIBE] = session_on_unsubscribe,
    [IOTP_TYPE_LEASE] = session_on_lease,
    [IOTP_TYPE_QUERY] = session_on_query,
    [IOTP_TYPE_ACK] = session_on_client_ack, /* an alarm acknowledged */
};

static void on_frame(struct session *s, const struct iotp_frame *f)
{
    enum iotp_type type = iotp_frame_type(f);
    frame_handler handler;

    s->frames_in++;
    atomic_fetch_add_explicit(&s->env->counters.frames_in, 1, memory_order_relaxed);
    if (s->state != SESSION_ESTABLISHED) {
        if (s->refs > 1) /* a LOGIN is being verified; what follows it is held (login.c) */
            session_send_error(s, f->id, "busy", 1);
        else if (type == IOTP_TYPE_UNKNOWN) {
            session_send_error(s, f->id, "unknown_type", 0);
            session_record(s, CONN_EVENT_AUTH_FAILURE, "unknown type during the handshake");
            session_close(s, "unknown type during the handshake");
        } else if (s->hs->state != IOTP_SERVER_HS_WAIT_HELLO)
            session_on_auth(s, f);
        else if ((handler = hello_frames[type]) != NULL)
            handler(s, f);
        else
            session_on_hello(s, f);
        return;
    }
    handler = s->kind == SESSION_DEVICE ? device_frames[type] : client_frames[type];
    if (strcmp(f->from, s->principal) != 0 || !handler) {
        /* A session speaks only for itself, and only in the frames of its state. */
        session_send_error(s, f->id,
                           strcmp(f->from, s->principal) == 0 && type == IOTP_TYPE_UNKNOWN
                               ? "unknown_type"
                               : "bad_frame",
                           0);
        session_bad_frame(s);
        return;
    }
    handler(s, f);
}

static void on_bad_frame(struct session *s, int rc, uint32_t id)
{
    struct session_env *env = s->env;
    atomic_fetch_add(&env->counters.bad_frames, 1);
    session_send_error(s, id, iotp_error_wire_code(rc), 0);
    if (s->state == SESSION_HANDSHAKE) {
        session_record(s, CONN_EVENT_AUTH_FAILURE, iotp_strerror(rc));
        session_close(s, "malformed frame during handshake");
    } else if (session_bad_frame(s) > env->all->opts.max_bad_frames) {
        atomic_fetch_add(&env->counters.abuse_closes, 1);
        log_warn("device %s from %s: %u malformed frames, disconnecting", s->principal,
                 conn_peer(s->conn, (char[PEER_ADDR_TEXT]){0}), s->bad_frames);
        session_close(s, "too many malformed frames");
    }
}

void session_on_data(conn_t *c, const uint8_t *data, size_t len)
{
    struct session *s = conn_owner(c);
    const struct session_options *o = &s->env->all->opts;

    if (s->state == SESSION_CLOSING || (s->held && session_stash_backlog(s, data, len)))
        return;
    int64_t previous_activity = s->last_activity_ms;
    s->last_rx_ms = uv_now(&s->env->io->loop);
    s->last_activity_ms = loop_pass_wall_ms(&s->env->io->meter);
    if (!s->input) {
        s->input =
            s->env->spare_input ? s->env->spare_input : malloc(sizeof(*s->input) + o->max_frame);
        s->env->spare_input = NULL;
        if (!s->input) {
            session_close(s, "out of memory");
            return;
        }
        iotp_parser_init(&s->input->parser, s->input->buf, o->max_frame, o->max_frame, 0);
    }
    s->env->in_read = true;
    while (len > 0 && s->state != SESSION_CLOSING) {
        size_t used = 0;
        const struct iotp_frame *f = NULL;
        uint32_t bad_id = 0;
        int rc = iotp_parser_feed(&s->input->parser, data, len, &used, &f, &bad_id);
        data += used;
        len -= used;
        if (rc == 1)
            on_frame(s, f);
        else if (rc < 0)
            on_bad_frame(s, rc, bad_id);
        if (s->close_reason && s->state != SESSION_CLOSING)
            session_close(s, s->close_reason);
        if (s->held && len > 0 && s->state != SESSION_CLOSING &&
            session_stash_backlog(s, data, len))
            break;
    }

    s->env->in_read = false;
    session_dispatch_flush(s->env);

    /* Between frames the parser holds nothing: back to the thread's spare (or malloc). */
    if (s->input && s->input->parser.len == 0 && !s->input->parser.skipping) {
        if (!s->env->spare_input)
            s->env->spare_input = s->input;
        else
            free(s->input);
        s->input = NULL;
    }
    if (s->state == SESSION_ESTABLISHED) {
        int64_t now = s->last_activity_ms; /* this pass's time: one clock call per pass */
        if (now / 1000 != previous_activity / 1000)
            presence_touch(s->env->all->deps.presence, s->principal, s->serial, now);
    }
}

void session_unref(struct session *s)
{
    if (--s->refs > 0)
        return;
    free(s->input);
    if (s->hs)
        iotp_wipe(s->hs, sizeof(*s->hs));
    free(s->hs);
    if (s->principal_owned)
        free((char *)s->principal);
    pool_free(&s->env->session_pool, s);
}

static void on_conn_close(conn_t *c, const char *reason)
{
    struct session *s = conn_owner(c);
    struct session_env *env = s->env;
    const char *why = s->close_reason ? s->close_reason : reason;

    if (s->authenticated && s->kind == SESSION_DEVICE) {
        /* Requests waiting at this device fail at once rather than at their timeouts. */
        relay_device_closed(env->relay, s->slot, s->serial);
        presence_release(env->all->deps.presence, s->principal, s->serial, ctl_wall_ms());
        atomic_fetch_sub(&env->counters.devices, 1);
        session_record(s, CONN_EVENT_DISCONNECT, why);
        log_debug("device %s offline: %s", s->principal, why);
    } else if (s->authenticated) {
        atomic_fetch_sub(&env->counters.users, 1);
        log_debug("user %s disconnected: %s", s->principal, why);
    }
    /* After presence_release: the hub tells a real offline from a replaced connection by
     * whether presence still (or again) names the device. */
    session_events_closed(s);
    s->state = SESSION_CLOSING;
    env->slots[s->slot] = NULL;
    if (s->slot < env->free_hint)
        env->free_hint = s->slot;
    atomic_fetch_sub(&env->counters.sessions, 1);
    if (env->ending)
        session_end_closed(env, s);
    session_unref(s);
}

static const struct conn_callbacks session_callbacks = {session_on_data, on_conn_close};

static void on_accept(net_loop_t *nl, conn_t *c, void *arg)
{
    struct session_env *env = arg;
    struct session *s = pool_alloc(&env->session_pool);
    (void)nl;
    if (s)
        s->hs = calloc(1, sizeof(*s->hs));
    if (!s || !s->hs || session_slot_take(env, s) != 0) {
        if (s)
            free(s->hs);
        pool_free(&env->session_pool, s);
        conn_close(c, "out of memory");
        return;
    }
    s->env = env;
    s->conn = c;
    s->principal = s->tenant = "";
    s->refs = 1;
    s->serial = presence_next_serial(env->all->deps.presence);
    s->last_rx_ms = s->accepted_ms = uv_now(&env->io->loop);
    s->since_ms = s->last_activity_ms = ctl_wall_ms();
    iotp_server_hs_init(s->hs, &env->random);
    conn_set_owner(c, &session_callbacks, s);
    atomic_fetch_add(&env->counters.accepted, 1);
    env->accepts_since_trim++;
    atomic_fetch_add(&env->counters.sessions, 1);
}

void sessions_adopt(sessions_t *all, unsigned io, conn_t *c, const char *user)
{
    struct session_env *env = &all->envs[io];
    on_accept(env->net, c, env);
    struct session *s = conn_owner(c);
    if (s && user)
        session_login_trusted(s, user);
}

/* Deadlines are checked this often: the granularity of handshake and keepalive timeouts. */
#define SESSION_TICK_MS 250

static int env_start(io_thread_t *io, void *arg)
{
    struct session_env *env = arg;
    iotp_posix_random(&env->random);
    pool_init(&env->session_pool, sizeof(struct session));
    int rc = net_loop_init(&env->net, io, on_accept, env);
    if (rc != 0)
        return rc;
    uv_timer_init(&io->loop, &env->tick);
    env->tick.data = env;
    uv_timer_start(&env->tick, session_on_tick, SESSION_TICK_MS, SESSION_TICK_MS);
    session_holds_start(env);
    return session_relay_start(env);
}

static int env_stop(io_thread_t *io, void *arg)
{
    struct session_env *env = arg;
    (void)io;
    uv_close((uv_handle_t *)&env->tick, NULL);
    session_holds_stop(env);
    relay_thread_stop(env->relay);
    net_loop_close(env->net);
    return 0;
}

static int env_release(io_thread_t *io, void *arg)
{
    struct session_env *env = arg;
    (void)io;
    if (env->snap)
        registry_release(env->snap);
    env->snap = NULL;
    free(env->slots);
    env->slots = NULL;
    free(env->spare_input);
    env->spare_input = NULL;
    for (uint32_t i = 0; i < env->ntenants; i++)
        free(env->tenants[i]);
    free(env->tenants);
    env->tenants = NULL;
    env->ntenants = env->tenants_cap = 0;
    pool_destroy(&env->session_pool);
    return 0;
}

int sessions_start(sessions_t **out, const struct session_deps *deps,
                   const struct session_options *opts)
{
    int rc = IOT_ENOMEM;
    sessions_t *all = calloc(1, sizeof(*all));
    if (!all)
        return IOT_ENOMEM;
    all->deps = *deps;
    all->opts = *opts;
    if (!all->opts.handshake_timeout_ms)
        all->opts.handshake_timeout_ms = 10000;
    if (!all->opts.ping_s)
        all->opts.ping_s = 30;
    if (!all->opts.keepalive_timeout_s)
        all->opts.keepalive_timeout_s = all->opts.ping_s * 5 / 2;
    if (!all->opts.max_bad_frames)
        all->opts.max_bad_frames = 8;
    if (!all->opts.max_frame)
        all->opts.max_frame = IOTP_MAX_FRAME;
    if (!all->opts.auth_fail_limit)
        all->opts.auth_fail_limit = 5;
    if (!all->opts.max_in_flight)
        all->opts.max_in_flight = 16;
    if (!all->opts.max_timeout_ms)
        all->opts.max_timeout_ms = 60000;
    if (!all->opts.subscriber_backlog)
        all->opts.subscriber_backlog = 1024 * 1024;
    struct relay_options relay_opts = {.presence = deps->presence,
                                       .audit = deps->audit,
                                       .io = deps->io,
                                       .io_count = deps->io_count,
                                       .max_in_flight = all->opts.max_in_flight,
                                       .remote = deps->remote};
    all->envs = calloc(deps->io_count, sizeof(*all->envs));
    if (!all->envs || (rc = relay_start(&all->relay, &relay_opts)) != 0)
        goto fail;
    for (unsigned i = 0; i < deps->io_count; i++) {
        struct session_env *env = &all->envs[i];
        env->all = all;
        env->index = i;
        env->io = &deps->io[i];
        if ((rc = io_thread_call(env->io, env_start, env)) != 0)
            goto fail;
    }
    *out = all;
    return IOT_OK;
fail:
    sessions_stop(all);
    return rc;
}

net_loop_t **sessions_net_loops(sessions_t *all, net_loop_t **loops)
{
    for (unsigned i = 0; i < all->deps.io_count; i++)
        loops[i] = all->envs[i].net;
    return loops;
}

net_loop_t *sessions_net_loop(sessions_t *all, unsigned i)
{
    return all->envs[i].net;
}

const struct session_counters *sessions_counters(const sessions_t *all, unsigned i)
{
    return &all->envs[i].counters;
}

void sessions_stop(sessions_t *all)
{
    if (!all)
        return;
    for (unsigned i = 0; all->envs && i < all->deps.io_count; i++)
        if (all->envs[i].net)
            io_thread_call(all->envs[i].io, env_stop, &all->envs[i]);
    /* Closing flushes each connection's last bytes, which takes a few loop passes: wait (up to
     * a few seconds) until every session is gone, so nothing is cut off or leaked. */
    for (int tries = 0; tries < 500; tries++) {
        size_t left = 0;
        for (unsigned i = 0; all->envs && i < all->deps.io_count; i++)
            left += atomic_load(&all->envs[i].counters.sessions);
        if (left == 0)
            break;
        uv_sleep(10);
    }
    for (unsigned i = 0; all->envs && i < all->deps.io_count; i++)
        if (all->envs[i].io)
            io_thread_call(all->envs[i].io, env_release, &all->envs[i]);
    free(all->envs);
    relay_stop(all->relay);
    free(all);
}
