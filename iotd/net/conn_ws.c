/*
 * conn_ws.c - the WebSocket transport (RFC 6455) of an upgraded connection (see
 * conn_ws_upgrade in conn.h): the owner reads and writes units of its protocol, the peer
 * sends and receives text messages, and the codec translates one into the other.
 *
 * Reading goes through libwslay's event API: its recv callback hands it what the socket read,
 * and each complete message (fragments reassembled, at most max_message) is decoded into one
 * unit for the owner's on_data, or answered with the codec's reply. wslay answers pings and
 * closes itself; what it queues (pongs, close frames) is sent right after each read, and the
 * codec's replies are framed at once (see on_message): all
 * into the same output buffer as everything else, so the conn's bound and coalescing apply.
 *
 * Writing does not go through wslay: the owner's bytes are cut at unit_end, each unit encoded
 * and framed here (a server frame is a 2 to 10 byte header and the payload, never masked),
 * straight into the output buffer. wslay's own output is always taken whole (its send
 * callback never says "would block"), so its frames and these never interleave mid-frame.
 * Nothing is written after a close frame went out or came in.
 *
 * Over TLS (a /ws upgraded on the web's TLS listener) the TLS layer stays under the WebSocket:
 * wire bytes are decrypted first (conn_tls.c's tls_feed and tls_read_into) and the plaintext
 * framed as above, and frames go into the TLS layer's staged plaintext instead of the output
 * buffer, encrypted at the flush like a TLS conn's (one record per burst).
 */
#include "net/conn_internal.h"

#include "iot_error.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

struct conn_ws {
    wslay_event_context_ptr ctx;
    const struct conn_ws_codec *codec;
    void *state;
    const uint8_t *in; /* what the socket read and wslay has not taken yet */
    size_t in_len;
    struct outbuf staged; /* owner's bytes of a unit not ended yet */
    unsigned refused;     /* messages answered with a reply */
    bool close_sent;      /* our close frame is queued (not by wslay) */
    struct conn_tls *tls; /* the TLS under it, or NULL (plain TCP) */
    /* Units decoded from one read, handed to the owner together (see ws_deliver). */
    uint8_t *batch;
    size_t batch_len, batch_cap;
};

size_t conn_ws_staged_len(const conn_t *c)
{
    return c->ws ? c->ws->staged.len : 0;
}

struct conn_tls *conn_ws_tls(const conn_t *c)
{
    return c->ws ? c->ws->tls : NULL;
}

/* Where frames go: the TLS layer's plaintext, or straight to the wire. */
static struct outbuf *ws_wire(conn_t *c)
{
    return c->ws->tls ? &c->ws->tls->staged : &c->out;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data)
{
    struct conn_ws *ws = ((conn_t *)user_data)->ws;
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
    conn_t *c = user_data;
    (void)flags;
    if (conn_pending(c) + len > c->output_limit || conn_buf_append(c, ws_wire(c), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    conn_mark_dirty(c);
    return (ssize_t)len;
}

/* Append one unmasked text frame of payload[0, len) to c's output. */
static int ws_frame_out(conn_t *c, const char *payload, size_t len)
{
    uint8_t head[10];
    size_t n = 2;
    head[0] = 0x81; /* FIN, text */
    if (len < 126) {
        head[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        head[1] = 126;
        head[2] = (uint8_t)(len >> 8);
        head[3] = (uint8_t)len;
        n = 4;
    } else {
        head[1] = 127;
        for (int i = 0; i < 8; i++)
            head[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        n = 10;
    }
    struct outbuf *wire = ws_wire(c);
    int rc = conn_buf_append(c, wire, head, n);
    return rc ? rc : conn_buf_append(c, wire, payload, len);
}

/* Hand the units decoded so far to the owner, in one on_data: the owner then handles a read's
 * requests as one batch, as it does a native read of several frames (it flushes the devices'
 * connections once per on_data: a call per message made four times the write calls, and a
 * third of the native path's round trips at 16 in flight). */
static void ws_deliver(conn_t *c)
{
    struct conn_ws *ws = c->ws;
    size_t len = ws->batch_len;
    ws->batch_len = 0;
    if (len > 0 && c->state == CONN_OPEN && c->cb && c->cb->on_data)
        c->cb->on_data(c, ws->batch, len);
}

/* Room for one more unit in the batch. */
static int batch_room(struct conn_ws *ws)
{
    size_t need = ws->batch_len + ws->codec->max_unit;
    if (need <= ws->batch_cap)
        return 0;
    size_t cap = ws->batch_cap ? ws->batch_cap * 2 : 2 * ws->codec->max_unit;
    while (cap < need)
        cap *= 2;
    uint8_t *batch = realloc(ws->batch, cap);
    if (!batch)
        return IOT_ENOMEM;
    ws->batch = batch;
    ws->batch_cap = cap;
    return 0;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user_data)
{
    conn_t *c = user_data;
    struct conn_ws *ws = c->ws;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* control frames: wslay answers pings and closes itself */
    if (c->state != CONN_OPEN || !c->cb || ws->close_sent)
        return;
    char reply[CONN_WS_REPLY_MAX];
    bool room = batch_room(ws) == 0;
    int n = 0;
    reply[0] = '\0';
    if (room)
        n = ws->codec->decode(ws->state, arg->msg, arg->msg_length,
                              arg->opcode == WSLAY_BINARY_FRAME, ws->batch + ws->batch_len,
                              ws->codec->max_unit, reply);
    if (n > 0) {
        ws->batch_len += (size_t)n;
        return;
    }
    ws_deliver(c); /* what came before this message is answered before it */
    if (c->state != CONN_OPEN) {
        return;
    } else if (!room) {
        conn_close(c, "out of memory");
    } else if (++ws->refused > CONN_WS_MAX_REFUSED) {
        conn_close(c, "websocket: too many refused messages");
    } else if (reply[0]) {
        /* Straight into the output, not through wslay's queue (sent only after the whole read):
         * so a reply keeps its place among the owner's answers to the same read, and is not
         * lost when a later message of that read closes the connection. */
        size_t len = strlen(reply);
        if (conn_pending(c) + len + 10 > c->output_limit || ws_frame_out(c, reply, len) != 0)
            conn_close(c, "websocket: output bound reached");
        else
            conn_mark_dirty(c);
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_msg_recv_callback = on_message,
};

static int ws_start(conn_t *c, struct conn_params *p)
{
    (void)c, (void)p;
    return IOT_EINVAL; /* a WebSocket is upgraded from TCP (conn_ws_upgrade), never accepted */
}

/* Plaintext WebSocket bytes (after TLS, if any). */
static void ws_on_plaintext(conn_t *c, const uint8_t *data, size_t len)
{
    struct conn_ws *ws = c->ws;
    if (c->state != CONN_OPEN)
        return;
    ws->in = data;
    ws->in_len = len;
    int rc = wslay_event_recv(ws->ctx);
    ws->in_len = 0;
    ws_deliver(c);
    /* An idle browser holds no batch buffer. */
    free(ws->batch);
    ws->batch = NULL;
    ws->batch_cap = 0;
    if (c->state != CONN_OPEN)
        return; /* the owner closed it meanwhile (its close frame is queued) */
    /* Whatever recv left queued goes out, a close frame for a protocol error included. */
    int sent = rc == WSLAY_ERR_CALLBACK_FAILURE ? rc : wslay_event_send(ws->ctx);
    if (rc == 0 || sent == WSLAY_ERR_CALLBACK_FAILURE)
        rc = sent;
    if (rc != 0)
        conn_close(c, rc == WSLAY_ERR_CALLBACK_FAILURE ? "websocket: output bound reached"
                                                       : "websocket: protocol error");
    else if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
        conn_close(c, "websocket closed"); /* both closes exchanged, or a fatal frame */
}

static void ws_on_read(conn_t *c, const uint8_t *data, size_t len)
{
    if (c->state != CONN_OPEN)
        return;
    if (!c->ws->tls)
        ws_on_plaintext(c, data, len);
    else
        tls_read_wire(c, data, len, ws_on_plaintext);
}

static int ws_write(conn_t *c, const void *data, size_t len)
{
    struct conn_ws *ws = c->ws;
    if (ws->close_sent || wslay_event_get_close_sent(ws->ctx) ||
        wslay_event_get_close_received(ws->ctx))
        return 0; /* the WebSocket is ending: nothing more goes after a close frame */
    int rc = conn_buf_append(c, &ws->staged, data, len);
    if (rc != 0)
        return rc;
    size_t cap = 3 * ws->codec->max_unit + 1024;
    char *message = NULL;
    const uint8_t *end;
    /* A whole unit consumed releases the buffer (data NULL): the length is checked first. */
    while (ws->staged.len > 0 && (end = memchr(ws->staged.data + ws->staged.off,
                                               ws->codec->unit_end, ws->staged.len)) != NULL) {
        const uint8_t *unit = ws->staged.data + ws->staged.off;
        size_t unit_len = (size_t)(end - unit) + 1;
        if (!message && !(message = malloc(cap))) {
            rc = IOT_ENOMEM;
            break;
        }
        int n = ws->codec->encode(ws->state, unit, unit_len, message, cap);
        if (n > 0)
            rc = ws_frame_out(c, message, (size_t)n);
        else if (n < 0)
            rc = n;
        conn_buf_consume(c, &ws->staged, unit_len);
        if (rc != 0)
            break;
    }
    free(message);
    return rc;
}

static void ws_shutdown(conn_t *c)
{
    static const uint8_t close_normal[] = {0x88, 0x02, 0x03, 0xe8}; /* close, 1000 */
    struct conn_ws *ws = c->ws;
    if (!ws->close_sent && !wslay_event_get_close_sent(ws->ctx)) {
        ws->close_sent = true;
        conn_buf_append(c, ws_wire(c), close_normal, sizeof(close_normal));
    }
    if (ws->tls)
        tls_goodbye(c); /* the close frame, then close_notify */
}

static int ws_prepare_flush(conn_t *c)
{
    return c->ws->tls ? tls_encrypt_staged(c) : 0;
}

static void ws_release(conn_t *c)
{
    struct conn_ws *ws = c->ws;
    if (!ws)
        return;
    if (ws->codec->release)
        ws->codec->release(ws->state);
    wslay_event_context_free(ws->ctx);
    free(ws->batch);
    conn_buf_release(c, &ws->staged);
    tls_state_free(c, ws->tls);
    free(ws);
    c->ws = NULL;
}

const struct conn_type conn_type_ws = {
    .transport = CONN_WS,
    .start = ws_start,
    .on_read = ws_on_read,
    .write = ws_write,
    .prepare_flush = ws_prepare_flush,
    .shutdown = ws_shutdown,
    .release = ws_release,
};

int conn_ws_upgrade(conn_t *c, const struct conn_ws_codec *codec, void *state)
{
    if ((c->info.transport != CONN_TCP && c->info.transport != CONN_TLS) || c->state != CONN_OPEN)
        return IOT_EINVAL;
    struct conn_ws *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return IOT_ENOMEM;
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, c) != 0) {
        free(ws);
        return IOT_ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, codec->max_message);
    ws->codec = codec;
    ws->state = state;
    ws->tls = conn_tls_of(c); /* stays under the WebSocket; c->tls and c->ws share a place */
    c->ws = ws;
    c->info.transport = CONN_WS;
    return 0;
}

void conn_ws_feed(conn_t *c, const uint8_t *data, size_t len)
{
    if (c->info.transport != CONN_WS)
        return;
    if (len > 0)
        ws_on_plaintext(c, data, len); /* already decrypted for the previous owner */
    /* Records OpenSSL decrypts after the upgrade request's were left to the WebSocket. */
    if (c->ws->tls && c->state == CONN_OPEN)
        tls_read_into(c, ws_on_plaintext);
}
