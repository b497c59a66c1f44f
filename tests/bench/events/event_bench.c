/*
 * event_bench.c - the event store alone, in process: sustained events/s made durable by
 * event_store (group commit) against a private mariadbd, with no network and no sessions in
 * the way, so the figure is the database's and the store's cost only.
 *
 *   event_bench [--devices N] [--window W] [--batch-max B] [--seconds S] [--dir DIR]
 *
 * N simulated devices each keep W events in flight: every acknowledged event (done()) lets
 * its device add the next seq, the closed loop a device with W un-acked EVENTs produces.
 * Prints one line: mode, events/s, batches/s, mean batch. Bounded by S seconds and by a
 * hard cap on events.
 */
#include "db/db.h"
#include "db/mariadb_local.h"
#include "events/store.h"
#include "iot_error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct db_migration db_migrations[];
extern const size_t db_migrations_count;

struct bench {
    event_store_t *st;
    unsigned devices, window;
    uint32_t *next_seq;
    uint64_t acked, busy;
    bool adding;
    bool stopped;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_next(struct bench *b, unsigned d)
{
    char dev[32], val[32];
    snprintf(dev, sizeof dev, "bench%05u", d);
    snprintf(val, sizeof val, "value=%u", b->next_seq[d]);
    const char *fields[] = {val, "unit=C"};
    struct event *ev = event_new(EVENT_KIND_EVENT, "bench", dev, "thermo", "temp", b->next_seq[d],
                                 wall_ms(), 2, fields);
    if (ev && event_store_add(b->st, ev) == 0)
        b->next_seq[d]++;
    else
        b->busy++;
    event_unref(ev);
}

static void on_done(struct event *const *events, size_t n, void *arg)
{
    struct bench *b = arg;
    b->acked += n;
    if (!b->adding)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)atoi(events[i]->device + 5);
        add_next(b, d);
    }
}

static void on_stopped(void *arg)
{
    ((struct bench *)arg)->stopped = true;
}

int main(int argc, char **argv)
{
    unsigned devices = 100, window = 16, seconds = 10;
    size_t batch_max = 1000;
    const char *dir = NULL;
    static const struct option opts[] = {{"devices", 1, NULL, 'n'},   {"window", 1, NULL, 'w'},
                                         {"batch-max", 1, NULL, 'b'}, {"seconds", 1, NULL, 's'},
                                         {"dir", 1, NULL, 'd'},       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            devices = (unsigned)atoi(optarg);
            break;
        case 'w':
            window = (unsigned)atoi(optarg);
            break;
        case 'b':
            batch_max = (size_t)atoi(optarg);
            break;
        case 's':
            seconds = (unsigned)atoi(optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        default:
            fprintf(stderr, "usage: event_bench [--devices N] [--window W] [--batch-max B] "
                            "[--seconds S] --dir DIR\n");
            return 2;
        }
    }
    if (!dir || devices == 0 || window == 0 || devices > 100000) {
        fprintf(stderr, "event_bench: --dir is required, devices 1..100000\n");
        return 2;
    }
    char err[1024], spool[512];
    uv_loop_t loop;
    inbox_t inbox;
    mariadb_local_t *server;
    struct db_target target;
    MYSQL *conn = NULL;
    db_pool_t *pool;
    uv_loop_init(&loop);
    if (mariadb_local_start(&server, &loop, dir, 60000, err, sizeof err) != 0) {
        fprintf(stderr, "mariadb: %s\n", err);
        return 1;
    }
    size_t nmig = 0;
    int version;
    while (nmig < db_migrations_count && db_migrations[nmig].version <= 4)
        nmig++;
    if (db_target_for_socket(mariadb_local_socket(server), NULL, &target) != 0 ||
        db_connect(&target, true, &conn, err, sizeof err) != 0 ||
        db_migrate_list(conn, db_migrations, nmig, &version, err, sizeof err) != 0 ||
        mysql_query(conn, "TRUNCATE TABLE events") != 0 ||
        mysql_query(conn, "TRUNCATE TABLE event_seq") != 0) {
        fprintf(stderr, "setup: %s %s\n", err, conn ? mysql_error(conn) : "");
        return 1;
    }
    db_pool_start(&pool, &target, 2, 1024);
    inbox_init(&inbox, &loop, 65536, NULL);
    snprintf(spool, sizeof spool, "%s/events.spool", dir);
    struct bench b = {.devices = devices, .window = window, .adding = true};
    b.next_seq = calloc(devices, sizeof(*b.next_seq));
    for (unsigned d = 0; d < devices; d++)
        b.next_seq[d] = 1;
    struct event_store_options o = {.spool_path = spool,
                                    .batch_max = batch_max,
                                    .queue_max = (size_t)devices * window + 1024,
                                    .no_maintenance = true,
                                    .stopped = on_stopped};
    if (event_store_start(&b.st, &loop, &inbox, pool, &o, on_done, &b, err, sizeof err) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    for (unsigned d = 0; d < devices; d++)
        for (unsigned w = 0; w < window; w++)
            add_next(&b, d);
    /* Warm-up 1 s, then measure. */
    double t0 = mono_s(), start = 0;
    uint64_t base = 0, base_batches = 0;
    struct event_store_stats s;
    while (mono_s() - t0 < seconds + 1.0 && b.acked < 100000000ull) {
        uv_run(&loop, UV_RUN_ONCE);
        if (start == 0 && mono_s() - t0 >= 1.0) {
            start = mono_s();
            base = b.acked;
            event_store_stats(b.st, &s);
            base_batches = s.batches;
        }
    }
    double elapsed = mono_s() - start;
    event_store_stats(b.st, &s);
    uint64_t events = b.acked - base, batches = s.batches - base_batches;
    b.adding = false;
    event_store_stop(b.st);
    while (!b.stopped)
        uv_run(&loop, UV_RUN_ONCE);
    long long rows = -1;
    if (mysql_query(conn, "SELECT COUNT(*) FROM events") == 0) {
        MYSQL_RES *res = mysql_store_result(conn);
        MYSQL_ROW row = mysql_fetch_row(res);
        rows = atoll(row[0]);
        mysql_free_result(res);
    }
    printf("event_store batch_max=%zu devices=%u window=%u: %.0f events/s durable, %.0f "
           "commits/s, mean batch %.1f, busy %llu, rows %lld (acked %llu)\n",
           batch_max, devices, window, events / elapsed, batches / elapsed,
           batches ? (double)events / batches : 0.0, (unsigned long long)b.busy, rows,
           (unsigned long long)b.acked);
    db_pool_stop(pool);
    inbox_close(&inbox, NULL);
    event_store_thread_release();
    mysql_close(conn);
    mariadb_local_stop(server, 20000);
    uv_run(&loop, UV_RUN_DEFAULT);
    db_target_free(&target);
    free(b.next_seq);
    return rows == (long long)b.acked ? 0 : 1;
}
