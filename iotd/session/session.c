/*
 * session.c - device sessions on the io threads (see session.h).
 *
 * Memory per idle device is what decides how many devices one iotd holds, so a session keeps
 * only what an established connection needs: the frame parser (and its buffer) is held only while a
 * frame is partly received, and the handshake state (nonces, key) only until WELCOME.
 *
 * Lifetime: a session is created by the net layer's accept callback and freed when its
 * connection's on_close has run and no LOGIN verification still holds it (refs), so the session
 * always outlives its connection and is freed on exactly one path. Deadlines (handshake,
 * keepalive) have no timer per session: one tick per io thread walks its sessions, which at
 * tens of thousands of sessions costs less than a timer handle each. Other threads address a
 * session only by (io thread, slot, serial) through the inbox, never by pointer.
 *
 * Sessions come from a pool of their io thread (loop/pool.h) rather than malloc: no header,
 * and a connect storm leaves them packed together instead of spread over pages between the
 * handshakes' short-lived allocations, which malloc could then not give back.
 */
#include "session/session.h"

#include "base/log.h"
#include "iot_error.h"
#include "iot_grow.h"
#include "iotp/iotp.h"
#include "iotp_posix.h"
#include "crypto/password.h"
#include "session/session_internal.h"

#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_kick(inbox_msg_t *msg, void *loop_data);
static void session_unref(struct session *s);

const char *session_tenant_intern(struct session_env *env, const char *name)
{
    char cut[65];
    snprintf(cut, sizeof(cut), "%s", name);
    for (uint32_t i = 0; i < env->ntenants; i++)
        if (strcmp(env->tenants[i], cut) == 0)
            return env->tenants[i];
    if (env->ntenants == env->tenants_cap) {
        uint32_t cap = env->tenants_cap ? env->tenants_cap * 2 : 8;
        char **grown = realloc(env->tenants, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        env->tenants = grown;
        env->tenants_cap = cap;
    }
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
void session_send_system(struct session *s, const char *type, uint32_t id, const char *key,
                         const char *value)
{
    uint8_t buf[256];
    struct iotp_writer w;
    iotp_writer_begin(&w, buf, sizeof(buf), IOTP_SERVER_ADDRESS,
                      s->principal[0] ? s->principal : "unknown", type, id);
    if (key)
        iotp_writer_kv(&w, key, value);
    int len = iotp_writer_end(&w);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
}

void session_send_error(struct session *s, uint32_t id, const char *code, uint32_t retry_s)
{
    uint8_t buf[256];
    int len =
        iotp_frame_write_error(buf, sizeof(buf), IOTP_SERVER_ADDRESS,
                               s->principal[0] ? s->principal : "unknown", id, code, retry_s, NULL);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
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
    conn_log_record(s->env->all->deps.conn_log, ev, s->principal, ci->peer,
                    ci->transport == CONN_TLS ? "tls" : "tcp", reason, ctl_wall_ms());
}

/* The provisioned secret of the HELLO's device, or NULL (reason in s->lookup_failure). */
static bool lookup_secret(struct session *s, struct iotp_device_secret *secret)
{
    struct iotp_server_hs *hs = s->hs;
    registry_snapshot_t *snap = session_snapshot(s->env);
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
        s->lookup_failure = why;
        return false;
    }
    secret->alg = hs->alg;
    memcpy(secret->serial, info.serial, sizeof(secret->serial));
    const char *tenant = session_tenant_intern(s->env, info.tenant);
    if (!tenant) {
        s->lookup_failure = "out of memory";
        return false;
    }
    s->tenant = tenant;
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
        session_send_error(s, f->id, iotp_error_wire_code(rc), 0);
        atomic_fetch_add(&env->counters.auth_failures, 1);
        record(s, CONN_EVENT_AUTH_FAILURE, iotp_strerror(rc));
        session_close(s, "malformed HELLO");
        return;
    }
    s->principal = s->hs->device_id; /* until presence has its own copy (established) */

    /* Refuse blocked peers before any cryptography: a flood must stay cheap. */
    address_key(conn_info(s->conn)->peer, key, sizeof(key));
    bool blocked = ratelimit_blocked(env->all->deps.ratelimit, key, ctl_wall_ms(), &retry_s);
    snprintf(key, sizeof(key), "d:%s", s->principal);
    if (!blocked)
        blocked = ratelimit_blocked(env->all->deps.ratelimit, key, ctl_wall_ms(), &retry_s);
    if (blocked) {
        session_send_error(s, f->id, "auth", retry_s);
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
    session_send_bytes(s, out, out_len);
}

/* ---- native clients: LOGIN user@tenant, verified off the io thread ---- */

struct login_work {
    uv_work_t req;
    struct session *s;
    uint32_t id;
    bool known;
    char hash[PASSWORD_HASH_MAX];
    char password[1025];
    int result;
};

/* A valid Argon2id hash of nothing anyone knows: unknown users cost the same time as known
 * ones, so timing does not reveal who exists. */
static const char dummy_hash[] = "$argon2id$v=19$m=32768,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                                 "M8LAVo3hVxEf2K6h2Lsd8yPNnqkQ9Kq2vG1w8pc9rT4";

static void login_verify(uv_work_t *req)
{
    struct login_work *w = container_of(req, struct login_work, req);
    w->result = password_verify(w->known ? w->hash : dummy_hash, w->password);
    if (!w->known)
        w->result = IOT_EDENIED;
}

static void login_done(uv_work_t *req, int status)
{
    struct login_work *w = container_of(req, struct login_work, req);
    struct session *s = w->s;
    struct session_env *env = s->env;
    char key[160];

    iotp_wipe(w->password, sizeof(w->password));
    if (s->state == SESSION_CLOSING) {
        /* The client left while its password was being checked. */
    } else if (status == 0 && w->result == 0) {
        snprintf(key, sizeof(key), "u:%s", s->principal);
        ratelimit_reset(env->all->deps.ratelimit, key);
        free(s->hs);
        s->hs = NULL;
        s->kind = SESSION_USER;
        s->state = SESSION_ESTABLISHED;
        s->authenticated = true;
        char serial[24], ping[16];
        snprintf(serial, sizeof(serial), "%llu", (unsigned long long)s->serial);
        snprintf(ping, sizeof(ping), "%u", env->all->opts.ping_s);
        uint8_t buf[256];
        struct iotp_writer wr;
        iotp_writer_begin(&wr, buf, sizeof(buf), IOTP_SERVER_ADDRESS, s->principal, "WELCOME",
                          w->id);
        iotp_writer_kv(&wr, "session", serial);
        iotp_writer_kv(&wr, "ping", ping);
        int len = iotp_writer_end(&wr);
        if (len > 0)
            session_send_bytes(s, buf, (size_t)len);
        atomic_fetch_add(&env->counters.logins, 1);
        atomic_fetch_add(&env->counters.users, 1);
        s->last_ping_ms = uv_now(&env->io->loop);
        log_debug("user %s logged in from %s", s->principal, conn_info(s->conn)->peer);
    } else {
        char addr_key[160];
        int64_t now = ctl_wall_ms();
        address_key(conn_info(s->conn)->peer, addr_key, sizeof(addr_key));
        snprintf(key, sizeof(key), "u:%s", s->principal);
        unsigned limit = env->all->opts.auth_fail_limit;
        uint32_t r1 = ratelimit_fail(env->all->deps.ratelimit, addr_key, limit * 10, now);
        uint32_t r2 = ratelimit_fail(env->all->deps.ratelimit, key, limit, now);
        session_send_error(s, w->id, "auth", r1 > r2 ? r1 : r2);
        atomic_fetch_add(&env->counters.auth_failures, 1);
        log_info("user %s from %s: login failed", s->principal, conn_info(s->conn)->peer);
        session_close(s, "login failed");
    }
    free(w);
    session_unref(s);
}

static void on_login(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    const struct conn_info *ci = conn_info(s->conn);
    const char *password = iotp_frame_arg(f, "password");
    const char *proto = iotp_frame_arg(f, "proto");
    char key[160];
    uint32_t retry_s = 0;

    char *principal = strndup(f->from, IOTP_MAX_ADDRESS_LEN);
    if (!principal) {
        session_close(s, "out of memory");
        return;
    }
    if (s->principal_owned)
        free((char *)s->principal);
    s->principal = principal;
    s->principal_owned = true;
    if (!password || !proto || strcmp(proto, "1") != 0 || strcmp(f->to, IOTP_SERVER_ADDRESS) != 0 ||
        !strchr(f->from, '@') || strlen(password) >= sizeof(((struct login_work *)0)->password)) {
        session_send_error(s, f->id, "bad_args", 0);
        session_close(s, "malformed LOGIN");
        return;
    }
    /* A password travels only inside TLS or on this machine. */
    if (ci->transport != CONN_TLS && !ci->peer_is_loopback && !env->all->opts.login_plain) {
        session_send_error(s, f->id, "auth", 0);
        log_warn("user %s from %s: LOGIN refused over plain TCP", s->principal, ci->peer);
        session_close(s, "LOGIN without TLS");
        return;
    }
    address_key(ci->peer, key, sizeof(key));
    bool blocked = ratelimit_blocked(env->all->deps.ratelimit, key, ctl_wall_ms(), &retry_s);
    snprintf(key, sizeof(key), "u:%s", s->principal);
    if (!blocked)
        blocked = ratelimit_blocked(env->all->deps.ratelimit, key, ctl_wall_ms(), &retry_s);
    if (blocked) {
        session_send_error(s, f->id, "auth", retry_s);
        atomic_fetch_add(&env->counters.rate_limited, 1);
        session_close(s, "rate limited");
        return;
    }
    struct login_work *w = calloc(1, sizeof(*w));
    if (!w) {
        session_close(s, "out of memory");
        return;
    }
    struct registry_user_info user;
    registry_snapshot_t *snap = session_snapshot(env);
    if (registry_user_lookup(snap, s->principal, &user) == 0) {
        const char *tenant = session_tenant_intern(env, user.tenant);
        if (!tenant) {
            free(w);
            session_close(s, "out of memory");
            return;
        }
        w->known = true;
        snprintf(w->hash, sizeof(w->hash), "%s", user.password_hash);
        s->tenant = tenant;
    }
    w->s = s;
    w->id = f->id;
    snprintf(w->password, sizeof(w->password), "%s", password);
    s->refs++; /* the session outlives the verification even if the client leaves */
    if (uv_queue_work(&env->io->loop, &w->req, login_verify, login_done) != 0) {
        s->refs--;
        iotp_wipe(w->password, sizeof(w->password));
        free(w);
        session_close(s, "cannot verify the password now");
    }
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
            session_send_bytes(s, out, out_len);
        return;
    }
    if (rc != IOTP_EAUTH) {
        session_close(s, "handshake failed");
        return;
    }
    /* Both keys count the failure; the refusal's retry hint is the longer of the two. The
     * ERROR is rebuilt here only to carry that hint: it is byte for byte what the library
     * would send for any failure, so it reveals nothing about which check failed. */
    int64_t now = ctl_wall_ms();
    address_key(conn_info(s->conn)->peer, addr_key, sizeof(addr_key));
    snprintf(dev_key, sizeof(dev_key), "d:%s", s->principal);
    uint32_t r1 = ratelimit_fail(env->all->deps.ratelimit, addr_key, o->auth_fail_limit * 10, now);
    uint32_t r2 = ratelimit_fail(env->all->deps.ratelimit, dev_key, o->auth_fail_limit, now);
    session_send_error(s, f->id, "auth", r1 > r2 ? r1 : r2);
    atomic_fetch_add(&env->counters.auth_failures, 1);
    record(s, CONN_EVENT_AUTH_FAILURE, s->lookup_failure ? s->lookup_failure : "wrong mac");
    log_info("device %s from %s: authentication failed (%s)", s->principal,
             conn_info(s->conn)->peer, s->lookup_failure ? s->lookup_failure : "wrong mac");
    session_close(s, "authentication failed");
}

/* WELCOME is due: claim presence (replacing or refusing a duplicate), then keep the device. */
static void established(struct session *s)
{
    struct session_env *env = s->env;
    sessions_t *all = env->all;
    const struct conn_info *ci = conn_info(s->conn);
    struct presence_entry e = {0}, previous;
    int64_t now = ctl_wall_ms();

    snprintf(e.device_id, sizeof(e.device_id), "%.64s", s->principal); /* registered ids fit */
    e.io_index = env->index;
    e.session = (void *)(uintptr_t)s->slot;
    e.serial = s->serial;
    e.since_ms = e.last_seen_ms = now;
    snprintf(e.address, sizeof(e.address), "%s", ci->peer);
    snprintf(e.transport, sizeof(e.transport), "%s", ci->transport == CONN_TLS ? "tls" : "tcp");

    const char *device_id = NULL;
    int rc =
        presence_claim(all->deps.presence, &e, all->opts.replace_duplicate, &previous, &device_id);
    if (rc < 0) {
        /* Refused: the key was right, so saying why costs nothing. */
        session_send_error(s, 2, rc == IOT_EEXIST ? "busy" : "internal", 0);
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
    snprintf(dev_key, sizeof(dev_key), "d:%s", s->principal);
    ratelimit_reset(all->deps.ratelimit, dev_key);

    s->principal = device_id; /* presence's copy outlives the session; s->hs's goes now */
    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_ESTABLISHED;
    s->authenticated = true;
    s->last_touch_ms = (uint64_t)now;
    atomic_fetch_add(&env->counters.authenticated, 1);
    atomic_fetch_add(&env->counters.devices, 1);
    record(s, CONN_EVENT_CONNECT, rc == 1 ? "replaced an older connection" : "authenticated");
    log_debug("device %s online from %s (%s)", s->principal, ci->peer, e.transport);
    s->last_ping_ms = uv_now(&env->io->loop);
    session_events_online(s);
}

/* ---- relay: the sender's side ---- */

static void send_relay_error(struct session *s, const char *from, uint32_t id,
                             enum relay_outcome outcome, const char *why)
{
    uint8_t buf[512];
    int len = iotp_frame_write_error(buf, sizeof(buf), from, s->principal, id,
                                     relay_outcome_name(outcome), 0, why);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
    atomic_fetch_add(&s->env->counters.outcomes[outcome], 1);
}

/* On the sender's thread (env): write an answer to the sender of origin, if it is still
 * connected. args: the device's answer args, for OK and ERROR. */
static void answer_sender(struct session_env *env, const struct relay_origin *origin,
                          enum relay_outcome outcome, const char *device, const char *why,
                          unsigned nargs, const char *const *args)
{
    struct session *s = origin->slot < env->nslots ? env->slots[origin->slot] : NULL;
    if (!s || s->serial != origin->serial || s->state != SESSION_ESTABLISHED)
        return;
    if (outcome == RELAY_OK || outcome == RELAY_ERROR) {
        /* The device's own answer, unchanged but for the sender's id. */
        uint8_t buf[IOTP_MAX_FRAME];
        struct iotp_writer w;
        iotp_writer_begin(&w, buf, sizeof(buf), device, s->principal,
                          outcome == RELAY_OK ? "OK" : "ERROR", origin->id);
        for (unsigned i = 0; i < nargs; i++)
            iotp_writer_arg(&w, args[i]);
        int len = iotp_writer_end(&w);
        if (len > 0)
            session_send_bytes(s, buf, (size_t)len);
        atomic_fetch_add(&env->counters.outcomes[outcome], 1);
    } else {
        send_relay_error(s, device, origin->id, outcome, why);
    }
}

/* Runs on the sender's thread: an answer that came through its inbox. */
static void on_relay_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    sessions_t *all = a->origin.cookie;
    struct session_env *env = &all->envs[((io_thread_t *)loop_data)->index];
    const char *args[IOTP_MAX_ARGS];
    unsigned nargs = a->nargs < IOTP_MAX_ARGS ? a->nargs : IOTP_MAX_ARGS;
    for (unsigned i = 0; i < nargs; i++)
        args[i] = relay_arg(a->args, a->args_len, i, a->nargs);
    answer_sender(env, &a->origin, a->outcome, a->device, a->why, nargs, args);
    free(a);
}

/* ---- backpressure: held senders ----
 *
 * A session that sends a request is not read from any more (it is held) when
 *  - the audit falls behind: with [relay] audit = all a message must not be relayed without its
 *    audit record, and the records must not pile up without bound, so a half full audit buffer
 *    holds every sender;
 *  - or the sender does not read its answers as fast as it asks: half its output bound waits.
 *    Otherwise a client that pipelines requests faster than it reads would fill the bound and
 *    be disconnected; held, it only slows down to its own reading.
 * Held, it has no further frame parsed (the rest of the read waits beside it, at most one
 * read buffer); its next requests wait in the kernel's socket buffer and then in the
 * sender's: nothing is lost. Connections that sent no request (devices that only answer and
 * push events) are still read. A timer on the thread lets a held session go once the audit has
 * caught up and its own output is down to a quarter of the bound. A sender whose output does
 * not go down for the keepalive timeout is closed: it reads nothing, like a silent peer. */
#define HOLD_CHECK_MS 2

static bool output_above(const struct session *s, size_t divisor)
{
    return conn_pending(s->conn) > conn_output_limit(s->conn) / divisor;
}

static int held_push(struct session_env *env, struct held_sender h)
{
    struct held_sender *held = iot_grow(env->held, env->nheld, &env->held_cap, 16, sizeof(*held));
    if (!held)
        return IOT_ENOMEM;
    env->held = held;
    env->held[env->nheld++] = h;
    return IOT_OK;
}

static void on_data(conn_t *c, const uint8_t *data, size_t len);

static void on_release_held(uv_timer_t *timer)
{
    struct session_env *env = timer->data;
    if (relay_audit_backlogged(env->all->deps.audit))
        return;
    /* Take the list: a released session's backlog may hold it again (and push it anew). */
    struct held_sender *list = env->held;
    size_t n = env->nheld;
    env->held = NULL;
    env->nheld = env->held_cap = 0;
    uint64_t now = uv_now(&env->io->loop);
    uint64_t stall_ms = (uint64_t)env->all->opts.keepalive_timeout_s * 1000;
    for (size_t i = 0; i < n; i++) {
        struct held_sender *h = &list[i];
        struct session *s = session_at(env, h->slot, h->serial);
        if (s && s->held && output_above(s, 4)) {
            size_t pending = conn_pending(s->conn);
            if (pending < h->pending) {
                h->pending = pending;
                h->progress_ms = now;
            }
            if (now - h->progress_ms >= stall_ms) {
                session_close(s, "not reading its answers");
            } else if (held_push(env, *h) == IOT_OK) {
                continue; /* still reading its answers: stays held, backlog and all */
            }
        }
        if (s && s->held && s->state != SESSION_CLOSING) {
            s->held = false;
            s->last_rx_ms = now; /* held is not silent: the keepalive starts over */
            if (h->backlog)
                on_data(s->conn, h->backlog, h->backlog_len);
            if (!s->held)
                conn_resume(s->conn);
        }
        free(h->backlog);
    }
    free(list);
    if (env->nheld == 0)
        uv_timer_stop(timer);
}

/* Hold s (see above); the counter says why. Without memory to remember it, s is not held:
 * the audit then drops and counts, or the output bound closes the connection, as without. */
static void hold_sender(struct session *s, _Atomic uint64_t *counter)
{
    struct session_env *env = s->env;
    if (s->held || s->state != SESSION_ESTABLISHED)
        return;
    struct held_sender h = {.slot = s->slot,
                            .serial = s->serial,
                            .pending = conn_pending(s->conn),
                            .progress_ms = uv_now(&env->io->loop)};
    if (held_push(env, h) != IOT_OK)
        return;
    s->held = true;
    conn_pause(s->conn);
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    if (!uv_is_active((uv_handle_t *)&env->release_held))
        uv_timer_start(&env->release_held, on_release_held, HOLD_CHECK_MS, HOLD_CHECK_MS);
}

/* s is held and data[0..len) was received but not parsed: keep it, after what its entry (the
 * last one pushed for it) already keeps, for the release. A connection may deliver one read in
 * several pieces (TLS records), so the rest of a read can follow a hold. Without memory, false:
 * the bytes are then parsed now after all. */
static bool stash_backlog(struct session *s, const uint8_t *data, size_t len)
{
    struct session_env *env = s->env;
    for (size_t i = env->nheld; i-- > 0;) {
        struct held_sender *h = &env->held[i];
        if (h->slot != s->slot || h->serial != s->serial)
            continue;
        uint8_t *grown = realloc(h->backlog, h->backlog_len + len);
        if (!grown)
            return false;
        memcpy(grown + h->backlog_len, data, len);
        h->backlog = grown;
        h->backlog_len += len;
        return true;
    }
    return false;
}

/* A request from an authenticated user or device: check, then hand to the device's thread. */
static void relay_from_session(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    sessions_t *all = env->all;
    char why[96];
    uint32_t timeout_ms = 0;

    /* This request still goes; the next ones wait. */
    if (relay_audit_backlogged(all->deps.audit))
        hold_sender(s, &env->counters.audit_holds);
    else if (output_above(s, 2))
        hold_sender(s, &env->counters.output_holds);
    enum relay_outcome outcome = relay_check_cached(
        &env->check_cache, session_snapshot(env), s->principal, f->to, f->type, f->nargs, f->args,
        all->opts.max_timeout_ms, &timeout_ms, why, sizeof(why));
    if (outcome != RELAY_OK) {
        relay_audit_record(all->deps.audit, s->tenant, s->principal, f->to, f->type, outcome, 0,
                           loop_pass_wall_ms(&env->io->meter));
        send_relay_error(s, f->to, f->id, outcome, why);
        return;
    }
    struct relay_origin origin = {.inbox = &env->io->inbox,
                                  .on_answer = on_relay_answer,
                                  .slot = s->slot,
                                  .serial = s->serial,
                                  .cookie = all,
                                  .id = f->id};
    struct relay_request *req =
        relay_request_new(&origin, s->principal, s->tenant, f->to, f->type, f->nargs, f->args,
                          timeout_ms, NULL, loop_pass_ns(&env->io->meter));
    outcome = req ? relay_deliver(all->relay, &env->routes, (int)env->index, req) : RELAY_INTERNAL;
    if (outcome != RELAY_OK) {
        free(req);
        relay_audit_record(all->deps.audit, s->tenant, s->principal, f->to, f->type, outcome, 0,
                           loop_pass_wall_ms(&env->io->meter));
        send_relay_error(s, f->to, f->id, outcome, NULL);
    }
}

/* ---- relay: the device's side ---- */

/* A request was just written to c during a read (on_data): remember c for dispatch_flush. A
 * conn goes early once per pass at most (later reads' requests to it wait for the pass's
 * flush), so fan-in from many senders still costs a device two writes per pass, not one per
 * sender; past SESSION_DISPATCH_MAX devices in a pass, the rest wait too. */
static void dispatch_note(struct session_env *env, conn_t *c)
{
    if (!env->in_read)
        return;
    uint64_t pass = atomic_load_explicit(&env->io->meter.iterations, memory_order_relaxed);
    if (env->dispatch_pass != pass) {
        env->dispatch_pass = pass;
        env->ndispatched = env->nflushed = 0;
    }
    for (unsigned k = 0; k < env->ndispatched; k++)
        if (env->dispatched[k] == c)
            return;
    if (env->ndispatched < SESSION_DISPATCH_MAX)
        env->dispatched[env->ndispatched++] = c;
}

/* The read is handled: its requests leave now, one write per device, instead of at the end of
 * the loop pass, after the reads of every other connection that was ready. The devices start
 * on them while this thread goes on with the pass; the answers still leave once per pass, so
 * a sender gets them coalesced. Measured against flushing everything at the end of the pass,
 * in the same rounds: 1.07x, 1.01x and 1.04x the throughput with 16 in flight. The conns
 * noted in this read are alive: a conn is freed only from a close callback, never during a
 * read (those of earlier reads of the pass are only compared, never used). */
static void dispatch_flush(struct session_env *env)
{
    for (unsigned k = env->nflushed; k < env->ndispatched; k++)
        conn_flush_now(env->dispatched[k]);
    env->nflushed = env->ndispatched;
}

/* The relay's port (relay_port.write): queue a request on a device session's connection. */
static int port_write(void *arg, uint32_t slot, uint64_t serial, const uint8_t *frame, size_t len)
{
    struct session_env *env = arg;
    struct session *s = session_at(env, slot, serial);
    if (!s || s->state != SESSION_ESTABLISHED)
        return IOT_ENOTFOUND;
    if (conn_write(s->conn, frame, len) != 0)
        return IOT_EBUSY;
    s->frames_out++;
    dispatch_note(env, s->conn);
    return IOT_OK;
}

/* The relay's port (relay_port.answer): the answer to a sender of this thread, in place. */
static void port_answer(void *arg, const struct relay_origin *origin, enum relay_outcome outcome,
                        const char *device, const char *why, unsigned nargs,
                        const char *const *args)
{
    answer_sender(arg, origin, outcome, device, why, nargs, args);
}

/* A device's OK or ERROR: the answer to one of its pending requests, by iotd's id. */
static void on_device_answer(struct session *s, const struct iotp_frame *f)
{
    enum relay_outcome outcome = strcmp(f->type, "OK") == 0 ? RELAY_OK : RELAY_ERROR;
    if (!relay_device_answer(s->env->relay, s->slot, s->serial, f->id, outcome, f->nargs, f->args))
        /* Too late (its request timed out) or never asked: counted, dropped. */
        atomic_fetch_add(&s->env->counters.late_answers, 1);
}

enum relay_outcome sessions_relay(sessions_t *all, int current, struct relay_request *req)
{
    struct presence_route_cache *routes = current >= 0 ? &all->envs[current].routes : NULL;
    return relay_deliver(all->relay, routes, current, req);
}

/* A frame of an authenticated session (device or user). */
static void on_established_frame(struct session *s, const struct iotp_frame *f)
{
    if (strcmp(f->from, s->principal) != 0) {
        /* A session speaks only for itself. */
        session_send_error(s, f->id, "bad_frame", 0);
        session_bad_frame(s);
        return;
    }
    if (f->type[0] >= 'a' && f->type[0] <= 'z') {
        relay_from_session(s, f);
    } else if (strcmp(f->type, "PING") == 0) {
        session_send_system(s, "PONG", f->id, NULL, NULL);
    } else if (strcmp(f->type, "PONG") == 0) {
        /* last_rx is all a PONG is for */
    } else if (strcmp(f->type, "BYE") == 0) {
        session_close(s, "peer said BYE");
    } else if (s->kind == SESSION_DEVICE &&
               (strcmp(f->type, "OK") == 0 || strcmp(f->type, "ERROR") == 0)) {
        on_device_answer(s, f);
    } else if (session_event_frame(s, f)) {
        /* EVENT, ALARM (devices); SUBSCRIBE, UNSUBSCRIBE, LEASE (users) */
    } else {
        session_send_error(s, f->id, "bad_frame", 0);
        session_bad_frame(s);
    }
}

static void on_frame(struct session *s, const struct iotp_frame *f)
{
    s->frames_in++;
    atomic_fetch_add_explicit(&s->env->counters.frames_in, 1, memory_order_relaxed);
    if (s->state == SESSION_ESTABLISHED)
        on_established_frame(s, f);
    else if (s->refs > 1)
        session_send_error(s, f->id, "busy",
                           0); /* a LOGIN is being verified: one thing at a time */
    else if (s->hs->state == IOTP_SERVER_HS_WAIT_HELLO && strcmp(f->type, "LOGIN") == 0)
        on_login(s, f);
    else if (s->hs->state == IOTP_SERVER_HS_WAIT_HELLO)
        on_hello(s, f);
    else
        on_auth(s, f);
}

static void on_bad_frame(struct session *s, int rc, uint32_t id)
{
    struct session_env *env = s->env;
    atomic_fetch_add(&env->counters.bad_frames, 1);
    session_send_error(s, id, iotp_error_wire_code(rc), 0);
    if (s->state == SESSION_HANDSHAKE) {
        record(s, CONN_EVENT_AUTH_FAILURE, iotp_strerror(rc));
        session_close(s, "malformed frame during handshake");
    } else if (session_bad_frame(s) > env->all->opts.max_bad_frames) {
        atomic_fetch_add(&env->counters.abuse_closes, 1);
        log_warn("device %s from %s: %u malformed frames, disconnecting", s->principal,
                 conn_info(s->conn)->peer, s->bad_frames);
        session_close(s, "too many malformed frames");
    }
}

static void on_data(conn_t *c, const uint8_t *data, size_t len)
{
    struct session *s = conn_owner(c);
    const struct session_options *o = &s->env->all->opts;

    if (s->state == SESSION_CLOSING || (s->held && stash_backlog(s, data, len)))
        return;
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
        if (s->held && len > 0 && s->state != SESSION_CLOSING && stash_backlog(s, data, len))
            break;
    }

    s->env->in_read = false;
    dispatch_flush(s->env);

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
        if (now - (int64_t)s->last_touch_ms >= 1000) {
            presence_touch(s->env->all->deps.presence, s->principal, s->serial, now);
            s->last_touch_ms = (uint64_t)now;
        }
    }
}

static void session_unref(struct session *s)
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
        record(s, CONN_EVENT_DISCONNECT, why);
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
    session_unref(s);
}

static const struct conn_callbacks session_callbacks = {on_data, on_conn_close};

/* One session's deadlines at loop time now: an unfinished handshake, a silent peer (pinged
 * after ping_s of silence, dropped after keepalive_timeout_s). */
static void check_deadlines(struct session *s, uint64_t now)
{
    const struct session_options *o = &s->env->all->opts;
    if (s->state == SESSION_HANDSHAKE) {
        if (now - s->accepted_ms >= o->handshake_timeout_ms) {
            atomic_fetch_add(&s->env->counters.handshake_timeouts, 1);
            if (s->principal[0])
                record(s, CONN_EVENT_AUTH_FAILURE, "handshake timeout");
            session_close(s, "handshake timeout");
        }
        return;
    }
    if (s->state != SESSION_ESTABLISHED || s->held)
        return;
    uint64_t idle = now - s->last_rx_ms;
    uint64_t period = (uint64_t)o->ping_s * 1000;
    if (idle >= (uint64_t)o->keepalive_timeout_s * 1000) {
        atomic_fetch_add(&s->env->counters.keepalive_timeouts, 1);
        session_close(s, "keepalive timeout");
    } else if (idle >= period && now - s->last_ping_ms >= period) {
        s->last_ping_ms = now;
        session_send_system(s, "PING", ++s->ping_seq ? s->ping_seq : ++s->ping_seq, NULL, NULL);
    }
}

/* Connects since the last trim after which a quiet thread gives its free heap back. */
#define TRIM_AFTER_ACCEPTS 1024

/* A connect storm leaves this thread's malloc arena full of freed handshake state, parser
 * buffers and first output buffers, interleaved with what stays: glibc keeps those pages
 * resident. Once the storm is over (no handshake in progress on this thread), give them back,
 * once per storm: malloc_trim walks the arenas (a few milliseconds at 10,000 devices), which
 * is cheap next to the storm itself and saves about 200 bytes of RSS per connected device. */
static void trim_after_storm(struct session_env *env)
{
    size_t sessions = atomic_load_explicit(&env->counters.sessions, memory_order_relaxed);
    size_t settled = atomic_load_explicit(&env->counters.devices, memory_order_relaxed) +
                     atomic_load_explicit(&env->counters.users, memory_order_relaxed);
    if (env->accepts_since_trim < TRIM_AFTER_ACCEPTS || sessions != settled)
        return;
    env->accepts_since_trim = 0;
    malloc_trim(0);
}

/* The io thread's tick: every session's deadlines. Closing only starts here (on_close comes
 * from a later callback), so the walk never meets a freed session. */
static void on_tick(uv_timer_t *timer)
{
    struct session_env *env = timer->data;
    uint64_t now = uv_now(&env->io->loop);
    for (uint32_t i = 0; i < env->nslots; i++)
        if (env->slots[i])
            check_deadlines(env->slots[i], now);
    relay_trim(env->relay); /* idle devices keep no table of requests */
    trim_after_storm(env);
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
    struct session *s = pool_alloc(&env->session_pool);
    (void)nl;
    if (s)
        s->hs = calloc(1, sizeof(*s->hs));
    if (!s || !s->hs || slot_take(env, s) != 0) {
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

struct session *session_at(struct session_env *env, uint32_t slot, uint64_t serial)
{
    struct session *s = slot < env->nslots ? env->slots[slot] : NULL;
    return s && s->serial == serial ? s : NULL;
}

/* Runs on the replaced session's thread: close it if it is still the one presence named. */
static void on_kick(inbox_msg_t *msg, void *loop_data)
{
    struct kick_msg *k = container_of(msg, struct kick_msg, msg);
    io_thread_t *io = loop_data;
    struct session_env *env = &k->all->envs[io->index];
    struct session *s = k->slot < env->nslots ? env->slots[k->slot] : NULL;

    if (s && s->serial == k->serial && s->state == SESSION_ESTABLISHED) {
        session_send_system(s, "BYE", 0, "reason", "replaced");
        session_close(s, "replaced by a new connection");
    }
    free(k);
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
    uv_timer_start(&env->tick, on_tick, SESSION_TICK_MS, SESSION_TICK_MS);
    uv_timer_init(&io->loop, &env->release_held);
    env->release_held.data = env;
    struct relay_port port = {
        .arg = env, .write = port_write, .on_answer = on_relay_answer, .answer = port_answer};
    env->relay = relay_thread(env->all->relay, env->index);
    return relay_thread_start(env->relay, &port);
}

static int env_stop(io_thread_t *io, void *arg)
{
    struct session_env *env = arg;
    (void)io;
    uv_close((uv_handle_t *)&env->tick, NULL);
    uv_close((uv_handle_t *)&env->release_held, NULL);
    relay_thread_stop(env->relay);
    for (size_t i = 0; i < env->nheld; i++)
        free(env->held[i].backlog);
    free(env->held);
    env->held = NULL;
    env->nheld = env->held_cap = 0;
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
                                       .max_in_flight = all->opts.max_in_flight};
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
    struct request_row *requests;
    size_t nrequests;
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
    snprintf(r->principal, sizeof(r->principal), "%s", s->principal);
    snprintf(r->tenant, sizeof(r->tenant), "%s", s->hs ? "" : s->tenant);
    r->kind = s->kind == SESSION_USER ? "user" : "device";
    r->state = s->state == SESSION_ESTABLISHED ? "online" : "handshake";
    snprintf(r->transport, sizeof(r->transport), "%s", ci->transport == CONN_TLS ? "tls" : "tcp");
    snprintf(r->address, sizeof(r->address), "%s", ci->peer);
    r->since_ms = s->since_ms;
    r->last_activity_ms = s->last_activity_ms;
    r->output_bytes = conn_pending(s->conn);
    r->bytes_out = ci->bytes_out;
    r->frames_in = s->frames_in;
    r->frames_out = s->frames_out;
    r->in_flight = relay_in_flight(s->env->relay, s->slot, s->serial);
}

static int cmp_request_age(const void *a, const void *b)
{
    const struct request_row *x = a, *y = b;
    return (x->age_ms < y->age_ms) - (x->age_ms > y->age_ms); /* oldest first */
}

static void gather_free(struct gather *g)
{
    for (unsigned i = 0; i < g->all->deps.io_count; i++) {
        free(g->parts[i].rows);
        free(g->parts[i].requests);
    }
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
    size_t nreq = 0;
    for (unsigned i = 0; i < g->all->deps.io_count; i++)
        nreq += g->parts[i].nrequests;
    struct session_row *rows = n ? malloc(n * sizeof(*rows)) : NULL;
    struct request_row *reqs = nreq ? malloc(nreq * sizeof(*reqs)) : NULL;
    size_t k = 0, kr = 0;
    for (unsigned i = 0; i < g->all->deps.io_count; i++) {
        if (rows && g->parts[i].n) {
            memcpy(rows + k, g->parts[i].rows, g->parts[i].n * sizeof(*rows));
            k += g->parts[i].n;
        }
        if (reqs && g->parts[i].nrequests) {
            memcpy(reqs + kr, g->parts[i].requests, g->parts[i].nrequests * sizeof(*reqs));
            kr += g->parts[i].nrequests;
        }
    }
    if (rows)
        qsort(rows, k, sizeof(*rows), g->cmp);
    if (reqs)
        qsort(reqs, kr, sizeof(*reqs), cmp_request_age);
    g->fn(rows, k < g->top ? k : g->top, total, reqs, kr < g->top ? kr : g->top, g->arg);
    free(rows);
    free(reqs);
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
    /* The requests waiting at this thread's devices, oldest first, cut to the top. */
    size_t waiting = relay_waiting(env->relay);
    p->requests = waiting ? malloc(waiting * sizeof(*p->requests)) : NULL;
    if (p->requests)
        p->nrequests = relay_request_rows(env->relay, p->requests, waiting, uv_hrtime());
    if (p->requests) {
        qsort(p->requests, p->nrequests, sizeof(*p->requests), cmp_request_age);
        if (p->nrequests > g->top)
            p->nrequests = g->top;
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
