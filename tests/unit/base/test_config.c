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
                       "threads = 4\n";
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
    expect_error("[iotd]\nthreads = 100000\n", "threads: expected a number up to 256");
    expect_error("[iotd]\ncontrol_mode = 999\n", "control_mode: expected an octal mode");
    expect_error("[iotd]\nstate_dir = relative/dir\n", "state_dir must be an absolute path");
    expect_error("[iotd]\nlog_level = loud\n", "log_level: unknown value 'loud'");
    expect_error("[devices]\ntls_listen = :7801\n", "tls_listen needs tls_cert and tls_key");
    expect_error("[devices]\nplacement = random\n", "placement: unknown value 'random'");
    expect_error("this is not ini\n", "<string>:1");
    expect_error("[web]\nmetrics = maybe\n", "[web] metrics: unknown value 'maybe'");
    expect_error("[web]\nport = 80\n", "unknown key 'port' in section [web]");
    expect_error("[web]\nhead_timeout_ms = 10\n", "head_timeout_ms must be >= 100");
    expect_error("[relay]\naudit_retention_days = 40000\n",
                 "audit_retention_days: expected a number up to 36500");
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
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
