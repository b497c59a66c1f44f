/*
 * handshake.c - a device's handshake (HELLO, CHALLENGE, AUTH, WELCOME) on the server side.
 *
 * The handshake itself is the firmware's (iotp_server_hs: the same code a device links); this
 * file gives it the device's secret from the registry snapshot (no database round trip),
 * refuses blocked peers before any cryptography, counts failures for the rate limits, and on
 * success claims presence for the device, replacing (or refusing) an older connection of it.
 */
#include "base/log.h"
#include "iot_error.h"
#include "iotp/iotp.h"
#include "session/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_kick(inbox_msg_t *msg, void *loop_data);

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

void session_on_hello(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    uint8_t out[512];
    size_t out_len = 0;
    uint32_t retry_s = 0;

    int rc = iotp_server_hs_on_hello(s->hs, f);
    if (rc != 0) {
        session_send_error(s, f->id, iotp_error_wire_code(rc), 0);
        atomic_fetch_add(&env->counters.auth_failures, 1);
        session_record(s, CONN_EVENT_AUTH_FAILURE, iotp_strerror(rc));
        session_close(s, "malformed HELLO");
        return;
    }
    s->principal = s->hs->device_id; /* until presence has its own copy (established) */

    /* Refuse blocked peers before any cryptography: a flood must stay cheap. */
    char peer[PEER_ADDR_TEXT];
    struct ratelimit_auth attempt = {'d', s->principal, conn_peer(s->conn, peer),
                                     env->all->opts.auth_fail_limit};
    bool blocked =
        ratelimit_auth_blocked(env->all->deps.ratelimit, &attempt, ctl_wall_ms(), &retry_s);
    if (blocked) {
        session_send_error(s, f->id, "auth", retry_s);
        atomic_fetch_add(&env->counters.rate_limited, 1);
        session_record(s, CONN_EVENT_AUTH_FAILURE, "rate limited");
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

static void established(struct session *s);

void session_on_auth(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    const struct session_options *o = &env->all->opts;
    uint8_t out[512];
    size_t out_len = 0;

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
    /* The pair, the address and the id count the failure (ratelimit.h); the refusal's retry
     * hint is the longest. The ERROR is rebuilt here only to carry that hint: it is byte for
     * byte what the library would send for any failure, so it reveals nothing about which
     * check failed. */
    char peer[PEER_ADDR_TEXT];
    struct ratelimit_auth attempt = {'d', s->principal, conn_peer(s->conn, peer),
                                     o->auth_fail_limit};
    uint32_t retry_s = ratelimit_auth_failed(env->all->deps.ratelimit, &attempt, ctl_wall_ms());
    session_send_error(s, f->id, "auth", retry_s);
    atomic_fetch_add(&env->counters.auth_failures, 1);
    const char *why = s->lookup_failure ? s->lookup_failure : "wrong mac";
    /* One line per (address, id, reason) a minute: the connection log counts the rest. */
    if (session_record(s, CONN_EVENT_AUTH_FAILURE, why))
        log_info("device %s from %s: authentication failed (%s)", s->principal, peer, why);
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
    e.address = ci->peer;
    snprintf(e.transport, sizeof(e.transport), "%s", ci->transport == CONN_TLS ? "tls" : "tcp");

    const char *device_id = NULL;
    int rc =
        presence_claim(all->deps.presence, &e, all->opts.replace_duplicate, &previous, &device_id);
    if (rc < 0) {
        /* Refused: the key was right, so saying why costs nothing. */
        /* The one connected now is gone at the latest when its keepalive runs out. */
        session_send_error(s, 2, rc == IOT_EEXIST ? "busy" : "internal",
                           all->opts.keepalive_timeout_s);
        session_record(s, CONN_EVENT_AUTH_FAILURE, "already connected");
        session_close(s, rc == IOT_EEXIST ? "device already connected" : "presence full");
        return;
    }
    if (rc == 1 && previous.node == 0) { /* on another node: that node closes it */
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
    char peer[PEER_ADDR_TEXT];
    struct ratelimit_auth attempt = {'d', s->principal, conn_peer(s->conn, peer),
                                     all->opts.auth_fail_limit};
    ratelimit_auth_succeeded(all->deps.ratelimit, &attempt);

    s->principal = device_id; /* presence's copy outlives the session; s->hs's goes now */
    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_ESTABLISHED;
    s->authenticated = true;
    atomic_fetch_add(&env->counters.authenticated, 1);
    atomic_fetch_add(&env->counters.devices, 1);
    session_record(s, CONN_EVENT_CONNECT,
                   rc == 1 ? "replaced an older connection" : "authenticated");
    log_debug("device %s online from %s (%s)", s->principal,
              conn_peer(s->conn, (char[PEER_ADDR_TEXT]){0}), e.transport);
    s->last_ping_ms = uv_now(&env->io->loop);
    session_events_online(s);
}

/* Runs on the replaced session's thread: close it if it is still the one presence named. */
static void on_kick(inbox_msg_t *msg, void *loop_data)
{
    struct kick_msg *k = container_of(msg, struct kick_msg, msg);
    io_thread_t *io = loop_data;
    struct session_env *env = &k->all->envs[io->index];
    struct session *s = k->slot < env->nslots ? env->slots[k->slot] : NULL;

    if (s && s->serial == k->serial && s->state == SESSION_ESTABLISHED) {
        session_send_system(s, IOTP_TYPE_BYE, 0, "reason", "replaced");
        session_close(s, "replaced by a new connection");
    }
    free(k);
}
