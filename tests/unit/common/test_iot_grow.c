/*
 * test_iot_grow.c - iot_grow and iot_reserve: doubling from the first capacity, the array left
 * intact when the size cannot be had.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iot_grow.h"

static void grow_doubles_from_first_cap(void **state)
{
    (void)state;
    int *items = NULL;
    size_t cap = 0;
    for (size_t n = 0; n < 100; n++) {
        int *grown = iot_grow(items, n, &cap, 4, sizeof(*items));
        assert_non_null(grown);
        items = grown;
        items[n] = (int)n;
        assert_true(cap > n);
    }
    assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
    for (size_t n = 0; n < 100; n++)
        assert_int_equal(items[n], (int)n);
    free(items);
}

static void grow_keeps_items_while_room(void **state)
{
    (void)state;
    size_t cap = 0;
    char *items = iot_grow(NULL, 0, &cap, 16, 1);
    assert_non_null(items);
    assert_int_equal(cap, 16);
    assert_ptr_equal(iot_grow(items, 15, &cap, 16, 1), items);
    assert_int_equal(cap, 16);
    free(items);
}

static void reserve_doubles_until_need_fits(void **state)
{
    (void)state;
    size_t cap = 0;
    char *text = iot_reserve(NULL, 100, &cap, 64, 1);
    assert_non_null(text);
    assert_int_equal(cap, 128);
    assert_ptr_equal(iot_reserve(text, 128, &cap, 64, 1), text);
    text = iot_reserve(text, 600, &cap, 64, 1);
    assert_non_null(text);
    assert_int_equal(cap, 1024); /* 256, 512, 1024 */
    free(text);
}

static void reserve_refuses_overflow(void **state)
{
    (void)state;
    size_t cap = 8;
    char *items = malloc(8 * sizeof(uint64_t));
    assert_non_null(items);
    assert_null(iot_reserve(items, SIZE_MAX / 4, &cap, 8, sizeof(uint64_t)));
    assert_int_equal(cap, 8); /* untouched, items still ours */
    assert_null(iot_reserve(items, SIZE_MAX, &cap, 8, 1));
    assert_int_equal(cap, 8);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grow_doubles_from_first_cap),
        cmocka_unit_test(grow_keeps_items_while_room),
        cmocka_unit_test(reserve_doubles_until_need_fits),
        cmocka_unit_test(reserve_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
