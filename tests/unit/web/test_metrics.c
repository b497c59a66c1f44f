/* Unit tests of the Prometheus text written from a stats sample (names, units and labels from
 * the schema; every family has # HELP and # TYPE before its samples, once, counters end in
 * _total; labels escaped; missing values left out), and of the /metrics address allowlist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web/allowlist.h"
#include "web/metrics.h"

#include "stats_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A sample shaped like the one stats_collect builds (see stats.c). */
static const char *sample_json =
    "{\"time_ms\":1,\"uptime_s\":42,\"version\":\"0.1.0\",\"pid\":7,\"rss_bytes\":1048576,"
    "\"threads\":[{\"name\":\"main\",\"role\":\"main\",\"tid\":1,\"cpu_ns\":1500000000,"
    "\"busy_ns\":2000},{\"name\":\"io0\",\"role\":\"io\",\"tid\":2,\"cpu_ns\":0,\"busy_ns\":0,"
    "\"sessions\":3,\"frames_in\":10,\"frames_out\":11,\"bytes_in\":100,\"bytes_out\":200}],"
    "\"queues\":[{\"name\":\"inbox:\\\"main\\\"\",\"depth\":0,\"high_water\":5,\"capacity\":65536,"
    "\"enqueued\":9,\"dequeued\":9,\"drops\":0}],"
    "\"totals\":{\"connections\":{\"device\":2,\"user\":1,\"control\":0},\"auth_failures\":4,"
    "\"rate_limited\":0,\"outcomes\":{\"ok\":7,\"denied\":1},"
    "\"events\":{\"state\":\"spool\",\"stored\":12,\"spool_bytes\":4096}},"
    "\"sessions\":{\"total\":3,\"sort\":\"frames_in\",\"top\":[]},\"events\":[]}";

static char *format(const char *json)
{
    cJSON *sample = cJSON_Parse(json);
    struct web_buf b = {0};
    assert_non_null(sample);
    assert_int_equal(metrics_format(sample, &b), 0);
    cJSON_Delete(sample);
    web_buf_append(&b, "", 1);
    return (char *)b.data;
}

static void test_values(void **state)
{
    (void)state;
    char *text = format(sample_json);
    assert_non_null(strstr(text, "\niotd_uptime_seconds 42\n"));
    assert_non_null(strstr(text, "\niotd_rss_bytes 1048576\n"));
    assert_non_null(strstr(text, "\niotd_auth_failures_total 4\n"));
    assert_non_null(strstr(text, "\niotd_connections_device 2\n"));
    assert_non_null(strstr(text, "\niotd_outcomes_total{outcome=\"denied\"} 1\n"));
    /* Nanoseconds become seconds; a row's text fields are its labels. */
    assert_null(strstr(text, "cpu_ns"));
    assert_non_null(
        strstr(text, "\niotd_thread_cpu_seconds_total{name=\"main\",role=\"main\"} 1.5\n"));
    assert_non_null(strstr(text, "\niotd_thread_frames_in_total{name=\"io0\",role=\"io\"} 10\n"));
    /* The main thread has no sessions column: no sample for it. */
    assert_null(strstr(text, "iotd_thread_sessions{name=\"main\""));
    /* Label values are escaped. */
    assert_non_null(strstr(text, "iotd_queue_high_water{name=\"inbox:\\\"main\\\"\"} 5\n"));
    assert_non_null(strstr(text, "\niotd_event_state_info{state=\"spool\"} 1\n"));
    assert_non_null(strstr(text, "\niotd_version_info{version=\"0.1.0\"} 1\n"));
    assert_non_null(strstr(text, "\niotd_sessions 3\n"));
    /* Wall-clock times and ids are not series; absent values are absent, HELP and TYPE too. */
    assert_null(strstr(text, "time_ms"));
    assert_null(strstr(text, "pid"));
    assert_null(strstr(text, "tid"));
    assert_null(strstr(text, "iotd_event_duplicates_total"));
    free(text);
}

/* Every field the schema has, in a sample written from the schema alone: each exported
 * family is declared once, whatever fields are added later. */
static void test_every_field(void **state)
{
    (void)state;
    cJSON *sample = cJSON_CreateObject();
    cJSON *at[STATS_SECTION_COUNT] = {[STATS_SECTION_SAMPLE] = sample};
    for (int s = 1; s < STATS_SECTION_COUNT; s++) {
        const struct stats_section_info *si = stats_section_info((enum stats_section)s);
        cJSON *c = si->shape == STATS_ROWS ? cJSON_CreateArray() : cJSON_CreateObject();
        cJSON_AddItemToObject(at[si->parent], si->key, c);
        if (si->shape == STATS_ROWS) {
            cJSON *row = cJSON_CreateObject();
            cJSON_AddItemToArray(c, row);
            c = row;
        }
        at[s] = c;
    }
    for (int f = 0; f < STATS_FIELD_COUNT; f++) {
        const struct stats_field_info *fi = stats_field_info((enum stats_field)f);
        cJSON *c = at[fi->section];
        if (fi->value == STATS_TEXT)
            cJSON_AddStringToObject(c, fi->key, "x");
        else if (fi->value == STATS_MAP)
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(c, fi->key), "a", 1);
        else
            cJSON_AddNumberToObject(c, fi->key, 1);
    }
    struct web_buf b = {0};
    assert_int_equal(metrics_format(sample, &b), 0);
    cJSON_Delete(sample);
    web_buf_append(&b, "", 1);
    char *text = (char *)b.data, *save = NULL;
    char seen[64][128];
    size_t nseen = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (sscanf(line, "# TYPE %127s", name) != 1)
            continue;
        for (size_t k = 0; k < nseen; k++)
            if (strcmp(seen[k], name) == 0)
                fail_msg("family %s declared twice", name);
        assert_true(nseen < 64);
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
    }
    assert_true(nseen > 30);
    free(text);
}

/* Every sample line belongs to the family declared just before by # HELP and # TYPE, each
 * family is declared once, and counters are named *_total. */
static void test_structure(void **state)
{
    (void)state;
    char *text = format(sample_json);
    char family[128] = "", type[16] = "";
    char *save = NULL;
    unsigned families = 0, samples = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128], kind[16];
        if (sscanf(line, "# HELP %127s", name) == 1) {
            assert_string_not_equal(name, family);
            snprintf(family, sizeof(family), "%s", name);
            type[0] = '\0';
            families++;
            continue;
        }
        if (sscanf(line, "# TYPE %127s %15s", name, kind) == 2) {
            assert_string_equal(name, family);
            assert_string_equal(type, "");
            snprintf(type, sizeof(type), "%s", kind);
            if (strcmp(kind, "counter") == 0)
                assert_non_null(strstr(family, "_total"));
            continue;
        }
        assert_true(line[0] != '#');
        size_t n = strcspn(line, "{ ");
        assert_int_equal(n, strlen(family));
        assert_memory_equal(line, family, n);
        assert_string_not_equal(type, "");
        samples++;
    }
    assert_true(families > 15);
    assert_true(samples > families);
    free(text);
}

static void test_empty_sample(void **state)
{
    (void)state;
    char *text = format("{}");
    assert_string_equal(text, "");
    free(text);
}

static void test_allowlist(void **state)
{
    web_allowlist_t *l = NULL;
    char err[160];
    (void)state;
    assert_int_equal(
        web_allowlist_parse(" 127.0.0.1, 10.0.0.0/8 ,::1,fd00::/8", &l, err, sizeof(err)), 0);
    assert_true(web_allowlist_permits(l, "127.0.0.1:5000"));
    assert_false(web_allowlist_permits(l, "127.0.0.2:5000"));
    assert_true(web_allowlist_permits(l, "10.200.3.4:1"));
    assert_false(web_allowlist_permits(l, "11.0.0.1:1"));
    assert_true(web_allowlist_permits(l, "[::1]:80"));
    assert_true(web_allowlist_permits(l, "[fd12:3456::1]:80"));
    assert_false(web_allowlist_permits(l, "[fe80::1]:80"));
    assert_false(web_allowlist_permits(l, "unknown"));
    web_allowlist_free(l);
    assert_int_equal(web_allowlist_parse("192.168.1.0/23", &l, err, sizeof(err)), 0);
    assert_true(web_allowlist_permits(l, "192.168.0.9:1"));
    assert_false(web_allowlist_permits(l, "192.168.2.9:1"));
    web_allowlist_free(l);
    assert_int_equal(web_allowlist_parse("127.0.0.1, example.com", &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "example.com"));
    assert_int_equal(web_allowlist_parse("10.0.0.0/33", &l, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),      cmocka_unit_test(test_structure),
        cmocka_unit_test(test_every_field), cmocka_unit_test(test_empty_sample),
        cmocka_unit_test(test_allowlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
