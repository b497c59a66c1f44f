/*
 * conn.h - iottop's subscription to iotd's "stats" stream.
 *
 * A conn is a socket path plus, while iotd is reachable, one control connection carrying one
 * stats stream. conn_open connects and sends the request without waiting for the answer, so the
 * screen never freezes on a slow daemon; the acknowledgement, the items and the end all come
 * through conn_next. Changing the interval or the session sort means a new stream: the control
 * protocol has no way to cancel one, so conn_open closes the old connection first.
 *
 * Reconnecting is the caller's policy (the screen retries every second, batch mode never).
 */
#ifndef IOTTOP_CONN_H
#define IOTTOP_CONN_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct conn_params {
    int interval_ms; /* 100..60000 */
    int top;         /* sessions to include */
    const char *sort;
    int count; /* items before the daemon ends the stream; 0: never */
};

typedef struct conn conn_t;

/* Resolve the socket like iotctl: path, else $IOTD_SOCKET, else CTL_DEFAULT_SOCKET. NULL on
 * ENOMEM. Nothing is connected yet. */
conn_t *conn_new(const char *path);
void conn_free(conn_t *conn);

/* (Re)connect and send a stats request. IOT_OK, or IOT_EUNREACHABLE / IOT_EDENIED / IOT_EINVAL
 * (path too long) / IOT_ENOMEM; on failure the conn is closed. */
int conn_open(conn_t *conn, const struct conn_params *params);
void conn_close(conn_t *conn);
bool conn_is_open(const conn_t *conn);
/* The socket to poll(), -1 when closed. */
int conn_fd(const conn_t *conn);
const char *conn_path(const conn_t *conn);

/*
 * Wait up to timeout_ms (0: only what is already there, <0: forever) for the next item of the
 * stream. IOT_OK: *item is the sample (caller frees). IOT_EBUSY: nothing yet. IOT_EUNREACHABLE:
 * iotd closed the connection or ended the stream (conn_reason says why, e.g. "shutdown" or
 * "count reached"); the conn is closed. Any other code: the daemon refused the request or spoke
 * garbage (conn_reason has its message); the conn is closed. IOT_EIO with errno EINTR: a signal
 * arrived, the conn stays open.
 */
int conn_next(conn_t *conn, int timeout_ms, cJSON **item);
const char *conn_reason(const conn_t *conn);

#endif
