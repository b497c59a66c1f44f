/*
 * batch.c - the batch loop: one stats stream, one model, a report per sample (see batch.h).
 *
 * The stream is asked for exactly count + 1 items so the daemon ends it by itself; the first
 * item only primes the rates. Every snapshot is flushed at once: a pipe reader (a script, a
 * `| head`) must see it when it happens, not when a buffer fills.
 */
#include "batch.h"

#include "conn.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "model.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>

/* How long past one interval a sample may be late before batch mode gives up. */
#define BATCH_GRACE_MS 10000

static int print_snapshot(const model_t *model, bool json)
{
    if (!json) {
        report_text(stdout, model);
        return fflush(stdout) == 0 ? IOT_OK : IOT_EIO;
    }
    cJSON *obj = report_json(model);
    char *line = obj ? ctl_json_print(obj, false) : NULL; /* valid UTF-8 JSON, always */
    cJSON_Delete(obj);
    if (!line)
        return IOT_ENOMEM;
    int failed = puts(line) < 0 || fflush(stdout) != 0;
    free(line);
    return failed ? IOT_EIO : IOT_OK;
}

int batch_run(const struct batch_options *o)
{
    int status = 1;
    model_t *model = model_new();
    conn_t *conn = conn_new(o->socket);
    if (!model || !conn) {
        fprintf(stderr, "iottop: out of memory\n");
        goto out;
    }
    struct conn_params params = {.interval_ms = o->interval_ms,
                                 .top = o->top,
                                 .sort = NULL,
                                 .count = o->count > 0 ? o->count + 1 : 0};
    int rc = conn_open(conn, &params);
    if (rc != IOT_OK) {
        fprintf(stderr, "iottop: cannot reach iotd at %s: %s\n", conn_path(conn),
                conn_reason(conn));
        goto out;
    }
    for (int taken = 0, printed = 0; o->count == 0 || printed < o->count; taken++) {
        cJSON *item = NULL;
        rc = conn_next(conn, o->interval_ms + BATCH_GRACE_MS, &item);
        if (rc == IOT_EBUSY) {
            fprintf(stderr, "iottop: no sample from iotd at %s within %d ms\n", conn_path(conn),
                    o->interval_ms + BATCH_GRACE_MS);
            goto out;
        }
        if (rc != IOT_OK) {
            fprintf(stderr, "iottop: iotd at %s: %s\n", conn_path(conn), conn_reason(conn));
            goto out;
        }
        rc = model_update(model, item);
        cJSON_Delete(item);
        if (rc != IOT_OK) {
            fprintf(stderr, "iottop: cannot take a sample: %s\n", iot_strerror(rc));
            goto out;
        }
        if (taken == 0)
            continue; /* primes the rates */
        if (print_snapshot(model, o->json) != IOT_OK) {
            fprintf(stderr, "iottop: cannot write to stdout\n");
            goto out;
        }
        printed++;
    }
    status = 0;
out:
    conn_free(conn);
    model_free(model);
    return status;
}
