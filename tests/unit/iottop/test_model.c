/*
 * test_model.c - iottop's model: stats samples -> rows, rates from two samples (and none after
 * a restart), sorting by every column both ways, filtering, missing fields, the events tail.
 *
 * Samples are written as JSON text the way iotd sends them, so a test reads like the wire.
 * Two tests tie that text and the model to common/stats_schema.h, the table iotd writes its
 * samples from: the text holds only the schema's keys (renaming a key in the schema fails
 * here, as it would break every iottop already installed), and a sample built from the schema
 * alone fills every cell and summary value (iottop reads nothing iotd does not write).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "format.h"
#include "iot_error.h"
#include "model.h"
#include "stats_schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A sample at time t (ms) from process pid, with per-thread counters scaled by k. */
static cJSON *sample(double t, int pid, int uptime, double k, const char *extra)
{
    char text[8192];
    snprintf(
        text, sizeof(text),
        "{\"time_ms\": %.0f, \"uptime_s\": %d, \"version\": \"0.1.0\", \"pid\": %d,"
        " \"rss_bytes\": 23456789,"
        " \"threads\": ["
        "  {\"name\": \"main\", \"role\": \"main\", \"tid\": 4242, \"cpu_ns\": %.0f,"
        "   \"busy_ns\": %.0f},"
        "  {\"name\": \"io0\", \"role\": \"io\", \"tid\": 4243, \"cpu_ns\": %.0f,"
        "   \"busy_ns\": %.0f, \"sessions\": 500, \"frames_in\": %.0f, \"frames_out\": %.0f,"
        "   \"bytes_in\": %.0f, \"bytes_out\": %.0f},"
        "  {\"name\": \"db0\", \"role\": \"db\", \"tid\": 4250, \"cpu_ns\": 0, \"busy_ns\": 0}],"
        " \"queues\": ["
        "  {\"name\": \"inbox:main\", \"depth\": 16384, \"high_water\": 3, \"capacity\": 65536,"
        "   \"enqueued\": %.0f, \"dequeued\": %.0f, \"drops\": 0},"
        "  {\"name\": \"conn_log\", \"depth\": 0, \"high_water\": 0, \"capacity\": 0,"
        "   \"enqueued\": 10, \"dequeued\": 10, \"drops\": 2}],"
        " \"sessions\": {\"total\": 1000, \"sort\": \"frames_in\", \"top\": ["
        "  {\"principal\": \"dev1\", \"tenant\": \"acme\", \"kind\": \"device\","
        "   \"transport\": \"tcp\", \"address\": \"127.0.0.1:5000\", \"since_ms\": 1000,"
        "   \"last_activity_ms\": %.0f, \"in_flight\": 1, \"output_bytes\": 0,"
        "   \"frames_in\": %.0f, \"frames_out\": 10},"
        "  {\"principal\": \"Lamp-7\", \"tenant\": \"globex\", \"kind\": \"device\","
        "   \"transport\": \"tls\", \"address\": \"10.0.0.9:6000\", \"since_ms\": 500,"
        "   \"last_activity_ms\": 900, \"in_flight\": 0, \"output_bytes\": 4096,"
        "   \"frames_in\": 3, \"frames_out\": 30},"
        "  {\"principal\": \"alice@acme\", \"tenant\": \"acme\", \"kind\": \"user\","
        "   \"transport\": \"websocket\", \"address\": \"192.168.1.2:443\", \"since_ms\": 800,"
        "   \"in_flight\": 2, \"frames_in\": 7}]},"
        " \"requests\": [{\"origin\": \"alice@acme\", \"device\": \"dev1\","
        "   \"type\": \"read_temp\", \"age_ms\": 12, \"deadline_ms\": 4988}],"
        " \"totals\": {\"connections\": {\"device\": 1000, \"user\": 0, \"control\": 1},"
        "   \"auth_failures\": %.0f, \"rate_limited\": 0,"
        "   \"outcomes\": {\"ok\": %.0f, \"denied\": 0, \"timeout\": %.0f},"
        "   \"events_stored\": %.0f}"
        " %s}",
        t, uptime, pid, 1e8 * k, 5e7 * k, 4e8 * k, 3e8 * k, 9000 * k, 8000 * k, 1e5 * k, 2e5 * k,
        100 * k, 100 * k, t, 10 * k, 3 * k, 50 * k, 1 * k, 20 * k, extra ? extra : "");
    cJSON *item = cJSON_Parse(text);
    assert_non_null(item);
    return item;
}

static void update(model_t *m, cJSON *item)
{
    assert_int_equal(model_update(m, item), IOT_OK);
    cJSON_Delete(item);
}

static const struct model_cell *cell(const model_t *m, enum model_panel p, size_t row,
                                     const char *key)
{
    const struct model_table *t = model_table(m, p);
    int c = model_column_index(t, key);
    assert_true(c >= 0);
    assert_true(row < t->view_count);
    return &model_view_row(t, row)->cells[c];
}

static void assert_number(const struct model_cell *c, double want)
{
    assert_true(c->present);
    if (fabs(c->number - want) > 1e-6) {
        print_error("got %f, want %f\n", c->number, want);
        fail();
    }
}

static void test_rows_from_one_sample(void **state)
{
    (void)state;
    model_t *m = model_new();
    update(m, sample(10000, 1234, 12, 1, NULL));

    const struct model_table *threads = model_table(m, MODEL_THREADS);
    assert_int_equal(threads->view_count, 3);
    assert_string_equal(cell(m, MODEL_THREADS, 0, "name")->text, "main");
    assert_string_equal(cell(m, MODEL_THREADS, 1, "role")->text, "io");
    assert_number(cell(m, MODEL_THREADS, 1, "tid"), 4243);
    assert_number(cell(m, MODEL_THREADS, 1, "sessions"), 500);
    assert_false(cell(m, MODEL_THREADS, 0, "sessions")->present);
    /* one sample: no rates yet */
    assert_false(cell(m, MODEL_THREADS, 1, "cpu_percent")->present);
    assert_false(cell(m, MODEL_THREADS, 1, "frames_in_per_s")->present);

    assert_int_equal(model_table(m, MODEL_QUEUES)->view_count, 2);
    assert_number(cell(m, MODEL_QUEUES, 0, "fill_percent"), 25);
    assert_false(cell(m, MODEL_QUEUES, 1, "fill_percent")->present); /* capacity 0 */
    assert_number(cell(m, MODEL_QUEUES, 1, "drops"), 2);

    /* sessions sorted by frames_in, descending, by default */
    assert_int_equal(model_table(m, MODEL_SESSIONS)->view_count, 3);
    assert_string_equal(cell(m, MODEL_SESSIONS, 0, "principal")->text, "dev1");
    assert_number(cell(m, MODEL_SESSIONS, 0, "connected_ms"), 9000);
    assert_number(cell(m, MODEL_SESSIONS, 0, "idle_ms"), 0);
    assert_string_equal(cell(m, MODEL_SESSIONS, 2, "principal")->text, "Lamp-7");

    assert_int_equal(model_table(m, MODEL_REQUESTS)->view_count, 1);
    assert_number(cell(m, MODEL_REQUESTS, 0, "deadline_ms"), 4988);

    const struct model_summary *s = model_summary(m);
    assert_true(s->uptime_s.present);
    assert_int_equal((int)s->uptime_s.value, 12);
    assert_int_equal((int)s->connections.value, 1001);
    assert_string_equal(s->connections_detail, "device 1000, user 0, control 1");
    assert_int_equal((int)s->sessions_total.value, 1000);
    assert_int_equal((int)s->rss_bytes.value, 23456789);
    assert_string_equal(s->version, "0.1.0");
    assert_false(s->requests_per_s.present);
    assert_false(s->errors_per_s.present);
    model_free(m);
}

static void test_rates_from_two_samples(void **state)
{
    (void)state;
    model_t *m = model_new();
    update(m, sample(10000, 1234, 12, 1, NULL));
    update(m, sample(10500, 1234, 12, 2, NULL)); /* counters doubled in 500 ms */

    /* io0: cpu 4e8 ns in 0.5 s = 80 %, busy 3e8 = 60 %, frames_in 9000 in 0.5 s = 18000/s */
    assert_number(cell(m, MODEL_THREADS, 1, "cpu_percent"), 80);
    assert_number(cell(m, MODEL_THREADS, 1, "busy_percent"), 60);
    assert_number(cell(m, MODEL_THREADS, 1, "frames_in_per_s"), 18000);
    assert_number(cell(m, MODEL_THREADS, 1, "frames_out_per_s"), 16000);
    assert_number(cell(m, MODEL_THREADS, 1, "bytes_in_per_s"), 2e5);
    assert_number(cell(m, MODEL_THREADS, 1, "bytes_out_per_s"), 4e5);
    assert_number(cell(m, MODEL_THREADS, 0, "cpu_percent"), 20);
    assert_number(cell(m, MODEL_THREADS, 2, "cpu_percent"), 0);
    assert_false(cell(m, MODEL_THREADS, 0, "frames_in_per_s")->present);

    assert_number(cell(m, MODEL_QUEUES, 0, "enqueued_per_s"), 200);
    assert_number(cell(m, MODEL_QUEUES, 1, "drops_per_s"), 0);

    /* dev1's frames_in went 10 -> 20: 20/s; it stays matched by principal+address+since */
    assert_string_equal(cell(m, MODEL_SESSIONS, 0, "principal")->text, "dev1");
    assert_number(cell(m, MODEL_SESSIONS, 0, "frames_in_per_s"), 20);
    assert_number(cell(m, MODEL_SESSIONS, 0, "frames_out_per_s"), 0);

    const struct model_summary *s = model_summary(m);
    /* outcomes 51 -> 102 in 0.5 s; errors = auth failures 3 -> 6 + non-ok outcomes 1 -> 2 */
    assert_true(s->requests_per_s.present);
    assert_true(fabs(s->requests_per_s.value - 102) < 1e-9);
    assert_true(fabs(s->errors_per_s.value - 8) < 1e-9);
    assert_true(fabs(s->events_per_s.value - 40) < 1e-9);
    assert_true(fabs(s->interval_ms.value - 500) < 1e-9);
    model_free(m);
}

static void assert_no_rates(const model_t *m)
{
    for (size_t r = 0; r < model_table(m, MODEL_THREADS)->view_count; r++) {
        const struct model_cell *c = cell(m, MODEL_THREADS, r, "cpu_percent");
        assert_false(c->present);
        assert_false(cell(m, MODEL_THREADS, r, "frames_in_per_s")->present);
    }
    assert_false(cell(m, MODEL_QUEUES, 0, "enqueued_per_s")->present);
    assert_false(model_summary(m)->requests_per_s.present);
    assert_false(model_summary(m)->errors_per_s.present);
}

static void test_counter_reset_gives_no_negative_rate(void **state)
{
    (void)state;
    model_t *m = model_new();
    /* iotd restarted: a new pid, every counter small again */
    update(m, sample(10000, 1234, 500, 5, NULL));
    update(m, sample(11000, 999, 1, 1, NULL));
    assert_no_rates(m);
    /* the next sample of the new process has rates again */
    update(m, sample(12000, 999, 2, 2, NULL));
    assert_number(cell(m, MODEL_THREADS, 1, "frames_in_per_s"), 9000);

    /* same pid but uptime went back (restart in place): no rates either */
    update(m, sample(13000, 999, 1, 1, NULL));
    assert_no_rates(m);

    /* a single counter that went down, same process: that rate is absent, never negative */
    update(m, sample(14000, 999, 3, 3, NULL));
    cJSON *item = sample(15000, 999, 4, 4, NULL);
    cJSON *io0 = cJSON_GetArrayItem(cJSON_GetObjectItem(item, "threads"), 1);
    cJSON_ReplaceItemInObject(io0, "frames_in", cJSON_CreateNumber(5));
    update(m, item);
    assert_false(cell(m, MODEL_THREADS, 1, "frames_in_per_s")->present);
    assert_true(cell(m, MODEL_THREADS, 1, "frames_out_per_s")->number > 0);

    /* time that did not advance gives no rates */
    update(m, sample(15000, 999, 4, 5, NULL));
    assert_no_rates(m);
    model_free(m);
}

/* Every pair of neighbours in the view is in order; absent cells come last. */
static void assert_sorted(const struct model_table *t, int col, bool descending)
{
    for (size_t i = 1; i < t->view_count; i++) {
        const struct model_cell *a = &model_view_row(t, i - 1)->cells[col];
        const struct model_cell *b = &model_view_row(t, i)->cells[col];
        if (!a->present) {
            assert_false(b->present);
            continue;
        }
        if (!b->present)
            continue;
        int cmp = t->columns[col].format == MODEL_FMT_TEXT
                      ? strcasecmp(a->text, b->text)
                      : (a->number > b->number) - (a->number < b->number);
        if (descending ? cmp < 0 : cmp > 0) {
            print_error("column %s row %zu out of order\n", t->columns[col].key, i);
            fail();
        }
    }
}

static void test_sort_every_column_both_ways(void **state)
{
    (void)state;
    model_t *m = model_new();
    const char *events = ", \"events\": ["
                         "{\"time_ms\": 3, \"kind\": \"connect\", \"principal\": \"b\"},"
                         "{\"time_ms\": 1, \"kind\": \"auth_failure\", \"principal\": \"C\","
                         " \"address\": \"1.2.3.4:5\", \"reason\": \"wrong mac\"},"
                         "{\"time_ms\": 2, \"kind\": \"disconnect\", \"principal\": \"a\"}]";
    update(m, sample(10000, 1, 1, 1, NULL));
    update(m, sample(11000, 1, 2, 3, events));
    for (int p = 0; p < MODEL_PANEL_COUNT; p++) {
        const struct model_table *t = model_table(m, p);
        for (int col = 0; col < (int)t->column_count; col++) {
            for (int desc = 0; desc < 2; desc++) {
                model_set_sort(m, p, col, desc);
                assert_int_equal(t->sort_column, col);
                assert_sorted(t, col, desc);
            }
        }
        /* -1 is the daemon's order */
        model_set_sort(m, p, -1, false);
        for (size_t i = 0; i < t->view_count; i++)
            assert_int_equal(t->view[i], i);
    }
    /* a concrete order, both ways: sessions by principal, case-insensitive */
    model_set_sort(m, MODEL_SESSIONS,
                   model_column_index(model_table(m, MODEL_SESSIONS), "principal"), false);
    assert_string_equal(cell(m, MODEL_SESSIONS, 0, "principal")->text, "alice@acme");
    assert_string_equal(cell(m, MODEL_SESSIONS, 1, "principal")->text, "dev1");
    assert_string_equal(cell(m, MODEL_SESSIONS, 2, "principal")->text, "Lamp-7");
    model_reverse_sort(m, MODEL_SESSIONS);
    assert_string_equal(cell(m, MODEL_SESSIONS, 0, "principal")->text, "Lamp-7");
    /* absent last in both directions: alice has no output_bytes */
    int outbuf = model_column_index(model_table(m, MODEL_SESSIONS), "output_bytes");
    model_set_sort(m, MODEL_SESSIONS, outbuf, false);
    assert_false(cell(m, MODEL_SESSIONS, 2, "output_bytes")->present);
    model_set_sort(m, MODEL_SESSIONS, outbuf, true);
    assert_false(cell(m, MODEL_SESSIONS, 2, "output_bytes")->present);
    assert_number(cell(m, MODEL_SESSIONS, 0, "output_bytes"), 4096);
    /* events by time ascending (the default): newest at the bottom */
    model_set_sort(m, MODEL_EVENTS, 0, false);
    assert_string_equal(cell(m, MODEL_EVENTS, 0, "principal")->text, "C");
    assert_string_equal(cell(m, MODEL_EVENTS, 2, "principal")->text, "b");
    model_free(m);
}

static void test_step_sort_and_server_sort(void **state)
{
    (void)state;
    model_t *m = model_new();
    const struct model_table *t = model_table(m, MODEL_THREADS);
    assert_int_equal(t->sort_column, -1);
    model_step_sort(m, MODEL_THREADS, +1); /* NAME: text, ascending */
    assert_int_equal(t->sort_column, 0);
    assert_false(t->sort_descending);
    model_step_sort(m, MODEL_THREADS, +1);
    model_step_sort(m, MODEL_THREADS, +1); /* TID: a number, descending */
    assert_int_equal(t->sort_column, 2);
    assert_true(t->sort_descending);
    model_step_sort(m, MODEL_THREADS, -3); /* wraps through the daemon's order */
    assert_int_equal(t->sort_column, -1);
    model_step_sort(m, MODEL_THREADS, -1);
    assert_int_equal(t->sort_column, (int)t->column_count - 1);

    assert_string_equal(model_sessions_server_sort(m), "frames_in");
    const struct model_table *s = model_table(m, MODEL_SESSIONS);
    model_set_sort(m, MODEL_SESSIONS, model_column_index(s, "connected_ms"), false);
    assert_string_equal(model_sessions_server_sort(m), "since");
    model_set_sort(m, MODEL_SESSIONS, model_column_index(s, "output_bytes"), true);
    assert_string_equal(model_sessions_server_sort(m), "output_bytes");
    model_set_sort(m, MODEL_SESSIONS, model_column_index(s, "principal"), false);
    assert_null(model_sessions_server_sort(m));
    model_free(m);
}

static void test_filter(void **state)
{
    (void)state;
    model_t *m = model_new();
    update(m, sample(10000, 1, 1, 1, NULL));
    const struct model_table *s = model_table(m, MODEL_SESSIONS);

    model_set_filter(m, "globex"); /* tenant */
    assert_int_equal(s->view_count, 1);
    assert_string_equal(cell(m, MODEL_SESSIONS, 0, "principal")->text, "Lamp-7");
    model_set_filter(m, "LAMP"); /* principal, any case */
    assert_int_equal(s->view_count, 1);
    model_set_filter(m, "127.0.0"); /* address */
    assert_int_equal(s->view_count, 1);
    assert_string_equal(cell(m, MODEL_SESSIONS, 0, "principal")->text, "dev1");
    model_set_filter(m, "acme"); /* tenant of dev1 and alice */
    assert_int_equal(s->view_count, 2);
    model_set_filter(m, "websocket"); /* transport is not searched */
    assert_int_equal(s->view_count, 0);
    /* the filter applies to every panel and survives updates */
    model_set_filter(m, "io");
    assert_int_equal(model_table(m, MODEL_THREADS)->view_count, 1);
    update(m, sample(11000, 1, 2, 2, NULL));
    assert_int_equal(model_table(m, MODEL_THREADS)->view_count, 1);
    assert_string_equal(model_filter(m), "io");
    model_set_filter(m, "");
    assert_int_equal(s->view_count, 3);
    assert_int_equal(model_table(m, MODEL_THREADS)->view_count, 3);
    model_set_filter(m, NULL);
    assert_string_equal(model_filter(m), "");
    model_free(m);
}

static void test_missing_fields(void **state)
{
    (void)state;
    model_t *m = model_new();
    cJSON *not_object = cJSON_CreateArray();
    assert_int_equal(model_update(m, not_object), IOT_EINVAL);
    cJSON_Delete(not_object);

    update(m, cJSON_Parse("{}"));
    for (int p = 0; p < MODEL_PANEL_COUNT; p++)
        assert_int_equal(model_table(m, p)->view_count, 0);
    const struct model_summary *s = model_summary(m);
    assert_false(s->uptime_s.present);
    assert_false(s->connections.present);
    assert_false(s->rss_bytes.present);
    assert_false(s->requests_per_s.present);
    assert_string_equal(s->version, "");

    /* fields of the wrong type and rows with nothing in them are absent cells, not crashes */
    update(m, cJSON_Parse("{\"time_ms\": \"soon\", \"threads\": [{}, {\"name\": 7,"
                          " \"tid\": \"x\", \"cpu_ns\": null}], \"queues\": {},"
                          " \"sessions\": {\"top\": [{\"principal\": \"p\"}]},"
                          " \"requests\": 3, \"events\": [{}],"
                          " \"totals\": {\"connections\": {\"device\": 2}}}"));
    assert_int_equal(model_table(m, MODEL_THREADS)->view_count, 2);
    for (size_t c = 0; c < model_table(m, MODEL_THREADS)->column_count; c++)
        assert_false(model_view_row(model_table(m, MODEL_THREADS), 1)->cells[c].present);
    assert_int_equal(model_table(m, MODEL_QUEUES)->view_count, 0);
    assert_false(cell(m, MODEL_SESSIONS, 0, "connected_ms")->present);
    assert_false(cell(m, MODEL_SESSIONS, 0, "tenant")->present);
    assert_int_equal(model_table(m, MODEL_REQUESTS)->view_count, 0);
    assert_int_equal(model_table(m, MODEL_EVENTS)->view_count, 1);
    assert_true(s->connections.present);
    assert_false(s->requests_per_s.present); /* no outcomes yet (the relay fills them) */
    assert_false(s->events_per_s.present);   /* no events_stored yet */
    model_free(m);
}

/* A node of a cluster: the cluster line from the sample's cluster section; none without. */
static void test_cluster_line(void **state)
{
    (void)state;
    model_t *m = model_new();
    update(m, cJSON_Parse("{\"time_ms\": 1000}"));
    assert_string_equal(model_summary(m)->cluster, "");
    update(m, cJSON_Parse(
                  "{\"time_ms\": 2000, \"cluster\": {\"node\": \"b\", \"nats\": \"connected\","
                  " \"nodes\": [{\"node\": \"a\", \"devices\": 3, \"age_ms\": 120},"
                  " {\"node\": \"b\", \"devices\": 1, \"age_ms\": 0}],"
                  " \"traffic\": {\"requests_out\": 7, \"latency_ms_avg\": 0.84, \"timeouts\": 1,"
                  " \"requests_in\": 5, \"events_out\": 2, \"events_in\": 9}}}"));
    assert_string_equal(model_summary(m)->cluster,
                        "node b, NATS connected; nodes a 3, b 1; requests to other nodes 7 "
                        "(0.8 ms avg), timeouts 1, from them 5; events out 2, in 9");
    update(m, cJSON_Parse("{\"time_ms\": 3000}")); /* the cluster section is gone again */
    assert_string_equal(model_summary(m)->cluster, "");
    model_free(m);
}

static void test_events_tail(void **state)
{
    (void)state;
    model_t *m = model_new();
    const char *first = ", \"events\": [{\"time_ms\": 1, \"kind\": \"connect\", \"principal\": "
                        "\"d1\"}, {\"time_ms\": 2, \"kind\": \"disconnect\", \"principal\": "
                        "\"d1\"}]";
    const char *more = ", \"events\": [{\"time_ms\": 3, \"kind\": \"alarm\", \"principal\": "
                       "\"d2\", \"tenant\": \"acme\", \"type\": \"overheat\"}]";
    update(m, sample(1000, 1, 1, 1, first));
    assert_int_equal(model_new_events(m), 2);
    update(m, sample(2000, 1, 2, 1, more));
    assert_int_equal(model_new_events(m), 1);
    const struct model_table *t = model_table(m, MODEL_EVENTS);
    assert_int_equal(t->view_count, 3);
    assert_string_equal(cell(m, MODEL_EVENTS, 2, "detail")->text, "overheat");
    update(m, sample(3000, 1, 3, 1, NULL));
    assert_int_equal(model_new_events(m), 0);
    assert_int_equal(t->view_count, 3);

    /* a new stream replays recent events: those already shown are not added twice */
    model_stream_restarted(m);
    char replay[1024];
    snprintf(replay, sizeof(replay),
             ", \"events\": [{\"time_ms\": 1, \"kind\": \"connect\", \"principal\": \"d1\"},"
             " {\"time_ms\": 2, \"kind\": \"disconnect\", \"principal\": \"d1\"},"
             " {\"time_ms\": 4, \"kind\": \"connect\", \"principal\": \"d1\"}]");
    update(m, sample(4000, 1, 4, 1, replay));
    assert_int_equal(model_new_events(m), 1);
    assert_int_equal(t->view_count, 4);
    /* but the same event twice within one ordinary sample is two events */
    update(m, sample(5000, 1, 5, 1, ", \"events\": [{\"time_ms\": 9}, {\"time_ms\": 9}]"));
    assert_int_equal(model_new_events(m), 2);

    /* the tail keeps the newest MODEL_EVENTS_MAX */
    cJSON *item = sample(6000, 1, 6, 1, NULL);
    cJSON *events = cJSON_AddArrayToObject(item, "events");
    for (int i = 0; i < MODEL_EVENTS_MAX + 10; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "time_ms", 10000 + i);
        cJSON_AddItemToArray(events, e);
    }
    update(m, item);
    assert_int_equal(t->row_count, MODEL_EVENTS_MAX);
    assert_number(cell(m, MODEL_EVENTS, MODEL_EVENTS_MAX - 1, "time_ms"),
                  10000 + MODEL_EVENTS_MAX + 9);
    assert_number(cell(m, MODEL_EVENTS, 0, "time_ms"), 10010);
    model_free(m);
}

/* ---- the schema: what iotd writes is what the model reads -------------------------------- */

/* The object holding a section's fields in sample: the section itself, or the one row of a
 * section of rows. Created on first use. */
static cJSON *schema_container(cJSON *sample, cJSON **made, enum stats_section s)
{
    if (s == STATS_SECTION_SAMPLE)
        return sample;
    if (made[s])
        return made[s];
    const struct stats_section_info *info = stats_section_info(s);
    cJSON *parent = schema_container(sample, made, info->parent);
    if (info->shape == STATS_ROWS) {
        cJSON *rows = cJSON_AddArrayToObject(parent, info->key);
        made[s] = cJSON_CreateObject();
        cJSON_AddItemToArray(rows, made[s]);
    } else {
        made[s] = cJSON_AddObjectToObject(parent, info->key);
    }
    assert_non_null(made[s]);
    return made[s];
}

/* A sample with one row per section and every field of the schema, at time t (ms), with
 * counters scaled by k: written from the table alone, with no key of its own. */
static cJSON *schema_sample(double t, double k)
{
    cJSON *sample = cJSON_CreateObject();
    cJSON *made[STATS_SECTION_COUNT] = {NULL};
    for (int f = 0; f < STATS_FIELD_COUNT; f++) {
        const struct stats_field_info *info = stats_field_info(f);
        cJSON *obj = schema_container(sample, made, info->section);
        if (info->value == STATS_TEXT) {
            cJSON_AddStringToObject(obj, info->key, info->key);
        } else if (info->value == STATS_MAP) {
            cJSON *map = cJSON_AddObjectToObject(obj, info->key);
            cJSON_AddNumberToObject(map, "ok", 100 * k);
            cJSON_AddNumberToObject(map, "timeout", k);
        } else if (info->unit == STATS_UNIT_EPOCH_MS) {
            /* the same session in both samples (matched by since_ms), connected before t */
            cJSON_AddNumberToObject(obj, info->key, 5000);
        } else if (info->kind == STATS_COUNTER) {
            cJSON_AddNumberToObject(obj, info->key, 1000 * k);
        } else {
            cJSON_AddNumberToObject(obj, info->key, info->kind == STATS_LABEL ? 42 : 7 * k);
        }
    }
    cJSON_ReplaceItemInObject(sample, stats_key(STATS_TIME_MS), cJSON_CreateNumber(t));
    return sample;
}

static void test_schema_sample_fills_every_cell(void **state)
{
    (void)state;
    model_t *m = model_new();
    update(m, schema_sample(10000, 1));
    update(m, schema_sample(11000, 2));
    for (int p = 0; p < MODEL_PANEL_COUNT; p++) {
        const struct model_table *t = model_table(m, p);
        assert_true(t->view_count > 0);
        const struct model_row *row = model_view_row(t, t->view_count - 1);
        for (size_t c = 0; c < t->column_count; c++)
            if (!row->cells[c].present)
                fail_msg("%s: column %s is empty: the model reads a key iotd does not write",
                         model_panel_name(p), t->columns[c].key);
    }
    const struct model_summary *s = model_summary(m);
    const struct model_value *values[] = {
        &s->time_ms,        &s->uptime_s,       &s->pid,          &s->rss_bytes,    &s->connections,
        &s->sessions_total, &s->requests_per_s, &s->events_per_s, &s->errors_per_s, &s->interval_ms,
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_true(values[i]->present);
    assert_string_equal(s->version, stats_key(STATS_VERSION));
    assert_string_equal(s->sessions_sort, stats_key(STATS_SESSIONS_SORT));
    assert_true(s->connections_detail[0] != '\0');
    model_free(m);
}

/* Every key of obj is a field or a section of the schema's section s. */
static void assert_schema_keys(const cJSON *obj, enum stats_section s)
{
    const cJSON *child, *row;
    cJSON_ArrayForEach(child, obj)
    {
        int sub = STATS_SECTION_COUNT;
        for (int i = 1; i < STATS_SECTION_COUNT; i++)
            if (stats_section_info(i)->parent == s &&
                strcmp(stats_section_key(i), child->string) == 0)
                sub = i;
        if (sub == STATS_SECTION_COUNT && stats_field_lookup(s, child->string) == STATS_FIELD_COUNT)
            fail_msg("the wire sample's \"%s\" is not in the schema", child->string);
        if (sub == STATS_SECTION_COUNT)
            continue;
        if (stats_section_info(sub)->shape == STATS_OBJECT)
            assert_schema_keys(child, sub);
        else
            cJSON_ArrayForEach(row, child) assert_schema_keys(row, sub);
    }
}

static void test_wire_sample_uses_the_schema_keys(void **state)
{
    (void)state;
    cJSON *item = sample(10000, 1, 1, 1,
                         ", \"events\": [{\"time_ms\": 9, \"kind\": \"connect\", \"principal\":"
                         " \"dev1\", \"address\": \"127.0.0.1:5000\", \"reason\": \"ok\"}]");
    assert_schema_keys(item, STATS_SECTION_SAMPLE);
    cJSON_Delete(item);
}

/* A session's peer name is network text: its cell shows control characters and invalid UTF-8
 * as escapes, on the screen and in batch reports alike (issue 17). */
static void test_text_cell_escaped(void **state)
{
    struct model_column col = {.key = "peer", .title = "PEER", .format = MODEL_FMT_TEXT};
    char text[] = "ev\xc2\x9b"
                  "31mil\x1b\xff";
    struct model_cell cell = {.present = true, .text = text};
    char buf[64];
    format_cell(&col, &cell, 0, buf, sizeof(buf));
    assert_string_equal(buf, "ev\\u009b31mil\\x1b\\xff");
    cell.text = NULL;
    format_cell(&col, &cell, 0, buf, sizeof(buf));
    assert_string_equal(buf, "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_from_one_sample),
        cmocka_unit_test(test_text_cell_escaped),
        cmocka_unit_test(test_rates_from_two_samples),
        cmocka_unit_test(test_counter_reset_gives_no_negative_rate),
        cmocka_unit_test(test_sort_every_column_both_ways),
        cmocka_unit_test(test_step_sort_and_server_sort),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_events_tail),
        cmocka_unit_test(test_cluster_line),
        cmocka_unit_test(test_schema_sample_fills_every_cell),
        cmocka_unit_test(test_wire_sample_uses_the_schema_keys),
        cmocka_unit_test(test_text_cell_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
