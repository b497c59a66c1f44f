/* Unit tests of the inbox (iotd/loop/inbox.c) and io threads: ordering, bounds, many producers,
 * coalesced wake-ups, and a clean stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "loop/inbox.h"
#include "loop/io_thread.h"

#include <pthread.h>
#include <stdlib.h>

struct counted_msg {
    inbox_msg_t msg;
    unsigned producer;
    unsigned seq;
};

struct sink {
    unsigned received;
    unsigned expected;
    unsigned next_seq[8];
    int out_of_order;
    inbox_t *inbox;
};

static void on_counted(inbox_msg_t *msg, void *loop_data)
{
    struct sink *s = loop_data;
    struct counted_msg *m = container_of(msg, struct counted_msg, msg);
    if (m->seq != s->next_seq[m->producer])
        s->out_of_order++;
    s->next_seq[m->producer] = m->seq + 1;
    s->received++;
    free(m);
    if (s->received == s->expected)
        inbox_close(s->inbox, NULL);
}

static void test_bounded(void **state)
{
    uv_loop_t loop;
    inbox_t inbox;
    struct sink sink = {.expected = 4};
    struct counted_msg *m[5];
    (void)state;
    uv_loop_init(&loop);
    sink.inbox = &inbox;
    assert_int_equal(inbox_init(&inbox, &loop, 4, &sink), 0);
    for (unsigned i = 0; i < 5; i++) {
        m[i] = calloc(1, sizeof(*m[i]));
        m[i]->msg.handle = on_counted;
        m[i]->seq = i;
    }
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(inbox_push(&inbox, &m[i]->msg), 0);
    assert_int_equal(inbox_push(&inbox, &m[4]->msg), IOT_EBUSY);
    free(m[4]);
    size_t depth, high, cap;
    uint64_t enq, deq, rej;
    inbox_stats(&inbox, &depth, &high, &cap, &enq, &deq, &rej);
    assert_int_equal(depth, 4);
    assert_int_equal(high, 4);
    assert_int_equal(rej, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(sink.received, 4);
    assert_int_equal(sink.out_of_order, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct producer_arg {
    inbox_t *inbox;
    unsigned id, count;
};

static void *producer(void *p)
{
    struct producer_arg *a = p;
    for (unsigned i = 0; i < a->count; i++) {
        struct counted_msg *m = calloc(1, sizeof(*m));
        m->msg.handle = on_counted;
        m->producer = a->id;
        m->seq = i;
        /* A small bound forces producers to wait for the consumer many times. */
        assert_int_equal(inbox_push_wait(a->inbox, &m->msg), 0);
    }
    return NULL;
}

static void test_many_producers(void **state)
{
    enum { PRODUCERS = 4, PER_PRODUCER = 20000 };
    uv_loop_t loop;
    inbox_t inbox;
    struct sink sink = {.expected = PRODUCERS * PER_PRODUCER};
    pthread_t threads[PRODUCERS];
    struct producer_arg args[PRODUCERS];
    (void)state;
    uv_loop_init(&loop);
    sink.inbox = &inbox;
    assert_int_equal(inbox_init(&inbox, &loop, 64, &sink), 0);
    for (unsigned i = 0; i < PRODUCERS; i++) {
        args[i] = (struct producer_arg){&inbox, i, PER_PRODUCER};
        pthread_create(&threads[i], NULL, producer, &args[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < PRODUCERS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(sink.received, PRODUCERS * PER_PRODUCER);
    assert_int_equal(sink.out_of_order, 0); /* per-producer order is kept */
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct ping {
    inbox_msg_t msg;
    uv_sem_t done;
    unsigned long thread;
};

static void on_ping(inbox_msg_t *msg, void *loop_data)
{
    struct ping *p = container_of(msg, struct ping, msg);
    (void)loop_data;
    p->thread = (unsigned long)pthread_self();
    uv_sem_post(&p->done);
}

static void test_io_thread(void **state)
{
    io_thread_t t = {0};
    struct ping p = {.msg.handle = on_ping};
    (void)state;
    uv_sem_init(&p.done, 0);
    assert_int_equal(io_thread_start(&t, 3, 128), 0);
    assert_string_equal(t.name, "io3");
    assert_true(atomic_load(&t.os_tid) > 0);
    assert_int_equal(inbox_push(&t.inbox, &p.msg), 0);
    uv_sem_wait(&p.done);
    assert_true(p.thread != (unsigned long)pthread_self()); /* ran on the io thread */
    io_thread_stop(&t);
    uv_sem_destroy(&p.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_many_producers),
        cmocka_unit_test(test_io_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
