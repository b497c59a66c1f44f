/*
 * test_store.c - the durable event store against a real MariaDB: a private mariadbd started by
 * mariadb_local in a temporary state dir and migrated with the product schema (sql/).
 *
 * The db pool reaches the server through a symlink to its socket, so a test makes the database
 * unreachable by killing the pool's connections and removing the link (reconnects then fail at
 * once), and brings it back by restoring the link. The tests share one server and run in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/db.h"
#include "db/mariadb_local.h"
#include "db/partitions.h"
#include "events/store.h"
#include "iot_error.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The product's compiled-in migrations (iotd/db, generated from sql/): the store's tables are
 * 004's, with 011's incarnation of a sequence mark. */
extern const struct db_migration db_migrations[];
extern const size_t db_migrations_count;

#define START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  20000

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick;
    inbox_t inbox;
    char dir[64], link[128], spool[128];
    mariadb_local_t *server;
    MYSQL *admin;
    db_pool_t *pool;
    /* what done() saw */
    size_t acked, dups, calls, last_n;
    double last_at;
    bool stopped;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return remove(path);
}

static int migrate(MYSQL *c, char *err, size_t errlen)
{
    int version;
    return db_migrate_list(c, db_migrations, db_migrations_count, &version, err, errlen);
}

static int group_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[1024];
    struct db_target t;
    strcpy(f->dir, "/tmp/iotd-events-XXXXXX");
    if (!mkdtemp(f->dir) || uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 10, 10);
    uv_unref((uv_handle_t *)&f->tick);
    if (mariadb_local_start(&f->server, &f->loop, f->dir, START_TIMEOUT_MS, err, sizeof err)) {
        fprintf(stderr, "mariadb_local_start: %s\n", err);
        return -1;
    }
    if (db_target_for_socket(mariadb_local_socket(f->server), NULL, &t) != 0 ||
        db_connect(&t, true, &f->admin, err, sizeof err) != 0 ||
        migrate(f->admin, err, sizeof err) != 0) {
        fprintf(stderr, "connect/migrate: %s\n", err);
        return -1;
    }
    db_target_free(&t);
    snprintf(f->link, sizeof f->link, "%s/db.sock", f->dir);
    snprintf(f->spool, sizeof f->spool, "%s/events.spool", f->dir);
    if (symlink(mariadb_local_socket(f->server), f->link) != 0)
        return -1;
    if (db_target_for_socket(f->link, NULL, &t) != 0 || db_pool_start(&f->pool, &t, 2, 256) != 0)
        return -1;
    db_target_free(&t);
    if (inbox_init(&f->inbox, &f->loop, 4096, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return -1;
    db_pool_stop(f->pool);
    inbox_close(&f->inbox, NULL);
    event_store_thread_release();
    mysql_close(f->admin);
    mariadb_local_stop(f->server, STOP_TIMEOUT_MS);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    mysql_library_end();
    return rc == 0 ? 0 : -1;
}

/* Run the loop until *counter >= target or timeout_ms; true if reached. */
static bool run_until(struct fixture *f, const size_t *counter, size_t target, double timeout_ms)
{
    double end = now_ms() + timeout_ms;
    while (*counter < target && now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    return *counter >= target;
}

static void on_done(struct event *const *events, size_t n, void *arg)
{
    struct fixture *f = arg;
    for (size_t i = 0; i < n; i++)
        f->dups += events[i]->duplicate;
    f->acked += n;
    f->calls++;
    f->last_n = n;
    f->last_at = now_ms();
}

static void on_stopped(void *arg)
{
    struct fixture *f = arg;
    f->stopped = true;
}

static event_store_t *store_start(struct fixture *f, struct event_store_options o)
{
    char err[256];
    event_store_t *st = NULL;
    o.spool_path = f->spool;
    o.stopped = on_stopped;
    f->acked = f->dups = f->calls = f->last_n = 0;
    int rc = event_store_start(&st, &f->loop, &f->inbox, f->pool, &o, on_done, f, err, sizeof err);
    if (rc != 0)
        fail_msg("event_store_start: %s", err);
    return st;
}

static void store_stop(struct fixture *f, event_store_t *st)
{
    f->stopped = false;
    event_store_stop(st);
    double end = now_ms() + 20000;
    while (!f->stopped && now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->stopped);
}

static long long query_int(struct fixture *f, const char *sql)
{
    assert_int_equal(mysql_query(f->admin, sql), 0);
    MYSQL_RES *res = mysql_store_result(f->admin);
    assert_non_null(res);
    MYSQL_ROW row = mysql_fetch_row(res);
    long long v = row && row[0] ? atoll(row[0]) : -1;
    mysql_free_result(res);
    return v;
}

static struct event *make(const char *tenant, const char *device, uint32_t seq, int64_t ts)
{
    char v[32];
    snprintf(v, sizeof v, "value=%u", seq);
    const char *fields[] = {v, "unit=C"};
    struct event *ev =
        event_new(EVENT_KIND_EVENT, tenant, device, "thermo", "temp", seq, ts, 2, fields);
    assert_non_null(ev);
    return ev;
}

static int add(event_store_t *st, const char *tenant, const char *device, uint32_t seq)
{
    struct event *ev = make(tenant, device, seq, wall_ms());
    int rc = event_store_add(st, ev);
    event_unref(ev);
    return rc;
}

/* Per device, ids increase with seq: stored in order. */
static void assert_in_order(struct fixture *f, const char *tenant)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM events a JOIN events b ON a.device_id = b.device_id "
             "AND a.tenant = b.tenant AND a.id < b.id AND a.seq >= b.seq WHERE a.tenant = '%s'",
             tenant);
    assert_int_equal(query_int(f, sql), 0);
}

static void db_down(struct fixture *f)
{
    assert_int_equal(unlink(f->link), 0);
    /* Kill every other session (the pool's): their next statement fails, reconnects fail. */
    assert_int_equal(mysql_query(f->admin, "SELECT ID FROM information_schema.PROCESSLIST "
                                           "WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' "
                                           "AND USER <> 'system user'"),
                     0);
    MYSQL_RES *res = mysql_store_result(f->admin);
    MYSQL_ROW row;
    char sql[64];
    long long ids[64];
    int n = 0;
    while ((row = mysql_fetch_row(res)) && n < 64)
        ids[n++] = atoll(row[0]);
    mysql_free_result(res);
    for (int i = 0; i < n; i++) {
        snprintf(sql, sizeof sql, "KILL CONNECTION %lld", ids[i]);
        mysql_query(f->admin, sql); /* may be gone already */
    }
}

static void db_up(struct fixture *f)
{
    assert_int_equal(symlink(mariadb_local_socket(f->server), f->link), 0);
}

static void test_write_dedup_direct(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct event *evs[6];
    uint32_t seqs[] = {1, 2, 2, 3, 1, 4}; /* a retransmission inside the batch */
    for (int i = 0; i < 6; i++)
        evs[i] = make("direct", i % 2 ? "d2" : "d1", seqs[i], wall_ms());
    /* d1: 1, 2, 1 -> 1, 2 stored; d2: 2, 3, 4 stored */
    assert_int_equal(event_store_write(f->admin, evs, 6, err, sizeof err), 0);
    assert_false(evs[0]->duplicate);
    assert_false(evs[2]->duplicate);
    assert_true(evs[4]->duplicate);
    assert_int_equal(evs[4]->id, 0);
    assert_true(evs[1]->id > 0);
    assert_int_equal(evs[3]->id, evs[1]->id + 2); /* consecutive ids in one statement */
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'direct'"), 5);
    assert_int_equal(query_int(f, "SELECT last_seq FROM event_seq WHERE device_id = 'd2'"), 4);
    /* The same batch again: everything is a duplicate. */
    assert_int_equal(event_store_write(f->admin, evs, 6, err, sizeof err), 0);
    for (int i = 0; i < 6; i++) {
        assert_true(evs[i]->duplicate);
        event_unref(evs[i]);
    }
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'direct'"), 5);
    /* Fields are a JSON object of strings, invalid UTF-8 replaced. */
    const char *fields[] = {"t=21.5", "q=\"x\\y\"", "bad=\xff"};
    struct event *ev =
        event_new(EVENT_KIND_ALARM, "direct", "d3", "x", "hot", 1, wall_ms(), 3, fields);
    assert_int_equal(event_store_write(f->admin, &ev, 1, err, sizeof err), 0);
    event_unref(ev);
    assert_int_equal(query_int(f, "SELECT JSON_VALUE(fields, '$.t') = '21.5' AND "
                                  "JSON_VALUE(fields, '$.q') = '\"x\\\\y\"' AND kind = 'alarm' "
                                  "FROM events WHERE device_id = 'd3'"),
                     1);
}

static void test_burst_group_commit(void **state)
{
    struct fixture *f = *state;
    event_store_t *st = store_start(f, (struct event_store_options){.batch_max = 100});
    char dev[16];
    for (uint32_t seq = 1; seq <= 100; seq++)
        for (int d = 0; d < 10; d++) {
            snprintf(dev, sizeof dev, "burst%d", d);
            assert_int_equal(add(st, "burst", dev, seq), 0);
        }
    assert_true(run_until(f, &f->acked, 1000, 20000));
    assert_int_equal(f->dups, 0);
    struct event_store_stats s;
    event_store_stats(st, &s);
    assert_int_equal(s.stored, 1000);
    assert_true(s.batches >= 10 && s.batches < 100);
    assert_string_equal(s.state, "db");
    printf("burst: 1000 events in %llu batches (last %zu)\n", (unsigned long long)s.batches,
           s.last_batch);
    store_stop(f, st);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'burst'"), 1000);
    assert_int_equal(
        query_int(f, "SELECT COUNT(DISTINCT device_id, seq) FROM events WHERE tenant = 'burst'"),
        1000);
    assert_in_order(f, "burst");
}

static void test_duplicates_across_restart(void **state)
{
    struct fixture *f = *state;
    event_store_t *st = store_start(f, (struct event_store_options){.no_maintenance = true});
    for (uint32_t seq = 1; seq <= 10; seq++)
        assert_int_equal(add(st, "dup", "dupdev", seq), 0);
    assert_true(run_until(f, &f->acked, 10, 10000));
    store_stop(f, st);
    st = store_start(f, (struct event_store_options){.no_maintenance = true});
    for (uint32_t seq = 5; seq <= 15; seq++)
        assert_int_equal(add(st, "dup", "dupdev", seq), 0);
    assert_int_equal(add(st, "dup", "dupdev", 15), 0); /* again, in the same batch */
    assert_true(run_until(f, &f->acked, 12, 10000));
    assert_int_equal(f->dups, 7);
    store_stop(f, st);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE device_id = 'dupdev'"), 15);
}

static void test_batch_closed_by_size_and_time(void **state)
{
    struct fixture *f = *state;
    event_store_t *st = store_start(
        f, (struct event_store_options){.batch_max = 10, .flush_ms = 400, .no_maintenance = true});
    /* Size: 10 waiting kick the batch at once, long before the 400 ms timer. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    double t0 = now_ms();
    for (uint32_t seq = 1; seq <= 10; seq++)
        assert_int_equal(add(st, "bt", "btdev", seq), 0);
    assert_true(run_until(f, &f->acked, 10, 5000));
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->last_n, 10);
    printf("batch closed by size after %.1f ms\n", f->last_at - t0);
    assert_true(f->last_at - t0 < 300);
    /* Time: 3 events wait for the timer, then go together. */
    t0 = now_ms();
    for (uint32_t seq = 11; seq <= 13; seq++)
        assert_int_equal(add(st, "bt", "btdev", seq), 0);
    assert_true(run_until(f, &f->acked, 13, 5000));
    assert_int_equal(f->calls, 2);
    assert_int_equal(f->last_n, 3);
    printf("batch of 3 closed by time after %.1f ms (flush_ms 400)\n", f->last_at - t0);
    assert_true(f->last_at - t0 < 1000);
    store_stop(f, st);
}

static void test_spool_then_replay(void **state)
{
    struct fixture *f = *state;
    event_store_t *st =
        store_start(f, (struct event_store_options){.batch_max = 50, .no_maintenance = true});
    char dev[16];
    db_down(f);
    for (uint32_t seq = 1; seq <= 100; seq++)
        for (int d = 0; d < 5; d++) {
            snprintf(dev, sizeof dev, "sp%d", d);
            assert_int_equal(add(st, "spool", dev, seq), 0);
        }
    assert_true(run_until(f, &f->acked, 500, 20000));
    assert_int_equal(f->dups, 0);
    struct event_store_stats s;
    event_store_stats(st, &s);
    assert_string_equal(s.state, "spool");
    assert_int_equal(s.spooled, 500);
    assert_true(s.spool_bytes > 0);
    assert_true(event_store_retry_s(st) >= 1);
    /* Retransmissions of spooled events are recognised (the cache) and not spooled again. */
    for (uint32_t seq = 90; seq <= 100; seq++)
        assert_int_equal(add(st, "spool", "sp0", seq), 0);
    assert_true(run_until(f, &f->acked, 511, 10000));
    assert_int_equal(f->dups, 11);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'spool'"), 0);
    /* Back: replayed exactly once, in order, without done() again. */
    db_up(f);
    double end = now_ms() + 20000;
    do {
        uv_run(&f->loop, UV_RUN_ONCE);
        event_store_stats(st, &s);
    } while ((strcmp(s.state, "db") != 0 || s.replayed < 500) && now_ms() < end);
    printf("replayed %llu events, state %s\n", (unsigned long long)s.replayed, s.state);
    assert_string_equal(s.state, "db");
    assert_int_equal(s.replayed, 500);
    assert_int_equal(s.spool_bytes, 0);
    assert_int_equal(f->acked, 511);
    /* New events go to the database again. */
    assert_int_equal(add(st, "spool", "sp0", 101), 0);
    assert_true(run_until(f, &f->acked, 512, 10000));
    store_stop(f, st);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'spool'"), 501);
    assert_in_order(f, "spool");
}

static void test_restart_replays_spool(void **state)
{
    struct fixture *f = *state;
    event_store_t *st = store_start(f, (struct event_store_options){.no_maintenance = true});
    db_down(f);
    for (uint32_t seq = 1; seq <= 20; seq++)
        assert_int_equal(add(st, "restart", "rsdev", seq), 0);
    assert_true(run_until(f, &f->acked, 20, 10000));
    store_stop(f, st); /* the spool stays: the database is still down */
    db_up(f);
    st = store_start(f, (struct event_store_options){.no_maintenance = true});
    struct event_store_stats s;
    event_store_stats(st, &s);
    assert_string_equal(s.state, "replay");
    assert_int_equal(s.spool_pending, 20);
    double end = now_ms() + 10000;
    do {
        uv_run(&f->loop, UV_RUN_ONCE);
        event_store_stats(st, &s);
    } while (s.replayed < 20 && now_ms() < end);
    assert_int_equal(s.replayed, 20);
    store_stop(f, st);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE device_id = 'rsdev'"), 20);
    assert_in_order(f, "restart");
}

static void test_spool_bound_busy(void **state)
{
    struct fixture *f = *state;
    event_store_t *st = store_start(
        f, (struct event_store_options){.spool_max_bytes = 8192, .no_maintenance = true});
    db_down(f);
    size_t accepted = 0;
    int rc = 0;
    for (uint32_t seq = 1; seq <= 5000; seq++) {
        rc = add(st, "bound", "bddev", seq);
        if (rc == IOT_EBUSY)
            break;
        assert_int_equal(rc, 0);
        accepted++;
        run_until(f, &f->acked, accepted, 2000); /* one at a time: spooled before the next */
    }
    assert_int_equal(rc, IOT_EBUSY);
    assert_true(accepted > 10 && accepted < 5000);
    assert_int_equal(f->acked, accepted); /* everything accepted was acknowledged */
    struct event_store_stats s;
    event_store_stats(st, &s);
    assert_true(s.busy >= 1);
    assert_true(s.spool_bytes <= 8192);
    assert_true(event_store_retry_s(st) >= 1);
    printf("spool bound 8192 bytes: %zu events accepted, then busy retry=%u\n", accepted,
           event_store_retry_s(st));
    db_up(f);
    double end = now_ms() + 20000;
    do {
        uv_run(&f->loop, UV_RUN_ONCE);
        event_store_stats(st, &s);
    } while (s.spool_bytes > 0 && now_ms() < end);
    assert_int_equal(s.spool_bytes, 0);
    assert_int_equal(add(st, "bound", "bddev", 6000), 0);
    store_stop(f, st);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'bound'"),
                     (long long)accepted + 1);
}

static void test_query_filters(void **state)
{
    struct fixture *f = *state;
    char err[256];
    int64_t t0 = wall_ms() - 60000;
    struct event *evs[6];
    const char *devs[] = {"qa", "qb", "qa", "qb", "qa", "qa"};
    for (int i = 0; i < 6; i++) {
        const char *fields[] = {"x=1"};
        evs[i] = event_new(i == 3 ? EVENT_KIND_ALARM : EVENT_KIND_EVENT, "qt", devs[i], "thermo",
                           i % 2 ? "hum" : "temp", (uint32_t)(i + 1), t0 + i * 1000, 1, fields);
    }
    assert_int_equal(event_store_write(f->admin, evs, 6, err, sizeof err), 0);
    for (int i = 0; i < 6; i++)
        event_unref(evs[i]);
    cJSON *rows;
    struct event_query q = {.tenant = "qt"};
    assert_int_equal(event_store_query(f->admin, &q, &rows, err, sizeof err), 0);
    assert_int_equal(cJSON_GetArraySize(rows), 6);
    cJSON *r0 = cJSON_GetArrayItem(rows, 0);
    assert_int_equal((int64_t)cJSON_GetObjectItem(r0, "ts_ms")->valuedouble, t0);
    assert_string_equal(cJSON_GetObjectItem(r0, "device")->valuestring, "qa");
    assert_string_equal(cJSON_GetObjectItem(r0, "kind")->valuestring, "event");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r0, "fields"), "x")->valuestring,
                        "1");
    const char *when = cJSON_GetObjectItem(r0, "time")->valuestring;
    assert_int_equal(strlen(when), 24);
    assert_true(when[10] == 'T' && when[23] == 'Z');
    cJSON_Delete(rows);

    struct {
        struct event_query q;
        int expect;
    } cases[] = {
        {{.tenant = "qt", .device = "qa"}, 4},
        {{.tenant = "qt", .name = "hum"}, 3},
        {{.tenant = "qt", .kind = EVENT_QUERY_ALARM}, 1},
        {{.tenant = "qt", .kind = EVENT_QUERY_EVENT, .device = "qb"}, 1},
        {{.tenant = "qt", .since_ms = t0 + 2000}, 4},
        {{.tenant = "qt", .since_ms = t0 + 1000, .until_ms = t0 + 3000}, 2},
        {{.tenant = "qt", .limit = 2}, 2},
        {{.tenant = "nobody"}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(event_store_query(f->admin, &cases[i].q, &rows, err, sizeof err), 0);
        if (cJSON_GetArraySize(rows) != cases[i].expect)
            fail_msg("case %zu: %d rows, expected %d", i, cJSON_GetArraySize(rows),
                     cases[i].expect);
        cJSON_Delete(rows);
    }
    q = (struct event_query){.tenant = "qt", .since_ms = t0 + 1000, .limit = 1};
    assert_int_equal(event_store_query(f->admin, &q, &rows, err, sizeof err), 0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "seq")->valueint, 2);
    cJSON_Delete(rows);
    q = (struct event_query){.tenant = NULL};
    assert_int_equal(event_store_query(f->admin, &q, &rows, err, sizeof err), IOT_EINVAL);
    q = (struct event_query){.tenant = "qt", .limit = 20000};
    assert_int_equal(event_store_query(f->admin, &q, &rows, err, sizeof err), IOT_EINVAL);
}

static void partitions(struct fixture *f, MYSQL *c, char *out, size_t len)
{
    (void)f;
    assert_int_equal(mysql_query(c,
                                 "SELECT GROUP_CONCAT(PARTITION_NAME ORDER BY "
                                 "PARTITION_ORDINAL_POSITION) FROM information_schema.PARTITIONS "
                                 "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events'"),
                     0);
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = mysql_fetch_row(res);
    snprintf(out, len, "%s", row[0]);
    mysql_free_result(res);
}

static int64_t utc_ms(int y, int m, int d, int h)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = h};
    return (int64_t)timegm(&tm) * 1000;
}

static void test_partitions(void **state)
{
    struct fixture *f = *state;
    char err[512], names[1024];
    unsigned created, dropped;
    struct db_target t;
    MYSQL *c = NULL;
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->server), "iotd_parts", &t), 0);
    assert_int_equal(db_connect(&t, true, &c, err, sizeof err), 0);
    db_target_free(&t);
    assert_int_equal(migrate(c, err, sizeof err), 0);
    partitions(f, c, names, sizeof names);
    assert_string_equal(names, "p20261124,p20261125,p20261126,pmax");

    int64_t now = utc_ms(2026, 12, 1, 12);
    assert_int_equal(
        db_partitions_maintain(c, "events", now, 0, 3, &created, &dropped, err, sizeof err), 0);
    assert_int_equal(created, 4);
    assert_int_equal(dropped, 0);
    partitions(f, c, names, sizeof names);
    assert_string_equal(names, "p20261124,p20261125,p20261126,p20261201,p20261202,p20261203,"
                               "p20261204,pmax");
    /* Idempotent (a second iotd starting at the same time finds nothing to do). */
    assert_int_equal(
        db_partitions_maintain(c, "events", now, 0, 3, &created, &dropped, err, sizeof err), 0);
    assert_int_equal(created, 0);
    struct event *ev = make("parts", "pdev", 1, utc_ms(2026, 12, 2, 8));
    struct event *late = make("parts", "pdev", 2, utc_ms(2027, 1, 14, 8));
    assert_int_equal(event_store_write(c, &ev, 1, err, sizeof err), 0);
    assert_int_equal(event_store_write(c, &late, 1, err, sizeof err), 0); /* in pmax */
    event_unref(ev);
    event_unref(late);
    /* Six weeks later, after a long downtime, retention 30 days. */
    now = utc_ms(2027, 1, 15, 12);
    assert_int_equal(
        db_partitions_maintain(c, "events", now, 30, 2, &created, &dropped, err, sizeof err), 0);
    assert_int_equal(created, 3);
    assert_int_equal(dropped, 7);
    partitions(f, c, names, sizeof names);
    assert_string_equal(names, "p20270115,p20270116,p20270117,pmax");
    mysql_query(c, "SELECT COUNT(*) FROM events");
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = mysql_fetch_row(res);
    assert_string_equal(row[0], "1"); /* the old day went, the January row moved with pmax */
    mysql_free_result(res);
    event_store_thread_release();
    mysql_close(c);
}

/* write_one: store one event of device d9, incarnation inc; true if it was a duplicate. */
static bool write_one(struct fixture *f, uint64_t inc, uint32_t seq)
{
    char err[256];
    struct event *ev = make("incarn", "d9", seq, wall_ms());
    ev->incarnation = inc;
    assert_int_equal(event_store_write(f->admin, &ev, 1, err, sizeof err), 0);
    bool dup = ev->duplicate;
    event_unref(ev);
    return dup;
}

/* sql/011: a device removed and added again under its name is a new incarnation. Events of the
 * old one that are stored late (from the spool, or a batch under way at the removal) are
 * history: stored, but they never raise the new one's mark, whose own events count from 1. */
static void test_incarnations(void **state)
{
    struct fixture *f = *state;
    for (uint32_t s = 1; s <= 5; s++)
        assert_false(write_one(f, 1, s));
    assert_true(write_one(f, 1, 3)); /* a retransmission */
    /* Added again: the new row counts from 1. */
    assert_false(write_one(f, 2, 1));
    assert_int_equal(query_int(f, "SELECT last_seq FROM event_seq WHERE device_id = 'd9'"), 1);
    assert_int_equal(query_int(f, "SELECT incarnation FROM event_seq WHERE device_id = 'd9'"), 2);
    /* The old row's late event: stored, the mark untouched. */
    assert_false(write_one(f, 1, 6));
    assert_int_equal(query_int(f, "SELECT last_seq FROM event_seq WHERE device_id = 'd9'"), 1);
    assert_false(write_one(f, 2, 2));
    assert_true(write_one(f, 2, 1));
    /* A record from before 011 (incarnation unknown) is taken as the current row's. */
    assert_true(write_one(f, 0, 2));
    assert_false(write_one(f, 0, 3));
    assert_int_equal(query_int(f, "SELECT last_seq FROM event_seq WHERE device_id = 'd9'"), 3);
    assert_int_equal(query_int(f, "SELECT incarnation FROM event_seq WHERE device_id = 'd9'"), 2);
    /* Both incarnations in one batch, old first and new after, as a replay finds them. */
    char err[256];
    struct event *evs[4];
    uint64_t incs[] = {2, 3, 2, 3};
    uint32_t seqs[] = {4, 1, 5, 2};
    for (int i = 0; i < 4; i++) {
        evs[i] = make("incarn", "d9", seqs[i], wall_ms());
        evs[i]->incarnation = incs[i];
    }
    assert_int_equal(event_store_write(f->admin, evs, 4, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        assert_false(evs[i]->duplicate);
        event_unref(evs[i]);
    }
    assert_int_equal(query_int(f, "SELECT last_seq FROM event_seq WHERE device_id = 'd9'"), 2);
    assert_int_equal(query_int(f, "SELECT incarnation FROM event_seq WHERE device_id = 'd9'"), 3);
    assert_int_equal(query_int(f, "SELECT COUNT(*) FROM events WHERE tenant = 'incarn'"), 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_dedup_direct),
        cmocka_unit_test(test_incarnations),
        cmocka_unit_test(test_burst_group_commit),
        cmocka_unit_test(test_duplicates_across_restart),
        cmocka_unit_test(test_batch_closed_by_size_and_time),
        cmocka_unit_test(test_spool_then_replay),
        cmocka_unit_test(test_restart_replays_spool),
        cmocka_unit_test(test_spool_bound_busy),
        cmocka_unit_test(test_query_filters),
        cmocka_unit_test(test_partitions),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
