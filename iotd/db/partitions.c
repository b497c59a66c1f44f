/*
 * partitions.c - day partitions of history tables (see partitions.h).
 */
#include "db/partitions.h"

#include "db/sql_stmt.h"
#include "iot_error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL

#define MAX_PARTITIONS 1024 /* MariaDB allows 8192; a year of days fits well */

struct partitions {
    int64_t day[MAX_PARTITIONS]; /* days since the epoch, of the pYYYYMMDD partitions */
    size_t n;
    bool has_pmax;
};

static int64_t day_of_name(const char *name)
{
    struct tm tm = {0};
    unsigned y, m, d;
    char tail;
    if (sscanf(name, "p%4u%2u%2u%c", &y, &m, &d, &tail) != 3 || strlen(name) != 9)
        return -1;
    tm.tm_year = (int)y - 1900;
    tm.tm_mon = (int)m - 1;
    tm.tm_mday = (int)d;
    return (int64_t)timegm(&tm) / 86400;
}

static void day_format(int64_t day, const char *fmt, char *out, size_t len)
{
    time_t secs = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, fmt, &tm);
}

static int partition_row(void *ctx, const struct sql_row *r)
{
    struct partitions *p = ctx;
    const char *name = sql_row_str(r, 0);
    if (!name)
        return IOT_OK;
    if (strcmp(name, "pmax") == 0) {
        p->has_pmax = true;
        return IOT_OK;
    }
    int64_t day = day_of_name(name);
    if (day >= 0 && p->n < MAX_PARTITIONS)
        p->day[p->n++] = day;
    return IOT_OK;
}

static int partitions_read(MYSQL *conn, const char *table, struct partitions *p, char *err,
                           size_t errlen)
{
    memset(p, 0, sizeof(*p));
    return sql_query(conn,
                     "SELECT PARTITION_NAME FROM information_schema.PARTITIONS "
                     "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? "
                     "AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION",
                     SQL_PARAMS(sql_str(table)), partition_row, p, err, errlen);
}

/* One pass: create what is missing, drop what is expired. */
static int partitions_pass(MYSQL *conn, const char *table, int64_t now_ms, unsigned retention_days,
                           unsigned ahead, unsigned *created, unsigned *dropped, char *err,
                           size_t errlen)
{
    struct partitions *p = malloc(sizeof(*p));
    char *sql = malloc(64 * 1024);
    int rc = IOT_ENOMEM;
    if (!p || !sql)
        goto out;
    if ((rc = partitions_read(conn, table, p, err, errlen)) != IOT_OK)
        goto out;
    int64_t today = now_ms / DAY_MS, newest = -1;
    for (size_t i = 0; i < p->n; i++)
        if (p->day[i] > newest)
            newest = p->day[i];
    /* Days after the newest one, from today on: a partition can only be added at the top. After
     * a long downtime the days in between get no partition of their own; their rows (replayed
     * from a spool) land in today's partition, whose range starts where the newest one ends. */
    int64_t first = newest + 1 > today ? newest + 1 : today;
    if (first <= today + (int64_t)ahead) {
        size_t len =
            (size_t)snprintf(sql, 64 * 1024, "ALTER TABLE %s %s (", table,
                             p->has_pmax ? "REORGANIZE PARTITION pmax INTO" : "ADD PARTITION");
        unsigned count = 0;
        for (int64_t d = first; d <= today + (int64_t)ahead; d++) {
            char name[16], bound[32];
            day_format(d, "p%Y%m%d", name, sizeof name);
            day_format(d + 1, "%Y-%m-%d 00:00:00", bound, sizeof bound);
            len += (size_t)snprintf(sql + len, 64 * 1024 - len,
                                    "%sPARTITION %s VALUES LESS THAN ('%s')", count ? ", " : "",
                                    name, bound);
            count++;
        }
        if (p->has_pmax)
            len += (size_t)snprintf(sql + len, 64 * 1024 - len,
                                    ", PARTITION pmax VALUES LESS THAN (MAXVALUE)");
        snprintf(sql + len, 64 * 1024 - len, ")");
        if ((rc = sql_exec(conn, sql, SQL_NO_PARAMS, NULL, NULL, err, errlen)) != IOT_OK)
            goto out;
        *created += count;
    }
    if (retention_days > 0) {
        int64_t cutoff = now_ms - (int64_t)retention_days * DAY_MS;
        size_t len = (size_t)snprintf(sql, 64 * 1024, "ALTER TABLE %s DROP PARTITION ", table);
        unsigned count = 0;
        for (size_t i = 0; i < p->n; i++) {
            if ((p->day[i] + 1) * DAY_MS > cutoff)
                continue;
            char name[16];
            day_format(p->day[i], "p%Y%m%d", name, sizeof name);
            len += (size_t)snprintf(sql + len, 64 * 1024 - len, "%s%s", count ? ", " : "", name);
            count++;
        }
        if (count) {
            if ((rc = sql_exec(conn, sql, SQL_NO_PARAMS, NULL, NULL, err, errlen)) != IOT_OK)
                goto out;
            *dropped += count;
        }
    }
    rc = IOT_OK;
out:
    free(p);
    free(sql);
    return rc;
}

int db_partitions_maintain(MYSQL *conn, const char *table, int64_t now_ms, unsigned retention_days,
                           unsigned ahead, unsigned *created, unsigned *dropped, char *err,
                           size_t errlen)
{
    long long locked = 0;
    unsigned c = 0, d = 0;
    char lock[96];
    snprintf(lock, sizeof lock, "iotd_partitions_%s", table);
    int rc = sql_query_int(conn, "SELECT GET_LOCK(?, 30)", SQL_PARAMS(sql_str(lock)), &locked, err,
                           errlen);
    if (rc != IOT_OK)
        return rc;
    if (locked != 1) {
        snprintf(err, errlen, "%s: another process holds the partition lock", table);
        return IOT_EBUSY;
    }
    /* Another process (without the lock: an older build, or an operator) may have changed the
     * partitions between our read and our ALTER: "exists" or "does not exist" errors then just
     * mean "read again". */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = partitions_pass(conn, table, now_ms, retention_days, ahead, &c, &d, err, errlen);
        if (rc != IOT_EINTERNAL)
            break;
    }
    long long ignored;
    char err2[128];
    sql_query_int(conn, "SELECT RELEASE_LOCK(?)", SQL_PARAMS(sql_str(lock)), &ignored, err2,
                  sizeof err2);
    if (created)
        *created = c;
    if (dropped)
        *dropped = d;
    return rc;
}
