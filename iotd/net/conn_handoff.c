/*
 * conn_handoff.c - a connection moved whole to another io thread (see conn_handoff_take in
 * conn.h).
 *
 * Why: an io thread owns its connections, and a relay between sessions on two threads costs
 * an inbox hop each way. Where a connection belongs is sometimes known only after it has
 * spoken: a TLS device after its handshake (conn_tls.c), a browser's WebSocket after its
 * upgrade request or its LOGIN (iotd/web). Then the connection moves.
 *
 * What moves: a duplicate of the socket (the conn left behind closes its own descriptor
 * without a FIN: the socket lives on through the duplicate), the TLS state of a TLS conn (the
 * SSL object, whose memory BIOs hold whatever was read and not yet decrypted, or the TLS 1.3
 * record layer, whose buffer does), and the wire bytes not yet written (those the kernel
 * refused wait in the conn's own buffer, which travels). Plaintext the old owner read and did
 * not consume is the caller's to carry.
 */
#include "net/conn_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

struct conn_handoff {
    int fd;
    enum conn_transport transport;
    SSL *ssl;
    tls13_record_t *rec;
    struct outbuf out;
    uint32_t output_limit, linger_ms;
    uint64_t bytes_in, bytes_out;
};

conn_handoff_t *conn_handoff_take(conn_t *c)
{
    struct conn_tls *t = c->info.transport == CONN_TLS ? c->tls : NULL;
    if (c->state != CONN_OPEN && !(t && t->placing))
        return NULL;
    if (c->info.transport == CONN_WS || c->fd < 0)
        return NULL;
    /* Plaintext written and not yet encrypted becomes wire bytes, which travel. */
    if (t && t->staged.len > 0 && tls_encrypt_staged(c) != 0)
        return NULL;
    conn_handoff_t *h = calloc(1, sizeof(*h));
    int dup_fd = h ? fcntl(c->fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (dup_fd < 0) {
        free(h);
        return NULL;
    }
    *h = (conn_handoff_t){.fd = dup_fd,
                          .transport = c->info.transport,
                          .ssl = t ? t->ssl : NULL,
                          .rec = t ? t->rec : NULL,
                          .out = c->out,
                          .output_limit = c->output_limit,
                          .linger_ms = c->linger_ms,
                          .bytes_in = c->info.bytes_in,
                          .bytes_out = c->info.bytes_out};
    /* From now on only the receiving thread reads the socket: the abort below takes c out of
     * this loop's epoll set before anything else of this loop runs. */
    stat_add(&c->nl->stats.pending_bytes, (uint64_t) - (int64_t)c->out.len);
    c->out = (struct outbuf){0};
    if (t) {
        t->ssl = NULL;
        t->rec = NULL;
    }
    c->moved = true;
    stat_add(&c->nl->stats.moves, 1);
    conn_abort(c, "moved to another io thread");
    return h;
}

conn_t *conn_handoff_open(net_loop_t *nl, conn_handoff_t *h)
{
    struct conn_params p = {
        .transport = h->transport, .output_limit = h->output_limit, .linger_ms = h->linger_ms};
    conn_t *c = net_loop_adopt_open(nl, h->fd, &p); /* closes the descriptor on failure */
    h->fd = -1;
    if (c && h->transport == CONN_TLS && !(c->tls = calloc(1, sizeof(*c->tls)))) {
        conn_abort(c, "out of memory");
        c = NULL;
    }
    if (!c) {
        conn_handoff_drop(h);
        return NULL;
    }
    if (c->tls) {
        c->tls->ssl = h->ssl;
        c->tls->rec = h->rec;
        h->ssl = NULL;
        h->rec = NULL;
    }
    c->info.bytes_in = h->bytes_in;
    c->info.bytes_out = h->bytes_out;
    c->out = h->out;
    stat_add(&nl->stats.pending_bytes, c->out.len);
    if (c->out.len > 0)
        conn_mark_dirty(c);
    c->state = CONN_OPEN;
    free(h);
    return c;
}

void conn_handoff_drop(conn_handoff_t *h)
{
    if (!h)
        return;
    if (h->fd >= 0)
        close(h->fd);
    SSL_free(h->ssl);
    tls13_record_free(h->rec);
    free(h->out.data);
    free(h);
}
