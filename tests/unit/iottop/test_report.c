/*
 * test_report.c - batch output and cell formatting: what scripts parse (JSON keys, null for
 * absent values, rates) and what operators read (compact numbers, durations, tables).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "format.h"
#include "iot_error.h"
#include "model.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *sample_at(int t, int frames)
{
    static char text[2048];
    snprintf(text, sizeof(text),
             "{\"time_ms\": %d, \"uptime_s\": 7, \"version\": \"0.1.0\", \"pid\": 42,"
             " \"rss_bytes\": 1572864,"
             " \"threads\": [{\"name\": \"io0\", \"role\": \"io\", \"tid\": 43, \"cpu_ns\": %d,"
             "   \"busy_ns\": 0, \"sessions\": 2, \"frames_in\": %d}],"
             " \"queues\": [{\"name\": \"db:jobs\", \"depth\": 1, \"capacity\": 4}],"
             " \"sessions\": {\"total\": 2, \"sort\": \"frames_in\", \"top\": ["
             "   {\"principal\": \"a-very-long-device-principal-name\", \"tenant\": \"acme\","
             "    \"frames_in\": %d}]},"
             " \"totals\": {\"connections\": {\"device\": 2, \"control\": 1},"
             "   \"auth_failures\": %d},"
             " \"events\": [{\"time_ms\": %d, \"kind\": \"connect\", \"principal\": \"d%d\"}]}",
             t, frames * 1000000, frames, frames, frames, t, t);
    return text;
}

static model_t *two_samples(void)
{
    model_t *m = model_new();
    for (int i = 1; i <= 2; i++) {
        cJSON *item = cJSON_Parse(sample_at(1000 * i, 10 * i));
        assert_int_equal(model_update(m, item), IOT_OK);
        cJSON_Delete(item);
    }
    return m;
}

static void test_json_report(void **state)
{
    (void)state;
    model_t *m = two_samples();
    cJSON *j = report_json(m);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "pid")->valuedouble, 42);
    assert_int_equal(cJSON_GetObjectItem(j, "interval_ms")->valuedouble, 1000);
    const cJSON *meters = cJSON_GetObjectItem(j, "meters");
    assert_int_equal(cJSON_GetObjectItem(meters, "connections")->valuedouble, 3);
    assert_int_equal(cJSON_GetObjectItem(meters, "errors_per_s")->valuedouble, 10);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(meters, "requests_per_s")));
    const cJSON *io0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "threads"), 0);
    assert_string_equal(cJSON_GetObjectItem(io0, "name")->valuestring, "io0");
    assert_int_equal(cJSON_GetObjectItem(io0, "frames_in_per_s")->valuedouble, 10);
    assert_int_equal(cJSON_GetObjectItem(io0, "cpu_percent")->valuedouble, 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(io0, "bytes_in_per_s")));
    const cJSON *q = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "queues"), 0);
    assert_int_equal(cJSON_GetObjectItem(q, "fill_percent")->valuedouble, 25);
    const cJSON *sessions = cJSON_GetObjectItem(j, "sessions");
    assert_int_equal(cJSON_GetObjectItem(sessions, "total")->valuedouble, 2);
    assert_string_equal(cJSON_GetObjectItem(sessions, "sort")->valuestring, "frames_in");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sessions, "top")), 1);
    /* only the events new in this sample */
    const cJSON *events = cJSON_GetObjectItem(j, "events");
    assert_int_equal(cJSON_GetArraySize(events), 1);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(events, 0), "principal")->valuestring, "d2000");
    /* the raw totals, as the daemon sent them */
    const cJSON *totals = cJSON_GetObjectItem(j, "totals");
    assert_int_equal(cJSON_GetObjectItem(totals, "auth_failures")->valuedouble, 20);
    cJSON_Delete(j);
    model_free(m);
}

static void test_text_report(void **state)
{
    (void)state;
    model_t *m = two_samples();
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    report_text(out, m);
    fclose(out);
    assert_non_null(strstr(text, "iotd 0.1.0  pid 42  up 00:00:07  connections 3 (device 2, "
                                 "control 1)  sessions 2  req/s -  events/s -  errors/s 10.0  "
                                 "RSS 1.5M\n"));
    assert_non_null(strstr(text, "\nThreads\nNAME     ROLE      TID   CPU%"));
    assert_non_null(strstr(text, "\nio0      io         43    1.0"));
    assert_non_null(strstr(text, "\nQueues\n"));
    assert_non_null(strstr(text, "\nSessions (top 1 of 2 by frames_in)\n"));
    /* text is never cut in batch output */
    assert_non_null(strstr(text, "a-very-long-device-principal-name acme"));
    free(text);
    model_free(m);
}

static void test_format(void **state)
{
    (void)state;
    char buf[32];
    format_bytes(512, buf, sizeof(buf));
    assert_string_equal(buf, "512");
    format_bytes(1536, buf, sizeof(buf));
    assert_string_equal(buf, "1.5K");
    format_bytes(300.0 * 1024 * 1024, buf, sizeof(buf));
    assert_string_equal(buf, "300M");
    format_duration_ms(850, buf, sizeof(buf));
    assert_string_equal(buf, "850ms");
    format_duration_ms(4900, buf, sizeof(buf));
    assert_string_equal(buf, "4.9s");
    format_duration_ms(192000, buf, sizeof(buf));
    assert_string_equal(buf, "3m12s");
    format_duration_ms(7500000, buf, sizeof(buf));
    assert_string_equal(buf, "2h05m");
    format_duration_ms(3 * 86400000.0 + 4 * 3600000.0, buf, sizeof(buf));
    assert_string_equal(buf, "3d04h");
    format_rate(12.34, buf, sizeof(buf));
    assert_string_equal(buf, "12.3");
    format_rate(123456, buf, sizeof(buf));
    assert_string_equal(buf, "123K");
    format_uptime(90061, buf, sizeof(buf));
    assert_string_equal(buf, "1d 01:01:01");

    struct model_column count = {"n", "N", MODEL_FMT_COUNT, 5, false, NULL};
    struct model_cell cell = {true, 1234567, NULL};
    format_cell(&count, &cell, 5, buf, sizeof(buf));
    assert_string_equal(buf, "1.2M"); /* too wide for 5: compact */
    format_cell(&count, &cell, 0, buf, sizeof(buf));
    assert_string_equal(buf, "1234567");
    cell.present = false;
    format_cell(&count, &cell, 5, buf, sizeof(buf));
    assert_string_equal(buf, "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_report),
        cmocka_unit_test(test_text_report),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
