/* Unit tests of iotd's configuration parsing (iotd/core/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/config.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_defaults(void **state)
{
    struct iotd_config cfg;
    char err[256];
    (void)state;
    config_defaults(&cfg);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.state_dir, "/var/lib/iotd");
    assert_string_equal(cfg.control_socket, "/var/lib/iotd/control.sock");
    assert_string_equal(cfg.db_url, "local");
    assert_string_equal(cfg.listen, "0.0.0.0:7800");
    assert_int_equal(cfg.control_mode, 0600);
    assert_int_equal(cfg.threads, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    assert_int_equal(cfg.db_threads, 2);
    assert_int_equal(cfg.db_statement_timeout_s, 30);
    assert_string_equal(cfg.relay_audit, "all");
    assert_int_equal(cfg.relay_audit_retention_days, 30);
    assert_string_equal(cfg.placement, "tenant");
    assert_null(cfg.web_listen); /* no HTTP unless asked */
    assert_non_null(strstr(cfg.web_root, "/iotd/web"));
    assert_string_equal(cfg.web_metrics, "on");
    assert_null(cfg.web_metrics_allow);
    assert_int_equal(cfg.web_head_timeout_ms, 10000);
    assert_int_equal(cfg.web_idle_timeout_s, 60);
    config_free(&cfg);
}

static void test_full_file(void **state)
{
    struct iotd_config cfg;
    char err[256];
    (void)state;
    config_defaults(&cfg);
    const char *text = "[iotd]\n"
                       "state_dir = /tmp/iotd-x\n"
                       "threads = 3\n"
                       "control_group = adm\n"
                       "log_level = debug\n"
                       "[devices]\n"
                       "listen = 127.0.0.1:9000\n"
                       "tls_listen = 127.0.0.1:9001\n"
                       "tls_cert = /c.pem\n"
                       "tls_key = /k.pem\n"
                       "placement = spread\n"
                       "[relay]\n"
                       "audit = denied\n"
                       "audit_retention_days = 0\n"
                       "[web]\n"
                       "listen = 127.0.0.1:8080\n"
                       "root = /srv/console\n"
                       "metrics = off\n"
                       "metrics_allow = 127.0.0.1, ::1\n"
                       "allowed_origins = https://console.example.com\n"
                       "head_timeout_ms = 500\n"
                       "idle_timeout_s = 5\n"
                       "[database]\n"
                       "url = mariadb://iot@db:3306/iotd\n"
                       "password_file = /etc/iotd/db.pw\n"
                       "threads = 4\n"
                       "statement_timeout_s = 7\n";
    assert_int_equal(config_load_string(&cfg, text, err, sizeof(err)), 0);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.state_dir, "/tmp/iotd-x");
    assert_string_equal(cfg.control_socket, "/tmp/iotd-x/control.sock");
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.control_mode, 0660); /* group set: group may connect */
    assert_string_equal(cfg.log_level, "debug");
    assert_string_equal(cfg.listen, "127.0.0.1:9000");
    assert_string_equal(cfg.tls_key, "/k.pem");
    assert_string_equal(cfg.placement, "spread");
    assert_string_equal(cfg.db_url, "mariadb://iot@db:3306/iotd");
    assert_string_equal(cfg.db_password_file, "/etc/iotd/db.pw");
    assert_int_equal(cfg.db_threads, 4);
    assert_int_equal(cfg.db_statement_timeout_s, 7);
    assert_string_equal(cfg.relay_audit, "denied");
    assert_int_equal(cfg.relay_audit_retention_days, 0); /* forever */
    assert_string_equal(cfg.web_listen, "127.0.0.1:8080");
    assert_string_equal(cfg.web_root, "/srv/console");
    assert_string_equal(cfg.web_metrics, "off");
    assert_string_equal(cfg.web_metrics_allow, "127.0.0.1, ::1");
    assert_string_equal(cfg.web_allowed_origins, "https://console.example.com");
    assert_int_equal(cfg.web_head_timeout_ms, 500);
    assert_int_equal(cfg.web_idle_timeout_s, 5);
    config_free(&cfg);
}

static void expect_error(const char *text, const char *needle)
{
    struct iotd_config cfg;
    char err[256] = "";
    config_defaults(&cfg);
    int rc = config_load_string(&cfg, text, err, sizeof(err));
    if (rc == 0)
        rc = config_finish(&cfg, err, sizeof(err));
    assert_int_equal(rc, IOT_EINVAL);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    config_free(&cfg);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("[iotd]\nthread = 2\n", "<string>:2: unknown key 'thread' in section [iotd]");
    expect_error("[nosuch]\nx = 1\n", "unknown key 'x' in section [nosuch]");
    expect_error("[iotd]\nthreads = many\n", "threads: expected a number");
    expect_error("[iotd]\nthreads = 100000\n",
                 "<string>:2: [iotd] threads: expected a number from 0 to 256");
    expect_error("[iotd]\nthreads = -1\n", "threads: expected a number");
    expect_error("[iotd]\nthreads = +2\n", "threads: expected a number");
    expect_error("[iotd]\nthreads = 99999999999999999999\n", "threads: expected a number");
    expect_error("[database]\nstatement_timeout_s = 0\n", "statement_timeout_s");
    expect_error("[iotd]\ncontrol_mode = 999\n", "control_mode: expected an octal mode");
    expect_error("[iotd]\nstate_dir = relative/dir\n", "state_dir must be an absolute path");
    expect_error("[iotd]\nlog_level = loud\n",
                 "<string>:2: [iotd] log_level: expected error|warn|info|debug, got 'loud'");
    expect_error("[devices]\ntls_listen = :7801\n", "tls_listen needs tls_cert and tls_key");
    expect_error("[devices]\nplacement = random\n",
                 "<string>:2: [devices] placement: expected tenant|spread, got 'random'");
    /* Ports: numeric, 0..65535 (getaddrinfo would wrap 99999 to another port). */
    expect_error("[devices]\nlisten = 127.0.0.1:99999\n",
                 "<string>:2: [devices] listen: expected host:port");
    expect_error("[devices]\nlisten = 127.0.0.1:http\n", "[devices] listen: expected host:port");
    expect_error("[devices]\nlisten = 127.0.0.1\n", "[devices] listen: expected host:port");
    expect_error("[devices]\nlisten = 127.0.0.1:\n", "[devices] listen: expected host:port");
    expect_error("[devices]\nlisten = ::1:7800\n", "[devices] listen: expected host:port");
    expect_error("[web]\n\nlisten = localhost:-80\n",
                 "<string>:3: [web] listen: expected host:port");
    /* What a value quotes is escaped. */
    expect_error("[iotd]\nlog_level = \x1b[31m\n", "got '\\x1b[31m'");
    expect_error("this is not ini\n", "<string>:1");
    expect_error("[web]\nmetrics = maybe\n", "[web] metrics: expected on|off, got 'maybe'");
    expect_error("[web]\nport = 80\n", "unknown key 'port' in section [web]");
    expect_error("[web]\nhead_timeout_ms = 10\n",
                 "<string>:2: [web] head_timeout_ms: expected a number from 100 to 600000");
    expect_error("[devices]\nping_s = 0\n",
                 "<string>:2: [devices] ping_s: expected a number from 1");
    expect_error("[relay]\naudit_retention_days = 40000\n",
                 "audit_retention_days: expected a number from 0 to 36500");
    /* [cluster]: checked only with nats set. */
    expect_error("[cluster]\nnats = 127.0.0.1:4222\nnode = a\n",
                 "[cluster] nats: expected nats://host:port (or tls://), got '127.0.0.1:4222'");
    expect_error("[cluster]\nnats = nats://h:4222, http://h:1\nnode = a\n", "got 'http://h:1'");
    expect_error("[cluster]\nnats = nats://h:4222\nnode = Node.A\n",
                 "[cluster] node: expected 1 to 32 of a-z 0-9 _ -");
    expect_error("[cluster]\nnats = nats://h:4222\nnode = a\nheartbeat_ms = 1000\n"
                 "node_timeout_ms = 1500\n",
                 "node_timeout_ms must be at least twice heartbeat_ms");
    expect_error("[cluster]\nheartbeat_ms = 10\n",
                 "[cluster] heartbeat_ms: expected a number from 50 to 60000");
}

static void test_cluster(void **state)
{
    (void)state;
    struct iotd_config cfg;
    char err[256];
    config_defaults(&cfg);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), IOT_OK);
    assert_null(cfg.cluster_nats); /* a single node */
    assert_int_equal(cfg.cluster_heartbeat_ms, 1000);
    assert_int_equal(cfg.cluster_node_timeout_ms, 3000);
    config_free(&cfg);

    config_defaults(&cfg);
    assert_int_equal(config_load_string(&cfg,
                                        "[cluster]\nnats = nats://10.0.0.1:4222, "
                                        "tls://10.0.0.2:4222\nheartbeat_ms = 200\n"
                                        "node_timeout_ms = 400\n",
                                        err, sizeof(err)),
                     IOT_OK);
    assert_int_equal(config_finish(&cfg, err, sizeof(err)), IOT_OK);
    /* The node's name defaults to the short host name, which must then be a valid name. */
    assert_non_null(cfg.cluster_node);
    assert_true(strlen(cfg.cluster_node) >= 1);
    assert_int_equal(cfg.cluster_node_timeout_ms, 400);
    config_free(&cfg);
}

static void test_good_addresses(void **state)
{
    (void)state;
    const char *good[] = {"0.0.0.0:7800", "[::1]:7800", ":0", "*:65535", "localhost:1", ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct iotd_config cfg;
        char err[256] = "", text[128];
        config_defaults(&cfg);
        snprintf(text, sizeof(text), "[devices]\nlisten = %s\n", good[i]);
        if (config_load_string(&cfg, text, err, sizeof(err)) != 0)
            fail_msg("'%s' refused: %s", good[i], err);
        assert_string_equal(cfg.listen, good[i]);
        config_free(&cfg);
    }
}

/* A file that libinih would read wrongly: a directory (read as empty) and a NUL byte (read as
 * the end of its line). Both refused, the NUL with its line. */
static void test_file_refused(void **state)
{
    struct iotd_config cfg;
    char err[256], dir[] = "/tmp/iotd-config-XXXXXX", path[300];
    (void)state;
    assert_non_null(mkdtemp(dir));
    config_defaults(&cfg);
    assert_int_equal(config_load(&cfg, dir, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    snprintf(path, sizeof(path), "%s/iotd.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite("[iotd]\nthreads = 2\nlog_level = info\0debug\n", 1, 42, f);
    fclose(f);
    assert_int_equal(config_load(&cfg, path, err, sizeof(err)), IOT_EINVAL);
    if (!strstr(err, "iotd.conf:3: a NUL byte"))
        fail_msg("NUL: %s", err);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[iotd]\nthreads = 3\n", f);
    fclose(f);
    assert_int_equal(config_load(&cfg, path, err, sizeof(err)), IOT_OK);
    assert_int_equal(cfg.threads, 3);
    config_free(&cfg);
    unlink(path);
    rmdir(dir);
}

/* iotd -l goes through the same checks as the file. */
static void test_config_set(void **state)
{
    struct iotd_config cfg;
    char err[256];
    (void)state;
    config_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "iotd", "log_level", "debug", err, sizeof(err)), IOT_OK);
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(config_set(&cfg, "iotd", "log_level", "loud", err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "expected error|warn|info|debug"));
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(config_set(&cfg, "iotd", "nosuch", "1", err, sizeof(err)), IOT_EINVAL);
    config_free(&cfg);
}

static void test_missing_file(void **state)
{
    struct iotd_config cfg;
    char err[256];
    (void)state;
    config_defaults(&cfg);
    assert_int_equal(config_load(&cfg, "/nonexistent/iotd.conf", err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/iotd.conf: cannot open"));
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_good_addresses),
        cmocka_unit_test(test_file_refused), cmocka_unit_test(test_config_set),
        cmocka_unit_test(test_missing_file), cmocka_unit_test(test_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
