/*
 * conn_log.c - batched connection history (see conn_log.h).
 *
 * Records go through a batch writer (db/batch.h), so a reconnect storm becomes a few
 * transactions instead of thousands. The db thread writes each batch in one transaction,
 * updates devices.last_seen/last_address for connects and disconnects, and now and then prunes
 * rows past the retention. The last events also stay in memory for live views (iottop).
 */
#include "session/conn_log.h"

#include "base/log.h"
#include "db/batch.h"
#include "db/sql_stmt.h"
#include "iot_error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_LOG_BATCH          500
#define CONN_LOG_FLUSH_MS       200
#define CONN_LOG_RETENTION_DAYS 30
#define CONN_LOG_PRUNE_EVERY    100  /* batches */
#define CONN_LOG_RECENT         1024 /* events kept in memory for live views */

struct conn_record {
    int64_t at_ms;
    enum conn_event event;
    char device_id[129];
    char address[64];
    char transport[4];
    char reason[128];
};

struct conn_log {
    batch_t *batch;
    uint64_t batches;     /* db thread only (one batch at a time) */
    pthread_mutex_t lock; /* for the recent events */
    struct conn_record recent[CONN_LOG_RECENT];
    uint64_t recent_seq; /* events ever recorded; the k-th (from 0) sits at recent[k % N] */
};

static const char *const event_names[] = {"connect", "disconnect", "auth_failure"};

void conn_log_record(conn_log_t *log, enum conn_event event, const char *device_id,
                     const char *address, const char *transport, const char *reason, int64_t at_ms)
{
    struct conn_record r = {.at_ms = at_ms, .event = event};
    snprintf(r.device_id, sizeof(r.device_id), "%s", device_id ? device_id : "");
    snprintf(r.address, sizeof(r.address), "%s", address ? address : "");
    snprintf(r.transport, sizeof(r.transport), "%s", transport ? transport : "tcp");
    snprintf(r.reason, sizeof(r.reason), "%s", reason ? reason : "");
    batch_add(log->batch, &r);
    pthread_mutex_lock(&log->lock);
    log->recent[log->recent_seq++ % CONN_LOG_RECENT] = r;
    pthread_mutex_unlock(&log->lock);
}

void conn_log_recent(conn_log_t *log, uint64_t *seq, conn_log_recent_fn fn, void *arg)
{
    pthread_mutex_lock(&log->lock);
    uint64_t first = *seq;
    if (log->recent_seq > CONN_LOG_RECENT && first < log->recent_seq - CONN_LOG_RECENT)
        first = log->recent_seq - CONN_LOG_RECENT; /* older ones were overwritten */
    for (uint64_t k = first; k < log->recent_seq; k++) {
        const struct conn_record *r = &log->recent[k % CONN_LOG_RECENT];
        fn(arg, r->at_ms, event_names[r->event], r->device_id, r->address, r->reason);
    }
    *seq = log->recent_seq;
    pthread_mutex_unlock(&log->lock);
}

/* Runs on a db thread: one transaction for the whole batch. */
static int write_records(MYSQL *conn, void *records, size_t n, void *arg)
{
    conn_log_t *log = arg;
    const struct conn_record *recs = records;
    char err[256];
    int rc = sql_begin(conn, false, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct conn_record *r = &recs[i];
        rc = sql_exec(conn,
                      "INSERT INTO device_connections (at, device_id, event, address, "
                      "transport, reason) VALUES (FROM_UNIXTIME(? / 1000), ?, ?, ?, ?, ?)",
                      SQL_PARAMS(sql_int(r->at_ms), sql_str(r->device_id),
                                 sql_str(event_names[r->event]), sql_str(r->address),
                                 sql_str(r->transport), sql_str(r->reason)),
                      NULL, NULL, err, sizeof(err));
        if (rc == 0 && r->event != CONN_EVENT_AUTH_FAILURE)
            rc = sql_exec(conn,
                          "UPDATE devices SET last_seen = FROM_UNIXTIME(? / 1000), "
                          "last_address = ? WHERE id = ?",
                          SQL_PARAMS(sql_int(r->at_ms), sql_str(r->address), sql_str(r->device_id)),
                          NULL, NULL, err, sizeof(err));
    }
    if (rc == 0 && log->batches++ % CONN_LOG_PRUNE_EVERY == 0)
        rc = sql_exec(conn,
                      "DELETE FROM device_connections WHERE at < NOW() - INTERVAL ? DAY "
                      "LIMIT 10000",
                      SQL_PARAMS(sql_int(CONN_LOG_RETENTION_DAYS)), NULL, NULL, err, sizeof(err));
    if (rc == 0)
        rc = sql_commit(conn, err, sizeof(err));
    if (rc != 0) {
        sql_rollback(conn);
        if (rc != IOT_EDB)
            log_warn("connection history: %s", err);
    }
    return rc;
}

/* The batch writer is done with the log (its last batch is back): free it. */
static void release_log(void *arg)
{
    conn_log_t *log = arg;
    pthread_mutex_destroy(&log->lock);
    free(log);
}

int conn_log_start(conn_log_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                   size_t capacity)
{
    conn_log_t *log = calloc(1, sizeof(*log));
    if (!log)
        return IOT_ENOMEM;
    pthread_mutex_init(&log->lock, NULL);
    struct batch_options o = {.record_size = sizeof(struct conn_record),
                              .capacity =
                                  capacity ? capacity : 16384, /* a reconnect storm's worth */
                              .batch_max = CONN_LOG_BATCH,
                              .flush_ms = CONN_LOG_FLUSH_MS,
                              .write = write_records,
                              .release = release_log,
                              .arg = log};
    int rc = batch_start(&log->batch, main_loop, main_inbox, db, &o);
    if (rc != 0) {
        pthread_mutex_destroy(&log->lock);
        free(log);
        return rc;
    }
    *out = log;
    return IOT_OK;
}

void conn_log_stats(conn_log_t *log, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    batch_stats(log->batch, written, dropped, pending);
}

void conn_log_stop(conn_log_t *log)
{
    batch_stop(log->batch); /* the log is freed by release_log once the last batch is back */
}
