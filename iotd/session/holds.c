/*
 * holds.c - backpressure on senders: a session is held (not read from) while the audit falls
 * behind or while it does not read its answers, and released when they catch up; and a
 * client's frames after its LOGIN, held until the LOGIN is answered.
 */
#include "iot_error.h"
#include "iot_grow.h"
#include "session/session_internal.h"

#include <stdlib.h>
#include <string.h>

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

bool session_output_above(const struct session *s, size_t divisor)
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
        if (s && s->held && s->state == SESSION_HANDSHAKE) {
            /* Its LOGIN is still being verified (session_hold_login). */
            if (held_push(env, *h) == IOT_OK)
                continue;
            session_close(s, "out of memory");
        } else if (s && s->held && session_output_above(s, 4)) {
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
                session_on_data(s->conn, h->backlog, h->backlog_len);
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
void session_hold_sender(struct session *s, _Atomic uint64_t *counter)
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

/* Hold s while its LOGIN is verified: what the client sent after LOGIN (a SUBSCRIBE, a PING
 * in the same write) is parsed after WELCOME, in order, rather than refused. False without
 * memory (the caller then closes: the frames could be neither kept nor answered). */
bool session_hold_login(struct session *s)
{
    struct session_env *env = s->env;
    struct held_sender h = {
        .slot = s->slot, .serial = s->serial, .progress_ms = uv_now(&env->io->loop)};
    if (s->held)
        return true;
    if (held_push(env, h) != IOT_OK)
        return false;
    s->held = true;
    conn_pause(s->conn);
    if (!uv_is_active((uv_handle_t *)&env->release_held))
        uv_timer_start(&env->release_held, on_release_held, HOLD_CHECK_MS, HOLD_CHECK_MS);
    return true;
}

/* s is held and data[0..len) was received but not parsed: keep it, after what its entry (the
 * last one pushed for it) already keeps, for the release. A connection may deliver one read in
 * several pieces (TLS records), so the rest of a read can follow a hold. Without memory, false:
 * the bytes are then parsed now after all. */
bool session_stash_backlog(struct session *s, const uint8_t *data, size_t len)
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

void session_holds_start(struct session_env *env)
{
    uv_timer_init(&env->io->loop, &env->release_held);
    env->release_held.data = env;
}

void session_holds_stop(struct session_env *env)
{
    uv_close((uv_handle_t *)&env->release_held, NULL);
    for (size_t i = 0; i < env->nheld; i++)
        free(env->held[i].backlog);
    free(env->held);
    env->held = NULL;
    env->nheld = env->held_cap = 0;
}
