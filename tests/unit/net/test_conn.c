/* Unit tests of iotd/net over plain TCP with real sockets on 127.0.0.1: echo with many clients
 * spread over two io threads, write coalescing, the output bound, closing (flush before close,
 * linger expiry, peer and owner closes, on_close exactly once), net_loop_close with open
 * connections, and listener address handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net_harness.h"

#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANY_CLIENTS 200
#define MESSAGES     5

static void test_echo_many_clients(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP};
    static int fds[MANY_CLIENTS];
    (void)state;
    harness_start(&h, &o);

    double t0 = harness_now();
    for (int i = 0; i < MANY_CLIENTS; i++)
        fds[i] = client_connect(h.port, 0);
    WAIT_FOR(harness_accepted(&h) == MANY_CLIENTS, 5000);
    double t1 = harness_now();
    assert_int_equal(harness_accepted(&h), MANY_CLIENTS);
    /* Round robin: both threads get an equal share. */
    assert_int_equal(atomic_load(&h.accepted[0]), MANY_CLIENTS / 2);
    assert_int_equal(atomic_load(&h.accepted[1]), MANY_CLIENTS / 2);

    for (int m = 0; m < MESSAGES; m++) {
        char msg[32], back[32];
        for (int i = 0; i < MANY_CLIENTS; i++) {
            int n = snprintf(msg, sizeof(msg), "client %03d message %d", i, m);
            assert_int_equal(client_send(fds[i], msg, (size_t)n), 0);
        }
        for (int i = 0; i < MANY_CLIENTS; i++) {
            int n = snprintf(msg, sizeof(msg), "client %03d message %d", i, m);
            assert_int_equal(client_read_exact(fds[i], back, (size_t)n), 0);
            assert_memory_equal(back, msg, (size_t)n);
        }
    }
    double t2 = harness_now();
    print_message("%d connections accepted in %.1f ms (%.0f/s); %d echo round trips in %.1f ms\n",
                  MANY_CLIENTS, (t1 - t0) * 1e3, MANY_CLIENTS / (t1 - t0), MANY_CLIENTS * MESSAGES,
                  (t2 - t1) * 1e3);

    pthread_mutex_lock(&h.lock);
    for (struct echo_conn *e = h.conns; e; e = e->next) {
        assert_int_equal(e->transport, CONN_TCP);
        assert_true(e->loopback);
    }
    pthread_mutex_unlock(&h.lock);
    size_t conns = 0;
    for (int i = 0; i < HARNESS_THREADS; i++) {
        size_t n, pending;
        net_loop_stats(h.nl[i], &n, &pending);
        conns += n;
    }
    assert_int_equal(conns, MANY_CLIENTS);

    for (int i = 0; i < MANY_CLIENTS; i++)
        close(fds[i]);
    WAIT_FOR(atomic_load(&h.closed) == MANY_CLIENTS, 5000);
    assert_int_equal(atomic_load(&h.closed), MANY_CLIENTS);
    assert_non_null(harness_find_closed(&h, "peer closed"));
    struct net_loop_counters c;
    harness_counters(&h, &c);
    assert_int_equal(c.accepted, MANY_CLIENTS);
    assert_int_equal(c.closed, MANY_CLIENTS);
    harness_stop(&h);
}

static void test_write_coalescing(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP};
    struct net_loop_counters before, after;
    char buf[1000];
    (void)state;
    harness_start(&h, &o);
    int fd = client_connect(h.port, 0);
    WAIT_FOR(harness_accepted(&h) == 1, 5000);

    harness_counters(&h, &before);
    assert_int_equal(client_send(fd, "!burst 1000", 11), 0);
    assert_int_equal(client_read_exact(fd, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 'x');
    /* The counters are bumped just after the syscall; give the io thread a moment. */
    WAIT_FOR((harness_counters(&h, &after), after.bytes_out - before.bytes_out == 1000), 2000);
    harness_sleep_ms(50);
    harness_counters(&h, &after);
    assert_int_equal(after.bytes_out - before.bytes_out, 1000);
    assert_int_equal(after.flushes - before.flushes, 1);
    assert_int_equal(after.try_writes - before.try_writes, 1);
    assert_int_equal(after.async_writes - before.async_writes, 0);

    close(fd);
    harness_stop(&h);
}

/* conn_flush_now writes what is queued at once, once per call that has something to write,
 * and takes the conn off the pass's flush. */
static void test_flush_now(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP};
    struct net_loop_counters before, after;
    char buf[3];
    (void)state;
    harness_start(&h, &o);
    int fd = client_connect(h.port, 0);
    WAIT_FOR(harness_accepted(&h) == 1, 5000);

    harness_counters(&h, &before);
    assert_int_equal(client_send(fd, "!now 3", 6), 0);
    assert_int_equal(client_read_exact(fd, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, "yyy", 3);
    WAIT_FOR((harness_counters(&h, &after), after.bytes_out - before.bytes_out == 3), 2000);
    harness_sleep_ms(50);
    harness_counters(&h, &after);
    assert_int_equal(after.flushes - before.flushes, 3);
    assert_int_equal(after.try_writes - before.try_writes, 3);

    close(fd);
    harness_stop(&h);
}

static void test_output_bound(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP, .output_limit = 64 * 1024};
    struct net_loop_counters c;
    (void)state;
    harness_start(&h, &o);
    int fd = client_connect(h.port, 4096);
    WAIT_FOR(harness_accepted(&h) == 1, 5000);

    assert_int_equal(client_send(fd, "!fill 4096", 10), 0);
    WAIT_FOR(atomic_load(&h.fill_rc) != 1, 5000);
    assert_int_equal(atomic_load(&h.fill_rc), IOT_EBUSY);
    size_t queued = atomic_load(&h.fill_bytes);
    assert_int_equal(queued, 64 * 1024); /* 16 chunks fit exactly, the 17th is refused */
    harness_counters(&h, &c);
    assert_true(c.busy_rejects >= 1);

    /* Everything accepted is delivered once the client reads. */
    uint8_t *buf = malloc(queued);
    assert_int_equal(client_read_exact(fd, buf, queued), 0);
    free(buf);
    close(fd);
    harness_stop(&h);
}

static void check_pattern(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (uint8_t)(i % 251))
            fail_msg("byte %zu is %u, expected %u", i, buf[i], (unsigned)(i % 251));
}

static void test_close_flushes_queued_output(void **state)
{
    struct harness h;
    /* More than the kernel's send buffer (up to 4 MiB) holds, so the close must linger. The
     * linger is long: 8 MB through a 4 KiB receive buffer under ThreadSanitizer on a loaded
     * machine took longer than the default 2 s (test_linger_expires tests the expiry). */
    struct net_listener_options o = {
        .transport = CONN_TCP, .output_limit = 16 << 20, .linger_ms = 30000};
    struct net_loop_counters c;
    const size_t total = 8 * 1000 * 1000;
    (void)state;
    harness_start(&h, &o);
    /* A fixed small receive buffer turns off the receiver's autotuning. */
    int fd = client_connect(h.port, 4096);
    WAIT_FOR(harness_accepted(&h) == 1, 5000);

    assert_int_equal(client_send(fd, "!bye 8000000", 12), 0);
    harness_sleep_ms(100);
    assert_int_equal(atomic_load(&h.closed), 0); /* still lingering */
    uint8_t *buf = malloc(total);
    assert_int_equal(client_read_exact(fd, buf, total), 0);
    check_pattern(buf, total);
    free(buf);
    assert_true(client_wait_closed(fd, 3000));
    WAIT_FOR(atomic_load(&h.closed) == 1, 3000);
    struct echo_conn *e = harness_find_closed(&h, "bye");
    assert_non_null(e);
    harness_counters(&h, &c);
    assert_true(c.async_writes >= 1);
    assert_int_equal(c.linger_expired, 0);
    close(fd);
    harness_stop(&h);
}

static void test_linger_expires(void **state)
{
    struct harness h;
    struct net_listener_options o = {
        .transport = CONN_TCP, .output_limit = 16 << 20, .linger_ms = 200};
    struct net_loop_counters c;
    (void)state;
    harness_start(&h, &o);
    int fd = client_connect(h.port, 4096);
    WAIT_FOR(harness_accepted(&h) == 1, 5000);

    /* The client never reads: the close gives up after the linger. */
    double t0 = harness_now();
    assert_int_equal(client_send(fd, "!bye 8000000", 12), 0);
    WAIT_FOR(atomic_load(&h.closed) == 1, 3000);
    double waited = harness_now() - t0;
    assert_int_equal(atomic_load(&h.closed), 1);
    assert_true(waited >= 0.15 && waited < 2.0);
    assert_non_null(harness_find_closed(&h, "bye"));
    harness_counters(&h, &c);
    assert_int_equal(c.linger_expired, 1);
    for (int i = 0; i < HARNESS_THREADS; i++) {
        size_t conns, pending;
        net_loop_stats(h.nl[i], &conns, &pending);
        assert_int_equal(conns, 0);
        assert_int_equal(pending, 0);
    }
    close(fd);
    harness_stop(&h);
}

static void test_close_paths(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP};
    (void)state;
    harness_start(&h, &o);
    int peer = client_connect(h.port, 0);
    int owner = client_connect(h.port, 0);
    int reset = client_connect(h.port, 0);
    WAIT_FOR(harness_accepted(&h) == 3, 5000);

    close(peer);
    WAIT_FOR(atomic_load(&h.closed) == 1, 3000);
    assert_non_null(harness_find_closed(&h, "peer closed"));

    assert_int_equal(client_send(owner, "!close", 6), 0);
    assert_true(client_wait_closed(owner, 3000));
    WAIT_FOR(atomic_load(&h.closed) == 2, 3000);
    assert_non_null(harness_find_closed(&h, "closed by owner"));

    /* An abortive close (RST) is a read error, not an orderly end. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(reset, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(reset);
    WAIT_FOR(atomic_load(&h.closed) == 3, 3000);
    assert_non_null(harness_find_closed(&h, "read failed"));

    close(owner);
    harness_stop(&h); /* checks each on_close ran exactly once */
}

static void test_net_loop_close_with_open_connections(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP};
    int fds[10];
    char buf[5];
    (void)state;
    harness_start(&h, &o);
    for (int i = 0; i < 10; i++) {
        fds[i] = client_connect(h.port, 0);
        assert_int_equal(client_send(fds[i], "hello", 5), 0);
        assert_int_equal(client_read_exact(fds[i], buf, 5), 0);
    }
    harness_close_loops(&h);
    for (int i = 0; i < 10; i++) {
        assert_true(client_wait_closed(fds[i], 3000));
        close(fds[i]);
    }
    assert_non_null(harness_find_closed(&h, "server shutting down"));
    harness_stop(&h);
}

/* A place function for the test: up to the first '\n', "A..." goes to thread 0, "B..." to 1,
 * anything else in turn. */
static int place_by_letter(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    if (!memchr(data, '\n', len))
        return NET_PLACE_MORE;
    return data[0] == 'A' ? 0 : data[0] == 'B' ? 1 : -1;
}

static void expect_echo(int fd, const char *text)
{
    char back[64];
    size_t n = strlen(text);
    assert_int_equal(client_read_exact(fd, back, n), 0);
    assert_memory_equal(back, text, n);
}

static void test_listener_placement(void **state)
{
    struct harness h;
    struct net_listener_options o = {.transport = CONN_TCP, .place = place_by_letter};
    (void)state;
    harness_start(&h, &o);

    /* Placed by the first bytes, which still reach the owner (peeked, not read). */
    int b = client_connect(h.port, 0), a = client_connect(h.port, 0);
    assert_int_equal(client_send(b, "B one\n", 6), 0);
    assert_int_equal(client_send(a, "A two\n", 6), 0);
    expect_echo(b, "B one\n");
    expect_echo(a, "A two\n");
    assert_int_equal(atomic_load(&h.accepted[0]), 1);
    assert_int_equal(atomic_load(&h.accepted[1]), 1);

    /* A first line in two segments: peeked at again until it is whole. */
    int split = client_connect(h.port, 0);
    assert_int_equal(client_send(split, "B sp", 4), 0);
    harness_sleep_ms(60);
    assert_int_equal(harness_accepted(&h), 2); /* not placed yet */
    assert_int_equal(client_send(split, "lit\n", 4), 0);
    expect_echo(split, "B split\n");
    assert_int_equal(atomic_load(&h.accepted[1]), 2);

    /* Silent: in turn once NET_PLACE_WAIT_MS has passed. */
    double t0 = harness_now();
    int silent = client_connect(h.port, 0);
    WAIT_FOR(harness_accepted(&h) == 4, 3000);
    assert_int_equal(harness_accepted(&h), 4);
    assert_true(harness_now() - t0 >= (NET_PLACE_WAIT_MS - 100) / 1000.0);
    assert_int_equal(client_send(silent, "late\n", 5), 0);
    expect_echo(silent, "late\n");

    /* One that hangs up before saying anything is handed over too, and closed there. */
    int gone = client_connect(h.port, 0);
    close(gone);
    WAIT_FOR(harness_accepted(&h) == 5 && atomic_load(&h.closed) == 1, 3000);
    assert_int_equal(harness_accepted(&h), 5);
    assert_int_equal(atomic_load(&h.closed), 1);

    close(a);
    close(b);
    close(split);
    close(silent);
    WAIT_FOR(atomic_load(&h.closed) == 5, 3000);
    harness_stop(&h);
}

static void test_listener_addresses(void **state)
{
    uv_loop_t loop;
    net_loop_t *fake[1] = {NULL};
    net_listener_t *l = NULL;
    char err[256];
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct net_listener_options o = {.address = "127.0.0.1", .transport = CONN_TCP};
    assert_int_equal(net_listener_start(&l, &loop, &o, fake, 1, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "host:port"));
    o.address = "256.1.1.1:0";
    assert_true(net_listener_start(&l, &loop, &o, fake, 1, err, sizeof(err)) < 0);
    o.address = "[::1]:0";
    if (net_listener_start(&l, &loop, &o, fake, 1, err, sizeof(err)) == 0) {
        assert_true(net_listener_port(l) > 0);
        net_listener_stop(l);
    }
    o.address = "*:0";
    assert_int_equal(net_listener_start(&l, &loop, &o, fake, 1, err, sizeof(err)), 0);
    assert_true(net_listener_port(l) > 0);
    net_listener_stop(l);
    o.address = "127.0.0.1:0";
    o.transport = CONN_TLS;
    o.tls_cert = "/nonexistent/cert.pem";
    o.tls_key = "/nonexistent/key.pem";
    assert_true(net_listener_start(&l, &loop, &o, fake, 1, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_many_clients),
        cmocka_unit_test(test_write_coalescing),
        cmocka_unit_test(test_flush_now),
        cmocka_unit_test(test_output_bound),
        cmocka_unit_test(test_close_flushes_queued_output),
        cmocka_unit_test(test_linger_expires),
        cmocka_unit_test(test_close_paths),
        cmocka_unit_test(test_net_loop_close_with_open_connections),
        cmocka_unit_test(test_listener_placement),
        cmocka_unit_test(test_listener_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
