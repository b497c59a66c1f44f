/*
 * test_args.c - iotctl's argv -> JSON args conversion, driven by the command table.
 *
 * Each case splits a command line the way a shell would (on spaces), runs iotctl_args_parse on
 * the words after the command, and compares the args object with the expected JSON, or checks
 * that a usage error names what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "args.h"
#include "ctl_commands.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct parse_case {
    char buf[512];
    char *argv[32];
    int argc;
    char err[512];
    struct iotctl_parsed parsed;
};

/* Parse line (command words included) with env; returns the parse's code. */
static int parse(struct parse_case *c, const char *line, const struct iotctl_args_env *env)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->buf, sizeof(c->buf), "%s", line);
    for (char *tok = strtok(c->buf, " "); tok && c->argc < 32; tok = strtok(NULL, " "))
        c->argv[c->argc++] = tok;
    int consumed = 0;
    const struct ctl_command *cmd = ctl_command_match(c->argc, c->argv, &consumed);
    assert_non_null(cmd);
    int rc = iotctl_args_parse(cmd, c->argc - consumed, c->argv + consumed, env, &c->parsed, c->err,
                               sizeof(c->err));
    if (rc != IOT_OK) {
        assert_null(c->parsed.args);
        assert_true(strlen(c->err) > 0);
    }
    return rc;
}

static void assert_args(struct parse_case *c, const char *expected_json)
{
    cJSON *expected = cJSON_Parse(expected_json);
    assert_non_null(expected);
    if (!cJSON_Compare(c->parsed.args, expected, 1)) {
        char *got = cJSON_PrintUnformatted(c->parsed.args);
        fail_msg("args %s, expected %s", got, expected_json);
    }
    cJSON_Delete(expected);
    cJSON_Delete(c->parsed.args);
    c->parsed.args = NULL;
}

static void assert_usage_error(struct parse_case *c, const char *line, const char *needle,
                               const struct iotctl_args_env *env)
{
    assert_int_equal(parse(c, line, env), IOT_EINVAL);
    if (!strstr(c->err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", c->err, needle);
}

static void test_positionals_and_options(void **state)
{
    struct parse_case c;
    assert_int_equal(parse(&c, "device add dev1 --tenant acme --type thermo --disabled", NULL),
                     IOT_OK);
    assert_args(&c, "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"disabled\":true}");

    /* Options before positionals, --flag=value, text with its own '='. */
    assert_int_equal(parse(&c, "device add --type=thermo --name=a=b --tenant acme dev1", NULL),
                     IOT_OK);
    assert_args(
        &c, "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"display_name\":\"a=b\"}");

    assert_int_equal(parse(&c, "group member add ops dev1 --tenant acme", NULL), IOT_OK);
    assert_args(&c, "{\"group\":\"ops\",\"member\":\"dev1\",\"tenant\":\"acme\"}");

    assert_int_equal(parse(&c, "tenant list", NULL), IOT_OK);
    assert_args(&c, "{}");
}

static void test_kinds_converted(void **state)
{
    struct parse_case c;
    /* INT becomes a JSON number, not a string. */
    assert_int_equal(parse(&c, "access revoke 12 --tenant acme", NULL), IOT_OK);
    assert_args(&c, "{\"rule\":12,\"tenant\":\"acme\"}");
    assert_int_equal(parse(&c, "changes list --limit 5", NULL), IOT_OK);
    assert_args(&c, "{\"limit\":5}");
    assert_int_equal(parse(&c, "tenant remove acme --force", NULL), IOT_OK);
    assert_args(&c, "{\"name\":\"acme\",\"force\":true}");
    assert_int_equal(
        parse(&c, "device add d1 --tenant t --type x --serial 0123456789ABCDEF01", NULL), IOT_OK);
    assert_args(&c, "{\"id\":\"d1\",\"tenant\":\"t\",\"type\":\"x\","
                    "\"serial\":\"0123456789ABCDEF01\"}");
    /* PATH is sent absolute: iotd opens it from its own working directory. */
    assert_int_equal(parse(&c, "backup /var/backups/iotd.sql", NULL), IOT_OK);
    assert_args(&c, "{\"path\":\"/var/backups/iotd.sql\"}");
    char cwd[400], want[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "{\"path\":\"%s/sub/b.sql\"}", cwd);
    assert_int_equal(parse(&c, "backup sub/b.sql", NULL), IOT_OK);
    assert_args(&c, want);
}

static void test_usage_errors(void **state)
{
    struct parse_case c;
    assert_usage_error(&c, "device add dev1 --tenant acme", "--type", NULL);
    assert_usage_error(&c, "device add --tenant acme --type t", "ID", NULL);
    assert_usage_error(&c, "tenant list --colour red", "unknown option '--colour'", NULL);
    assert_usage_error(&c, "tenant show acme extra", "unexpected argument 'extra'", NULL);
    assert_usage_error(&c, "tenant show", "missing NAME", NULL);
    assert_usage_error(&c, "device add dev1 --tenant acme --type", "needs a value", NULL);
    assert_usage_error(&c, "tenant remove acme --force=yes", "takes no value", NULL);
    assert_usage_error(&c, "type list --tenant a --tenant b", "given twice", NULL);
    /* Values of the wrong kind. */
    assert_usage_error(&c, "tenant add bad!name", "invalid NAME 'bad!name'", NULL);
    assert_usage_error(&c, "access revoke twelve --tenant acme", "decimal integer", NULL);
    assert_usage_error(&c, "device add d1 --tenant t --type x --serial abc", "hexadecimal", NULL);
    assert_usage_error(&c, "changes list --limit 1.5", "--limit", NULL);
    assert_usage_error(&c, "type list --tenant -x", "invalid --tenant", NULL);
    /* A global option after the command is explained, not just refused. */
    assert_usage_error(&c, "device add d1 -t acme --type x", "global option", NULL);
}

static void test_end_of_options(void **state)
{
    struct parse_case c;
    /* After "--", a word starting with '-' is a positional value, not an option. */
    assert_int_equal(parse(&c, "access grant -- user:-x any --tenant", NULL), IOT_EINVAL);
    assert_int_equal(parse(&c, "access grant --tenant acme -- -user any", NULL), IOT_OK);
    assert_args(&c, "{\"subject\":\"-user\",\"target\":\"any\",\"tenant\":\"acme\"}");
    /* A negative number is a value, not an option. */
    assert_int_equal(parse(&c, "access revoke -3 --tenant acme", NULL), IOT_OK);
    assert_args(&c, "{\"rule\":-3,\"tenant\":\"acme\"}");
}

static void test_tenant_default(void **state)
{
    struct parse_case c;
    struct iotctl_args_env env = {.default_tenant = "acme"};
    assert_int_equal(parse(&c, "type list", &env), IOT_OK);
    assert_args(&c, "{\"tenant\":\"acme\"}");
    /* An explicit --tenant wins over -t. */
    assert_int_equal(parse(&c, "type add thermo --tenant other", &env), IOT_OK);
    assert_args(&c, "{\"name\":\"thermo\",\"tenant\":\"other\"}");
    /* A command without a tenant param gets none. */
    assert_int_equal(parse(&c, "device show dev1", &env), IOT_OK);
    assert_args(&c, "{\"id\":\"dev1\"}");
    /* Without -t a required --tenant is missing, and the error says how to give it. */
    assert_usage_error(&c, "type add thermo", "IOTCTL_TENANT", NULL);
    struct iotctl_args_env bad = {.default_tenant = "not a name"};
    assert_usage_error(&c, "type list", "default tenant", &bad);
}

static void test_trailing_json(void **state)
{
    struct parse_case c;
    assert_int_equal(parse(&c, "tenant list --json", NULL), IOT_OK);
    assert_true(c.parsed.json);
    assert_args(&c, "{}");
    assert_int_equal(parse(&c, "tenant list", NULL), IOT_OK);
    assert_false(c.parsed.json);
    cJSON_Delete(c.parsed.args);
}

/* The event and alarm commands: flags, integers, a trailing --csv, an operator as a number. */
static void test_event_commands(void **state)
{
    struct parse_case c;
    (void)state;
    assert_int_equal(parse(&c, "watch --tenant acme --alarms --count 3 --json", NULL), IOT_OK);
    assert_true(c.parsed.json);
    assert_args(&c, "{\"tenant\":\"acme\",\"alarms\":true,\"count\":3}");
    assert_int_equal(parse(&c, "events --device dev1 --since 2h --csv", NULL), IOT_OK);
    assert_true(c.parsed.csv);
    assert_false(c.parsed.json);
    assert_args(&c, "{\"device\":\"dev1\",\"since\":\"2h\"}");
    assert_int_equal(parse(&c,
                           "alarm rule add hot --tenant acme --event temperature --on device:dev1 "
                           "--field value --op >= --threshold 30.5 --hysteresis 2 --for 1000",
                           NULL),
                     IOT_OK);
    assert_args(&c, "{\"name\":\"hot\",\"tenant\":\"acme\",\"event\":\"temperature\","
                    "\"on\":\"device:dev1\",\"field\":\"value\",\"op\":\">=\","
                    "\"threshold\":\"30.5\",\"hysteresis\":\"2\",\"for_ms\":1000}");
    assert_int_equal(parse(&c, "alarm ack 12 --tenant acme", NULL), IOT_OK);
    assert_args(&c, "{\"id\":12,\"tenant\":\"acme\"}");
    assert_int_equal(parse(&c, "lease dev1 temperature --ttl 0", NULL), IOT_OK);
    assert_args(&c, "{\"device\":\"dev1\",\"event\":\"temperature\",\"ttl_s\":0}");
    assert_usage_error(&c, "alarm ack twelve --tenant acme", "id", NULL);
    assert_usage_error(&c, "alarm rule add hot --tenant acme", "--event", NULL);
}

static void test_wants_help(void **state)
{
    const struct ctl_command *cmd = &ctl_commands[CTL_DEVICE_ADD];
    char *with_help[] = {"dev1", "--help"};
    char *with_h[] = {"-h"};
    char *after_dashes[] = {"--", "--help"};
    char *none[] = {"dev1"};
    assert_true(iotctl_args_wants_help(cmd, 2, with_help));
    assert_true(iotctl_args_wants_help(cmd, 1, with_h));
    assert_false(iotctl_args_wants_help(cmd, 2, after_dashes));
    assert_false(iotctl_args_wants_help(cmd, 1, none));
}

/* Write text to a new temporary file; the caller unlinks path. */
static void temp_file(char *path, size_t len, const char *text)
{
    snprintf(path, len, "/tmp/iotctl-secret-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_secret_from_file(void **state)
{
    struct parse_case c;
    char path[64], line[160];
    temp_file(path, sizeof(path), "s3cret pass\nsecond line ignored\n");
    snprintf(line, sizeof(line), "user add bob@acme --role admin --password-file %s", path);
    assert_int_equal(parse(&c, line, NULL), IOT_OK);
    assert_args(&c, "{\"user\":\"bob@acme\",\"role\":\"admin\",\"password\":\"s3cret pass\"}");
    unlink(path);

    temp_file(path, sizeof(path), "dos\r\n");
    snprintf(line, sizeof(line), "user passwd bob@acme --password-file %s", path);
    assert_int_equal(parse(&c, line, NULL), IOT_OK);
    assert_args(&c, "{\"user\":\"bob@acme\",\"password\":\"dos\"}");
    unlink(path);

    temp_file(path, sizeof(path), "\n");
    snprintf(line, sizeof(line), "user passwd bob@acme --password-file %s", path);
    assert_usage_error(&c, line, path, NULL);
    unlink(path);

    assert_usage_error(&c, "user passwd bob@acme --password-file /nonexistent/pw", "cannot read",
                       NULL);
    /* A NUL is refused, not a cut (the secret would have been "ab"); so is text that is not
     * UTF-8 or holds a C1 control. */
    snprintf(path, sizeof(path), "/tmp/iotctl-secret-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "ab\0cd\n", 6), 6);
    close(fd);
    snprintf(line, sizeof(line), "user passwd bob@acme --password-file %s", path);
    assert_usage_error(&c, line, "NUL", NULL);
    unlink(path);
    const char *bad[] = {"caf\xe9\n",
                         "a\xc2\x9b"
                         "b\n",
                         "x\x7f\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        temp_file(path, sizeof(path), bad[i]);
        snprintf(line, sizeof(line), "user passwd bob@acme --password-file %s", path);
        assert_usage_error(&c, line, "UTF-8", NULL);
        unlink(path);
    }
}

/* Issue 17: numbers beyond int64 are refused, not wrapped or saturated; so are those beyond
 * 2^53, which a JSON number would carry rounded. */
static void test_int64_bounds(void **state)
{
    struct parse_case c;
    assert_int_equal(parse(&c, "changes list --limit 9007199254740992", NULL), IOT_OK);
    assert_args(&c, "{\"limit\":9007199254740992}");
    assert_int_equal(parse(&c, "changes list --limit -9007199254740992", NULL), IOT_OK);
    cJSON_Delete(c.parsed.args);
    assert_usage_error(&c, "changes list --limit 9007199254740993", "--limit", NULL);
    assert_usage_error(&c, "changes list --limit 9223372036854775807", "--limit", NULL);
    assert_usage_error(&c, "changes list --limit 9223372036854775808", "--limit", NULL);
    assert_usage_error(&c, "changes list --limit 9999999999999999999", "--limit", NULL);
    assert_usage_error(&c, "changes list --limit 18446744073709551617", "--limit", NULL);
    assert_usage_error(&c, "changes list --limit -9223372036854775809", "integer", NULL);
}

static int fake_prompt(void *ctx, const struct ctl_param *param, char **out, char *err,
                       size_t errlen)
{
    const char *answer = ctx;
    if (!answer) {
        snprintf(err, errlen, "stdin is not a terminal");
        return IOT_EINVAL;
    }
    assert_string_equal(param->key, "password");
    *out = strdup(answer);
    return IOT_OK;
}

static void test_secret_prompt(void **state)
{
    struct parse_case c;
    /* No file: the prompt is asked. */
    struct iotctl_args_env env = {.prompt = fake_prompt, .prompt_ctx = (void *)"typed"};
    assert_int_equal(parse(&c, "user add bob@acme", &env), IOT_OK);
    assert_args(&c, "{\"user\":\"bob@acme\",\"password\":\"typed\"}");
    /* The prompt refuses (not a terminal): a usage error, never a hang. */
    struct iotctl_args_env no_tty = {.prompt = fake_prompt, .prompt_ctx = NULL};
    assert_usage_error(&c, "user add bob@acme", "not a terminal", &no_tty);
    /* No prompt at all: the flag is simply missing. */
    assert_usage_error(&c, "user add bob@acme", "--password-file", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positionals_and_options),
        cmocka_unit_test(test_kinds_converted),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_end_of_options),
        cmocka_unit_test(test_tenant_default),
        cmocka_unit_test(test_trailing_json),
        cmocka_unit_test(test_event_commands),
        cmocka_unit_test(test_wants_help),
        cmocka_unit_test(test_secret_from_file),
        cmocka_unit_test(test_int64_bounds),
        cmocka_unit_test(test_secret_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
