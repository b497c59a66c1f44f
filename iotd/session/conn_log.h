/*
 * conn_log.h - connection events of devices (connect, disconnect, auth failure, with address,
 * transport and reason) written to MariaDB in batches, off the io threads.
 *
 * io threads append records under a short mutex; a timer on the main loop hands whatever has
 * accumulated to a db thread as one multi-row insert (and updates devices.last_seen /
 * last_address). The queue is bounded: past it records are dropped and counted, because a
 * storm of failed connections must not grow iotd's memory; and authentication failures are
 * counted into rows per (address, id, reason) and minute, so that it cannot fill the disk.
 */
#ifndef IOTD_CONN_LOG_H
#define IOTD_CONN_LOG_H

#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct conn_log conn_log_t;

enum conn_event { CONN_EVENT_CONNECT, CONN_EVENT_DISCONNECT, CONN_EVENT_AUTH_FAILURE };

int conn_log_start(conn_log_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                   size_t capacity);
/* Thread-safe. Strings are copied (truncated to their columns). Authentication failures are
 * aggregated (see conn_log.c): true if this one is written as a row of its own, the first of
 * its (address, id, reason) within a minute, false if it is counted in a later row; a caller
 * logs only the first, and the log says how many more there were. */
bool conn_log_record(conn_log_t *log, enum conn_event event, const char *device_id,
                     const char *address, const char *transport, const char *reason, int64_t at_ms);
/* Records written, dropped (queue full or database failure). */
void conn_log_stats(conn_log_t *log, uint64_t *written, uint64_t *dropped, size_t *pending);
/* The connection events after *seq (kept: the last 1024), oldest first, for live views;
 * *seq is advanced past what was reported. Start with *seq = 0.
 * fn runs under the log's lock: it must only copy. */
typedef void (*conn_log_recent_fn)(void *arg, int64_t at_ms, const char *event,
                                   const char *device_id, const char *address, const char *reason);
void conn_log_recent(conn_log_t *log, uint64_t *seq, conn_log_recent_fn fn, void *arg);

/* Flush what is queued (one last batch, waited for) and free. Before the db pool stops. */
void conn_log_stop(conn_log_t *log);

#endif
