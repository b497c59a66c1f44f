/*
 * login.c - a native client's LOGIN user@tenant: checked, rate limited, and its password
 * verified against the Argon2id hash on libuv's worker threads, off the io thread (tens of
 * milliseconds of CPU each), then WELCOME or ERROR code=auth. Meanwhile the session is held
 * (holds.c): frames the client sent after LOGIN are parsed once WELCOME is written, in order.
 */
#include "base/log.h"
#include "crypto/password.h"
#include "iot_error.h"
#include "iotp/iotp.h"
#include "session/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* s speaks for user from now on (its own copy); false, and s closed, without memory. */
static bool session_set_principal(struct session *s, const char *user)
{
    char *principal = strndup(user, IOTP_MAX_ADDRESS_LEN);
    if (!principal) {
        session_close(s, "out of memory");
        return false;
    }
    if (s->principal_owned)
        free((char *)s->principal);
    s->principal = principal;
    s->principal_owned = true;
    return true;
}

/* s is logged in as its principal (tenant set): WELCOME id session= ping= role=. The role
 * lets a console hide what the user may not do (a viewer's send buttons) without asking;
 * every action is still checked when it comes. */
static void login_established(struct session *s, uint32_t id)
{
    struct session_env *env = s->env;
    struct registry_user_info user;
    const char *role =
        registry_user_lookup(session_snapshot(env), s->principal, &user) == 0 ? user.role : NULL;
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
    iotp_writer_begin(&wr, buf, sizeof(buf), IOTP_SERVER_ADDRESS, s->principal,
                      iotp_type_name(IOTP_TYPE_WELCOME), id);
    iotp_writer_kv(&wr, "session", serial);
    iotp_writer_kv(&wr, "ping", ping);
    if (role)
        iotp_writer_kv(&wr, "role", role);
    int len = iotp_writer_end(&wr);
    if (len > 0)
        session_send_bytes(s, buf, (size_t)len);
    atomic_fetch_add(&env->counters.logins, 1);
    atomic_fetch_add(&env->counters.users, 1);
    s->last_ping_ms = uv_now(&env->io->loop);
    log_debug("user %s logged in from %s", s->principal,
              conn_peer(s->conn, (char[PEER_ADDR_TEXT]){0}));
}

static void login_done(uv_work_t *req, int status)
{
    struct login_work *w = container_of(req, struct login_work, req);
    struct session *s = w->s;
    struct session_env *env = s->env;
    char peer[PEER_ADDR_TEXT];
    struct ratelimit_auth attempt = {'u', s->principal, conn_peer(s->conn, peer),
                                     env->all->opts.auth_fail_limit};

    iotp_wipe(w->password, sizeof(w->password));
    if (s->state == SESSION_CLOSING) {
        /* The client left while its password was being checked. */
    } else if (status == 0 && w->result == 0) {
        ratelimit_auth_succeeded(env->all->deps.ratelimit, &attempt);
        login_established(s, w->id);
    } else {
        uint32_t retry_s = ratelimit_auth_failed(env->all->deps.ratelimit, &attempt, ctl_wall_ms());
        session_send_error(s, w->id, "auth", retry_s);
        atomic_fetch_add(&env->counters.auth_failures, 1);
        log_info("user %s from %s: login failed", s->principal, peer);
        session_close(s, "login failed");
    }
    free(w);
    session_unref(s);
}

void session_on_login(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    const struct conn_info *ci = conn_info(s->conn);
    const char *password = iotp_frame_arg(f, "password");
    const char *proto = iotp_frame_arg(f, "proto");
    uint32_t retry_s = 0;

    if (!session_set_principal(s, f->from))
        return;
    if (!password || !proto || strcmp(proto, "1") != 0 || strcmp(f->to, IOTP_SERVER_ADDRESS) != 0 ||
        !strchr(f->from, '@') || strlen(password) >= sizeof(((struct login_work *)0)->password)) {
        session_send_error(s, f->id, "bad_args", 0);
        session_close(s, "malformed LOGIN");
        return;
    }
    /* A password travels only inside TLS or on this machine. */
    if (!ci->encrypted && !ci->peer_is_loopback && !env->all->opts.login_plain) {
        session_send_error(s, f->id, "auth", 0);
        log_warn("user %s from %s: LOGIN refused over plain TCP", s->principal,
                 conn_peer(s->conn, (char[PEER_ADDR_TEXT]){0}));
        session_close(s, "LOGIN without TLS");
        return;
    }
    char peer[PEER_ADDR_TEXT];
    struct ratelimit_auth attempt = {'u', s->principal, conn_peer(s->conn, peer),
                                     env->all->opts.auth_fail_limit};
    bool blocked =
        ratelimit_auth_blocked(env->all->deps.ratelimit, &attempt, ctl_wall_ms(), &retry_s);
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
    /* Frames pipelined after LOGIN wait for its answer (holds.c), then go in order. */
    if (!session_hold_login(s) ||
        uv_queue_work(&env->io->loop, &w->req, login_verify, login_done) != 0) {
        s->refs--;
        iotp_wipe(w->password, sizeof(w->password));
        free(w);
        session_close(s, "cannot verify the password now");
    }
}

void session_login_trusted(struct session *s, const char *user)
{
    struct registry_user_info info;
    if (registry_user_lookup(session_snapshot(s->env), user, &info) != 0) {
        session_send_error(s, 0, "auth", 0); /* removed since: the client may still LOGIN */
        return;
    }
    const char *tenant = session_tenant_intern(s->env, info.tenant);
    if (!tenant) {
        session_close(s, "out of memory");
        return;
    }
    if (!session_set_principal(s, user))
        return;
    s->tenant = tenant;
    login_established(s, 0);
}
