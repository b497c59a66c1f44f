/*
 * test_help.c - help text and "unknown command" suggestions generated from the command table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctl_commands.h"
#include "help.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("\"%s\" not found in:\n%s", needle, text);
}

static void test_command_prefix(void **state)
{
    char *device[] = {"device", "frob"};
    char *group_member[] = {"group", "member", "x"};
    char *unknown[] = {"devices"};
    assert_int_equal(iotctl_command_prefix(2, device), 1);
    assert_int_equal(iotctl_command_prefix(3, group_member), 2);
    assert_int_equal(iotctl_command_prefix(1, unknown), 0);
    assert_int_equal(iotctl_command_prefix(0, NULL), 0);
}

static void test_help_all_lists_every_command(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    iotctl_help_all(out);
    fclose(out);
    for (int i = 0; i < CTL_COMMAND_COUNT; i++) {
        assert_contains(text, ctl_commands[i].words);
        assert_contains(text, ctl_commands[i].summary);
    }
    assert_contains(text, "--json");
    assert_contains(text, "--csv");
    /* Every exit status from 0 to 12 has its line, and every error code is named on the line
     * of the status iotctl exits with for it. */
    for (int status = 0; status <= 12; status++) {
        char head[16];
        snprintf(head, sizeof head, "\n  %2d  ", status);
        assert_contains(text, head);
    }
    for (int code = -1; code > -IOT_ERROR_COUNT; code--) {
        char head[16];
        snprintf(head, sizeof head, "\n  %2d  ", iot_error_exit_status(code));
        const char *line = strstr(text, head);
        assert_non_null(line);
        size_t line_len = strcspn(line + 1, "\n");
        char *copy = strndup(line + 1, line_len);
        assert_contains(copy, iot_error_name(code));
        free(copy);
    }
    free(text);
}

static void test_help_prefix(void **state)
{
    char *text = NULL;
    size_t len = 0;
    char *group[] = {"group"};
    FILE *out = open_memstream(&text, &len);
    iotctl_help_prefix(out, 1, group);
    fclose(out);
    assert_contains(text, "usage: iotctl group VERB");
    assert_contains(text, "  member add ");
    assert_contains(text, "  add ");
    assert_null(strstr(text, "tenant"));
    free(text);
}

static void test_help_command_usage(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    iotctl_help_command(out, &ctl_commands[CTL_DEVICE_ADD]);
    fclose(out);
    assert_contains(text, "usage: iotctl device add ID --tenant TENANT --type TYPE [--name TEXT]");
    assert_contains(text, "[--disabled]");
    assert_contains(text, "  ID ");
    assert_contains(text, "globally unique device id");
    assert_contains(text, "  --serial HEX ");
    free(text);

    /* A secret's flag is optional in usage: a terminal prompt can supply it. */
    out = open_memstream(&text, &len);
    iotctl_help_command(out, &ctl_commands[CTL_USER_ADD]);
    fclose(out);
    assert_contains(text, "[--password-file FILE]");
    free(text);
}

static void test_unknown_command_suggestions(void **state)
{
    char buf[512];
    char *devce[] = {"devce"};
    iotctl_unknown_command(buf, sizeof(buf), 0, devce, "devce");
    assert_contains(buf, "unknown command 'devce'");
    assert_contains(buf, "did you mean 'device'?");
    assert_contains(buf, "commands: status stats tenant type");

    char *device[] = {"device", "ad"};
    iotctl_unknown_command(buf, sizeof(buf), 1, device, "ad");
    assert_contains(buf, "unknown verb 'ad' for 'device'");
    assert_contains(buf, "did you mean 'add'?");
    assert_contains(buf, "verbs: add list show remove enable disable rekey");

    char *far[] = {"device", "xyzzy"};
    iotctl_unknown_command(buf, sizeof(buf), 1, far, "xyzzy");
    assert_null(strstr(buf, "did you mean"));

    char *member[] = {"group", "member"};
    iotctl_unknown_command(buf, sizeof(buf), 2, member, NULL);
    assert_contains(buf, "'group member' needs a verb");
    assert_contains(buf, "verbs: add remove");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_prefix),
        cmocka_unit_test(test_help_all_lists_every_command),
        cmocka_unit_test(test_help_prefix),
        cmocka_unit_test(test_help_command_usage),
        cmocka_unit_test(test_unknown_command_suggestions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
