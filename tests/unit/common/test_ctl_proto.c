/*
 * test_ctl_proto.c - the control envelope builders and tolerant accessors (ctl_proto.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctl_proto.h"
#include "iot_error.h"
#include "iot_text.h"

#include <stdlib.h>
#include <string.h>

static void test_request_new(void **state)
{
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", "acme");
    cJSON *req = ctl_request_new(7, "tenant.add", args);
    assert_non_null(req);
    assert_int_equal(ctl_get_int(req, "id", -1), 7);
    assert_string_equal(ctl_get_string(req, "cmd"), "tenant.add");
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(req, "args");
    assert_ptr_equal(got, args);
    assert_string_equal(ctl_get_string(got, "name"), "acme");
    cJSON_Delete(req);

    req = ctl_request_new(1, "status", NULL);
    assert_non_null(req);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(req, "args")));
    cJSON_Delete(req);
}

static void test_reply_ok(void **state)
{
    cJSON *result = cJSON_CreateObject();
    cJSON_AddNumberToObject(result, "n", 3);
    cJSON *reply = ctl_reply_ok(9, result);
    assert_int_equal(ctl_get_int(reply, "id", -1), 9);
    assert_int_equal(ctl_get_bool(reply, "ok", -1), 1);
    assert_int_equal(ctl_get_int(cJSON_GetObjectItemCaseSensitive(reply, "result"), "n", 0), 3);
    cJSON_Delete(reply);

    reply = ctl_reply_ok(1, NULL);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(reply, "result")));
    cJSON_Delete(reply);
}

static void test_reply_error(void **state)
{
    cJSON *reply = ctl_reply_error(4, IOT_ENOTFOUND, "no tenant 'x'");
    assert_int_equal(ctl_get_bool(reply, "ok", -1), 0);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    assert_string_equal(ctl_get_string(error, "code"), "not_found");
    assert_string_equal(ctl_get_string(error, "message"), "no tenant 'x'");
    cJSON_Delete(reply);

    reply = ctl_reply_error(4, IOT_EEXIST, NULL);
    error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    assert_string_equal(ctl_get_string(error, "message"), iot_strerror(IOT_EEXIST));
    cJSON_Delete(reply);
}

static void test_serialize_line(void **state)
{
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "text", "two\nlines");
    cJSON *req = ctl_request_new(2, "tenant.add", args);
    char *line = ctl_serialize_line(req);
    assert_non_null(line);
    size_t len = strlen(line);
    assert_true(len > 1);
    assert_int_equal(line[len - 1], '\n');
    /* Exactly one newline: the framing survives values that contain newlines. */
    assert_ptr_equal(strchr(line, '\n'), line + len - 1);
    cJSON *back = cJSON_Parse(line);
    assert_non_null(back);
    assert_true(cJSON_Compare(back, req, 1));
    cJSON_Delete(back);
    cJSON_Delete(req);
    free(line);
}

static void test_accessors_tolerate_types(void **state)
{
    cJSON *obj = cJSON_Parse("{\"s\": 1, \"i\": \"x\", \"b\": 0}");
    assert_null(ctl_get_string(obj, "s"));
    assert_null(ctl_get_string(obj, "missing"));
    assert_int_equal(ctl_get_int(obj, "i", 42), 42);
    assert_int_equal(ctl_get_bool(obj, "b", -1), -1);
    assert_null(ctl_get_string(NULL, "s"));
    cJSON_Delete(obj);
}

/* Every reply the daemon writes is valid UTF-8 JSON, whatever bytes a device put in it, and no
 * control character reaches a terminal raw. */
static void test_json_print_is_valid(void **state)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "name", "bad\xff\xc0\xaf");
    cJSON_AddStringToObject(obj, "csi",
                            "\xc2\x9b"
                            "2J\x7f\x1b");
    cJSON *fields = cJSON_AddObjectToObject(obj, "fields");
    cJSON_AddStringToObject(fields, "k\xed\xa0\x80", "ok");
    cJSON *arr = cJSON_AddArrayToObject(obj, "list");
    cJSON_AddItemToArray(arr, cJSON_CreateString("\xe2\x82"));

    for (int formatted = 0; formatted < 2; formatted++) {
        char *text = ctl_json_print(obj, formatted);
        assert_non_null(text);
        assert_true(iot_text_utf8_valid(text, strlen(text)));
        for (const unsigned char *p = (const unsigned char *)text; *p; p++)
            assert_true(*p >= 0x20 || (formatted && (*p == '\n' || *p == '\t')));
        assert_null(strstr(text, "\x7f"));
        assert_null(strstr(text, "\xc2\x9b"));
        assert_non_null(strstr(text, "\\u009b2J\\u007f\\u001b"));
        assert_non_null(strstr(text, "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
        cJSON *back = cJSON_Parse(text);
        assert_non_null(back);
        assert_string_equal(ctl_get_string(back, "csi"), "\xc2\x9b"
                                                         "2J\x7f\x1b");
        cJSON_Delete(back);
        free(text);
    }
    /* The item printed is not changed. */
    assert_string_equal(ctl_get_string(obj, "name"), "bad\xff\xc0\xaf");
    char *line = ctl_serialize_line(obj);
    assert_true(iot_text_utf8_valid(line, strlen(line)));
    free(line);

    assert_int_equal(ctl_json_repair(obj), IOT_OK);
    assert_string_equal(ctl_get_string(obj, "name"), "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_non_null(
        cJSON_GetObjectItemCaseSensitive(fields, "k\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
    cJSON_Delete(obj);
}

static void test_request_check(void **state)
{
    char err[128];
    const char ok[] =
        "{\"id\":1,\"cmd\":\"tenant.add\",\"args\":{\"name\":\"caf\xc3\xa9 \\\\u0000\"}}";
    assert_int_equal(ctl_request_check(ok, strlen(ok), err, sizeof(err)), IOT_OK);

    const char nul[] = "{\"cmd\":\"tenant.add\",\"args\":{\"name\":\"a\\u0000b\"}}";
    assert_int_equal(ctl_request_check(nul, strlen(nul), err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "NUL"));

    const char raw_nul[] = "{\"cmd\":\"a\0b\"}";
    assert_int_equal(ctl_request_check(raw_nul, sizeof(raw_nul) - 1, err, sizeof(err)), IOT_EINVAL);

    /* Found by fuzz_ctl_request: a control byte right after a backslash in a string. */
    const char escaped_control[] = "{\"cmd\":\"\\\x01\"}";
    assert_int_equal(ctl_request_check(escaped_control, strlen(escaped_control), err, sizeof(err)),
                     IOT_EINVAL);

    const char bad_utf8[] = "{\"cmd\":\"\xff\xfe\"}";
    assert_int_equal(ctl_request_check(bad_utf8, strlen(bad_utf8), err, sizeof(err)), IOT_EINVAL);
    assert_true(iot_text_utf8_valid(err, strlen(err))); /* the message never quotes the bytes */
    assert_null(strchr(err, '\xff'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_new),
        cmocka_unit_test(test_reply_ok),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_serialize_line),
        cmocka_unit_test(test_accessors_tolerate_types),
        cmocka_unit_test(test_json_print_is_valid),
        cmocka_unit_test(test_request_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
