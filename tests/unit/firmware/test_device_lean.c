/*
 * test_device_lean.c - the device engine as the thermometer builds it: IOTP_DEVICE_NOTES=0 and
 * IOTP_DEVICE_ATECC=0 (CMakeLists.txt compiles the library's sources into this test with both).
 *
 * The size test (m0/m0_size.sh) measures that build; this one runs it. Without notes the engine
 * must still do everything a note used to carry alongside: BYE's retry= as the backoff's floor,
 * a busy event's pause, keepalive's verdict. Without the chip's path an ATECC508A device is
 * refused at init, and the HMAC handshake is the same bytes as ever (the library's own server
 * handshake, built with the defaults' code, accepts it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp.h"

#if IOTP_DEVICE_NOTES || IOTP_DEVICE_ATECC
#error "test_device_lean is built with IOTP_DEVICE_NOTES=0 and IOTP_DEVICE_ATECC=0"
#endif

#define DEV_ID "thermo-1"

static const uint8_t key[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 9};

static struct lean {
    uint64_t now;
    uint8_t counter;
    uint8_t sent[4096];
    size_t sent_len, sent_read;
    struct iotp_device dev;
    uint8_t rx[512], tx[512], storage[1024];
    struct iotp_server_hs shs;
    struct iotp_device_params params;
    struct iotp_device_platform platform;
    uint8_t pbuf[512];
    struct iotp_parser p;
} L;

static int32_t l_send(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    assert_true(L.sent_len + len <= sizeof(L.sent));
    memcpy(L.sent + L.sent_len, buf, len);
    L.sent_len += len;
    return (int32_t)len;
}

static uint64_t l_now(void *ctx)
{
    (void)ctx;
    return L.now;
}

static int l_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = L.counter = (uint8_t)(L.counter + 91);
    return 0;
}

static void l_note(void *ctx, struct iotp_device *dev, const struct iotp_device_note *n)
{
    (void)ctx;
    (void)dev;
    (void)n;
    fail_msg("a note in a build without notes");
}

static int h_read_temp(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                       struct iotp_device_answer *a)
{
    (void)ctx;
    (void)dev;
    (void)req;
    a->args[a->nargs++] = "21.5";
    a->args[a->nargs++] = "C";
    return IOTP_DEVICE_REPLY;
}

static const struct iotp_device_handler handlers[] = {{"read_temp", h_read_temp, NULL}};

/* The next frame the engine sent, of this type (its fields valid until the next call). */
static const struct iotp_frame *sent(const char *type)
{
    const struct iotp_frame *f;
    size_t used;

    assert_true(L.sent_read < L.sent_len);
    assert_int_equal(iotp_parser_init(&L.p, L.pbuf, sizeof(L.pbuf), sizeof(L.pbuf), 0), 0);
    assert_int_equal(
        iotp_parser_feed(&L.p, L.sent + L.sent_read, L.sent_len - L.sent_read, &used, &f, NULL), 1);
    L.sent_read += used;
    assert_string_equal(f->type, type);
    return f;
}

static void feed(const char *type, uint32_t id, const char *arg)
{
    uint8_t buf[256];
    struct iotp_writer w;
    int n;

    iotp_writer_begin(&w, buf, sizeof(buf), "iotd", DEV_ID, type, id);
    if (arg)
        iotp_writer_arg(&w, arg);
    n = iotp_writer_end(&w);
    assert_true(n > 0);
    assert_int_equal(iotp_device_feed(&L.dev, buf, (size_t)n), 0);
}

static void setup(void)
{
    memset(&L, 0, sizeof(L));
    L.now = 5000000;
    L.params.device_id = DEV_ID;
    L.params.device_type = "thermo";
    L.params.fw_version = "1.0";
    L.params.key = key;
    L.params.handlers = handlers;
    L.params.nhandlers = 1;
    L.platform.transport.send = l_send;
    L.platform.clock.now_ms = l_now;
    L.platform.random.fill = l_fill;
    assert_int_equal(
        iotp_device_init(&L.dev, &L.params, &L.platform, L.rx, sizeof(L.rx), L.tx, sizeof(L.tx)),
        0);
    assert_int_equal(iotp_device_attach_outbox(&L.dev, L.storage, sizeof(L.storage), 0), 0);
}

/* HELLO, CHALLENGE, AUTH, WELCOME with the library's server side. */
static void handshake(uint32_t ping_s)
{
    struct iotp_random rnd = {NULL, l_fill};
    struct iotp_device_secret secret;
    uint8_t out[512];
    size_t len;

    assert_int_equal(iotp_device_transport_up(&L.dev), 0);
    iotp_server_hs_init(&L.shs, &rnd);
    assert_int_equal(iotp_server_hs_on_hello(&L.shs, sent("HELLO")), 0);
    memset(&secret, 0, sizeof(secret));
    secret.alg = IOTP_ALG_HMAC_SHA256;
    memcpy(secret.key, key, sizeof(key));
    assert_int_equal(iotp_server_hs_challenge(&L.shs, &secret, out, sizeof(out), &len), 0);
    assert_int_equal(iotp_device_feed(&L.dev, out, len), 0);
    assert_int_equal(
        iotp_server_hs_on_auth(&L.shs, sent("AUTH"), ping_s, 0, out, sizeof(out), &len),
        IOTP_HS_DONE);
    assert_int_equal(iotp_device_feed(&L.dev, out, len), 0);
    assert_int_equal(iotp_device_state(&L.dev), IOTP_DEVICE_ONLINE);
}

static void refuses_notes_and_the_chip(void **state)
{
    struct iotp_atecc_chip chip;
    struct iotp_device dev;

    (void)state;
    setup();
    L.params.note = l_note;
    assert_int_equal(
        iotp_device_init(&dev, &L.params, &L.platform, L.rx, sizeof(L.rx), L.tx, sizeof(L.tx)),
        IOTP_EINVAL);
    L.params.note = NULL;
    memset(&chip, 0, sizeof(chip));
    L.params.alg = IOTP_ALG_ATECC508A_MAC;
    L.params.chip = &chip;
    assert_int_equal(
        iotp_device_init(&dev, &L.params, &L.platform, L.rx, sizeof(L.rx), L.tx, sizeof(L.tx)),
        IOTP_EINVAL);
}

static void session(void **state)
{
    struct iotp_event_field field = {"value", "21.5"};
    const struct iotp_frame *f;
    uint32_t seq, ping_id;

    (void)state;
    setup();
    /* An event made offline goes out once online. */
    assert_int_equal(iotp_device_event(&L.dev, IOTP_EVENT, "temperature", 1, &field, &seq), 0);
    handshake(30);
    assert_int_equal(sent("EVENT")->id, seq);
    /* A request, answered; an unknown type refused. */
    feed("read_temp", 41, NULL);
    f = sent("OK");
    assert_int_equal(f->id, 41);
    assert_int_equal(f->nargs, 2);
    assert_string_equal(f->args[0], "21.5");
    feed("nope", 42, NULL);
    assert_string_equal(iotp_frame_arg(sent("ERROR"), "code"), "unknown_type");
    /* busy retry=2 pauses the outbox for 2 s, then the event goes again; ACK takes it. */
    feed("ERROR", seq, "code=busy");
    assert_int_equal(iotp_outbox_paused(iotp_device_outbox(&L.dev)), 1);
    assert_int_equal(iotp_device_next_timeout_ms(&L.dev), 1000); /* no retry=: the default 1 s */
    L.now += 1000;
    iotp_device_tick(&L.dev);
    assert_int_equal(sent("EVENT")->id, seq);
    feed("ACK", seq, NULL);
    assert_int_equal(iotp_outbox_pending(iotp_device_outbox(&L.dev)), 0);
    /* The server's PING gets PONG; ours goes after 30 s, and unanswered ends the session. */
    feed("PING", 9, NULL);
    assert_int_equal(sent("PONG")->id, 9);
    L.now += 30000;
    iotp_device_tick(&L.dev);
    ping_id = sent("PING")->id;
    feed("PONG", ping_id, NULL);
    L.now += 30000;
    iotp_device_tick(&L.dev);
    (void)sent("PING");
    L.now += 30000;
    iotp_device_tick(&L.dev);
    assert_int_equal(iotp_device_state(&L.dev), IOTP_DEVICE_CLOSING);
    assert_true(iotp_device_transport_down(&L.dev) <= 500);
    assert_int_equal(L.sent_read, L.sent_len);
}

/* BYE's retry= is the next backoff's floor, with or without notes to carry it. */
static void bye_retry_is_the_floor(void **state)
{
    (void)state;
    setup();
    handshake(0);
    feed("BYE", 0, "retry=30");
    assert_int_equal(iotp_device_state(&L.dev), IOTP_DEVICE_CLOSING);
    assert_true(iotp_device_transport_down(&L.dev) >= 30000);
    /* A refused handshake's retry= too. */
    L.now += 60000;
    iotp_device_tick(&L.dev);
    assert_int_equal(iotp_device_state(&L.dev), IOTP_DEVICE_CONNECT);
    assert_int_equal(iotp_device_transport_up(&L.dev), 0);
    (void)sent("HELLO");
    {
        uint8_t buf[128];
        int n = iotp_frame_write_error(buf, sizeof(buf), "iotd", DEV_ID, 1, "busy", 20, NULL);
        assert_true(n > 0);
        assert_int_equal(iotp_device_feed(&L.dev, buf, (size_t)n), 0);
    }
    assert_int_equal(iotp_device_state(&L.dev), IOTP_DEVICE_CLOSING);
    assert_true(iotp_device_transport_down(&L.dev) >= 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refuses_notes_and_the_chip),
        cmocka_unit_test(session),
        cmocka_unit_test(bye_retry_is_the_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
