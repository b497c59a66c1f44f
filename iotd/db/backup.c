/*
 * backup.c - iotd's backup file: write a consistent snapshot, read it back (see backup.h).
 *
 * Writing: one REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT (InnoDB's MVCC), so
 * every table is read as of the same instant while iotd's other connections go on committing;
 * nothing is locked beyond the metadata lock a reader takes on each table until the commit
 * (a partition drop waits for the backup to end). Rows are streamed (mysql_use_result), so the
 * memory used does not grow with the tables. Values are written as SQL literals: text escaped
 * by the server's rules (mysql_real_escape_string, which also escapes newlines, so that every
 * statement is one line), binary columns in hex, NULL as NULL; generated columns are left out
 * (the restored table computes them). The session's time zone is UTC (db_connect), so
 * TIMESTAMP values round-trip unchanged.
 *
 * The file is made as PATH.partial (0600, O_EXCL) and renamed to PATH only once complete and
 * fsync'ed: a failed or interrupted backup never leaves a file that looks whole.
 */
#include "db/backup.h"

#include "iot_error.h"
#include "iot_grow.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_FORMAT 1
/* Rows are grouped into INSERT statements of about this many bytes: few round trips at
 * restore, far below max_allowed_packet (16 MiB by default). */
#define STATEMENT_BYTES (256 * 1024)
#define MAX_TABLES      256
#define MAX_COLUMNS     64
#define NAME_MAX_LEN    64

static int db_fail(MYSQL *conn, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, mysql_error(conn));
    return IOT_EDB;
}

static int exec(MYSQL *conn, const char *sql, char *err, size_t errlen)
{
    if (mysql_real_query(conn, sql, strlen(sql)) != 0)
        return db_fail(conn, sql, err, errlen);
    MYSQL_RES *res = mysql_store_result(conn);
    if (res)
        mysql_free_result(res);
    return IOT_OK;
}

/* Run a SELECT and fetch its whole (small) result into *res. */
static int query_all(MYSQL *conn, const char *sql, const char *what, MYSQL_RES **res, char *err,
                     size_t errlen)
{
    if (mysql_real_query(conn, sql, strlen(sql)) != 0 || !(*res = mysql_store_result(conn)))
        return db_fail(conn, what, err, errlen);
    return IOT_OK;
}

/* Names iotd's schema uses; anything else is refused rather than quoted. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return false;
    return true;
}

/* A growing text buffer for one statement. */
struct text {
    char *p;
    size_t len, cap;
};

static bool text_reserve(struct text *t, size_t more)
{
    char *p = iot_reserve(t->p, t->len + more + 1, &t->cap, 4096, 1);
    if (!p)
        return false;
    t->p = p;
    return true;
}

static bool text_add(struct text *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return false;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return true;
}

static bool text_value(struct text *t, MYSQL *conn, const char *v, unsigned long n, bool binary)
{
    static const char hex[] = "0123456789abcdef";
    if (!v)
        return text_add(t, "NULL", 4);
    if (binary) {
        if (!text_reserve(t, 3 + 2 * (size_t)n))
            return false;
        t->p[t->len++] = 'X';
        t->p[t->len++] = '\'';
        for (unsigned long i = 0; i < n; i++) {
            t->p[t->len++] = hex[(unsigned char)v[i] >> 4];
            t->p[t->len++] = hex[(unsigned char)v[i] & 15];
        }
        t->p[t->len++] = '\'';
        t->p[t->len] = '\0';
        return true;
    }
    if (!text_reserve(t, 3 + 2 * (size_t)n))
        return false;
    t->p[t->len++] = '\'';
    t->len += mysql_real_escape_string(conn, t->p + t->len, v, n);
    t->p[t->len++] = '\'';
    t->p[t->len] = '\0';
    return true;
}

/* The names a SELECT returns in its first column (at most max, each a name iotd's schema uses)
 * and, when flags is not NULL, whether its second column is 1. */
static int query_names(MYSQL *conn, const char *sql, const char *what,
                       char names[][NAME_MAX_LEN + 1], unsigned max, bool *flags, unsigned *n,
                       char *err, size_t errlen)
{
    MYSQL_RES *res = NULL;
    int rc = query_all(conn, sql, what, &res, err, errlen);
    if (rc != IOT_OK)
        return rc;
    MYSQL_ROW row;
    *n = 0;
    while ((row = mysql_fetch_row(res))) {
        if (*n == max || !row[0] || !name_ok(row[0])) {
            snprintf(err, errlen, "%s: unexpected name %s", what, row[0] ? row[0] : "");
            rc = IOT_EINTERNAL;
            break;
        }
        snprintf(names[*n], NAME_MAX_LEN + 1, "%s", row[0]);
        if (flags)
            flags[*n] = row[1] && strcmp(row[1], "1") == 0;
        (*n)++;
    }
    mysql_free_result(res);
    return rc;
}

/* The stored (not generated) columns of table, in order, and which are binary. */
static int table_columns(MYSQL *conn, const char *table, char names[][NAME_MAX_LEN + 1],
                         bool *binary, unsigned *n, char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT column_name, data_type IN ('binary', 'varbinary', 'tinyblob', 'blob', "
             "'mediumblob', 'longblob') FROM information_schema.columns WHERE table_schema = "
             "DATABASE() AND table_name = '%s' AND extra NOT LIKE '%%GENERATED%%' ORDER BY "
             "ordinal_position",
             table);
    return query_names(conn, sql, "reading the columns", names, MAX_COLUMNS, binary, n, err,
                       errlen);
}

/* Write "-- table: NAME" and the INSERT statements of its rows. */
static int dump_table(MYSQL *conn, FILE *out, const char *table, struct backup_summary *s,
                      char *err, size_t errlen)
{
    char names[MAX_COLUMNS][NAME_MAX_LEN + 1];
    bool binary[MAX_COLUMNS];
    unsigned ncols = 0, in_statement = 0;
    struct text cols = {0}, sql = {0}, stmt = {0};
    MYSQL_RES *res = NULL;
    int rc = table_columns(conn, table, names, binary, &ncols, err, errlen);
    if (rc != IOT_OK)
        goto out;
    rc = IOT_ENOMEM;
    for (unsigned c = 0; c < ncols; c++)
        if (!text_add(&cols, c ? ",`" : "`", c ? 2 : 1) ||
            !text_add(&cols, names[c], strlen(names[c])) || !text_add(&cols, "`", 1))
            goto out;
    if (!text_add(&sql, "SELECT ", 7) || !text_add(&sql, cols.p, cols.len) ||
        !text_add(&sql, " FROM `", 7) || !text_add(&sql, table, strlen(table)) ||
        !text_add(&sql, "`", 1))
        goto out;
    fprintf(out, "-- table: %s\n", table);
    if (mysql_real_query(conn, sql.p, sql.len) != 0 || !(res = mysql_use_result(conn))) {
        rc = db_fail(conn, table, err, errlen);
        goto out;
    }
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *lengths = mysql_fetch_lengths(res);
        rc = IOT_ENOMEM;
        if (in_statement == 0 &&
            (!text_add(&stmt, "INSERT INTO `", 13) || !text_add(&stmt, table, strlen(table)) ||
             !text_add(&stmt, "` (", 3) || !text_add(&stmt, cols.p, cols.len) ||
             !text_add(&stmt, ") VALUES ", 9)))
            goto out;
        if (!text_add(&stmt, in_statement ? ",(" : "(", in_statement ? 2 : 1))
            goto out;
        for (unsigned c = 0; c < ncols; c++)
            if ((c && !text_add(&stmt, ",", 1)) ||
                !text_value(&stmt, conn, row[c], lengths[c], binary[c]))
                goto out;
        if (!text_add(&stmt, ")", 1))
            goto out;
        in_statement++;
        s->rows++;
        if (stmt.len >= STATEMENT_BYTES) {
            fprintf(out, "%s;\n", stmt.p);
            stmt.len = 0;
            in_statement = 0;
        }
    }
    if (mysql_errno(conn) != 0) {
        rc = db_fail(conn, table, err, errlen);
        goto out;
    }
    if (in_statement)
        fprintf(out, "%s;\n", stmt.p);
    s->tables++;
    rc = ferror(out) ? IOT_EIO : IOT_OK;
    if (rc != IOT_OK)
        snprintf(err, errlen, "writing the backup: %s", strerror(errno));
out:
    if (res)
        mysql_free_result(res); /* fetches what is left, so the connection stays usable */
    free(cols.p);
    free(sql.p);
    free(stmt.p);
    return rc;
}

/* The base tables of the current database, sorted (views are the schema's, not data). */
static int list_tables(MYSQL *conn, char tables[][NAME_MAX_LEN + 1], unsigned *n, char *err,
                       size_t errlen)
{
    return query_names(conn,
                       "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                       "DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name",
                       "listing the tables", tables, MAX_TABLES, NULL, n, err, errlen);
}

static int schema_version(MYSQL *conn, int *version, char *err, size_t errlen)
{
    static const char sql[] = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
    MYSQL_RES *res = NULL;
    int rc = query_all(conn, sql, "reading the schema version", &res, err, errlen);
    if (rc != IOT_OK)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    *version = row && row[0] ? atoi(row[0]) : 0;
    mysql_free_result(res);
    return IOT_OK;
}

/* fsync the directory holding path, so that the rename survives a crash. */
static void sync_parent(const char *path)
{
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int backup_write(MYSQL *conn, const char *path, const uint8_t key[BACKUP_KEY_LEN],
                 struct backup_summary *s, char *err, size_t errlen)
{
    char(*tables)[NAME_MAX_LEN + 1] = NULL;
    char partial[4200];
    FILE *out = NULL;
    bool in_transaction = false, made = false;
    unsigned ntables = 0;
    struct stat st;
    int rc;

    memset(s, 0, sizeof *s);
    if (path[0] != '/') {
        snprintf(err, errlen, "%s: give an absolute path (iotd writes the file)", path);
        return IOT_EINVAL;
    }
    if (strlen(path) > sizeof partial - 16) {
        snprintf(err, errlen, "path too long");
        return IOT_EINVAL;
    }
    if (!(tables = calloc(MAX_TABLES, sizeof *tables)))
        return IOT_ENOMEM;
    if (lstat(path, &st) == 0) {
        snprintf(err, errlen, "%s exists: a backup never overwrites a file", path);
        rc = IOT_EEXIST;
        goto out;
    }
    snprintf(partial, sizeof partial, "%s.partial", path);
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int saved = errno;
        snprintf(err, errlen, "cannot create %s: %s", partial, strerror(saved));
        rc = saved == EEXIST ? IOT_EEXIST : IOT_EIO;
        goto out;
    }
    made = true;
    fchmod(fd, 0600); /* whatever the umask */
    out = fdopen(fd, "w");
    if (!out) {
        close(fd);
        rc = IOT_ENOMEM;
        goto out;
    }
    if ((rc = exec(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", err, errlen)) != 0 ||
        (rc = exec(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", err, errlen)) !=
            0)
        goto out;
    in_transaction = true;
    if ((rc = schema_version(conn, &s->schema_version, err, errlen)) != 0 ||
        (rc = list_tables(conn, tables, &ntables, err, errlen)) != 0)
        goto out;
    fprintf(out,
            "-- iotd backup: restore with \"iotd -c CONF -R FILE\" into an empty state_dir "
            "(iotd(8))\n-- format: %d\n-- schema: %d\n-- key: ",
            BACKUP_FORMAT, s->schema_version);
    for (size_t i = 0; i < BACKUP_KEY_LEN; i++)
        fprintf(out, "%02x", key[i]);
    fprintf(out, "\n");
    for (unsigned t = 0; t < ntables; t++)
        if ((rc = dump_table(conn, out, tables[t], s, err, errlen)) != 0)
            goto out;
    fprintf(out, "-- end\n");
    rc = exec(conn, "COMMIT", err, errlen);
    in_transaction = false;
    if (rc != 0)
        goto out;
    if (fflush(out) != 0 || fsync(fileno(out)) != 0 || fstat(fileno(out), &st) != 0) {
        snprintf(err, errlen, "writing %s: %s", partial, strerror(errno));
        rc = IOT_EIO;
        goto out;
    }
    /* The summary's bytes is the file's size (iotctl(8), backup), what ls shows. */
    s->bytes = (uint64_t)st.st_size;
    if (fclose(out) != 0) {
        out = NULL;
        snprintf(err, errlen, "writing %s: %s", partial, strerror(errno));
        rc = IOT_EIO;
        goto out;
    }
    out = NULL;
    /* link, not rename: a file that appeared at path meanwhile is not replaced. */
    if (link(partial, path) != 0) {
        int saved = errno;
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(saved));
        rc = saved == EEXIST ? IOT_EEXIST : IOT_EIO;
        goto out;
    }
    sync_parent(path);
    rc = IOT_OK;
out:
    if (in_transaction)
        mysql_query(conn, "ROLLBACK");
    if (out)
        fclose(out);
    if (made)
        unlink(partial);
    free(tables);
    return rc;
}

/* One line of in, without its newline, into *line (grown as needed). -1 at the end. */
static ssize_t read_line(FILE *in, char **line, size_t *cap)
{
    ssize_t n = getline(line, cap, in);
    if (n > 0 && (*line)[n - 1] == '\n')
        (*line)[--n] = '\0';
    return n;
}

int backup_read_header(FILE *in, int *version, uint8_t key[BACKUP_KEY_LEN], char *err,
                       size_t errlen)
{
    char *line = NULL;
    size_t cap = 0;
    int format = 0, rc = IOT_EINVAL;
    bool have_key = false;
    *version = 0;
    if (read_line(in, &line, &cap) < 0 || strncmp(line, "-- iotd backup", 14) != 0) {
        snprintf(err, errlen, "not an iotd backup (no \"-- iotd backup\" first line)");
        goto out;
    }
    while (!(format && *version && have_key) && read_line(in, &line, &cap) >= 0) {
        if (sscanf(line, "-- format: %d", &format) == 1 ||
            sscanf(line, "-- schema: %d", version) == 1)
            continue;
        if (strncmp(line, "-- key: ", 8) == 0 && strlen(line + 8) == 2 * BACKUP_KEY_LEN) {
            have_key = true;
            for (size_t i = 0; i < BACKUP_KEY_LEN && have_key; i++) {
                unsigned byte;
                have_key = sscanf(line + 8 + 2 * i, "%2x", &byte) == 1;
                key[i] = (uint8_t)byte;
            }
            continue;
        }
        break;
    }
    if (format != BACKUP_FORMAT || *version <= 0 || !have_key) {
        snprintf(err, errlen, "not an iotd backup of format %d (format %d, schema %d, key %s)",
                 BACKUP_FORMAT, format, *version, have_key ? "present" : "missing");
        goto out;
    }
    rc = IOT_OK;
out:
    free(line);
    return rc;
}

int backup_load(MYSQL *conn, FILE *in, struct backup_summary *s, char *err, size_t errlen)
{
    char *line = NULL, sql[128];
    size_t cap = 0;
    bool ended = false;
    int rc = exec(conn, "SET FOREIGN_KEY_CHECKS = 0", err, errlen);
    memset(s, 0, sizeof *s);
    ssize_t n;
    while (rc == IOT_OK && !ended && (n = read_line(in, &line, &cap)) >= 0) {
        if (strncmp(line, "-- table: ", 10) == 0) {
            if (!name_ok(line + 10)) {
                snprintf(err, errlen, "bad table name in the backup: %.64s", line + 10);
                rc = IOT_EINVAL;
                break;
            }
            /* The migrations may have put rows of their own in a table: the backup's win. */
            snprintf(sql, sizeof sql, "DELETE FROM `%s`", line + 10);
            rc = exec(conn, sql, err, errlen);
            s->tables++;
        } else if (strcmp(line, "-- end") == 0) {
            ended = true;
        } else if (strncmp(line, "INSERT INTO `", 13) == 0) {
            if (mysql_real_query(conn, line, (unsigned long)n) != 0)
                rc = db_fail(conn, "loading rows", err, errlen);
            else
                s->rows += mysql_affected_rows(conn);
            s->bytes += (uint64_t)n + 1;
        } else if (strncmp(line, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected line in the backup: %.60s", line);
            rc = IOT_EINVAL;
        }
    }
    if (rc == IOT_OK && !ended) {
        snprintf(err, errlen, "the backup is truncated (no \"-- end\" line)");
        rc = IOT_EINVAL;
    }
    char ignored[64];
    exec(conn, "SET FOREIGN_KEY_CHECKS = 1", ignored, sizeof ignored);
    free(line);
    return rc;
}
