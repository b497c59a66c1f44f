/*
 * db_migrate.c - bring the schema up to the newest compiled-in migration.
 *
 * Under the named lock 'iotd_migrate' (so two iotd processes starting together never
 * migrate at once; the lock dies with the session if we crash), read MAX(version) from
 * schema_version, refuse a database newer than this build, then run each missing migration's
 * statements in order and record it. Migration files are DDL written by us, run with
 * mysql_real_query one statement at a time (no multi-statement mode); everything touching
 * values (the lock, the version) goes through prepared statements.
 *
 * On a Galera cluster (several iotd nodes starting at once against an empty database, each on
 * its own Galera node) a named lock holds on one Galera node only: MariaDB 10.11 grants
 * GET_LOCK('x') on two nodes at once (measured), later versions refuse it
 * (ER_NOT_SUPPORTED_YET). So with wsrep_on (or when GET_LOCK is refused) the lock is a row: whoever
 * inserts id 1 into iotd_migrate_lock holds it (a second insert fails with a duplicate key on the
 * same node, or with a certification conflict across nodes) until it deletes the row; a row whose
 * holder crashed expires after MIGRATE_LOCK_LEASE_S. Migrations are idempotent with respect to
 * schema_version: the next holder sees what the first applied and applies nothing twice.
 */
#include "db/db.h"

#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct db_migration db_migrations[];
extern const size_t db_migrations_count;

#define MIGRATE_LOCK_NAME      "iotd_migrate"
#define MIGRATE_LOCK_TIMEOUT_S 30
#define MIGRATE_LOCK_LEASE_S   300 /* a row lock whose holder crashed is taken after this */
/* MariaDB error numbers the row lock tells apart */
#define ER_DUP_ENTRY_CODE         1062
#define ER_LOCK_DEADLOCK_CODE     1213
#define ER_NOT_SUPPORTED_YET_CODE 1235
#define ER_ERROR_DURING_COMMIT    1180

/* Run a prepared statement with up to two parameters (an int and/or a string, either may
 * be absent) and, if result is not NULL, fetch the first column of the first row as an int.
 * *is_null tells a SQL NULL apart from 0. */
static int stmt_exec_errno(MYSQL *conn, const char *sql, const int *int_param,
                           const char *str_param, long long *result, bool *is_null,
                           unsigned *sql_errno, char *err, size_t errlen)
{
    int rc = IOT_EDB;
    MYSQL_BIND params[2], col;
    unsigned nparams = 0;
    unsigned long str_len = str_param != NULL ? strlen(str_param) : 0;
    long long value = 0;
    char value_null = 0;
    MYSQL_STMT *stmt = mysql_stmt_init(conn);
    if (stmt == NULL) {
        snprintf(err, errlen, "out of memory preparing a statement");
        return IOT_ENOMEM;
    }
    if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0)
        goto failed;
    memset(params, 0, sizeof params);
    if (int_param != NULL) {
        params[nparams].buffer_type = MYSQL_TYPE_LONG;
        params[nparams].buffer = (void *)int_param;
        nparams++;
    }
    if (str_param != NULL) {
        params[nparams].buffer_type = MYSQL_TYPE_STRING;
        params[nparams].buffer = (void *)str_param;
        params[nparams].buffer_length = str_len;
        params[nparams].length = &str_len;
        nparams++;
    }
    if (mysql_stmt_param_count(stmt) != nparams) {
        snprintf(err, errlen, "internal error: statement \"%s\" takes %lu parameters", sql,
                 mysql_stmt_param_count(stmt));
        rc = IOT_EINTERNAL;
        goto out;
    }
    if (nparams > 0 && mysql_stmt_bind_param(stmt, params) != 0)
        goto failed;
    if (mysql_stmt_execute(stmt) != 0)
        goto failed;
    if (result != NULL) {
        memset(&col, 0, sizeof col);
        col.buffer_type = MYSQL_TYPE_LONGLONG;
        col.buffer = &value;
        col.is_null = &value_null;
        if (mysql_stmt_bind_result(stmt, &col) != 0)
            goto failed;
        int f = mysql_stmt_fetch(stmt);
        if (f == 1)
            goto failed;
        if (f == MYSQL_NO_DATA) {
            snprintf(err, errlen, "\"%s\" returned no row", sql);
            goto out;
        }
        *result = value;
        if (is_null != NULL)
            *is_null = value_null != 0;
    }
    rc = 0;
    goto out;
failed:
    snprintf(err, errlen, "%s: %s", sql, mysql_stmt_error(stmt));
    if (sql_errno)
        *sql_errno = mysql_stmt_errno(stmt);
out:
    mysql_stmt_close(stmt);
    return rc;
}

static int stmt_exec(MYSQL *conn, const char *sql, const int *int_param, const char *str_param,
                     long long *result, bool *is_null, char *err, size_t errlen)
{
    return stmt_exec_errno(conn, sql, int_param, str_param, result, is_null, NULL, err, errlen);
}

/* Execute one DDL statement, discarding any result set it produces. */
static int ddl_exec(MYSQL *conn, const char *sql, size_t len)
{
    if (mysql_real_query(conn, sql, len) != 0)
        return IOT_EDB;
    MYSQL_RES *res = mysql_store_result(conn);
    if (res != NULL)
        mysql_free_result(res);
    else if (mysql_field_count(conn) != 0)
        return IOT_EDB;
    return 0;
}

/* The migration lock as a row (Galera; see the top of the file): IOT_OK once held, IOT_EBUSY
 * after timeout_s of others holding it. holder names us in the row. */
static int row_lock(MYSQL *conn, const char *holder, int timeout_s, char *err, size_t errlen)
{
    static const char create[] = "CREATE TABLE IF NOT EXISTS iotd_migrate_lock ("
                                 "id INT PRIMARY KEY, holder VARCHAR(255) NOT NULL, "
                                 "expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB";
    if (ddl_exec(conn, create, sizeof create - 1) != 0) {
        snprintf(err, errlen, "cannot create iotd_migrate_lock: %s", mysql_error(conn));
        return IOT_EDB;
    }
    int lease = MIGRATE_LOCK_LEASE_S;
    for (int tries = 0; tries <= timeout_s * 5; tries++) { /* every 200 ms */
        unsigned code = 0;
        int rc = stmt_exec_errno(conn,
                                 "INSERT INTO iotd_migrate_lock (id, expires_at, holder) VALUES "
                                 "(1, NOW(6) + INTERVAL ? SECOND, ?)",
                                 &lease, holder, NULL, NULL, &code, err, errlen);
        if (rc == 0)
            return IOT_OK;
        if (code != ER_DUP_ENTRY_CODE && code != ER_LOCK_DEADLOCK_CODE &&
            code != ER_ERROR_DURING_COMMIT)
            return rc;
        /* Held: by a live iotd, or by one that crashed holding it (expired). */
        if ((rc = stmt_exec(conn,
                            "DELETE FROM iotd_migrate_lock WHERE id = 1 AND expires_at < NOW(6)",
                            NULL, NULL, NULL, NULL, err, errlen)) != 0)
            return rc;
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    snprintf(err, errlen,
             "another process has held the migration lock (a row of iotd_migrate_lock) for %d "
             "s; is a second iotd migrating this database?",
             timeout_s);
    return IOT_EBUSY;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Split a migration into statements (a statement ends at a line whose last non-blank
 * character is ';'; lines starting with "--" are comments) and execute each in order. */
static int migration_apply(MYSQL *conn, const struct db_migration *m, char *err, size_t errlen)
{
    int rc = 0, nstmt = 0;
    size_t cap = strlen(m->sql) + 1, len = 0;
    char *stmt = malloc(cap);
    if (stmt == NULL) {
        snprintf(err, errlen, "out of memory applying migration %s", m->name);
        return IOT_ENOMEM;
    }
    const char *line = m->sql;
    while (*line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
        const char *p = line;
        while (p < line + n && (*p == ' ' || *p == '\t'))
            p++;
        if (!(p + 1 < line + n && p[0] == '-' && p[1] == '-')) {
            size_t end = n;
            while (end > 0 &&
                   (line[end - 1] == ' ' || line[end - 1] == '\t' || line[end - 1] == '\r'))
                end--;
            bool last = end > 0 && line[end - 1] == ';';
            memcpy(stmt + len, line, last ? end - 1 : n);
            len += last ? end - 1 : n;
            stmt[len++] = '\n';
            if (last) {
                nstmt++;
                if (!blank(stmt, len) && ddl_exec(conn, stmt, len) != 0) {
                    rc = IOT_EDB;
                    goto out;
                }
                len = 0;
            }
        }
        line += n + (nl != NULL ? 1 : 0);
    }
    /* A final statement without ';' still runs. */
    if (!blank(stmt, len)) {
        nstmt++;
        if (ddl_exec(conn, stmt, len) != 0)
            rc = IOT_EDB;
    }
out:
    if (rc != 0)
        snprintf(err, errlen, "migration %s, statement %d: %s", m->name, nstmt, mysql_error(conn));
    free(stmt);
    return rc;
}

int db_migrate_list(MYSQL *conn, const struct db_migration *list, size_t count, int *version,
                    char *err, size_t errlen)
{
    int rc = IOT_EDB, lock_timeout = MIGRATE_LOCK_TIMEOUT_S;
    long long got = 0, current = 0;
    bool is_null = false, locked = false, row_locked = false;
    int latest = count > 0 ? list[count - 1].version : 0;
    char lockerr[128];

    for (size_t i = 1; i < count; i++) {
        if (list[i].version <= list[i - 1].version) {
            snprintf(err, errlen, "migrations %s and %s are out of order", list[i - 1].name,
                     list[i].name);
            return IOT_EINVAL;
        }
    }
    unsigned code = 0;
    char holder[128] = "iotd";
    long long wsrep = 0;
    /* A server without Galera support has no such variable: an error, so not Galera. */
    bool galera =
        stmt_exec(conn, "SELECT @@wsrep_on", NULL, NULL, &wsrep, NULL, err, errlen) == 0 &&
        wsrep == 1;
    if (!galera)
        rc = stmt_exec_errno(conn, "SELECT GET_LOCK('" MIGRATE_LOCK_NAME "', ?)", &lock_timeout,
                             NULL, &got, &is_null, &code, err, errlen);
    if (galera || (rc != 0 && code == ER_NOT_SUPPORTED_YET_CODE)) {
        /* Galera, or a server refusing named locks: the row lock instead. */
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        snprintf(holder, sizeof holder, "%s pid %ld", host, (long)getpid());
        if ((rc = row_lock(conn, holder, lock_timeout, err, errlen)) != 0)
            goto out;
        row_locked = true;
        got = 1;
        is_null = false;
        /* Read what the previous holder wrote on its node before deciding what to apply. */
        static const char sync_wait[] = "SET SESSION wsrep_sync_wait = 1";
        if (galera)
            ddl_exec(conn, sync_wait, sizeof sync_wait - 1);
    }
    if (rc != 0)
        goto out;
    if (is_null || got != 1) {
        snprintf(err, errlen,
                 "another process has held the migration lock for %d s; is a second iotd "
                 "migrating this database?",
                 lock_timeout);
        rc = IOT_EBUSY;
        goto out;
    }
    locked = true;
    const char *create = "CREATE TABLE IF NOT EXISTS schema_version ("
                         "version INT PRIMARY KEY, name VARCHAR(255) NOT NULL, "
                         "applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) "
                         "ENGINE=InnoDB";
    if (ddl_exec(conn, create, strlen(create)) != 0) {
        snprintf(err, errlen, "cannot create schema_version: %s", mysql_error(conn));
        rc = IOT_EDB;
        goto out;
    }
    rc = stmt_exec(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_version", NULL, NULL,
                   &current, NULL, err, errlen);
    if (rc != 0)
        goto out;
    if (current > latest) {
        snprintf(err, errlen,
                 "the database schema is at version %lld, newer than this iotd knows "
                 "(%d); run a newer iotd",
                 current, latest);
        rc = IOT_ESCHEMA;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        if (list[i].version <= current)
            continue;
        if ((rc = migration_apply(conn, &list[i], err, errlen)) != 0)
            goto out;
        rc = stmt_exec(conn, "INSERT INTO schema_version (version, name) VALUES (?, ?)",
                       &list[i].version, list[i].name, NULL, NULL, err, errlen);
        if (rc != 0)
            goto out;
        current = list[i].version;
    }
    rc = 0;
out:
    if (locked && row_locked)
        stmt_exec(conn, "DELETE FROM iotd_migrate_lock WHERE id = 1 AND holder = ?", NULL, holder,
                  NULL, NULL, lockerr, sizeof lockerr);
    else if (locked)
        stmt_exec(conn, "SELECT RELEASE_LOCK('" MIGRATE_LOCK_NAME "')", NULL, NULL, &got, NULL,
                  lockerr, sizeof lockerr);
    if (version != NULL)
        *version = (int)current;
    return rc;
}

int db_migrate(MYSQL *conn, int *version, char *err, size_t errlen)
{
    return db_migrate_list(conn, db_migrations, db_migrations_count, version, err, errlen);
}

int db_schema_latest(void)
{
    return db_migrations_count > 0 ? db_migrations[db_migrations_count - 1].version : 0;
}
