/*
 * conn_log.c - batched connection history (see conn_log.h).
 *
 * Records go into a fixed ring under a mutex; a timer on the main loop takes up to a batch of
 * them into a db job, at most one job in flight, so a reconnect storm becomes a few large
 * inserts instead of thousands of round trips. The db thread writes the batch as one
 * multi-row INSERT in one transaction, updates devices.last_seen/last_address for connects and
 * disconnects, and now and then prunes rows past the retention.
 */
#include "session/conn_log.h"

#include "core/log.h"
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

struct log_job {
    db_job_t job;
    conn_log_t *log;
    size_t count;
    bool prune;
    struct conn_record records[CONN_LOG_BATCH];
};

struct conn_log {
    pthread_mutex_t lock;
    struct conn_record *ring;
    size_t capacity, head, count;
    uint64_t written, dropped, batches;
    uv_timer_t timer;
    inbox_t *inbox;
    db_pool_t *db;
    bool in_flight;
    bool timer_closed;
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

    pthread_mutex_lock(&log->lock);
    if (log->count == log->capacity) {
        log->dropped++;
    } else {
        log->ring[(log->head + log->count) % log->capacity] = r;
        log->count++;
    }
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

uint64_t conn_log_seq(conn_log_t *log)
{
    pthread_mutex_lock(&log->lock);
    uint64_t seq = log->recent_seq;
    pthread_mutex_unlock(&log->lock);
    return seq;
}

/* Runs on a db thread: one transaction for the whole batch. */
static int log_job_run(db_job_t *job, MYSQL *conn)
{
    struct log_job *lj = container_of(job, struct log_job, job);
    char err[256];
    int rc = sql_begin(conn, false, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < lj->count; i++) {
        const struct conn_record *r = &lj->records[i];
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
    if (rc == 0 && lj->prune)
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

static void log_free(conn_log_t *log)
{
    pthread_mutex_destroy(&log->lock);
    free(log->ring);
    free(log);
}

static void log_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct log_job *lj = container_of(msg, struct log_job, job.done);
    conn_log_t *log = lj->log;
    (void)loop_data;
    pthread_mutex_lock(&log->lock);
    if (lj->job.status == 0)
        log->written += lj->count;
    else
        log->dropped += lj->count; /* history is best effort; devices are not held back */
    log->in_flight = false;
    pthread_mutex_unlock(&log->lock);
    free(lj);
    if (log->timer_closed)
        log_free(log); /* stopped while this batch was at the database */
}

/* Move up to a batch out of the ring into a new job (NULL if nothing to do). */
static struct log_job *take_batch(conn_log_t *log)
{
    struct log_job *lj = NULL;
    pthread_mutex_lock(&log->lock);
    if (log->count == 0 || log->in_flight)
        goto out;
    lj = malloc(sizeof(*lj));
    if (!lj)
        goto out;
    lj->log = log;
    lj->count = log->count < CONN_LOG_BATCH ? log->count : CONN_LOG_BATCH;
    for (size_t i = 0; i < lj->count; i++)
        lj->records[i] = log->ring[(log->head + i) % log->capacity];
    log->head = (log->head + lj->count) % log->capacity;
    log->count -= lj->count;
    lj->prune = ++log->batches % CONN_LOG_PRUNE_EVERY == 1;
    log->in_flight = true;
out:
    pthread_mutex_unlock(&log->lock);
    return lj;
}

static void on_flush_timer(uv_timer_t *timer)
{
    conn_log_t *log = timer->data;
    struct log_job *lj = take_batch(log);
    if (!lj)
        return;
    lj->job = (db_job_t){.run = log_job_run, .reply_to = log->inbox};
    lj->job.done.handle = log_job_done;
    if (db_pool_submit(log->db, &lj->job) != 0) {
        pthread_mutex_lock(&log->lock);
        log->dropped += lj->count;
        log->in_flight = false;
        pthread_mutex_unlock(&log->lock);
        free(lj);
    }
}

int conn_log_start(conn_log_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                   size_t capacity)
{
    conn_log_t *log = calloc(1, sizeof(*log));
    if (!log)
        return IOT_ENOMEM;
    log->capacity = capacity ? capacity : 100000;
    log->ring = calloc(log->capacity, sizeof(*log->ring));
    if (!log->ring) {
        free(log);
        return IOT_ENOMEM;
    }
    pthread_mutex_init(&log->lock, NULL);
    log->inbox = main_inbox;
    log->db = db;
    uv_timer_init(main_loop, &log->timer);
    log->timer.data = log;
    uv_timer_start(&log->timer, on_flush_timer, CONN_LOG_FLUSH_MS, CONN_LOG_FLUSH_MS);
    *out = log;
    return IOT_OK;
}

void conn_log_stats(conn_log_t *log, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    pthread_mutex_lock(&log->lock);
    *written = log->written;
    *dropped = log->dropped;
    *pending = log->count;
    pthread_mutex_unlock(&log->lock);
}

/* The log is freed by whichever ends last: the timer's close or the batch in flight. */
static void on_timer_closed(uv_handle_t *handle)
{
    conn_log_t *log = handle->data;
    log->timer_closed = true;
    if (!log->in_flight)
        log_free(log);
}

void conn_log_stop(conn_log_t *log)
{
    /* One last batch is submitted (unless one is still at the database); db_pool_stop runs it
     * and its completion is drained with the main inbox. Beyond that, records are dropped:
     * history must not hold up a shutdown. */
    on_flush_timer(&log->timer);
    uv_close((uv_handle_t *)&log->timer, on_timer_closed);
}
