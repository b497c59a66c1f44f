/*
 * db_target.c - where the database is ("[database] url") and opening a connection to it.
 *
 * Accepted forms:
 *   mariadb://[user@]host[:port][/db]          TCP ("mysql://" is accepted as an alias)
 *   mariadb://[user@]localhost[/db]?socket=/p  a Unix socket, named in the query
 *   unix:/path/to.sock[/db]                    a Unix socket; a database name may follow a
 *                                              path whose last part ends in ".sock"
 * A host may be an IPv6 literal in brackets. A password inside the URL is refused: it would
 * end up in config files, ps output and logs. It comes from password_file or $IOTD_DB_PASSWORD.
 * Database names are limited to [A-Za-z0-9_]{1,64} because DDL (CREATE DATABASE) cannot take
 * the name as a parameter; the strict charset makes quoting it safe.
 */
#include "db/db.h"

#include "iot_error.h"

#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DB_DEFAULT_NAME      "iotd"
#define DB_CONNECT_TIMEOUT_S 10
/* A hung server (SIGSTOPped, disk full, network black hole) fails a statement after this long
 * instead of holding a db thread forever ([database] statement_timeout_s). It is not the event
 * store's deadline ([database] timeout_ms, seconds at most): the store stops waiting long
 * before and spools. A statement may legitimately run this long (a migration's ALTER TABLE, a
 * history query over months): the client would give up on a statement the server still runs. */
#define DB_IO_TIMEOUT_S 30

static bool db_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

void db_target_free(struct db_target *t)
{
    if (t == NULL)
        return;
    free(t->socket_path);
    free(t->host);
    free(t->user);
    if (t->password != NULL) {
        /* Do not leave the password lying in freed heap memory. */
        explicit_bzero(t->password, strlen(t->password));
        free(t->password);
    }
    free(t->database);
    memset(t, 0, sizeof *t);
}

static int dup_or_null(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = strdup(s);
    return *out == NULL ? IOT_ENOMEM : 0;
}

int db_target_copy(const struct db_target *from, struct db_target *to)
{
    memset(to, 0, sizeof *to);
    to->port = from->port;
    to->timeout_ms = from->timeout_ms;
    to->statement_timeout_s = from->statement_timeout_s;
    if (dup_or_null(from->socket_path, &to->socket_path) || dup_or_null(from->host, &to->host) ||
        dup_or_null(from->user, &to->user) || dup_or_null(from->password, &to->password) ||
        dup_or_null(from->database, &to->database)) {
        db_target_free(to);
        return IOT_ENOMEM;
    }
    return 0;
}

int db_target_for_socket(const char *socket_path, const char *database, struct db_target *out)
{
    memset(out, 0, sizeof *out);
    if (socket_path == NULL || socket_path[0] != '/' ||
        (database != NULL && !db_name_valid(database)))
        return IOT_EINVAL;
    out->socket_path = strdup(socket_path);
    out->database = strdup(database != NULL ? database : DB_DEFAULT_NAME);
    if (out->socket_path == NULL || out->database == NULL) {
        db_target_free(out);
        return IOT_ENOMEM;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode %XX escapes in place (user names may contain '@' or ':'). */
static int percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        if (*r == '%') {
            int hi = hex_value(r[1]), lo = hi < 0 ? -1 : hex_value(r[2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return IOT_EINVAL; /* malformed, or an embedded NUL */
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return 0;
}

/* First line of the password file, without its newline. */
static int read_password_file(const char *path, char **out, char *err, size_t errlen)
{
    int rc = IOT_EIO;
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open the database password file %s: %s", path,
                 strerror(errno));
        goto out;
    }
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        snprintf(err, errlen, "the database password file %s is empty", path);
        rc = IOT_EINVAL;
        goto out;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    *out = line;
    line = NULL;
    rc = 0;
out:
    if (line != NULL) {
        explicit_bzero(line, cap);
        free(line);
    }
    if (f != NULL)
        fclose(f);
    return rc;
}

/* Parse "[user@]host[:port][/db][?socket=/path]" (the part after "mariadb://"), in place. */
static int parse_authority(char *s, struct db_target *out, char *err, size_t errlen)
{
    char *query = strchr(s, '?');
    if (query != NULL) {
        *query++ = '\0';
        if (strncmp(query, "socket=", 7) != 0 || query[7] != '/' || strchr(query, '&')) {
            snprintf(err, errlen, "the only URL option understood is ?socket=/absolute/path");
            return IOT_EINVAL;
        }
        if ((out->socket_path = strdup(query + 7)) == NULL)
            return IOT_ENOMEM;
    }
    char *path = strchr(s, '/');
    if (path != NULL) {
        *path++ = '\0';
        if (*path != '\0' && (out->database = strdup(path)) == NULL)
            return IOT_ENOMEM;
    }
    char *at = strrchr(s, '@');
    char *host = s;
    if (at != NULL) {
        *at = '\0';
        host = at + 1;
        if (strchr(s, ':') != NULL) {
            snprintf(err, errlen,
                     "a password in the database URL is refused; put it in a password file");
            return IOT_EINVAL;
        }
        if (percent_decode(s) != 0 || s[0] == '\0') {
            snprintf(err, errlen, "the user name in the database URL is empty or malformed");
            return IOT_EINVAL;
        }
        if ((out->user = strdup(s)) == NULL)
            return IOT_ENOMEM;
    }
    char *port = NULL;
    if (host[0] == '[') {
        char *close = strchr(host, ']');
        if (close == NULL || close == host + 1) {
            snprintf(err, errlen, "malformed IPv6 address in the database URL");
            return IOT_EINVAL;
        }
        *close = '\0';
        host++;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0') {
            snprintf(err, errlen, "unexpected text after the IPv6 address in the database URL");
            return IOT_EINVAL;
        }
    } else if ((port = strchr(host, ':')) != NULL) {
        *port++ = '\0';
    }
    if (host[0] == '\0') {
        snprintf(err, errlen, "the database URL names no host");
        return IOT_EINVAL;
    }
    if (port != NULL) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(port, &end, 10);
        if (port[0] < '0' || port[0] > '9' || *end != '\0' || p == 0 || p > 65535 || errno) {
            snprintf(err, errlen, "the port in the database URL must be a number 1-65535");
            return IOT_EINVAL;
        }
        out->port = (unsigned)p;
    }
    /* With ?socket= the host only names the server for the user's grants; it is not dialled. */
    if (out->socket_path == NULL && (out->host = strdup(host)) == NULL)
        return IOT_ENOMEM;
    return 0;
}

/* Parse "/path/to.sock[/db]" (the part after "unix:"), in place. */
static int parse_unix(char *s, struct db_target *out, char *err, size_t errlen)
{
    if (s[0] != '/') {
        snprintf(err, errlen, "a unix: database URL needs an absolute socket path");
        return IOT_EINVAL;
    }
    char *last = strrchr(s, '/');
    /* "/run/x.sock/iotd": the database follows a component ending in ".sock". */
    if (last != s && last - s >= 5 && strncmp(last - 5, ".sock", 5) == 0) {
        *last = '\0';
        if (last[1] != '\0' && (out->database = strdup(last + 1)) == NULL)
            return IOT_ENOMEM;
    }
    if ((out->socket_path = strdup(s)) == NULL)
        return IOT_ENOMEM;
    return 0;
}

int db_target_parse(const char *url, const char *password_file, struct db_target *out, char *err,
                    size_t errlen)
{
    int rc = IOT_EINVAL;
    char *copy = NULL;
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (url == NULL || url[0] == '\0') {
        snprintf(err, errlen, "the database URL is empty");
        goto out;
    }
    if ((copy = strdup(url)) == NULL) {
        rc = IOT_ENOMEM;
        goto out;
    }
    if (strncmp(copy, "mariadb://", 10) == 0)
        rc = parse_authority(copy + 10, out, err, errlen);
    else if (strncmp(copy, "mysql://", 8) == 0)
        rc = parse_authority(copy + 8, out, err, errlen);
    else if (strncmp(copy, "unix:", 5) == 0)
        rc = parse_unix(copy + 5, out, err, errlen);
    else
        snprintf(err, errlen,
                 "database URL \"%s\" is neither local, mariadb://user@host:port/db nor "
                 "unix:/path/to.sock/db",
                 url);
    if (rc != 0)
        goto out;
    rc = IOT_EINVAL;
    if (out->database == NULL && (out->database = strdup(DB_DEFAULT_NAME)) == NULL) {
        rc = IOT_ENOMEM;
        goto out;
    }
    if (!db_name_valid(out->database)) {
        snprintf(err, errlen, "database name \"%s\" must be 1-64 letters, digits or underscores",
                 out->database);
        goto out;
    }
    if (password_file != NULL) {
        if ((rc = read_password_file(password_file, &out->password, err, errlen)) != 0)
            goto out;
    } else {
        const char *env = getenv("IOTD_DB_PASSWORD");
        if (env != NULL && (out->password = strdup(env)) == NULL) {
            rc = IOT_ENOMEM;
            goto out;
        }
    }
    rc = 0;
out:
    if (rc == IOT_ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory parsing the database URL");
    if (rc != 0)
        db_target_free(out);
    free(copy);
    return rc;
}

/* The effective user's login name: the account unix_socket authentication maps us to. */
static int effective_user(char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(geteuid(), &pw, tmp, sizeof tmp, &res) != 0 || res == NULL ||
        strlen(pw.pw_name) >= len)
        return IOT_ENOTFOUND;
    strcpy(buf, pw.pw_name);
    return 0;
}

int db_connect(const struct db_target *t, bool create_db, MYSQL **out, char *err, size_t errlen)
{
    int rc = IOT_EDB;
    char user[256], sql[160];
    MYSQL *conn = NULL;
    const char *who = t->user;
    *out = NULL;
    if (who == NULL) {
        if (effective_user(user, sizeof user) != 0) {
            snprintf(err, errlen, "uid %u has no user name to log in to the database with",
                     (unsigned)geteuid());
            rc = IOT_EINVAL;
            goto out;
        }
        who = user;
    }
    if (!db_name_valid(t->database != NULL ? t->database : DB_DEFAULT_NAME)) {
        snprintf(err, errlen, "invalid database name");
        rc = IOT_EINVAL;
        goto out;
    }
    const char *dbname = t->database != NULL ? t->database : DB_DEFAULT_NAME;
    if ((conn = mysql_init(NULL)) == NULL) {
        snprintf(err, errlen, "out of memory opening a database connection");
        rc = IOT_ENOMEM;
        goto out;
    }
    /* A hung server accepts a connection on its socket and never greets it: give up after the
     * deadline, so that a reconnect never holds a db thread longer than the work would. */
    unsigned timeout = t->timeout_ms ? (t->timeout_ms + 999) / 1000 : DB_CONNECT_TIMEOUT_S;
    bool reconnect = false;
    /* UTC sessions: TIMESTAMP values read back the same whatever the host's time zone. */
    mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    unsigned io_timeout = t->statement_timeout_s ? t->statement_timeout_s : DB_IO_TIMEOUT_S;
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    mysql_options(conn, MYSQL_OPT_RECONNECT, &reconnect);
    mysql_options(conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    const char *host = t->socket_path != NULL ? "localhost" : t->host;
    if (mysql_real_connect(conn, host, who, t->password, NULL, t->port, t->socket_path, 0) ==
        NULL) {
        snprintf(err, errlen, "cannot connect to the database at %s as %s: %s",
                 t->socket_path != NULL ? t->socket_path : t->host, who, mysql_error(conn));
        goto out;
    }
    if (mysql_autocommit(conn, 1) != 0)
        goto failed;
    if (create_db) {
        snprintf(sql, sizeof sql,
                 "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 "
                 "COLLATE utf8mb4_unicode_ci",
                 dbname);
        if (mysql_real_query(conn, sql, strlen(sql)) != 0)
            goto failed;
    }
    if (mysql_select_db(conn, dbname) != 0)
        goto failed;
    *out = conn;
    conn = NULL;
    rc = 0;
    goto out;
failed:
    snprintf(err, errlen, "database %s: %s", dbname, mysql_error(conn));
out:
    if (conn != NULL)
        mysql_close(conn);
    return rc;
}

int db_error_from_errno(unsigned mysql_errno)
{
    switch (mysql_errno) {
    case 0:
        return IOT_OK;
    case ER_DUP_ENTRY:
    case ER_DUP_KEY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
        return IOT_EEXIST;
    case ER_ROW_IS_REFERENCED:
    case ER_ROW_IS_REFERENCED_2:
        return IOT_EINUSE;
    case ER_NO_REFERENCED_ROW:
    case ER_NO_REFERENCED_ROW_2:
        return IOT_ENOTFOUND;
    case ER_CONSTRAINT_FAILED:
    case ER_DATA_TOO_LONG:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case WARN_DATA_TRUNCATED:
        return IOT_EINVAL;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
        return IOT_EBUSY;
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_QUERY_INTERRUPTED:
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT, newer than some headers */
        return IOT_EDB;
    default:
        /* Client-side errors (2000-2999) all leave the connection unusable. */
        if (mysql_errno >= 2000 && mysql_errno < 3000)
            return IOT_EDB;
        return IOT_EINTERNAL;
    }
}
