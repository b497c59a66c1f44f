/*
 * net_harness.c - the test iotd of net_harness.h: threads, listener, echo owner, clients.
 *
 * The main loop runs on its own thread, as in iotd; the test thread reaches it only through
 * harness_main_call (an async handle plus a semaphore), and reaches the io threads only
 * through io_thread_call, so the sanitizers see the same hand-offs as the daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net_harness.h"

#include "iot_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double harness_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void harness_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- echo owner (io threads) ---- */

static void echo_on_data(conn_t *c, const uint8_t *data, size_t len);
static void echo_on_close(conn_t *c, const char *reason);
static const struct conn_callbacks echo_callbacks = {echo_on_data, echo_on_close};

static struct harness *echo_harness(conn_t *c)
{
    return ((struct echo_conn *)conn_owner(c))->h;
}

static void echo_on_accept(net_loop_t *nl, conn_t *c, void *arg)
{
    struct harness_loop_arg *la = arg;
    struct harness *h = la->h;
    (void)nl;
    struct echo_conn *e = calloc(1, sizeof(*e));
    if (!e)
        return; /* not owning it: the net module closes it */
    e->h = h;
    e->c = c;
    e->thread = la->index;
    e->transport = conn_info(c)->transport;
    e->loopback = conn_info(c)->peer_is_loopback;
    pthread_mutex_lock(&h->lock);
    e->next = h->conns;
    h->conns = e;
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_add(&h->accepted[la->index], 1);
    conn_set_owner(c, &echo_callbacks, e);
}

static void echo_on_data(conn_t *c, const uint8_t *data, size_t len)
{
    struct harness *h = echo_harness(c);
    char cmd[64];
    if (len == 0 || data[0] != '!') {
        if (conn_write(c, data, len) != 0)
            conn_close(c, "echo overflow");
        return;
    }
    size_t n = len < sizeof(cmd) - 1 ? len : sizeof(cmd) - 1;
    memcpy(cmd, data, n);
    cmd[n] = '\0';
    unsigned long arg = 0;
    if (sscanf(cmd, "!burst %lu", &arg) == 1) {
        for (unsigned long i = 0; i < arg; i++)
            conn_write(c, "x", 1);
    } else if (sscanf(cmd, "!now %lu", &arg) == 1) {
        /* arg one-byte writes, each written at once (conn_flush_now), then a second call
         * with nothing queued, which must write nothing */
        for (unsigned long i = 0; i < arg; i++) {
            conn_write(c, "y", 1);
            conn_flush_now(c);
            conn_flush_now(c);
        }
    } else if (sscanf(cmd, "!fill %lu", &arg) == 1) {
        uint8_t *chunk = calloc(1, arg);
        int rc;
        while ((rc = conn_write(c, chunk, arg)) == 0)
            ;
        free(chunk);
        atomic_store(&h->fill_bytes, conn_pending(c));
        atomic_store(&h->fill_rc, rc);
    } else if (sscanf(cmd, "!bye %lu", &arg) == 1) {
        uint8_t chunk[16384];
        for (unsigned long off = 0; off < arg;) {
            size_t k = arg - off < sizeof(chunk) ? arg - off : sizeof(chunk);
            for (size_t i = 0; i < k; i++)
                chunk[i] = (uint8_t)((off + i) % 251);
            if (conn_write(c, chunk, k) != 0)
                break;
            off += k;
        }
        conn_close(c, "bye");
    } else if (strncmp(cmd, "!close", 6) == 0) {
        conn_close(c, "closed by owner");
    }
}

static void echo_on_close(conn_t *c, const char *reason)
{
    struct echo_conn *e = conn_owner(c);
    struct harness *h = echo_harness(c);
    pthread_mutex_lock(&h->lock);
    e->close_calls++;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    e->c = NULL;
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_add(&h->closed, 1);
}

/* ---- threads ---- */

static int init_loop(io_thread_t *t, void *arg)
{
    struct harness *h = arg;
    return net_loop_init(&h->nl[t->index], t, echo_on_accept, &h->arg[t->index]);
}

static int close_loop(io_thread_t *t, void *arg)
{
    struct harness *h = arg;
    net_loop_close(h->nl[t->index]);
    return 0;
}

static void on_main_async(uv_async_t *async)
{
    struct harness *h = async->data;
    if (h->call_fn) {
        h->call_fn(h, h->call_arg);
        h->call_fn = NULL;
        uv_sem_post(&h->call_done);
    }
}

static void main_thread(void *arg)
{
    struct harness *h = arg;
    uv_run(&h->main_loop, UV_RUN_DEFAULT);
}

void harness_main_call(struct harness *h, void (*fn)(struct harness *h, void *arg), void *arg)
{
    pthread_mutex_lock(&h->call_lock);
    h->call_fn = fn;
    h->call_arg = arg;
    uv_async_send(&h->main_async);
    uv_sem_wait(&h->call_done);
    pthread_mutex_unlock(&h->call_lock);
}

void harness_start(struct harness *h, const struct net_listener_options *o)
{
    char err[256];
    memset(h, 0, sizeof(*h));
    /* As in iotd: a peer that vanished is an error return, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->call_lock, NULL);
    uv_sem_init(&h->call_done, 0);
    atomic_store(&h->fill_rc, 1);
    for (unsigned i = 0; i < HARNESS_THREADS; i++) {
        h->arg[i] = (struct harness_loop_arg){h, i};
        assert_int_equal(io_thread_start(&h->io[i], i, 1024), 0);
        assert_int_equal(io_thread_call(&h->io[i], init_loop, h), 0);
    }
    assert_int_equal(uv_loop_init(&h->main_loop), 0);
    assert_int_equal(uv_async_init(&h->main_loop, &h->main_async, on_main_async), 0);
    h->main_async.data = h;
    struct net_listener_options lo = *o;
    lo.address = "127.0.0.1:0";
    /* Not running yet: this thread may use the main loop until the main thread starts. */
    int rc = net_listener_start(&h->listener, &h->main_loop, &lo, h->nl, HARNESS_THREADS, err,
                                sizeof(err));
    if (rc != 0)
        fail_msg("listener: %s", err);
    h->port = net_listener_port(h->listener);
    assert_true(h->port > 0);
    assert_int_equal(uv_thread_create(&h->main_thread, main_thread, h), 0);
}

static void stop_main(struct harness *h, void *arg)
{
    (void)arg;
    net_listener_stop(h->listener);
    h->listener = NULL;
    uv_close((uv_handle_t *)&h->main_async, NULL);
}

unsigned harness_accepted(struct harness *h)
{
    unsigned n = 0;
    for (unsigned i = 0; i < HARNESS_THREADS; i++)
        n += atomic_load(&h->accepted[i]);
    return n;
}

void harness_close_loops(struct harness *h)
{
    for (unsigned i = 0; i < HARNESS_THREADS; i++)
        assert_int_equal(io_thread_call(&h->io[i], close_loop, h), 0);
    h->loops_closed = true;
    WAIT_FOR(atomic_load(&h->closed) == harness_accepted(h), 5000);
    assert_int_equal(atomic_load(&h->closed), harness_accepted(h));
}

void harness_stop(struct harness *h)
{
    /* The listener first: after this no socket enters an inbox (see net_listener_start). */
    pthread_mutex_lock(&h->call_lock);
    h->call_fn = stop_main;
    uv_async_send(&h->main_async);
    uv_sem_wait(&h->call_done);
    pthread_mutex_unlock(&h->call_lock);
    uv_thread_join(&h->main_thread);
    assert_int_equal(uv_loop_close(&h->main_loop), 0);
    if (!h->loops_closed)
        harness_close_loops(h);
    for (unsigned i = 0; i < HARNESS_THREADS; i++)
        io_thread_stop(&h->io[i]);
    struct echo_conn *e = h->conns;
    while (e) {
        struct echo_conn *next = e->next;
        assert_int_equal(e->close_calls, 1);
        free(e);
        e = next;
    }
    uv_sem_destroy(&h->call_done);
    pthread_mutex_destroy(&h->call_lock);
    pthread_mutex_destroy(&h->lock);
}

void harness_counters(struct harness *h, struct net_loop_counters *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < HARNESS_THREADS; i++) {
        struct net_loop_counters c;
        net_loop_counters(h->nl[i], &c);
        sum->accepted += c.accepted;
        sum->closed += c.closed;
        sum->flushes += c.flushes;
        sum->try_writes += c.try_writes;
        sum->async_writes += c.async_writes;
        sum->bytes_in += c.bytes_in;
        sum->bytes_out += c.bytes_out;
        sum->busy_rejects += c.busy_rejects;
        sum->linger_expired += c.linger_expired;
        sum->tls_handshakes += c.tls_handshakes;
        sum->tls_failures += c.tls_failures;
        sum->tls_timeouts += c.tls_timeouts;
        sum->moves += c.moves;
        sum->tls13_records += c.tls13_records;
    }
}

struct echo_conn *harness_find_closed(struct harness *h, const char *reason)
{
    struct echo_conn *found = NULL;
    pthread_mutex_lock(&h->lock);
    for (struct echo_conn *e = h->conns; e && !found; e = e->next)
        if (e->close_calls > 0 && strcmp(e->reason, reason) == 0)
            found = e;
    pthread_mutex_unlock(&h->lock);
    return found;
}

/* ---- blocking clients ---- */

int client_connect(unsigned port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

int client_send(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int client_read_exact(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

bool client_wait_closed(int fd, unsigned ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    double end = harness_now() + ms / 1000.0;
    char buf[4096];
    while (harness_now() < end) {
        if (poll(&pfd, 1, 10) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
    return false;
}
