/*
 * conn.c - connections on an io thread: reading, coalesced writing, closing (see conn.h).
 *
 * Reading: every conn reads into its loop's one read buffer; the transport's on_read turns
 * wire bytes into plaintext for the owner's on_data, which consumes them before the next read.
 *
 * Writing: conn_write only appends to the conn's buffer and puts the conn on the loop's dirty
 * list. The loop flushes the dirty list twice per iteration, from a uv_check (after the poll:
 * writes made while handling reads and inbox messages) and from a uv_prepare (before the poll:
 * writes made by timers and close callbacks, which would otherwise wait for the next event);
 * an owner may flush one conn sooner with conn_flush_now (the relay does, for the requests of
 * a read).
 * A flush is one send, which on an idle socket takes everything; what the kernel refuses stays
 * in the buffer, and the conn waits for EPOLLOUT before it sends again (new writes append
 * meanwhile, up to the output bound). Buffers are allocated only while there is output, so an
 * idle connection holds no output memory. A buffer that empties goes to the loop's few spares, for
 * the next conn that writes: a busy conn empties its buffer at every flush, and malloc, reallocs
 * and free per conn per pass took 2-3% of a busy io thread.
 *
 * Closing: conn_close stops reading, lets the transport queue its goodbye (TLS close_notify),
 * and lingers until the output is flushed or linger_ms passes. Then it drains: closing a TCP
 * socket with unread input makes the kernel send RST instead of FIN, and a peer that receives
 * RST may discard our last answers before its application read them (a client that pipelined
 * requests behind a bad one lost the answer that explains the close). So once everything is
 * written, shutdown(SHUT_WR) sends our FIN after the data, and the socket is read and what
 * arrives dropped until the peer's FIN, NET_DRAIN_MAX bytes or NET_DRAIN_MS; then uv_close.
 * The owner's on_close does not wait for the drain: it runs on the next loop pass (never from
 * inside the caller's conn_close), and the conn is the net module's alone from then on. An
 * abort (errors, an expired linger, shutting down) skips the drain. Otherwise on_close runs from
 * the last handle's close callback, and the conn is freed right after it, never earlier.
 *
 * Deadlines (the TLS handshake, the close linger) are entries on a sorted per-loop list served
 * by one timer, not a timer handle per conn: at tens of thousands of idle devices a uv_timer_t
 * each (152 bytes) would be a sixth of a connection's memory, for a deadline it rarely has.
 *
 * Conns come from a pool of the loop (loop/pool.h), not from malloc: they are the one
 * long-lived allocation per device, and a pool keeps them off the pages of the short-lived
 * handshake allocations made in the same connect storm, and saves the malloc header.
 *
 * Sockets: a conn is a descriptor in its loop's own epoll set, read and written here with
 * read(2) and send(2), not a libuv stream. libuv watches the epoll set's descriptor (one
 * uv_poll_t per loop); when it is readable, one epoll_wait(0) says which sockets are ready.
 * At 100,000 idle devices a uv_tcp_t each (248 bytes, plus its slot in libuv's watcher table)
 * was the largest part of a connection; the price is one more epoll_wait per loop pass that
 * has socket events. The set is level-triggered, as libuv's own is: a socket with more than one
 * read's worth is reported again on the next pass. A descriptor leaves the set explicitly
 * before it is closed: after a handoff its duplicate keeps the socket open, and epoll forgets
 * a socket only when its last descriptor closes.
 *
 * Freeing: a closed conn (its socket closed at once) goes on the loop's reap list, emptied by
 * the flush hooks (the uv_check after the poll's callbacks, the uv_prepare before the next
 * poll) and by the loop's own close: so the owner's on_close never runs from inside the call
 * that closed the conn, as with a libuv close callback, and always before the loop sleeps.
 */
#include "net/conn_internal.h"

#include "iot_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A buffer starts small: during a connect storm every connection written to in one loop pass
 * holds its buffer until the flush, and 4 KB each for a 200-byte CHALLENGE left megabytes of
 * freed heap pinned behind the few long-lived allocations made meanwhile. */
#define OUTBUF_FIRST 512

static void pending_add(conn_t *c, int64_t delta)
{
    stat_add(&c->nl->stats.pending_bytes, (uint64_t)delta);
}

/* Make room for n more bytes after the valid ones: slide to the front first, then grow by
 * doubling in whole chunks, so appends stay amortised O(1) without over-allocating small
 * buffers. */
static int outbuf_room(net_loop_t *nl, struct outbuf *b, size_t n)
{
    if (b->off + b->len + n <= b->cap)
        return 0;
    if (!b->data && nl->nspares > 0) {
        struct outbuf_spare *spare = &nl->spares[--nl->nspares];
        *b = (struct outbuf){.data = spare->data, .cap = spare->cap};
        if (n <= b->cap)
            return 0;
    }
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        if (b->len + n <= b->cap)
            return 0;
    }
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap * 2 : OUTBUF_FIRST;
    if (cap < need)
        cap = (need + OUTBUF_FIRST - 1) / OUTBUF_FIRST * OUTBUF_FIRST;
    uint8_t *data = realloc(b->data, cap);
    if (!data)
        return IOT_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

int conn_buf_append(conn_t *c, struct outbuf *b, const void *data, size_t len)
{
    if (outbuf_room(c->nl, b, len) != 0)
        return IOT_ENOMEM;
    memcpy(b->data + b->off + b->len, data, len);
    b->len += len;
    pending_add(c, (int64_t)len);
    return 0;
}

uint8_t *conn_buf_reserve(conn_t *c, struct outbuf *b, size_t n)
{
    if (outbuf_room(c->nl, b, n) != 0)
        return NULL;
    return b->data + b->off + b->len;
}

void conn_buf_commit(conn_t *c, struct outbuf *b, size_t n)
{
    b->len += n;
    pending_add(c, (int64_t)n);
}

void conn_buf_release(conn_t *c, struct outbuf *b)
{
    net_loop_t *nl = c->nl;
    pending_add(c, -(int64_t)b->len);
    if (b->data && b->cap <= NET_SPARE_MAX && nl->nspares < NET_SPARES && !nl->closing)
        nl->spares[nl->nspares++] = (struct outbuf_spare){.data = b->data, .cap = b->cap};
    else
        free(b->data);
    *b = (struct outbuf){0};
}

void conn_buf_consume(conn_t *c, struct outbuf *b, size_t n)
{
    if (n >= b->len) {
        conn_buf_release(c, b);
        return;
    }
    b->off += n;
    b->len -= n;
    pending_add(c, -(int64_t)n);
}

static void net_loop_maybe_free(net_loop_t *nl)
{
    if (nl->closing && nl->handles_open == 0 && nl->conns == NULL) {
        if (nl->io->net == nl)
            nl->io->net = NULL; /* a conn moved here from now on is closed (tls_adopt_moved) */
        pool_destroy(&nl->conn_pool);
        if (nl->epfd >= 0)
            close(nl->epfd);
        while (nl->nspares > 0)
            free(nl->spares[--nl->nspares].data);
        tls13_engine_free(nl->tls13);
        free(nl);
    }
}

static void dirty_unlink(conn_t *c)
{
    if (!c->dirty)
        return;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        c->nl->dirty_head = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_prev = c->dirty_prev;
    else
        c->nl->dirty_tail = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
    c->dirty = false;
}

void conn_mark_dirty(conn_t *c)
{
    if (c->dirty || c->state == CONN_CLOSED)
        return;
    c->dirty = true;
    c->dirty_next = NULL;
    c->dirty_prev = c->nl->dirty_tail;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c;
    else
        c->nl->dirty_head = c;
    c->nl->dirty_tail = c;
}

/* c is closed: tell the owner, then release everything (the loop itself is the caller's:
 * net_loop_maybe_free after the reap). */
static void conn_free(conn_t *c)
{
    net_loop_t *nl = c->nl;
    dirty_unlink(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        nl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Counted before the owner hears of it: whoever the owner tells sees the counts agree. A
     * conn moved to another thread lives on there: its socket is not closed, only this end. */
    if (!c->moved)
        stat_add(&nl->stats.closed, 1);
    stat_add(&nl->stats.conns, (uint64_t)-1);
    if (c->cb && c->cb->on_close)
        c->cb->on_close(c, c->reason ? c->reason : "closed");
    conn_type_of(c)->release(c); /* and with it the TLS state */
    conn_buf_release(c, &c->out);
    pool_free(&nl->conn_pool, c);
}

/* Free the closed conns of nl (their owners' on_close run here). The list is taken whole
 * first: an on_close may close more conns, which the caller's next round frees. */
static void net_loop_reap(net_loop_t *nl)
{
    while (nl->reap_head) {
        conn_t *c = nl->reap_head;
        nl->reap_head = NULL;
        while (c) {
            conn_t *next = c->dirty_next;
            c->dirty_next = NULL;
            conn_free(c);
            c = next;
        }
    }
}

/* Watch fd for events (EPOLLIN, EPOLLOUT, both or none). A failure closes c: its socket
 * could no longer be served. */
static void conn_watch(conn_t *c, uint32_t events)
{
    if (c->fd < 0 || events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    int op = c->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    uint32_t was = c->events;
    c->events = events;
    if (epoll_ctl(c->nl->epfd, op, c->fd, &ev) == 0 || op == EPOLL_CTL_DEL)
        return;
    /* Still in the set after a failed change: the close below takes it out. */
    c->events = op == EPOLL_CTL_ADD ? 0 : was;
    conn_abort(c, "cannot watch the socket");
}

/* Close the socket now; whatever is still queued is dropped. */
static void conn_finish(conn_t *c)
{
    net_loop_t *nl = c->nl;
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    dirty_unlink(c);
    conn_deadline_clear(c);
    conn_watch(c, 0);
    if (c->fd >= 0)
        close(c->fd); /* a moved conn's socket lives on through its duplicate: no FIN */
    c->fd = -1;
    conn_buf_release(c, &c->out); /* at once: it may be megabytes the peer never took */
    c->dirty_next = nl->reap_head;
    nl->reap_head = c;
}

void conn_abort(conn_t *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    if (!c->reason)
        c->reason = reason;
    conn_finish(c);
}

/* The owner hears of the close now (from the deadline timer, never from inside the caller's
 * conn_close), and the drain goes on without it. */
static void on_drain_started(conn_t *c)
{
    const struct conn_callbacks *cb = c->cb;
    c->cb = NULL;
    if (cb && cb->on_close)
        cb->on_close(c, c->reason ? c->reason : "closed");
    if (c->state == CONN_DRAINING)
        conn_deadline_set(c, NET_DRAIN_MS, conn_finish);
}

/* Everything queued is written: end gracefully (see the top). Our FIN goes now; what the peer
 * still sends is read and dropped until its own FIN, NET_DRAIN_MAX bytes or NET_DRAIN_MS. */
static void conn_drain(conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->peer_eof || shutdown(c->fd, SHUT_WR) != 0) {
        conn_finish(c); /* nothing left to wait for, or no way to wait */
        return;
    }
    conn_watch(c, EPOLLIN);
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_DRAINING;
    dirty_unlink(c);
    c->drained = 0;
    conn_deadline_set(c, 0, on_drain_started);
}

/* Write what c has queued: one send; what the kernel does not take waits for EPOLLOUT (and a
 * conn already waiting for it does not try again). Returns false if c was closed because of
 * an error. */
static bool conn_flush(conn_t *c)
{
    net_loop_t *nl = c->nl;
    stat_add(&nl->stats.flushes, 1);
    if (conn_staged_len(c) > 0 && conn_type_of(c)->prepare_flush &&
        conn_type_of(c)->prepare_flush(c) < 0) {
        conn_abort(c, "tls encryption failed");
        return false;
    }
    if ((c->events & EPOLLOUT) || c->out.len == 0)
        return true;

    ssize_t n = send(c->fd, c->out.data + c->out.off, c->out.len, MSG_NOSIGNAL);
    stat_add(&nl->stats.try_writes, 1);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        n = 0;
    } else if (n < 0) {
        conn_abort(c, "write failed");
        return false;
    }
    c->info.bytes_out += (uint64_t)n;
    stat_add(&nl->stats.bytes_out, (uint64_t)n);
    conn_buf_consume(c, &c->out, (size_t)n);
    if (c->out.len == 0)
        return true;
    /* The kernel is full: the rest goes when the socket is writable (conn_on_writable). */
    stat_add(&nl->stats.async_writes, 1);
    conn_watch(c, c->events | EPOLLOUT);
    return c->state != CONN_CLOSED;
}

/* The socket takes output again: send what waits, and stop watching for EPOLLOUT once all of
 * it is gone (then a close that waited for it goes on). */
static void conn_on_writable(conn_t *c)
{
    conn_watch(c, c->events & ~(uint32_t)EPOLLOUT);
    if (c->state == CONN_CLOSED || !conn_flush(c))
        return;
    if (c->events & EPOLLOUT)
        return;
    if (conn_staged_len(c) > 0)
        conn_mark_dirty(c);
    else if (c->state == CONN_CLOSING && c->out.len == 0)
        conn_drain(c);
}

void conn_flush_now(conn_t *c)
{
    if (!c->dirty)
        return;
    dirty_unlink(c);
    if (conn_flush(c) && c->state == CONN_CLOSING && conn_pending(c) == 0)
        conn_drain(c);
}

/* Flush each dirty conn once, in the order they were first written to in the pass; a conn
 * whose close was waiting for its output closes here. The order matters: a relayed request
 * goes out before the answers written after it, so its device starts on it first. Flushing
 * newest first (the list used to be pushed at its head) measured 13% less relay throughput
 * with 16 in flight, and more system calls per round trip on every side: the device got the
 * requests later, so the answers came back in more, smaller pieces. */
static void net_loop_flush(net_loop_t *nl)
{
    while (nl->dirty_head != NULL || nl->reap_head != NULL) {
        while (nl->dirty_head != NULL)
            conn_flush_now(nl->dirty_head);
        net_loop_reap(nl);
    }
}

static void on_loop_check(uv_check_t *check)
{
    net_loop_flush(check->data);
}

static void on_loop_prepare(uv_prepare_t *prepare)
{
    net_loop_flush(prepare->data);
}

/* (Re)arm the loop's timer for the earliest deadline, or stop it when there is none. */
static void deadline_arm(net_loop_t *nl);

static void on_deadline_timer(uv_timer_t *timer)
{
    net_loop_t *nl = timer->data;
    uint64_t now = uv_now(nl->loop);
    /* Unlinked before its callback runs, so the callback may set a new deadline or close c;
     * the unlinking re-arms the timer for the next one. */
    while (nl->deadlines.head && nl->deadlines.head->at <= now) {
        conn_t *c = container_of(nl->deadlines.head, conn_t, deadline);
        conn_deadline_fn fn = c->on_deadline;
        conn_deadline_clear(c);
        fn(c);
    }
    deadline_arm(nl); /* a one-shot timer: re-armed even if nothing was unlinked */
}

static void deadline_arm(net_loop_t *nl)
{
    const struct deadline_node *head = nl->deadlines.head;
    if (!head) {
        uv_timer_stop(&nl->deadline_timer);
        return;
    }
    uint64_t now = uv_now(nl->loop);
    uv_timer_start(&nl->deadline_timer, on_deadline_timer, head->at > now ? head->at - now : 0, 0);
}

void conn_deadline_set(conn_t *c, unsigned ms, conn_deadline_fn fn)
{
    net_loop_t *nl = c->nl;
    conn_deadline_clear(c);
    c->on_deadline = fn;
    deadline_list_insert(&nl->deadlines, &c->deadline, uv_now(nl->loop) + ms);
    if (nl->deadlines.head == &c->deadline)
        deadline_arm(nl);
}

void conn_deadline_clear(conn_t *c)
{
    net_loop_t *nl = c->nl;
    if (!c->on_deadline)
        return;
    bool was_head = nl->deadlines.head == &c->deadline;
    deadline_list_remove(&nl->deadlines, &c->deadline);
    c->on_deadline = NULL;
    /* The timer always stands for the head, so that it keeps the loop alive exactly as long
     * as some conn has a deadline (as a timer per conn did). */
    if (was_head)
        deadline_arm(nl);
}

static void on_linger_expired(conn_t *c)
{
    stat_add(&c->nl->stats.linger_expired, 1);
    conn_finish(c);
}

void conn_close(conn_t *c, const char *reason)
{
    if (c->state >= CONN_CLOSING)
        return;
    c->reason = reason;
    conn_watch(c, c->events & ~(uint32_t)EPOLLIN);
    if (c->state == CONN_CLOSED)
        return;
    conn_deadline_clear(c);
    if (c->state == CONN_HANDSHAKE) {
        conn_finish(c); /* nothing of the owner's is queued yet */
        return;
    }
    if (conn_type_of(c)->shutdown)
        conn_type_of(c)->shutdown(c);
    c->state = CONN_CLOSING;
    if (conn_pending(c) == 0) {
        conn_drain(c);
        return;
    }
    conn_mark_dirty(c);
    conn_deadline_set(c, c->linger_ms, on_linger_expired);
}

void conn_close_now(conn_t *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    if (!c->reason)
        c->reason = reason;
    if (c->state == CONN_OPEN && conn_type_of(c)->shutdown)
        conn_type_of(c)->shutdown(c);
    if (c->state != CONN_CLOSED && !(c->events & EPOLLOUT))
        conn_flush(c);
    conn_finish(c);
}

void conn_pause(conn_t *c)
{
    if (c->state == CONN_OPEN)
        conn_watch(c, c->events & ~(uint32_t)EPOLLIN);
}

void conn_resume(conn_t *c)
{
    if (c->state == CONN_OPEN)
        conn_watch(c, c->events | EPOLLIN);
}

void conn_announce(conn_t *c)
{
    net_loop_t *nl = c->nl;
    c->state = CONN_OPEN;
    stat_add(&nl->stats.accepted, 1);
    nl->on_accept(nl, c, nl->arg);
    if (c->state == CONN_OPEN && !c->cb)
        conn_close(c, "no owner for the connection");
}

/* The socket has bytes, its peer's FIN, or an error: one read into the loop's buffer. */
static void conn_on_readable(conn_t *c)
{
    net_loop_t *nl = c->nl;
    ssize_t n = read(c->fd, nl->read_buffer, sizeof(nl->read_buffer));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (c->state == CONN_DRAINING) {
        c->drained += n > 0 ? (uint32_t)n : 0;
        if (n <= 0 || c->drained > NET_DRAIN_MAX)
            conn_finish(c); /* the peer's FIN, an error, or more than we wait through */
        return;
    }
    if (n > 0) {
        c->info.bytes_in += (uint64_t)n;
        stat_add(&nl->stats.bytes_in, (uint64_t)n);
        if (c->state <= CONN_OPEN)
            conn_type_of(c)->on_read(c, nl->read_buffer, (size_t)n);
        return;
    }
    c->peer_eof = n == 0;
    if (n == 0 && conn_tls_of(c) && conn_tls_of(c)->placing)
        tls_place_here(c); /* what it said before hanging up still reaches an owner */
    if (n == 0)
        conn_close(c,
                   c->state == CONN_HANDSHAKE ? "peer closed during the handshake" : "peer closed");
    else
        conn_abort(c, "read failed");
}

/* One event of the loop's epoll set. Reading first, as libuv does; a conn closed by an earlier
 * event of the same batch is still in memory (freed by the reap after the batch), so its
 * stale event is recognised here and skipped. An error or hang-up on a socket that is not
 * being read (paused, or lingering) would be reported again at every pass: it ends the conn,
 * since its peer is gone and can take nothing more. */
static void conn_on_event(conn_t *c, uint32_t events)
{
    if (c->state == CONN_CLOSED)
        return;
    if ((events & (EPOLLERR | EPOLLHUP)) && !(c->events & EPOLLIN)) {
        conn_abort(c, "read failed");
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_on_readable(c);
    if (c->state != CONN_CLOSED && (events & EPOLLOUT) && (c->events & EPOLLOUT))
        conn_on_writable(c);
}

/* How many ready sockets one epoll_wait takes. More are reported on the next pass. */
#define NET_EPOLL_BATCH 64

static void on_epoll_ready(uv_poll_t *watch, int status, int events)
{
    net_loop_t *nl = watch->data;
    struct epoll_event ready[NET_EPOLL_BATCH];
    (void)events;
    if (status < 0)
        return;
    int n = epoll_wait(nl->epfd, ready, NET_EPOLL_BATCH, 0);
    for (int i = 0; i < n; i++)
        conn_on_event(ready[i].data.ptr, ready[i].events);
}

/* The peer's address and whether it is this host. IPv4-mapped IPv6 peers (from a dual-stack
 * listener) are kept and judged as IPv4. */
static void conn_fill_peer(conn_t *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNSPEC; /* printed "unknown" */
    peer_addr_from_sockaddr(&c->info.peer, (const struct sockaddr *)&ss);
    c->info.peer_is_loopback = peer_addr_is_loopback(&c->info.peer);
}

conn_t *net_loop_adopt_open(net_loop_t *nl, int fd, const struct conn_params *p)
{
    conn_t *c = NULL;
    if (nl->closing || !(c = pool_alloc(&nl->conn_pool))) {
        close(fd);
        return NULL;
    }
    c->nl = nl;
    c->info.transport = p->transport;
    c->info.encrypted = p->transport == CONN_TLS;
    c->output_limit = (uint32_t)(p->output_limit ? p->output_limit : NET_DEFAULT_OUTPUT_LIMIT);
    c->linger_ms = p->linger_ms ? p->linger_ms : NET_DEFAULT_LINGER;
    c->state = CONN_HANDSHAKE;
    c->fd = fd;
    c->next = nl->conns;
    if (c->next)
        c->next->prev = c;
    nl->conns = c;
    stat_add(&nl->stats.conns, 1);

    /* Frames are small and latency matters; keepalive is iotd's own PING, not the kernel's
     * (an accepted socket has none unless the listener had it). The listener made it
     * non-blocking (accept4), and a descriptor moved here shares that with its original. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_fill_peer(c);
    conn_watch(c, EPOLLIN); /* closes c if it cannot */
    return c->state == CONN_CLOSED ? NULL : c;
}

void net_loop_adopt(net_loop_t *nl, int fd, struct conn_params *p)
{
    conn_t *c = net_loop_adopt_open(nl, fd, p);
    if (c && conn_type_of(c)->start(c, p) < 0)
        conn_abort(c, "cannot start the transport");
    if (p->tls_ctx)
        SSL_CTX_free(p->tls_ctx);
    p->tls_ctx = NULL;
    if (p->placer)
        net_place_table_unref(p->placer);
    p->placer = NULL;
}

int net_loop_init(net_loop_t **out, io_thread_t *io, conn_accept_fn on_accept, void *arg)
{
    net_loop_t *nl = calloc(1, sizeof(*nl));
    if (!nl)
        return IOT_ENOMEM;
    nl->io = io;
    /* A thread may carry several net loops (device sessions, web); the first one made is the
     * thread's, the one a TLS connection placed here after its handshake joins. */
    if (!io->net)
        io->net = nl;
    nl->loop = &io->loop;
    nl->on_accept = on_accept;
    nl->arg = arg;
    pool_init(&nl->conn_pool, sizeof(conn_t));
    nl->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (nl->epfd < 0 || uv_poll_init(nl->loop, &nl->epoll_watch, nl->epfd) != 0) {
        if (nl->epfd >= 0)
            close(nl->epfd);
        if (io->net == nl)
            io->net = NULL;
        free(nl);
        return IOT_ENOMEM;
    }
    uv_prepare_init(nl->loop, &nl->prepare);
    uv_check_init(nl->loop, &nl->check);
    uv_timer_init(nl->loop, &nl->deadline_timer);
    nl->prepare.data = nl->check.data = nl->deadline_timer.data = nl->epoll_watch.data = nl;
    uv_prepare_start(&nl->prepare, on_loop_prepare);
    uv_check_start(&nl->check, on_loop_check);
    uv_poll_start(&nl->epoll_watch, UV_READABLE, on_epoll_ready);
    /* Not the flush hooks nor the epoll watch keep the loop alive (the io thread's inbox does,
     * until it stops). The deadline timer runs only while a conn has a deadline. */
    uv_unref((uv_handle_t *)&nl->prepare);
    uv_unref((uv_handle_t *)&nl->check);
    uv_unref((uv_handle_t *)&nl->epoll_watch);
    nl->handles_open = 4;
    *out = nl;
    return 0;
}

static void on_loop_handle_closed(uv_handle_t *handle)
{
    net_loop_t *nl = handle->data;
    nl->handles_open--;
    net_loop_reap(nl); /* the conns closed by net_loop_close */
    net_loop_maybe_free(nl);
}

void net_loop_close(net_loop_t *nl)
{
    if (nl->closing)
        return;
    nl->closing = true;
    /* No lingering here: the io thread is about to stop, so every handle must be closing by
     * the time this returns. Whatever the kernel takes at once is still sent. */
    for (conn_t *c = nl->conns; c; c = c->next)
        conn_close_now(c, "server shutting down");
    uv_close((uv_handle_t *)&nl->prepare, on_loop_handle_closed);
    uv_close((uv_handle_t *)&nl->check, on_loop_handle_closed);
    uv_close((uv_handle_t *)&nl->deadline_timer, on_loop_handle_closed);
    uv_close((uv_handle_t *)&nl->epoll_watch, on_loop_handle_closed);
}

void net_loop_stats(const net_loop_t *nl, size_t *conns, size_t *pending_bytes)
{
    if (conns)
        *conns = (size_t)atomic_load_explicit(&nl->stats.conns, memory_order_relaxed);
    if (pending_bytes)
        *pending_bytes =
            (size_t)atomic_load_explicit(&nl->stats.pending_bytes, memory_order_relaxed);
}

void net_loop_counters(const net_loop_t *nl, struct net_loop_counters *out)
{
#define LOAD(f) atomic_load_explicit(&nl->stats.f, memory_order_relaxed)
    *out = (struct net_loop_counters){
        .accepted = LOAD(accepted),
        .closed = LOAD(closed),
        .flushes = LOAD(flushes),
        .try_writes = LOAD(try_writes),
        .async_writes = LOAD(async_writes),
        .bytes_in = LOAD(bytes_in),
        .bytes_out = LOAD(bytes_out),
        .busy_rejects = LOAD(busy_rejects),
        .linger_expired = LOAD(linger_expired),
        .tls_handshakes = LOAD(tls_handshakes),
        .tls_failures = LOAD(tls_failures),
        .tls_timeouts = LOAD(tls_timeouts),
        .tls13_records = LOAD(tls13_records),
        .moves = LOAD(moves),
    };
#undef LOAD
}

void conn_set_owner(conn_t *c, const struct conn_callbacks *cb, void *owner)
{
    c->cb = cb;
    c->owner = owner;
}

void *conn_owner(const conn_t *c)
{
    return c->owner;
}

const char *conn_peer(const conn_t *c, char *out)
{
    return peer_addr_format(&c->info.peer, out);
}

const struct conn_info *conn_info(const conn_t *c)
{
    return &c->info;
}

io_thread_t *conn_io_thread(const conn_t *c)
{
    return c->nl->io;
}

size_t conn_pending(const conn_t *c)
{
    return conn_staged_len(c) + c->out.len;
}

size_t conn_output_limit(const conn_t *c)
{
    return c->output_limit;
}

int conn_write(conn_t *c, const void *data, size_t len)
{
    if (c->state != CONN_OPEN)
        return IOT_EINVAL;
    if (len == 0)
        return 0;
    if (len > c->output_limit || conn_pending(c) > c->output_limit - len) {
        stat_add(&c->nl->stats.busy_rejects, 1);
        return IOT_EBUSY;
    }
    int rc = conn_type_of(c)->write(c, data, len);
    if (rc == 0)
        conn_mark_dirty(c);
    return rc;
}

const char *conn_transport_name(enum conn_transport t)
{
    static const char *const names[] = {[CONN_TCP] = "tcp", [CONN_TLS] = "tls", [CONN_WS] = "ws"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}
