/* Unit tests of the fifo (iotd/loop/fifo.h): order, the bound, the counters, the wake-up hint,
 * and taking everything at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "loop/fifo.h"

struct item {
    struct fifo_link link;
    int value;
};

static int value_of(struct fifo_link *link)
{
    return ((struct item *)((char *)link - offsetof(struct item, link)))->value;
}

static void first_in_first_out_within_bound(void **state)
{
    (void)state;
    fifo_t q;
    struct item items[4] = {{.value = 0}, {.value = 1}, {.value = 2}, {.value = 3}};
    fifo_init(&q, 3);
    assert_null(fifo_pop(&q));
    assert_int_equal(fifo_push(&q, &items[0].link), 1); /* was empty: wake the consumer */
    assert_int_equal(fifo_push(&q, &items[1].link), 0);
    assert_int_equal(fifo_push(&q, &items[2].link), 0);
    assert_true(fifo_full(&q));
    assert_int_equal(fifo_push(&q, &items[3].link), -1); /* refused, not taken */
    assert_int_equal(q.rejected, 1);
    assert_int_equal(value_of(fifo_pop(&q)), 0);
    assert_int_equal(fifo_push(&q, &items[3].link), 0);
    assert_int_equal(value_of(fifo_pop(&q)), 1);
    assert_int_equal(value_of(fifo_pop(&q)), 2);
    assert_int_equal(value_of(fifo_pop(&q)), 3);
    assert_null(fifo_pop(&q));
    assert_int_equal(q.depth, 0);
    assert_int_equal(q.high_water, 3);
    assert_int_equal(q.enqueued, 4);
    assert_int_equal(q.dequeued, 4);
    assert_int_equal(fifo_push(&q, &items[0].link), 1); /* empty again */
}

static void take_all_empties_in_order(void **state)
{
    (void)state;
    fifo_t q;
    struct item items[5];
    fifo_init(&q, 10);
    assert_null(fifo_take_all(&q));
    for (int i = 0; i < 5; i++) {
        items[i].value = i;
        fifo_push(&q, &items[i].link);
    }
    struct fifo_link *all = fifo_take_all(&q);
    assert_int_equal(q.depth, 0);
    assert_null(fifo_pop(&q));
    assert_int_equal(q.dequeued, 5);
    int expect = 0;
    for (struct fifo_link *l = all; l; l = l->next)
        assert_int_equal(value_of(l), expect++);
    assert_int_equal(expect, 5);
    assert_int_equal(fifo_push(&q, &items[0].link), 1);
    assert_int_equal(value_of(fifo_pop(&q)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_in_first_out_within_bound),
        cmocka_unit_test(take_all_empties_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
