/*
 * report.c - batch output of the model (see report.h).
 *
 * Both forms walk the same tables the screen draws, column by column, so adding a column to the
 * model adds it everywhere. In the text form text cells are never cut: a script that greps a
 * long principal must find it whole, even if that pushes the row's alignment.
 */
#include "report.h"

#include "format.h"
#include "stats_schema.h"

#include <math.h>
#include <string.h>

static void value_text(struct model_value v, void (*fmt)(double, char *, size_t), char *buf,
                       size_t len)
{
    if (v.present)
        fmt(v.value, buf, len);
    else
        snprintf(buf, len, "-");
}

static void plain_number(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.0f", v);
}

void report_header_line(const model_t *model, char *buf, size_t len)
{
    const struct model_summary *s = model_summary(model);
    char up[32], conns[32], sessions[32], req[32], events[32], errors[32], rss[32], pid[32];
    value_text(s->uptime_s, format_uptime, up, sizeof(up));
    value_text(s->connections, plain_number, conns, sizeof(conns));
    value_text(s->sessions_total, plain_number, sessions, sizeof(sessions));
    value_text(s->requests_per_s, format_rate, req, sizeof(req));
    value_text(s->events_per_s, format_rate, events, sizeof(events));
    value_text(s->errors_per_s, format_rate, errors, sizeof(errors));
    value_text(s->rss_bytes, format_bytes, rss, sizeof(rss));
    value_text(s->pid, plain_number, pid, sizeof(pid));
    snprintf(buf, len,
             "iotd %s  pid %s  up %s  connections %s%s%s%s  sessions %s  req/s %s  events/s %s  "
             "errors/s %s  RSS %s",
             s->version[0] ? s->version : "-", pid, up, conns, s->connections_detail[0] ? " (" : "",
             s->connections_detail, s->connections_detail[0] ? ")" : "", sessions, req, events,
             errors, rss);
}

static void print_table(FILE *out, const struct model_table *t)
{
    char cell[256];
    for (size_t c = 0; c < t->column_count; c++) {
        const struct model_column *col = &t->columns[c];
        bool left = col->format == MODEL_FMT_TEXT;
        fprintf(out, "%s%*s", c ? " " : "", left ? -col->width : col->width, col->title);
    }
    fputc('\n', out);
    for (size_t i = 0; i < t->view_count; i++) {
        const struct model_row *row = model_view_row(t, i);
        for (size_t c = 0; c < t->column_count; c++) {
            const struct model_column *col = &t->columns[c];
            bool left = col->format == MODEL_FMT_TEXT;
            format_cell(col, &row->cells[c], col->width, cell, sizeof(cell));
            /* the last column is not padded: no trailing blanks for scripts to trim */
            if (c + 1 == t->column_count && left)
                fprintf(out, "%s%s", c ? " " : "", cell);
            else
                fprintf(out, "%s%*s", c ? " " : "", left ? -col->width : col->width, cell);
        }
        fputc('\n', out);
    }
}

void report_text(FILE *out, const model_t *model)
{
    char line[512];
    const struct model_summary *s = model_summary(model);
    report_header_line(model, line, sizeof(line));
    if (s->cluster[0])
        fprintf(out, "%s\ncluster: %s\n\n", line, s->cluster);
    else
        fprintf(out, "%s\n\n", line);
    fprintf(out, "Threads\n");
    print_table(out, model_table(model, MODEL_THREADS));
    fprintf(out, "\nQueues\n");
    print_table(out, model_table(model, MODEL_QUEUES));
    const struct model_table *sessions = model_table(model, MODEL_SESSIONS);
    fprintf(out, "\nSessions (top %zu", sessions->row_count);
    if (s->sessions_total.present)
        fprintf(out, " of %.0f", s->sessions_total.value);
    if (s->sessions_sort[0])
        fprintf(out, " by %s", s->sessions_sort);
    fprintf(out, ")\n");
    print_table(out, sessions);
    fputc('\n', out);
}

/* A number for JSON: rates rounded to 1/1000 so lines stay short; null when absent. */
static cJSON *json_value(struct model_value v)
{
    if (!v.present)
        return cJSON_CreateNull();
    return cJSON_CreateNumber(round(v.value * 1000) / 1000);
}

static cJSON *json_cell(const struct model_column *col, const struct model_cell *cell)
{
    if (!cell->present)
        return cJSON_CreateNull();
    if (col->format == MODEL_FMT_TEXT)
        return cJSON_CreateString(cell->text);
    return json_value((struct model_value){true, cell->number});
}

/* Rows [first, view_count) of a table as an array of objects keyed by column. */
static cJSON *json_rows(const struct model_table *t, size_t first)
{
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = first; rows && i < t->view_count; i++) {
        const struct model_row *row = model_view_row(t, i);
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddItemToArray(rows, obj)) {
            cJSON_Delete(obj);
            cJSON_Delete(rows);
            return NULL;
        }
        for (size_t c = 0; c < t->column_count; c++)
            cJSON_AddItemToObject(obj, t->columns[c].key,
                                  json_cell(&t->columns[c], &row->cells[c]));
    }
    return rows;
}

/* The events new in the last sample, oldest first, whatever the panel's sort. */
static cJSON *json_new_events(const model_t *model)
{
    const struct model_table *t = model_table(model, MODEL_EVENTS);
    size_t n = model_new_events(model);
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = t->row_count - n; rows && i < t->row_count; i++) {
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddItemToArray(rows, obj)) {
            cJSON_Delete(obj);
            cJSON_Delete(rows);
            return NULL;
        }
        for (size_t c = 0; c < t->column_count; c++)
            cJSON_AddItemToObject(obj, t->columns[c].key,
                                  json_cell(&t->columns[c], &t->rows[i].cells[c]));
    }
    return rows;
}

cJSON *report_json(const model_t *model)
{
    const struct model_summary *s = model_summary(model);
    cJSON *out = cJSON_CreateObject();
    if (!out)
        return NULL;
    cJSON_AddItemToObject(out, "time_ms", json_value(s->time_ms));
    cJSON_AddItemToObject(out, "uptime_s", json_value(s->uptime_s));
    cJSON_AddItemToObject(out, "version",
                          s->version[0] ? cJSON_CreateString(s->version) : cJSON_CreateNull());
    cJSON_AddItemToObject(out, "pid", json_value(s->pid));
    cJSON_AddItemToObject(out, "rss_bytes", json_value(s->rss_bytes));
    cJSON_AddItemToObject(out, "interval_ms", json_value(s->interval_ms));

    cJSON *meters = cJSON_AddObjectToObject(out, "meters");
    cJSON_AddItemToObject(meters, "uptime_s", json_value(s->uptime_s));
    cJSON_AddItemToObject(meters, "connections", json_value(s->connections));
    cJSON_AddItemToObject(meters, "sessions_total", json_value(s->sessions_total));
    cJSON_AddItemToObject(meters, "requests_per_s", json_value(s->requests_per_s));
    cJSON_AddItemToObject(meters, "events_per_s", json_value(s->events_per_s));
    cJSON_AddItemToObject(meters, "errors_per_s", json_value(s->errors_per_s));
    cJSON_AddItemToObject(meters, "rss_bytes", json_value(s->rss_bytes));

    cJSON_AddItemToObject(out, "threads", json_rows(model_table(model, MODEL_THREADS), 0));
    cJSON_AddItemToObject(out, "queues", json_rows(model_table(model, MODEL_QUEUES), 0));
    cJSON *sessions = cJSON_AddObjectToObject(out, "sessions");
    cJSON_AddItemToObject(sessions, "total", json_value(s->sessions_total));
    cJSON_AddItemToObject(sessions, "sort",
                          s->sessions_sort[0] ? cJSON_CreateString(s->sessions_sort)
                                              : cJSON_CreateNull());
    cJSON_AddItemToObject(sessions, "top", json_rows(model_table(model, MODEL_SESSIONS), 0));
    cJSON_AddItemToObject(out, "requests", json_rows(model_table(model, MODEL_REQUESTS), 0));
    cJSON_AddItemToObject(out, "events", json_new_events(model));

    /* The daemon's totals as it sent them (the report's own keys are iottop's, not the
     * sample's). */
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(model_last_item(model),
                                                           stats_section_key(STATS_SECTION_TOTALS));
    cJSON_AddItemToObject(out, "totals",
                          totals ? cJSON_Duplicate(totals, true) : cJSON_CreateNull());
    /* ...and its cluster, only from a node of a cluster. */
    const cJSON *cluster = cJSON_GetObjectItemCaseSensitive(
        model_last_item(model), stats_section_key(STATS_SECTION_CLUSTER));
    if (cluster)
        cJSON_AddItemToObject(out, "cluster", cJSON_Duplicate(cluster, true));
    return out;
}
