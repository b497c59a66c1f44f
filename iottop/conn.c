/*
 * conn.c - the stats stream over ctl_client (see conn.h).
 *
 * Messages for other request ids are skipped: after a re-subscription only the newest stream
 * is ours. Everything the daemon says that is not an item is turned into a return code and a
 * reason sentence here, so the screen and batch mode only decide what to do about it.
 */
#include "conn.h"

#include "ctl_client.h"
#include "ctl_proto.h"
#include "iot_error.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn {
    char *path;
    ctl_client_t *client;
    uint32_t stream_id;
    char reason[256];
};

conn_t *conn_new(const char *path)
{
    if (!path || !*path)
        path = getenv("IOTD_SOCKET");
    if (!path || !*path)
        path = CTL_DEFAULT_SOCKET;
    conn_t *conn = calloc(1, sizeof(*conn));
    if (!conn)
        return NULL;
    conn->path = strdup(path);
    if (!conn->path) {
        free(conn);
        return NULL;
    }
    return conn;
}

void conn_free(conn_t *conn)
{
    if (!conn)
        return;
    conn_close(conn);
    free(conn->path);
    free(conn);
}

void conn_close(conn_t *conn)
{
    ctl_client_close(conn->client);
    conn->client = NULL;
}

bool conn_is_open(const conn_t *conn)
{
    return conn->client != NULL;
}

int conn_fd(const conn_t *conn)
{
    return conn->client ? ctl_client_fd(conn->client) : -1;
}

const char *conn_path(const conn_t *conn)
{
    return conn->path;
}

const char *conn_reason(const conn_t *conn)
{
    return conn->reason;
}

int conn_open(conn_t *conn, const struct conn_params *params)
{
    int rc;
    cJSON *args = NULL;

    conn_close(conn);
    conn->reason[0] = '\0';
    rc = ctl_client_connect(&conn->client, conn->path);
    if (rc != IOT_OK) {
        snprintf(conn->reason, sizeof(conn->reason), "%s", iot_strerror(rc));
        goto out;
    }
    args = cJSON_CreateObject();
    if (!args || !cJSON_AddNumberToObject(args, "interval_ms", params->interval_ms) ||
        !cJSON_AddNumberToObject(args, "top", params->top) ||
        (params->sort && !cJSON_AddStringToObject(args, "sort", params->sort)) ||
        (params->count > 0 && !cJSON_AddNumberToObject(args, "count", params->count))) {
        rc = IOT_ENOMEM;
        goto out;
    }
    rc = ctl_client_send(conn->client, "stats", args, &conn->stream_id);
    args = NULL; /* owned by the send, even when it failed */
    if (rc != IOT_OK)
        snprintf(conn->reason, sizeof(conn->reason), "%s", iot_strerror(rc));
out:
    cJSON_Delete(args);
    if (rc != IOT_OK)
        conn_close(conn);
    return rc;
}

/* Sort out one message of our stream: 1 = an item (moved to *item), 0 = nothing to report
 * (the acknowledgement), or a negative code after which the stream is over. */
static int classify(conn_t *conn, cJSON *msg, cJSON **item)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
    if (cJSON_IsObject(error)) {
        const char *text = ctl_get_string(error, "message");
        snprintf(conn->reason, sizeof(conn->reason), "%s",
                 text ? text : iot_strerror(iot_error_from_name(ctl_get_string(error, "code"))));
        int code = iot_error_from_name(ctl_get_string(error, "code"));
        return code < 0 ? code : IOT_EINTERNAL;
    }
    if (ctl_get_bool(msg, "end", 0)) {
        const char *why = ctl_get_string(msg, "reason");
        snprintf(conn->reason, sizeof(conn->reason), "%s", why ? why : "stream ended");
        return IOT_EUNREACHABLE;
    }
    cJSON *sample = cJSON_DetachItemFromObjectCaseSensitive(msg, "item");
    if (sample) {
        *item = sample;
        return 1;
    }
    return 0;
}

int conn_next(conn_t *conn, int timeout_ms, cJSON **item)
{
    int rc = IOT_EBUSY;
    *item = NULL;
    if (!conn->client) {
        snprintf(conn->reason, sizeof(conn->reason), "not connected");
        return IOT_EUNREACHABLE;
    }
    for (;;) {
        cJSON *msg = NULL;
        rc = ctl_client_read(conn->client, timeout_ms, &msg);
        if (rc == IOT_EIO && errno == EINTR)
            return rc;
        if (rc == IOT_EBUSY)
            return rc;
        if (rc != IOT_OK) {
            snprintf(conn->reason, sizeof(conn->reason), "%s",
                     rc == IOT_EUNREACHABLE ? "iotd closed the connection" : iot_strerror(rc));
            conn_close(conn);
            return rc == IOT_EPROTO || rc == IOT_EUNREACHABLE ? rc : IOT_EUNREACHABLE;
        }
        long long id = ctl_get_int(msg, "id", -1);
        /* id 0 is the daemon's "could not tell which request": with one request, it is ours */
        if (id != (long long)conn->stream_id && id != 0) {
            cJSON_Delete(msg);
            continue;
        }
        int kind = classify(conn, msg, item);
        cJSON_Delete(msg);
        if (kind == 1)
            return IOT_OK;
        if (kind < 0) {
            conn_close(conn);
            return kind;
        }
        /* The acknowledgement: keep waiting within the same budget (a later read of 0 ms is
         * right for a poll()-driven caller; a blocking caller passes <0 anyway). */
    }
}
