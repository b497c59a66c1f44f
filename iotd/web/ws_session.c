/*
 * ws_session.c - the codec of a /ws connection (see ws_session.h): ws_frames does the
 * mapping; this file adds what only a running daemon has (the clock, the token table) and
 * refuses binary messages.
 */
#include "web/ws_session.h"

#include "ctl_time.h"
#include "iot_error.h"
#include "web/ws_frames.h"

#include <stdio.h>
#include <stdlib.h>

struct ws_session_state {
    struct ws_frames fx;
    web_tokens_t *tokens;
};

static bool on_welcome(void *arg, const char *user, char ticket[WS_FRAMES_TICKET_MAX])
{
    struct ws_session_state *st = arg;
    return st->tokens && web_tokens_ticket(st->tokens, user, ctl_wall_ms(), ticket) == 0;
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

void *ws_session_state_new(web_tokens_t *tokens)
{
    struct ws_session_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->tokens = tokens;
    st->fx.on_welcome = on_welcome;
    st->fx.arg = st;
    return st;
}

void ws_session_state_free(void *state)
{
    free(state);
}
