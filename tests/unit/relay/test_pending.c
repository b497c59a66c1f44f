/*
 * test_pending.c - the relay's device side (iotd/relay/pending.c) with a fake session side: one
 * io thread, presence naming one device (slot 3, serial 77), and a port that records what the
 * relay writes to the device. Requests answered, timed out at their deadline and not before,
 * failed offline when the device session closes, refused busy past max_in_flight.
 *
 * Senders' answers come back to the test's handler on the same io thread; the relay's calls
 * that must run there (a device's answer, its close) go through io_thread_call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "iotp/iotp.h"
#include "relay/pending.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOT     3u
#define SERIAL   77u
#define SEEN_MAX 8

struct answer_seen {
    enum relay_outcome outcome;
    uint32_t id;
    char why[96];
    char arg0[32];
    uint64_t at_ns;
};

struct fixture {
    io_thread_t io;
    presence_t *presence;
    relay_t *relay;
    pthread_mutex_t lock;
    /* the fake device session */
    int write_rc;
    unsigned writes, bad_writes;
    uint32_t relay_ids[SEEN_MAX];
    char last_frame_from[130], last_frame_to[66], last_frame_type[66];
    /* answers seen by the senders */
    unsigned answers;
    struct answer_seen seen[SEEN_MAX];
};

static int fake_write(void *arg, uint32_t slot, uint64_t serial, const uint8_t *frame, size_t len)
{
    struct fixture *fx = arg;
    uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_parser parser;
    const struct iotp_frame *f = NULL;
    size_t used = 0;
    /* On the io thread: no cmocka assertion here (it would jump to the test's thread). */
    bool good = slot == SLOT && serial == SERIAL &&
                iotp_parser_init(&parser, buf, sizeof(buf), 0, 0) == 0 &&
                iotp_parser_feed(&parser, frame, len, &used, &f, NULL) == 1;
    pthread_mutex_lock(&fx->lock);
    int rc = fx->write_rc;
    if (!good)
        fx->bad_writes++;
    else if (rc == 0 && fx->writes < SEEN_MAX) {
        fx->relay_ids[fx->writes++] = f->id;
        strcpy(fx->last_frame_from, f->from);
        strcpy(fx->last_frame_to, f->to);
        strcpy(fx->last_frame_type, f->type);
    }
    pthread_mutex_unlock(&fx->lock);
    return rc;
}

static void on_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    struct fixture *fx = a->origin.cookie;
    (void)loop_data;
    pthread_mutex_lock(&fx->lock);
    if (fx->answers < SEEN_MAX) {
        struct answer_seen *s = &fx->seen[fx->answers++];
        s->outcome = a->outcome;
        s->id = a->origin.id;
        snprintf(s->why, sizeof(s->why), "%s", a->why);
        snprintf(s->arg0, sizeof(s->arg0), "%s",
                 a->nargs ? relay_arg(a->args, a->args_len, 0, a->nargs) : "");
        s->at_ns = uv_hrtime();
    }
    pthread_mutex_unlock(&fx->lock);
    free(a);
}

static int start_on_thread(io_thread_t *io, void *arg)
{
    struct fixture *fx = arg;
    struct relay_port port = {.arg = fx, .write = fake_write};
    return relay_thread_start(relay_thread(fx->relay, io->index), &port);
}

static int stop_on_thread(io_thread_t *io, void *arg)
{
    struct fixture *fx = arg;
    relay_thread_stop(relay_thread(fx->relay, io->index));
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned count(struct fixture *fx, const unsigned *field)
{
    pthread_mutex_lock(&fx->lock);
    unsigned n = *field;
    pthread_mutex_unlock(&fx->lock);
    return n;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    pthread_mutex_init(&fx->lock, NULL);
    assert_int_equal(io_thread_start(&fx->io, 0, 256), 0);
    assert_int_equal(presence_new(&fx->presence), IOT_OK);
    struct presence_entry e = {
        .device_id = "dev1", .io_index = 0, .session = (void *)(uintptr_t)SLOT, .serial = SERIAL};
    struct presence_entry previous;
    assert_int_equal(presence_claim(fx->presence, &e, true, &previous, NULL), 0);
    struct relay_options o = {
        .presence = fx->presence, .io = &fx->io, .io_count = 1, .max_in_flight = 2};
    assert_int_equal(relay_start(&fx->relay, &o), IOT_OK);
    assert_int_equal(io_thread_call(&fx->io, start_on_thread, fx), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(count(fx, &fx->bad_writes), 0);
    io_thread_call(&fx->io, stop_on_thread, fx);
    io_thread_stop(&fx->io);
    relay_stop(fx->relay);
    presence_free(fx->presence);
    pthread_mutex_destroy(&fx->lock);
    free(fx);
    return 0;
}

/* Wait up to ms for *field to reach n. */
static bool wait_count(struct fixture *fx, const unsigned *field, unsigned n, unsigned ms)
{
    for (unsigned waited = 0; count(fx, field) < n && waited < ms; waited++)
        sleep_ms(1);
    return count(fx, field) >= n;
}

/* A request from alice@acme (her id: id) to device, from the test thread. */
static enum relay_outcome send_request(struct fixture *fx, const char *device, uint32_t id,
                                       uint32_t timeout_ms, uint64_t *started_ns)
{
    struct relay_origin origin = {
        .inbox = &fx->io.inbox, .on_answer = on_answer, .cookie = fx, .id = id};
    const char *args[] = {"C"};
    uint64_t now = uv_hrtime();
    struct relay_request *req = relay_request_new(&origin, "alice@acme", "acme", device,
                                                  "read_temp", 1, args, timeout_ms, NULL, now);
    assert_non_null(req);
    if (started_ns)
        *started_ns = now;
    enum relay_outcome outcome = relay_deliver(fx->relay, NULL, -1, req);
    if (outcome != RELAY_OK)
        free(req);
    return outcome;
}

struct device_call {
    struct fixture *fx;
    uint32_t id;
    bool found;
    uint32_t in_flight;
    size_t waiting;
    struct request_row rows[4];
    size_t nrows;
};

static int answer_on_thread(io_thread_t *io, void *arg)
{
    struct device_call *c = arg;
    const char *args[] = {"21.5", "C"};
    c->found = relay_device_answer(relay_thread(c->fx->relay, io->index), SLOT, SERIAL, c->id,
                                   RELAY_OK, 2, args);
    return 0;
}

static int close_on_thread(io_thread_t *io, void *arg)
{
    struct device_call *c = arg;
    relay_device_closed(relay_thread(c->fx->relay, io->index), SLOT, SERIAL);
    return 0;
}

static int inspect_on_thread(io_thread_t *io, void *arg)
{
    struct device_call *c = arg;
    relay_thread_t *rt = relay_thread(c->fx->relay, io->index);
    c->in_flight = relay_in_flight(rt, SLOT, SERIAL);
    c->waiting = relay_waiting(rt);
    c->nrows = relay_request_rows(rt, c->rows, 4, uv_hrtime());
    return 0;
}

/* The device gets the request under iotd's own id; its OK goes back under the sender's id. */
static void test_answered(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(send_request(fx, "dev1", 41, 5000, NULL), RELAY_OK);
    assert_true(wait_count(fx, &fx->writes, 1, 2000));
    assert_string_equal(fx->last_frame_from, "alice@acme");
    assert_string_equal(fx->last_frame_to, "dev1");
    assert_string_equal(fx->last_frame_type, "read_temp");
    assert_int_not_equal(fx->relay_ids[0], 0);

    struct device_call c = {.fx = fx};
    io_thread_call(&fx->io, inspect_on_thread, &c);
    assert_int_equal(c.in_flight, 1);
    assert_int_equal(c.waiting, 1);
    assert_int_equal(c.nrows, 1);
    assert_string_equal(c.rows[0].origin, "alice@acme");
    assert_string_equal(c.rows[0].device, "dev1");
    assert_true(c.rows[0].deadline_ms <= 5000);

    c.id = fx->relay_ids[0];
    io_thread_call(&fx->io, answer_on_thread, &c);
    assert_true(c.found);
    assert_true(wait_count(fx, &fx->answers, 1, 2000));
    assert_int_equal(fx->seen[0].outcome, RELAY_OK);
    assert_int_equal(fx->seen[0].id, 41);
    assert_string_equal(fx->seen[0].arg0, "21.5");

    /* Answered once: the same id again is a late answer, and nothing waits any more. */
    io_thread_call(&fx->io, answer_on_thread, &c);
    assert_false(c.found);
    io_thread_call(&fx->io, inspect_on_thread, &c);
    assert_int_equal(c.in_flight, 0);
    assert_int_equal(c.waiting, 0);
}

/* A request with no answer times out at its deadline, not before; a late answer finds none. */
static void test_timeout_at_deadline(void **state)
{
    struct fixture *fx = *state;
    uint64_t started_ns = 0;
    assert_int_equal(send_request(fx, "dev1", 7, 150, &started_ns), RELAY_OK);
    assert_true(wait_count(fx, &fx->writes, 1, 2000));
    sleep_ms(60);
    assert_int_equal(count(fx, &fx->answers), 0); /* not before its deadline */
    assert_true(wait_count(fx, &fx->answers, 1, 3000));
    assert_int_equal(fx->seen[0].outcome, RELAY_TIMEOUT);
    assert_int_equal(fx->seen[0].id, 7);
    assert_true(fx->seen[0].at_ns - started_ns >= 150 * 1000000ull);

    struct device_call c = {.fx = fx, .id = fx->relay_ids[0]};
    io_thread_call(&fx->io, answer_on_thread, &c);
    assert_false(c.found);
}

/* A device session that closes fails what waits at it at once, offline. */
static void test_closed_fails_offline(void **state)
{
    struct fixture *fx = *state;
    uint64_t started_ns = 0;
    assert_int_equal(send_request(fx, "dev1", 1, 5000, &started_ns), RELAY_OK);
    assert_int_equal(send_request(fx, "dev1", 2, 5000, NULL), RELAY_OK);
    assert_true(wait_count(fx, &fx->writes, 2, 2000));
    assert_int_not_equal(fx->relay_ids[0], fx->relay_ids[1]);

    struct device_call c = {.fx = fx};
    io_thread_call(&fx->io, close_on_thread, &c);
    assert_true(wait_count(fx, &fx->answers, 2, 2000));
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(fx->seen[i].outcome, RELAY_OFFLINE);
        assert_string_equal(fx->seen[i].why, "device disconnected");
        assert_true(fx->seen[i].at_ns - started_ns < 4000 * 1000000ull);
    }
    io_thread_call(&fx->io, inspect_on_thread, &c);
    assert_int_equal(c.waiting, 0);
}

/* Past max_in_flight (2) the device's thread refuses busy; a session gone from under the port
 * is offline; a device presence does not know is offline at once, on the caller's thread. */
static void test_busy_and_offline(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(send_request(fx, "dev1", 1, 5000, NULL), RELAY_OK);
    assert_int_equal(send_request(fx, "dev1", 2, 5000, NULL), RELAY_OK);
    assert_int_equal(send_request(fx, "dev1", 3, 5000, NULL), RELAY_OK);
    assert_true(wait_count(fx, &fx->answers, 1, 2000));
    assert_int_equal(fx->seen[0].outcome, RELAY_BUSY);
    assert_int_equal(fx->seen[0].id, 3);
    assert_int_equal(count(fx, &fx->writes), 2);

    struct device_call c = {.fx = fx};
    io_thread_call(&fx->io, close_on_thread, &c);
    assert_true(wait_count(fx, &fx->answers, 3, 2000));

    pthread_mutex_lock(&fx->lock);
    fx->write_rc = IOT_ENOTFOUND; /* the session went away before the request got there */
    pthread_mutex_unlock(&fx->lock);
    assert_int_equal(send_request(fx, "dev1", 4, 5000, NULL), RELAY_OK);
    assert_true(wait_count(fx, &fx->answers, 4, 2000));
    assert_int_equal(fx->seen[3].outcome, RELAY_OFFLINE);
    assert_int_equal(fx->seen[3].id, 4);

    assert_int_equal(send_request(fx, "nosuch", 5, 5000, NULL), RELAY_OFFLINE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_at_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_fails_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_and_offline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
