/*
 * test_page.c - a query's page of frames: ROWs with the QUERY's id then OK rows=N [next=],
 * read back with the protocol's own parser; the page ends at its limit; a row too long for a
 * frame keeps what fits and ends with truncated=1 (never dropped); an ERROR replaces whatever
 * the page held.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "query/query_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct query_origin who = {.id = 7, .principal = "alice@acme", .tenant = "acme"};

/* The frames of the page, parsed: calls fn for each. Returns how many. */
static size_t frames_of(const struct query_page *p,
                        void (*fn)(const struct iotp_frame *f, size_t i))
{
    static uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_parser parser;
    size_t n = 0, off = 0;
    assert_int_equal(iotp_parser_init(&parser, buf, sizeof(buf), sizeof(buf), 0), 0);
    while (off < p->len) {
        size_t used = 0;
        const struct iotp_frame *f = NULL;
        uint32_t bad = 0;
        int rc = iotp_parser_feed(&parser, p->buf + off, p->len - off, &used, &f, &bad);
        assert_true(rc >= 0);
        off += used;
        if (rc == 1)
            fn(f, n++);
    }
    return n;
}

static void check_rows(const struct iotp_frame *f, size_t i)
{
    assert_string_equal(f->from, "iotd");
    assert_string_equal(f->to, "alice@acme");
    assert_int_equal(f->id, 7);
    if (i < 2) {
        assert_string_equal(f->type, "ROW");
        assert_int_equal(f->nargs, 2);
        assert_string_equal(f->args[0], i == 0 ? "device=dev1" : "device=dev2");
        assert_string_equal(f->args[1], "name=Kitchen thermometer");
    } else {
        assert_string_equal(f->type, "OK");
        assert_int_equal(f->nargs, 2);
        assert_string_equal(f->args[0], "rows=2");
        assert_string_equal(f->args[1], "next=dev2");
    }
}

static void test_rows_then_ok(void **state)
{
    (void)state;
    struct query_page p;
    query_page_init(&p, &who, 2);
    const char *a[] = {"device=dev1", "name=Kitchen thermometer"};
    const char *b[] = {"device=dev2", "name=Kitchen thermometer"};
    assert_true(query_page_row(&p, a, 2));
    assert_true(query_page_row(&p, b, 2));
    assert_false(query_page_row(&p, a, 2)); /* the limit: the page is full */
    assert_true(p.full);
    query_page_ok(&p, "dev2");
    assert_int_equal(p.frames, 3);
    assert_int_equal(frames_of(&p, check_rows), 3);
    query_page_free(&p);
}

static void check_last_ok(const struct iotp_frame *f, size_t i)
{
    (void)i;
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->nargs, 1);
    assert_string_equal(f->args[0], "rows=0");
}

static void test_empty_last_page(void **state)
{
    (void)state;
    struct query_page p;
    query_page_init(&p, &who, 100);
    query_page_ok(&p, NULL);
    assert_int_equal(frames_of(&p, check_last_ok), 1);
    query_page_free(&p);
}

static size_t truncated_args;
static void check_truncated(const struct iotp_frame *f, size_t i)
{
    if (i == 0) {
        assert_string_equal(f->type, "ROW");
        assert_string_equal(f->args[0], "temperature");
        assert_string_equal(f->args[f->nargs - 1], "truncated=1");
        truncated_args = f->nargs;
    } else if (i == 1) {
        assert_string_equal(f->type, "ROW");
        assert_int_equal(f->nargs, IOTP_MAX_ARGS);
        assert_string_equal(f->args[IOTP_MAX_ARGS - 1], "truncated=1");
    }
}

static void test_rows_too_long_are_cut_not_dropped(void **state)
{
    (void)state;
    struct query_page p;
    char *big[8];
    const char *args[8];
    query_page_init(&p, &who, 10);
    args[0] = "temperature";
    for (int i = 1; i < 8; i++) {
        big[i] = malloc(1001);
        memset(big[i], 'v', 1000);
        memcpy(big[i], "f=", 2);
        big[i][1000] = '\0';
        args[i] = big[i];
    }
    assert_true(query_page_row(&p, args, 8)); /* 7 kB of fields: some must go */
    const char *many[40];
    for (int i = 0; i < 40; i++)
        many[i] = "k=v";
    assert_true(query_page_row(&p, many, 40)); /* over the argument count */
    query_page_ok(&p, NULL);
    assert_int_equal(frames_of(&p, check_truncated), 3);
    assert_true(truncated_args > 2 && truncated_args < 8);
    for (int i = 1; i < 8; i++)
        free(big[i]);
    query_page_free(&p);
}

static void check_error(const struct iotp_frame *f, size_t i)
{
    assert_int_equal(i, 0);
    assert_string_equal(f->type, "ERROR");
    assert_string_equal(f->args[0], "code=busy");
    assert_string_equal(f->args[1], "retry=5");
}

static void test_error_replaces_the_page(void **state)
{
    (void)state;
    struct query_page p;
    const char *a[] = {"device=dev1"};
    query_page_init(&p, &who, 10);
    assert_true(query_page_row(&p, a, 1));
    query_page_error(&p, "busy", 5, "the database is unreachable");
    assert_int_equal(p.frames, 1);
    assert_int_equal(p.rows, 0);
    assert_int_equal(frames_of(&p, check_error), 1);
    query_page_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_then_ok),
        cmocka_unit_test(test_empty_last_page),
        cmocka_unit_test(test_rows_too_long_are_cut_not_dropped),
        cmocka_unit_test(test_error_replaces_the_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
