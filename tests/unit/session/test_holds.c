/*
 * test_holds.c - backpressure on senders (iotd/session/holds.c): a sender held while its output
 * is above its bound (it does not read its answers), still held while it stays there, released
 * once it drains, with its reading resumed.
 *
 * The connection is real (net_harness: a listener, two io threads, an echo owner): a client
 * with a small receive buffer asks the echo owner to "!fill" its output to the bound, and a
 * session of the io thread's own (env, slot table, hold timer: what holds.c uses) is made
 * around that conn. Everything on the io thread runs through io_thread_call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../net/net_harness.h"

#include "iot_error.h"
#include "session/session_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUTPUT_LIMIT 65536

struct hold_fixture {
    struct harness h;
    struct echo_conn *e;
    sessions_t all;
    struct session_env env;
    struct session s;
    struct session *slots[1];
    _Atomic uint64_t holds;
    /* read on the io thread, for the test thread */
    bool held;
    size_t pending;
};

static int make_session(io_thread_t *io, void *arg)
{
    struct hold_fixture *fx = arg;
    fx->all.opts.keepalive_timeout_s = 60;
    fx->env.all = &fx->all;
    fx->env.io = io;
    fx->env.slots = fx->slots;
    fx->env.nslots = 1;
    fx->s.env = &fx->env;
    fx->s.conn = fx->e->c;
    fx->s.state = SESSION_ESTABLISHED;
    fx->s.serial = 1;
    fx->s.principal = fx->s.tenant = "";
    fx->slots[0] = &fx->s;
    session_holds_start(&fx->env);
    return 0;
}

static int hold(io_thread_t *io, void *arg)
{
    struct hold_fixture *fx = arg;
    (void)io;
    /* What relay_sender.c does before a request of a sender that does not read its answers. */
    if (session_output_above(&fx->s, 2))
        session_hold_sender(&fx->s, &fx->holds);
    return 0;
}

static int look(io_thread_t *io, void *arg)
{
    struct hold_fixture *fx = arg;
    (void)io;
    fx->held = fx->s.held;
    fx->pending = conn_pending(fx->s.conn);
    return 0;
}

static int stop_holds(io_thread_t *io, void *arg)
{
    struct hold_fixture *fx = arg;
    (void)io;
    session_holds_stop(&fx->env);
    return 0;
}

static bool is_held(struct hold_fixture *fx)
{
    io_thread_call(&fx->h.io[fx->e->thread], look, fx);
    return fx->held;
}

static void test_held_until_drained(void **state)
{
    (void)state;
    struct hold_fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    struct net_listener_options o = {.transport = CONN_TCP, .output_limit = OUTPUT_LIMIT};
    harness_start(&fx->h, &o);
    int fd = client_connect(fx->h.port, 4096);
    assert_true(fd >= 0);
    WAIT_FOR(harness_accepted(&fx->h) == 1, 5000);
    assert_int_equal(harness_accepted(&fx->h), 1);
    fx->e = fx->h.conns;
    io_thread_t *io = &fx->h.io[fx->e->thread];
    assert_int_equal(io_thread_call(io, make_session, fx), 0);

    /* The client reads nothing: the echo owner's output fills to its bound (again, if the
     * kernel's buffers took a first fill). */
    for (int i = 0; i < 400 && fx->pending <= OUTPUT_LIMIT / 2; i++) {
        atomic_store(&fx->h.fill_rc, 1);
        assert_int_equal(client_send(fd, "!fill 4096", 10), 0);
        WAIT_FOR(atomic_load(&fx->h.fill_rc) != 1, 5000);
        assert_int_equal(atomic_load(&fx->h.fill_rc), IOT_EBUSY);
        io_thread_call(io, look, fx);
    }
    assert_true(fx->pending > OUTPUT_LIMIT / 2);

    /* Held: not read from, counted, and still held while the output stays up. */
    io_thread_call(io, hold, fx);
    assert_true(is_held(fx));
    assert_int_equal(atomic_load(&fx->holds), 1);
    io_thread_call(io, hold, fx); /* already held: once */
    assert_int_equal(atomic_load(&fx->holds), 1);
    harness_sleep_ms(50);
    assert_true(is_held(fx));

    /* The client reads its answers: the output drains and the hold timer lets it go. */
    char buf[16384];
    double end = harness_now() + 10;
    while (is_held(fx) && harness_now() < end)
        if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
            harness_sleep_ms(1);
    assert_false(is_held(fx));
    assert_true(fx->pending <= OUTPUT_LIMIT / 4);

    io_thread_call(io, stop_holds, fx);
    close(fd);
    harness_stop(&fx->h);
    free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_until_drained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
