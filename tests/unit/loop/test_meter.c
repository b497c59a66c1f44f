/* Unit tests of the loop meter (iotd/loop/io_thread.c): the pass's clock is shared by the poll's
 * callbacks, but a timer that fires after a long stretch of them reads it afresh (a request's
 * timeout is audited with it: it must never look shorter than the timer that ended it), and
 * the busy time counts the poll's callbacks and what follows them up to the next poll. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loop/io_thread.h"

#define SPIN_NS (20u * 1000000u)

struct fixture {
    uv_loop_t loop;
    struct loop_meter meter;
    uv_async_t async;
    uv_timer_t timer;
    uint64_t async_pass_ns;  /* the pass clock as the poll's callback saw it */
    uint64_t async_again_ns; /* read again in the same callback, after the spin */
    uint64_t timer_pass_ns;  /* the pass clock as the timer saw it */
    uint64_t timer_loop_ms;  /* the loop time that made the timer fire */
};

static void spin(uint64_t ns)
{
    uint64_t until = uv_hrtime() + ns;
    while (uv_hrtime() < until)
        ;
}

static void on_timer(uv_timer_t *timer);

/* In the poll phase: read the pass clock, start a timer due in 1 ms, then work for SPIN_NS,
 * long past its due: it runs at the start of the next iteration. */
static void on_async(uv_async_t *async)
{
    struct fixture *f = async->data;
    f->async_pass_ns = loop_pass_ns(&f->meter);
    assert_int_equal(uv_timer_start(&f->timer, on_timer, 1, 0), 0);
    spin(SPIN_NS);
    f->async_again_ns = loop_pass_ns(&f->meter);
    uv_close((uv_handle_t *)async, NULL);
}

static void on_timer(uv_timer_t *timer)
{
    struct fixture *f = timer->data;
    f->timer_loop_ms = uv_now(&f->loop);
    f->timer_pass_ns = loop_pass_ns(&f->meter);
    uv_close((uv_handle_t *)timer, NULL);
    loop_meter_stop(&f->meter);
}

static void test_timer_after_long_callbacks(void **state)
{
    (void)state;
    struct fixture f = {0};
    assert_int_equal(uv_loop_init(&f.loop), 0);
    loop_meter_start(&f.loop, &f.meter);
    assert_int_equal(uv_async_init(&f.loop, &f.async, on_async), 0);
    assert_int_equal(uv_timer_init(&f.loop, &f.timer), 0);
    f.async.data = f.timer.data = &f;
    assert_int_equal(uv_async_send(&f.async), 0);
    uint64_t began = uv_hrtime();
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    uint64_t ended = uv_hrtime();

    /* Within the poll's callbacks the clock is read once. */
    assert_true(f.async_pass_ns >= began);
    assert_int_equal(f.async_again_ns, f.async_pass_ns);
    /* The timer's clock is not the poll's: it is at least the loop time that fired it. */
    assert_true(f.timer_pass_ns >= f.async_pass_ns + SPIN_NS);
    assert_true(f.timer_pass_ns >= f.timer_loop_ms * 1000000u);
    assert_true(f.timer_pass_ns <= ended);
    /* Busy: at least the spin, at most the whole run; one pass or more counted. */
    uint64_t busy = atomic_load(&f.meter.busy_ns);
    assert_true(busy >= SPIN_NS);
    assert_true(busy <= ended - began);
    assert_true(atomic_load(&f.meter.iterations) >= 1);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_after_long_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
