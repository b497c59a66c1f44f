/*
 * output.c - human and JSON rendering of control replies (see output.h).
 *
 * Every JSON value shown to a human goes through format_value, which decides once how each type
 * looks (booleans yes/no, integers without a decimal point, absent or empty as "-", arrays of
 * scalars joined with ",") and escapes control characters (C0, DEL, C1) and invalid UTF-8 with
 * iot_text_escape, so a name stored by someone else or an event field a device sent cannot
 * drive the operator's terminal; keys and error messages are escaped the same way. JSON output
 * goes through ctl_json_print, so it is valid UTF-8 JSON whatever bytes the daemon relayed. Tables
 * are built in two passes: format every cell, then measure the widest cell of each column (in UTF-8
 * characters, not bytes) and print.
 */
#include "output.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "iot_grow.h"
#include "iot_text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A sub-table of a nested array shows at most this many distinct keys. */
#define NESTED_MAX_COLUMNS 16

/* A growable string for building one cell. */
struct text {
    char *data;
    size_t len;
    size_t cap;
};

static void text_append(struct text *t, const char *s, size_t n)
{
    char *data = iot_reserve(t->data, t->len + n + 1, &t->cap, 64, 1);
    if (!data)
        return; /* the cell is shown truncated rather than aborting the whole output */
    t->data = data;
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

/* Append s with control characters and invalid UTF-8 escaped (iot_text_escape). */
static void text_append_sanitized(struct text *t, const char *s)
{
    char buf[256];
    size_t len = strlen(s);
    /* Piece by piece through a fixed buffer: a cut between pieces can split a UTF-8 sequence,
     * so each piece ends on a character boundary (at most 3 bytes held back). */
    while (len > 0) {
        size_t n = len < 63 ? len : 63;
        while (n < len && n > 60 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        size_t out = iot_text_escape(buf, sizeof(buf), s, n);
        text_append(t, buf, out);
        s += n;
        len -= n;
    }
}

static bool flat_object(const cJSON *v)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (cJSON_IsArray(e) || cJSON_IsObject(e))
            return false;
    }
    return true;
}

static void append_scalar(struct text *t, const cJSON *v)
{
    char number[64];
    if (!v || cJSON_IsNull(v)) {
        text_append(t, "-", 1);
    } else if (cJSON_IsBool(v)) {
        text_append(t, cJSON_IsTrue(v) ? "yes" : "no", cJSON_IsTrue(v) ? 3 : 2);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(number, sizeof(number), "%.0f", d);
        else
            snprintf(number, sizeof(number), "%g", d);
        text_append(t, number, strlen(number));
    } else if (cJSON_IsString(v)) {
        if (v->valuestring[0])
            text_append_sanitized(t, v->valuestring);
        else
            text_append(t, "-", 1);
    } else if (cJSON_IsObject(v) && flat_object(v)) {
        /* Event fields and the like: key=value pairs read better than JSON. */
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (e != v->child)
                text_append(t, " ", 1);
            text_append_sanitized(t, e->string);
            text_append(t, "=", 1);
            append_scalar(t, e);
        }
        if (!v->child)
            text_append(t, "-", 1);
    } else {
        char *compact = ctl_json_print(v, false);
        text_append_sanitized(t, compact ? compact : "?");
        free(compact);
    }
}

static bool is_scalar(const cJSON *v)
{
    return !cJSON_IsArray(v) && !cJSON_IsObject(v);
}

/* A malloc'ed copy of s with control characters replaced (NULL only when out of memory). */
static char *sanitized_copy(const char *s)
{
    struct text t = {0};
    text_append(&t, "", 0);
    text_append_sanitized(&t, s);
    return t.data;
}

/* Format one value for a human as a malloc'ed string (NULL only when out of memory). */
static char *format_value(const cJSON *v)
{
    struct text t = {0};
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0) {
        text_append(&t, "-", 1);
    } else if (cJSON_IsArray(v)) {
        bool all_scalars = true;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) all_scalars = all_scalars && is_scalar(e);
        if (!all_scalars) {
            append_scalar(&t, v);
        } else {
            cJSON_ArrayForEach(e, v)
            {
                if (e != v->child)
                    text_append(&t, ",", 1);
                append_scalar(&t, e);
            }
        }
    } else {
        append_scalar(&t, v);
    }
    return t.data;
}

/* Width on a terminal: UTF-8 continuation bytes take no column. */
static size_t display_width(const char *s)
{
    size_t width = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            width++;
    return width;
}

static void print_padded(FILE *out, const char *s, size_t width, bool last)
{
    fputs(s, out);
    if (last)
        return;
    for (size_t w = display_width(s); w < width + 2; w++)
        fputc(' ', out);
}

/* A table, its header first unless header is false (the later pages of --all). */
static void print_table(FILE *out, const char *const columns[], const cJSON *rows, int indent,
                        bool header)
{
    size_t ncols = 0;
    while (columns[ncols])
        ncols++;
    size_t nrows = (size_t)cJSON_GetArraySize(rows);
    char **cells = calloc((nrows + 1) * ncols + 1, sizeof(*cells));
    size_t *widths = calloc(ncols + 1, sizeof(*widths));
    if (!cells || !widths)
        goto out;

    /* Row 0 is the header. */
    for (size_t c = 0; c < ncols; c++) {
        /* Upper-cased first, then escaped (a nested table's keys come from the daemon), so
         * that an escape keeps its lower-case \x / \u. */
        char *upper = strdup(columns[c]);
        for (char *p = upper; p && *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        cells[c] = upper ? sanitized_copy(upper) : NULL;
        free(upper);
    }
    size_t r = 1;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        for (size_t c = 0; c < ncols; c++) {
            const cJSON *v = cJSON_IsObject(row) ? cJSON_GetObjectItemCaseSensitive(row, columns[c])
                                                 : (c == 0 ? row : NULL);
            cells[r * ncols + c] = format_value(v);
        }
        r++;
    }
    for (size_t i = 0; i < r * ncols; i++) {
        size_t w = cells[i] ? display_width(cells[i]) : 0;
        if (w > widths[i % ncols])
            widths[i % ncols] = w;
    }
    for (size_t i = header ? 0 : 1; i < r; i++) {
        fprintf(out, "%*s", indent, "");
        for (size_t c = 0; c < ncols; c++) {
            const char *cell = cells[i * ncols + c];
            print_padded(out, cell ? cell : "?", widths[c], c + 1 == ncols);
        }
        fputc('\n', out);
    }
out:
    if (cells)
        for (size_t i = 0; i < (nrows + 1) * ncols; i++)
            free(cells[i]);
    free(cells);
    free(widths);
}

void iotctl_print_table(FILE *out, const char *const columns[], const cJSON *rows, int indent)
{
    print_table(out, columns, rows, indent, true);
}

/* The keys of an array of objects, in order of first appearance: the columns of its sub-table. */
static size_t nested_columns(const cJSON *rows, const char *columns[NESTED_MAX_COLUMNS + 1])
{
    size_t n = 0;
    const cJSON *row, *field;
    cJSON_ArrayForEach(row, rows)
    {
        cJSON_ArrayForEach(field, row)
        {
            bool known = false;
            for (size_t i = 0; i < n && !known; i++)
                known = strcmp(columns[i], field->string) == 0;
            if (!known && n < NESTED_MAX_COLUMNS)
                columns[n++] = field->string;
        }
    }
    columns[n] = NULL;
    return n;
}

static bool is_object_array(const cJSON *v)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return false;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) if (!cJSON_IsObject(e)) return false;
    return true;
}

/* One "key: value" entry; nested structures go on the following lines, indented. */
static void print_entry(FILE *out, const cJSON *item, int indent)
{
    char *key = sanitized_copy(item->string);
    fprintf(out, "%*s%s:", indent, "", key ? key : "?");
    free(key);
    if (cJSON_IsObject(item) && item->child) {
        fputc('\n', out);
        iotctl_print_object(out, item, indent + 2);
    } else if (is_object_array(item)) {
        const char *columns[NESTED_MAX_COLUMNS + 1];
        fputc('\n', out);
        if (nested_columns(item, columns) > 0)
            iotctl_print_table(out, columns, item, indent + 2);
    } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) > 0) {
        const cJSON *e;
        fputc('\n', out);
        cJSON_ArrayForEach(e, item)
        {
            char *value = format_value(e);
            fprintf(out, "%*s%s\n", indent + 2, "", value ? value : "?");
            free(value);
        }
    } else {
        char *value = format_value(item);
        fprintf(out, " %s\n", value ? value : "?");
        free(value);
    }
}

void iotctl_print_object(FILE *out, const cJSON *object, int indent)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, object) print_entry(out, item, indent);
}

int iotctl_print_result(FILE *out, FILE *note, const struct ctl_command *cmd, const cJSON *result,
                        bool json)
{
    const char *decision = ctl_get_string(result, "decision");
    int status = (decision && strcmp(decision, "allow") != 0) ? 4 : 0;

    if (json) {
        char *text = ctl_json_print(result, false);
        fprintf(out, "%s\n", text ? text : "{}");
        free(text);
        return status;
    }

    const cJSON *rows =
        cmd->list_key ? cJSON_GetObjectItemCaseSensitive(result, cmd->list_key) : NULL;
    if (cmd->columns[0] && cJSON_IsArray(rows)) {
        iotctl_print_table(out, cmd->columns, rows, 0);
        return status;
    }

    const cJSON *values =
        cmd->flags & CTL_PRINTS_ARGS ? cJSON_GetObjectItemCaseSensitive(result, "args") : NULL;
    if (cJSON_IsArray(values)) {
        const cJSON *v;
        cJSON_ArrayForEach(v, values)
        {
            char *value = format_value(v);
            fprintf(out, "%s\n", value ? value : "");
            free(value);
        }
        return status;
    }

    if (decision) {
        char *value = format_value(cJSON_GetObjectItemCaseSensitive(result, "decision"));
        fprintf(out, "%s\n", value ? value : "?");
        free(value);
    }
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(result, "secret");
    const cJSON *item;
    cJSON_ArrayForEach(item, result)
    {
        if ((item == secret && cJSON_IsString(secret)) || strcmp(item->string, "decision") == 0)
            continue;
        /* access check's verdict reads as the JSON it mirrors (iotctl(8): allow: true|false),
         * not as the yes/no of other booleans: scripts grep it beside the first line. */
        if (decision && cJSON_IsBool(item) && strcmp(item->string, "allow") == 0) {
            fprintf(out, "allow: %s\n", cJSON_IsTrue(item) ? "true" : "false");
            continue;
        }
        print_entry(out, item, 0);
    }
    if (cJSON_IsString(secret)) {
        print_entry(out, secret, 0);
        fflush(out);
        fprintf(note, "iotctl: store this secret now (e.g. in the device's provisioning file): "
                      "it will not be shown again\n");
    }
    return status;
}

void iotctl_print_error(FILE *out, FILE *err, int code, const char *message,
                        const cJSON *error_object, bool json)
{
    if (!message || !*message)
        message = iot_strerror(code);
    char *shown = iot_text_escape_dup(message);
    fprintf(err, "iotctl: %s (%s)\n", shown ? shown : "?", iot_error_name(code));
    free(shown);
    if (!json)
        return;
    cJSON *built = NULL;
    if (!error_object) {
        built = cJSON_CreateObject();
        cJSON_AddStringToObject(built, "code", iot_error_name(code));
        cJSON_AddStringToObject(built, "message", message);
        error_object = built;
    }
    char *text = ctl_json_print(error_object, false);
    if (text)
        fprintf(out, "%s\n", text);
    free(text);
    cJSON_Delete(built);
}

/* "TIME DEVICE EVENT NAME k=v ..." for an event or alarm item of a watch stream. */
static bool print_watch_item(FILE *out, const cJSON *item)
{
    const char *kind = ctl_get_string(item, "kind");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(item, "fields");
    if (!kind || !cJSON_IsObject(fields))
        return false;
    char *line = NULL, *values = format_value(fields);
    const char *time = ctl_get_string(item, "time"), *device = ctl_get_string(item, "device"),
               *name = ctl_get_string(item, "name");
    struct text t = {0};
    text_append(&t, "", 0);
    text_append_sanitized(&t, time ? time : "-");
    text_append(&t, " ", 1);
    text_append_sanitized(&t, device ? device : "-");
    text_append(&t, strcmp(kind, "alarm") == 0 ? " ALARM " : " EVENT ", 7);
    text_append_sanitized(&t, name ? name : "-");
    if (strcmp(kind, "event") == 0) {
        char seq[32];
        snprintf(seq, sizeof(seq), " seq=%lld", (long long)ctl_get_int(item, "seq", 0));
        text_append(&t, seq, strlen(seq));
    }
    if (fields->child) {
        text_append(&t, " ", 1);
        text_append(&t, values ? values : "?", values ? strlen(values) : 1);
    }
    line = t.data;
    fprintf(out, "%s\n", line ? line : "?");
    free(line);
    free(values);
    return true;
}

void iotctl_print_stream_item(FILE *out, const cJSON *item, bool json)
{
    if (!json && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(item, "dropped"))) {
        fprintf(out, "-- %lld items dropped: this watcher did not keep up\n",
                (long long)ctl_get_int(item, "dropped", 0));
    } else if (!json && print_watch_item(out, item)) {
        /* printed */
    } else if (json) {
        char *text = ctl_json_print(item, false);
        if (text)
            fprintf(out, "%s\n", text);
        free(text);
    } else if (cJSON_IsObject(item)) {
        const cJSON *field;
        cJSON_ArrayForEach(field, item)
        {
            char *key = sanitized_copy(field->string), *value = format_value(field);
            fprintf(out, "%s%s=%s", field == item->child ? "" : " ", key ? key : "?",
                    value ? value : "?");
            free(key);
            free(value);
        }
        fputc('\n', out);
    } else {
        char *value = format_value(item);
        fprintf(out, "%s\n", value ? value : "?");
        free(value);
    }
    fflush(out);
}

/* One CSV field: quoted when it holds a comma, a quote or a line break (quotes doubled). */
void iotctl_csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* CSV records of rows, after the header unless header is false. */
static void print_csv(FILE *out, const struct ctl_command *cmd, const cJSON *rows, bool header)
{
    for (size_t c = 0; header && cmd->columns[c]; c++) {
        if (c)
            fputc(',', out);
        iotctl_csv_field(out, cmd->columns[c]);
    }
    if (header)
        fputs("\r\n", out);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        for (size_t c = 0; cmd->columns[c]; c++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, cmd->columns[c]);
            if (c)
                fputc(',', out);
            if (!v || cJSON_IsNull(v))
                continue; /* empty field: no value */
            char *text = cJSON_IsString(v) ? sanitized_copy(v->valuestring) : format_value(v);
            iotctl_csv_field(out, text ? text : "");
            free(text);
        }
        fputs("\r\n", out);
    }
}

int iotctl_print_csv(FILE *out, const struct ctl_command *cmd, const cJSON *result)
{
    const cJSON *rows =
        cmd->list_key ? cJSON_GetObjectItemCaseSensitive(result, cmd->list_key) : NULL;
    if (!cmd->columns[0] || !cJSON_IsArray(rows))
        return iotctl_print_result(out, stderr, cmd, result, false);
    print_csv(out, cmd, rows, true);
    return 0;
}

void iotctl_print_page(FILE *out, const struct ctl_command *cmd, const cJSON *result,
                       enum iotctl_format format, bool first)
{
    const cJSON *rows =
        cmd->list_key ? cJSON_GetObjectItemCaseSensitive(result, cmd->list_key) : NULL;
    const cJSON *row;
    switch (format) {
    case IOTCTL_TABLE:
        print_table(out, cmd->columns, rows, 0, first);
        break;
    case IOTCTL_CSV:
        print_csv(out, cmd, rows, first);
        break;
    case IOTCTL_JSON:
        cJSON_ArrayForEach(row, rows)
        {
            char *text = ctl_json_print(row, false);
            fprintf(out, "%s\n", text ? text : "{}");
            free(text);
        }
        break;
    }
}
