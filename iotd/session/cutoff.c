/*
 * cutoff.c - ending a principal's sessions on the operator's word (sessions_end: iotctl device
 * disable|remove|rekey|kick, user remove|passwd|role|kick, tenant remove --force): every io
 * thread closes its sessions of that device, user or tenant, and the caller hears back once
 * all of them are closed.
 *
 * The request goes to every io thread, not only to the one presence names: a device still in
 * its handshake (presence does not know it yet, and a rekey must not let it finish with the
 * old key) and a user's sessions (any number of them, on any thread) are found the same way,
 * by a scan of the thread's slots: microseconds per thousand sessions, for a command an
 * operator types. Each matching session gets BYE reason=<reason> and is closed: its waiting
 * requests fail with offline at once (session_close). The thread answers only once the last
 * of them has run its close (on_conn_close: presence released, subscriptions and leases ended
 * through the main loop's inbox, ahead of this answer), so what the operator asks next
 * already shows the session gone.
 */
#include "base/log.h"
#include "iot_error.h"
#include "session/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct end_part {
    inbox_msg_t msg;
    struct end_request *req;
    struct end_part *next;       /* in its thread's env->ending while sessions are closing */
    struct session_target *left; /* the sessions still closing */
    size_t nleft;
    size_t ended; /* sessions this request closed */
};

struct end_request {
    inbox_msg_t done;
    sessions_t *all;
    inbox_t *reply_to;
    sessions_end_fn fn;
    void *arg;
    const char *reason;
    enum sessions_scope scope;
    atomic_uint pending;                 /* threads that have not answered */
    char name[IOTP_MAX_ADDRESS_LEN + 1]; /* the principal's address or the tenant's name */
    struct end_part parts[];
};

/* On the caller's loop once every thread has answered. */
static void on_end_done(inbox_msg_t *msg, void *loop_data)
{
    struct end_request *r = container_of(msg, struct end_request, done);
    size_t ended = 0;
    (void)loop_data;
    for (unsigned i = 0; i < r->all->deps.io_count; i++)
        ended += r->parts[i].ended;
    r->fn(ended, r->arg);
    free(r);
}

/* One thread is done (on that thread, or on the caller's when its inbox refused). */
static void part_answered(struct end_request *r, unsigned count)
{
    if (atomic_fetch_sub(&r->pending, count) != count)
        return;
    if (inbox_push_wait(r->reply_to, &r->done) != 0)
        free(r); /* the caller's loop is stopping: nobody waits for the answer */
}

static void part_finish(struct session_env *env, struct end_part *p)
{
    for (struct end_part **at = &env->ending; *at; at = &(*at)->next) {
        if (*at == p) {
            *at = p->next;
            break;
        }
    }
    free(p->left);
    p->left = NULL;
    part_answered(p->req, 1);
}

void session_end_closed(struct session_env *env, const struct session *s)
{
    struct end_part *p = env->ending, *next;
    for (; p; p = next) {
        next = p->next;
        for (size_t i = 0; i < p->nleft; i++) {
            if (p->left[i].slot == s->slot && p->left[i].serial == s->serial) {
                p->left[i] = p->left[--p->nleft];
                break;
            }
        }
        if (p->nleft == 0)
            part_finish(env, p);
    }
}

static bool matches(const struct session *s, const struct end_request *r)
{
    if (r->scope == SESSIONS_OF_TENANT)
        return s->tenant[0] && strcmp(s->tenant, r->name) == 0;
    return s->principal[0] && strcmp(s->principal, r->name) == 0;
}

/* On each io thread: close its sessions of the principal, answer once they are closed. */
static void on_end_part(inbox_msg_t *msg, void *loop_data)
{
    struct end_part *p = container_of(msg, struct end_part, msg);
    struct end_request *r = p->req;
    struct session_env *env = &r->all->envs[((io_thread_t *)loop_data)->index];
    size_t n = 0;

    for (uint32_t i = 0; i < env->nslots; i++)
        n += env->slots[i] && matches(env->slots[i], r);
    /* Without memory to follow them, the sessions are still closed; the answer just does not
     * wait for their close to finish. */
    p->left = n ? malloc(n * sizeof(*p->left)) : NULL;
    for (uint32_t i = 0; p->left && i < env->nslots; i++)
        if (env->slots[i] && matches(env->slots[i], r))
            p->left[p->nleft++] = (struct session_target){i, env->slots[i]->serial};
    /* A close completes later (libuv's close callbacks never run inside uv_close), in
     * on_conn_close, which calls session_end_closed. */
    p->next = env->ending;
    env->ending = p;
    for (uint32_t i = 0; i < env->nslots; i++) {
        struct session *s = env->slots[i];
        if (!s || !matches(s, r) || s->state == SESSION_CLOSING)
            continue;
        session_send_system(s, IOTP_TYPE_BYE, 0, "reason", r->reason);
        log_info("%s %s from %s: session ended by the operator (%s)",
                 strchr(s->principal, '@') ? "user" : "device", s->principal,
                 conn_peer(s->conn, (char[PEER_ADDR_TEXT]){0}), r->reason);
        session_close(s, r->reason);
        p->ended++;
    }
    if (p->nleft == 0)
        part_finish(env, p);
}

int sessions_end(sessions_t *all, inbox_t *reply_to, enum sessions_scope scope, const char *name,
                 const char *reason, sessions_end_fn fn, void *arg)
{
    unsigned n = all->deps.io_count;
    struct end_request *r = calloc(1, sizeof(*r) + n * sizeof(r->parts[0]));
    if (!r)
        return IOT_ENOMEM;
    r->done.handle = on_end_done;
    r->all = all;
    r->reply_to = reply_to;
    r->fn = fn;
    r->arg = arg;
    r->reason = reason;
    r->scope = scope;
    snprintf(r->name, sizeof(r->name), "%s", name);
    atomic_init(&r->pending, n);
    for (unsigned i = 0; i < n; i++) {
        r->parts[i] = (struct end_part){.msg.handle = on_end_part, .req = r};
        if (inbox_push(&all->deps.io[i].inbox, &r->parts[i].msg) != 0) {
            /* Threads already asked will still answer; the others cannot be reached now. */
            if (i == 0) {
                free(r);
                return IOT_EBUSY;
            }
            log_warn("sessions: io thread %u is too busy to end %s's sessions now", i, name);
            part_answered(r, n - i);
            return IOT_OK;
        }
    }
    return IOT_OK;
}
