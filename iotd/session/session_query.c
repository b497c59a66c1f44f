/*
 * session_query.c - a logged-in client's QUERY and ACK frames, and the way their answers come
 * back (sessions_send_frames).
 *
 * Sessions do not answer these themselves: the frame goes to the query hooks (iotd/query), on
 * this io thread, with who sent it. The answer arrives already encoded (ROWs, then OK; or one
 * ERROR) in one inbox message, so a page's frames are written together and in order, and a
 * session that closed meanwhile is simply skipped (slot and serial, as for subscribers).
 */
#include "session/session_internal.h"

#include "iot_error.h"

#include <stdlib.h>

typedef void (*query_hook)(void *arg, const struct session_origin *o, const struct iotp_frame *f);

static void hand_over(struct session *s, const struct iotp_frame *f, query_hook hook)
{
    const struct session_query_hooks *h = &s->env->all->deps.query;
    if (!hook) {
        session_send_error_from(s, IOTP_SERVER_ADDRESS, f->id, "internal", 0,
                                "queries are not answered by this server");
        return;
    }
    struct session_origin o = {.sessions = s->env->all,
                               .io = s->env->index,
                               .slot = s->slot,
                               .serial = s->serial,
                               .id = f->id,
                               .principal = s->principal,
                               .tenant = s->tenant};
    hook(h->arg, &o, f);
}

void session_on_query(struct session *s, const struct iotp_frame *f)
{
    hand_over(s, f, s->env->all->deps.query.query);
}

void session_on_client_ack(struct session *s, const struct iotp_frame *f)
{
    hand_over(s, f, s->env->all->deps.query.ack);
}

struct frames_msg {
    inbox_msg_t msg;
    sessions_t *all;
    uint32_t slot, id;
    uint64_t serial;
    uint8_t *frames;
    size_t len, n;
};

static void on_frames(inbox_msg_t *msg, void *loop_data)
{
    struct frames_msg *m = container_of(msg, struct frames_msg, msg);
    struct session_env *env = &m->all->envs[((io_thread_t *)loop_data)->index];
    struct session *s = session_at(env, m->slot, m->serial);
    if (!s || s->state != SESSION_ESTABLISHED)
        goto out;
    if (m->n > 1 && conn_pending(s->conn) > env->all->opts.subscriber_backlog) {
        /* A client that does not read its answers gets no more pages until it does: its
         * output stays bounded like a subscriber's, and the connection is not closed. */
        session_send_error_from(s, IOTP_SERVER_ADDRESS, m->id, "busy", 1,
                                "unread output: read the answers first");
        goto out;
    }
    /* One write: the frames leave in order and together. Counted as n frames. */
    session_send_bytes(s, m->frames, m->len);
    s->frames_out += m->n - 1;
    atomic_fetch_add_explicit(&env->counters.frames_out, m->n - 1, memory_order_relaxed);
out:
    free(m->frames);
    free(m);
}

void sessions_send_frames(sessions_t *all, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                          uint8_t *frames, size_t len, size_t n)
{
    struct frames_msg *m = io < all->deps.io_count && n > 0 ? malloc(sizeof(*m)) : NULL;
    if (!m) {
        free(frames); /* unanswered: the client's own timeout covers it */
        return;
    }
    *m = (struct frames_msg){.msg.handle = on_frames,
                             .all = all,
                             .slot = slot,
                             .id = id,
                             .serial = serial,
                             .frames = frames,
                             .len = len,
                             .n = n};
    if (inbox_push(&all->deps.io[io].inbox, &m->msg) != 0) {
        free(frames);
        free(m);
    }
}
