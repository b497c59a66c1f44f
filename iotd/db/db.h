/*
 * db.h - the database threads: the only place libmariadb's blocking calls run.
 *
 * A pool of db threads each owns one MYSQL connection (opened lazily, re-opened after it is
 * lost). Work arrives as db jobs on one bounded queue; a job's run() executes on a db thread
 * with a live connection, then the job is handed back to the submitter's loop through its
 * inbox (job->done), so io threads and the main loop never wait on the database.
 */
#ifndef IOTD_DB_H
#define IOTD_DB_H

#include "loop/fifo.h"
#include "loop/inbox.h"

#include <mysql.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Where the database is. Parsed from "[database] url" (see db_target_parse). */
struct db_target {
    char *socket_path;            /* Unix socket, or NULL for TCP */
    char *host;                   /* TCP host, or NULL */
    unsigned port;                /* TCP port, 0 = 3306 */
    char *user;                   /* NULL: the effective user's name (unix_socket auth) */
    char *password;               /* NULL: none */
    char *database;               /* schema name, default "iotd" */
    unsigned timeout_ms;          /* connect timeout (rounded up to seconds); 0: 10 s */
    unsigned statement_timeout_s; /* a statement's read/write timeout; 0: 30 s */
};

/* Parse "mariadb://user@host:port/db", "mariadb://user@localhost/db?socket=/path" or
 * "unix:/path/to.sock[/db]". The password is read from password_file (may be NULL; first line,
 * newline stripped) or $IOTD_DB_PASSWORD. Returns IOT_EINVAL with a sentence in err. */
int db_target_parse(const char *url, const char *password_file, struct db_target *out, char *err,
                    size_t errlen);
void db_target_free(struct db_target *t);
/* A target for a local server's Unix socket with the effective user (unix_socket auth), as
 * used for "[database] url = local". database NULL means "iotd". IOT_ENOMEM or IOT_EINVAL. */
int db_target_for_socket(const char *socket_path, const char *database, struct db_target *out);
/* Deep copy (the pool keeps its own). */
int db_target_copy(const struct db_target *from, struct db_target *to);

/* Open a connection (utf8mb4, autocommit on, reconnect off) and select the database,
 * creating it if create_db. Returns IOT_EDB with the server's message in err. */
int db_connect(const struct db_target *t, bool create_db, MYSQL **out, char *err, size_t errlen);

/* Map a MariaDB client or server error number (mysql_errno, mysql_stmt_errno) to an IOT_E*
 * code: IOT_EDB for a lost, killed or unreachable connection (the pool then reconnects and
 * retries), IOT_EEXIST for a duplicate key, IOT_EINUSE for a row still referenced,
 * IOT_ENOTFOUND for a reference to a missing row, 0 for 0, IOT_EINTERNAL otherwise. */
int db_error_from_errno(unsigned mysql_errno);

typedef struct db_job db_job_t;
struct db_job {
    inbox_msg_t done;  /* pushed to reply_to when run() has returned; handler = the submitter's */
    inbox_t *reply_to; /* NULL: nobody waits; the pool calls destroy() instead */
    /* Runs on a db thread. Returns 0 or a negative IOT_E*; IOT_EDB means the connection failed,
     * and the pool reconnects and runs the job once more before giving up. */
    int (*run)(db_job_t *job, MYSQL *conn);
    void (*destroy)(db_job_t *job); /* only used when reply_to is NULL */
    int status;                     /* run()'s result, set before done is pushed */
    struct fifo_link link;          /* queue link, owned by the pool */
};

typedef struct db_pool db_pool_t;

/* Start nthreads db threads with a job queue bound of capacity. The target is copied. */
int db_pool_start(db_pool_t **out, const struct db_target *target, unsigned nthreads,
                  size_t capacity);
/* Queue a job. The pool owns it until it is delivered: pushed to reply_to (whose handler then
 * owns it), or destroy()ed when reply_to is NULL or reply_to refuses it (closing). The loops
 * that receive completions must keep running until db_pool_stop returns, since a db thread
 * waits for space in a full inbox. IOT_EBUSY when the queue is full, IOT_EINVAL once stopping. */
int db_pool_submit(db_pool_t *pool, db_job_t *job);
/* Counters for stats. */
void db_pool_stats(db_pool_t *pool, size_t *depth, size_t *high_water, size_t *capacity,
                   uint64_t *done, uint64_t *failed, unsigned *connected);
/* Per db thread, for stats: OS thread id and time spent running jobs. */
struct db_thread_info {
    _Atomic int tid;
    _Atomic uint64_t busy_ns;
};
/* Number of threads; info of thread i (valid until db_pool_stop). */
unsigned db_pool_threads(const db_pool_t *pool);
const struct db_thread_info *db_pool_thread(const db_pool_t *pool, unsigned i);

/* Run what is queued, then join the threads and free the pool. Completions of the drained
 * jobs are pushed to their inboxes; see db_pool_submit about keeping those loops alive. */
void db_pool_stop(db_pool_t *pool);

/* One migration: sql/NNN_name.sql compiled in (version NNN, name "NNN_name"). */
struct db_migration {
    int version;
    const char *name;
    const char *sql;
};

/* Migrations: the numbered files of sql/ are compiled into the binary (db_migrations.c,
 * generated). Applies every migration above the recorded schema_version, each in order,
 * recording it. Returns IOT_ESCHEMA if the database's version is newer than the newest known
 * migration, IOT_EDB on failure; *version gets the version in force afterwards. */
int db_migrate(MYSQL *conn, int *version, char *err, size_t errlen);
/* db_migrate with an explicit list (strictly increasing versions): for tests and tools. A
 * migration's file is split into statements at lines ending in ';' ("--" lines are comments),
 * so a statement must not end a line with ';' inside a body (triggers, procedures). DDL
 * commits implicitly in MariaDB: a migration that fails half-way is reported by file and
 * statement number and is not recorded. IOT_EBUSY when another process holds the migration
 * lock for 30 s. */
int db_migrate_list(MYSQL *conn, const struct db_migration *list, size_t count, int *version,
                    char *err, size_t errlen);
/* The newest migration this build knows. */
int db_schema_latest(void);

#endif
