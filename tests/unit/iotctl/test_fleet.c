/*
 * test_fleet.c - the CSV records device import reads: plain and quoted fields, doubled
 * quotes, commas inside quotes, empty fields, and the malformed records it refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fleet.h"

static void splits_records(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int n;
        const char *fields[4];
    } cases[] = {
        {"a,b,c", 3, {"a", "b", "c"}},
        {"t-1,\"Kitchen, north\",floor1;floor2", 3, {"t-1", "Kitchen, north", "floor1;floor2"}},
        {"\"Pump \"\"A\"\"\",,x", 3, {"Pump \"A\"", "", "x"}},
        {"", 1, {""}},
        {",", 2, {"", ""}},
        {"\"\"", 1, {""}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128], *fields[4];
        snprintf(line, sizeof(line), "%s", cases[i].line);
        assert_int_equal(iotctl_csv_split(line, fields, 4), cases[i].n);
        for (int f = 0; f < cases[i].n; f++)
            assert_string_equal(fields[f], cases[i].fields[f]);
    }
}

static void refuses_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"a\"b,c", "\"open", "\"closed\"x,y", "a,b,c,d,e"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[64], *fields[4];
        snprintf(line, sizeof(line), "%s", bad[i]);
        assert_int_equal(iotctl_csv_split(line, fields, 4), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splits_records),
        cmocka_unit_test(refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
