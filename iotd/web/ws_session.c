/*
 * ws_session.c - the codec of a /ws connection (see ws_session.h): ws_frames does the
 * mapping; this file adds what only a running daemon has (the clock, the token table) and
 * refuses binary messages.
 */
#include "web/ws_session.h"

#include "ctl_time.h"
#include "iot_error.h"
#include "iotp/iotp_frame.h"
#include "web/ws_frames.h"

#include <stdio.h>
#include <stdlib.h>

struct ws_session_state {
    struct ws_frames fx;
    web_tokens_t *tokens;
    struct ws_session_list *list;
    struct ws_session_state *prev, *next; /* on list */
    conn_t *conn;
    uint64_t family; /* of the token or ticket that logged it in; 0: none */
};

static bool on_welcome(void *arg, const char *user, char ticket[WS_FRAMES_TICKET_MAX])
{
    struct ws_session_state *st = arg;
    /* The ticket joins the family of the cookie this connection came with, if any. */
    return st->tokens &&
           web_tokens_ticket(st->tokens, user, ctl_wall_ms(), ticket, &st->family) == 0;
}

static int decode(void *state, const uint8_t *msg, size_t len, bool binary, uint8_t *out,
                  size_t cap, char *reply)
{
    struct ws_session_state *st = state;
    if (binary) {
        snprintf(reply, CONN_WS_REPLY_MAX, "%s",
                 "{\"type\":\"ERROR\",\"from\":\"iotd\",\"id\":0,\"code\":\"bad_frame\","
                 "\"msg\":\"messages are JSON text\"}");
        return 0;
    }
    return ws_frames_decode(&st->fx, (const char *)msg, len, out, cap, reply);
}

static int encode(void *state, const uint8_t *unit, size_t len, char *out, size_t cap)
{
    struct ws_session_state *st = state;
    int n = ws_frames_encode(&st->fx, unit, len, out, cap);
    return n == IOT_EINVAL ? 0 : n; /* not a frame: nothing a browser could read */
}

void ws_session_codec(struct conn_ws_codec *codec, size_t max_frame)
{
    *codec = (struct conn_ws_codec){.decode = decode,
                                    .encode = encode,
                                    .release = ws_session_state_free,
                                    .unit_end = IOTP_EOT,
                                    .max_unit = max_frame,
                                    .max_message = max_frame};
}

void *ws_session_state_new(web_tokens_t *tokens, struct ws_session_list *list, conn_t *c,
                           uint64_t family)
{
    struct ws_session_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->tokens = tokens;
    st->fx.on_welcome = on_welcome;
    st->fx.arg = st;
    st->conn = c;
    st->family = family;
    st->list = list;
    st->next = list->head;
    if (st->next)
        st->next->prev = st;
    list->head = st;
    return st;
}

void ws_session_state_free(void *state)
{
    struct ws_session_state *st = state;
    if (!st)
        return;
    if (st->prev)
        st->prev->next = st->next;
    else
        st->list->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    free(st);
}

size_t ws_session_end_family(struct ws_session_list *list, uint64_t family, const char *reason)
{
    size_t ended = 0;
    for (struct ws_session_state *st = list->head; st; st = st->next) {
        if (family == 0 || st->family != family)
            continue;
        /* The session layer owns the conn; the close reaches it as any close does. */
        uint8_t buf[256];
        struct iotp_writer w;
        iotp_writer_begin(&w, buf, sizeof(buf), IOTP_SERVER_ADDRESS,
                          st->fx.user[0] ? st->fx.user : "unknown", "BYE", 0);
        iotp_writer_kv(&w, "reason", reason);
        int len = iotp_writer_end(&w);
        if (len > 0)
            conn_write(st->conn, buf, (size_t)len);
        conn_close(st->conn, "logged out");
        ended++;
    }
    return ended;
}
