/* Unit tests of the block pool (iotd/loop/pool.c): zeroed blocks, reuse, chunks given back when
 * entirely free (one kept as a spare), and a block finding its chunk across many chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loop/pool.h"

#include <stdlib.h>
#include <string.h>

static void test_blocks_are_zeroed_and_reused(void **state)
{
    (void)state;
    pool_t p;
    pool_init(&p, 100);
    assert_int_equal(p.block_size, 112); /* rounded to 16 */
    uint8_t *a = pool_alloc(&p);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 16, 0);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(a[i], 0);
    memset(a, 0xab, 100);
    pool_free(&p, a);
    uint8_t *b = pool_alloc(&p);
    assert_ptr_equal(a, b); /* the freed block comes back first */
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(b[i], 0);
    assert_int_equal(p.live, 1);
    pool_free(&p, b);
    pool_free(&p, NULL);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.chunks, 1); /* kept as the spare */
    pool_destroy(&p);
    assert_int_equal(p.chunks, 0);
}

static void test_chunks_given_back(void **state)
{
    (void)state;
    pool_t p;
    pool_init(&p, 500);
    size_t n = (size_t)p.blocks_per_chunk * 5 + 3;
    void **blocks = calloc(n, sizeof(*blocks));
    assert_non_null(blocks);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = pool_alloc(&p);
        assert_non_null(blocks[i]);
        memset(blocks[i], (int)(i & 0xff), 500);
    }
    assert_int_equal(p.chunks, 6);
    /* Every block still holds its own pattern: no two overlap. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(((uint8_t *)blocks[i])[499], (uint8_t)(i & 0xff));
    /* Free every other block: no chunk becomes empty. */
    for (size_t i = 0; i < n; i += 2)
        pool_free(&p, blocks[i]);
    assert_int_equal(p.chunks, 6);
    /* The holes are refilled before any new chunk is taken. */
    for (size_t i = 0; i < n; i += 2)
        assert_non_null(blocks[i] = pool_alloc(&p));
    assert_int_equal(p.chunks, 6);
    /* Free all: every chunk goes back but the one spare. */
    for (size_t i = 0; i < n; i++)
        pool_free(&p, blocks[i]);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.chunks, 1);
    /* The spare serves the next allocation without mapping anything. */
    void *again = pool_alloc(&p);
    assert_non_null(again);
    assert_int_equal(p.chunks, 1);
    pool_free(&p, again);
    pool_destroy(&p);
    assert_int_equal(p.chunks, 0);
    free(blocks);
}

static void test_churn_at_chunk_boundary(void **state)
{
    (void)state;
    pool_t p;
    pool_init(&p, POOL_MAX_BLOCK);
    size_t n = p.blocks_per_chunk;
    void **blocks = calloc(n + 1, sizeof(*blocks));
    assert_non_null(blocks);
    for (size_t i = 0; i < n; i++)
        blocks[i] = pool_alloc(&p);
    for (int round = 0; round < 100; round++) {
        blocks[n] = pool_alloc(&p); /* the first block of a second chunk */
        assert_non_null(blocks[n]);
        pool_free(&p, blocks[n]);
        assert_true(p.chunks <= 2);
    }
    for (size_t i = 0; i < n; i++)
        pool_free(&p, blocks[i]);
    pool_destroy(&p);
    free(blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_are_zeroed_and_reused),
        cmocka_unit_test(test_chunks_given_back),
        cmocka_unit_test(test_churn_at_chunk_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
