/*
 * test_db_target.c - "[database] url" parsing: every accepted form, defaults, the password
 * sources (file, environment), and clear refusals of malformed URLs. No server needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/db.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_tcp_urls(void **state)
{
    struct db_target t;
    char err[256];
    unsetenv("IOTD_DB_PASSWORD");
    assert_int_equal(
        db_target_parse("mariadb://iot@db.example:3307/fleet", NULL, &t, err, sizeof err), 0);
    assert_string_equal(t.user, "iot");
    assert_string_equal(t.host, "db.example");
    assert_int_equal(t.port, 3307);
    assert_string_equal(t.database, "fleet");
    assert_null(t.socket_path);
    assert_null(t.password);
    db_target_free(&t);

    /* Defaults: no user (the effective user), port 0 (3306), database iotd. */
    assert_int_equal(db_target_parse("mariadb://db.example", NULL, &t, err, sizeof err), 0);
    assert_null(t.user);
    assert_string_equal(t.host, "db.example");
    assert_int_equal(t.port, 0);
    assert_string_equal(t.database, "iotd");
    db_target_free(&t);

    assert_int_equal(db_target_parse("mysql://a%40b@[::1]:3306/", NULL, &t, err, sizeof err), 0);
    assert_string_equal(t.user, "a@b");
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 3306);
    assert_string_equal(t.database, "iotd");
    db_target_free(&t);
}

static void test_socket_urls(void **state)
{
    struct db_target t;
    char err[256];
    assert_int_equal(db_target_parse("mariadb://iot@localhost/fleet?socket=/run/mysqld/m.sock",
                                     NULL, &t, err, sizeof err),
                     0);
    assert_string_equal(t.socket_path, "/run/mysqld/m.sock");
    assert_null(t.host);
    assert_string_equal(t.user, "iot");
    assert_string_equal(t.database, "fleet");
    db_target_free(&t);

    assert_int_equal(
        db_target_parse("unix:/run/mysqld/mysqld.sock/fleet_2", NULL, &t, err, sizeof err), 0);
    assert_string_equal(t.socket_path, "/run/mysqld/mysqld.sock");
    assert_string_equal(t.database, "fleet_2");
    db_target_free(&t);

    assert_int_equal(db_target_parse("unix:/run/mysqld/mysqld.sock", NULL, &t, err, sizeof err), 0);
    assert_string_equal(t.socket_path, "/run/mysqld/mysqld.sock");
    assert_string_equal(t.database, "iotd");
    assert_null(t.user);
    db_target_free(&t);

    assert_int_equal(db_target_for_socket("/tmp/x/mysqld.sock", NULL, &t), 0);
    assert_string_equal(t.socket_path, "/tmp/x/mysqld.sock");
    assert_string_equal(t.database, "iotd");
    struct db_target copy;
    assert_int_equal(db_target_copy(&t, &copy), 0);
    assert_string_equal(copy.socket_path, t.socket_path);
    assert_ptr_not_equal(copy.socket_path, t.socket_path);
    db_target_free(&copy);
    db_target_free(&t);
    assert_int_equal(db_target_for_socket("relative.sock", NULL, &t), IOT_EINVAL);
    assert_int_equal(db_target_for_socket("/x.sock", "bad name", &t), IOT_EINVAL);
}

static void test_passwords(void **state)
{
    struct db_target t;
    char err[256], path[] = "/tmp/iotd-dbpw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret pass\nsecond line\n", 24), 24);
    close(fd);
    setenv("IOTD_DB_PASSWORD", "from-env", 1);
    /* The file wins over the environment. */
    assert_int_equal(db_target_parse("mariadb://iot@h/db", path, &t, err, sizeof err), 0);
    assert_string_equal(t.password, "s3cret pass");
    db_target_free(&t);
    assert_int_equal(db_target_parse("mariadb://iot@h/db", NULL, &t, err, sizeof err), 0);
    assert_string_equal(t.password, "from-env");
    db_target_free(&t);
    unsetenv("IOTD_DB_PASSWORD");
    unlink(path);
    assert_int_equal(db_target_parse("mariadb://iot@h/db", path, &t, err, sizeof err), IOT_EIO);
    assert_non_null(strstr(err, path));
}

static void test_bad_urls(void **state)
{
    struct db_target t;
    char err[256];
    const char *bad[] = {
        "",
        "local",                            /* handled by the caller, not a URL */
        "postgres://u@h/db",                /* wrong scheme */
        "mariadb://",                       /* no host */
        "mariadb://u@/db",                  /* no host */
        "mariadb://u:secret@h/db",          /* password in the URL */
        "mariadb://u@h:0/db",               /* port out of range */
        "mariadb://u@h:65536/db",           /* port out of range */
        "mariadb://u@h:33a/db",             /* port not a number */
        "mariadb://u@h:/db",                /* empty port */
        "mariadb://u@h/db-name",            /* database name with '-' */
        "mariadb://u@h/db`; DROP",          /* injection attempt */
        "mariadb://u@[::1/db",              /* unclosed IPv6 */
        "mariadb://u@h/db?sock=/x",         /* unknown option */
        "mariadb://u@h/db?socket=relative", /* relative socket */
        "mariadb://%zz@h/db",               /* bad escape */
        "unix:relative.sock",               /* relative socket */
        "unix:/run/m.sock/"
        "a2345678901234567890123456789012345678901234567890123456789012345",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = db_target_parse(bad[i], NULL, &t, err, sizeof err);
        if (rc != IOT_EINVAL)
            fail_msg("\"%s\" gave %d", bad[i], rc);
        if (err[0] == '\0')
            fail_msg("\"%s\" gave no explanation", bad[i]);
        /* A refused URL leaves nothing to free. */
        assert_null(t.host);
        assert_null(t.database);
    }
}

static void test_error_mapping(void **state)
{
    assert_int_equal(db_error_from_errno(0), 0);
    assert_int_equal(db_error_from_errno(2013), IOT_EDB);
    assert_int_equal(db_error_from_errno(2006), IOT_EDB);
    assert_int_equal(db_error_from_errno(1927), IOT_EDB);
    assert_int_equal(db_error_from_errno(1062), IOT_EEXIST);
    assert_int_equal(db_error_from_errno(1451), IOT_EINUSE);
    assert_int_equal(db_error_from_errno(1452), IOT_ENOTFOUND);
    assert_int_equal(db_error_from_errno(1064), IOT_EINTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_urls),      cmocka_unit_test(test_socket_urls),
        cmocka_unit_test(test_passwords),     cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_error_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
