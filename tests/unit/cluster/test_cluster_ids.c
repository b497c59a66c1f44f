/*
 * test_cluster_ids.c - the table of requests to other nodes by id (iotd/cluster/cluster_ids.c):
 * against a plain array as the model, through growth, deletions in every order (backward
 * shift), ids that wrap and ids that collide in the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster/cluster_ids.h"
#include "iot_error.h"

#include <stdlib.h>

#define N 5000

static void *value_of(uint32_t id)
{
    return (void *)(uintptr_t)(id * 2u + 1u);
}

static void test_put_get_take(void **state)
{
    (void)state;
    struct cluster_ids t = {0};
    assert_null(cluster_ids_get(&t, 1));
    assert_null(cluster_ids_take(&t, 1));
    assert_int_equal(cluster_ids_put(&t, 0, value_of(0)), IOT_EINVAL);
    for (uint32_t id = 1; id <= N; id++)
        assert_int_equal(cluster_ids_put(&t, id, value_of(id)), IOT_OK);
    assert_int_equal(t.count, N);
    for (uint32_t id = 1; id <= N; id++)
        assert_ptr_equal(cluster_ids_get(&t, id), value_of(id));
    assert_null(cluster_ids_get(&t, N + 1));
    /* Every third one out, then the others: each lookup still finds what is left. */
    for (uint32_t id = 3; id <= N; id += 3)
        assert_ptr_equal(cluster_ids_take(&t, id), value_of(id));
    for (uint32_t id = 1; id <= N; id++)
        if (id % 3 == 0)
            assert_null(cluster_ids_get(&t, id));
        else
            assert_ptr_equal(cluster_ids_get(&t, id), value_of(id));
    for (uint32_t id = N; id >= 1; id--)
        if (id % 3 != 0)
            assert_ptr_equal(cluster_ids_take(&t, id), value_of(id));
    assert_int_equal(t.count, 0);
    for (uint32_t id = 1; id <= N; id++)
        assert_null(cluster_ids_get(&t, id));
    cluster_ids_free(&t);
}

/* A sliding window of ids in flight, as a node's requests are (taken in a shuffled order),
 * across the wrap of the 32-bit id, checked against the model after every step. */
static void test_window_against_model(void **state)
{
    (void)state;
    struct cluster_ids t = {0};
    enum { WINDOW = 300, STEPS = 20000 };
    uint32_t live[WINDOW];
    size_t n = 0;
    uint32_t next = UINT32_MAX - 5000;
    unsigned seed = 7;
    for (int step = 0; step < STEPS; step++) {
        if (n < WINDOW && (n == 0 || rand_r(&seed) % 3 != 0)) {
            if (++next == 0)
                next = 1;
            assert_int_equal(cluster_ids_put(&t, next, value_of(next)), IOT_OK);
            live[n++] = next;
        } else {
            size_t k = (size_t)rand_r(&seed) % n;
            assert_ptr_equal(cluster_ids_take(&t, live[k]), value_of(live[k]));
            assert_null(cluster_ids_get(&t, live[k]));
            live[k] = live[--n];
        }
        assert_int_equal(t.count, n);
        if (step % 97 == 0)
            for (size_t k = 0; k < n; k++)
                assert_ptr_equal(cluster_ids_get(&t, live[k]), value_of(live[k]));
    }
    assert_true(next < 100000); /* it wrapped */
    cluster_ids_free(&t);
}

/* Ids chosen to share a home slot in a 64-slot table: a run of collisions, then holes made in
 * its middle. */
static void test_collisions(void **state)
{
    (void)state;
    struct cluster_ids t = {0};
    assert_int_equal(cluster_ids_put(&t, 1, value_of(1)), IOT_OK);
    size_t mask = t.mask;
    uint32_t h1 = 1u * 2654435769u;
    size_t home1 = (h1 ^ h1 >> 16) & mask;
    uint32_t same[8] = {1};
    size_t n = 1;
    for (uint32_t id = 2; n < 8 && id < 1000000; id++) {
        uint32_t h = id * 2654435769u;
        if (((h ^ h >> 16) & mask) == home1) {
            assert_int_equal(cluster_ids_put(&t, id, value_of(id)), IOT_OK);
            same[n++] = id;
        }
    }
    assert_int_equal(n, 8);
    assert_int_equal(t.mask, mask); /* no growth: 8 in 64 */
    for (size_t k = 1; k < n; k += 2)
        assert_ptr_equal(cluster_ids_take(&t, same[k]), value_of(same[k]));
    for (size_t k = 0; k < n; k++)
        if (k % 2)
            assert_null(cluster_ids_get(&t, same[k]));
        else
            assert_ptr_equal(cluster_ids_get(&t, same[k]), value_of(same[k]));
    cluster_ids_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_take),
        cmocka_unit_test(test_window_against_model),
        cmocka_unit_test(test_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
