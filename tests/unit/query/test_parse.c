/*
 * test_parse.c - a QUERY's arguments against the table of what= (iot-protocol(7), QUERIES):
 * what each what= takes, what it refuses (unknown what= or key, empty or malformed values,
 * several scopes, a missing device=), the defaults, and the cursors of each what= read back as
 * they were written, with malformed ones refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "iotp/iotp.h"
#include "query/query.h"

#include <stdio.h>
#include <string.h>

/* Parse a QUERY whose arguments are args (NULL-terminated). */
static int parse(struct query_request *r, char *why, const char *const *args)
{
    struct iotp_frame f = {.from = "alice@acme", .to = "iotd", .type = "QUERY", .id = 7};
    for (f.nargs = 0; args[f.nargs]; f.nargs++)
        f.args[f.nargs] = args[f.nargs];
    return query_parse(&f, r, why, 160);
}

#define PARSE(r, why, ...) parse(r, why, (const char *const[]){__VA_ARGS__, NULL})

static void test_each_what_and_defaults(void **state)
{
    (void)state;
    struct query_request r;
    char why[160];
    assert_int_equal(PARSE(&r, why, "what=devices"), IOT_OK);
    assert_int_equal(r.what, QUERY_DEVICES);
    assert_int_equal(r.limit, QUERY_LIMIT_DEFAULT);
    assert_int_equal(r.online, -1);
    assert_false(r.has_cursor);
    assert_int_equal(
        PARSE(&r, why, "group=kitchen", "what=devices", "online=1", "match=Thermo", "limit=500"),
        IOT_OK);
    assert_string_equal(r.group, "kitchen");
    assert_int_equal(r.online, 1);
    assert_string_equal(r.match, "Thermo");
    assert_int_equal(r.limit, 500);
    assert_int_equal(PARSE(&r, why, "what=catalogue", "type=thermo"), IOT_OK);
    assert_int_equal(r.what, QUERY_CATALOGUE);
    assert_int_equal(
        PARSE(&r, why, "what=history", "device=dev1", "event=temperature", "since=1", "until=9"),
        IOT_OK);
    assert_int_equal(r.since_ms, 1);
    assert_int_equal(r.until_ms, 9);
    assert_int_equal(PARSE(&r, why, "what=alarms", "state=all", "device=dev1"), IOT_OK);
    assert_string_equal(r.state, "all");
    assert_int_equal(PARSE(&r, why, "what=commands", "limit=1"), IOT_OK);
    assert_int_equal(r.what, QUERY_COMMANDS);
}

static void test_refusals(void **state)
{
    (void)state;
    struct query_request r;
    char why[160];
    assert_int_equal(PARSE(&r, why, "what=nothing"), IOT_EINVAL);
    assert_non_null(strstr(why, "what="));
    assert_int_equal(PARSE(&r, why, "device=dev1"), IOT_EINVAL); /* no what= */
    assert_int_equal(PARSE(&r, why, "what=devices", "colour=red"), IOT_EINVAL);
    assert_string_equal(why, "unknown key colour for what=devices");
    /* A key of another what= is unknown to this one. */
    assert_int_equal(PARSE(&r, why, "what=devices", "event=temperature"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=commands", "state=open"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "device="), IOT_EINVAL);
    assert_string_equal(why, "empty value for device=");
    assert_int_equal(PARSE(&r, why, "what=devices", "plain"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "limit=0"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "limit=501"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "limit=07"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "limit=-1"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "online=yes"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=alarms", "state=gone"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=history", "device=dev1", "since=abc"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=history", "device=dev1", "since=0"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=history", "device=dev1", "since=9", "until=9"),
                     IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=history"), IOT_EINVAL); /* needs device= */
    assert_int_equal(PARSE(&r, why, "what=catalogue"), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=devices", "device=a", "group=b"), IOT_EINVAL);
    char long_name[80];
    memset(long_name, 'x', sizeof(long_name));
    memcpy(long_name, "device=", 7);
    long_name[7 + 65] = '\0';
    assert_int_equal(PARSE(&r, why, "what=devices", long_name), IOT_EINVAL);
}

static void test_cursors_round_trip(void **state)
{
    (void)state;
    struct query_request r;
    char why[160], text[96];
    const int64_t h[3] = {1765100000123, 42, 0}, a[3] = {1, 1765100000123, 7},
                  c[3] = {1765100000999, 12, 3};
    query_cursor_format(QUERY_HISTORY, NULL, h, text, sizeof(text));
    assert_string_equal(text, "1765100000123.42");
    memset(&r, 0, sizeof(r));
    assert_int_equal(query_cursor_parse(QUERY_HISTORY, text, &r), IOT_OK);
    assert_true(r.has_cursor);
    assert_memory_equal(r.cursor_num, h, 2 * sizeof(int64_t));
    query_cursor_format(QUERY_ALARMS, NULL, a, text, sizeof(text));
    assert_int_equal(query_cursor_parse(QUERY_ALARMS, text, &r), IOT_OK);
    assert_memory_equal(r.cursor_num, a, sizeof(a));
    query_cursor_format(QUERY_COMMANDS, NULL, c, text, sizeof(text));
    assert_int_equal(query_cursor_parse(QUERY_COMMANDS, text, &r), IOT_OK);
    assert_memory_equal(r.cursor_num, c, sizeof(c));
    query_cursor_format(QUERY_DEVICES, "dev7", NULL, text, sizeof(text));
    assert_int_equal(query_cursor_parse(QUERY_DEVICES, text, &r), IOT_OK);
    assert_string_equal(r.cursor_text, "dev7");
    assert_int_equal(query_cursor_parse(QUERY_CATALOGUE, "1.temperature", &r), IOT_OK);
    /* Through the frame too, after= before or after what=. */
    assert_int_equal(PARSE(&r, why, "after=5.6", "what=history", "device=dev1"), IOT_OK);
    assert_int_equal(r.cursor_num[0], 5);
    assert_int_equal(r.cursor_num[1], 6);
}

static void test_bad_cursors(void **state)
{
    (void)state;
    struct query_request r;
    char why[160];
    static const char *const history[] = {"",      "5",   "5.",   ".5",   "5..6",
                                          "5.6.7", "a.b", "05.6", "-5.6", "5.6x"};
    for (size_t i = 0; i < sizeof(history) / sizeof(history[0]); i++)
        assert_int_equal(query_cursor_parse(QUERY_HISTORY, history[i], &r), IOT_EINVAL);
    assert_int_equal(query_cursor_parse(QUERY_ALARMS, "2.5.6", &r), IOT_EINVAL); /* open 0|1 */
    assert_int_equal(query_cursor_parse(QUERY_ALARMS, "1.5", &r), IOT_EINVAL);
    assert_int_equal(query_cursor_parse(QUERY_COMMANDS, "1.2.3.4", &r), IOT_EINVAL);
    assert_int_equal(query_cursor_parse(QUERY_CATALOGUE, "2.x", &r), IOT_EINVAL);
    assert_int_equal(query_cursor_parse(QUERY_CATALOGUE, "1.", &r), IOT_EINVAL);
    assert_int_equal(query_cursor_parse(QUERY_CATALOGUE, "temperature", &r), IOT_EINVAL);
    assert_int_equal(PARSE(&r, why, "what=alarms", "after=x"), IOT_EINVAL);
    assert_non_null(strstr(why, "after="));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_what_and_defaults),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cursors_round_trip),
        cmocka_unit_test(test_bad_cursors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
