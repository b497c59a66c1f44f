/*
 * test_output.c - iotctl's rendering of replies, captured with open_memstream.
 *
 * The expected texts are written out in full: column widths, "-" for missing keys, yes/no for
 * booleans and the position of the secret are what operators and their scripts see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctl_commands.h"
#include "iot_error.h"
#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct capture {
    FILE *out, *note;
    char *out_text, *note_text;
    size_t out_len, note_len;
};

static void capture_open(struct capture *c)
{
    memset(c, 0, sizeof(*c));
    c->out = open_memstream(&c->out_text, &c->out_len);
    c->note = open_memstream(&c->note_text, &c->note_len);
    assert_non_null(c->out);
    assert_non_null(c->note);
}

static void capture_close(struct capture *c)
{
    fclose(c->out);
    fclose(c->note);
}

static void capture_free(struct capture *c)
{
    free(c->out_text);
    free(c->note_text);
}

/* Render result (JSON text) for a command and return the exit status; texts land in c. */
static int render(struct capture *c, enum ctl_command_id id, const char *result_json, bool json)
{
    cJSON *result = cJSON_Parse(result_json);
    assert_non_null(result);
    capture_open(c);
    int status = iotctl_print_result(c->out, c->note, &ctl_commands[id], result, json);
    capture_close(c);
    cJSON_Delete(result);
    return status;
}

static void test_list_table(void **state)
{
    struct capture c;
    int status = render(&c, CTL_DEVICE_LIST,
                        "{\"devices\":["
                        "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\","
                        "\"auth\":\"hmac\",\"enabled\":true,\"online\":false,"
                        "\"last_seen\":null,\"display_name\":\"Kitchen\"},"
                        "{\"id\":\"sensor-long-name\",\"tenant\":\"acme\",\"type\":\"pixel\","
                        "\"auth\":\"atecc508a\",\"enabled\":false,\"online\":true,"
                        "\"last_seen\":\"2024-05-01 10:00:00\",\"extra\":1}]}",
                        false);
    assert_int_equal(status, 0);
    assert_string_equal(
        c.out_text,
        "ID                TENANT  TYPE    AUTH       ENABLED  ONLINE  LAST_SEEN            "
        "DISPLAY_NAME\n"
        "dev1              acme    thermo  hmac       yes      no      -                    "
        "Kitchen\n"
        "sensor-long-name  acme    pixel   atecc508a  no       yes     2024-05-01 10:00:00  -\n");
    capture_free(&c);
}

static void test_empty_list_and_numbers(void **state)
{
    struct capture c;
    render(&c, CTL_TENANT_LIST, "{\"tenants\":[]}", false);
    assert_string_equal(c.out_text, "NAME  DISPLAY_NAME  TYPES  DEVICES  USERS  CREATED\n");
    capture_free(&c);

    render(&c, CTL_MESSAGE_LIST,
           "{\"messages\":[{\"name\":\"read_temp\",\"direction\":\"command\",\"args\":\"\","
           "\"timeout_ms\":5000,\"description\":\"Température\"}]}",
           false);
    /* Widths count characters, not bytes: "Température" is 11 wide. */
    assert_string_equal(c.out_text,
                        "NAME       DIRECTION  ARGS  TIMEOUT_MS  START  STOP  DESCRIPTION\n"
                        "read_temp  command    -     5000        -      -     Température\n");
    capture_free(&c);
}

static void test_object_lines(void **state)
{
    struct capture c;
    int status = render(&c, CTL_TYPE_SHOW,
                        "{\"tenant\":\"acme\",\"name\":\"thermo\",\"devices\":3,"
                        "\"description\":\"\",\"tags\":[\"a\",\"b\"],"
                        "\"messages\":[{\"name\":\"read_temp\",\"direction\":\"command\"},"
                        "{\"name\":\"alarm\",\"direction\":\"event\",\"args\":\"level:int\"}],"
                        "\"owner\":{\"user\":\"alice@acme\"},\"groups\":[]}",
                        false);
    assert_int_equal(status, 0);
    assert_string_equal(c.out_text, "tenant: acme\n"
                                    "name: thermo\n"
                                    "devices: 3\n"
                                    "description: -\n"
                                    "tags:\n"
                                    "  a\n"
                                    "  b\n"
                                    "messages:\n"
                                    "  NAME       DIRECTION  ARGS\n"
                                    "  read_temp  command    -\n"
                                    "  alarm      event      level:int\n"
                                    "owner:\n"
                                    "  user: alice@acme\n"
                                    "groups: -\n");
    capture_free(&c);
}

static void test_control_characters_neutralised(void **state)
{
    struct capture c;
    render(&c, CTL_TENANT_SHOW, "{\"name\":\"acme\",\"display_name\":\"evil\\u001b[2Jname\"}",
           false);
    assert_string_equal(c.out_text, "name: acme\ndisplay_name: evil\\x1b[2Jname\n");
    capture_free(&c);
}

/* Issue 17: C1 controls (UTF-8-encoded CSI), DEL and invalid UTF-8 from a device reach neither
 * the table, the watch line, the CSV nor the key=value lines raw; JSON stays valid UTF-8. */
static bool shows_raw(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t') || *p == 0x7f || *p == 0xff ||
            (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return true;
    return false;
}

static void test_network_text_escaped(void **state)
{
    struct capture c;
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "kind", "event");
    cJSON_AddStringToObject(item, "time", "2026-01-01T00:00:00Z");
    cJSON_AddStringToObject(item, "device",
                            "dev\xc2\x9b"
                            "1");
    cJSON_AddStringToObject(item, "name", "note");
    cJSON_AddNumberToObject(item, "seq", 3);
    cJSON *fields = cJSON_AddObjectToObject(item, "fields");
    cJSON_AddStringToObject(fields, "text",
                            "csi\xc2\x9b"
                            "2J\x7f\xff\xc0\xaf");
    cJSON_AddStringToObject(fields, "k\xc2\x85", "v");

    capture_open(&c);
    iotctl_print_stream_item(c.out, item, false);
    capture_close(&c);
    assert_string_equal(c.out_text, "2026-01-01T00:00:00Z dev\\u009b1 EVENT note seq=3 "
                                    "text=csi\\u009b2J\\x7f\\xff\\xc0\\xaf k\\u0085=v\n");
    capture_free(&c);

    capture_open(&c);
    iotctl_print_stream_item(c.out, item, true);
    capture_close(&c);
    assert_false(shows_raw(c.out_text));
    cJSON *back = cJSON_Parse(c.out_text);
    assert_non_null(back);
    cJSON_Delete(back);
    capture_free(&c);

    /* A stream item of another shape: key=value pairs, keys escaped too. */
    cJSON *other = cJSON_CreateObject();
    cJSON_AddStringToObject(other, "w\x1bho", "x\xc2\x9by");
    capture_open(&c);
    iotctl_print_stream_item(c.out, other, false);
    capture_close(&c);
    assert_string_equal(c.out_text, "w\\x1bho=x\\u009by\n");
    capture_free(&c);
    cJSON_Delete(other);

    /* A list as a table, as CSV and as JSON. */
    cJSON *result = cJSON_CreateObject(), *events = cJSON_AddArrayToObject(result, "events");
    cJSON_AddItemToArray(events, cJSON_Duplicate(item, true));
    const struct ctl_command *cmd = &ctl_commands[CTL_EVENTS];
    for (int mode = 0; mode < 3; mode++) {
        capture_open(&c);
        if (mode == 0)
            iotctl_print_result(c.out, c.note, cmd, result, false);
        else if (mode == 1)
            iotctl_print_csv(c.out, cmd, result);
        else
            iotctl_print_result(c.out, c.note, cmd, result, true);
        capture_close(&c);
        assert_false(shows_raw(c.out_text));
        assert_non_null(strstr(c.out_text, mode == 2 ? "csi\\u009b2J\\u007f" : "csi\\u009b2J"));
        capture_free(&c);
    }
    cJSON_Delete(result);

    /* A nested table whose keys came from the daemon: headers upper-cased, escapes kept. */
    capture_open(&c);
    cJSON *nested = cJSON_Parse("{\"rows\":[{\"k\\u001bey\":1}]}");
    assert_non_null(nested);
    iotctl_print_object(c.out, nested, 0);
    capture_close(&c);
    assert_string_equal(c.out_text, "rows:\n  K\\x1bEY\n  1\n");
    cJSON_Delete(nested);
    capture_free(&c);

    /* An error message the daemon sent. */
    capture_open(&c);
    iotctl_print_error(c.out, c.note, IOT_EINVAL, "bad \xff\xc2\x9b", NULL, true);
    capture_close(&c);
    assert_false(shows_raw(c.note_text));
    assert_false(shows_raw(c.out_text));
    capture_free(&c);
    cJSON_Delete(item);
}

static void test_secret_shown_last_with_note(void **state)
{
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char json[256], expected[256];
    snprintf(json, sizeof(json), "{\"id\":\"dev1\",\"secret\":\"%s\",\"tenant\":\"acme\"}", hex);
    struct capture c;
    render(&c, CTL_DEVICE_ADD, json, false);
    snprintf(expected, sizeof(expected), "id: dev1\ntenant: acme\nsecret: %s\n", hex);
    assert_string_equal(c.out_text, expected);
    assert_non_null(strstr(c.note_text, "will not be shown again"));
    capture_free(&c);

    /* JSON mode: the result as received, no note. */
    render(&c, CTL_DEVICE_ADD, json, true);
    cJSON *back = cJSON_Parse(c.out_text);
    assert_string_equal(cJSON_GetObjectItem(back, "secret")->valuestring, hex);
    assert_string_equal(c.note_text, "");
    cJSON_Delete(back);
    capture_free(&c);
}

static void test_access_check_decision(void **state)
{
    struct capture c;
    int status = render(&c, CTL_ACCESS_CHECK,
                        "{\"decision\":\"allow\",\"rule\":12,\"reason\":\"rule 12 grants "
                        "user:alice read_temp on type:thermo\"}",
                        false);
    assert_int_equal(status, 0);
    assert_string_equal(c.out_text,
                        "allow\nrule: 12\nreason: rule 12 grants user:alice read_temp on "
                        "type:thermo\n");
    capture_free(&c);

    status = render(&c, CTL_ACCESS_CHECK,
                    "{\"decision\":\"deny\",\"rule\":0,\"reason\":\"no rule matches\"}", false);
    assert_int_equal(status, 4);
    assert_string_equal(c.out_text, "deny\nrule: 0\nreason: no rule matches\n");
    capture_free(&c);

    /* The exit status does not depend on the output format. */
    status =
        render(&c, CTL_ACCESS_CHECK, "{\"decision\":\"deny\",\"rule\":0,\"reason\":\"x\"}", true);
    assert_int_equal(status, 4);
    capture_free(&c);
}

static void test_json_is_result_as_received(void **state)
{
    const char *json = "{\"tenants\":[{\"name\":\"acme\",\"types\":2,\"x\":null}],\"more\":false}";
    struct capture c;
    render(&c, CTL_TENANT_LIST, json, true);
    cJSON *back = cJSON_Parse(c.out_text);
    cJSON *original = cJSON_Parse(json);
    assert_true(cJSON_Compare(back, original, 1));
    /* Exactly one document, ending in a newline. */
    assert_int_equal(c.out_text[c.out_len - 1], '\n');
    cJSON_Delete(back);
    cJSON_Delete(original);
    capture_free(&c);
}

static void test_errors(void **state)
{
    struct capture c;
    capture_open(&c);
    iotctl_print_error(c.out, c.note, IOT_ENOTFOUND, "no tenant 'x'", NULL, false);
    capture_close(&c);
    assert_string_equal(c.note_text, "iotctl: no tenant 'x' (not_found)\n");
    assert_string_equal(c.out_text, "");
    capture_free(&c);

    capture_open(&c);
    iotctl_print_error(c.out, c.note, IOT_EUNREACHABLE, NULL, NULL, true);
    capture_close(&c);
    assert_string_equal(c.note_text, "iotctl: daemon unreachable (unreachable)\n");
    cJSON *error = cJSON_Parse(c.out_text);
    assert_string_equal(cJSON_GetObjectItem(error, "code")->valuestring, "unreachable");
    cJSON_Delete(error);
    capture_free(&c);

    /* The daemon's error object is printed as received, extra fields included. */
    cJSON *received = cJSON_Parse("{\"code\":\"exists\",\"message\":\"m\",\"tenant\":\"acme\"}");
    capture_open(&c);
    iotctl_print_error(c.out, c.note, IOT_EEXIST, "m", received, true);
    capture_close(&c);
    error = cJSON_Parse(c.out_text);
    assert_true(cJSON_Compare(error, received, 1));
    cJSON_Delete(error);
    cJSON_Delete(received);
    capture_free(&c);
}

static void test_stream_items(void **state)
{
    cJSON *item = cJSON_Parse("{\"device\":\"dev1\",\"seq\":7,\"ok\":true}");
    struct capture c;
    capture_open(&c);
    iotctl_print_stream_item(c.out, item, false);
    iotctl_print_stream_item(c.out, item, true);
    capture_close(&c);
    assert_string_equal(c.out_text, "device=dev1 seq=7 ok=yes\n"
                                    "{\"device\":\"dev1\",\"seq\":7,\"ok\":true}\n");
    capture_free(&c);
    cJSON_Delete(item);
}

/* watch: events and alarm changes as one readable line each; the dropped notice. */
static void test_watch_items(void **state)
{
    cJSON *ev = cJSON_Parse("{\"time\":\"2026-11-24T10:00:00.000Z\",\"kind\":\"event\","
                            "\"device\":\"dev1\",\"seq\":9,\"name\":\"temperature\","
                            "\"fields\":{\"value\":\"23.0\",\"unit\":\"C\"}}");
    cJSON *alarm = cJSON_Parse("{\"time\":\"2026-11-24T10:00:01.000Z\",\"kind\":\"alarm\","
                               "\"device\":\"dev1\",\"seq\":0,\"name\":\"hot\","
                               "\"fields\":{\"state\":\"raised\",\"msg\":\"\"}}");
    cJSON *dropped = cJSON_Parse("{\"dropped\":12}");
    struct capture c;
    (void)state;
    capture_open(&c);
    iotctl_print_stream_item(c.out, ev, false);
    iotctl_print_stream_item(c.out, alarm, false);
    iotctl_print_stream_item(c.out, dropped, false);
    capture_close(&c);
    assert_string_equal(c.out_text,
                        "2026-11-24T10:00:00.000Z dev1 EVENT temperature seq=9 value=23.0 unit=C\n"
                        "2026-11-24T10:00:01.000Z dev1 ALARM hot state=raised msg=-\n"
                        "-- 12 items dropped: this watcher did not keep up\n");
    capture_free(&c);
    cJSON_Delete(ev);
    cJSON_Delete(alarm);
    cJSON_Delete(dropped);
}

/* --csv: RFC 4180 quoting, nested fields as key=value, nulls empty. */
static void test_csv(void **state)
{
    const struct ctl_command *cmd = &ctl_commands[CTL_EVENTS];
    cJSON *result = cJSON_Parse(
        "{\"events\":[{\"time\":\"t1\",\"tenant\":\"acme\",\"device\":\"d,1\",\"seq\":1,"
        "\"kind\":\"event\",\"name\":\"n\\\"q\",\"fields\":{\"v\":\"1\",\"u\":\"C\"}},"
        "{\"time\":null,\"tenant\":\"acme\",\"device\":\"d2\",\"seq\":2,\"kind\":\"alarm\","
        "\"name\":\"x\",\"fields\":{}}]}");
    struct capture c;
    (void)state;
    capture_open(&c);
    assert_int_equal(iotctl_print_csv(c.out, cmd, result), 0);
    capture_close(&c);
    assert_string_equal(c.out_text, "time,tenant,device,seq,kind,name,fields\r\n"
                                    "t1,acme,\"d,1\",1,event,\"n\"\"q\",v=1 u=C\r\n"
                                    ",acme,d2,2,alarm,x,-\r\n");
    capture_free(&c);
    cJSON_Delete(result);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_table),
        cmocka_unit_test(test_empty_list_and_numbers),
        cmocka_unit_test(test_object_lines),
        cmocka_unit_test(test_control_characters_neutralised),
        cmocka_unit_test(test_network_text_escaped),
        cmocka_unit_test(test_secret_shown_last_with_note),
        cmocka_unit_test(test_access_check_decision),
        cmocka_unit_test(test_json_is_result_as_received),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stream_items),
        cmocka_unit_test(test_watch_items),
        cmocka_unit_test(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
