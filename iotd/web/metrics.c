/*
 * metrics.c - stats sample to Prometheus text (see metrics.h), one family per field of the
 * schema in table order: find the field's container in the sample (its section's path of
 * keys), then write one sample line per row (or map entry) under the family's HELP and TYPE.
 */
#include "web/metrics.h"

#include "iot_error.h"
#include "stats_schema.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The family name's prefix for each section (see metrics.h); NULL: not exported. */
static const char *const section_prefix[STATS_SECTION_COUNT] = {
    [STATS_SECTION_SAMPLE] = "",
    [STATS_SECTION_THREADS] = "thread_",
    [STATS_SECTION_QUEUES] = "queue_",
    [STATS_SECTION_TOTALS] = "",
    [STATS_SECTION_CONNECTIONS] = "connections_",
    [STATS_SECTION_EVENT_TOTALS] = "event_",
    [STATS_SECTION_SESSIONS] = "sessions_",
    [STATS_SECTION_CLUSTER] = "cluster_",
    [STATS_SECTION_CLUSTER_NODES] = "cluster_node_",
    [STATS_SECTION_CLUSTER_TRAFFIC] = "cluster_",
};

/* How a unit is spelled in a name and scaled to it. */
struct unit_rule {
    enum stats_unit unit;
    const char *suffix;   /* the key's own suffix for it */
    const char *spelling; /* what replaces it */
    double scale;
};

static const struct unit_rule unit_rules[] = {
    {STATS_UNIT_NANOSECONDS, "_ns", "_seconds", 1e-9},
    {STATS_UNIT_MILLISECONDS, "_ms", "_seconds", 1e-3},
    {STATS_UNIT_SECONDS, "_s", "_seconds", 1},
};

/* The field's family name (without the _total of counters) and the scale of its values. */
static void family_name(const struct stats_field_info *f, char *name, size_t len, double *scale)
{
    const char *key = f->key;
    size_t key_len = strlen(key);
    const char *spelling = "";
    *scale = 1;
    for (size_t i = 0; i < sizeof(unit_rules) / sizeof(unit_rules[0]); i++) {
        size_t n = strlen(unit_rules[i].suffix);
        if (f->unit == unit_rules[i].unit && key_len > n &&
            strcmp(key + key_len - n, unit_rules[i].suffix) == 0) {
            key_len -= n;
            spelling = unit_rules[i].spelling;
            *scale = unit_rules[i].scale;
        }
    }
    const char *prefix = section_prefix[f->section];
    if (strcmp(key, "total") == 0) /* sessions.total: the count itself, not a counter's _total */
        snprintf(name, len, "iotd_%.*s", (int)(strlen(prefix) - 1), prefix);
    else
        snprintf(name, len, "iotd_%s%.*s%s%s", prefix, (int)key_len, key, spelling,
                 f->kind == STATS_COUNTER ? "_total" : "");
}

/* The JSON container of a section within the sample (an object, or the array of its rows). */
static const cJSON *container(const cJSON *sample, enum stats_section section)
{
    const struct stats_section_info *s = stats_section_info(section);
    if (section == STATS_SECTION_SAMPLE || !s)
        return sample;
    return cJSON_GetObjectItemCaseSensitive(container(sample, s->parent), s->key);
}

static void put_escaped(struct web_buf *b, const char *text, bool quotes)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            web_buf_puts(b, "\\\\");
        else if (*p == '\n')
            web_buf_puts(b, "\\n");
        else if (*p == '"' && quotes)
            web_buf_puts(b, "\\\"");
        else
            web_buf_append(b, p, 1);
    }
}

static void put_family(struct web_buf *b, const char *name, const struct stats_field_info *f)
{
    web_buf_printf(b, "# HELP %s ", name);
    put_escaped(b, f->help, false);
    web_buf_printf(b, "\n# TYPE %s %s\n", name, f->kind == STATS_COUNTER ? "counter" : "gauge");
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

static void put_label(struct web_buf *b, const char *name, const char *value, bool *first)
{
    web_buf_printf(b, "%s%s=\"", *first ? "{" : ",", name);
    put_escaped(b, value, true);
    web_buf_puts(b, "\"");
    *first = false;
}

/* A row's labels: the text fields of its section. */
static void put_row_labels(struct web_buf *b, enum stats_section section, const cJSON *row,
                           bool *first)
{
    for (int k = 0; k < STATS_FIELD_COUNT; k++) {
        const struct stats_field_info *l = stats_field_info((enum stats_field)k);
        if (l->section != section || l->value != STATS_TEXT)
            continue;
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, l->key));
        if (text)
            put_label(b, l->key, text, first);
    }
}

/* One sample line of the family name (declared before its first line): the row's labels
 * when rows, the map's label when map_key, then the value. */
static void put_line(struct web_buf *b, const struct stats_field_info *f, const char *name,
                     const cJSON *row, bool rows, const char *map_key, double value, bool *declared)
{
    if (!*declared)
        put_family(b, name, f);
    *declared = true;
    bool first = true;
    web_buf_puts(b, name);
    if (rows)
        put_row_labels(b, f->section, row, &first);
    if (map_key)
        put_label(b, f->map_label, map_key, &first);
    if (!first)
        web_buf_puts(b, "}");
    put_value(b, value);
}

/* The lines of one number or map field of one row or object. */
static void put_field_in(struct web_buf *b, const struct stats_field_info *f, const char *name,
                         double scale, const cJSON *row, bool rows, bool *declared)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, f->key);
    const cJSON *entry;
    if (f->value != STATS_MAP) {
        if (cJSON_IsNumber(v))
            put_line(b, f, name, row, rows, NULL, v->valuedouble * scale, declared);
        return;
    }
    cJSON_ArrayForEach(entry, v)
    {
        if (cJSON_IsNumber(entry) && entry->string)
            put_line(b, f, name, row, rows, entry->string, entry->valuedouble * scale, declared);
    }
}

/* A text field of an object: an info gauge with the text as its label. */
static void put_info(struct web_buf *b, const struct stats_field_info *f, const cJSON *object)
{
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, f->key));
    char name[128];
    if (!text)
        return;
    snprintf(name, sizeof(name), "iotd_%s%s_info", section_prefix[f->section], f->key);
    struct stats_field_info as_gauge = *f;
    as_gauge.kind = STATS_GAUGE;
    put_family(b, name, &as_gauge);
    bool first = true;
    web_buf_puts(b, name);
    put_label(b, f->key, text, &first);
    web_buf_puts(b, "} 1\n");
}

int metrics_format(const cJSON *sample, struct web_buf *out)
{
    for (int i = 0; i < STATS_FIELD_COUNT; i++) {
        const struct stats_field_info *f = stats_field_info((enum stats_field)i);
        const struct stats_section_info *s = stats_section_info(f->section);
        if (!s->metrics || !section_prefix[f->section] || f->unit == STATS_UNIT_EPOCH_MS)
            continue; /* records, and wall-clock times, are not series */
        const cJSON *at = container(sample, f->section);
        bool rows = s->shape == STATS_ROWS;
        if (f->kind == STATS_LABEL) {
            if (!rows && f->value == STATS_TEXT)
                put_info(out, f, at);
            continue; /* a row's labels go with its numbers */
        }
        char name[128];
        double scale;
        bool declared = false;
        family_name(f, name, sizeof(name), &scale);
        if (!rows) {
            put_field_in(out, f, name, scale, at, false, &declared);
            continue;
        }
        const cJSON *row;
        cJSON_ArrayForEach(row, at)
        {
            put_field_in(out, f, name, scale, row, true, &declared);
        }
    }
    return web_buf_failed(out) ? IOT_ENOMEM : 0;
}
