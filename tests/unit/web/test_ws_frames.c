/* Unit tests of the browser mapping (iot-websocket(7)): JSON messages to frames (requests,
 * LOGIN, system frames, every refusal and its code, nothing before WELCOME) and frames to JSON
 * (answers, device OK with positional args, ERROR members, EVENT with its name in args,
 * counters as numbers, WELCOME with a ticket, invalid UTF-8 repaired), and a round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include <cjson/cJSON.h>
#include "web/ws_frames.h"

#include <stdio.h>
#include <string.h>

/* A frame from "|"-separated text (| is US, the EOT is added). */
static size_t frame_of(const char *text, uint8_t *out)
{
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        out[i] = text[i] == '|' ? IOTP_US : (uint8_t)text[i];
    out[n] = IOTP_EOT;
    return n + 1;
}

/* Decode msg and return the frame as "|"-separated text (static), or "" with reply set. */
static const char *decode(struct ws_frames *fx, const char *msg, char *reply)
{
    static char text[4200];
    uint8_t out[4096];
    reply[0] = '\0';
    int n = ws_frames_decode(fx, msg, strlen(msg), out, sizeof(out), reply);
    assert_true(n >= 0);
    if (n == 0) {
        assert_true(reply[0] != '\0');
        return "";
    }
    assert_int_equal(out[n - 1], IOTP_EOT);
    for (int i = 0; i < n - 1; i++)
        text[i] = out[i] == IOTP_US ? '|' : (char)out[i];
    text[n - 1] = '\0';
    return text;
}

static const char *encode(struct ws_frames *fx, const char *frame_text)
{
    static char json[4096];
    uint8_t frame[4096];
    size_t len = frame_of(frame_text, frame);
    int n = ws_frames_encode(fx, frame, len, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(json));
    return json;
}

static struct ws_frames welcomed(void)
{
    struct ws_frames fx = {.welcomed = true};
    snprintf(fx.user, sizeof(fx.user), "alice@acme");
    return fx;
}

static void test_login(void **state)
{
    struct ws_frames fx = {0};
    char reply[WS_FRAMES_REPLY_MAX];
    (void)state;
    assert_string_equal(
        decode(&fx,
               "{\"type\":\"LOGIN\",\"id\":1,\"user\":\"alice@acme\",\"password\":\"s3 cret\"}",
               reply),
        "alice@acme|iotd|LOGIN|1|password=s3 cret|proto=1");
    assert_string_equal(fx.user, "alice@acme");
    assert_false(fx.welcomed);
    /* Before WELCOME nothing else goes through. */
    assert_string_equal(decode(&fx, "{\"type\":\"read_temp\",\"to\":\"dev1\",\"id\":7}", reply),
                        "");
    assert_non_null(strstr(reply, "\"code\":\"auth\""));
    assert_non_null(strstr(reply, "\"id\":7"));
    /* LOGIN without a user. */
    assert_string_equal(decode(&fx, "{\"type\":\"LOGIN\",\"password\":\"x\"}", reply), "");
    assert_non_null(strstr(reply, "bad_args"));
}

static bool give_ticket(void *arg, const char *user, char ticket[WS_FRAMES_TICKET_MAX])
{
    (void)arg;
    assert_string_equal(user, "alice@acme");
    snprintf(ticket, WS_FRAMES_TICKET_MAX, "%s", "abcd");
    return true;
}

static void test_welcome(void **state)
{
    struct ws_frames fx = {.on_welcome = give_ticket};
    (void)state;
    assert_string_equal(encode(&fx, "iotd|alice@acme|WELCOME|1|session=42|ping=30"),
                        "{\"type\":\"WELCOME\",\"from\":\"iotd\",\"id\":1,\"session\":42,"
                        "\"ping\":30,\"ticket\":\"abcd\"}");
    assert_true(fx.welcomed);
    assert_string_equal(fx.user, "alice@acme");
    /* A cookie login's WELCOME (id 0) gets no ticket. */
    struct ws_frames fx2 = {.on_welcome = give_ticket};
    assert_string_equal(encode(&fx2, "iotd|alice@acme|WELCOME|0|session=43|ping=30"),
                        "{\"type\":\"WELCOME\",\"from\":\"iotd\",\"id\":0,\"session\":43,"
                        "\"ping\":30}");
}

static void test_requests(void **state)
{
    struct ws_frames fx = welcomed();
    char reply[WS_FRAMES_REPLY_MAX];
    (void)state;
    assert_string_equal(decode(&fx, "{\"type\":\"read_temp\",\"to\":\"dev1\",\"id\":7}", reply),
                        "alice@acme|dev1|read_temp|7");
    assert_string_equal(decode(&fx,
                               "{\"type\":\"set_pixel\",\"to\":\"lamp\",\"id\":4294967295,"
                               "\"args\":[3,\"red\",-1.5,0.1,true]} ",
                               reply),
                        "alice@acme|lamp|set_pixel|4294967295|3|red|-1.5|0.1|true");
    /* A null argument is refused: an array item is positional, so it cannot be skipped. */
    assert_string_equal(decode(&fx, "{\"type\":\"x\",\"to\":\"d\",\"args\":[null]}", reply), "");
    assert_non_null(strstr(reply, "bad_args"));
}

static void test_system(void **state)
{
    struct ws_frames fx = welcomed();
    char reply[WS_FRAMES_REPLY_MAX];
    (void)state;
    assert_string_equal(
        decode(&fx, "{\"type\":\"SUBSCRIBE\",\"id\":3,\"device\":\"dev1\",\"alarms\":1}", reply),
        "alice@acme|iotd|SUBSCRIBE|3|device=dev1|alarms=1");
    assert_string_equal(decode(&fx, "{\"type\":\"PING\"}", reply), "alice@acme|iotd|PING|0");
    assert_string_equal(decode(&fx,
                               "{\"type\":\"LEASE\",\"id\":5,\"device\":\"dev1\","
                               "\"event\":\"temperature\",\"ttl\":60,\"x\":null}",
                               reply),
                        "alice@acme|iotd|LEASE|5|device=dev1|event=temperature|ttl=60");
    assert_string_equal(decode(&fx, "{\"type\":\"BYE\",\"id\":9}", reply), "alice@acme|iotd|BYE|9");
}

static void expect_refused(struct ws_frames *fx, const char *msg, const char *code, int id)
{
    char reply[WS_FRAMES_REPLY_MAX], want[64];
    assert_string_equal(decode(fx, msg, reply), "");
    snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
    assert_non_null(strstr(reply, want));
    snprintf(want, sizeof(want), "\"id\":%d,", id);
    assert_non_null(strstr(reply, want));
    assert_non_null(strstr(reply, "\"type\":\"ERROR\""));
    cJSON *parsed = cJSON_Parse(reply); /* the reply is JSON itself */
    assert_non_null(parsed);
    cJSON_Delete(parsed);
}

static void test_refusals(void **state)
{
    struct ws_frames fx = welcomed();
    char big[6000];
    (void)state;
    expect_refused(&fx, "{not json", "bad_frame", 0);
    expect_refused(&fx, "", "bad_frame", 0);
    expect_refused(&fx, "[1,2]", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"PING\"} x", "bad_frame", 0);
    expect_refused(&fx, "{\"id\":3}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":7}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"\"}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"PING\",\"id\":-1}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"PING\",\"id\":1.5}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"PING\",\"id\":\"3\"}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"PING\",\"id\":4294967296}", "bad_frame", 0);
    expect_refused(&fx, "{\"type\":\"read_temp\",\"id\":2}", "bad_frame", 2);
    expect_refused(&fx, "{\"type\":\"read_temp\",\"to\":\"d\",\"id\":2,\"x\":1}", "bad_frame", 2);
    expect_refused(&fx, "{\"type\":\"read_temp\",\"to\":\"d\",\"id\":2,\"args\":[[1]]}", "bad_args",
                   2);
    expect_refused(&fx, "{\"type\":\"read_temp\",\"to\":\"d\",\"id\":2,\"args\":\"a\"}", "bad_args",
                   2);
    expect_refused(&fx, "{\"type\":\"read_temp\",\"to\":\"d\",\"id\":2,\"args\":[\"a\\u0004\"]}",
                   "bad_args", 2);
    expect_refused(&fx, "{\"type\":\"read_temp\",\"to\":\"d\\u001f\",\"id\":2}", "bad_args", 2);
    expect_refused(&fx, "{\"type\":\"SUBSCRIBE\",\"id\":4,\"from\":\"bob@acme\"}", "bad_frame", 4);
    expect_refused(&fx, "{\"type\":\"SUBSCRIBE\",\"id\":4,\"to\":\"dev1\"}", "bad_frame", 4);
    expect_refused(&fx, "{\"type\":\"SUBSCRIBE\",\"id\":4,\"a=b\":\"c\"}", "bad_frame", 4);
    expect_refused(&fx, "{\"type\":\"SUBSCRIBE\",\"id\":4,\"device\":{}}", "bad_args", 4);
    memcpy(big, "{\"type\":\"x\",\"to\":\"d\",\"id\":1,\"args\":[\"", 37);
    memset(big + 37, 'a', 5000);
    memcpy(big + 5037, "\"]}", 4);
    expect_refused(&fx, big, "too_large", 1);
    char args[400] = "{\"type\":\"x\",\"to\":\"d\",\"id\":1,\"args\":[1";
    for (int i = 0; i < 40; i++)
        strcat(args, ",1");
    strcat(args, "]}");
    expect_refused(&fx, args, "bad_args", 1);
}

static void test_answers(void **state)
{
    struct ws_frames fx = welcomed();
    (void)state;
    assert_string_equal(encode(&fx, "dev1|alice@acme|OK|7|21.5|C"),
                        "{\"type\":\"OK\",\"from\":\"dev1\",\"id\":7,\"args\":[\"21.5\",\"C\"]}");
    assert_string_equal(encode(&fx, "dev1|alice@acme|OK|8"),
                        "{\"type\":\"OK\",\"from\":\"dev1\",\"id\":8,\"args\":[]}");
    assert_string_equal(encode(&fx, "iotd|alice@acme|OK|3|sub=12"),
                        "{\"type\":\"OK\",\"from\":\"iotd\",\"id\":3,\"sub\":12}");
    assert_string_equal(encode(&fx, "iotd|alice@acme|ERROR|7|code=denied|msg=not allowed"),
                        "{\"type\":\"ERROR\",\"from\":\"iotd\",\"id\":7,\"code\":\"denied\","
                        "\"msg\":\"not allowed\"}");
    assert_string_equal(encode(&fx, "iotd|alice@acme|ERROR|7|code=busy|retry=3"),
                        "{\"type\":\"ERROR\",\"from\":\"iotd\",\"id\":7,\"code\":\"busy\","
                        "\"retry\":3}");
    /* Answers are written without cJSON: its escapes (quote, backslash, control bytes) and
     * the largest id, byte for byte as cJSON prints them. */
    assert_string_equal(encode(&fx, "dev1|alice@acme|OK|4294967295|a\"b\\c\td\x01/\x7f"),
                        "{\"type\":\"OK\",\"from\":\"dev1\",\"id\":4294967295,\"args\":"
                        "[\"a\\\"b\\\\c\\td\\u0001/\x7f\"]}");
    assert_string_equal(encode(&fx, "alice@acme|dev1|set_pixel|9|1|2|r\"ed"),
                        "{\"type\":\"set_pixel\",\"from\":\"alice@acme\",\"id\":9,\"args\":"
                        "[\"1\",\"2\",\"r\\\"ed\"]}");
    /* A counter that is not a canonical decimal stays text. */
    assert_string_equal(encode(&fx, "iotd|alice@acme|ERROR|7|code=busy|retry=03"),
                        "{\"type\":\"ERROR\",\"from\":\"iotd\",\"id\":7,\"code\":\"busy\","
                        "\"retry\":\"03\"}");
}

static void test_events(void **state)
{
    struct ws_frames fx = welcomed();
    (void)state;
    assert_string_equal(encode(&fx, "dev1|alice@acme|EVENT|1027|temperature|value=21.5|unit=C"),
                        "{\"type\":\"EVENT\",\"from\":\"dev1\",\"id\":1027,\"args\":"
                        "[\"temperature\"],\"value\":\"21.5\",\"unit\":\"C\"}");
    /* Reserved or repeated keys, and empty keys, stay positional. */
    assert_string_equal(encode(&fx, "dev1|alice@acme|ALARM|0|hot|type=x|value=1|value=2|=3"),
                        "{\"type\":\"ALARM\",\"from\":\"dev1\",\"id\":0,\"args\":[\"hot\","
                        "\"type=x\",\"value=2\",\"=3\"],\"value\":\"1\"}");
    assert_string_equal(encode(&fx, "iotd|alice@acme|NOTICE|0|dropped=12"),
                        "{\"type\":\"NOTICE\",\"from\":\"iotd\",\"id\":0,\"dropped\":12}");
    /* Invalid UTF-8 is repaired, so the text message is valid. */
    const char *json = encode(&fx, "dev1|alice@acme|OK|1|a\xff");
    assert_string_equal(
        json, "{\"type\":\"OK\",\"from\":\"dev1\",\"id\":1,\"args\":[\"a\xef\xbf\xbd\"]}");
}

static void test_encode_refusals(void **state)
{
    struct ws_frames fx = welcomed();
    char out[64];
    uint8_t frame[128];
    (void)state;
    size_t len = frame_of("a|b|c", frame);
    assert_int_equal(ws_frames_encode(&fx, frame, len, out, sizeof(out)), IOT_EINVAL);
    len = frame_of("a|b|c|x1", frame);
    assert_int_equal(ws_frames_encode(&fx, frame, len, out, sizeof(out)), IOT_EINVAL);
    len = frame_of("a|b|c|1", frame);
    assert_int_equal(ws_frames_encode(&fx, frame, len - 1, out, sizeof(out)), IOT_EINVAL);
    len = frame_of("dev1|alice@acme|OK|1|a very long answer that does not fit in 64 bytes", frame);
    assert_int_equal(ws_frames_encode(&fx, frame, len, out, sizeof(out)), IOT_EBUSY);
}

/* What a browser sends, once framed and printed back by the server, is what it sent. */
static void test_round_trip(void **state)
{
    struct ws_frames fx = welcomed();
    char reply[WS_FRAMES_REPLY_MAX], json[512];
    uint8_t out[512];
    (void)state;
    const char *msg = "{\"type\":\"SUBSCRIBE\",\"id\":3,\"device\":\"dév\",\"event\":\"t\"}";
    int n = ws_frames_decode(&fx, msg, strlen(msg), out, sizeof(out), reply);
    assert_true(n > 0);
    assert_true(ws_frames_encode(&fx, out, (size_t)n, json, sizeof(json)) > 0);
    assert_string_equal(json, "{\"type\":\"SUBSCRIBE\",\"from\":\"alice@acme\",\"id\":3,"
                              "\"device\":\"dév\",\"event\":\"t\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login),      cmocka_unit_test(test_welcome),
        cmocka_unit_test(test_requests),   cmocka_unit_test(test_system),
        cmocka_unit_test(test_refusals),   cmocka_unit_test(test_answers),
        cmocka_unit_test(test_events),     cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
