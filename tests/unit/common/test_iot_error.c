/*
 * test_iot_error.c - the error vocabulary: every code's name parses back to the code, and the
 * exit statuses are the ones iotctl(8) documents (scripts depend on them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iot_error.h"

#include <string.h>

static void test_name_round_trip(void **state)
{
    for (int code = 0; code > -IOT_ERROR_COUNT; code--) {
        const char *name = iot_error_name(code);
        assert_non_null(name);
        assert_int_equal(iot_error_from_name(name), code);
        assert_non_null(iot_strerror(code));
        assert_true(strlen(iot_strerror(code)) > 0);
    }
}

static void test_names_unique(void **state)
{
    for (int a = 0; a > -IOT_ERROR_COUNT; a--)
        for (int b = a - 1; b > -IOT_ERROR_COUNT; b--)
            assert_string_not_equal(iot_error_name(a), iot_error_name(b));
}

static void test_unknown_codes(void **state)
{
    assert_string_equal(iot_error_name(1), "internal");
    assert_string_equal(iot_error_name(-IOT_ERROR_COUNT), "internal");
    assert_int_equal(iot_error_from_name("no_such_code"), IOT_EINTERNAL);
    assert_int_equal(iot_error_from_name(NULL), IOT_EINTERNAL);
}

static void test_exit_statuses(void **state)
{
    assert_int_equal(iot_error_exit_status(IOT_OK), 0);
    assert_int_equal(iot_error_exit_status(IOT_EINVAL), 2);
    assert_int_equal(iot_error_exit_status(IOT_ENOTFOUND), 3);
    assert_int_equal(iot_error_exit_status(IOT_EDENIED), 4);
    assert_int_equal(iot_error_exit_status(IOT_EEXIST), 5);
    assert_int_equal(iot_error_exit_status(IOT_EUNREACHABLE), 6);
    assert_int_equal(iot_error_exit_status(IOT_EINUSE), 7);
    assert_int_equal(iot_error_exit_status(IOT_ECROSS), 7);
    assert_int_equal(iot_error_exit_status(IOT_EDB), 8);
    assert_int_equal(iot_error_exit_status(IOT_EBUSY), 8);
    assert_int_equal(iot_error_exit_status(IOT_EINTERNAL), 1);
    assert_int_equal(iot_error_exit_status(IOT_EIO), 1);
    assert_int_equal(iot_error_exit_status(IOT_EOFFLINE), 9);
    assert_int_equal(iot_error_exit_status(IOT_ETIMEOUT), 10);
    assert_int_equal(iot_error_exit_status(IOT_EUNKNOWN_TYPE), 11);
    assert_int_equal(iot_error_exit_status(IOT_EDEVICE), 12);
    assert_int_equal(iot_error_exit_status(-100), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_round_trip),
        cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_exit_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
