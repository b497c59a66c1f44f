/*
 * test_ctl_page.c - paging arguments and cursors: limits inside 1..CTL_PAGE_MAX with the
 * command's default, cursors of exactly n numbers that read back what was written, and
 * everything else refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_commands.h"
#include "ctl_page.h"
#include "iot_error.h"

static void limits(void **state)
{
    (void)state;
    char err[128];
    struct ctl_page page;
    cJSON *args = cJSON_CreateObject();
    assert_int_equal(ctl_page_args(args, 50, &page, err, sizeof(err)), IOT_OK);
    assert_int_equal(page.limit, 50);
    assert_null(page.after);
    static const struct {
        double limit;
        int rc;
    } cases[] = {{1, IOT_OK},
                 {CTL_PAGE_MAX, IOT_OK},
                 {0, IOT_EINVAL},
                 {-3, IOT_EINVAL},
                 {CTL_PAGE_MAX + 1, IOT_EINVAL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON_DeleteItemFromObject(args, "limit");
        cJSON_AddNumberToObject(args, "limit", cases[i].limit);
        err[0] = '\0';
        assert_int_equal(ctl_page_args(args, 50, &page, err, sizeof(err)), cases[i].rc);
        if (cases[i].rc == IOT_OK)
            assert_int_equal(page.limit, (unsigned)cases[i].limit);
        else
            assert_non_null(strstr(err, "between 1 and 10000"));
    }
    cJSON_AddStringToObject(args, "after", "12.3");
    cJSON_DeleteItemFromObject(args, "limit");
    assert_int_equal(ctl_page_args(args, 50, &page, err, sizeof(err)), IOT_OK);
    assert_string_equal(page.after, "12.3");
    cJSON_Delete(args);
}

static void cursors_round_trip(void **state)
{
    (void)state;
    const unsigned long long v[3] = {1733580000123ULL, 0, 9223372036854775807ULL};
    unsigned long long back[3];
    char text[80];
    ctl_cursor_format(text, sizeof(text), v, 3);
    assert_string_equal(text, "1733580000123.0.9223372036854775807");
    assert_true(ctl_cursor_parse(text, back, 3));
    assert_memory_equal(v, back, sizeof(v));
    assert_true(ctl_cursor_parse("42", back, 1));
    assert_int_equal(back[0], 42);
}

static void bad_cursors(void **state)
{
    (void)state;
    unsigned long long v[3];
    const char *bad[] = {"",
                         "1.2",
                         "1.2.3.4",
                         "a.b.c",
                         "1..2",
                         "1.2.",
                         ".1.2",
                         "-1.2.3",
                         "+1.2.3",
                         "1.2.3 ",
                         "18446744073709551616.0.0",
                         "1,2,3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(ctl_cursor_parse(bad[i], v, 3));
    assert_false(ctl_cursor_parse(NULL, v, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limits),
        cmocka_unit_test(cursors_round_trip),
        cmocka_unit_test(bad_cursors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
