/*
 * test_argspec.c - the message argument spec grammar (argspec.h): specs that parse, their
 * canonical form, specs refused with a sentence, and checking wire values against a spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "argspec.h"
#include "iot_error.h"

#include <stdio.h>
#include <string.h>

static void test_good_specs(void **state)
{
    static const struct {
        const char *spec, *canonical;
        unsigned count, required;
    } cases[] = {
        {"", "", 0, 0},
        {NULL, "", 0, 0},
        {"   ", "", 0, 0},
        {"x:int y:int c:str?", "x:int y:int c:str?", 3, 2},
        {"  a:hex   b:bool? ", "a:hex b:bool?", 2, 1},
        {"n:uint f:float", "n:uint f:float", 2, 2},
        {"_private:str? more_2:int?", "_private:str? more_2:int?", 2, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct argspec spec;
        char err[200] = "", out[256];
        int rc = argspec_parse(cases[i].spec, &spec, err, sizeof(err));
        if (rc != IOT_OK)
            fail_msg("'%s' refused: %s", cases[i].spec, err);
        assert_int_equal(spec.count, cases[i].count);
        assert_int_equal(spec.required, cases[i].required);
        assert_int_equal(argspec_format(&spec, out, sizeof(out)), IOT_OK);
        assert_string_equal(out, cases[i].canonical);
    }
}

static void test_bad_specs(void **state)
{
    static const struct {
        const char *spec, *why;
    } cases[] = {
        {"x", "not name:kind"},
        {"x:long", "kinds are int, uint, float, bool, str and hex"},
        {"X:int", "lower case"},
        {"1x:int", "not starting with a digit"},
        {":int", "needs a name"},
        {"a:", "has kind ''"},
        {"a:int? b:int", "optional arguments must come last"},
        {"a:int a:str", "appears twice"},
        {"a:int\tb:int", "control characters"},
        {"abcdefghijabcdefghijabcdefghijabc:int", "1 to 32 characters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct argspec spec;
        char err[200] = "";
        assert_int_equal(argspec_parse(cases[i].spec, &spec, err, sizeof(err)), IOT_EINVAL);
        if (!strstr(err, cases[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].spec, err, cases[i].why);
    }
}

static void test_too_many_args(void **state)
{
    char spec[1024] = "";
    struct argspec parsed;
    char err[200];
    for (int i = 0; i <= ARGSPEC_MAX_ARGS; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "a%d:int ", i);
    assert_int_equal(argspec_parse(spec, &parsed, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "at most"));
    /* exactly the maximum is fine */
    *strrchr(spec, 'a') = '\0';
    assert_int_equal(argspec_parse(spec, &parsed, err, sizeof(err)), IOT_OK);
    assert_int_equal(parsed.count, ARGSPEC_MAX_ARGS);
}

static void test_check_values(void **state)
{
    struct argspec spec;
    char err[200];
    assert_int_equal(
        argspec_parse("x:int n:uint f:float b:bool h:hex s:str?", &spec, err, sizeof(err)), IOT_OK);
    const char *good[] = {"-3", "7", "21.5", "true", "00ff", "text with spaces"};
    assert_int_equal(argspec_check_values(&spec, 6, good, err, sizeof(err)), IOT_OK);
    assert_int_equal(argspec_check_values(&spec, 5, good, err, sizeof(err)), IOT_OK);
    assert_int_equal(argspec_check_values(&spec, 4, good, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "expected 5 to 6 arguments, got 4"));

    const char *bad_uint[] = {"-3", "-7", "1", "0", "00"};
    assert_int_equal(argspec_check_values(&spec, 5, bad_uint, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "argument 2 (n) must be uint"));
    const char *bad_float[] = {"1", "2", "nan", "0", "00"};
    assert_int_equal(argspec_check_values(&spec, 5, bad_float, err, sizeof(err)), IOT_EINVAL);
    const char *bad_hex[] = {"1", "2", "3", "1", "abc"};
    assert_int_equal(argspec_check_values(&spec, 5, bad_hex, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "(h) must be hex"));
}

/* Event fields: key=value, any order, each declared key once, required ones present. */
static void test_check_fields(void **state)
{
    struct argspec spec;
    char err[128];
    (void)state;
    assert_int_equal(argspec_parse("value:float unit:str?", &spec, err, sizeof(err)), 0);
    const char *ok1[] = {"value=21.5", "unit=C"};
    const char *ok2[] = {"unit=C", "value=-3"};
    const char *ok3[] = {"value=1e3"};
    assert_int_equal(argspec_check_fields(&spec, 2, ok1, NULL, err, sizeof(err)), 0);
    assert_int_equal(argspec_check_fields(&spec, 2, ok2, NULL, err, sizeof(err)), 0);
    assert_int_equal(argspec_check_fields(&spec, 1, ok3, NULL, err, sizeof(err)), 0);

    const char *missing[] = {"unit=C"};
    assert_int_equal(argspec_check_fields(&spec, 1, missing, NULL, err, sizeof(err)), IOT_EINVAL);
    assert_string_equal(err, "field value is missing");
    const char *twice[] = {"value=1", "value=2"};
    assert_int_equal(argspec_check_fields(&spec, 2, twice, NULL, err, sizeof(err)), IOT_EINVAL);
    assert_string_equal(err, "field value given twice");
    const char *unknown[] = {"value=1", "colour=red"};
    assert_int_equal(argspec_check_fields(&spec, 2, unknown, NULL, err, sizeof(err)), IOT_EINVAL);
    assert_string_equal(err, "unknown field colour");
    const char *kind[] = {"value=warm"};
    assert_int_equal(argspec_check_fields(&spec, 1, kind, NULL, err, sizeof(err)), IOT_EINVAL);
    assert_string_equal(err, "field value must be float");
    const char *nokey[] = {"=1"};
    assert_int_equal(argspec_check_fields(&spec, 1, nokey, NULL, err, sizeof(err)), IOT_EINVAL);
    const char *noeq[] = {"value"};
    assert_int_equal(argspec_check_fields(&spec, 1, noeq, NULL, err, sizeof(err)), IOT_EINVAL);

    /* Reserved keys (an ALARM's state=, severity=) pass whatever the spec says. */
    const char *const reserved[] = {"state", "severity", NULL};
    const char *alarm[] = {"value=90", "state=raised", "severity=major"};
    assert_int_equal(argspec_check_fields(&spec, 3, alarm, reserved, err, sizeof(err)), 0);
    assert_int_equal(argspec_check_fields(&spec, 3, alarm, NULL, err, sizeof(err)), IOT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_specs),    cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_too_many_args), cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_check_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
