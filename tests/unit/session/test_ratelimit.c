/*
 * test_ratelimit.c - the authentication policy (ratelimit.h): failures of an id at one address
 * block that pair only; an address failing with many ids is blocked at ten times the limit;
 * an id failing from many addresses is blocked at twenty times the limit, except at the
 * addresses it last authenticated from; a success forgets its pair's failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "session/ratelimit.h"

#include <stdio.h>

#define LIMIT 3
#define NOW   1000000

static ratelimit_t *new_limiter(void)
{
    ratelimit_t *rl = NULL;
    struct ratelimit_options o = {0};
    assert_int_equal(ratelimit_new(&rl, &o), 0);
    return rl;
}

static bool blocked(ratelimit_t *rl, const char *id, const char *peer)
{
    struct ratelimit_auth a = {'d', id, peer, LIMIT};
    uint32_t retry = 0;
    bool b = ratelimit_auth_blocked(rl, &a, NOW, &retry);
    if (b)
        assert_true(retry >= 1);
    return b;
}

static void fail_n(ratelimit_t *rl, const char *id, const char *peer, int n)
{
    struct ratelimit_auth a = {'d', id, peer, LIMIT};
    for (int i = 0; i < n; i++)
        assert_true(ratelimit_auth_failed(rl, &a, NOW) >= 1);
}

static void another_address_does_not_lock_a_device_out(void **state)
{
    (void)state;
    ratelimit_t *rl = new_limiter();
    fail_n(rl, "dev1", "10.0.0.2:4000", LIMIT);
    assert_true(blocked(rl, "dev1", "10.0.0.2:4001")); /* the port does not matter */
    assert_false(blocked(rl, "dev1", "10.0.0.1:5000"));
    assert_false(blocked(rl, "dev2", "10.0.0.2:4002"));
    /* Users are counted apart from devices. */
    struct ratelimit_auth user = {'u', "dev1", "10.0.0.2:4000", LIMIT};
    uint32_t retry;
    assert_false(ratelimit_auth_blocked(rl, &user, NOW, &retry));
    ratelimit_free(rl);
}

static void an_address_trying_many_ids_is_blocked(void **state)
{
    (void)state;
    ratelimit_t *rl = new_limiter();
    char id[32];
    for (int i = 0; i < LIMIT * RATELIMIT_ADDRESS_FACTOR; i++) {
        snprintf(id, sizeof(id), "ghost%d", i);
        assert_false(blocked(rl, "fresh", "10.0.0.9:1"));
        fail_n(rl, id, "10.0.0.9:1", 1);
    }
    assert_true(blocked(rl, "fresh", "10.0.0.9:1"));
    assert_false(blocked(rl, "fresh", "10.0.0.8:1"));
    ratelimit_free(rl);
}

static void an_id_failing_everywhere_is_blocked_but_at_its_usual_address(void **state)
{
    (void)state;
    ratelimit_t *rl = new_limiter();
    struct ratelimit_auth good = {'d', "dev1", "10.0.0.1:7", LIMIT};
    ratelimit_auth_succeeded(rl, &good);
    char peer[32];
    for (int i = 0; i < RATELIMIT_ID_FACTOR; i++) {
        assert_false(blocked(rl, "dev1", "10.0.1.250:1"));
        snprintf(peer, sizeof(peer), "10.0.1.%d:1", i);
        fail_n(rl, "dev1", peer, LIMIT);
    }
    assert_true(blocked(rl, "dev1", "10.0.1.250:1"));
    assert_false(blocked(rl, "dev1", "10.0.0.1:8"));
    ratelimit_free(rl);
}

static void a_success_forgets_its_pair(void **state)
{
    (void)state;
    ratelimit_t *rl = new_limiter();
    struct ratelimit_auth a = {'d', "dev1", "10.0.0.1:7", LIMIT};
    fail_n(rl, "dev1", "10.0.0.1:7", LIMIT - 1);
    ratelimit_auth_succeeded(rl, &a);
    fail_n(rl, "dev1", "10.0.0.1:7", LIMIT - 1);
    assert_false(blocked(rl, "dev1", "10.0.0.1:7"));
    fail_n(rl, "dev1", "10.0.0.1:7", 1);
    assert_true(blocked(rl, "dev1", "10.0.0.1:7"));
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(another_address_does_not_lock_a_device_out),
        cmocka_unit_test(an_address_trying_many_ids_is_blocked),
        cmocka_unit_test(an_id_failing_everywhere_is_blocked_but_at_its_usual_address),
        cmocka_unit_test(a_success_forgets_its_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
