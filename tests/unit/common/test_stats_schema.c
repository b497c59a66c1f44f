/*
 * test_stats_schema.c - the table of stats sample fields: every row filled in (key, help, a
 * kind that fits its value), keys unique within a section, sections that chain up to the
 * sample, and the lookups and names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stats_schema.h"

#include <string.h>

static void test_every_field_is_described(void **state)
{
    (void)state;
    for (int f = 0; f < STATS_FIELD_COUNT; f++) {
        const struct stats_field_info *info = stats_field_info(f);
        assert_non_null(info);
        assert_non_null(info->key);
        assert_true(info->key[0] != '\0');
        assert_string_equal(stats_key(f), info->key);
        assert_true((unsigned)info->section < STATS_SECTION_COUNT);
        /* A help sentence: starts with a capital or a literal value, ends with a full stop. */
        assert_non_null(info->help);
        assert_true(strlen(info->help) > 8);
        assert_int_equal(info->help[strlen(info->help) - 1], '.');
        assert_string_not_equal(stats_kind_name(info->kind), "?");
        assert_string_not_equal(stats_unit_name(info->unit), "?");
        /* Counters and gauges are numbers (or maps of numbers); text is always a label. */
        if (info->value == STATS_TEXT)
            assert_int_equal(info->kind, STATS_LABEL);
        if (info->kind == STATS_LABEL)
            assert_int_equal(info->unit, STATS_UNIT_NONE);
        /* A map names what its keys are (a metrics page makes it a label); nothing else does. */
        if (info->value == STATS_MAP) {
            assert_non_null(info->map_label);
            assert_true(info->kind != STATS_LABEL);
        } else {
            assert_null(info->map_label);
        }
    }
    assert_null(stats_field_info(STATS_FIELD_COUNT));
    assert_string_equal(stats_key(STATS_FIELD_COUNT), "");
}

static void test_keys_unique_in_each_section(void **state)
{
    (void)state;
    for (int a = 0; a < STATS_FIELD_COUNT; a++) {
        const struct stats_field_info *x = stats_field_info(a);
        for (int b = a + 1; b < STATS_FIELD_COUNT; b++) {
            const struct stats_field_info *y = stats_field_info(b);
            if (x->section == y->section && strcmp(x->key, y->key) == 0)
                fail_msg("fields %d and %d share the key \"%s\" in one section", a, b, x->key);
        }
        /* ...nor clash with a section nested in the same parent */
        for (int s = 1; s < STATS_SECTION_COUNT; s++) {
            const struct stats_section_info *sec = stats_section_info(s);
            if (sec->parent == x->section && strcmp(sec->key, x->key) == 0)
                fail_msg("field \"%s\" has the key of a section beside it", x->key);
        }
        assert_int_equal(stats_field_lookup(x->section, x->key), a);
    }
    assert_int_equal(stats_field_lookup(STATS_SECTION_SAMPLE, "no_such_key"), STATS_FIELD_COUNT);
    assert_int_equal(stats_field_lookup(STATS_SECTION_SAMPLE, NULL), STATS_FIELD_COUNT);
    /* the same key in two sections is two fields */
    assert_int_equal(stats_field_lookup(STATS_SECTION_THREADS, "frames_in"),
                     STATS_THREAD_FRAMES_IN);
    assert_int_equal(stats_field_lookup(STATS_SECTION_SESSION_ROWS, "frames_in"),
                     STATS_SESSION_FRAMES_IN);
}

static void test_sections_chain_to_the_sample(void **state)
{
    (void)state;
    assert_null(stats_section_key(STATS_SECTION_SAMPLE));
    assert_null(stats_section_info(STATS_SECTION_COUNT));
    for (int s = 0; s < STATS_SECTION_COUNT; s++) {
        const struct stats_section_info *info = stats_section_info(s);
        assert_non_null(info->help);
        assert_int_equal(info->help[strlen(info->help) - 1], '.');
        if (s == STATS_SECTION_SAMPLE)
            continue;
        assert_non_null(info->key);
        assert_string_equal(stats_section_key(s), info->key);
        /* the parent is an object (rows hold fields, not sections) and the chain ends */
        int steps = 0;
        for (int p = s; p != STATS_SECTION_SAMPLE; p = stats_section_info(p)->parent) {
            assert_true(++steps < STATS_SECTION_COUNT);
            assert_int_equal(stats_section_info(stats_section_info(p)->parent)->shape,
                             STATS_OBJECT);
        }
        for (int t = s + 1; t < STATS_SECTION_COUNT; t++) {
            const struct stats_section_info *other = stats_section_info(t);
            if (other->parent == info->parent)
                assert_string_not_equal(other->key, info->key);
        }
    }
    /* every section holds at least one field */
    for (int s = 0; s < STATS_SECTION_COUNT; s++) {
        int n = 0;
        for (int f = 0; f < STATS_FIELD_COUNT; f++)
            n += stats_field_info(f)->section == (enum stats_section)s;
        assert_true(n > 0);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(stats_kind_name(STATS_COUNTER), "counter");
    assert_string_equal(stats_kind_name(STATS_GAUGE), "gauge");
    assert_string_equal(stats_kind_name(STATS_LABEL), "label");
    assert_string_equal(stats_unit_name(STATS_UNIT_NONE), "");
    assert_string_equal(stats_unit_name(STATS_UNIT_BYTES), "bytes");
    assert_string_equal(stats_unit_name(STATS_UNIT_SECONDS), "seconds");
    assert_string_equal(stats_unit_name((enum stats_unit)99), "?");
    assert_string_equal(stats_kind_name((enum stats_kind)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_is_described),
        cmocka_unit_test(test_keys_unique_in_each_section),
        cmocka_unit_test(test_sections_chain_to_the_sample),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
