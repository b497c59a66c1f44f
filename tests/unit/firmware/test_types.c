/*
 * test_types.c - the frame-type table: every system type looks up to itself and only to
 * itself (near misses, prefixes and other cases are not types), lower case is an application
 * type, and the direction/state rules of iot-protocol(7) hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp.h"

static enum iotp_type lookup(const char *name)
{
    return iotp_type_lookup(name, strlen(name));
}

static void test_every_row_round_trips(void **state)
{
    (void)state;
    for (int t = IOTP_TYPE_HELLO; t < IOTP_TYPE_COUNT; t++) {
        const char *name = iotp_type_name((enum iotp_type)t);
        assert_non_null(name);
        assert_int_equal(lookup(name), t);
        /* Every prefix and every one-byte change of a name is not that type. */
        size_t len = strlen(name);
        for (size_t cut = 1; cut < len; cut++)
            assert_int_not_equal(iotp_type_lookup(name, cut), t);
        char copy[32];
        assert_true(len < sizeof(copy));
        for (size_t i = 0; i < len; i++) {
            memcpy(copy, name, len + 1);
            copy[i] = (char)(copy[i] == 'X' ? 'Y' : 'X');
            assert_int_not_equal(lookup(copy), t);
        }
    }
    assert_null(iotp_type_name(IOTP_TYPE_UNKNOWN));
    assert_null(iotp_type_name(IOTP_TYPE_APP));
    assert_null(iotp_type_name(IOTP_TYPE_COUNT));
}

static void test_application_and_unknown(void **state)
{
    (void)state;
    assert_int_equal(lookup("read_temp"), IOTP_TYPE_APP);
    assert_int_equal(lookup("x"), IOTP_TYPE_APP);
    assert_int_equal(lookup("ok"), IOTP_TYPE_APP); /* lower case is never a system type */
    assert_int_equal(lookup("Hello"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("OKAY"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("EVENTS"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("PINGPONG"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("PRESENTS"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("QUERIES"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("ROWS"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("ZAP"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup("_x"), IOTP_TYPE_UNKNOWN);
    assert_int_equal(lookup(""), IOTP_TYPE_UNKNOWN);
    assert_int_equal(iotp_type_lookup(NULL, 3), IOTP_TYPE_UNKNOWN);
    /* The length given is what counts, not a NUL further on. */
    assert_int_equal(iotp_type_lookup("ACKNOWLEDGE", 3), IOTP_TYPE_ACK);
}

static void test_frame_type(void **state)
{
    (void)state;
    struct iotp_frame f = {.from = "dev1", .to = "iotd", .type = "EVENT", .id = 3};
    assert_int_equal(iotp_frame_type(&f), IOTP_TYPE_EVENT);
    f.type = "read_temp";
    assert_int_equal(iotp_frame_type(&f), IOTP_TYPE_APP);
    f.type = NULL;
    assert_int_equal(iotp_frame_type(&f), IOTP_TYPE_UNKNOWN);
    assert_int_equal(iotp_frame_type(NULL), IOTP_TYPE_UNKNOWN);
}

static void test_directions_and_states(void **state)
{
    (void)state;
    assert_true(
        iotp_type_allowed(IOTP_TYPE_HELLO, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_HANDSHAKE));
    assert_false(iotp_type_allowed(IOTP_TYPE_HELLO, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_DEVICE));
    assert_true(
        iotp_type_allowed(IOTP_TYPE_LOGIN, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_HANDSHAKE));
    assert_false(
        iotp_type_allowed(IOTP_TYPE_LOGIN, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_HANDSHAKE));
    assert_true(iotp_type_allowed(IOTP_TYPE_EVENT, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_DEVICE));
    assert_false(
        iotp_type_allowed(IOTP_TYPE_EVENT, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_HANDSHAKE));
    assert_false(iotp_type_allowed(IOTP_TYPE_EVENT, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_true(iotp_type_allowed(IOTP_TYPE_LEASE, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_false(iotp_type_allowed(IOTP_TYPE_LEASE, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_DEVICE));
    assert_true(iotp_type_allowed(IOTP_TYPE_ACK, IOTP_DIR_SERVER_TO_DEVICE, IOTP_STATE_DEVICE));
    /* A client acknowledges alarms; a device never sends ACK. */
    assert_true(iotp_type_allowed(IOTP_TYPE_ACK, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_false(iotp_type_allowed(IOTP_TYPE_ACK, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_DEVICE));
    assert_true(iotp_type_allowed(IOTP_TYPE_QUERY, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_false(iotp_type_allowed(IOTP_TYPE_QUERY, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_DEVICE));
    assert_true(iotp_type_allowed(IOTP_TYPE_ROW, IOTP_DIR_SERVER_TO_CLIENT, IOTP_STATE_CLIENT));
    assert_false(iotp_type_allowed(IOTP_TYPE_ROW, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_true(
        iotp_type_allowed(IOTP_TYPE_PRESENCE, IOTP_DIR_SERVER_TO_CLIENT, IOTP_STATE_CLIENT));
    assert_false(
        iotp_type_allowed(IOTP_TYPE_PRESENCE, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_true(iotp_type_allowed(IOTP_TYPE_APP, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_CLIENT));
    assert_false(iotp_type_allowed(IOTP_TYPE_APP, IOTP_DIR_CLIENT_TO_SERVER, IOTP_STATE_HANDSHAKE));
    assert_true(
        iotp_type_allowed(IOTP_TYPE_ERROR, IOTP_DIR_SERVER_TO_DEVICE, IOTP_STATE_HANDSHAKE));
    for (unsigned dir = 1; dir <= 8; dir <<= 1)
        for (unsigned st = 1; st <= 4; st <<= 1)
            assert_false(iotp_type_allowed(IOTP_TYPE_UNKNOWN, dir, st));
    assert_false(iotp_type_allowed(IOTP_TYPE_COUNT, IOTP_DIR_DEVICE_TO_SERVER, IOTP_STATE_DEVICE));
}

static void test_error_builder(void **state)
{
    (void)state;
    uint8_t buf[256], pbuf[256];
    int n = iotp_frame_write_error(buf, sizeof(buf), "iotd", "dev1", 9, "busy", 3, "queue full");
    assert_true(n > 0);
    struct iotp_parser p;
    assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), sizeof(pbuf), 0), 0);
    const struct iotp_frame *f;
    size_t used;
    assert_int_equal(iotp_parser_feed(&p, buf, (size_t)n, &used, &f, NULL), 1);
    assert_int_equal(iotp_frame_type(f), IOTP_TYPE_ERROR);
    assert_int_equal(f->id, 9);
    assert_int_equal(f->nargs, 3);
    assert_string_equal(f->args[0], "code=busy");
    assert_string_equal(f->args[1], "retry=3");
    assert_string_equal(f->args[2], "msg=queue full");
    /* No retry and an empty message: only the code. */
    n = iotp_frame_write_error(buf, sizeof(buf), "iotd", "dev1", 1, "auth", 0, "");
    assert_true(n > 0);
    assert_int_equal(iotp_parser_feed(&p, buf, (size_t)n, &used, &f, NULL), 1);
    assert_int_equal(f->nargs, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_round_trips),
        cmocka_unit_test(test_application_and_unknown),
        cmocka_unit_test(test_frame_type),
        cmocka_unit_test(test_directions_and_states),
        cmocka_unit_test(test_error_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
