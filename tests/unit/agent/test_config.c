/*
 * test_config.c - iotdev's configuration file (iotdev_config.h): every key, the defaults, and
 * each kind of error named with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "iotdev_config.h"

static char conf[256], secret[256];

static const char key_hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Load a configuration of the required keys plus extra (lines). */
static int load(struct iotdev_config *c, const char *server, const char *extra, char *err,
                size_t errlen)
{
    char text[2048];

    snprintf(text, sizeof(text), "server = %s\nid = pi-1\ntype = board\nsecret_file = %s\n%s",
             server, secret, extra);
    write_file(conf, text);
    return iotdev_config_load(c, conf, err, errlen);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(tmpdir_make(), 0);
    snprintf(conf, sizeof(conf), "%s/iotdev.conf", tmp_dir);
    snprintf(secret, sizeof(secret), "%s/secret", tmp_dir);
    write_file(secret, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    return 0;
}

static void every_key_and_defaults(void **state)
{
    struct iotdev_config c;
    char err[512];

    (void)state;
    assert_int_equal(load(&c, "iot.example:7443", "", err, sizeof(err)), 0);
    assert_string_equal(c.host, "iot.example");
    assert_int_equal(c.port, 7443);
    assert_string_equal(c.id, "pi-1");
    assert_string_equal(c.type, "board");
    assert_int_equal(c.key[0], 0x00);
    assert_int_equal(c.key[31], 0x1f);
    assert_string_equal(c.tls_ca, "");
    assert_string_equal(c.commands_dir, "/etc/iotdev/commands");
    assert_string_equal(c.state_dir, "/var/lib/iotdev");
    assert_string_equal(c.events, "");
    assert_int_equal(c.command_timeout_s, 10);
    assert_true(strncmp(c.fw, "iotdev-", 7) == 0);

    assert_int_equal(load(&c, "[::1]:80",
                          "# comment\n\n  tls_ca = system  \ncommands_dir=/opt/cmds\n"
                          "state_dir = /srv/st\nevents = -\nfw = 2.0\ncommand_timeout_s = 3\n",
                          err, sizeof(err)),
                     0);
    assert_string_equal(c.host, "::1");
    assert_int_equal(c.port, 80);
    assert_string_equal(c.tls_ca, "system");
    assert_string_equal(c.commands_dir, "/opt/cmds");
    assert_string_equal(c.state_dir, "/srv/st");
    assert_string_equal(c.events, "-");
    assert_string_equal(c.fw, "2.0");
    assert_int_equal(c.command_timeout_s, 3);
}

static void errors_name_their_line(void **state)
{
    static const struct {
        const char *server, *extra, *want;
    } cases[] = {
        {"host", "", "iotdev.conf:1: server must be HOST:PORT"},
        {"host:0", "", "iotdev.conf:1: server must be HOST:PORT"},
        {"host:65536", "", "iotdev.conf:1: server must be HOST:PORT"},
        {"host:12x", "", "iotdev.conf:1: server must be HOST:PORT"},
        {":80", "", "iotdev.conf:1: server must be HOST:PORT"},
        {"h:1", "colour = blue\n", "iotdev.conf:5: unknown key 'colour'"},
        {"h:1", "just words\n", "iotdev.conf:5: expected key = value"},
        {"h:1", "command_timeout_s = 0\n", "iotdev.conf:5: command_timeout_s must be 1-86400"},
        {"h:1", "command_timeout_s = 9s\n", "iotdev.conf:5: command_timeout_s must be 1-86400"},
    };
    struct iotdev_config c;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load(&c, cases[i].server, cases[i].extra, err, sizeof(err)), -1);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
    }
}

static void required_keys_and_secrets(void **state)
{
    struct iotdev_config c;
    char err[512], text[512];

    (void)state;
    write_file(conf, "server = h:1\nid = x\ntype = t\n");
    assert_int_equal(iotdev_config_load(&c, conf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'secret_file' is required"));

    write_file(secret, "0001\n");
    snprintf(text, sizeof(text), "secret_file = %s\n", secret);
    write_file(conf, text);
    assert_int_equal(iotdev_config_load(&c, conf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "iotdev.conf:1: secret_file"));
    assert_non_null(strstr(err, "not 64 hex digits"));
    write_file(secret, "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_int_equal(iotdev_config_load(&c, conf, err, sizeof(err)), -1);
    write_file(secret, key_hex); /* no newline: fine */
    assert_int_equal(load(&c, "h:1", "", err, sizeof(err)), 0);

    snprintf(text, sizeof(text), "%s/nope", tmp_dir);
    assert_int_equal(iotdev_config_load(&c, text, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_key_and_defaults),
        cmocka_unit_test(errors_name_their_line),
        cmocka_unit_test(required_keys_and_secrets),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
