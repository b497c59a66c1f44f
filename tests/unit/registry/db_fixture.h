/*
 * db_fixture.h - the MariaDB the registry's database tests share: a cmocka group setup that
 * starts a throwaway mariadbd in a mkdtemp directory the way iotd does (db/mariadb_local.h),
 * connects (db_connect) and applies the compiled-in migrations of sql/ (db_migrate), so the
 * schema under test is exactly what iotd runs. *state is NULL (and the tests skip, saying why)
 * when mariadbd is not installed.
 */
#ifndef TESTS_REGISTRY_DB_FIXTURE_H
#define TESTS_REGISTRY_DB_FIXTURE_H

#include "admin.h"
#include "db/db.h"
#include "db/mariadb_local.h"

#include <uv.h>

struct fixture {
    char dir[64];
    uv_loop_t loop;
    mariadb_local_t *mariadb;
    struct db_target target;
    MYSQL *conn;
    uint8_t key[SECRETBOX_KEY_LEN];
    struct admin_ctx ctx;
    char dev1_secret[65];
};

int db_fixture_setup(void **state);
int db_fixture_teardown(void **state);
/* A second connection to the fixture's database; NULL on failure. */
MYSQL *db_fixture_connect(struct fixture *f);

#endif
