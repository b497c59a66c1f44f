/*
 * listener.c - listening sockets on the main loop, handing accepted sockets to io threads.
 *
 * The listening socket is non-blocking and watched with a uv_poll_t (rather than a uv_tcp_t)
 * because the accepted descriptor must leave this loop: the io thread puts it in its own epoll
 * set (conn.c). On readable, accept4 runs in a loop up to a batch limit, so a connection
 * storm is drained quickly without starving the rest of the main loop. Each socket goes, round
 * robin, to an io thread as a small inbox message carrying copies of the connection parameters
 * (and one reference on the TLS context), so the listener may stop or reload at any time.
 *
 * Overload: a full inbox closes the socket at once and counts a drop (the client retries; the
 * io thread is behind and more work would not help). Out of descriptors (EMFILE/ENFILE) the
 * pending connection cannot even be refused, and a level-triggered poll would spin, so
 * accepting pauses briefly and a warning is logged at most once a second.
 *
 * Placement (plain TCP with a place function): before a socket leaves, the listener waits
 * for its first bytes and peeks at them (MSG_PEEK: they stay in the socket), and the place
 * function picks the io thread, so that, say, a tenant's sessions share one and relays between
 * them need no hop between threads. A first frame split over several segments is peeked at
 * again every PLACE_SWEEP_MS (a level-triggered poll would spin on bytes left unread); a
 * socket still undecided after NET_PLACE_WAIT_MS, or beyond PLACE_MAX_PENDING waiting, goes
 * round robin. The io thread's own handshake timeout still applies.
 *
 * A TLS connection cannot be peeked at: it goes in turn, with a reference to a placement table
 * (the place function and the io threads), and places itself once its handshake is done
 * (conn_tls.c).
 *
 * TLS: the SSL_CTX is built once here and shared by every io thread (OpenSSL counts its
 * references). A reload builds a new one for new connections; connections in progress keep the
 * old one alive through their own reference until they close.
 */
#include "net/conn_internal.h"

#include "base/log.h"
#include "iot_error.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH      64
#define LISTEN_BACKLOG    1024
#define ACCEPT_PAUSE_MS   100
#define LOG_EVERY_MS      1000
#define PLACE_PEEK        1024 /* bytes peeked at: a HELLO or LOGIN fits */
#define PLACE_SWEEP_MS    20
#define PLACE_MAX_PENDING 1024

/* A socket waiting for the first bytes that place it (see above). */
struct pending {
    uv_poll_t poll;
    net_listener_t *l;
    struct pending *prev, *next;
    uint64_t since_ms;
    int fd;
    int target; /* the io thread chosen, -1 for the next in turn */
};

struct net_listener {
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_timer_t pause; /* resumes accepting after EMFILE */
    int fd;
    unsigned port;
    int handles_open;
    net_loop_t **loops;
    unsigned count, next;
    /* params.tls_ctx and params.placer (the place function, if any): the listener's own
     * references. */
    struct conn_params params;
    char *tls_cert, *tls_key;
    uint64_t last_log_ms;
    struct net_listener_counters counters;
    uv_timer_t sweep;        /* runs while sockets wait to be placed */
    struct pending *pending; /* waiting to be placed */
    unsigned npending;       /* in the list, plus those closing their poll */
    bool stopping;
};

struct accept_msg {
    inbox_msg_t msg;
    net_loop_t *nl;
    int fd;
    struct conn_params params;
};

static void on_accept_msg(inbox_msg_t *msg, void *loop_data)
{
    struct accept_msg *a = container_of(msg, struct accept_msg, msg);
    (void)loop_data;
    net_loop_adopt(a->nl, a->fd, &a->params);
    free(a);
}

/* Hand fd to io thread target (-1: the next in turn); on failure close it and count a drop. */
static void listener_dispatch(net_listener_t *l, int fd, int target)
{
    net_loop_t *nl = target >= 0 && (unsigned)target < l->count ? l->loops[target]
                                                                : l->loops[l->next++ % l->count];
    struct accept_msg *a = malloc(sizeof(*a));
    if (!a)
        goto drop;
    *a = (struct accept_msg){.msg.handle = on_accept_msg, .nl = nl, .fd = fd, .params = l->params};
    if (a->params.tls_ctx && !SSL_CTX_up_ref(a->params.tls_ctx))
        goto drop;
    /* A TCP socket is placed by now; a TLS one places itself after its handshake. */
    if (a->params.transport != CONN_TLS)
        a->params.placer = NULL;
    else if (a->params.placer)
        atomic_fetch_add(&a->params.placer->refs, 1);
    if (inbox_push(&nl->io->inbox, &a->msg) != 0) {
        SSL_CTX_free(a->params.tls_ctx);
        if (a->params.placer)
            net_place_table_unref(a->params.placer);
        goto drop;
    }
    l->counters.accepted++;
    return;
drop:
    free(a);
    close(fd);
    l->counters.dropped++;
}

static void on_listen_readable(uv_poll_t *poll, int status, int events);
static void listener_unref(net_listener_t *l);

/* ---- placement ---- */

static void on_pending_closed(uv_handle_t *handle)
{
    struct pending *p = handle->data;
    net_listener_t *l = p->l;
    if (l->stopping)
        close(p->fd);
    else
        listener_dispatch(l, p->fd, p->target);
    free(p);
    l->npending--;
    listener_unref(l);
}

/* Send p to target: out of the list, then out of this loop once its poll is closed. */
static void pending_decide(struct pending *p, int target)
{
    net_listener_t *l = p->l;
    if (p->prev)
        p->prev->next = p->next;
    else
        l->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->target = target;
    l->handles_open++; /* the listener is freed only after this poll is closed */
    uv_close((uv_handle_t *)&p->poll, on_pending_closed);
}

/* Peek at what p sent and place it if that decides; last: decide now, in turn if need be. */
static void pending_peek(struct pending *p, bool last)
{
    uint8_t buf[PLACE_PEEK];
    ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !last)
        return;
    if (n <= 0) { /* closed, failed or silent to the end: the io thread sees to it */
        pending_decide(p, -1);
        return;
    }
    const struct net_place_table *placer = p->l->params.placer;
    int target = placer->place(buf, (size_t)n, placer->arg);
    if (target != NET_PLACE_MORE) {
        pending_decide(p, target);
    } else if (last || n == (ssize_t)sizeof(buf)) {
        pending_decide(p, -1);
    } else {
        uv_poll_stop(&p->poll); /* the rest of the frame: the sweep peeks again */
    }
}

static void on_pending_readable(uv_poll_t *poll, int status, int events)
{
    (void)events;
    pending_peek(poll->data, status < 0);
}

static void on_sweep(uv_timer_t *timer)
{
    net_listener_t *l = timer->data;
    uint64_t now = uv_now(l->loop);
    for (struct pending *p = l->pending, *next; p; p = next) {
        next = p->next;
        bool last = now - p->since_ms >= NET_PLACE_WAIT_MS;
        if (last || !uv_is_active((uv_handle_t *)&p->poll))
            pending_peek(p, last);
    }
    if (!l->pending)
        uv_timer_stop(timer);
}

/* Wait for fd's first bytes before placing it; in turn at once if that cannot be. */
static void pending_start(net_listener_t *l, int fd)
{
    struct pending *p = NULL;
    if (l->npending >= PLACE_MAX_PENDING || !(p = calloc(1, sizeof(*p))) ||
        uv_poll_init(l->loop, &p->poll, fd) != 0) {
        free(p);
        listener_dispatch(l, fd, -1);
        return;
    }
    p->poll.data = p;
    p->l = l;
    p->fd = fd;
    p->since_ms = uv_now(l->loop);
    p->next = l->pending;
    if (p->next)
        p->next->prev = p;
    l->pending = p;
    l->npending++;
    uv_poll_start(&p->poll, UV_READABLE, on_pending_readable);
    if (!uv_is_active((uv_handle_t *)&l->sweep))
        uv_timer_start(&l->sweep, on_sweep, PLACE_SWEEP_MS, PLACE_SWEEP_MS);
}

static void on_pause_done(uv_timer_t *timer)
{
    net_listener_t *l = timer->data;
    uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
}

static void listener_pause(net_listener_t *l, int err)
{
    uint64_t now = uv_now(l->loop);
    if (now - l->last_log_ms >= LOG_EVERY_MS || l->last_log_ms == 0) {
        l->last_log_ms = now;
        log_warn("listener on port %u: cannot accept (%s); pausing %d ms", l->port, strerror(err),
                 ACCEPT_PAUSE_MS);
    }
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->pause, on_pause_done, ACCEPT_PAUSE_MS, 0);
}

static void on_listen_readable(uv_poll_t *poll, int status, int events)
{
    net_listener_t *l = poll->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (l->params.placer && l->params.transport == CONN_TCP)
                pending_start(l, fd);
            else
                listener_dispatch(l, fd, -1);
            continue;
        }
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
            return;
        if (err == EINTR || err == ECONNABORTED)
            continue;
        l->counters.accept_errors++;
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
            listener_pause(l, err);
            return;
        }
        uint64_t now = uv_now(l->loop);
        if (now - l->last_log_ms >= LOG_EVERY_MS || l->last_log_ms == 0) {
            l->last_log_ms = now;
            log_warn("listener on port %u: accept failed: %s", l->port, strerror(err));
        }
        return;
    }
}

/* "host:port", "[v6]:port", ":port" or "*:port" (any address). */
static int split_address(const char *address, char *host, size_t hostlen, char *port,
                         size_t portlen)
{
    const char *colon = strrchr(address, ':');
    if (!colon || colon[1] == '\0' || strlen(colon + 1) >= portlen)
        return IOT_EINVAL;
    snprintf(port, portlen, "%s", colon + 1);
    const char *h = address;
    size_t n = (size_t)(colon - address);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hostlen)
        return IOT_EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    if (strcmp(host, "*") == 0)
        host[0] = '\0';
    return 0;
}

/* A bound, listening, non-blocking socket for address; its port in *port. */
static int listen_socket(const char *address, int *out_fd, unsigned *port_out, char *err,
                         size_t errlen)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = IOT_EINVAL, fd = -1, saved = 0;
    if (!address || split_address(address, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, errlen, "listen address \"%s\" is not host:port", address ? address : "");
        goto out;
    }
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address \"%s\": %s", address,
                 gai_strerror(gai));
        goto out;
    }
    rc = IOT_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", address, strerror(saved));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "cannot read the bound address of %s: %s", address, strerror(errno));
        close(fd);
        goto out;
    }
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *out_fd = fd;
    rc = 0;
out:
    if (res)
        freeaddrinfo(res);
    return rc;
}

void net_place_table_unref(struct net_place_table *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

/* The listener's placement table (see the top): the io threads of loops, read here while every
 * loop is alive. */
static struct net_place_table *place_table_new(const struct net_listener_options *o,
                                               net_loop_t **loops, unsigned count)
{
    struct net_place_table *t = malloc(sizeof(*t) + count * sizeof(t->io[0]));
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->place = o->place;
    t->arg = o->place_arg;
    t->count = count;
    for (unsigned i = 0; i < count; i++)
        t->io[i] = loops[i]->io;
    return t;
}

static void listener_free(net_listener_t *l)
{
    if (l->fd >= 0)
        close(l->fd);
    SSL_CTX_free(l->params.tls_ctx);
    if (l->params.placer)
        net_place_table_unref(l->params.placer);
    free(l->tls_cert);
    free(l->tls_key);
    free(l->loops);
    free(l);
}

/* One handle of the listener's (its own, or a pending socket's poll) is closed. */
static void listener_unref(net_listener_t *l)
{
    if (--l->handles_open == 0)
        listener_free(l);
}

static void on_listener_handle_closed(uv_handle_t *handle)
{
    listener_unref(handle->data);
}

int net_listener_start(net_listener_t **out, uv_loop_t *loop, const struct net_listener_options *o,
                       net_loop_t **loops, unsigned count, char *err, size_t errlen)
{
    int rc = IOT_ENOMEM;
    net_listener_t *l = NULL;
    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (count == 0 || !loops) {
        snprintf(err, errlen, "a listener needs at least one io thread");
        return IOT_EINVAL;
    }
    if (!(l = calloc(1, sizeof(*l))))
        goto fail;
    l->fd = -1;
    l->loop = loop;
    l->count = count;
    l->params = (struct conn_params){.transport = o->transport,
                                     .output_limit = o->output_limit,
                                     .handshake_timeout_ms = o->handshake_timeout_ms,
                                     .linger_ms = o->linger_ms};
    if (o->place && !(l->params.placer = place_table_new(o, loops, count)))
        goto fail;
    if (!(l->loops = malloc(count * sizeof(*l->loops))))
        goto fail;
    memcpy(l->loops, loops, count * sizeof(*l->loops));
    if (o->transport == CONN_TLS) {
        if ((rc = tls_context_new(&l->params.tls_ctx, o->tls_cert, o->tls_key, err, errlen)) < 0)
            goto fail;
        l->tls_cert = strdup(o->tls_cert);
        l->tls_key = strdup(o->tls_key);
        if (!l->tls_cert || !l->tls_key) {
            rc = IOT_ENOMEM;
            goto fail;
        }
    }
    if ((rc = listen_socket(o->address, &l->fd, &l->port, err, errlen)) < 0)
        goto fail;
    if (uv_poll_init(loop, &l->poll, l->fd) != 0 || uv_timer_init(loop, &l->pause) != 0 ||
        uv_timer_init(loop, &l->sweep) != 0) {
        /* uv_poll_init cannot fail for a valid socket, and uv_timer_init cannot fail. */
        snprintf(err, errlen, "cannot watch the listening socket");
        rc = IOT_EIO;
        goto fail;
    }
    l->poll.data = l->pause.data = l->sweep.data = l;
    l->handles_open = 3;
    uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
    *out = l;
    return 0;
fail:
    if (rc == IOT_ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    if (l)
        listener_free(l);
    return rc;
}

unsigned net_listener_port(const net_listener_t *l)
{
    return l->port;
}

int net_listener_reload_tls(net_listener_t *l, char *err, size_t errlen)
{
    SSL_CTX *fresh;
    if (l->params.transport != CONN_TLS)
        return 0;
    int rc = tls_context_new(&fresh, l->tls_cert, l->tls_key, err, errlen);
    if (rc < 0)
        return rc;
    SSL_CTX_free(l->params.tls_ctx); /* handshakes in progress hold their own references */
    l->params.tls_ctx = fresh;
    return 0;
}

void net_listener_stop(net_listener_t *l)
{
    if (!l)
        return;
    l->stopping = true; /* sockets still waiting to be placed are closed */
    while (l->pending)
        pending_decide(l->pending, -1);
    uv_poll_stop(&l->poll);
    uv_close((uv_handle_t *)&l->poll, on_listener_handle_closed);
    uv_close((uv_handle_t *)&l->pause, on_listener_handle_closed);
    uv_close((uv_handle_t *)&l->sweep, on_listener_handle_closed);
}

void net_listener_counters(const net_listener_t *l, struct net_listener_counters *out)
{
    *out = l->counters;
}
