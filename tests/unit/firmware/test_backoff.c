/*
 * test_backoff.c - the library's reconnect backoff (iotp_backoff.h): the delay stays inside [0,
 * window], the window doubles from 500 ms per failure and stops at 60 s, full jitter reaches both
 * ends, a server's retry= hint is a floor, and 30 s authenticated resets the window (a shorter
 * session does not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iotp/iotp_backoff.h"

static const struct iotp_backoff_params defaults = {500, 60000, 30000};

static void bounds_and_doubling(void **state)
{
    struct iotp_backoff b;
    uint64_t expected = 500;

    (void)state;
    iotp_backoff_init(&b, &defaults);
    for (int k = 0; k < 12; k++) {
        assert_int_equal(iotp_backoff_window_ms(&b), expected);
        /* The largest random value lands on the window, zero on zero. */
        if (k % 2)
            assert_int_equal(iotp_backoff_next_ms(&b, 0, 0, (uint32_t)expected), expected);
        else
            assert_int_equal(iotp_backoff_next_ms(&b, 0, 0, 0), 0);
        expected = expected * 2 > 60000 ? 60000 : expected * 2;
    }
    /* 500 * 2^7 = 64000 > 60000: capped from the 8th failure on, and for ever after. */
    for (int k = 0; k < 100; k++)
        iotp_backoff_next_ms(&b, 0, 0, 12345);
    assert_int_equal(iotp_backoff_window_ms(&b), 60000);
    assert_true(iotp_backoff_next_ms(&b, 0, 0, UINT32_MAX) <= 60000);
}

static void jitter_spread(void **state)
{
    struct iotp_backoff b;
    uint64_t lo = UINT64_MAX, hi = 0;
    uint32_t x = 2463534242u;

    (void)state;
    /* Many first failures with varied randomness: all within [0, 500], spread across it. */
    for (int i = 0; i < 2000; i++) {
        uint64_t d;
        iotp_backoff_init(&b, &defaults);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        d = iotp_backoff_next_ms(&b, 0, 0, x);
        assert_true(d <= 500);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 50);
    assert_true(hi > 450);
}

static void retry_hint_is_a_floor(void **state)
{
    struct iotp_backoff b;
    uint64_t d;

    (void)state;
    iotp_backoff_init(&b, &defaults);
    d = iotp_backoff_next_ms(&b, 0, 7, 0);
    assert_int_equal(d, 7000);
    d = iotp_backoff_next_ms(&b, 0, 7, UINT32_MAX);
    assert_true(d >= 7000 && d <= 7000 + 1000); /* second failure: window 1000 */
    /* The hint applies to one delay only. */
    d = iotp_backoff_next_ms(&b, 0, 0, 3);
    assert_int_equal(d, 3);
}

static void reset_after_stable_period(void **state)
{
    struct iotp_backoff b;

    (void)state;
    iotp_backoff_init(&b, &defaults);
    for (int k = 0; k < 5; k++)
        iotp_backoff_next_ms(&b, 0, 0, 0);
    assert_int_equal(iotp_backoff_window_ms(&b), 16000);

    /* Authenticated for 29.999 s: not stable, the window keeps growing. */
    iotp_backoff_authenticated(&b, 100000);
    iotp_backoff_next_ms(&b, 129999, 0, 0);
    assert_int_equal(iotp_backoff_window_ms(&b), 32000);

    /* Authenticated for 30 s: the next delay comes from the base window again. */
    iotp_backoff_authenticated(&b, 200000);
    assert_true(iotp_backoff_next_ms(&b, 230000, 0, UINT32_MAX) <= 500);
    assert_int_equal(iotp_backoff_window_ms(&b), 1000);

    /* A failure without a new authentication does not reset again. */
    iotp_backoff_next_ms(&b, 999999, 0, 0);
    assert_int_equal(iotp_backoff_window_ms(&b), 2000);
}

static void defaults_and_big_hints(void **state)
{
    struct iotp_backoff b;

    (void)state;
    iotp_backoff_init(&b, NULL);
    assert_int_equal(b.params.base_ms, IOTP_BACKOFF_BASE_MS);
    assert_int_equal(b.params.cap_ms, IOTP_BACKOFF_CAP_MS);
    assert_int_equal(b.params.stable_ms, IOTP_BACKOFF_STABLE_MS);
    /* A hint beyond the limit is the limit, not a wrap-around of 32-bit milliseconds. */
    assert_int_equal(iotp_backoff_next_ms(&b, 0, UINT32_MAX, 0), IOTP_BACKOFF_MAX_HINT_S * 1000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounds_and_doubling),    cmocka_unit_test(jitter_spread),
        cmocka_unit_test(retry_hint_is_a_floor),  cmocka_unit_test(reset_after_stable_period),
        cmocka_unit_test(defaults_and_big_hints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
