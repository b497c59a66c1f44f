/*
 * audit.c - the relay audit (see audit.h).
 *
 * A batch is stored with multi-row INSERTs of up to AUDIT_ROWS rows each, prepared once per
 * batch size: at tens of thousands of messages a second, one round trip per row would make the
 * audit, not the relay, the limit.
 */
#include "relay/audit.h"

#include "core/log.h"
#include "db/batch.h"
#include "db/stmt_cache.h"
#include "db/sql_stmt.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_ROWS     64
#define AUDIT_COLUMNS  7
#define AUDIT_BATCH    2048
#define AUDIT_CAPACITY 65536 /* ~0.5 s of relay traffic: records are ~350 bytes */

struct audit_record {
    int64_t at_ms;
    uint32_t latency_us;
    uint8_t outcome;
    char tenant[65];
    char sender[129];
    char device[65];
    char message[65];
};

struct relay_audit {
    enum relay_audit_mode mode;
    batch_t *batch;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void relay_audit_record(relay_audit_t *a, const char *tenant, const char *sender,
                        const char *device, const char *message, enum relay_outcome outcome,
                        uint64_t latency_ns)
{
    if (!a || a->mode == RELAY_AUDIT_NONE ||
        (a->mode == RELAY_AUDIT_DENIED && outcome != RELAY_DENIED))
        return;
    struct audit_record r = {.at_ms = wall_ms(), .outcome = (uint8_t)outcome};
    uint64_t us = latency_ns / 1000;
    r.latency_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    relay_copy(r.tenant, sizeof(r.tenant), tenant);
    relay_copy(r.sender, sizeof(r.sender), sender);
    relay_copy(r.device, sizeof(r.device), device);
    relay_copy(r.message, sizeof(r.message), message);
    batch_add(a->batch, &r);
}

static const char insert_head[] = "INSERT INTO relay_audit (at, tenant, sender, device, "
                                  "message, outcome, latency_us) VALUES ";
static const char insert_row[] = "(FROM_UNIXTIME(? / 1000), ?, ?, ?, ?, ?, ?)";
#define INSERT_SQL_MAX (sizeof(insert_head) + AUDIT_ROWS * sizeof(insert_row))

/* The INSERT of n rows into sql (INSERT_SQL_MAX bytes); returns its length. */
static size_t insert_sql(char *sql, size_t n)
{
    size_t used = (size_t)snprintf(sql, INSERT_SQL_MAX, "%s", insert_head);
    for (size_t i = 0; i < n; i++)
        used +=
            (size_t)snprintf(sql + used, INSERT_SQL_MAX - used, "%s%s", i ? "," : "", insert_row);
    return used;
}

/* One multi-row INSERT of n (<= AUDIT_ROWS) records. */
static int insert_rows(MYSQL *conn, const struct audit_record *r, size_t n, char *err,
                       size_t errlen)
{
    char sql[INSERT_SQL_MAX];
    MYSQL_BIND bind[AUDIT_ROWS * AUDIT_COLUMNS];
    unsigned long lengths[AUDIT_ROWS * AUDIT_COLUMNS];
    long long at[AUDIT_ROWS], latency[AUDIT_ROWS];
    const char *outcome[AUDIT_ROWS];
    int rc = IOT_OK;

    memset(bind, 0, sizeof(bind[0]) * n * AUDIT_COLUMNS);
    for (size_t i = 0; i < n; i++) {
        MYSQL_BIND *b = &bind[i * AUDIT_COLUMNS];
        unsigned long *len = &lengths[i * AUDIT_COLUMNS];
        const char *text[5] = {r[i].tenant, r[i].sender, r[i].device, r[i].message,
                               outcome[i] = relay_outcome_name(r[i].outcome)};
        at[i] = r[i].at_ms;
        latency[i] = r[i].latency_us;
        b[0].buffer_type = MYSQL_TYPE_LONGLONG;
        b[0].buffer = &at[i];
        for (int k = 0; k < 5; k++) {
            len[k] = (unsigned long)strlen(text[k]);
            b[1 + k].buffer_type = MYSQL_TYPE_STRING;
            b[1 + k].buffer = (void *)text[k];
            b[1 + k].buffer_length = len[k];
            b[1 + k].length = &len[k];
        }
        b[6].buffer_type = MYSQL_TYPE_LONGLONG;
        b[6].buffer = &latency[i];
    }
    /* Full chunks (nearly all of a busy batch) reuse this thread's prepared statement; the
     * last, shorter one is prepared for the occasion. */
    static const char full_chunk_key = 0;
    bool cached = n == AUDIT_ROWS;
    MYSQL_STMT *stmt = NULL;
    if (cached) {
        stmt = stmt_cache_find(conn, &full_chunk_key);
        if (!stmt && (rc = stmt_cache_prepare(conn, &full_chunk_key, sql, insert_sql(sql, n), &stmt,
                                              err, errlen)) != IOT_OK)
            return rc;
    } else {
        stmt = mysql_stmt_init(conn);
        if (!stmt)
            return IOT_ENOMEM;
        if (mysql_stmt_prepare(stmt, sql, (unsigned long)insert_sql(sql, n)) != 0)
            goto fail;
    }
    if (mysql_stmt_bind_param(stmt, bind) != 0 || mysql_stmt_execute(stmt) != 0)
        goto fail;
    goto out;
fail:
    rc = db_error_from_errno(mysql_stmt_errno(stmt));
    rc = rc ? rc : IOT_EINTERNAL;
    snprintf(err, errlen, "%s", mysql_stmt_error(stmt));
    if (cached)
        stmt_cache_drop(conn, &full_chunk_key); /* prepared again next time */
out:
    if (!cached)
        mysql_stmt_close(stmt);
    return rc;
}

static int write_records(MYSQL *conn, const void *records, size_t n, void *arg)
{
    const struct audit_record *r = records;
    char err[256] = "";
    (void)arg;
    int rc = sql_begin(conn, false, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < n; i += AUDIT_ROWS)
        rc = insert_rows(conn, r + i, n - i < AUDIT_ROWS ? n - i : AUDIT_ROWS, err, sizeof(err));
    if (rc == 0)
        rc = sql_commit(conn, err, sizeof(err));
    if (rc != 0) {
        sql_rollback(conn);
        if (rc != IOT_EDB)
            log_warn("relay audit: %s", err);
    }
    return rc;
}

static void release_audit(void *arg)
{
    free(arg);
}

int relay_audit_start(relay_audit_t **out, const char *mode_name, uv_loop_t *main_loop,
                      inbox_t *main_inbox, db_pool_t *db)
{
    enum relay_audit_mode mode;
    if (strcmp(mode_name, "all") == 0)
        mode = RELAY_AUDIT_ALL;
    else if (strcmp(mode_name, "denied") == 0)
        mode = RELAY_AUDIT_DENIED;
    else if (strcmp(mode_name, "none") == 0)
        mode = RELAY_AUDIT_NONE;
    else
        return IOT_EINVAL;
    relay_audit_t *a = calloc(1, sizeof(*a));
    if (!a)
        return IOT_ENOMEM;
    a->mode = mode;
    struct batch_options o = {.record_size = sizeof(struct audit_record),
                              .capacity = AUDIT_CAPACITY,
                              .batch_max = AUDIT_BATCH,
                              .flush_ms = 100,
                              .write = write_records,
                              .release = release_audit,
                              .arg = a};
    int rc = batch_start(&a->batch, main_loop, main_inbox, db, &o);
    if (rc != 0) {
        free(a);
        return rc;
    }
    *out = a;
    return IOT_OK;
}

void relay_audit_stats(relay_audit_t *a, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    batch_stats(a->batch, written, dropped, pending);
}

void relay_audit_stop(relay_audit_t *a)
{
    batch_stop(a->batch); /* a is freed by release_audit once the last batch is back */
}
