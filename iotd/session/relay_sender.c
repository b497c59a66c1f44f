/*
 * relay_sender.c - the relay's sender side in a session: a request frame from a user or a
 * device is checked (relay_check_cached), handed to relay_deliver, and its answer written back
 * to the sender under the sender's own id, or the refusal as ERROR code=<outcome>.
 */
#include "iot_error.h"
#include "iotp/iotp.h"
#include "session/session_internal.h"

#include <stdlib.h>

static void send_relay_error(struct session *s, const char *from, uint32_t id,
                             enum relay_outcome outcome, const char *why)
{
    session_send_error_from(s, from, id, relay_outcome_name(outcome), 0, why);
    atomic_fetch_add(&s->env->counters.outcomes[outcome], 1);
}

/* On the sender's thread (env): write an answer to the sender of origin, if it is still
 * connected. args: the device's answer args, for OK and ERROR. */
void session_answer_sender(struct session_env *env, const struct relay_origin *origin,
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
                          iotp_type_name(outcome == RELAY_OK ? IOTP_TYPE_OK : IOTP_TYPE_ERROR),
                          origin->id);
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
void session_on_relay_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    sessions_t *all = a->origin.cookie;
    struct session_env *env = &all->envs[((io_thread_t *)loop_data)->index];
    const char *args[IOTP_MAX_ARGS];
    unsigned nargs = a->nargs < IOTP_MAX_ARGS ? a->nargs : IOTP_MAX_ARGS;
    for (unsigned i = 0; i < nargs; i++)
        args[i] = relay_arg(a->args, a->args_len, i, a->nargs);
    session_answer_sender(env, &a->origin, a->outcome, a->device, a->why, nargs, args);
    free(a);
}

/* A request from an authenticated user or device: check, then hand to the device's thread. */
void session_relay_request(struct session *s, const struct iotp_frame *f)
{
    struct session_env *env = s->env;
    sessions_t *all = env->all;
    char why[96];
    uint32_t timeout_ms = 0;

    /* This request still goes; the next ones wait. */
    if (relay_audit_backlogged(all->deps.audit))
        session_hold_sender(s, &env->counters.audit_holds);
    else if (session_output_above(s, 2))
        session_hold_sender(s, &env->counters.output_holds);
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
                                  .on_answer = session_on_relay_answer,
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
