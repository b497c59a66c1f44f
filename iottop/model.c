/*
 * model.c - stats samples -> tables, rates, sort and filter (see model.h).
 *
 * The sample is read by the fields of common/stats_schema.h (the table iotd writes it from),
 * never by keys of its own: get_number and get_text take a field, not a string. The columns'
 * keys are iottop's own names for its output (batch JSON, sort keys), not the sample's.
 *
 * The model keeps a private copy of the previous item. Rates are computed row by row against
 * it: a thread is matched by name, a queue by name, a session by (principal, address,
 * since_ms) so that a replaced session is a new row rather than a counter that jumped. When the
 * daemon's pid changed or its uptime went backwards, the previous item is forgotten: iotd
 * restarted, and every delta against it would be meaningless.
 *
 * Tables other than events are rebuilt from scratch at every update; they hold at most a few
 * hundred rows, and rebuilding keeps the code free of stale-row bookkeeping. The view (filtered,
 * sorted indexes) is recomputed after every update and every sort or filter change. Sorting is
 * stable (ties keep the daemon's order) so rows do not jitter between refreshes, and absent
 * cells sort last in both directions: "-" is never the most interesting value.
 */
#include "model.h"

#include "iot_error.h"
#include "iot_grow.h"
#include "stats_schema.h"

#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct model_column thread_columns[] = {
    {"name", "NAME", MODEL_FMT_TEXT, 8, true, NULL},
    {"role", "ROLE", MODEL_FMT_TEXT, 5, false, NULL},
    {"tid", "TID", MODEL_FMT_COUNT, 7, false, NULL},
    {"cpu_percent", "CPU%", MODEL_FMT_PERCENT, 6, false, NULL},
    {"busy_percent", "BUSY%", MODEL_FMT_PERCENT, 6, false, NULL},
    {"sessions", "SESSIONS", MODEL_FMT_COUNT, 8, false, NULL},
    {"frames_in_per_s", "FRM_IN/s", MODEL_FMT_RATE, 9, false, NULL},
    {"frames_out_per_s", "FRM_OUT/s", MODEL_FMT_RATE, 9, false, NULL},
    {"bytes_in_per_s", "B_IN/s", MODEL_FMT_BYTE_RATE, 8, false, NULL},
    {"bytes_out_per_s", "B_OUT/s", MODEL_FMT_BYTE_RATE, 8, false, NULL},
};
enum { T_NAME, T_ROLE, T_TID, T_CPU, T_BUSY, T_SESSIONS, T_FIN, T_FOUT, T_BIN, T_BOUT };

static const struct model_column queue_columns[] = {
    {"name", "NAME", MODEL_FMT_TEXT, 14, true, NULL},
    {"depth", "DEPTH", MODEL_FMT_COUNT, 7, false, NULL},
    {"high_water", "HIGH", MODEL_FMT_COUNT, 7, false, NULL},
    {"capacity", "CAP", MODEL_FMT_COUNT, 7, false, NULL},
    {"fill_percent", "FILL%", MODEL_FMT_PERCENT, 6, false, NULL},
    {"enqueued_per_s", "ENQ/s", MODEL_FMT_RATE, 9, false, NULL},
    {"dequeued_per_s", "DEQ/s", MODEL_FMT_RATE, 9, false, NULL},
    {"drops", "DROPS", MODEL_FMT_COUNT, 8, false, NULL},
    {"drops_per_s", "DROPS/s", MODEL_FMT_RATE, 8, false, NULL},
};
enum { Q_NAME, Q_DEPTH, Q_HIGH, Q_CAP, Q_FILL, Q_ENQ, Q_DEQ, Q_DROPS, Q_DROP_RATE };

static const struct model_column session_columns[] = {
    {"principal", "PRINCIPAL", MODEL_FMT_TEXT, 18, true, NULL},
    {"tenant", "TENANT", MODEL_FMT_TEXT, 10, true, NULL},
    {"kind", "KIND", MODEL_FMT_TEXT, 9, false, NULL},
    {"transport", "TRANSP", MODEL_FMT_TEXT, 6, false, NULL},
    {"address", "ADDRESS", MODEL_FMT_TEXT, 21, true, NULL},
    {"state", "STATE", MODEL_FMT_TEXT, 8, false, NULL},
    {"connected_ms", "CONNECTED", MODEL_FMT_DURATION_MS, 9, false, "since"},
    {"idle_ms", "IDLE", MODEL_FMT_DURATION_MS, 7, false, "last_activity"},
    {"in_flight", "INFL", MODEL_FMT_COUNT, 5, false, "in_flight"},
    {"output_bytes", "OUTBUF", MODEL_FMT_BYTES, 7, false, "output_bytes"},
    {"bytes_out", "BYTES_OUT", MODEL_FMT_BYTES, 9, false, "bytes_out"},
    {"frames_in", "FRM_IN", MODEL_FMT_COUNT, 8, false, "frames_in"},
    {"frames_out", "FRM_OUT", MODEL_FMT_COUNT, 8, false, "frames_out"},
    {"frames_in_per_s", "IN/s", MODEL_FMT_RATE, 7, false, NULL},
    {"frames_out_per_s", "OUT/s", MODEL_FMT_RATE, 7, false, NULL},
};
enum {
    S_PRINCIPAL,
    S_TENANT,
    S_KIND,
    S_TRANSPORT,
    S_ADDRESS,
    S_STATE,
    S_CONNECTED,
    S_IDLE,
    S_INFLIGHT,
    S_OUTBUF,
    S_BYTES_OUT,
    S_FIN,
    S_FOUT,
    S_FIN_RATE,
    S_FOUT_RATE
};

static const struct model_column request_columns[] = {
    {"origin", "ORIGIN", MODEL_FMT_TEXT, 22, true, NULL},
    {"device", "DEVICE", MODEL_FMT_TEXT, 18, true, NULL},
    {"type", "TYPE", MODEL_FMT_TEXT, 16, false, NULL},
    {"age_ms", "AGE", MODEL_FMT_DURATION_MS, 8, false, NULL},
    {"deadline_ms", "DEADLINE", MODEL_FMT_DURATION_MS, 8, false, NULL},
};
enum { R_ORIGIN, R_DEVICE, R_TYPE, R_AGE, R_DEADLINE };

static const struct model_column event_columns[] = {
    {"time_ms", "TIME", MODEL_FMT_CLOCK_MS, 8, false, NULL},
    {"kind", "KIND", MODEL_FMT_TEXT, 12, false, NULL},
    {"principal", "PRINCIPAL", MODEL_FMT_TEXT, 18, true, NULL},
    {"tenant", "TENANT", MODEL_FMT_TEXT, 10, true, NULL},
    {"address", "ADDRESS", MODEL_FMT_TEXT, 21, true, NULL},
    {"detail", "DETAIL", MODEL_FMT_TEXT, 40, false, NULL},
};
enum { E_TIME, E_KIND, E_PRINCIPAL, E_TENANT, E_ADDRESS, E_DETAIL };

static const char *const panel_names[MODEL_PANEL_COUNT] = {"Threads", "Queues", "Sessions",
                                                           "Requests", "Events"};

struct model {
    struct model_table tables[MODEL_PANEL_COUNT];
    struct model_summary summary;
    cJSON *previous; /* the last item taken, for deltas; NULL after a restart */
    char filter[MODEL_FILTER_MAX];
    size_t new_events;
    bool dedupe_events; /* the next item is the first of a new stream */
};

/* ---- cells and rows ---------------------------------------------------------------------- */

static void row_clear(struct model_row *row)
{
    for (size_t i = 0; i < MODEL_MAX_COLUMNS; i++)
        free(row->cells[i].text);
    memset(row, 0, sizeof(*row));
}

static void table_clear(struct model_table *t)
{
    for (size_t i = 0; i < t->row_count; i++)
        row_clear(&t->rows[i]);
    t->row_count = 0;
    t->view_count = 0;
}

/* A new zeroed row at the end, or NULL when the table cannot grow. */
static struct model_row *table_add_row(struct model_table *t)
{
    /* rows and view grow together: row_cap is the room of both. */
    size_t rows_cap = t->row_cap, view_cap = t->row_cap;
    struct model_row *rows = iot_grow(t->rows, t->row_count, &rows_cap, 16, sizeof(*rows));
    if (!rows)
        return NULL;
    t->rows = rows;
    size_t *view = iot_grow(t->view, t->row_count, &view_cap, 16, sizeof(*view));
    if (!view)
        return NULL;
    t->view = view;
    t->row_cap = rows_cap;
    struct model_row *row = &t->rows[t->row_count++];
    memset(row, 0, sizeof(*row));
    return row;
}

static void set_number(struct model_row *row, int col, double value)
{
    row->cells[col].present = true;
    row->cells[col].number = value;
}

/* Copy a string field; absent (not an error) when the field is missing or the copy fails. */
static void set_text(struct model_row *row, int col, const char *text)
{
    if (!text)
        return;
    row->cells[col].text = strdup(text);
    row->cells[col].present = row->cells[col].text != NULL;
}

/* ---- JSON access that treats every field as optional ------------------------------------- */

static const cJSON *field(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* A section of the sample (or of another section) by the schema's key. */
static const cJSON *section(const cJSON *obj, enum stats_section s)
{
    return field(obj, stats_section_key(s));
}

static bool get_number(const cJSON *obj, enum stats_field f, double *out)
{
    const cJSON *v = field(obj, stats_key(f));
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return false;
    *out = v->valuedouble;
    return true;
}

static const char *get_text(const cJSON *obj, enum stats_field f)
{
    const cJSON *v = field(obj, stats_key(f));
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy_number(struct model_row *row, int col, const cJSON *obj, enum stats_field f)
{
    double v;
    if (get_number(obj, f, &v))
        set_number(row, col, v);
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The element of array whose key fields all equal those of like (missing == missing). */
static const cJSON *find_match(const cJSON *array, const cJSON *like,
                               const enum stats_field *text_keys, enum stats_field number_key)
{
    const cJSON *candidate;
    if (!cJSON_IsArray(array))
        return NULL;
    cJSON_ArrayForEach(candidate, array)
    {
        bool same = true;
        for (size_t k = 0; same && text_keys[k] != STATS_FIELD_COUNT; k++)
            same = same_text(get_text(candidate, text_keys[k]), get_text(like, text_keys[k]));
        if (same && number_key != STATS_FIELD_COUNT) {
            double a = 0, b = 0;
            bool has_a = get_number(candidate, number_key, &a);
            bool has_b = get_number(like, number_key, &b);
            same = has_a == has_b && a == b;
        }
        if (same)
            return candidate;
    }
    return NULL;
}

/*
 * Per-second rate of a cumulative counter between prev and cur, dt_ms apart, times scale.
 * Absent when either side lacks it, no time passed, or the counter went down (a restart).
 */
static void set_rate(struct model_row *row, int col, const cJSON *cur, const cJSON *prev,
                     enum stats_field f, double dt_ms, double scale)
{
    double now, before;
    if (!prev || dt_ms <= 0 || !get_number(cur, f, &now) || !get_number(prev, f, &before))
        return;
    if (now < before)
        return;
    set_number(row, col, (now - before) * 1000.0 / dt_ms * scale);
}

/* ---- building the tables ----------------------------------------------------------------- */

static int build_threads(struct model_table *t, const cJSON *item, const cJSON *prev, double dt)
{
    static const enum stats_field keys[] = {STATS_THREAD_NAME, STATS_FIELD_COUNT};
    const cJSON *threads = section(item, STATS_SECTION_THREADS), *th;
    const cJSON *prev_threads = section(prev, STATS_SECTION_THREADS);
    if (!cJSON_IsArray(threads))
        return IOT_OK;
    cJSON_ArrayForEach(th, threads)
    {
        struct model_row *row = table_add_row(t);
        if (!row)
            return IOT_ENOMEM;
        const cJSON *before = find_match(prev_threads, th, keys, STATS_THREAD_TID);
        set_text(row, T_NAME, get_text(th, STATS_THREAD_NAME));
        set_text(row, T_ROLE, get_text(th, STATS_THREAD_ROLE));
        copy_number(row, T_TID, th, STATS_THREAD_TID);
        /* ns of CPU per ms of wall time: x 1e-9 s/ns x 100 % = 1e-7 */
        set_rate(row, T_CPU, th, before, STATS_THREAD_CPU_NS, dt, 1e-7);
        set_rate(row, T_BUSY, th, before, STATS_THREAD_BUSY_NS, dt, 1e-7);
        copy_number(row, T_SESSIONS, th, STATS_THREAD_SESSIONS);
        set_rate(row, T_FIN, th, before, STATS_THREAD_FRAMES_IN, dt, 1);
        set_rate(row, T_FOUT, th, before, STATS_THREAD_FRAMES_OUT, dt, 1);
        set_rate(row, T_BIN, th, before, STATS_THREAD_BYTES_IN, dt, 1);
        set_rate(row, T_BOUT, th, before, STATS_THREAD_BYTES_OUT, dt, 1);
    }
    return IOT_OK;
}

static int build_queues(struct model_table *t, const cJSON *item, const cJSON *prev, double dt)
{
    static const enum stats_field keys[] = {STATS_QUEUE_NAME, STATS_FIELD_COUNT};
    const cJSON *queues = section(item, STATS_SECTION_QUEUES), *q;
    const cJSON *prev_queues = section(prev, STATS_SECTION_QUEUES);
    if (!cJSON_IsArray(queues))
        return IOT_OK;
    cJSON_ArrayForEach(q, queues)
    {
        struct model_row *row = table_add_row(t);
        if (!row)
            return IOT_ENOMEM;
        const cJSON *before = find_match(prev_queues, q, keys, STATS_FIELD_COUNT);
        double depth, cap;
        set_text(row, Q_NAME, get_text(q, STATS_QUEUE_NAME));
        copy_number(row, Q_DEPTH, q, STATS_QUEUE_DEPTH);
        copy_number(row, Q_HIGH, q, STATS_QUEUE_HIGH_WATER);
        copy_number(row, Q_CAP, q, STATS_QUEUE_CAPACITY);
        /* capacity 0 means unbounded (or unknown): a fill level would be a division by zero */
        if (get_number(q, STATS_QUEUE_DEPTH, &depth) && get_number(q, STATS_QUEUE_CAPACITY, &cap) &&
            cap > 0)
            set_number(row, Q_FILL, depth * 100.0 / cap);
        set_rate(row, Q_ENQ, q, before, STATS_QUEUE_ENQUEUED, dt, 1);
        set_rate(row, Q_DEQ, q, before, STATS_QUEUE_DEQUEUED, dt, 1);
        copy_number(row, Q_DROPS, q, STATS_QUEUE_DROPS);
        set_rate(row, Q_DROP_RATE, q, before, STATS_QUEUE_DROPS, dt, 1);
    }
    return IOT_OK;
}

static int build_sessions(struct model_table *t, const cJSON *item, const cJSON *prev, double dt)
{
    static const enum stats_field keys[] = {STATS_SESSION_PRINCIPAL, STATS_SESSION_ADDRESS,
                                            STATS_FIELD_COUNT};
    const cJSON *top = section(section(item, STATS_SECTION_SESSIONS), STATS_SECTION_SESSION_ROWS),
                *s;
    const cJSON *prev_top =
        section(section(prev, STATS_SECTION_SESSIONS), STATS_SECTION_SESSION_ROWS);
    double now = 0;
    bool has_now = get_number(item, STATS_TIME_MS, &now);
    if (!cJSON_IsArray(top))
        return IOT_OK;
    cJSON_ArrayForEach(s, top)
    {
        struct model_row *row = table_add_row(t);
        if (!row)
            return IOT_ENOMEM;
        const cJSON *before = find_match(prev_top, s, keys, STATS_SESSION_SINCE_MS);
        double at;
        set_text(row, S_PRINCIPAL, get_text(s, STATS_SESSION_PRINCIPAL));
        set_text(row, S_TENANT, get_text(s, STATS_SESSION_TENANT));
        set_text(row, S_KIND, get_text(s, STATS_SESSION_KIND));
        set_text(row, S_TRANSPORT, get_text(s, STATS_SESSION_TRANSPORT));
        set_text(row, S_ADDRESS, get_text(s, STATS_SESSION_ADDRESS));
        set_text(row, S_STATE, get_text(s, STATS_SESSION_STATE));
        /* Durations against the sample's own clock, so a skewed local clock does not matter. */
        if (has_now && get_number(s, STATS_SESSION_SINCE_MS, &at))
            set_number(row, S_CONNECTED, now > at ? now - at : 0);
        if (has_now && get_number(s, STATS_SESSION_LAST_ACTIVITY_MS, &at))
            set_number(row, S_IDLE, now > at ? now - at : 0);
        copy_number(row, S_INFLIGHT, s, STATS_SESSION_IN_FLIGHT);
        copy_number(row, S_OUTBUF, s, STATS_SESSION_OUTPUT_BYTES);
        copy_number(row, S_BYTES_OUT, s, STATS_SESSION_BYTES_OUT);
        copy_number(row, S_FIN, s, STATS_SESSION_FRAMES_IN);
        copy_number(row, S_FOUT, s, STATS_SESSION_FRAMES_OUT);
        set_rate(row, S_FIN_RATE, s, before, STATS_SESSION_FRAMES_IN, dt, 1);
        set_rate(row, S_FOUT_RATE, s, before, STATS_SESSION_FRAMES_OUT, dt, 1);
    }
    return IOT_OK;
}

static int build_requests(struct model_table *t, const cJSON *item)
{
    const cJSON *requests = section(item, STATS_SECTION_REQUESTS), *r;
    if (!cJSON_IsArray(requests))
        return IOT_OK;
    cJSON_ArrayForEach(r, requests)
    {
        struct model_row *row = table_add_row(t);
        if (!row)
            return IOT_ENOMEM;
        set_text(row, R_ORIGIN, get_text(r, STATS_REQUEST_ORIGIN));
        set_text(row, R_DEVICE, get_text(r, STATS_REQUEST_DEVICE));
        set_text(row, R_TYPE, get_text(r, STATS_REQUEST_TYPE));
        copy_number(row, R_AGE, r, STATS_REQUEST_AGE_MS);
        copy_number(row, R_DEADLINE, r, STATS_REQUEST_DEADLINE_MS);
    }
    return IOT_OK;
}

static bool cells_equal(const struct model_cell *a, const struct model_cell *b)
{
    if (a->present != b->present)
        return false;
    if (!a->present)
        return true;
    if (a->text || b->text)
        return same_text(a->text, b->text);
    return a->number == b->number;
}

static bool event_known(const struct model_table *t, const struct model_row *row)
{
    for (size_t i = 0; i < t->row_count; i++) {
        bool same = true;
        for (size_t c = 0; same && c < t->column_count; c++)
            same = cells_equal(&t->rows[i].cells[c], &row->cells[c]);
        if (same)
            return true;
    }
    return false;
}

/* Drop the oldest events so that at most MODEL_EVENTS_MAX remain. */
static void trim_events(struct model_table *t)
{
    if (t->row_count <= MODEL_EVENTS_MAX)
        return;
    size_t extra = t->row_count - MODEL_EVENTS_MAX;
    for (size_t i = 0; i < extra; i++)
        row_clear(&t->rows[i]);
    memmove(t->rows, t->rows + extra, MODEL_EVENTS_MAX * sizeof(*t->rows));
    t->row_count = MODEL_EVENTS_MAX;
}

/* Append the item's events; with dedupe, skip those the tail already holds. */
static int append_events(struct model_table *t, const cJSON *item, bool dedupe, size_t *added)
{
    const cJSON *events = section(item, STATS_SECTION_EVENTS), *e;
    size_t known = t->row_count;
    *added = 0;
    if (!cJSON_IsArray(events))
        return IOT_OK;
    cJSON_ArrayForEach(e, events)
    {
        struct model_row *row = table_add_row(t);
        if (!row)
            return IOT_ENOMEM;
        /* The detail is a connection event's reason or a device event's message. "type" is no
         * field of the schema: iotd never sends it, but iottop has always shown it if present. */
        const char *detail = get_text(e, STATS_EVENT_REASON);
        if (!detail)
            detail = get_text(e, STATS_EVENT_MESSAGE);
        if (!detail)
            detail = cJSON_IsString(field(e, "type")) ? field(e, "type")->valuestring : NULL;
        copy_number(row, E_TIME, e, STATS_EVENT_TIME_MS);
        set_text(row, E_KIND, get_text(e, STATS_EVENT_KIND));
        set_text(row, E_PRINCIPAL, get_text(e, STATS_EVENT_PRINCIPAL));
        set_text(row, E_TENANT, get_text(e, STATS_EVENT_TENANT));
        set_text(row, E_ADDRESS, get_text(e, STATS_EVENT_ADDRESS));
        set_text(row, E_DETAIL, detail);
        /* Only rows that were there before this item count as known: two identical events in
         * one item (a device reconnecting twice within a millisecond) are both real. */
        size_t count = t->row_count;
        t->row_count = known;
        bool duplicate = dedupe && event_known(t, row);
        t->row_count = count;
        if (duplicate) {
            row_clear(row);
            t->row_count--;
            continue;
        }
        (*added)++;
    }
    trim_events(t);
    if (*added > t->row_count)
        *added = t->row_count;
    return IOT_OK;
}

/* ---- summary ----------------------------------------------------------------------------- */

static void set_value(struct model_value *v, const cJSON *obj, enum stats_field f)
{
    v->present = get_number(obj, f, &v->value);
}

/* Sum of the numbers in an object, skipping the key "skip" (may be NULL); false when obj is
 * not an object (absent), true for {} (a daemon that counts nothing yet counts zero). */
static bool sum_object(const cJSON *obj, const char *skip, double *sum)
{
    const cJSON *child;
    *sum = 0;
    if (!cJSON_IsObject(obj))
        return false;
    cJSON_ArrayForEach(child, obj)
    {
        if (skip && child->string && strcmp(child->string, skip) == 0)
            continue;
        if (cJSON_IsNumber(child) && isfinite(child->valuedouble))
            *sum += child->valuedouble;
    }
    return true;
}

static bool errors_total(const cJSON *totals, double *out)
{
    double auth = 0, outcomes = 0;
    bool has_auth = get_number(totals, STATS_AUTH_FAILURES, &auth);
    bool has_outcomes = sum_object(field(totals, stats_key(STATS_OUTCOMES)), "ok", &outcomes);
    *out = auth + outcomes;
    return has_auth || has_outcomes;
}

static void summary_rate(struct model_value *v, bool has_now, double now, bool has_before,
                         double before, double dt)
{
    v->present = has_now && has_before && dt > 0 && now >= before;
    v->value = v->present ? (now - before) * 1000.0 / dt : 0;
}

/* Append to the cluster line, cut at its end. */
static void cluster_append(struct model_summary *s, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cluster_append(struct model_summary *s, size_t *used, const char *fmt, ...)
{
    va_list ap;
    if (*used >= sizeof(s->cluster) - 1)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(s->cluster + *used, sizeof(s->cluster) - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used = *used + (size_t)n < sizeof(s->cluster) ? *used + (size_t)n : sizeof(s->cluster) - 1;
}

/* A traffic counter for the cluster line: its number, or -1 when absent. */
static double traffic(const cJSON *t, enum stats_field f)
{
    double v;
    return get_number(t, f, &v) ? v : -1;
}

static void build_cluster(struct model_summary *s, const cJSON *cluster)
{
    size_t used = 0;
    const cJSON *n;
    if (!cJSON_IsObject(cluster))
        return;
    const char *node = get_text(cluster, STATS_CLUSTER_NODE);
    const char *nats = get_text(cluster, STATS_CLUSTER_NATS);
    cluster_append(s, &used, "node %s, NATS %s; nodes", node ? node : "-", nats ? nats : "-");
    unsigned count = 0;
    cJSON_ArrayForEach(n, section(cluster, STATS_SECTION_CLUSTER_NODES))
    {
        const char *name = get_text(n, STATS_CLUSTER_NODE_NAME);
        double devices;
        bool has = get_number(n, STATS_CLUSTER_NODE_DEVICES, &devices);
        cluster_append(s, &used, "%s %s %.0f", count++ ? "," : "", name ? name : "-",
                       has ? devices : 0);
    }
    const cJSON *t = section(cluster, STATS_SECTION_CLUSTER_TRAFFIC);
    if (!cJSON_IsObject(t))
        return;
    cluster_append(s, &used,
                   "; requests to other nodes %.0f (%.1f ms avg), timeouts %.0f, from them %.0f; "
                   "events out %.0f, in %.0f",
                   traffic(t, STATS_CLUSTER_REQUESTS_OUT), traffic(t, STATS_CLUSTER_LATENCY_MS_AVG),
                   traffic(t, STATS_CLUSTER_TIMEOUTS), traffic(t, STATS_CLUSTER_REQUESTS_IN),
                   traffic(t, STATS_CLUSTER_EVENTS_OUT), traffic(t, STATS_CLUSTER_EVENTS_IN));
}

static void build_summary(struct model_summary *s, const cJSON *item, const cJSON *prev, double dt)
{
    unsigned samples = s->samples;
    memset(s, 0, sizeof(*s));
    s->samples = samples + 1;
    set_value(&s->time_ms, item, STATS_TIME_MS);
    set_value(&s->uptime_s, item, STATS_UPTIME_S);
    set_value(&s->pid, item, STATS_PID);
    set_value(&s->rss_bytes, item, STATS_RSS_BYTES);
    s->interval_ms.present = prev && dt > 0;
    s->interval_ms.value = dt;
    snprintf(s->version, sizeof(s->version), "%s",
             get_text(item, STATS_VERSION) ? get_text(item, STATS_VERSION) : "");

    const cJSON *sessions = section(item, STATS_SECTION_SESSIONS);
    set_value(&s->sessions_total, sessions, STATS_SESSIONS_TOTAL);
    snprintf(s->sessions_sort, sizeof(s->sessions_sort), "%s",
             get_text(sessions, STATS_SESSIONS_SORT) ? get_text(sessions, STATS_SESSIONS_SORT)
                                                     : "");

    const cJSON *totals = section(item, STATS_SECTION_TOTALS);
    const cJSON *prev_totals = section(prev, STATS_SECTION_TOTALS);
    const cJSON *conns = section(totals, STATS_SECTION_CONNECTIONS), *c;
    double sum;
    if (sum_object(conns, NULL, &sum)) {
        size_t used = 0;
        s->connections.present = true;
        s->connections.value = sum;
        cJSON_ArrayForEach(c, conns)
        {
            if (!cJSON_IsNumber(c) || !c->string || used >= sizeof(s->connections_detail))
                continue;
            int n = snprintf(s->connections_detail + used, sizeof(s->connections_detail) - used,
                             "%s%s %.0f", used ? ", " : "", c->string, c->valuedouble);
            if (n > 0)
                used += (size_t)n;
        }
    }

    double now, before;
    bool has_now = sum_object(field(totals, stats_key(STATS_OUTCOMES)), NULL, &now);
    bool has_before = sum_object(field(prev_totals, stats_key(STATS_OUTCOMES)), NULL, &before);
    summary_rate(&s->requests_per_s, has_now, now, has_before, before, dt);

    has_now = get_number(totals, STATS_EVENTS_STORED, &now);
    has_before = get_number(prev_totals, STATS_EVENTS_STORED, &before);
    summary_rate(&s->events_per_s, has_now, now, has_before, before, dt);

    has_now = errors_total(totals, &now);
    has_before = errors_total(prev_totals, &before);
    summary_rate(&s->errors_per_s, has_now, now, has_before, before, dt);

    build_cluster(s, section(item, STATS_SECTION_CLUSTER));
}

/* ---- view: filter and sort --------------------------------------------------------------- */

static bool row_matches(const struct model_table *t, const struct model_row *row,
                        const char *filter)
{
    if (!filter[0])
        return true;
    for (size_t c = 0; c < t->column_count; c++) {
        const char *text = row->cells[c].text;
        if (t->columns[c].searchable && text && strcasestr(text, filter))
            return true;
    }
    return false;
}

static int compare_rows(const void *a, const void *b, void *arg)
{
    const struct model_table *t = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int col = t->sort_column;
    int result = 0;
    if (col >= 0) {
        const struct model_cell *x = &t->rows[ia].cells[col], *y = &t->rows[ib].cells[col];
        if (x->present != y->present)
            return x->present ? -1 : 1; /* absent last, whatever the direction */
        if (x->present && t->columns[col].format == MODEL_FMT_TEXT)
            result = strcasecmp(x->text, y->text);
        else if (x->present)
            result = (x->number > y->number) - (x->number < y->number);
        if (t->sort_descending)
            result = -result;
    }
    if (result == 0)
        result = (ia > ib) - (ia < ib); /* stable: ties keep the daemon's order */
    return result;
}

static void refresh_view(struct model_table *t, const char *filter)
{
    t->view_count = 0;
    for (size_t i = 0; i < t->row_count; i++)
        if (row_matches(t, &t->rows[i], filter))
            t->view[t->view_count++] = i;
    if (t->view_count > 1)
        qsort_r(t->view, t->view_count, sizeof(*t->view), compare_rows, t);
}

static void refresh_views(model_t *m)
{
    for (int p = 0; p < MODEL_PANEL_COUNT; p++)
        refresh_view(&m->tables[p], m->filter);
}

/* ---- public API -------------------------------------------------------------------------- */

model_t *model_new(void)
{
    static const struct {
        const struct model_column *columns;
        size_t count;
        int sort_column;
        bool descending;
    } init[MODEL_PANEL_COUNT] = {
        [MODEL_THREADS] = {thread_columns, COUNT_OF(thread_columns), -1, false},
        [MODEL_QUEUES] = {queue_columns, COUNT_OF(queue_columns), -1, false},
        [MODEL_SESSIONS] = {session_columns, COUNT_OF(session_columns), S_FIN, true},
        [MODEL_REQUESTS] = {request_columns, COUNT_OF(request_columns), R_AGE, true},
        [MODEL_EVENTS] = {event_columns, COUNT_OF(event_columns), E_TIME, false},
    };
    model_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    for (int p = 0; p < MODEL_PANEL_COUNT; p++) {
        m->tables[p].columns = init[p].columns;
        m->tables[p].column_count = init[p].count;
        m->tables[p].sort_column = init[p].sort_column;
        m->tables[p].sort_descending = init[p].descending;
    }
    return m;
}

void model_free(model_t *m)
{
    if (!m)
        return;
    for (int p = 0; p < MODEL_PANEL_COUNT; p++) {
        table_clear(&m->tables[p]);
        free(m->tables[p].rows);
        free(m->tables[p].view);
    }
    cJSON_Delete(m->previous);
    free(m);
}

int model_update(model_t *m, const cJSON *item)
{
    int rc = IOT_OK;
    if (!cJSON_IsObject(item))
        return IOT_EINVAL;

    const cJSON *prev = m->previous;
    double now = 0, before = 0, dt = 0;
    double pid = 0, prev_pid = 0, up = 0, prev_up = 0;
    if (prev && get_number(item, STATS_PID, &pid) && get_number(prev, STATS_PID, &prev_pid) &&
        pid != prev_pid)
        prev = NULL; /* another daemon process: nothing to compare with */
    if (prev && get_number(item, STATS_UPTIME_S, &up) &&
        get_number(prev, STATS_UPTIME_S, &prev_up) && up < prev_up)
        prev = NULL; /* restarted in place (same pid after exec, or a pid reused) */
    if (prev && get_number(item, STATS_TIME_MS, &now) && get_number(prev, STATS_TIME_MS, &before))
        dt = now - before;
    if (dt <= 0)
        prev = NULL;

    for (int p = 0; p < MODEL_PANEL_COUNT; p++)
        if (p != MODEL_EVENTS)
            table_clear(&m->tables[p]);
    int rcs[] = {
        build_threads(&m->tables[MODEL_THREADS], item, prev, dt),
        build_queues(&m->tables[MODEL_QUEUES], item, prev, dt),
        build_sessions(&m->tables[MODEL_SESSIONS], item, prev, dt),
        build_requests(&m->tables[MODEL_REQUESTS], item),
        append_events(&m->tables[MODEL_EVENTS], item, m->dedupe_events, &m->new_events),
    };
    for (size_t i = 0; i < COUNT_OF(rcs); i++)
        if (rcs[i] != IOT_OK)
            rc = rcs[i];
    m->dedupe_events = false;
    build_summary(&m->summary, item, prev, dt);

    cJSON *copy = cJSON_Duplicate(item, true);
    if (copy) {
        cJSON_Delete(m->previous);
        m->previous = copy;
    } else {
        rc = IOT_ENOMEM; /* keep the older previous: rates span two intervals, still right */
    }
    refresh_views(m);
    return rc;
}

void model_stream_restarted(model_t *m)
{
    m->dedupe_events = true;
}

const struct model_table *model_table(const model_t *m, enum model_panel panel)
{
    return &m->tables[panel];
}

const struct model_summary *model_summary(const model_t *m)
{
    return &m->summary;
}

const struct model_row *model_view_row(const struct model_table *t, size_t i)
{
    return &t->rows[t->view[i]];
}

void model_set_sort(model_t *m, enum model_panel panel, int column, bool descending)
{
    struct model_table *t = &m->tables[panel];
    if (column < -1 || column >= (int)t->column_count)
        return;
    t->sort_column = column;
    t->sort_descending = descending;
    refresh_view(t, m->filter);
}

void model_step_sort(model_t *m, enum model_panel panel, int step)
{
    struct model_table *t = &m->tables[panel];
    int positions = (int)t->column_count + 1; /* every column and "the daemon's order" */
    int next = ((t->sort_column + 1 + step) % positions + positions) % positions - 1;
    bool descending = next >= 0 && t->columns[next].format != MODEL_FMT_TEXT;
    model_set_sort(m, panel, next, descending);
}

void model_reverse_sort(model_t *m, enum model_panel panel)
{
    struct model_table *t = &m->tables[panel];
    model_set_sort(m, panel, t->sort_column, !t->sort_descending);
}

const char *model_sessions_server_sort(const model_t *m)
{
    const struct model_table *t = &m->tables[MODEL_SESSIONS];
    return t->sort_column >= 0 ? t->columns[t->sort_column].server_sort : NULL;
}

void model_set_filter(model_t *m, const char *text)
{
    snprintf(m->filter, sizeof(m->filter), "%s", text ? text : "");
    refresh_views(m);
}

const char *model_filter(const model_t *m)
{
    return m->filter;
}

const cJSON *model_last_item(const model_t *m)
{
    return m->previous;
}

size_t model_new_events(const model_t *m)
{
    return m->new_events;
}

const char *model_panel_name(enum model_panel panel)
{
    return panel >= 0 && panel < MODEL_PANEL_COUNT ? panel_names[panel] : "?";
}

int model_column_index(const struct model_table *t, const char *key)
{
    for (size_t c = 0; c < t->column_count; c++)
        if (strcmp(t->columns[c].key, key) == 0)
            return (int)c;
    return -1;
}
