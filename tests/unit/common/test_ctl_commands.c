/*
 * test_ctl_commands.c - the shared command table and its validation (ctl_commands.h).
 *
 * The table is data that two programs interpret (iotctl builds argv into args with it, iotd
 * validates args with it), so its invariants are tested here rather than trusted: wire names are
 * the words joined by dots, words are unique, positionals come before options (iotctl fills
 * positionals in table order), every param can be shown in usage, and list commands say which
 * key and columns to show.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctl_commands.h"
#include "iot_error.h"
#include "iot_text.h"

#include <stdio.h>
#include <string.h>

static void test_ids_and_names(void **state)
{
    for (int i = 0; i < CTL_COMMAND_COUNT; i++) {
        const struct ctl_command *cmd = &ctl_commands[i];
        assert_int_equal(cmd->id, i);
        assert_non_null(cmd->words);
        assert_non_null(cmd->name);
        char dotted[128];
        snprintf(dotted, sizeof(dotted), "%s", cmd->words);
        for (char *p = dotted; *p; p++)
            if (*p == ' ')
                *p = '.';
        assert_string_equal(cmd->name, dotted);
        assert_null(strstr(cmd->words, "  "));
        assert_non_null(cmd->summary);
        assert_true(strlen(cmd->summary) > 0);
        assert_ptr_equal(ctl_command_by_name(cmd->name), cmd);
    }
    assert_null(ctl_command_by_name("tenant.frobnicate"));
    assert_null(ctl_command_by_name(NULL));
}

static void test_words_unique(void **state)
{
    for (int a = 0; a < CTL_COMMAND_COUNT; a++)
        for (int b = a + 1; b < CTL_COMMAND_COUNT; b++)
            assert_string_not_equal(ctl_commands[a].words, ctl_commands[b].words);
}

static void test_params_well_formed(void **state)
{
    for (int i = 0; i < CTL_COMMAND_COUNT; i++) {
        const struct ctl_command *cmd = &ctl_commands[i];
        size_t count = ctl_command_param_count(cmd);
        bool seen_option = false;
        for (size_t j = 0; j < count; j++) {
            const struct ctl_param *p = &cmd->params[j];
            assert_non_null(p->key);
            assert_non_null(p->help);
            if (p->kind != CTL_ARG_BOOL)
                assert_non_null(p->metavar);
            /* A bare flag or a secret read from a file cannot be positional. */
            if (p->kind == CTL_ARG_BOOL || p->kind == CTL_ARG_SECRET)
                assert_non_null(p->flag);
            if (p->kind == CTL_ARG_BOOL)
                assert_false(p->required);
            if (p->flag) {
                assert_memory_equal(p->flag, "--", 2);
                seen_option = true;
            } else {
                /* Positionals first, or iotctl would fill the wrong param. */
                assert_false(seen_option);
            }
            for (size_t k = j + 1; k < count; k++) {
                assert_string_not_equal(p->key, cmd->params[k].key);
                if (p->flag && cmd->params[k].flag)
                    assert_string_not_equal(p->flag, cmd->params[k].flag);
            }
        }
        /* Unused slots are empty: the count stops at the first NULL key. */
        for (size_t j = count; j < CTL_MAX_PARAMS; j++)
            assert_null(cmd->params[j].key);
    }
}

static void test_list_commands(void **state)
{
    for (int i = 0; i < CTL_COMMAND_COUNT; i++) {
        const struct ctl_command *cmd = &ctl_commands[i];
        if (cmd->list_key)
            assert_non_null(cmd->columns[0]);
        else
            assert_null(cmd->columns[0]);
    }
    assert_string_equal(ctl_commands[CTL_TENANT_LIST].list_key, "tenants");
}

static void check_match(const char *line, int expected, int expected_words)
{
    char buf[256], *argv[16];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 16; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    int consumed = -1;
    const struct ctl_command *cmd = ctl_command_match(argc, argv, &consumed);
    if (expected < 0) {
        assert_null(cmd);
        assert_int_equal(consumed, 0);
        return;
    }
    assert_non_null(cmd);
    assert_int_equal((int)cmd->id, expected);
    assert_int_equal(consumed, expected_words);
}

static void test_command_match(void **state)
{
    check_match("group member add ops dev1 --tenant acme", CTL_GROUP_MEMBER_ADD, 3);
    check_match("group add ops --tenant acme --kind device", CTL_GROUP_ADD, 2);
    check_match("group member remove ops dev1", CTL_GROUP_MEMBER_REMOVE, 3);
    check_match("status", CTL_STATUS, 1);
    check_match("tenant list", CTL_TENANT_LIST, 2);
    check_match("access check user:alice dev1 read_temp", CTL_ACCESS_CHECK, 2);
    check_match("group member", -1, 0);
    check_match("group", -1, 0);
    check_match("tenant listing", -1, 0);
    check_match("frobnicate", -1, 0);
    check_match("", -1, 0);
}

static int validate_json(enum ctl_command_id id, const char *json)
{
    char err[256] = "";
    cJSON *args = json ? cJSON_Parse(json) : NULL;
    if (json)
        assert_non_null(args);
    int rc = ctl_args_validate(&ctl_commands[id], args, err, sizeof(err));
    if (rc != IOT_OK)
        assert_true(strlen(err) > 0);
    cJSON_Delete(args);
    return rc;
}

static void test_args_validate(void **state)
{
    assert_int_equal(validate_json(CTL_DEVICE_ADD,
                                   "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\","
                                   "\"disabled\":true,\"serial\":\"0123456789abcdef01\"}"),
                     IOT_OK);
    assert_int_equal(validate_json(CTL_TENANT_LIST, NULL), IOT_OK);
    assert_int_equal(validate_json(CTL_TENANT_LIST, "{}"), IOT_OK);
    assert_int_equal(validate_json(CTL_ACCESS_REVOKE, "{\"rule\":12,\"tenant\":\"acme\"}"), IOT_OK);
    /* Missing required. */
    assert_int_equal(validate_json(CTL_DEVICE_ADD, "{\"id\":\"dev1\",\"tenant\":\"acme\"}"),
                     IOT_EINVAL);
    /* Unknown key. */
    assert_int_equal(validate_json(CTL_TENANT_SHOW, "{\"name\":\"acme\",\"colour\":\"red\"}"),
                     IOT_EINVAL);
    /* Wrong JSON types for the kind. */
    assert_int_equal(validate_json(CTL_ACCESS_REVOKE, "{\"rule\":\"12\",\"tenant\":\"acme\"}"),
                     IOT_EINVAL);
    assert_int_equal(validate_json(CTL_TENANT_REMOVE, "{\"name\":\"acme\",\"force\":1}"),
                     IOT_EINVAL);
    assert_int_equal(validate_json(CTL_TENANT_SHOW, "{\"name\":7}"), IOT_EINVAL);
    /* A value the kind refuses. */
    assert_int_equal(validate_json(CTL_TENANT_SHOW, "{\"name\":\"ac me\"}"), IOT_EINVAL);
    assert_int_equal(validate_json(CTL_DEVICE_ADD,
                                   "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"t\","
                                   "\"serial\":\"abc\"}"),
                     IOT_EINVAL);
    /* Not an object. */
    assert_int_equal(validate_json(CTL_TENANT_LIST, "[1]"), IOT_EINVAL);
}

static void test_value_valid(void **state)
{
    assert_true(ctl_value_valid(CTL_ARG_NAME, "acme"));
    assert_true(ctl_value_valid(CTL_ARG_NAME, "dev-1.a_b"));
    assert_true(ctl_value_valid(CTL_ARG_NAME, "9lives"));
    assert_false(ctl_value_valid(CTL_ARG_NAME, "-dev"));
    assert_false(ctl_value_valid(CTL_ARG_NAME, "a b"));
    assert_false(ctl_value_valid(CTL_ARG_NAME, "user@acme"));
    assert_false(ctl_value_valid(CTL_ARG_NAME, ""));
    assert_false(ctl_value_valid(CTL_ARG_NAME, NULL));
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(ctl_value_valid(CTL_ARG_NAME, long_name));
    long_name[64] = '\0';
    assert_true(ctl_value_valid(CTL_ARG_NAME, long_name));

    assert_true(ctl_value_valid(CTL_ARG_INT, "42"));
    assert_true(ctl_value_valid(CTL_ARG_INT, "-7"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "-"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "4x"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "1.5"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "12345678901234567890"));

    assert_true(ctl_value_valid(CTL_ARG_HEX, "00ff"));
    assert_true(ctl_value_valid(CTL_ARG_HEX, "ABcd"));
    assert_false(ctl_value_valid(CTL_ARG_HEX, "abc"));
    assert_false(ctl_value_valid(CTL_ARG_HEX, "zz"));

    assert_true(ctl_value_valid(CTL_ARG_STRING, "Living room\tsensor"));
    assert_false(ctl_value_valid(CTL_ARG_STRING, "two\nlines"));
    assert_false(ctl_value_valid(CTL_ARG_STRING, ""));
    assert_true(ctl_value_valid(CTL_ARG_SECRET, "correct horse"));
    assert_false(ctl_value_valid(CTL_ARG_SECRET, "bell\a"));
    assert_true(ctl_value_valid(CTL_ARG_BOOL, "true"));
}

/* Issue 17: numbers beyond int64 are refused, not wrapped; text that is not UTF-8 or holds C1
 * controls is refused; an error never quotes bytes that are not UTF-8 or that drive a
 * terminal. */
static void test_hostile_values(void **state)
{
    static const char *const ints[] = {"9223372036854775808",  "1e19", "-9.3e18", "1.5",
                                       "18446744073709551616", "1e300"};
    char json[128], err[256];
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        snprintf(json, sizeof(json), "{\"rule\":%s,\"tenant\":\"acme\"}", ints[i]);
        assert_int_equal(validate_json(CTL_ACCESS_REVOKE, json), IOT_EINVAL);
    }
    assert_int_equal(
        validate_json(CTL_ACCESS_REVOKE, "{\"rule\":-9007199254740992,\"tenant\":\"a\"}"), IOT_OK);
    assert_int_equal(
        validate_json(CTL_ACCESS_REVOKE, "{\"rule\":9007199254740992,\"tenant\":\"a\"}"), IOT_OK);

    assert_int_equal(
        validate_json(CTL_TENANT_ADD, "{\"name\":\"acme\",\"display_name\":\"a\\u009bb\"}"),
        IOT_EINVAL);
    assert_int_equal(
        validate_json(CTL_TENANT_ADD, "{\"name\":\"acme\",\"display_name\":\"a\xff\"}"),
        IOT_EINVAL);
    assert_int_equal(
        validate_json(CTL_TENANT_ADD, "{\"name\":\"acme\",\"display_name\":\"a\x7f\"}"),
        IOT_EINVAL);
    assert_int_equal(
        validate_json(CTL_TENANT_ADD, "{\"name\":\"acme\",\"display_name\":\"Caf\xc3\xa9\"}"),
        IOT_OK);
    assert_int_equal(
        validate_json(CTL_SEND, "{\"device\":\"d\",\"message\":\"m\",\"args\":[\"\xc0\xaf\"]}"),
        IOT_EINVAL);

    cJSON *args = cJSON_Parse("{\"name\":\"acme\",\"\xff\xc2\x9b\x1b[2J\":1}");
    assert_non_null(args);
    assert_int_equal(ctl_args_validate(&ctl_commands[CTL_TENANT_SHOW], args, err, sizeof(err)),
                     IOT_EINVAL);
    assert_true(iot_text_utf8_valid(err, strlen(err)));
    assert_null(strchr(err, 0x1b));
    assert_null(strstr(err, "\xc2\x9b"));
    assert_non_null(strstr(err, "\\xff\\u009b\\x1b[2J"));
    cJSON_Delete(args);

    /* Found by fuzz_ctl_request: a long key of multibyte characters, cut by err's size in the
     * middle of one. */
    char long_key[600] = "{\"", *p = long_key + 2;
    for (int i = 0; i < 150; i++, p += 2)
        memcpy(p, "\xc3\xa9", 2);
    strcpy(p, "\":1}");
    args = cJSON_Parse(long_key);
    assert_non_null(args);
    assert_int_equal(ctl_args_validate(&ctl_commands[CTL_TENANT_SHOW], args, err, sizeof(err)),
                     IOT_EINVAL);
    assert_true(iot_text_utf8_valid(err, strlen(err)));
    assert_non_null(strstr(err, "...'"));
    cJSON_Delete(args);

    assert_false(ctl_value_valid(CTL_ARG_INT, "9223372036854775808"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "-9223372036854775809"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "9223372036854775807"));
    assert_false(ctl_value_valid(CTL_ARG_INT, "9007199254740993"));
    assert_true(ctl_value_valid(CTL_ARG_INT, "9007199254740992"));
    assert_true(ctl_value_valid(CTL_ARG_INT, "-9007199254740992"));
    assert_false(ctl_value_valid(CTL_ARG_STRING, "nel\xc2\x85"));
    assert_false(ctl_value_valid(CTL_ARG_REST, "\xed\xa0\x80"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_names),      cmocka_unit_test(test_words_unique),
        cmocka_unit_test(test_params_well_formed), cmocka_unit_test(test_list_commands),
        cmocka_unit_test(test_command_match),      cmocka_unit_test(test_args_validate),
        cmocka_unit_test(test_value_valid),        cmocka_unit_test(test_hostile_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
