/*
 * sql_stmt.h - one-call prepared statements for iotd's SQL (db threads only).
 *
 * libmariadb's mysql_stmt_* API needs a dozen lines of MYSQL_BIND set-up per statement; these
 * helpers take the parameters as a short array of tagged values and hand result rows to a
 * callback, so each administrative command is a few lines of SQL and no bind boilerplate.
 * Every statement is prepared, executed and closed within the call (admin changes, registry loads
 * and batched writes are not per-message paths).
 *
 * Errors are mapped once (db_error_from_errno) onto the project's vocabulary: duplicate key ->
 * IOT_EEXIST, a referenced parent row -> IOT_EINUSE, a missing parent -> IOT_ENOTFOUND, a failed
 * CHECK -> IOT_EINVAL, deadlock or lock wait timeout -> IOT_EBUSY, a lost connection -> IOT_EDB,
 * anything else -> IOT_EINTERNAL; err gets the server's message.
 */
#ifndef IOTD_REGISTRY_SQL_STMT_H
#define IOTD_REGISTRY_SQL_STMT_H

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sql_param_type { SQL_P_NULL, SQL_P_STR, SQL_P_INT, SQL_P_BLOB };

struct sql_param {
    enum sql_param_type type;
    const void *data; /* SQL_P_STR (NUL-terminated) and SQL_P_BLOB */
    size_t len;       /* SQL_P_BLOB */
    long long value;  /* SQL_P_INT */
};

/* A string parameter; a NULL pointer binds SQL NULL. */
static inline struct sql_param sql_str(const char *s)
{
    return (struct sql_param){.type = s ? SQL_P_STR : SQL_P_NULL, .data = s};
}
static inline struct sql_param sql_int(long long v)
{
    return (struct sql_param){.type = SQL_P_INT, .value = v};
}
static inline struct sql_param sql_blob(const void *p, size_t n)
{
    return (struct sql_param){.type = SQL_P_BLOB, .data = p, .len = n};
}
/* An integer that binds SQL NULL when zero (optional references: ids start at 1). */
static inline struct sql_param sql_id_or_null(long long v)
{
    return v ? sql_int(v) : (struct sql_param){.type = SQL_P_NULL};
}

/* SQL_PARAMS(sql_str(a), sql_int(b)) expands to the two arguments "params, nparams". */
#define SQL_PARAMS(...)                                                                            \
    ((const struct sql_param[]){__VA_ARGS__}),                                                     \
        (sizeof((const struct sql_param[]){__VA_ARGS__}) / sizeof(struct sql_param))
#define SQL_NO_PARAMS NULL, 0

/* One fetched row, valid only during the callback. Every column arrives as bytes (the client
 * library converts numbers to decimal text), so accessors parse what they need. */
struct sql_row {
    unsigned ncols;
    char **values; /* NUL-terminated for convenience; binary columns use len */
    unsigned long *lengths;
    my_bool *nulls;
};

static inline bool sql_row_null(const struct sql_row *r, unsigned col)
{
    return col >= r->ncols || r->nulls[col];
}
/* NULL for SQL NULL. */
const char *sql_row_str(const struct sql_row *r, unsigned col);
/* def for SQL NULL or a non-number. */
long long sql_row_int(const struct sql_row *r, unsigned col, long long def);
/* Microseconds from a decimal column such as UNIX_TIMESTAMP(at) with a fraction; 0 for NULL. */
int64_t sql_row_micros(const struct sql_row *r, unsigned col);
const uint8_t *sql_row_blob(const struct sql_row *r, unsigned col, size_t *len);

/* Milliseconds since the epoch as a DATETIME in UTC (for binding; the sessions' time zone is
 * UTC), the fraction kept to the millisecond. */
void sql_time_from_ms(int64_t ms, MYSQL_TIME *t);

/* Called once per row; a non-zero return stops the fetch and becomes the query's result. */
typedef int (*sql_row_fn)(void *ctx, const struct sql_row *row);

/* Prepare, bind, execute, close. affected/insert_id may be NULL. */
int sql_exec(MYSQL *conn, const char *sql, const struct sql_param *params, size_t nparams,
             unsigned long long *affected, unsigned long long *insert_id, char *err, size_t errlen);
/* As sql_exec for a SELECT; calls fn for each row. */
int sql_query(MYSQL *conn, const char *sql, const struct sql_param *params, size_t nparams,
              sql_row_fn fn, void *ctx, char *err, size_t errlen);
/* The single integer of a one-row, one-column SELECT: IOT_ENOTFOUND when there is no row. */
int sql_query_int(MYSQL *conn, const char *sql, const struct sql_param *params, size_t nparams,
                  long long *out, char *err, size_t errlen);

/* Transactions (plain text commands: they carry no data). sql_rollback never fails loudly: it
 * is the cleanup path and the connection may already be gone. */
int sql_begin(MYSQL *conn, bool read_only, char *err, size_t errlen);
int sql_commit(MYSQL *conn, char *err, size_t errlen);
void sql_rollback(MYSQL *conn);

#endif
