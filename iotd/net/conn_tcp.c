/*
 * conn_tcp.c - the plain TCP transport: wire bytes are the plaintext, so reads go straight to
 * the owner and writes straight into the output buffer that conn.c flushes.
 */
#include "net/conn_internal.h"

static int tcp_start(conn_t *c, struct conn_params *p)
{
    (void)p;
    conn_announce(c);
    return 0;
}

static void tcp_on_read(conn_t *c, const uint8_t *data, size_t len)
{
    if (c->state == CONN_OPEN && c->cb && c->cb->on_data)
        c->cb->on_data(c, data, len);
}

static int tcp_write(conn_t *c, const void *data, size_t len)
{
    return conn_buf_append(c, &c->out, data, len);
}

static void tcp_release(conn_t *c)
{
    (void)c;
}

const struct conn_type conn_type_tcp = {
    .transport = CONN_TCP,
    .start = tcp_start,
    .on_read = tcp_on_read,
    .write = tcp_write,
    .prepare_flush = NULL,
    .shutdown = NULL,
    .release = tcp_release,
};
