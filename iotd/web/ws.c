/*
 * ws.c - WebSocket framing with libwslay's event API (see ws.h). wslay pulls bytes through
 * recv_callback, which hands it what ws_feed was given (and says "would block" once that is
 * used up), and pushes frames through send_callback into conn_write, so the connection's
 * write coalescing and output bound apply to WebSocket frames like to anything else.
 */
#include "web/ws.h"

#include "iot_error.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

struct ws {
    conn_t *conn;
    wslay_event_context_ptr ctx;
    const uint8_t *in; /* what ws_feed was given and wslay has not taken yet */
    size_t in_len;
    bool closing;
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
    struct ws *ws = user_data;
    (void)flags;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data)
{
    struct ws *ws = user_data;
    (void)flags;
    if (conn_write(ws->conn, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static const char not_served[] =
    "{\"type\":\"ERROR\",\"code\":\"unknown_type\","
    "\"msg\":\"the browser protocol is not served on this version of iotd yet\"}";

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user_data)
{
    (void)user_data;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* control frames: wslay answers pings and closes itself */
    struct wslay_event_msg reply = {WSLAY_TEXT_FRAME, (const uint8_t *)not_served,
                                    sizeof(not_served) - 1};
    wslay_event_queue_msg(ctx, &reply);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_msg_recv_callback = on_message,
};

int ws_start(ws_t **out, conn_t *c)
{
    struct ws *ws = calloc(1, sizeof(*ws));
    *out = NULL;
    if (!ws)
        return IOT_ENOMEM;
    ws->conn = c;
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
        free(ws);
        return IOT_ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, WS_MAX_MESSAGE);
    *out = ws;
    return 0;
}

void ws_feed(ws_t *ws, const uint8_t *data, size_t len)
{
    if (ws->closing)
        return;
    ws->in = data;
    ws->in_len = len;
    int rc = wslay_event_recv(ws->ctx);
    ws->in_len = 0;
    /* Whatever recv left queued goes out, a close frame for a protocol error included. */
    int sent = rc == WSLAY_ERR_CALLBACK_FAILURE ? rc : wslay_event_send(ws->ctx);
    if (rc == 0 || sent == WSLAY_ERR_CALLBACK_FAILURE)
        rc = sent;
    if (rc != 0) {
        ws->closing = true;
        conn_close(ws->conn, rc == WSLAY_ERR_CALLBACK_FAILURE ? "websocket: output bound reached"
                                                              : "websocket: protocol error");
    } else if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
        ws->closing = true; /* both closes exchanged (or a close sent after a fatal frame) */
        conn_close(ws->conn, "websocket closed");
    }
}

void ws_free(ws_t *ws)
{
    if (!ws)
        return;
    wslay_event_context_free(ws->ctx);
    free(ws);
}
