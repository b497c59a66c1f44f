/*
 * session.c - device sessions on the io threads (see session.h).
 *
 * Memory per idle device is what decides how many devices one iotd holds, so a session keeps
 * only what an established connection needs: the frame parser's buffer exists only while a
 * frame is partly received, and the handshake state (nonces, key) only until WELCOME.
 *
 * Lifetime: a session is created by the net layer's accept callback and freed in the close
 * callback of its timer, which is closed from the connection's on_close, so the session always
 * outlives its connection and is freed on exactly one path. Other threads address a session
 * only by (io thread, slot, serial) through the inbox, never by pointer.
 */
#include "session/session.h"

#include "core/log.h"
#include "iot_error.h"
#include "iotp/iotp.h"
#include "iotp_posix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum session_state { SESSION_HANDSHAKE, SESSION_ESTABLISHED, SESSION_CLOSING };

struct session_env;

struct session {
    struct session_env *env;
    conn_t *conn;
    enum session_state state;
    uint32_t slot;
    uint64_t serial;
    uv_timer_t timer;          /* handshake deadline, then keepalive ticks */
    struct iotp_server_hs *hs; /* only during the handshake */
    struct iotp_parser parser;
    uint8_t *parser_buf; /* only while a frame is partly received */
    char device_id[IOTP_MAX_ADDRESS_LEN + 1];
    char tenant[65];
    int64_t since_ms, last_activity_ms; /* wall clock, for iottop */
    uint64_t frames_in, frames_out;
    char lookup_failure[64]; /* why the key lookup failed, for the log only */
    const char *close_reason;
    uint64_t last_rx_ms, last_touch_ms;
    uint32_t ping_seq;
    unsigned bad_frames;
};

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
};

struct sessions {
    struct session_deps deps;
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

static void on_kick(inbox_msg_t *msg, void *loop_data);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The snapshot of this thread, refreshed when a newer one was published. */
static registry_snapshot_t *env_snapshot(struct session_env *env)
{
    registry_t *reg = env->all->deps.registry;
    if (!env->snap || registry_snapshot_generation(env->snap) != registry_generation(reg)) {
        if (env->snap)
            registry_release(env->snap);
        env->snap = registry_acquire(reg);
    }
    return env->snap;
}

static void send_bytes(struct session *s, const uint8_t *buf, size_t len)
{
    if (conn_write(s->conn, buf, len) == 0) {
        s->frames_out++;
        atomic_fetch_add_explicit(&s->env->counters.frames_out, 1, memory_order_relaxed);
    } else if (s->state != SESSION_CLOSING)
        s->close_reason = "output buffer full"; /* closed by the caller's next check */
}

/* Send `iotd <device> TYPE id [k=v]`. */
static void send_system(struct session *s, const char *type, uint32_t id, const char *key,
                        const char *value)
{
    uint8_t buf[256];
    struct iotp_writer w;
    iotp_writer_begin(&w, buf, sizeof(buf), IOTP_SERVER_ADDRESS,
                      s->device_id[0] ? s->device_id : "unknown", type, id);
    if (key)
        iotp_writer_kv(&w, key, value);
    int len = iotp_writer_end(&w);
    if (len > 0)
        send_bytes(s, buf, (size_t)len);
}

static void send_error(struct session *s, uint32_t id, const char *code, uint32_t retry_s)
{
    uint8_t buf[256];
    int len = iotp_frame_write_error(buf, sizeof(buf), IOTP_SERVER_ADDRESS,
                                     s->device_id[0] ? s->device_id : "unknown", id, code, retry_s);
    if (len > 0)
        send_bytes(s, buf, (size_t)len);
}

static void session_close(struct session *s, const char *reason)
{
    if (s->state == SESSION_CLOSING)
        return;
    if (!s->close_reason)
        s->close_reason = reason;
    s->state = SESSION_CLOSING;
    conn_close(s->conn, reason);
}

/* "203.0.113.7:51234" -> "a:203.0.113.7": the rate-limit key of a peer address. */
static void address_key(const char *peer, char *out, size_t outlen)
{
    const char *colon = strrchr(peer, ':');
    int len = colon ? (int)(colon - peer) : (int)strlen(peer);
    snprintf(out, outlen, "a:%.*s", len, peer);
}

static void record(struct session *s, enum conn_event ev, const char *reason)
{
    const struct conn_info *ci = conn_info(s->conn);
    conn_log_record(s->env->all->deps.conn_log, ev, s->device_id, ci->peer,
                    ci->transport == CONN_TLS ? "tls" : "tcp", reason, wall_ms());
}

/* The provisioned secret of the HELLO's device, or NULL (reason in s->lookup_failure). */
static bool lookup_secret(struct session *s, struct iotp_device_secret *secret)
{
    struct iotp_server_hs *hs = s->hs;
    registry_snapshot_t *snap = env_snapshot(s->env);
    struct registry_device_info info;
    const char *why = NULL;

    if (registry_device_lookup(snap, hs->device_id, &info) != 0)
        why = "unknown device";
    else if (!info.enabled)
        why = "device disabled";
    else if (strcmp(info.type, hs->device_type) != 0)
        why = "wrong device type";
    else if ((info.atecc508a ? IOTP_ALG_ATECC508A_MAC : IOTP_ALG_HMAC_SHA256) != hs->alg)
        why = "wrong authentication algorithm";
    else if (registry_device_secret(snap, s->env->all->deps.secret_key, hs->device_id,
                                    secret->key) != 0)
        why = "stored secret cannot be opened (secret.key changed?)";
    if (why) {
        snprintf(s->lookup_failure, sizeof(s->lookup_failure), "%s", why);
        return false;
    }
    secret->alg = hs->alg;
    memcpy(secret->serial, info.serial, sizeof(secret->serial));
    snprintf(s->tenant, sizeof(s->tenant), "%s", info.tenant);
    return true;
}

static void on_hello(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    uint8_t out[512];
    size_t out_len = 0;
    char key[160];
    uint32_t retry_s = 0;

    int rc = iotp_server_hs_on_hello(s->hs, f);
    if (rc != 0) {
        send_error(s, f->id, iotp_error_wire_code(rc), 0);
        atomic_fetch_add(&env->counters.auth_failures, 1);
        record(s, CONN_EVENT_AUTH_FAILURE, iotp_strerror(rc));
        session_close(s, "malformed HELLO");
        return;
    }
    snprintf(s->device_id, sizeof(s->device_id), "%s", s->hs->device_id);

    /* Refuse blocked peers before any cryptography: a flood must stay cheap. */
    address_key(conn_info(s->conn)->peer, key, sizeof(key));
    bool blocked = ratelimit_blocked(env->all->deps.ratelimit, key, wall_ms(), &retry_s);
    snprintf(key, sizeof(key), "d:%s", s->device_id);
    if (!blocked)
        blocked = ratelimit_blocked(env->all->deps.ratelimit, key, wall_ms(), &retry_s);
    if (blocked) {
        send_error(s, f->id, "auth", retry_s);
        atomic_fetch_add(&env->counters.rate_limited, 1);
        record(s, CONN_EVENT_AUTH_FAILURE, "rate limited");
        session_close(s, "rate limited");
        return;
    }

    struct iotp_device_secret secret;
    bool known = lookup_secret(s, &secret);
    rc = iotp_server_hs_challenge(s->hs, known ? &secret : NULL, out, sizeof(out), &out_len);
    iotp_wipe(&secret, sizeof(secret));
    if (rc != 0) {
        session_close(s, "cannot build CHALLENGE");
        return;
    }
    send_bytes(s, out, out_len);
}

static void established(struct session *s);

static void on_auth(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    const struct session_options *o = &env->all->opts;
    uint8_t out[512];
    size_t out_len = 0;
    char addr_key[160], dev_key[160];

    int rc = iotp_server_hs_on_auth(s->hs, f, o->ping_s, 0, out, sizeof(out), &out_len);
    if (rc == IOTP_HS_DONE) {
        established(s);
        if (s->state == SESSION_ESTABLISHED)
            send_bytes(s, out, out_len);
        return;
    }
    if (rc != IOTP_EAUTH) {
        session_close(s, "handshake failed");
        return;
    }
    /* Both keys count the failure; the refusal's retry hint is the longer of the two. The
     * ERROR is rebuilt here only to carry that hint: it is byte for byte what the library
     * would send for any failure, so it reveals nothing about which check failed. */
    int64_t now = wall_ms();
    address_key(conn_info(s->conn)->peer, addr_key, sizeof(addr_key));
    snprintf(dev_key, sizeof(dev_key), "d:%s", s->device_id);
    uint32_t r1 = ratelimit_fail(env->all->deps.ratelimit, addr_key, o->auth_fail_limit * 10, now);
    uint32_t r2 = ratelimit_fail(env->all->deps.ratelimit, dev_key, o->auth_fail_limit, now);
    send_error(s, f->id, "auth", r1 > r2 ? r1 : r2);
    atomic_fetch_add(&env->counters.auth_failures, 1);
    record(s, CONN_EVENT_AUTH_FAILURE, s->lookup_failure[0] ? s->lookup_failure : "wrong mac");
    log_info("device %s from %s: authentication failed (%s)", s->device_id,
             conn_info(s->conn)->peer, s->lookup_failure[0] ? s->lookup_failure : "wrong mac");
    session_close(s, "authentication failed");
}

static void on_keepalive_tick(uv_timer_t *timer);

/* WELCOME is due: claim presence (replacing or refusing a duplicate), then keep the device. */
static void established(struct session *s)
{
    struct session_env *env = s->env;
    sessions_t *all = env->all;
    const struct conn_info *ci = conn_info(s->conn);
    struct presence_entry e = {0}, previous;
    int64_t now = wall_ms();

    snprintf(e.device_id, sizeof(e.device_id), "%.64s", s->device_id); /* registered ids fit */
    e.io_index = env->index;
    e.session = (void *)(uintptr_t)s->slot;
    e.serial = s->serial;
    e.since_ms = e.last_seen_ms = now;
    snprintf(e.address, sizeof(e.address), "%s", ci->peer);
    snprintf(e.transport, sizeof(e.transport), "%s", ci->transport == CONN_TLS ? "tls" : "tcp");

    int rc = presence_claim(all->deps.presence, &e, all->opts.replace_duplicate, &previous);
    if (rc < 0) {
        /* Refused: the key was right, so saying why costs nothing. */
        send_error(s, 2, rc == IOT_EEXIST ? "busy" : "internal", 0);
        record(s, CONN_EVENT_AUTH_FAILURE, "already connected");
        session_close(s, rc == IOT_EEXIST ? "device already connected" : "presence full");
        return;
    }
    if (rc == 1) {
        struct kick_msg *k = malloc(sizeof(*k));
        if (k) {
            *k = (struct kick_msg){.msg.handle = on_kick,
                                   .all = all,
                                   .slot = (uint32_t)(uintptr_t)previous.session,
                                   .serial = previous.serial};
            if (inbox_push(&all->deps.io[previous.io_index].inbox, &k->msg) != 0)
                free(k); /* the old session ends by keepalive timeout instead */
        }
        atomic_fetch_add(&env->counters.replaced, 1);
    }
    char dev_key[160];
    snprintf(dev_key, sizeof(dev_key), "d:%s", s->device_id);
    ratelimit_reset(all->deps.ratelimit, dev_key);

    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_ESTABLISHED;
    s->last_touch_ms = (uint64_t)now;
    atomic_fetch_add(&env->counters.authenticated, 1);
    atomic_fetch_add(&env->counters.devices, 1);
    record(s, CONN_EVENT_CONNECT, rc == 1 ? "replaced an older connection" : "authenticated");
    log_debug("device %s online from %s (%s)", s->device_id, ci->peer, e.transport);
    uint64_t period = (uint64_t)all->opts.ping_s * 1000;
    uv_timer_start(&s->timer, on_keepalive_tick, period, period);
}

/* A frame of an authenticated device. */
static void on_device_frame(struct session *s, const struct iotp_frame *f)
{
    if (strcmp(f->from, s->device_id) != 0) {
        /* A device speaks only for itself. */
        send_error(s, f->id, "bad_frame", 0);
        s->bad_frames++;
        return;
    }
    if (strcmp(f->type, "PING") == 0) {
        send_system(s, "PONG", f->id, NULL, NULL);
    } else if (strcmp(f->type, "PONG") == 0) {
        /* last_rx is all a PONG is for */
    } else if (strcmp(f->type, "BYE") == 0) {
        session_close(s, "device said BYE");
    } else if (strcmp(f->type, "OK") == 0 || strcmp(f->type, "ERROR") == 0) {
        /* answers to requests relayed to the device: the relay consumes them */
    } else {
        /* Types this server does not serve (yet) get the catalogue's answer. */
        send_error(s, f->id, "unknown_type", 0);
    }
}

static void on_frame(struct session *s, const struct iotp_frame *f)
{
    s->frames_in++;
    atomic_fetch_add_explicit(&s->env->counters.frames_in, 1, memory_order_relaxed);
    if (s->state == SESSION_ESTABLISHED)
        on_device_frame(s, f);
    else if (s->hs->state == IOTP_SERVER_HS_WAIT_HELLO)
        on_hello(s, f);
    else
        on_auth(s, f);
}

static void on_bad_frame(struct session *s, int rc, uint32_t id)
{
    struct session_env *env = s->env;
    atomic_fetch_add(&env->counters.bad_frames, 1);
    send_error(s, id, iotp_error_wire_code(rc), 0);
    if (s->state == SESSION_HANDSHAKE) {
        record(s, CONN_EVENT_AUTH_FAILURE, iotp_strerror(rc));
        session_close(s, "malformed frame during handshake");
    } else if (++s->bad_frames > env->all->opts.max_bad_frames) {
        atomic_fetch_add(&env->counters.abuse_closes, 1);
        log_warn("device %s from %s: %u malformed frames, disconnecting", s->device_id,
                 conn_info(s->conn)->peer, s->bad_frames);
        session_close(s, "too many malformed frames");
    }
}

static void on_data(conn_t *c, const uint8_t *data, size_t len)
{
    struct session *s = conn_owner(c);
    const struct session_options *o = &s->env->all->opts;

    if (s->state == SESSION_CLOSING)
        return;
    s->last_rx_ms = uv_now(&s->env->io->loop);
    s->last_activity_ms = wall_ms();
    if (!s->parser_buf) {
        s->parser_buf = malloc(o->max_frame);
        if (!s->parser_buf) {
            session_close(s, "out of memory");
            return;
        }
        iotp_parser_init(&s->parser, s->parser_buf, o->max_frame, o->max_frame, 0);
    }
    while (len > 0 && s->state != SESSION_CLOSING) {
        size_t used = 0;
        const struct iotp_frame *f = NULL;
        uint32_t bad_id = 0;
        int rc = iotp_parser_feed(&s->parser, data, len, &used, &f, &bad_id);
        data += used;
        len -= used;
        if (rc == 1)
            on_frame(s, f);
        else if (rc < 0)
            on_bad_frame(s, rc, bad_id);
        if (s->close_reason && s->state != SESSION_CLOSING)
            session_close(s, s->close_reason);
    }
    /* Between frames the parser holds nothing: give its buffer back. */
    if (s->parser.len == 0 && !s->parser.skipping) {
        free(s->parser_buf);
        s->parser_buf = NULL;
    }
    if (s->state == SESSION_ESTABLISHED) {
        int64_t now = wall_ms();
        if (now - (int64_t)s->last_touch_ms >= 1000) {
            presence_touch(s->env->all->deps.presence, s->device_id, s->serial, now);
            s->last_touch_ms = (uint64_t)now;
        }
    }
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct session *s = handle->data;
    free(s->parser_buf);
    if (s->hs)
        iotp_wipe(s->hs, sizeof(*s->hs));
    free(s->hs);
    free(s);
}

static void on_conn_close(conn_t *c, const char *reason)
{
    struct session *s = conn_owner(c);
    struct session_env *env = s->env;
    const char *why = s->close_reason ? s->close_reason : reason;
    bool was_established = !s->hs;

    if (was_established) {
        presence_release(env->all->deps.presence, s->device_id, s->serial, wall_ms());
        atomic_fetch_sub(&env->counters.devices, 1);
        record(s, CONN_EVENT_DISCONNECT, why);
        log_debug("device %s offline: %s", s->device_id, why);
    }
    s->state = SESSION_CLOSING;
    env->slots[s->slot] = NULL;
    if (s->slot < env->free_hint)
        env->free_hint = s->slot;
    atomic_fetch_sub(&env->counters.sessions, 1);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static const struct conn_callbacks session_callbacks = {on_data, on_conn_close};

static void on_handshake_timeout(uv_timer_t *timer)
{
    struct session *s = timer->data;
    atomic_fetch_add(&s->env->counters.handshake_timeouts, 1);
    if (s->device_id[0])
        record(s, CONN_EVENT_AUTH_FAILURE, "handshake timeout");
    session_close(s, "handshake timeout");
}

static void on_keepalive_tick(uv_timer_t *timer)
{
    struct session *s = timer->data;
    const struct session_options *o = &s->env->all->opts;
    uint64_t idle = uv_now(&s->env->io->loop) - s->last_rx_ms;

    if (idle >= (uint64_t)o->keepalive_timeout_s * 1000) {
        atomic_fetch_add(&s->env->counters.keepalive_timeouts, 1);
        session_close(s, "keepalive timeout");
    } else if (idle >= (uint64_t)o->ping_s * 1000) {
        send_system(s, "PING", ++s->ping_seq ? s->ping_seq : ++s->ping_seq, NULL, NULL);
    }
}

/* A free slot index in env->slots, growing the table if needed. */
static int slot_take(struct session_env *env, struct session *s)
{
    for (uint32_t i = env->free_hint; i < env->nslots; i++) {
        if (!env->slots[i]) {
            env->slots[i] = s;
            s->slot = i;
            env->free_hint = i + 1;
            return 0;
        }
    }
    uint32_t n = env->nslots ? env->nslots * 2 : 1024;
    struct session **grown = realloc(env->slots, n * sizeof(*grown));
    if (!grown)
        return IOT_ENOMEM;
    memset(grown + env->nslots, 0, (n - env->nslots) * sizeof(*grown));
    env->slots = grown;
    s->slot = env->nslots;
    env->slots[s->slot] = s;
    env->free_hint = s->slot + 1;
    env->nslots = n;
    return 0;
}

static void on_accept(net_loop_t *nl, conn_t *c, void *arg)
{
    struct session_env *env = arg;
    struct session *s = calloc(1, sizeof(*s));
    (void)nl;
    if (s)
        s->hs = calloc(1, sizeof(*s->hs));
    if (!s || !s->hs || slot_take(env, s) != 0) {
        if (s)
            free(s->hs);
        free(s);
        conn_close(c, "out of memory");
        return;
    }
    s->env = env;
    s->conn = c;
    s->serial = presence_next_serial(env->all->deps.presence);
    s->last_rx_ms = uv_now(&env->io->loop);
    s->since_ms = s->last_activity_ms = wall_ms();
    iotp_server_hs_init(s->hs, &env->random);
    uv_timer_init(&env->io->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_handshake_timeout, env->all->opts.handshake_timeout_ms, 0);
    conn_set_owner(c, &session_callbacks, s);
    atomic_fetch_add(&env->counters.accepted, 1);
    atomic_fetch_add(&env->counters.sessions, 1);
}

/* Runs on the replaced session's thread: close it if it is still the one presence named. */
static void on_kick(inbox_msg_t *msg, void *loop_data)
{
    struct kick_msg *k = container_of(msg, struct kick_msg, msg);
    io_thread_t *io = loop_data;
    struct session_env *env = &k->all->envs[io->index];
    struct session *s = k->slot < env->nslots ? env->slots[k->slot] : NULL;

    if (s && s->serial == k->serial && s->state == SESSION_ESTABLISHED) {
        send_system(s, "BYE", 0, "reason", "replaced");
        session_close(s, "replaced by a new connection");
    }
    free(k);
}

static int env_start(io_thread_t *io, void *arg)
{
    struct session_env *env = arg;
    iotp_posix_random(&env->random);
    return net_loop_init(&env->net, io, on_accept, env);
}

static int env_stop(io_thread_t *io, void *arg)
{
    struct session_env *env = arg;
    (void)io;
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
    all->envs = calloc(deps->io_count, sizeof(*all->envs));
    if (!all->envs)
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
    free(all);
}

/* ---- stats: the sessions table, gathered across threads through the inboxes ---- */

#define ROW_CMP(field)                                                                             \
    static int cmp_##field(const void *a, const void *b)                                           \
    {                                                                                              \
        const struct session_row *x = a, *y = b;                                                   \
        return (x->field < y->field) - (x->field > y->field); /* descending */                     \
    }
ROW_CMP(frames_in)
ROW_CMP(frames_out)
ROW_CMP(bytes_out)
ROW_CMP(output_bytes)
ROW_CMP(since_ms)
ROW_CMP(last_activity_ms)
ROW_CMP(in_flight)
#undef ROW_CMP

session_row_cmp session_row_comparator(const char *name)
{
    static const struct {
        const char *name;
        session_row_cmp cmp;
    } keys[] = {{"frames_in", cmp_frames_in}, {"frames_out", cmp_frames_out},
                {"bytes_out", cmp_bytes_out}, {"output_bytes", cmp_output_bytes},
                {"since", cmp_since_ms},      {"last_activity", cmp_last_activity_ms},
                {"in_flight", cmp_in_flight}};
    for (size_t i = 0; name && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].name, name) == 0)
            return keys[i].cmp;
    return NULL;
}

struct gather_part {
    inbox_msg_t msg;
    struct gather *g;
    unsigned index;
    struct session_row *rows;
    size_t n, total;
};

struct gather {
    inbox_msg_t done;
    sessions_t *all;
    session_row_cmp cmp;
    size_t top;
    atomic_uint pending;
    inbox_t *reply_to;
    sessions_collect_fn fn;
    void *arg;
    struct gather_part parts[];
};

static void session_to_row(struct session *s, struct session_row *r)
{
    const struct conn_info *ci = conn_info(s->conn);
    memset(r, 0, sizeof(*r));
    snprintf(r->principal, sizeof(r->principal), "%s", s->device_id);
    snprintf(r->tenant, sizeof(r->tenant), "%s", s->hs ? "" : s->tenant);
    r->kind = "device";
    r->state = s->state == SESSION_ESTABLISHED ? "online" : "handshake";
    snprintf(r->transport, sizeof(r->transport), "%s", ci->transport == CONN_TLS ? "tls" : "tcp");
    snprintf(r->address, sizeof(r->address), "%s", ci->peer);
    r->since_ms = s->since_ms;
    r->last_activity_ms = s->last_activity_ms;
    r->output_bytes = conn_pending(s->conn);
    r->bytes_out = ci->bytes_out;
    r->frames_in = s->frames_in;
    r->frames_out = s->frames_out;
}

static void gather_free(struct gather *g)
{
    for (unsigned i = 0; i < g->all->deps.io_count; i++)
        free(g->parts[i].rows);
    free(g);
}

/* On the main loop once every thread answered: merge, sort, keep the top, report. */
static void on_gather_done(inbox_msg_t *msg, void *loop_data)
{
    struct gather *g = container_of(msg, struct gather, done);
    size_t n = 0, total = 0;
    (void)loop_data;
    for (unsigned i = 0; i < g->all->deps.io_count; i++)
        n += g->parts[i].n, total += g->parts[i].total;
    struct session_row *rows = n ? malloc(n * sizeof(*rows)) : NULL;
    size_t k = 0;
    for (unsigned i = 0; rows && i < g->all->deps.io_count; i++) {
        memcpy(rows + k, g->parts[i].rows, g->parts[i].n * sizeof(*rows));
        k += g->parts[i].n;
    }
    if (rows)
        qsort(rows, k, sizeof(*rows), g->cmp);
    g->fn(rows, k < g->top ? k : g->top, total, g->arg);
    free(rows);
    gather_free(g);
}

/* On each io thread: its own sessions, sorted, cut to the top. */
static void on_gather_part(inbox_msg_t *msg, void *loop_data)
{
    struct gather_part *p = container_of(msg, struct gather_part, msg);
    struct gather *g = p->g;
    struct session_env *env = &g->all->envs[((io_thread_t *)loop_data)->index];
    size_t live = atomic_load(&env->counters.sessions);

    p->rows = live ? malloc(live * sizeof(*p->rows)) : NULL;
    for (uint32_t i = 0; p->rows && i < env->nslots && p->n < live; i++)
        if (env->slots[i] && env->slots[i]->state != SESSION_CLOSING)
            session_to_row(env->slots[i], &p->rows[p->n++]);
    p->total = p->n;
    if (p->rows) {
        qsort(p->rows, p->n, sizeof(*p->rows), g->cmp);
        if (p->n > g->top)
            p->n = g->top;
    }
    if (atomic_fetch_sub(&g->pending, 1) == 1 && inbox_push_wait(g->reply_to, &g->done) != 0)
        gather_free(g); /* the main loop is stopping: nobody waits for the result */
}

int sessions_collect(sessions_t *all, inbox_t *reply_to, session_row_cmp cmp, size_t top,
                     sessions_collect_fn fn, void *arg)
{
    unsigned n = all->deps.io_count;
    struct gather *g = calloc(1, sizeof(*g) + n * sizeof(g->parts[0]));
    if (!g)
        return IOT_ENOMEM;
    g->done.handle = on_gather_done;
    g->all = all;
    g->cmp = cmp;
    g->top = top;
    g->reply_to = reply_to;
    g->fn = fn;
    g->arg = arg;
    atomic_init(&g->pending, n);
    for (unsigned i = 0; i < n; i++) {
        g->parts[i] = (struct gather_part){.msg.handle = on_gather_part, .g = g, .index = i};
        if (inbox_push(&all->deps.io[i].inbox, &g->parts[i].msg) != 0) {
            /* Threads already asked will still answer: count this one as answered, empty. */
            if (atomic_fetch_sub(&g->pending, n - i) == n - i) {
                gather_free(g);
                return IOT_EBUSY;
            }
            return IOT_OK;
        }
    }
    return IOT_OK;
}
