/*
 * test_iot_strmap.c - the intrusive string table: find after many inserts (through growth),
 * remove, a walk that frees as it goes, and short chains for keys that share their hash's low
 * bits (what a caller sharding by those bits gives one table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "iot_error.h"
#include "iot_strmap.h"

struct entry {
    struct iot_strmap_node node;
    int value;
    char name[24];
};

#define ENTRIES 5000

static struct entry *entry_of(struct iot_strmap_node *n)
{
    return n ? (struct entry *)((char *)n - offsetof(struct entry, node)) : NULL;
}

static struct entry *fill(iot_strmap_t *m, int count)
{
    struct entry *all = calloc((size_t)count, sizeof(*all));
    assert_non_null(all);
    for (int i = 0; i < count; i++) {
        snprintf(all[i].name, sizeof(all[i].name), "device-%d", i);
        all[i].value = i;
        assert_int_equal(iot_strmap_insert(m, &all[i].node, all[i].name), IOT_OK);
    }
    return all;
}

static void finds_what_was_inserted(void **state)
{
    (void)state;
    iot_strmap_t m = IOT_STRMAP_INIT;
    assert_null(iot_strmap_find(&m, "device-1")); /* empty: nothing allocated yet */
    struct entry *all = fill(&m, ENTRIES);
    assert_int_equal(m.count, ENTRIES);
    assert_true(m.nbuckets >= ENTRIES);
    for (int i = 0; i < ENTRIES; i++) {
        char name[24];
        snprintf(name, sizeof(name), "device-%d", i);
        struct entry *e = entry_of(iot_strmap_find(&m, name));
        assert_non_null(e);
        assert_int_equal(e->value, i);
    }
    assert_null(iot_strmap_find(&m, "device-"));
    assert_null(iot_strmap_find(&m, "device-5000"));
    iot_strmap_free(&m);
    assert_int_equal(m.nbuckets, 0);
    free(all);
}

static void remove_takes_only_that_entry(void **state)
{
    (void)state;
    iot_strmap_t m = IOT_STRMAP_INIT;
    struct entry *all = fill(&m, 100);
    for (int i = 0; i < 100; i += 2)
        iot_strmap_remove(&m, &all[i].node);
    assert_int_equal(m.count, 50);
    for (int i = 0; i < 100; i++) {
        struct entry *e = entry_of(iot_strmap_find(&m, all[i].name));
        if (i % 2)
            assert_ptr_equal(e, &all[i]);
        else
            assert_null(e);
    }
    /* A removed entry may come back. */
    assert_int_equal(iot_strmap_insert(&m, &all[0].node, all[0].name), IOT_OK);
    assert_ptr_equal(entry_of(iot_strmap_find(&m, "device-0")), &all[0]);
    iot_strmap_free(&m);
    free(all);
}

static void walk_visits_each_once_and_may_free(void **state)
{
    (void)state;
    iot_strmap_t m = IOT_STRMAP_INIT;
    struct iot_strmap_walk w = {0};
    assert_null(iot_strmap_walk(&m, &w)); /* an empty table */
    for (int i = 0; i < 300; i++) {
        struct entry *e = calloc(1, sizeof(*e));
        assert_non_null(e);
        snprintf(e->name, sizeof(e->name), "d%d", i);
        e->value = i;
        assert_int_equal(iot_strmap_insert(&m, &e->node, e->name), IOT_OK);
    }
    char seen[300] = {0};
    struct iot_strmap_node *n;
    w = (struct iot_strmap_walk){0};
    while ((n = iot_strmap_walk(&m, &w))) {
        struct entry *e = entry_of(n);
        assert_int_equal(seen[e->value], 0);
        seen[e->value] = 1;
        iot_strmap_remove(&m, n); /* the walk has already looked past it */
        free(e);
    }
    for (int i = 0; i < 300; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(m.count, 0);
    iot_strmap_free(&m);
}

/* Keys a sharded caller puts in one table share the low bits of their hash: their chains must
 * stay short all the same. */
static void chains_short_for_keys_sharing_low_bits(void **state)
{
    (void)state;
    iot_strmap_t m = IOT_STRMAP_INIT;
    struct entry *all = calloc(ENTRIES, sizeof(*all));
    assert_non_null(all);
    int n = 0;
    for (int i = 0; n < ENTRIES; i++) {
        char name[24];
        snprintf(name, sizeof(name), "dev%d", i);
        if (iot_strmap_hash(name) % 64 != 7)
            continue;
        snprintf(all[n].name, sizeof(all[n].name), "%s", name);
        assert_int_equal(iot_strmap_insert(&m, &all[n].node, all[n].name), IOT_OK);
        n++;
    }
    size_t longest = 0, used = 0;
    for (size_t b = 0; b < m.nbuckets; b++) {
        size_t len = 0;
        for (struct iot_strmap_node *node = m.buckets[b]; node; node = node->next)
            len++;
        used += len > 0;
        if (len > longest)
            longest = len;
    }
    assert_true(longest <= 12);
    assert_true(used > m.nbuckets / 3);
    iot_strmap_free(&m);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_what_was_inserted),
        cmocka_unit_test(remove_takes_only_that_entry),
        cmocka_unit_test(walk_visits_each_once_and_may_free),
        cmocka_unit_test(chains_short_for_keys_sharing_low_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
