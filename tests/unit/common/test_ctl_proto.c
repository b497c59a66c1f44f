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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_new),
        cmocka_unit_test(test_reply_ok),
        cmocka_unit_test(test_reply_error),
        cmocka_unit_test(test_serialize_line),
        cmocka_unit_test(test_accessors_tolerate_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
