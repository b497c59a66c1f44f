/*
 * metrics.c - stats sample to Prometheus text (see metrics.h).
 *
 * Three tables say where each family's values are in the sample: single numbers, objects
 * whose every member is one labelled value (connections by kind, relay outcomes by name), and
 * arrays of rows with label columns (threads, queues). A family's samples are written
 * together, as the format requires, so the row tables are walked once per column.
 */
#include "web/metrics.h"

#include "iot_error.h"

#include <math.h>
#include <string.h>

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE };

struct scalar_metric {
    const char *path[4]; /* keys from the sample's top, NULL-terminated */
    const char *name, *help;
    enum metric_kind kind;
};

struct keyed_metric {
    const char *path[4]; /* an object of numbers: one sample per member */
    const char *name, *help, *label;
    enum metric_kind kind;
};

struct row_metric {
    const char *array; /* a top-level array of objects */
    const char *field; /* the number in each row */
    const char *name, *help;
    enum metric_kind kind;
    double scale;
};

/* Label columns of each row array: sample key -> label name. */
struct row_labels {
    const char *array;
    const char *keys[3], *labels[3];
};

static const struct scalar_metric scalars[] = {
    {{"uptime_s"}, "iotd_uptime_seconds", "Seconds since iotd started.", METRIC_GAUGE},
    {{"rss_bytes"},
     "iotd_resident_memory_bytes",
     "Resident memory of the iotd process.",
     METRIC_GAUGE},
    {{"sessions", "total"}, "iotd_sessions", "Sessions open on the io threads.", METRIC_GAUGE},
    {{"totals", "auth_failures"},
     "iotd_auth_failures_total",
     "Failed device handshakes and user logins.",
     METRIC_COUNTER},
    {{"totals", "rate_limited"},
     "iotd_rate_limited_total",
     "Connections refused by the authentication rate limit.",
     METRIC_COUNTER},
    {{"totals", "events", "stored"},
     "iotd_events_stored_total",
     "Events inserted into MariaDB (replayed ones included).",
     METRIC_COUNTER},
    {{"totals", "events", "duplicates"},
     "iotd_events_duplicates_total",
     "Retransmitted events acknowledged without being stored again.",
     METRIC_COUNTER},
    {{"totals", "events", "batches"},
     "iotd_events_batches_total",
     "Event transactions committed (group commits).",
     METRIC_COUNTER},
    {{"totals", "events", "spooled"},
     "iotd_events_spooled_total",
     "Events written to the on-disk spool while MariaDB was unreachable.",
     METRIC_COUNTER},
    {{"totals", "events", "replayed"},
     "iotd_events_replayed_total",
     "Spooled events stored by replay.",
     METRIC_COUNTER},
    {{"totals", "events", "busy"},
     "iotd_events_busy_total",
     "Events refused because the store queue or the spool was full.",
     METRIC_COUNTER},
    {{"totals", "events", "spool_bytes"},
     "iotd_events_spool_bytes",
     "Size of the event spool file.",
     METRIC_GAUGE},
    {{"totals", "events", "alarm_changes"},
     "iotd_alarm_changes_total",
     "Alarm state changes (raised, acknowledged, cleared).",
     METRIC_COUNTER},
    {{"totals", "events", "subscribers"},
     "iotd_event_subscribers",
     "Subscriptions to the event stream.",
     METRIC_GAUGE},
    {{"totals", "events", "leases"},
     "iotd_event_leases",
     "Event leases held by clients.",
     METRIC_GAUGE},
    {{"totals", "events", "delivered"},
     "iotd_event_items_delivered_total",
     "Events and alarm changes delivered to subscribers.",
     METRIC_COUNTER},
    {{"totals", "events", "dropped"},
     "iotd_event_items_dropped_total",
     "Events and alarm changes dropped for slow subscribers.",
     METRIC_COUNTER},
};

static const struct keyed_metric keyed[] = {
    {{"totals", "connections"},
     "iotd_connections",
     "Open connections by kind.",
     "kind",
     METRIC_GAUGE},
    {{"totals", "outcomes"},
     "iotd_relay_outcomes_total",
     "Relayed requests by outcome (ok, denied, offline, timeout, busy, ...).",
     "outcome",
     METRIC_COUNTER},
};

static const struct row_labels row_labels[] = {
    {"threads", {"name", "role"}, {"thread", "role"}},
    {"queues", {"name"}, {"queue"}},
};

static const struct row_metric rows[] = {
    {"threads", "cpu_ns", "iotd_thread_cpu_seconds_total", "CPU time of each thread.",
     METRIC_COUNTER, 1e-9},
    {"threads", "busy_ns", "iotd_thread_busy_seconds_total",
     "Time each loop spent handling events (not waiting).", METRIC_COUNTER, 1e-9},
    {"threads", "sessions", "iotd_thread_sessions", "Sessions on each io thread.", METRIC_GAUGE, 1},
    {"threads", "frames_in", "iotd_thread_frames_in_total", "Frames received by each io thread.",
     METRIC_COUNTER, 1},
    {"threads", "frames_out", "iotd_thread_frames_out_total", "Frames sent by each io thread.",
     METRIC_COUNTER, 1},
    {"threads", "bytes_in", "iotd_thread_bytes_in_total",
     "Bytes received by each io thread's device connections.", METRIC_COUNTER, 1},
    {"threads", "bytes_out", "iotd_thread_bytes_out_total",
     "Bytes sent by each io thread's device connections.", METRIC_COUNTER, 1},
    {"queues", "depth", "iotd_queue_depth", "Items waiting in each queue.", METRIC_GAUGE, 1},
    {"queues", "high_water", "iotd_queue_high_water", "Most items each queue has held.",
     METRIC_GAUGE, 1},
    {"queues", "capacity", "iotd_queue_capacity", "Bound of each queue (0: unbounded).",
     METRIC_GAUGE, 1},
    {"queues", "enqueued", "iotd_queue_enqueued_total", "Items put in each queue.", METRIC_COUNTER,
     1},
    {"queues", "dequeued", "iotd_queue_dequeued_total", "Items taken from each queue.",
     METRIC_COUNTER, 1},
    {"queues", "drops", "iotd_queue_drops_total", "Items each queue refused or dropped.",
     METRIC_COUNTER, 1},
};

/* The event store's states, one 0/1 gauge each (the usual way to export an enum). */
static const char *const store_states[] = {"db", "spool", "replay"};

static void put_family(struct web_buf *b, const char *name, const char *help, enum metric_kind kind)
{
    /* Format 0.0.4 declares a family under its samples' own name (counters keep _total). */
    web_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                   kind == METRIC_COUNTER ? "counter" : "gauge");
}

static void put_value(struct web_buf *b, double v)
{
    if (isnan(v))
        web_buf_puts(b, " NaN\n");
    else if (isinf(v))
        web_buf_puts(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else if (v == floor(v) && fabs(v) < 1e15)
        web_buf_printf(b, " %.0f\n", v);
    else
        web_buf_printf(b, " %.17g\n", v);
}

/* name="value" with \, " and newline escaped. */
static void put_label(struct web_buf *b, const char *name, const char *value, bool first)
{
    web_buf_printf(b, "%s%s=\"", first ? "" : ",", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            web_buf_puts(b, "\\\\");
        else if (*p == '"')
            web_buf_puts(b, "\\\"");
        else if (*p == '\n')
            web_buf_puts(b, "\\n");
        else
            web_buf_append(b, p, 1);
    }
    web_buf_puts(b, "\"");
}

static const cJSON *lookup(const cJSON *sample, const char *const *path)
{
    const cJSON *at = sample;
    for (size_t i = 0; path[i] && at; i++)
        at = cJSON_GetObjectItemCaseSensitive(at, path[i]);
    return at;
}

static void put_scalars(const cJSON *sample, struct web_buf *b)
{
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        const cJSON *v = lookup(sample, scalars[i].path);
        if (!cJSON_IsNumber(v))
            continue;
        put_family(b, scalars[i].name, scalars[i].help, scalars[i].kind);
        web_buf_puts(b, scalars[i].name);
        put_value(b, v->valuedouble);
    }
}

static void put_keyed(const cJSON *sample, struct web_buf *b)
{
    for (size_t i = 0; i < sizeof(keyed) / sizeof(keyed[0]); i++) {
        const cJSON *obj = lookup(sample, keyed[i].path), *m;
        bool declared = false;
        cJSON_ArrayForEach(m, obj)
        {
            if (!cJSON_IsNumber(m) || !m->string)
                continue;
            if (!declared)
                put_family(b, keyed[i].name, keyed[i].help, keyed[i].kind);
            declared = true;
            web_buf_printf(b, "%s{", keyed[i].name);
            put_label(b, keyed[i].label, m->string, true);
            web_buf_puts(b, "}");
            put_value(b, m->valuedouble);
        }
    }
}

static const struct row_labels *labels_of(const char *array)
{
    for (size_t i = 0; i < sizeof(row_labels) / sizeof(row_labels[0]); i++)
        if (strcmp(row_labels[i].array, array) == 0)
            return &row_labels[i];
    return NULL;
}

static void put_rows(const cJSON *sample, struct web_buf *b)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row_metric *r = &rows[i];
        const struct row_labels *l = labels_of(r->array);
        const cJSON *row;
        bool declared = false;
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(sample, r->array))
        {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, r->field);
            if (!cJSON_IsNumber(v))
                continue;
            if (!declared)
                put_family(b, r->name, r->help, r->kind);
            declared = true;
            web_buf_printf(b, "%s{", r->name);
            for (size_t k = 0; l && k < 3 && l->keys[k]; k++) {
                const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(row, l->keys[k]));
                put_label(b, l->labels[k], text ? text : "", k == 0);
            }
            web_buf_puts(b, "}");
            put_value(b, v->valuedouble * r->scale);
        }
    }
}

static void put_info(const cJSON *sample, struct web_buf *b)
{
    const char *version = cJSON_GetStringValue(cJSON_GetObjectItem(sample, "version"));
    if (version) {
        put_family(b, "iotd_build_info", "The running iotd's version (always 1).", METRIC_GAUGE);
        web_buf_puts(b, "iotd_build_info{");
        put_label(b, "version", version, true);
        web_buf_puts(b, "} 1\n");
    }
    const char *const path[] = {"totals", "events", "state", NULL};
    const char *state = cJSON_GetStringValue(lookup(sample, path));
    if (state) {
        put_family(b, "iotd_event_store_state",
                   "Where the event store writes: db, spool (MariaDB unreachable) or replay.",
                   METRIC_GAUGE);
        for (size_t i = 0; i < sizeof(store_states) / sizeof(store_states[0]); i++) {
            web_buf_puts(b, "iotd_event_store_state{");
            put_label(b, "state", store_states[i], true);
            web_buf_printf(b, "} %d\n", strcmp(state, store_states[i]) == 0);
        }
    }
}

int metrics_format(const cJSON *sample, struct web_buf *out)
{
    put_info(sample, out);
    put_scalars(sample, out);
    put_keyed(sample, out);
    put_rows(sample, out);
    return web_buf_failed(out) ? IOT_ENOMEM : 0;
}
