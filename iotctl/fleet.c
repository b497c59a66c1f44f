/*
 * fleet.c - device import and export (see fleet.h).
 *
 * DESIGN. Import reads its file a line at a time and holds one batch: the first non-blank
 * byte says the format ('{': JSON lines, else CSV whose first record names the columns). Each
 * row becomes a flat object with the file's line number, and every IOTCTL_IMPORT_BATCH rows
 * go to iotd as one device.import request, which iotd checks whole and applies in one
 * transaction (registry/admin_import.c): a bad row fails its batch with nothing of it
 * applied and its line in the error; the batches before it stay applied, and running the
 * same import again skips them (their devices exist, identical). A row the file itself gets
 * wrong (a malformed CSV record, a line that is not a JSON object, an unknown column) stops
 * the import before its batch is sent. Export asks for the registry a page at a time and
 * writes each as it comes, in the columns import reads.
 */
#include "fleet.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The columns of a device row, in export order. */
static const char *const columns[] = {"id", "type", "name", "groups", "auth", "serial", "tenant"};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

int iotctl_csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            /* Quoted: "" is a quote; the field ends at the closing quote. */
            for (p++;; p++) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"')
                    *out++ = *p++;
                else if (*p == '"')
                    break;
                else
                    *out++ = *p;
            }
            p++;
            if (*p != ',' && *p != '\0')
                return -1;
        } else {
            while (*p && *p != ',') {
                if (*p == '"')
                    return -1;
                *out++ = *p++;
            }
        }
        char end = *p;
        *out = '\0';
        if (end == '\0')
            return n;
        p++;
    }
}

struct import {
    const struct iotctl_session *s;
    const char *path, *tenant;
    FILE *in, *secrets, *summary;
    bool csv, started, progress;
    int column_of[NCOLUMNS + 1]; /* CSV: the column index of each key, -1 if absent */
    int ncolumns;
    long long line;
    cJSON *batch;
    size_t rows, added, skipped, batches;
};

__attribute__((format(printf, 3, 4))) static int local_fail(struct import *im, int code,
                                                            const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    iotctl_print_error(stdout, stderr, code, msg, NULL, im->s->json);
    return iot_error_exit_status(code);
}

/* The CSV header: which column holds which key. */
static int read_header(struct import *im, char *line)
{
    char *fields[NCOLUMNS + 1];
    int n = iotctl_csv_split(line, fields, (int)NCOLUMNS + 1);
    for (size_t k = 0; k < NCOLUMNS; k++)
        im->column_of[k] = -1;
    if (n < 0)
        return local_fail(im, IOT_EINVAL, "%s:%lld: not a CSV header of at most %zu columns",
                          im->path, im->line, NCOLUMNS);
    for (int c = 0; c < n; c++) {
        size_t k = 0;
        while (k < NCOLUMNS && strcmp(fields[c], columns[k]) != 0)
            k++;
        if (k == NCOLUMNS || im->column_of[k] >= 0)
            return local_fail(im, IOT_EINVAL,
                              "%s:%lld: %s column '%s' (the columns are id, type, name, groups, "
                              "auth, serial, tenant)",
                              im->path, im->line, k == NCOLUMNS ? "unknown" : "repeated",
                              fields[c]);
        im->column_of[k] = c;
    }
    if (im->column_of[0] < 0 || im->column_of[1] < 0)
        return local_fail(im, IOT_EINVAL, "%s:%lld: the header must name the id and type columns",
                          im->path, im->line);
    im->ncolumns = n;
    return 0;
}

/* One data line as a row object (NULL after reporting a malformed line). */
static cJSON *read_row(struct import *im, char *line, int *status)
{
    cJSON *row = NULL;
    if (im->csv) {
        char *fields[NCOLUMNS + 1];
        int n = iotctl_csv_split(line, fields, (int)NCOLUMNS + 1);
        if (n != im->ncolumns) {
            *status = local_fail(im, IOT_EINVAL, "%s:%lld: %d fields where the header names %d",
                                 im->path, im->line, n < 0 ? 0 : n, im->ncolumns);
            return NULL;
        }
        row = cJSON_CreateObject();
        for (size_t k = 0; row && k < NCOLUMNS; k++)
            if (im->column_of[k] >= 0 && fields[im->column_of[k]][0])
                cJSON_AddStringToObject(row, columns[k], fields[im->column_of[k]]);
    } else {
        row = cJSON_Parse(line);
        const cJSON *item;
        if (!cJSON_IsObject(row)) {
            cJSON_Delete(row);
            *status = local_fail(im, IOT_EINVAL, "%s:%lld: not a JSON object", im->path, im->line);
            return NULL;
        }
        cJSON_ArrayForEach(item, row)
        {
            size_t k = 0;
            while (k < NCOLUMNS && strcmp(item->string, columns[k]) != 0)
                k++;
            if (k == NCOLUMNS) {
                *status = local_fail(im, IOT_EINVAL,
                                     "%s:%lld: unknown key '%s' (the keys are id, type, name, "
                                     "groups, auth, serial, tenant)",
                                     im->path, im->line, item->string);
                cJSON_Delete(row);
                return NULL;
            }
        }
    }
    if (!row || !cJSON_AddNumberToObject(row, "line", (double)im->line)) {
        cJSON_Delete(row);
        *status = local_fail(im, IOT_ENOMEM, "out of memory");
        return NULL;
    }
    return row;
}

/* Send the batch and write its new secrets; the exit status (0 on success). */
static int send_batch(struct import *im)
{
    cJSON *args = cJSON_CreateObject(), *reply = NULL;
    int status = 0;
    if (!args || (im->tenant && !cJSON_AddStringToObject(args, "tenant", im->tenant)) ||
        !cJSON_AddItemToObject(args, "devices", im->batch)) {
        cJSON_Delete(args);
        cJSON_Delete(im->batch);
        im->batch = NULL;
        return local_fail(im, IOT_ENOMEM, "out of memory");
    }
    im->batch = NULL;
    int rc = ctl_client_call(im->s->client, im->s->cmd->name, args, im->s->timeout_ms, &reply);
    if (rc != IOT_OK) {
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
        const char *text = ctl_get_string(error, "message");
        char msg[700];
        snprintf(msg, sizeof(msg), "%s: %s (nothing of this batch was applied)", im->path,
                 text ? text : iot_strerror(rc));
        iotctl_print_error(stdout, stderr, rc, msg, NULL, im->s->json);
        status = iot_error_exit_status(rc);
        goto out;
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
    const cJSON *secret;
    im->added += (size_t)ctl_get_int(result, "added", 0);
    im->skipped += (size_t)ctl_get_int(result, "skipped", 0);
    im->batches++;
    cJSON_ArrayForEach(secret, cJSON_GetObjectItemCaseSensitive(result, "secrets"))
    {
        char *text = ctl_json_print(secret, false);
        if (!text || fprintf(im->secrets, "%s\n", text) < 0) {
            free(text);
            status = local_fail(im, IOT_EIO, "cannot write the secrets: %s", strerror(errno));
            goto out;
        }
        free(text);
    }
    /* The secrets are on disk before the next batch creates more. */
    if (fflush(im->secrets) != 0 || (im->secrets != stdout && fsync(fileno(im->secrets)) != 0))
        status = local_fail(im, IOT_EIO, "cannot write the secrets: %s", strerror(errno));
    if (im->progress)
        fprintf(stderr, "\r%s: %zu rows: %zu added, %zu skipped", im->path, im->rows, im->added,
                im->skipped);
out:
    cJSON_Delete(reply);
    return status;
}

/* Read the file and send its batches; the exit status. */
static int import_rows(struct import *im)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;
    while (status == 0 && (len = getline(&line, &cap, im->in)) >= 0) {
        im->line++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if ((size_t)len != strlen(line)) {
            status = local_fail(im, IOT_EINVAL, "%s:%lld: a NUL byte", im->path, im->line);
            break;
        }
        if (line[strspn(line, " \t")] == '\0')
            continue;
        if (!im->started) {
            im->started = true;
            im->csv = line[strspn(line, " \t")] != '{';
            if (im->csv) {
                status = read_header(im, line);
                continue;
            }
        }
        cJSON *row = read_row(im, line, &status);
        if (!row)
            break;
        if (!im->batch && !(im->batch = cJSON_CreateArray())) {
            cJSON_Delete(row);
            status = local_fail(im, IOT_ENOMEM, "out of memory");
            break;
        }
        cJSON_AddItemToArray(im->batch, row);
        im->rows++;
        if (cJSON_GetArraySize(im->batch) == IOTCTL_IMPORT_BATCH)
            status = send_batch(im);
    }
    if (status == 0 && ferror(im->in))
        status = local_fail(im, IOT_EIO, "%s: %s", im->path, strerror(errno));
    if (status == 0 && im->batch)
        status = send_batch(im);
    cJSON_Delete(im->batch);
    im->batch = NULL;
    free(line);
    return status;
}

static int device_import(const struct iotctl_session *s, const cJSON *args)
{
    struct import im = {.s = s,
                        .path = ctl_get_string(args, "file"),
                        .tenant = ctl_get_string(args, "tenant"),
                        .secrets = stdout,
                        .summary = stdout,
                        .progress = isatty(STDERR_FILENO)};
    const char *secrets_out = ctl_get_string(args, "secrets_out");
    int status = 0;
    im.in = strcmp(im.path, "-") == 0 ? stdin : fopen(im.path, "r");
    if (!im.in)
        return local_fail(&im, IOT_EINVAL, "%s: %s", im.path, strerror(errno));
    if (secrets_out) {
        /* A new file only: an existing one may hold the secrets of an earlier import. */
        int fd = open(secrets_out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            status = local_fail(
                &im, errno == EEXIST ? IOT_EEXIST : IOT_EIO, "--secrets-out %s: %s", secrets_out,
                errno == EEXIST ? "exists already; give a new file" : strerror(errno));
            goto out;
        }
        im.secrets = fdopen(fd, "w");
        if (!im.secrets) {
            close(fd);
            status = local_fail(&im, IOT_ENOMEM, "out of memory");
            goto out;
        }
    } else {
        im.summary = stderr; /* the secrets go to standard output */
    }
    status = import_rows(&im);
    if (im.progress && im.batches)
        fputc('\n', stderr);
    if (s->json) {
        cJSON *sum = cJSON_CreateObject();
        char *text = NULL;
        if (sum && cJSON_AddStringToObject(sum, "file", im.path) &&
            cJSON_AddNumberToObject(sum, "rows", (double)im.rows) &&
            cJSON_AddNumberToObject(sum, "added", (double)im.added) &&
            cJSON_AddNumberToObject(sum, "skipped", (double)im.skipped) &&
            cJSON_AddNumberToObject(sum, "batches", (double)im.batches) &&
            cJSON_AddBoolToObject(sum, "complete", status == 0))
            text = ctl_json_print(sum, false);
        fprintf(im.summary, "%s\n", text ? text : "{}");
        free(text);
        cJSON_Delete(sum);
    } else {
        fprintf(im.summary, "%s: %zu added, %zu skipped (already registered) in %zu batches%s\n",
                im.path, im.added, im.skipped, im.batches,
                status == 0 ? "" : "; stopped at the error above");
    }
out:
    if (im.secrets && im.secrets != stdout && fclose(im.secrets) != 0 && status == 0)
        status = local_fail(&im, IOT_EIO, "--secrets-out %s: %s", secrets_out, strerror(errno));
    if (im.in != stdin)
        fclose(im.in);
    return status;
}

/* One exported row: CSV in the columns' order (groups joined by ';'), or one JSON line. */
static void export_row(const cJSON *row, bool csv)
{
    if (!csv) {
        cJSON *copy = cJSON_Duplicate(row, true);
        for (size_t k = 0; copy && k < NCOLUMNS; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(copy, columns[k]);
            if (cJSON_IsNull(v) || (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
                cJSON_DeleteItemFromObjectCaseSensitive(copy, columns[k]);
        }
        char *text = copy ? ctl_json_print(copy, false) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        cJSON_Delete(copy);
        return;
    }
    for (size_t k = 0; k < NCOLUMNS; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, columns[k]);
        if (k)
            putchar(',');
        if (cJSON_IsString(v)) {
            iotctl_csv_field(stdout, v->valuestring);
        } else if (cJSON_IsArray(v)) {
            char joined[1200] = "";
            size_t used = 0;
            const cJSON *g;
            cJSON_ArrayForEach(g, v) used +=
                (size_t)snprintf(joined + used, used < sizeof(joined) ? sizeof(joined) - used : 0,
                                 "%s%s", used ? ";" : "", cJSON_GetStringValue(g));
            iotctl_csv_field(stdout, joined);
        }
    }
    fputs("\r\n", stdout);
}

static int device_export(const struct iotctl_session *s, const cJSON *args)
{
    const char *format = ctl_get_string(args, "format");
    bool csv = !format || strcmp(format, "csv") == 0;
    cJSON *request = cJSON_Duplicate(args, true), *reply = NULL;
    int status = 0;
    for (bool first = true; request; first = false) {
        cJSON *sent = cJSON_Duplicate(request, true);
        cJSON_Delete(reply);
        reply = NULL;
        int rc = sent ? ctl_client_call(s->client, s->cmd->name, sent, s->timeout_ms, &reply)
                      : IOT_ENOMEM;
        if (rc != IOT_OK) {
            const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
            iotctl_print_error(stdout, stderr, rc, ctl_get_string(error, "message"),
                               cJSON_IsObject(error) ? error : NULL, s->json);
            status = iot_error_exit_status(rc);
            break;
        }
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
        const cJSON *row;
        for (size_t k = 0; first && csv && k < NCOLUMNS; k++)
            printf("%s%s", k ? "," : "", columns[k]);
        if (first && csv)
            fputs("\r\n", stdout);
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(result, "devices"))
            export_row(row, csv);
        const char *next = ctl_get_string(result, "next");
        if (!next)
            break;
        cJSON_DeleteItemFromObjectCaseSensitive(request, "after");
        if (!cJSON_AddStringToObject(request, "after", next)) {
            status = iot_error_exit_status(IOT_ENOMEM);
            break;
        }
    }
    cJSON_Delete(reply);
    cJSON_Delete(request);
    return status;
}

static const struct {
    enum ctl_command_id id;
    iotctl_driver_fn run;
} drivers[] = {
    {CTL_DEVICE_IMPORT, device_import},
    {CTL_DEVICE_EXPORT, device_export},
};

iotctl_driver_fn iotctl_driver_of(const struct ctl_command *cmd)
{
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
        if (drivers[i].id == cmd->id)
            return drivers[i].run;
    return NULL;
}
