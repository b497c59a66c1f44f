/*
 * test_stats_json.c - the sample iotd streams to iottop, built from fake counters: it holds
 * exactly the schema's keys (every key it writes is a field of its section, of the right JSON
 * type, and every field of the schema is written), in the order iotd has always sent them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stats/stats_json.h"
#include "stats_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A sample with every part present: an io thread, a store, a hub, a session, a request, a
 * connection event and a device event. */
static cJSON *full_sample(void)
{
    static const struct stats_thread threads[] = {
        {.name = "main", .role = "main", .tid = 10, .cpu_ns = 1, .busy_ns = 2},
        {.name = "io0",
         .role = "io",
         .tid = 11,
         .cpu_ns = 3,
         .busy_ns = 4,
         .io = true,
         .sessions = 5,
         .frames_in = 6,
         .frames_out = 7,
         .bytes_in = 8,
         .bytes_out = 9},
        {.name = "db0", .role = "db", .tid = 12},
    };
    static const struct stats_queue queues[] = {
        {.name = "inbox:main",
         .depth = 1,
         .high_water = 2,
         .capacity = 3,
         .enqueued = 4,
         .dequeued = 5,
         .drops = 6},
    };
    static const struct event_store_stats store = {.stored = 40, .spooled = 2, .state = "db"};
    static const struct hub_stats hub = {.alarms = 3, .delivered = 7, .dropped = 1};
    struct stats_sample s = {
        .time_ms = 1700000000000,
        .uptime_s = 12,
        .version = "9.9.9",
        .pid = 4242,
        .rss_bytes = 1 << 20,
        .threads = threads,
        .thread_count = 3,
        .queues = queues,
        .queue_count = 1,
        .devices = 2,
        .users = 1,
        .control_clients = 1,
        .auth_failures = 3,
        .store = &store,
        .hub = &hub,
        .items_delivered = 10,
        .items_dropped = 2,
    };
    s.outcomes[RELAY_OK] = 100;
    /* What cluster_status reports, with a key of its own that the sample must not take. */
    cJSON *cluster = cJSON_Parse(
        "{\"node\":\"a\",\"nats\":\"connected\",\"stray\":1,"
        "\"nodes\":[{\"node\":\"a\",\"devices\":2,\"age_ms\":0},"
        "{\"node\":\"b\",\"devices\":1,\"age_ms\":150,\"stray\":2}],"
        "\"traffic\":{\"requests_out\":5,\"answers_in\":4,\"timeouts\":1,\"node_gone\":0,"
        "\"latency_ms_avg\":0.8,\"requests_in\":6,\"events_out\":3,\"events_in\":2,"
        "\"changes_out\":1,\"changes_in\":7}}");
    assert_non_null(cluster);
    s.cluster = cluster;
    cJSON *sample = stats_sample_json(&s);
    cJSON_Delete(cluster);
    assert_non_null(sample);

    struct session_row row = {.principal = "dev1",
                              .tenant = "acme",
                              .kind = "device",
                              .state = "online",
                              .transport = "tcp",
                              .address = "127.0.0.1:1",
                              .since_ms = 1,
                              .frames_in = 3};
    struct request_row request = {.origin = "alice",
                                  .device = "dev1",
                                  .type = "read_temp",
                                  .age_ms = 12,
                                  .deadline_ms = 4988};
    stats_json_add_sessions(sample, "frames_in", &row, 1, 1, &request, 1);
    stats_json_add_connection_event(sample, 5, "connect", "dev1", "127.0.0.1:1", "ok");
    const char *fields[] = {"t=21.5"};
    struct event *item =
        event_new(EVENT_KIND_ALARM, "acme", "dev1", "thermo", "overheat", 1, 6, 1, fields);
    assert_non_null(item);
    stats_json_add_item(sample, item);
    event_unref(item);
    return sample;
}

static bool value_fits(const struct stats_field_info *info, const cJSON *v)
{
    const cJSON *child;
    switch (info->value) {
    case STATS_NUMBER:
        return cJSON_IsNumber(v);
    case STATS_TEXT:
        return cJSON_IsString(v);
    case STATS_MAP:
        if (!cJSON_IsObject(v) || !v->child)
            return false;
        cJSON_ArrayForEach(child, v) if (!cJSON_IsNumber(child)) return false;
        return true;
    }
    return false;
}

/* The section nested in parent under key, or STATS_SECTION_COUNT. */
static int child_section(enum stats_section parent, const char *key)
{
    for (int s = 1; s < STATS_SECTION_COUNT; s++)
        if (stats_section_info(s)->parent == parent && strcmp(stats_section_key(s), key) == 0)
            return s;
    return STATS_SECTION_COUNT;
}

static void check_object(const cJSON *obj, enum stats_section section, bool *fields_seen,
                         bool *sections_seen)
{
    const cJSON *child, *row;
    assert_true(cJSON_IsObject(obj));
    sections_seen[section] = true;
    cJSON_ArrayForEach(child, obj)
    {
        int sub = child_section(section, child->string);
        if (sub < STATS_SECTION_COUNT && stats_section_info(sub)->shape == STATS_ROWS) {
            assert_true(cJSON_IsArray(child));
            sections_seen[sub] = true;
            cJSON_ArrayForEach(row, child) check_object(row, sub, fields_seen, sections_seen);
            continue;
        }
        if (sub < STATS_SECTION_COUNT) {
            check_object(child, sub, fields_seen, sections_seen);
            continue;
        }
        enum stats_field f = stats_field_lookup(section, child->string);
        if (f == STATS_FIELD_COUNT)
            fail_msg("iotd writes \"%s\" (section %d), which the schema does not have",
                     child->string, section);
        if (!value_fits(stats_field_info(f), child))
            fail_msg("\"%s\" is not of the schema's JSON type", child->string);
        fields_seen[f] = true;
    }
}

static void test_sample_has_exactly_the_schema_keys(void **state)
{
    (void)state;
    cJSON *sample = full_sample();
    bool fields_seen[STATS_FIELD_COUNT] = {false};
    bool sections_seen[STATS_SECTION_COUNT] = {false};
    check_object(sample, STATS_SECTION_SAMPLE, fields_seen, sections_seen);
    for (int f = 0; f < STATS_FIELD_COUNT; f++)
        if (!fields_seen[f])
            fail_msg("the schema's \"%s\" (section %d) is not in the sample", stats_key(f),
                     stats_field_info(f)->section);
    for (int s = 0; s < STATS_SECTION_COUNT; s++)
        assert_true(sections_seen[s]);
    cJSON_Delete(sample);
}

static void test_values_and_order(void **state)
{
    (void)state;
    cJSON *sample = full_sample();
    char *text = cJSON_PrintUnformatted(sample);
    assert_non_null(text);
    /* the top-level order iotd has always sent, and a few values through the whole path */
    const char *order[] = {"\"time_ms\":",   "\"uptime_s\":", "\"version\":", "\"pid\":",
                           "\"rss_bytes\":", "\"threads\":",  "\"queues\":",  "\"totals\":",
                           "\"events\":[",   "\"sessions\":", "\"requests\":"};
    const char *at = text;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *next = strstr(at, order[i]);
        if (!next)
            fail_msg("%s missing or out of order in %s", order[i], text);
        at = next;
    }
    assert_non_null(strstr(text, "\"events_stored\":42"));
    assert_non_null(strstr(text, "\"delivered\":17,\"dropped\":3"));
    assert_non_null(strstr(text, "\"outcomes\":{\"ok\":100,"));
    assert_non_null(strstr(text, "\"internal\":0}"));
    assert_non_null(strstr(text, "\"message\":\"overheat t=21.5\""));
    assert_non_null(strstr(text, "{\"name\":\"db0\",\"role\":\"db\",\"tid\":12,\"cpu_ns\":0,"
                                 "\"busy_ns\":0}"));
    /* the cluster's status, by the schema's keys only */
    assert_non_null(strstr(text,
                           "\"cluster\":{\"node\":\"a\",\"nats\":\"connected\",\"nodes\":"
                           "[{\"node\":\"a\",\"devices\":2,\"age_ms\":0},{\"node\":\"b\","
                           "\"devices\":1,\"age_ms\":150}],\"traffic\":{\"requests_out\":5,"));
    assert_non_null(strstr(text, "\"latency_ms_avg\":0.8,"));
    assert_null(strstr(text, "stray"));
    free(text);
    cJSON_Delete(sample);
}

static void test_without_store_and_hub(void **state)
{
    (void)state;
    struct stats_sample s = {.version = "1", .items_delivered = 4};
    cJSON *sample = stats_sample_json(&s);
    assert_non_null(sample);
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(sample, "totals");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(totals, "events");
    assert_null(cJSON_GetObjectItemCaseSensitive(totals, "events_stored"));
    assert_null(cJSON_GetObjectItemCaseSensitive(events, "stored"));
    assert_null(cJSON_GetObjectItemCaseSensitive(events, "subscribers"));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(events, "delivered")->valueint, 4);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sample, "events")), 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(sample, "cluster")); /* a single node */
    cJSON_Delete(sample);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_has_exactly_the_schema_keys),
        cmocka_unit_test(test_values_and_order),
        cmocka_unit_test(test_without_store_and_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
