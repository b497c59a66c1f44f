/*
 * sql_stmt.c - prepared statements in one call (see sql_stmt.h).
 *
 * Parameters are bound straight from the caller's memory (no copies). Results are fetched with
 * STMT_ATTR_UPDATE_MAX_LENGTH + mysql_stmt_store_result, so the longest value of every column
 * is known before the first fetch and each column gets one buffer of exactly that size: no
 * truncation handling, one allocation per column per statement.
 */
#include "db/db.h"
#include "db/sql_stmt.h"

#include "iot_error.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parameters bound from the stack; a statement with more (a multi-row INSERT of a batch)
 * binds from the heap, up to the server's 65,535 placeholders. The client library copies the
 * bindings in mysql_stmt_bind_param, so neither outlives the prepare. */
#define SQL_STACK_PARAMS 24
#define SQL_MAX_PARAMS   65535

static int stmt_fail(MYSQL_STMT *stmt, MYSQL *conn, char *err, size_t errlen)
{
    unsigned no = stmt ? mysql_stmt_errno(stmt) : mysql_errno(conn);
    const char *msg = stmt ? mysql_stmt_error(stmt) : mysql_error(conn);
    if (no == 0 && stmt) {
        no = mysql_errno(conn);
        msg = mysql_error(conn);
    }
    snprintf(err, errlen, "database: %s (%u)", msg && *msg ? msg : "unknown error", no);
    int code = db_error_from_errno(no);
    return code ? code : IOT_EINTERNAL;
}

/* Prepare sql and bind params; *out is a statement ready to execute. */
static int stmt_prepare(MYSQL *conn, const char *sql, const struct sql_param *params,
                        size_t nparams, MYSQL_STMT **out, char *err, size_t errlen)
{
    MYSQL_BIND stack[SQL_STACK_PARAMS], *bind = stack;
    int rc = IOT_OK;
    MYSQL_STMT *stmt = mysql_stmt_init(conn);
    if (!stmt) {
        rc = stmt_fail(NULL, conn, err, errlen);
        goto out;
    }
    if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0) {
        rc = stmt_fail(stmt, conn, err, errlen);
        goto out;
    }
    if (nparams != mysql_stmt_param_count(stmt) || nparams > SQL_MAX_PARAMS) {
        snprintf(err, errlen, "internal: statement takes %lu parameters, %zu given",
                 mysql_stmt_param_count(stmt), nparams);
        rc = IOT_EINTERNAL;
        goto out;
    }
    if (nparams > SQL_STACK_PARAMS && !(bind = calloc(nparams, sizeof(*bind)))) {
        snprintf(err, errlen, "out of memory binding %zu parameters", nparams);
        rc = IOT_ENOMEM;
        goto out;
    }
    if (bind == stack)
        memset(stack, 0, sizeof(stack));
    for (size_t i = 0; i < nparams; i++) {
        const struct sql_param *p = &params[i];
        switch (p->type) {
        case SQL_P_NULL:
            bind[i].buffer_type = MYSQL_TYPE_NULL; /* the type alone sends NULL */
            break;
        case SQL_P_STR:
            bind[i].buffer_type = MYSQL_TYPE_STRING;
            bind[i].buffer = (void *)p->data;
            bind[i].buffer_length = strlen(p->data);
            break;
        case SQL_P_BLOB:
            bind[i].buffer_type = MYSQL_TYPE_BLOB;
            bind[i].buffer = (void *)p->data;
            bind[i].buffer_length = p->len;
            break;
        case SQL_P_INT:
            bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
            bind[i].buffer = (void *)&p->value;
            break;
        }
    }
    if (nparams && mysql_stmt_bind_param(stmt, bind) != 0) {
        rc = stmt_fail(stmt, conn, err, errlen);
        goto out;
    }
out:
    if (bind != stack)
        free(bind);
    if (rc != IOT_OK && stmt) {
        mysql_stmt_close(stmt);
        stmt = NULL;
    }
    *out = stmt;
    return rc;
}

int sql_exec(MYSQL *conn, const char *sql, const struct sql_param *params, size_t nparams,
             unsigned long long *affected, unsigned long long *insert_id, char *err, size_t errlen)
{
    MYSQL_STMT *stmt = NULL;
    int rc = stmt_prepare(conn, sql, params, nparams, &stmt, err, errlen);
    if (rc != IOT_OK)
        goto out;
    if (mysql_stmt_execute(stmt) != 0) {
        rc = stmt_fail(stmt, conn, err, errlen);
        goto out;
    }
    if (affected)
        *affected = mysql_stmt_affected_rows(stmt);
    if (insert_id)
        *insert_id = mysql_stmt_insert_id(stmt);
out:
    if (stmt)
        mysql_stmt_close(stmt);
    return rc;
}

int sql_query(MYSQL *conn, const char *sql, const struct sql_param *params, size_t nparams,
              sql_row_fn fn, void *ctx, char *err, size_t errlen)
{
    MYSQL_STMT *stmt = NULL;
    MYSQL_RES *meta = NULL;
    MYSQL_BIND *bind = NULL;
    struct sql_row row = {0};
    int rc = stmt_prepare(conn, sql, params, nparams, &stmt, err, errlen);
    if (rc != IOT_OK)
        goto out;
    my_bool update_max = 1;
    mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
    if (mysql_stmt_execute(stmt) != 0 || mysql_stmt_store_result(stmt) != 0) {
        rc = stmt_fail(stmt, conn, err, errlen);
        goto out;
    }
    meta = mysql_stmt_result_metadata(stmt);
    if (!meta) {
        snprintf(err, errlen, "internal: statement returns no result set");
        rc = IOT_EINTERNAL;
        goto out;
    }
    row.ncols = mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    bind = calloc(row.ncols ? row.ncols : 1, sizeof(*bind));
    row.values = calloc(row.ncols ? row.ncols : 1, sizeof(*row.values));
    row.lengths = calloc(row.ncols ? row.ncols : 1, sizeof(*row.lengths));
    row.nulls = calloc(row.ncols ? row.ncols : 1, sizeof(*row.nulls));
    if (!bind || !row.values || !row.lengths || !row.nulls) {
        rc = IOT_ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < row.ncols; i++) {
        /* max_length is the longest value in the stored result; +1 for our NUL. Numbers are
         * converted to text by the library and need at most 64 bytes whatever max_length says. */
        size_t cap = fields[i].max_length + 1;
        if (cap < 65)
            cap = 65;
        row.values[i] = malloc(cap);
        if (!row.values[i]) {
            rc = IOT_ENOMEM;
            goto out;
        }
        bind[i].buffer_type = MYSQL_TYPE_STRING;
        bind[i].buffer = row.values[i];
        bind[i].buffer_length = cap - 1;
        bind[i].length = &row.lengths[i];
        bind[i].is_null = &row.nulls[i];
    }
    if (row.ncols && mysql_stmt_bind_result(stmt, bind) != 0) {
        rc = stmt_fail(stmt, conn, err, errlen);
        goto out;
    }
    for (;;) {
        int f = mysql_stmt_fetch(stmt);
        if (f == MYSQL_NO_DATA)
            break;
        if (f == 1) {
            rc = stmt_fail(stmt, conn, err, errlen);
            goto out;
        }
        if (f == MYSQL_DATA_TRUNCATED) {
            snprintf(err, errlen, "internal: column value longer than reported");
            rc = IOT_EINTERNAL;
            goto out;
        }
        for (unsigned i = 0; i < row.ncols; i++)
            row.values[i][row.nulls[i] ? 0 : row.lengths[i]] = '\0';
        rc = fn(ctx, &row);
        if (rc != IOT_OK)
            goto out;
    }
out:
    if (row.values)
        for (unsigned i = 0; i < row.ncols; i++)
            free(row.values[i]);
    free(row.values);
    free(row.lengths);
    free(row.nulls);
    free(bind);
    if (meta)
        mysql_free_result(meta);
    if (stmt) {
        mysql_stmt_free_result(stmt);
        mysql_stmt_close(stmt);
    }
    return rc;
}

static int first_int_row(void *ctx, const struct sql_row *row)
{
    long long *out = ctx;
    *out = sql_row_int(row, 0, 0);
    return 1; /* stop after the first row */
}

int sql_query_int(MYSQL *conn, const char *sql, const struct sql_param *params, size_t nparams,
                  long long *out, char *err, size_t errlen)
{
    int rc = sql_query(conn, sql, params, nparams, first_int_row, out, err, errlen);
    if (rc == 1)
        return IOT_OK;
    if (rc == IOT_OK) {
        snprintf(err, errlen, "not found");
        return IOT_ENOTFOUND;
    }
    return rc;
}

const char *sql_row_str(const struct sql_row *r, unsigned col)
{
    return sql_row_null(r, col) ? NULL : r->values[col];
}

long long sql_row_int(const struct sql_row *r, unsigned col, long long def)
{
    if (sql_row_null(r, col))
        return def;
    char *end;
    long long v = strtoll(r->values[col], &end, 10);
    return (end == r->values[col]) ? def : v;
}

int64_t sql_row_micros(const struct sql_row *r, unsigned col)
{
    if (sql_row_null(r, col))
        return 0;
    /* "1700000000.123456": integral seconds, then up to six fraction digits. */
    const char *s = r->values[col];
    char *end;
    int64_t micros = (int64_t)strtoll(s, &end, 10) * 1000000;
    if (*end == '.') {
        int64_t scale = 100000;
        for (const char *p = end + 1; *p >= '0' && *p <= '9' && scale > 0; p++, scale /= 10)
            micros += (*p - '0') * scale;
    }
    return micros;
}

void sql_time_from_ms(int64_t ms, MYSQL_TIME *t)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    memset(t, 0, sizeof(*t));
    t->year = (unsigned)tm.tm_year + 1900;
    t->month = (unsigned)tm.tm_mon + 1;
    t->day = (unsigned)tm.tm_mday;
    t->hour = (unsigned)tm.tm_hour;
    t->minute = (unsigned)tm.tm_min;
    t->second = (unsigned)tm.tm_sec;
    t->second_part = (unsigned long)((ms - (int64_t)secs * 1000) * 1000);
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
}

const uint8_t *sql_row_blob(const struct sql_row *r, unsigned col, size_t *len)
{
    if (sql_row_null(r, col)) {
        *len = 0;
        return NULL;
    }
    *len = r->lengths[col];
    return (const uint8_t *)r->values[col];
}

static int plain_command(MYSQL *conn, const char *sql, char *err, size_t errlen)
{
    if (mysql_real_query(conn, sql, strlen(sql)) != 0)
        return stmt_fail(NULL, conn, err, errlen);
    return IOT_OK;
}

int sql_begin(MYSQL *conn, bool read_only, char *err, size_t errlen)
{
    return plain_command(conn,
                         read_only ? "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
                                   : "START TRANSACTION",
                         err, errlen);
}

int sql_commit(MYSQL *conn, char *err, size_t errlen)
{
    return plain_command(conn, "COMMIT", err, errlen);
}

void sql_rollback(MYSQL *conn)
{
    (void)mysql_real_query(conn, "ROLLBACK", 8);
}
