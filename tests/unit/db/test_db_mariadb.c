/*
 * test_db_mariadb.c - the db module against a real MariaDB: a private mariadbd started by
 * mariadb_local in a temporary state dir, connections with unix_socket authentication,
 * migrations (fixtures in migrations/, not the product schema), the db thread pool delivering
 * completions to an inbox on a uv loop, the reconnect-and-retry of a killed connection, the
 * supervisor restarting a SIGKILLed mariadbd, taking over a leftover server, and stopping.
 *
 * The tests share one server (group setup) and run in order; timings of install, start and
 * stop are printed for the record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/batch.h"
#include "db/db.h"
#include "db/stmt_cache.h"
#include "db/mariadb_local.h"
#include "iot_error.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct db_migration fixture_migrations[];
extern const size_t fixture_migrations_count;

#define START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  20000

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps uv_run(ONCE) from blocking for long while we poll */
    char dir[64];
    mariadb_local_t *server;
    struct db_target target; /* database iotd over the server's socket */
    char events[8][256];     /* supervisor notifications */
    int nevents;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_tick(uv_timer_t *t)
{
}

static void on_notify(void *arg, const char *sentence)
{
    struct fixture *f = arg;
    if (f->nevents < 8)
        snprintf(f->events[f->nevents++], sizeof f->events[0], "%s", sentence);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[1024];
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/iotd-db-XXXXXX");
    if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 20, 20);
    uv_unref((uv_handle_t *)&f->tick);
    double t0 = now_ms();
    if (mariadb_local_start(&f->server, &f->loop, f->dir, START_TIMEOUT_MS, err, sizeof err) != 0) {
        fprintf(stderr, "mariadb_local_start: %s\n", err);
        return -1;
    }
    printf("timing: first start (mariadb-install-db + mariadbd ready): %.0f ms\n", now_ms() - t0);
    mariadb_local_set_notify(f->server, on_notify, f);
    if (db_target_for_socket(mariadb_local_socket(f->server), NULL, &f->target) != 0)
        return -1;
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    mariadb_local_stop(f->server, STOP_TIMEOUT_MS);
    db_target_free(&f->target);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* One row, one column as a string: test helper over the text protocol. */
static void query_value(MYSQL *c, const char *sql, char *out, size_t len)
{
    assert_int_equal(mysql_query(c, sql), 0);
    MYSQL_RES *res = mysql_store_result(c);
    assert_non_null(res);
    MYSQL_ROW row = mysql_fetch_row(res);
    assert_non_null(row);
    snprintf(out, len, "%s", row[0] != NULL ? row[0] : "NULL");
    mysql_free_result(res);
}

static MYSQL *connect_db(struct fixture *f, const char *database, bool create)
{
    struct db_target t;
    char err[512];
    MYSQL *c = NULL;
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->server), database, &t), 0);
    int rc = db_connect(&t, create, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("db_connect: %s", err);
    db_target_free(&t);
    return c;
}

static void test_connect_creates_database(void **state)
{
    struct fixture *f = *state;
    char value[128], err[512];
    MYSQL *c = NULL;
    /* The database does not exist yet: without create_db this fails with the reason. */
    assert_int_equal(db_connect(&f->target, false, &c, err, sizeof err), IOT_EDB);
    assert_null(c);
    assert_non_null(strstr(err, "iotd"));
    assert_int_equal(db_connect(&f->target, true, &c, err, sizeof err), 0);
    query_value(c, "SELECT DATABASE()", value, sizeof value);
    assert_string_equal(value, "iotd");
    query_value(c, "SELECT @@character_set_connection", value, sizeof value);
    assert_string_equal(value, "utf8mb4");
    query_value(c, "SELECT @@session.time_zone", value, sizeof value);
    assert_string_equal(value, "+00:00");
    query_value(c, "SELECT @@skip_networking", value, sizeof value);
    assert_string_equal(value, "1");
    mysql_close(c);
    /* Again, now that it exists. */
    c = connect_db(f, "iotd", true);
    mysql_close(c);
}

/* Statements cached per thread: the same one while the connection lives, a fresh one after
 * the connection changed (a reconnect), none after a drop; bad SQL is an error, not a slot. */
static void test_stmt_cache(void **state)
{
    struct fixture *f = *state;
    static const char key_a = 0, key_b = 0;
    const char *sql = "SELECT 1";
    MYSQL_STMT *s1 = NULL, *s2 = NULL;
    char err[256];
    MYSQL *c = connect_db(f, "iotd", true);
    assert_int_equal(stmt_cache_prepare(c, &key_a, sql, strlen(sql), &s1, err, sizeof err), 0);
    s2 = stmt_cache_find(c, &key_a);
    assert_ptr_equal(s1, s2);
    assert_int_equal(mysql_stmt_execute(s2), 0);
    assert_int_equal(mysql_stmt_store_result(s2), 0);
    mysql_stmt_free_result(s2);
    assert_null(stmt_cache_find(c, &key_b));
    assert_int_equal(stmt_cache_prepare(c, &key_b, sql, strlen(sql), &s2, err, sizeof err), 0);
    assert_ptr_not_equal(s1, s2);
    stmt_cache_drop(c, &key_a);
    assert_null(stmt_cache_find(c, &key_a));
    assert_int_equal(stmt_cache_prepare(c, &key_a, "SELEKT", 6, &s1, err, sizeof err),
                     IOT_EINTERNAL);
    assert_null(s1);
    mysql_close(c);
    /* A new connection: nothing cached holds for it; everything is prepared again on it. */
    c = connect_db(f, "iotd", true);
    assert_null(stmt_cache_find(c, &key_b));
    assert_int_equal(stmt_cache_prepare(c, &key_a, sql, strlen(sql), &s1, err, sizeof err), 0);
    assert_ptr_equal(s1->mysql, c);
    assert_int_equal(mysql_stmt_execute(s1), 0);
    mysql_stmt_free_result(s1);
    stmt_cache_release();
    mysql_close(c);
}

static void test_migrate_fresh_and_idempotent(void **state)
{
    struct fixture *f = *state;
    char value[256], err[512];
    int version = -1;
    MYSQL *c = connect_db(f, "iotd_mig", true);

    /* Only the first migration, as an older build would. */
    assert_int_equal(db_migrate_list(c, fixture_migrations, 1, &version, err, sizeof err), 0);
    assert_int_equal(version, 1);
    /* Then all: 2 and 3 are applied in order. */
    int rc =
        db_migrate_list(c, fixture_migrations, fixture_migrations_count, &version, err, sizeof err);
    if (rc != 0)
        fail_msg("db_migrate_list: %s", err);
    assert_int_equal(version, 3);
    query_value(c, "SELECT COUNT(*) FROM schema_version", value, sizeof value);
    assert_string_equal(value, "3");
    query_value(c, "SELECT GROUP_CONCAT(name ORDER BY version) FROM schema_version", value,
                sizeof value);
    assert_string_equal(value, "001_widgets,002_gadgets,003_job_log");
    /* The escaping survived C and SQL: quotes, a mid-line ';', '??' and a backslash. */
    query_value(c, "SELECT note FROM widget WHERE name = 'first'", value, sizeof value);
    assert_string_equal(value, "say \"hi\"; ok?? \\ done");
    query_value(c, "SELECT COUNT(*) FROM gadget", value, sizeof value);
    assert_string_equal(value, "1");

    /* Idempotent: nothing runs twice. */
    assert_int_equal(
        db_migrate_list(c, fixture_migrations, fixture_migrations_count, &version, err, sizeof err),
        0);
    assert_int_equal(version, 3);
    query_value(c, "SELECT COUNT(*) FROM widget", value, sizeof value);
    assert_string_equal(value, "1");
    query_value(c, "SELECT COUNT(*) FROM schema_version", value, sizeof value);
    assert_string_equal(value, "3");
    /* The lock was released. */
    query_value(c, "SELECT IS_FREE_LOCK('iotd_migrate')", value, sizeof value);
    assert_string_equal(value, "1");
    mysql_close(c);
}

static void test_migrate_refuses_newer_schema(void **state)
{
    struct fixture *f = *state;
    char err[512], value[64];
    int version = -1;
    MYSQL *c = connect_db(f, "iotd_mig", false);
    assert_int_equal(mysql_query(c, "INSERT INTO schema_version (version, name) "
                                    "VALUES (99, '099_from_the_future')"),
                     0);
    assert_int_equal(
        db_migrate_list(c, fixture_migrations, fixture_migrations_count, &version, err, sizeof err),
        IOT_ESCHEMA);
    assert_int_equal(version, 99);
    assert_non_null(strstr(err, "99"));
    assert_int_equal(mysql_query(c, "DELETE FROM schema_version WHERE version = 99"), 0);

    /* A failing migration names itself and its statement, and is not recorded. */
    const struct db_migration broken[] = {
        fixture_migrations[0],
        fixture_migrations[1],
        fixture_migrations[2],
        {4, "004_broken", "CREATE TABLE ok_table (id INT);\nCREATE TABLE (oops;\n"},
    };
    assert_int_equal(db_migrate_list(c, broken, 4, &version, err, sizeof err), IOT_EDB);
    assert_non_null(strstr(err, "004_broken, statement 2"));
    assert_int_equal(version, 3);
    query_value(c, "SELECT MAX(version) FROM schema_version", value, sizeof value);
    assert_string_equal(value, "3");
    /* Out-of-order lists are a programming error. */
    const struct db_migration backwards[] = {fixture_migrations[1], fixture_migrations[0]};
    assert_int_equal(db_migrate_list(c, backwards, 2, &version, err, sizeof err), IOT_EINVAL);
    /* The product migrations compiled from sql/ are well-formed (possibly none yet). */
    assert_true(db_schema_latest() >= 0);
    mysql_close(c);
}

/* ---- the pool ---- */

struct pool_ctx {
    pthread_t loop_thread;
    int completed, wrong_thread;
    atomic_int ran_on_loop_thread;
    atomic_int gate_open;
    atomic_int destroyed;
};

struct insert_job {
    db_job_t job;
    struct pool_ctx *ctx;
    int gate; /* block until ctx->gate_open */
};

static int insert_run(db_job_t *job, MYSQL *conn)
{
    struct insert_job *j = container_of(job, struct insert_job, job);
    if (pthread_equal(pthread_self(), j->ctx->loop_thread))
        atomic_fetch_add(&j->ctx->ran_on_loop_thread, 1);
    while (j->gate && !atomic_load(&j->ctx->gate_open))
        usleep(1000);
    MYSQL_STMT *stmt = mysql_stmt_init(conn);
    const char *sql = "INSERT INTO job_log (thread_tag) VALUES (?)";
    char tag[32];
    unsigned long len =
        (unsigned long)snprintf(tag, sizeof tag, "t%lu", (unsigned long)pthread_self() % 100000);
    MYSQL_BIND b;
    memset(&b, 0, sizeof b);
    b.buffer_type = MYSQL_TYPE_STRING;
    b.buffer = tag;
    b.buffer_length = len;
    b.length = &len;
    int rc = 0;
    if (mysql_stmt_prepare(stmt, sql, strlen(sql)) != 0 || mysql_stmt_bind_param(stmt, &b) != 0 ||
        mysql_stmt_execute(stmt) != 0)
        rc = db_error_from_errno(mysql_stmt_errno(stmt));
    mysql_stmt_close(stmt);
    return rc;
}

static void insert_done(inbox_msg_t *msg, void *loop_data)
{
    struct insert_job *j = container_of(msg, struct insert_job, job.done);
    if (!pthread_equal(pthread_self(), j->ctx->loop_thread))
        j->ctx->wrong_thread++;
    if (j->job.status == 0)
        j->ctx->completed++;
    free(j);
}

static void insert_destroy(db_job_t *job)
{
    struct insert_job *j = container_of(job, struct insert_job, job);
    atomic_fetch_add(&j->ctx->destroyed, 1);
    free(j);
}

static struct insert_job *insert_job_new(struct pool_ctx *ctx, inbox_t *inbox)
{
    struct insert_job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    j->ctx = ctx;
    j->job.done.handle = insert_done;
    j->job.reply_to = inbox;
    j->job.run = insert_run;
    j->job.destroy = insert_destroy;
    return j;
}

static void run_loop_until(struct fixture *f, const int *counter, int target, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    while (*counter < target && now_ms() < deadline) {
        uv_ref((uv_handle_t *)&f->tick);
        uv_run(&f->loop, UV_RUN_ONCE);
        uv_unref((uv_handle_t *)&f->tick);
    }
}

static void inbox_closed(inbox_t *inbox)
{
    *(int *)inbox->loop_data = 1;
}

static void test_pool_runs_jobs_and_delivers(void **state)
{
    struct fixture *f = *state;
    struct pool_ctx ctx = {.loop_thread = pthread_self()};
    struct db_target t;
    inbox_t inbox;
    int closed = 0;
    db_pool_t *pool = NULL;
    enum { N = 40 };

    assert_int_equal(inbox_init(&inbox, &f->loop, 64, &closed), 0);
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->server), "iotd_mig", &t), 0);
    assert_int_equal(db_pool_start(&pool, &t, 3, 64), 0);
    db_target_free(&t); /* the pool keeps its own copy */
    for (int i = 0; i < N; i++)
        assert_int_equal(db_pool_submit(pool, &insert_job_new(&ctx, &inbox)->job), 0);
    /* A job nobody waits for is destroyed by the pool. */
    struct insert_job *orphan = insert_job_new(&ctx, NULL);
    assert_int_equal(db_pool_submit(pool, &orphan->job), 0);

    run_loop_until(f, &ctx.completed, N, 20000);
    assert_int_equal(ctx.completed, N);
    assert_int_equal(ctx.wrong_thread, 0);
    assert_int_equal(atomic_load(&ctx.ran_on_loop_thread), 0);

    size_t depth, high, cap;
    uint64_t done, failed;
    unsigned connected;
    /* The orphan may still be finishing: stop() drains it. */
    db_pool_stop(pool);
    assert_int_equal(atomic_load(&ctx.destroyed), 1);

    /* Backpressure: one thread held by a gated job, a queue of 2, the third is refused. */
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->server), "iotd_mig", &t), 0);
    assert_int_equal(db_pool_start(&pool, &t, 1, 2), 0);
    db_target_free(&t);
    struct insert_job *gate = insert_job_new(&ctx, &inbox);
    gate->gate = 1;
    assert_int_equal(db_pool_submit(pool, &gate->job), 0);
    /* Wait until the thread took the gate job off the queue. */
    for (int i = 0; i < 2000; i++) {
        db_pool_stats(pool, &depth, &high, &cap, &done, &failed, &connected);
        if (depth == 0)
            break;
        usleep(1000);
    }
    assert_int_equal(db_pool_submit(pool, &insert_job_new(&ctx, &inbox)->job), 0);
    assert_int_equal(db_pool_submit(pool, &insert_job_new(&ctx, &inbox)->job), 0);
    struct insert_job *extra = insert_job_new(&ctx, &inbox);
    assert_int_equal(db_pool_submit(pool, &extra->job), IOT_EBUSY);
    free(extra);
    db_pool_stats(pool, &depth, &high, &cap, &done, &failed, &connected);
    assert_int_equal(depth, 2);
    assert_int_equal(high, 2);
    assert_int_equal(cap, 2);
    atomic_store(&ctx.gate_open, 1);
    ctx.completed = 0;
    run_loop_until(f, &ctx.completed, 3, 20000);
    assert_int_equal(ctx.completed, 3);
    db_pool_stats(pool, &depth, &high, &cap, &done, &failed, &connected);
    assert_int_equal(done, 3);
    assert_int_equal(failed, 0);
    assert_int_equal(connected, 1);
    db_pool_stop(pool);

    inbox_close(&inbox, inbox_closed);
    run_loop_until(f, &closed, 1, 5000);
    assert_int_equal(closed, 1);

    MYSQL *c = connect_db(f, "iotd_mig", false);
    char value[32];
    query_value(c, "SELECT COUNT(*) FROM job_log", value, sizeof value);
    assert_string_equal(value, "44");
    mysql_close(c);
}

struct kill_job {
    db_job_t job;
    MYSQL *killer;
    int attempts;
    unsigned long first_id, second_id;
    int always_fail;
    int delivered;
};

static int kill_run(db_job_t *job, MYSQL *conn)
{
    struct kill_job *j = container_of(job, struct kill_job, job);
    char sql[64];
    if (++j->attempts == 1) {
        j->first_id = mysql_thread_id(conn);
        snprintf(sql, sizeof sql, "KILL CONNECTION %lu", j->first_id);
        if (mysql_query(j->killer, sql) != 0)
            return IOT_EINTERNAL;
    } else {
        j->second_id = mysql_thread_id(conn);
    }
    if (j->always_fail)
        return IOT_EDB;
    if (mysql_query(conn, "SELECT 1") != 0)
        return db_error_from_errno(mysql_errno(conn));
    MYSQL_RES *res = mysql_store_result(conn);
    mysql_free_result(res);
    return 0;
}

static void kill_done(inbox_msg_t *msg, void *loop_data)
{
    struct kill_job *j = container_of(msg, struct kill_job, job.done);
    j->delivered = 1;
}

static void test_pool_retries_killed_connection(void **state)
{
    struct fixture *f = *state;
    inbox_t inbox;
    int closed = 0;
    db_pool_t *pool = NULL;
    MYSQL *killer = connect_db(f, "iotd", false);
    assert_int_equal(inbox_init(&inbox, &f->loop, 8, &closed), 0);
    assert_int_equal(db_pool_start(&pool, &f->target, 1, 8), 0);

    struct kill_job j = {.killer = killer};
    j.job.done.handle = kill_done;
    j.job.reply_to = &inbox;
    j.job.run = kill_run;
    assert_int_equal(db_pool_submit(pool, &j.job), 0);
    run_loop_until(f, &j.delivered, 1, 20000);
    assert_int_equal(j.delivered, 1);
    assert_int_equal(j.job.status, 0);
    assert_int_equal(j.attempts, 2);
    assert_int_not_equal(j.first_id, j.second_id); /* a new connection */

    /* A job that keeps failing is tried twice, then reported. */
    struct kill_job k = {.killer = killer, .always_fail = 1};
    k.job.done.handle = kill_done;
    k.job.reply_to = &inbox;
    k.job.run = kill_run;
    assert_int_equal(db_pool_submit(pool, &k.job), 0);
    run_loop_until(f, &k.delivered, 1, 20000);
    assert_int_equal(k.job.status, IOT_EDB);
    assert_int_equal(k.attempts, 2);

    size_t depth, high, cap;
    uint64_t done, failed;
    unsigned connected;
    db_pool_stats(pool, &depth, &high, &cap, &done, &failed, &connected);
    assert_int_equal(done, 1);
    assert_int_equal(failed, 1);
    db_pool_stop(pool);
    inbox_close(&inbox, inbox_closed);
    run_loop_until(f, &closed, 1, 5000);
    mysql_close(killer);
}

/* ---- supervision ---- */

static bool can_connect(struct fixture *f)
{
    char err[512];
    MYSQL *c = NULL;
    if (db_connect(&f->target, false, &c, err, sizeof err) != 0)
        return false;
    mysql_close(c);
    return true;
}

static void test_supervisor_restarts_after_sigkill(void **state)
{
    struct fixture *f = *state;
    int old = mariadb_local_pid(f->server);
    assert_true(old > 0);
    assert_int_equal(mariadb_local_restarts(f->server), 0);
    double t0 = now_ms();
    assert_int_equal(kill(old, SIGKILL), 0);
    bool back = false;
    while (!back && now_ms() - t0 < 30000) {
        uv_ref((uv_handle_t *)&f->tick);
        uv_run(&f->loop, UV_RUN_ONCE);
        uv_unref((uv_handle_t *)&f->tick);
        int pid = mariadb_local_pid(f->server);
        back = mariadb_local_restarts(f->server) == 1 && pid > 0 && pid != old && can_connect(f);
    }
    assert_true(back);
    printf("timing: SIGKILL to restarted and accepting (1 s backoff + crash recovery): %.0f ms\n",
           now_ms() - t0);
    assert_true(f->nevents >= 2);
    assert_non_null(strstr(f->events[0], "exited unexpectedly (signal 9)"));
    assert_non_null(strstr(f->events[1], "restarted"));
    /* Data from before the crash is still there. */
    MYSQL *c = connect_db(f, "iotd_mig", false);
    char value[32];
    query_value(c, "SELECT COUNT(*) FROM widget", value, sizeof value);
    assert_string_equal(value, "1");
    mysql_close(c);
}

static void test_takeover_then_stop(void **state)
{
    struct fixture *f = *state;
    char err[1024];
    uv_loop_t other;
    mariadb_local_t *second = NULL;
    int old = mariadb_local_pid(f->server);

    /* A second supervisor on the same state dir finds a live mariadbd on its datadir (as
     * after an iotd crash), stops it and runs its own. */
    assert_int_equal(uv_loop_init(&other), 0);
    double t0 = now_ms();
    int rc = mariadb_local_start(&second, &other, f->dir, START_TIMEOUT_MS, err, sizeof err);
    if (rc != 0)
        fail_msg("takeover start: %s", err);
    printf("timing: takeover (stop leftover + warm start): %.0f ms\n", now_ms() - t0);
    assert_int_not_equal(mariadb_local_pid(second), old);
    assert_true(can_connect(f));

    /* The first supervisor's child is gone; stopping it only reaps and closes. */
    t0 = now_ms();
    mariadb_local_stop(f->server, STOP_TIMEOUT_MS);
    f->server = NULL;
    assert_true(now_ms() - t0 < 5000);
    assert_true(can_connect(f)); /* the second server was not disturbed */

    int pid = mariadb_local_pid(second);
    t0 = now_ms();
    mariadb_local_stop(second, STOP_TIMEOUT_MS);
    printf("timing: stop (SIGTERM to exit): %.0f ms\n", now_ms() - t0);
    assert_int_equal(uv_loop_close(&other), 0);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_false(can_connect(f));

    /* A warm start (existing datadir) for the timing, and the data survived. */
    t0 = now_ms();
    rc = mariadb_local_start(&f->server, &f->loop, f->dir, START_TIMEOUT_MS, err, sizeof err);
    if (rc != 0)
        fail_msg("warm start: %s", err);
    printf("timing: warm start (mariadbd ready): %.0f ms\n", now_ms() - t0);
    MYSQL *c = connect_db(f, "iotd_mig", false);
    char value[32];
    query_value(c, "SELECT MAX(version) FROM schema_version", value, sizeof value);
    assert_string_equal(value, "3");
    mysql_close(c);
}

static void test_start_failure_is_explained(void **state)
{
    char err[2048], dir[] = "/tmp/iotd-db-bad-XXXXXX", path[128];
    uv_loop_t loop;
    mariadb_local_t *m = NULL;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(uv_loop_init(&loop), 0);
    /* A state dir whose "mariadb" is a file: clear error, nothing started. */
    snprintf(path, sizeof path, "%s/mariadb", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(mariadb_local_start(&m, &loop, dir, 5000, err, sizeof err), IOT_EIO);
    assert_null(m);
    assert_non_null(strstr(err, "mariadb"));
    unlink(path);
    /* A corrupt datadir: mariadbd exits during start-up and its error log is quoted. */
    snprintf(path, sizeof path, "%s/mariadb", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/mariadb/data", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/mariadb/data/ibdata1", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("this is not an InnoDB system tablespace", fp);
    fclose(fp);
    assert_int_equal(mariadb_local_start(&m, &loop, dir, 20000, err, sizeof err), IOT_EIO);
    assert_null(m);
    assert_non_null(strstr(err, "error.log says"));
    printf("a corrupt datadir is reported as: %s\n", err);
    assert_int_equal(uv_loop_close(&loop), 0);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- batch: records added while a batch is at the database -------------------------------- */

struct batch_ctx {
    atomic_int gate_open; /* write() waits for it */
    atomic_int entered;   /* write() was called (and may wait at the gate) */
    atomic_int writes;    /* write() calls */
    int order[64];        /* records in the order write() saw them */
    atomic_int nrecords;
    int max_chunk;
    int released;
};

static int batch_write(MYSQL *conn, void *records, size_t n, void *arg)
{
    struct batch_ctx *b = arg;
    (void)conn;
    atomic_store(&b->entered, 1);
    while (!atomic_load(&b->gate_open))
        usleep(1000);
    if ((int)n > b->max_chunk)
        b->max_chunk = (int)n;
    const int *r = records;
    for (size_t i = 0; i < n; i++)
        b->order[atomic_fetch_add(&b->nrecords, 1)] = r[i];
    atomic_fetch_add(&b->writes, 1);
    return 0;
}

static void batch_released(void *arg)
{
    ((struct batch_ctx *)arg)->released = 1;
}

static void test_batch_double_buffer(void **state)
{
    struct fixture *f = *state;
    struct batch_ctx b = {0};
    struct db_target t;
    inbox_t inbox;
    int closed = 0;
    db_pool_t *pool = NULL;
    batch_t *batch = NULL;
    assert_int_equal(inbox_init(&inbox, &f->loop, 64, &closed), 0);
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->server), "iotd_mig", &t), 0);
    assert_int_equal(db_pool_start(&pool, &t, 1, 16), 0);
    db_target_free(&t);
    struct batch_options o = {.record_size = sizeof(int),
                              .capacity = 8,
                              .batch_max = 3,
                              .flush_ms = 10,
                              .write = batch_write,
                              .release = batch_released,
                              .arg = &b};
    assert_int_equal(batch_start(&batch, &f->loop, &inbox, pool, &o), 0);

    int next = 0;
    for (; next < 5; next++)
        batch_add(batch, &next);
    /* The first flush hands those 5 over; write() holds them at the gate. */
    uint64_t written, dropped;
    size_t pending;
    for (int i = 0; i < 2000 && !atomic_load(&b.entered); i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(atomic_load(&b.entered), 1);
    /* Meanwhile producers fill the other buffer, up to its capacity: the 9th is dropped.
     * From half the capacity on, the batch says it is backlogged (senders are held then). */
    assert_false(batch_backlogged(batch));
    for (; next < 8; next++)
        batch_add(batch, &next);
    assert_false(batch_backlogged(batch)); /* 3 waiting */
    batch_add(batch, &next);
    next++;
    assert_true(batch_backlogged(batch)); /* 4 of 8 */
    for (; next < 14; next++)
        batch_add(batch, &next);
    batch_stats(batch, &written, &dropped, &pending);
    assert_int_equal(dropped, 1);
    assert_int_equal(pending, 13);
    atomic_store(&b.gate_open, 1);
    for (int i = 0; i < 2000 && written < 13; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
        batch_stats(batch, &written, &dropped, &pending);
    }
    assert_int_equal(written, 13);
    assert_int_equal(pending, 0);
    assert_false(batch_backlogged(batch)); /* handed over: the filling buffer is empty */
    assert_int_equal(b.max_chunk, 3);      /* batch_max records per write() */
    for (int i = 0; i < 13; i++)
        assert_int_equal(b.order[i], i); /* in order, the dropped one (13) missing */

    /* Stopping writes what is left, then releases the owner. */
    for (next = 100; next < 104; next++)
        batch_add(batch, &next);
    batch_stop(batch);
    run_loop_until(f, &b.released, 1, 5000);
    assert_int_equal(b.released, 1);
    assert_int_equal(atomic_load(&b.nrecords), 17);
    assert_int_equal(b.order[16], 103);

    db_pool_stop(pool);
    inbox_close(&inbox, inbox_closed);
    run_loop_until(f, &closed, 1, 5000);
}

/* --- batch: a database outage holds the batch, it drops nothing ----------------------------- */

struct hold_ctx {
    atomic_int fail_left; /* write() fails with IOT_EDB while this is > 0 */
    atomic_int nrecords;
    int order[64];
    int notes[3]; /* BATCH_HELD, BATCH_RESUMED, BATCH_DROPPED */
    uint64_t dropped_noted;
    int released;
};

static int hold_write(MYSQL *conn, void *records, size_t n, void *arg)
{
    struct hold_ctx *h = arg;
    (void)conn;
    if (atomic_load(&h->fail_left) > 0) {
        atomic_fetch_sub(&h->fail_left, 1);
        return IOT_EDB;
    }
    const int *r = records;
    for (size_t i = 0; i < n; i++)
        h->order[atomic_fetch_add(&h->nrecords, 1)] = r[i];
    return 0;
}

static void hold_note(enum batch_note what, int status, uint64_t n, void *arg)
{
    struct hold_ctx *h = arg;
    (void)status;
    h->notes[what]++;
    if (what == BATCH_DROPPED)
        h->dropped_noted += n;
}

static void hold_released(void *arg)
{
    ((struct hold_ctx *)arg)->released = 1;
}

static void test_batch_holds_on_failure(void **state)
{
    struct fixture *f = *state;
    struct hold_ctx h = {0};
    struct db_target t;
    inbox_t inbox;
    int closed = 0;
    db_pool_t *pool = NULL;
    batch_t *batch = NULL;
    uint64_t written = 0, dropped = 0;
    size_t pending = 0;
    assert_int_equal(inbox_init(&inbox, &f->loop, 64, &closed), 0);
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->server), "iotd_mig", &t), 0);
    assert_int_equal(db_pool_start(&pool, &t, 1, 16), 0);
    db_target_free(&t);
    struct batch_options o = {.record_size = sizeof(int),
                              .capacity = 16,
                              .batch_max = 4,
                              .flush_ms = 10,
                              .write = hold_write,
                              .release = hold_released,
                              .arg = &h,
                              .retry_ms = 20,
                              .note = hold_note};
    assert_int_equal(batch_start(&batch, &f->loop, &inbox, pool, &o), 0);
    /* The database fails the first 5 attempts (the pool retries each once: 2 or 3 holds). */
    atomic_store(&h.fail_left, 5);
    int next = 0;
    for (; next < 6; next++)
        batch_add(batch, &next);
    for (int i = 0; i < 400 && atomic_load(&h.fail_left) > 2; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    for (; next < 12; next++) /* added while the first batch is held */
        batch_add(batch, &next);
    for (int i = 0; i < 4000 && written < 12; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
        batch_stats(batch, &written, &dropped, &pending);
    }
    assert_int_equal(written, 12);
    assert_int_equal(dropped, 0);
    assert_int_equal(pending, 0);
    for (int i = 0; i < 12; i++)
        assert_int_equal(h.order[i], i); /* nothing lost, in order */
    assert_int_equal(h.notes[BATCH_HELD], 1);
    assert_int_equal(h.notes[BATCH_RESUMED], 1);
    assert_int_equal(h.notes[BATCH_DROPPED], 0);

    /* Stopping with the database away for good: tried once more, then dropped and noted. */
    atomic_store(&h.fail_left, 1000);
    for (next = 100; next < 103; next++)
        batch_add(batch, &next);
    batch_stop(batch);
    run_loop_until(f, &h.released, 1, 5000);
    assert_int_equal(h.released, 1);
    assert_int_equal(h.dropped_noted, 3);
    assert_int_equal(atomic_load(&h.nrecords), 12);

    db_pool_stop(pool);
    inbox_close(&inbox, inbox_closed);
    run_loop_until(f, &closed, 1, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_creates_database),
        cmocka_unit_test(test_stmt_cache),
        cmocka_unit_test(test_migrate_fresh_and_idempotent),
        cmocka_unit_test(test_migrate_refuses_newer_schema),
        cmocka_unit_test(test_pool_runs_jobs_and_delivers),
        cmocka_unit_test(test_batch_double_buffer),
        cmocka_unit_test(test_batch_holds_on_failure),
        cmocka_unit_test(test_pool_retries_killed_connection),
        cmocka_unit_test(test_supervisor_restarts_after_sigkill),
        cmocka_unit_test(test_takeover_then_stop),
        cmocka_unit_test(test_start_failure_is_explained),
    };
    setvbuf(stdout, NULL, _IONBF, 0);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
