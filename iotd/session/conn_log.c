/*
 * conn_log.c - batched connection history (see conn_log.h).
 *
 * Records go through a batch writer (db/batch.h), so a reconnect storm becomes a few
 * transactions instead of thousands. The db thread writes each batch in one transaction,
 * updates devices.last_seen/last_address for connects and disconnects, and now and then prunes
 * rows past the retention. The last events also stay in memory for live views (iottop).
 *
 * Authentication failures come from peers nobody has authenticated, as fast as they can
 * connect (1,500 wrong MACs in 2 s were 1,500 rows kept 30 days), so they are aggregated
 * before they reach the database: the first failure of an (address, id, reason) is written at
 * once, as an operator chasing a failing device wants to see it, and the ones after it within
 * a minute become one row with their count when the minute is over. The aggregates live in a
 * table of fixed size: an address holds at most CONN_LOG_FAIL_PER_ADDRESS of them (the rest of
 * its ids are counted under id "*"), and when the table is full, failures are counted in one
 * row for everyone (address and id "*"). So whatever peers send, the failures cost at most a
 * table's worth of rows, twice, a minute.
 */
#include "session/conn_log.h"

#include "base/log.h"
#include "ctl_time.h"
#include "db/batch.h"
#include "db/sql_stmt.h"
#include "iot_error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_LOG_BATCH            500
#define CONN_LOG_FLUSH_MS         200
#define CONN_LOG_RETENTION_DAYS   30
#define CONN_LOG_PRUNE_EVERY      100   /* batches */
#define CONN_LOG_RECENT           1024  /* events kept in memory for live views */
#define CONN_LOG_FAIL_WINDOW_MS   60000 /* failures after the first: one row a minute */
#define CONN_LOG_FAIL_SLOTS       256   /* aggregates held at once */
#define CONN_LOG_FAIL_PER_ADDRESS 8     /* of them for one address; its other ids go under "*" */
#define CONN_LOG_FAIL_TICK_MS     1000  /* how often finished aggregates are written */

struct conn_record {
    int64_t at_ms, last_ms; /* last_ms: of the last failure a row counts (at_ms if one) */
    uint32_t count;         /* failures a row counts, 1 for every other event */
    enum conn_event event;
    char device_id[129];
    char address[64];
    char transport[4];
    char reason[128];
};

/* The failures of one (address, id, reason) after its first, in the window that started with
 * that first one (at_ms); row.count 0: none yet. */
struct failure_aggregate {
    struct conn_record row;
    int64_t window_start_ms;
    bool used;
};

struct conn_log {
    batch_t *batch;
    uint64_t batches;     /* db thread only (one batch at a time) */
    pthread_mutex_t lock; /* for the recent events and the failures */
    struct conn_record recent[CONN_LOG_RECENT];
    uint64_t recent_seq; /* events ever recorded; the k-th (from 0) sits at recent[k % N] */
    struct failure_aggregate failures[CONN_LOG_FAIL_SLOTS];
    struct failure_aggregate overflow; /* when the table is full: address and id "*" */
    uv_timer_t *tick;                  /* writes finished aggregates; its own allocation */
};

static const char *const event_names[] = {"connect", "disconnect", "auth_failure"};

/* Count failure r in its aggregate (log->lock held): false if it is counted in one already,
 * true if it starts a new one (and is to be written at once). */
static bool aggregate_failure(conn_log_t *log, struct conn_record *r)
{
    /* Ports change with every connection: an aggregate is of the address. */
    char *colon = strrchr(r->address, ':');
    if (colon)
        *colon = '\0';
    struct failure_aggregate *found = NULL, *free_slot = NULL;
    unsigned of_address = 0;
    for (int pass = 0; pass < 2 && !found; pass++) {
        for (size_t i = 0; i < CONN_LOG_FAIL_SLOTS; i++) {
            struct failure_aggregate *a = &log->failures[i];
            if (!a->used) {
                free_slot = free_slot ? free_slot : a;
                continue;
            }
            if (strcmp(a->row.address, r->address) != 0)
                continue;
            of_address++;
            if (strcmp(a->row.device_id, r->device_id) == 0 &&
                strcmp(a->row.reason, r->reason) == 0) {
                found = a;
                break;
            }
        }
        if (found || of_address < CONN_LOG_FAIL_PER_ADDRESS || strcmp(r->device_id, "*") == 0)
            break;
        /* This address has ids enough: the others are counted together. */
        snprintf(r->device_id, sizeof(r->device_id), "*");
        of_address = 0;
    }
    if (!found && !free_slot) {
        found = &log->overflow;
        if (!found->used) {
            *found =
                (struct failure_aggregate){.row = *r, .window_start_ms = r->at_ms, .used = true};
            snprintf(found->row.address, sizeof(found->row.address), "*");
            snprintf(found->row.device_id, sizeof(found->row.device_id), "*");
            snprintf(found->row.reason, sizeof(found->row.reason), "%s",
                     "failures beyond the aggregation table");
            found->row.count = 0;
        }
    }
    if (found) {
        if (found->row.count++ == 0)
            found->row.at_ms = r->at_ms;
        found->row.last_ms = r->at_ms;
        return false;
    }
    *free_slot = (struct failure_aggregate){.row = *r, .window_start_ms = r->at_ms, .used = true};
    free_slot->row.count = 0;
    return true;
}

/* Write the aggregates whose window is over at now_ms (all of them with now_ms INT64_MAX), and
 * free their slots. log->lock held. */
static void flush_failures(conn_log_t *log, int64_t now_ms)
{
    for (size_t i = 0; i <= CONN_LOG_FAIL_SLOTS; i++) {
        struct failure_aggregate *a = i < CONN_LOG_FAIL_SLOTS ? &log->failures[i] : &log->overflow;
        if (!a->used || now_ms - a->window_start_ms < CONN_LOG_FAIL_WINDOW_MS)
            continue;
        if (a->row.count > 0) {
            batch_add(log->batch, &a->row);
            log_info("device %s from %s: %u more authentication failures (%s) within a minute",
                     a->row.device_id, a->row.address, a->row.count, a->row.reason);
        }
        a->used = false;
    }
}

static void on_tick(uv_timer_t *timer)
{
    conn_log_t *log = timer->data;
    pthread_mutex_lock(&log->lock);
    flush_failures(log, ctl_wall_ms());
    pthread_mutex_unlock(&log->lock);
}

bool conn_log_record(conn_log_t *log, enum conn_event event, const char *device_id,
                     const char *address, const char *transport, const char *reason, int64_t at_ms)
{
    struct conn_record r = {.at_ms = at_ms, .last_ms = at_ms, .count = 1, .event = event};
    bool write = true;
    snprintf(r.device_id, sizeof(r.device_id), "%s", device_id ? device_id : "");
    snprintf(r.address, sizeof(r.address), "%s", address ? address : "");
    snprintf(r.transport, sizeof(r.transport), "%s", transport ? transport : "tcp");
    snprintf(r.reason, sizeof(r.reason), "%s", reason ? reason : "");
    pthread_mutex_lock(&log->lock);
    log->recent[log->recent_seq++ % CONN_LOG_RECENT] = r;
    if (event == CONN_EVENT_AUTH_FAILURE)
        write = aggregate_failure(log, &r);
    if (write)
        batch_add(log->batch, &r);
    pthread_mutex_unlock(&log->lock);
    return write;
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
                      "transport, reason, count, last_at) VALUES (FROM_UNIXTIME(? / 1000), ?, "
                      "?, ?, ?, ?, ?, FROM_UNIXTIME(? / 1000))",
                      SQL_PARAMS(sql_int(r->at_ms), sql_str(r->device_id),
                                 sql_str(event_names[r->event]), sql_str(r->address),
                                 sql_str(r->transport), sql_str(r->reason), sql_int(r->count),
                                 sql_int(r->last_ms)),
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
    log->tick = malloc(sizeof(*log->tick));
    int rc = log->tick ? batch_start(&log->batch, main_loop, main_inbox, db, &o) : IOT_ENOMEM;
    if (rc != 0) {
        free(log->tick);
        pthread_mutex_destroy(&log->lock);
        free(log);
        return rc;
    }
    uv_timer_init(main_loop, log->tick);
    log->tick->data = log;
    uv_timer_start(log->tick, on_tick, CONN_LOG_FAIL_TICK_MS, CONN_LOG_FAIL_TICK_MS);
    *out = log;
    return IOT_OK;
}

static void free_tick(uv_handle_t *handle)
{
    free(handle);
}

void conn_log_stats(conn_log_t *log, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    batch_stats(log->batch, written, dropped, pending);
}

void conn_log_stop(conn_log_t *log)
{
    /* The failures counted so far are written with the last batch. */
    uv_close((uv_handle_t *)log->tick, free_tick);
    log->tick = NULL;
    pthread_mutex_lock(&log->lock);
    flush_failures(log, INT64_MAX);
    pthread_mutex_unlock(&log->lock);
    batch_stop(log->batch); /* the log is freed by release_log once the last batch is back */
}
