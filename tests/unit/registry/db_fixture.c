/*
 * db_fixture.c - the throwaway MariaDB of the registry's database tests (see db_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db_fixture.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_S 90

/* Is the MariaDB server installed? (Skip, saying so, when it is not.) */
static bool have_mariadbd(void)
{
    return access("/usr/sbin/mariadbd", X_OK) == 0 || access("/usr/bin/mariadbd", X_OK) == 0;
}

MYSQL *db_fixture_connect(struct fixture *f)
{
    MYSQL *conn = NULL;
    char err[512];
    return db_connect(&f->target, false, &conn, err, sizeof(err)) == 0 ? conn : NULL;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int db_fixture_setup(void **state)
{
    char err[1024];
    int version = 0;
    if (!have_mariadbd()) {
        fprintf(stderr, "# skipping: mariadbd is not installed\n");
        *state = NULL;
        return 0;
    }
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotd-regtest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    time_t t0 = time(NULL);
    if (mariadb_local_start(&f->mariadb, &f->loop, f->dir, START_TIMEOUT_S * 1000, err,
                            sizeof(err)) != 0)
        fail_msg("mariadb: %s", err);
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->mariadb), "iotd", &f->target), 0);
    if (db_connect(&f->target, true, &f->conn, err, sizeof(err)) != 0 ||
        db_migrate(f->conn, &version, err, sizeof(err)) != 0)
        fail_msg("schema: %s", err);
    assert_int_equal(version, db_schema_latest());
    fprintf(stderr, "# mariadbd ready with schema %d in %lds\n", version, (long)(time(NULL) - t0));

    for (size_t i = 0; i < sizeof(f->key); i++)
        f->key[i] = (uint8_t)(i * 7 + 1);
    f->ctx.secret_key = f->key;
    f->ctx.actor = "uid=0(root)";
    *state = f;
    return 0;
}

int db_fixture_teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    if (f->conn)
        mysql_close(f->conn);
    if (f->mariadb)
        mariadb_local_stop(f->mariadb, 30000);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    db_target_free(&f->target);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}
