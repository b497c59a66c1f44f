/*
 * ws_place.c - a /ws connection becomes a user session on the io thread its user belongs on.
 *
 * Why: sessions of one tenant share an io thread ([devices] placement = tenant), so that a
 * relay between a user and a device needs no hop between threads (on the 2-core machine a
 * relay through two threads cost about three times the CPU of one). The web listener hands
 * connections out in turn, so a browser's WebSocket usually lands on another thread than its
 * tenant's devices: measured, 0.58x the native relay's round trips with 16 in flight. So the
 * connection moves to its user's thread before it becomes a session there, like a TLS device
 * after its handshake.
 *
 * Who the user is: the session cookie says it at the upgrade; without one, the first message
 * (LOGIN, read from the wire bytes without taking them: ws_peek.h, then ws_frames for the
 * frame it stands for) says it, and the placement function of the device listeners reads that
 * frame. A connection that says nothing decisive within NET_PLACE_WAIT_MS, or cannot move (a
 * write in flight, the other thread's inbox full), stays where it is: placement is an
 * optimisation, never a reason to refuse.
 */
#include "web/web_internal.h"

#include "base/log.h"
#include "web/ws_frames.h"
#include "web/ws_peek.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ws_place_target(const web_t *w, const char *user, const uint8_t *in, size_t len)
{
    const struct web_deps *d = &w->deps;
    if (d->io_count < 2)
        return -1;
    if (user)
        return d->place_user ? d->place_user(user, d->place_arg) : -1;
    if (!d->place)
        return -1;
    char text[IOTP_MAX_FRAME];
    uint8_t frame[IOTP_MAX_FRAME];
    char reply[WS_FRAMES_REPLY_MAX];
    size_t cap = w->opts.max_frame < sizeof(frame) ? w->opts.max_frame : sizeof(frame);
    int n = ws_peek_text(in, len, text, cap);
    if (n == WS_PEEK_MORE)
        return len < WEB_INPUT_MAX ? NET_PLACE_MORE : -1;
    if (n < 0)
        return -1;
    struct ws_frames scratch = {0}; /* decoded again, for real, where the session lives */
    int flen = ws_frames_decode(&scratch, text, (size_t)n, frame, cap, reply);
    if (flen <= 0)
        return -1;
    int target = d->place(frame, (size_t)flen, d->place_arg);
    return target == NET_PLACE_MORE ? -1 : target;
}

/* On wl's thread: c (open, no owner, the 101 written) becomes a WebSocket and a user session
 * here; early (taken, may be NULL) is what the browser sent behind the upgrade request. */
static void ws_begin(struct web_loop *wl, conn_t *c, const char *user, uint64_t family,
                     uint8_t *early, size_t early_len)
{
    web_t *w = wl->web;
    void *state = ws_session_state_new(w->tokens, &wl->ws, c, family);
    if (!state || conn_ws_upgrade(c, &w->ws_codec, state) != 0) {
        ws_session_state_free(state);
        conn_close(c, "out of memory");
        goto out;
    }
    log_debug("web: %s: WebSocket session%s%s", conn_peer(c, (char[PEER_ADDR_TEXT]){0}),
              user ? " of " : "", user ? user : "");
    w->deps.ws_session(w->deps.ws_session_arg, (unsigned)(wl - w->loops), c, user);
    if (conn_owner(c))
        conn_ws_feed(c, early, early_len);
out:
    free(early);
}

/* A /ws connection on its way to another io thread. */
struct ws_move_msg {
    inbox_msg_t msg;
    struct web_loop *to;
    conn_handoff_t *handoff;
    uint8_t *early;
    size_t early_len;
    uint64_t family;
    bool has_user;
    char user[WEB_TOKEN_USER_MAX];
};

/* On m->to's thread (or back on the sender's, when the inbox refused): m is freed. */
static void ws_arrive(struct ws_move_msg *m)
{
    struct web_loop *wl = m->to;
    conn_t *c = wl->stopped ? NULL : conn_handoff_open(wl->net, m->handoff);
    if (wl->stopped)
        conn_handoff_drop(m->handoff);
    if (c)
        ws_begin(wl, c, m->has_user ? m->user : NULL, m->family, m->early, m->early_len);
    else
        free(m->early);
    free(m);
}

static void on_ws_move(inbox_msg_t *msg, void *loop_data)
{
    (void)loop_data;
    ws_arrive(container_of(msg, struct ws_move_msg, msg));
}

void ws_place_start(struct web_loop *wl, conn_t *c, int target, const char *user, uint64_t family,
                    uint8_t *early, size_t early_len)
{
    web_t *w = wl->web;
    struct ws_move_msg *m = NULL;
    conn_set_owner(c, NULL, NULL);
    if (target < 0 || (unsigned)target >= w->deps.io_count || &w->loops[target] == wl ||
        !(m = calloc(1, sizeof(*m))))
        goto here;
    *m = (struct ws_move_msg){.msg.handle = on_ws_move,
                              .to = &w->loops[target],
                              .early = early,
                              .early_len = early_len,
                              .family = family,
                              .has_user = user != NULL};
    if (user)
        snprintf(m->user, sizeof(m->user), "%s", user);
    if (!(m->handoff = conn_handoff_take(c)))
        goto here;
    if (inbox_push(&m->to->io->inbox, &m->msg) == 0)
        return;
    m->to = wl; /* that thread is behind or stopping: the session starts here after all */
    ws_arrive(m);
    return;
here:
    free(m);
    ws_begin(wl, c, user, family, early, early_len);
}
