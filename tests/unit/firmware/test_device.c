/*
 * test_device.c - the device engine (iotp_device.h) fed scripted server bytes and a fake clock.
 *
 * The "server" here is the library's own server handshake (iotp_server_hs_*) plus frames built
 * with the frame writer; what the engine sends goes into a capture buffer that a parser reads
 * back frame by frame. Nothing runs in the background: every test says what arrives and when,
 * and checks what the engine sent and noted. Covered: the handshake (fed whole and one byte at
 * a time), keepalive both ways and a silent server, dispatch by name with parsed args (OK,
 * ERROR, unknown type, catch-all, a late answer, frames for someone else), events (queued
 * offline, ACK, busy with retry=, permanent refusal, retransmission after a reconnect,
 * persisted reservations), refusals and retry= in the backoff, the handshake deadline, BYE
 * both ways, a malformed frame, the polling port, and the rotation over several servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp.h"

#define DEV_ID "thermo-1"

/* Capture sizes; the Cortex-M0 run (m0/m0_tests.sh, 16 KB of RAM) shrinks them. */
#ifndef TEST_SENT_CAP
#define TEST_SENT_CAP 8192
#endif
#ifndef TEST_MAX_NOTES
#define TEST_MAX_NOTES 64
#endif

static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct world {
    uint64_t now;
    uint32_t counter;
    /* What the engine sent, not yet read by the test. */
    uint8_t sent[TEST_SENT_CAP];
    size_t sent_len, sent_read;
    int send_fail;
    /* Bytes a polling port will read. */
    uint8_t inbox[1024];
    size_t inbox_len, inbox_read;
    int recv_fail;
    /* persist store */
    uint32_t stored_mark;
    int stores, store_fail;
    /* notes */
    struct iotp_device_note notes[TEST_MAX_NOTES];
    char note_codes[TEST_MAX_NOTES][20];
    unsigned nnotes;
    int down_in_note; /* call transport_down from inside a CLOSE note, as a libuv port does */
    /* engine */
    struct iotp_device dev;
    uint8_t rx[512], tx[512];
    uint8_t storage[2048];
    struct iotp_server_hs shs;
};

static int32_t w_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct world *w = ctx;

    if (w->send_fail)
        return IOTP_EIO;
    assert_true(w->sent_len + len <= sizeof(w->sent));
    memcpy(w->sent + w->sent_len, buf, len);
    w->sent_len += len;
    return (int32_t)len;
}

static int32_t w_recv(void *ctx, uint8_t *buf, size_t len)
{
    struct world *w = ctx;
    size_t n = w->inbox_len - w->inbox_read;

    if (n == 0 && w->recv_fail)
        return IOTP_EIO;
    if (n > len)
        n = len;
    memcpy(buf, w->inbox + w->inbox_read, n);
    w->inbox_read += n;
    return (int32_t)n;
}

static uint64_t w_now(void *ctx)
{
    return ((struct world *)ctx)->now;
}

static int w_fill(void *ctx, uint8_t *buf, size_t len)
{
    struct world *w = ctx;

    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(w->counter++ * 37u + 11u);
    return 0;
}

static int w_store(void *ctx, uint32_t mark)
{
    struct world *w = ctx;

    if (w->store_fail)
        return IOTP_EIO;
    w->stored_mark = mark;
    w->stores++;
    return 0;
}

static void w_note(void *ctx, struct iotp_device *dev, const struct iotp_device_note *n)
{
    struct world *w = ctx;

    assert_true(w->nnotes < TEST_MAX_NOTES);
    w->notes[w->nnotes] = *n;
    snprintf(w->note_codes[w->nnotes], sizeof(w->note_codes[0]), "%s", n->code ? n->code : "");
    w->nnotes++;
    if (n->kind == IOTP_DEVICE_NOTE_CLOSE && w->down_in_note)
        iotp_device_transport_down(dev);
}

/* The last note of kind, or NULL. */
static const struct iotp_device_note *last_note(struct world *w, enum iotp_device_note_kind kind)
{
    for (unsigned i = w->nnotes; i-- > 0;)
        if (w->notes[i].kind == kind)
            return &w->notes[i];
    return NULL;
}

static unsigned count_notes(struct world *w, enum iotp_device_note_kind kind)
{
    unsigned n = 0;

    for (unsigned i = 0; i < w->nnotes; i++)
        n += w->notes[i].kind == kind;
    return n;
}

/* Whether the len bytes at hay hold the string needle. */
static int contains(const uint8_t *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return 1;
    return 0;
}

/* ---- reading what the engine sent ---- */

struct sent_frame {
    uint8_t buf[1024];
    struct iotp_parser p;
    struct iotp_frame f;
};

/* Parse the next frame the engine sent into *out (copied, valid until the next call on out).
 * Returns 1, or 0 when nothing more was sent. */
static int next_sent(struct world *w, struct sent_frame *out)
{
    const struct iotp_frame *f;
    size_t used;
    int r;

    if (w->sent_read == w->sent_len)
        return 0;
    assert_int_equal(iotp_parser_init(&out->p, out->buf, sizeof(out->buf), sizeof(out->buf), 0), 0);
    r = iotp_parser_feed(&out->p, w->sent + w->sent_read, w->sent_len - w->sent_read, &used, &f,
                         NULL);
    assert_int_equal(r, 1);
    w->sent_read += used;
    out->f = *f;
    return 1;
}

static void expect_sent(struct world *w, const char *type, uint32_t id)
{
    struct sent_frame s;

    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, type);
    assert_int_equal(s.f.id, id);
}

static void expect_nothing_sent(struct world *w)
{
    assert_int_equal(w->sent_len, w->sent_read);
}

/* ---- feeding the engine ---- */

static void feed_frame(struct world *w, const char *from, const char *to, const char *type,
                       uint32_t id, unsigned nargs, const char *const *args)
{
    uint8_t buf[512];
    struct iotp_writer wr;
    int n;

    iotp_writer_begin(&wr, buf, sizeof(buf), from, to, type, id);
    for (unsigned i = 0; i < nargs; i++)
        iotp_writer_arg(&wr, args[i]);
    n = iotp_writer_end(&wr);
    assert_true(n > 0);
    assert_int_equal(iotp_device_feed(&w->dev, buf, (size_t)n), 0);
}

#define FEED(w, type, id, ...)                                                                     \
    do {                                                                                           \
        const char *args_[] = {"", __VA_ARGS__};                                                   \
        feed_frame(w, "iotd", DEV_ID, type, id, sizeof(args_) / sizeof(args_[0]) - 1, args_ + 1);  \
    } while (0)

/* ---- handlers ---- */

static int h_read_temp(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                       struct iotp_device_answer *a)
{
    const char *unit = iotp_frame_arg(req, "unit");

    (void)ctx;
    (void)dev;
    if (unit && strcmp(unit, "K") == 0) {
        a->error_code = "bad_args";
        a->error_msg = "no kelvin";
        return IOTP_DEVICE_REPLY;
    }
    a->args[a->nargs++] = "21.5";
    a->args[a->nargs++] = unit ? unit : "C";
    return IOTP_DEVICE_REPLY;
}

/* set_pixel answers later: it keeps the request's id for the test to answer. */
static uint32_t held_id;
static char held_from[64];
static int h_set_pixel(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                       struct iotp_device_answer *a)
{
    (void)ctx;
    (void)dev;
    (void)a;
    assert_int_equal(req->nargs, 3);
    assert_string_equal(req->args[0], "3");
    held_id = req->id;
    snprintf(held_from, sizeof(held_from), "%s", req->from);
    return IOTP_DEVICE_NO_REPLY;
}

static unsigned catch_all_calls;
static int h_catch_all(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                       struct iotp_device_answer *a)
{
    (void)ctx;
    (void)dev;
    catch_all_calls++;
    a->args[a->nargs++] = req->type;
    return IOTP_DEVICE_REPLY;
}

static const struct iotp_device_handler handlers[] = {
    {"read_temp", h_read_temp, NULL},
    {"set_pixel", h_set_pixel, NULL},
};

static const struct iotp_device_handler handlers_catch_all[] = {
    {"read_temp", h_read_temp, NULL},
    {NULL, h_catch_all, NULL},
};

static const uint8_t wrong_key[32] = {0xff};

static struct world W;

static void setup_world(struct world *w, const struct iotp_device_handler *h, unsigned nh,
                        uint32_t ping_s)
{
    struct iotp_device_params p;
    struct iotp_device_platform pl;

    memset(w, 0, sizeof(*w));
    w->now = 1000000;
    memset(&p, 0, sizeof(p));
    p.device_id = DEV_ID;
    p.device_type = "thermo";
    p.fw_version = "1.0";
    p.key = key;
    p.ping_s = ping_s;
    p.handlers = h;
    p.nhandlers = nh;
    p.note = w_note;
    p.note_ctx = w;
    memset(&pl, 0, sizeof(pl));
    pl.transport.ctx = pl.clock.ctx = pl.random.ctx = pl.persist.ctx = w;
    pl.transport.send = w_send;
    pl.transport.recv = w_recv;
    pl.clock.now_ms = w_now;
    pl.random.fill = w_fill;
    pl.persist.store_high_water = w_store;
    assert_int_equal(iotp_device_init(&w->dev, &p, &pl, w->rx, sizeof(w->rx), w->tx, sizeof(w->tx)),
                     0);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_CONNECT);
}

/* Bring the transport up and play the server up to its CHALLENGE (into out), with the server
 * holding server_key. */
static void server_challenge(struct world *w, const uint8_t *server_key, uint8_t *out, size_t cap,
                             size_t *len)
{
    struct iotp_device_secret secret;
    struct iotp_random rnd = {w, w_fill};
    struct sent_frame s;

    assert_int_equal(iotp_device_transport_up(&w->dev), 0);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_HANDSHAKE);
    iotp_server_hs_init(&w->shs, &rnd);
    assert_int_equal(next_sent(w, &s), 1);
    assert_int_equal(iotp_server_hs_on_hello(&w->shs, &s.f), 0);
    assert_string_equal(w->shs.device_id, DEV_ID);
    memset(&secret, 0, sizeof(secret));
    secret.alg = IOTP_ALG_HMAC_SHA256;
    memcpy(secret.key, server_key, sizeof(secret.key));
    assert_int_equal(iotp_server_hs_challenge(&w->shs, &secret, out, cap, len), 0);
}

/* Run the server side of a handshake against what the engine sent; the server's frames are fed
 * whole, or one byte at a time when bytewise. ping_s is WELCOME's ping=. */
static void handshake(struct world *w, uint32_t ping_s, int bytewise)
{
    struct sent_frame s;
    uint8_t out[512];
    size_t len;

    if (iotp_device_state(&w->dev) != IOTP_DEVICE_CONNECTING)
        assert_int_equal(iotp_device_connecting(&w->dev), 0);
    server_challenge(w, key, out, sizeof(out), &len);
    if (bytewise) {
        for (size_t i = 0; i < len; i++)
            assert_int_equal(iotp_device_feed(&w->dev, out + i, 1), 0);
    } else {
        assert_int_equal(iotp_device_feed(&w->dev, out, len), 0);
    }
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "AUTH");
    assert_int_equal(iotp_server_hs_on_auth(&w->shs, &s.f, ping_s, 0, out, sizeof(out), &len),
                     IOTP_HS_DONE);
    if (bytewise) {
        for (size_t i = 0; i < len; i++)
            assert_int_equal(iotp_device_feed(&w->dev, out + i, 1), 0);
    } else {
        assert_int_equal(iotp_device_feed(&w->dev, out, len), 0);
    }
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_ONLINE);
    assert_non_null(last_note(w, IOTP_DEVICE_NOTE_ONLINE));
}

static void handshake_and_keepalive(void **state)
{
    struct world *w = &W;
    struct sent_frame s;
    uint32_t delay;

    (void)state;
    setup_world(w, handlers, 2, 0);
    handshake(w, 30, 1);
    assert_int_equal(iotp_device_ping_s(&w->dev), 30);
    assert_int_equal(iotp_device_next_timeout_ms(&w->dev), 30000);
    /* Nothing before the period. */
    w->now += 29999;
    iotp_device_tick(&w->dev);
    expect_nothing_sent(w);
    /* The PING, answered. */
    w->now += 1;
    iotp_device_tick(&w->dev);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "PING");
    assert_string_equal(s.f.from, DEV_ID);
    assert_string_equal(s.f.to, "iotd");
    FEED(w, "PONG", s.f.id);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_PONG)->id, s.f.id);
    /* The server's PING gets a PONG with its id. */
    FEED(w, "PING", 77);
    expect_sent(w, "PONG", 77);
    /* Next PING unanswered: at the following period the link is declared dead. */
    w->now += 30000;
    iotp_device_tick(&w->dev);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "PING");
    w->now += 30000;
    iotp_device_tick(&w->dev);
    expect_nothing_sent(w);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_CLOSING);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->error, IOTP_ETIMEOUT);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->was, IOTP_DEVICE_ONLINE);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->id, s.f.id);
    /* Bytes after the end are not acted on. */
    assert_int_equal(iotp_device_feed(&w->dev, (const uint8_t *)"x", 1), IOTP_ESTATE);
    /* The port closes; a short session: the first failure's window is 500 ms. */
    delay = iotp_device_transport_down(&w->dev);
    assert_true(delay <= 500);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_BACKOFF);
    assert_int_equal(iotp_device_next_timeout_ms(&w->dev), delay);
    w->now += delay;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_CONNECT);
    assert_non_null(last_note(w, IOTP_DEVICE_NOTE_CONNECT));
    /* A second session, fed whole frames; ping overridden by nobody: WELCOME's 0 = none. */
    handshake(w, 0, 0);
    assert_int_equal(iotp_device_next_timeout_ms(&w->dev), IOTP_DEVICE_NO_TIMEOUT);
}

static void ping_override(void **state)
{
    struct world *w = &W;

    (void)state;
    setup_world(w, handlers, 2, 5);
    handshake(w, 30, 0);
    assert_int_equal(iotp_device_ping_s(&w->dev), 5);
    w->now += 5000;
    iotp_device_tick(&w->dev);
    expect_sent(w, "PING", 1);
}

static void dispatch(void **state)
{
    struct world *w = &W;
    struct sent_frame s;
    struct iotp_device_answer later;

    (void)state;
    setup_world(w, handlers, 2, 0);
    handshake(w, 0, 0);
    /* A user's request, args parsed and answered OK with the handler's args. */
    feed_frame(w, "alice@demo", DEV_ID, "read_temp", 5, 1, (const char *[]){"unit=F"});
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.from, DEV_ID);
    assert_string_equal(s.f.to, "alice@demo");
    assert_string_equal(s.f.type, "OK");
    assert_int_equal(s.f.id, 5);
    assert_int_equal(s.f.nargs, 2);
    assert_string_equal(s.f.args[0], "21.5");
    assert_string_equal(s.f.args[1], "F");
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_ANSWERED)->id, 5);
    /* The handler's ERROR. */
    feed_frame(w, "alice@demo", DEV_ID, "read_temp", 6, 1, (const char *[]){"unit=K"});
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "ERROR");
    assert_string_equal(iotp_frame_arg(&s.f, "code"), "bad_args");
    assert_string_equal(iotp_frame_arg(&s.f, "msg"), "no kelvin");
    /* No handler: unknown_type. */
    feed_frame(w, "alice@demo", DEV_ID, "frobnicate", 7, 0, NULL);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "ERROR");
    assert_int_equal(s.f.id, 7);
    assert_string_equal(iotp_frame_arg(&s.f, "code"), "unknown_type");
    /* For another device, or a system frame from a user: ignored. */
    feed_frame(w, "alice@demo", "thermo-2", "read_temp", 8, 0, NULL);
    feed_frame(w, "alice@demo", DEV_ID, "PING", 9, 0, NULL);
    expect_nothing_sent(w);
    /* A late answer. */
    feed_frame(w, "bob@demo", DEV_ID, "set_pixel", 10, 3, (const char *[]){"3", "4", "red"});
    expect_nothing_sent(w);
    assert_int_equal(held_id, 10);
    memset(&later, 0, sizeof(later));
    later.args[later.nargs++] = "done";
    assert_int_equal(iotp_device_answer(&w->dev, held_from, held_id, &later), 0);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.to, "bob@demo");
    assert_string_equal(s.f.type, "OK");
    assert_int_equal(s.f.id, 10);
    assert_string_equal(s.f.args[0], "done");
    /* An answer the writer refuses (a control byte) goes as ERROR code=device, not silence. */
    later.args[0] = "bad\x01";
    assert_int_equal(iotp_device_answer(&w->dev, "bob@demo", 11, &later), 0);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "ERROR");
    assert_string_equal(iotp_frame_arg(&s.f, "code"), "device");
    /* Offline, a late answer is refused: its request died with the session. */
    FEED(w, "BYE", 0, "reason=kicked");
    assert_int_equal(iotp_device_answer(&w->dev, "bob@demo", 12, &later), IOTP_ESTATE);
}

static void dispatch_catch_all(void **state)
{
    struct world *w = &W;
    struct sent_frame s;

    (void)state;
    setup_world(w, handlers_catch_all, 2, 0);
    handshake(w, 0, 0);
    catch_all_calls = 0;
    feed_frame(w, "alice@demo", DEV_ID, "read_temp", 1, 0, NULL);
    feed_frame(w, "alice@demo", DEV_ID, "echo", 2, 0, NULL);
    assert_int_equal(catch_all_calls, 1);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.args[0], "21.5");
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "OK");
    assert_string_equal(s.f.args[0], "echo");
}

static void push(struct world *w, const char *value, uint32_t expect_seq)
{
    struct iotp_event_field f = {"value", value};
    uint32_t seq = 0;

    assert_int_equal(iotp_device_event(&w->dev, IOTP_EVENT, "temperature", 1, &f, &seq), 0);
    assert_int_equal(seq, expect_seq);
}

static void events(void **state)
{
    struct world *w = &W;
    struct iotp_event_field f = {"value", "1"};
    struct sent_frame s;
    const struct iotp_device_note *n;

    (void)state;
    setup_world(w, handlers, 2, 0);
    assert_int_equal(iotp_device_event(&w->dev, IOTP_EVENT, "temperature", 1, &f, NULL),
                     IOTP_ESTATE); /* no outbox yet */
    /* Resume above a mark persisted by an earlier run. */
    assert_int_equal(iotp_device_attach_outbox(&w->dev, w->storage, sizeof(w->storage), 5000), 0);
    assert_int_equal(iotp_device_attach_outbox(&w->dev, w->storage, sizeof(w->storage), 0),
                     IOTP_ESTATE);
    /* Offline: queued, nothing sent; the first push made a block durable first. */
    push(w, "20.0", 5001);
    push(w, "20.5", 5002);
    assert_int_equal(w->stores, 1);
    assert_int_equal(w->stored_mark, 5000 + IOTP_OUTBOX_RESERVE_BLOCK);
    expect_nothing_sent(w);
    /* Online: both go, oldest first; then a new one at once. */
    handshake(w, 0, 0);
    assert_int_equal(next_sent(w, &s), 1);
    assert_string_equal(s.f.type, "EVENT");
    assert_int_equal(s.f.id, 5001);
    assert_string_equal(s.f.args[0], "temperature");
    assert_string_equal(s.f.args[1], "value=20.0");
    expect_sent(w, "EVENT", 5002);
    push(w, "21.0", 5003);
    expect_sent(w, "EVENT", 5003);
    assert_int_equal(count_notes(w, IOTP_DEVICE_NOTE_EVENT_SENT), 3);
    /* ACK 5002 (answers may come in any order): noted with the stored frame. */
    FEED(w, "ACK", 5002);
    n = last_note(w, IOTP_DEVICE_NOTE_EVENT_ACKED);
    assert_non_null(n);
    assert_int_equal(n->id, 5002);
    assert_true(contains(n->frame, n->len, "value=20.5"));
    assert_int_equal(iotp_outbox_pending(iotp_device_outbox(&w->dev)), 2);
    FEED(w, "ACK", 4242);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_ACK_UNKNOWN)->id, 4242);
    /* busy retry=2 for 5001: paused for 2 s, then everything unacknowledged again in order. */
    FEED(w, "ERROR", 5001, "code=busy", "retry=2");
    n = last_note(w, IOTP_DEVICE_NOTE_EVENT_BUSY);
    assert_int_equal(n->id, 5001);
    assert_int_equal(n->value, 2);
    push(w, "22.0", 5004);
    expect_nothing_sent(w);
    assert_int_equal(iotp_device_next_timeout_ms(&w->dev), 2000);
    w->now += 1999;
    iotp_device_tick(&w->dev);
    expect_nothing_sent(w);
    w->now += 1;
    iotp_device_tick(&w->dev);
    expect_sent(w, "EVENT", 5001);
    expect_sent(w, "EVENT", 5003);
    expect_sent(w, "EVENT", 5004);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_EVENT_SENT)->value, 0); /* 5004: first time */
    /* A permanent refusal drops the event. */
    FEED(w, "ERROR", 5003, "code=unknown_type", "msg=nope");
    n = last_note(w, IOTP_DEVICE_NOTE_EVENT_DROPPED);
    assert_int_equal(n->id, 5003);
    assert_string_equal(w->note_codes[n - w->notes], "unknown_type");
    /* An ERROR about nothing of ours is only noted. */
    FEED(w, "ERROR", 99, "code=internal");
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_SERVER_ERROR)->id, 99);
    /* The connection drops; the next session sends 5001 and 5004 again, marked as resent. */
    assert_int_equal(iotp_device_transport_down(&w->dev) <= 500, 1);
    w->now += 1000;
    iotp_device_tick(&w->dev);
    handshake(w, 0, 0);
    expect_sent(w, "EVENT", 5001);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_EVENT_SENT)->value, 1);
    expect_sent(w, "EVENT", 5004);
    expect_nothing_sent(w);
    FEED(w, "ACK", 5001);
    FEED(w, "ACK", 5004);
    assert_int_equal(iotp_outbox_pending(iotp_device_outbox(&w->dev)), 0);
}

static void events_persist_failure(void **state)
{
    struct world *w = &W;
    struct iotp_event_field f = {"value", "1"};

    (void)state;
    setup_world(w, handlers, 2, 0);
    assert_int_equal(iotp_device_attach_outbox(&w->dev, w->storage, sizeof(w->storage), 0), 0);
    /* No durable number, no event: a reboot could hand the same number out again. */
    w->store_fail = 1;
    assert_int_equal(iotp_device_event(&w->dev, IOTP_EVENT, "temperature", 1, &f, NULL),
                     IOTP_ESTATE);
    w->store_fail = 0;
    push(w, "1", 1);
}

static void refused_with_retry(void **state)
{
    struct world *w = &W;
    struct sent_frame s;
    const struct iotp_device_note *n;
    uint8_t out[512];
    size_t len;
    uint32_t delay;

    (void)state;
    setup_world(w, handlers, 2, 0);
    server_challenge(w, wrong_key, out, sizeof(out), &len);
    assert_int_equal(iotp_device_feed(&w->dev, out, len), 0);
    assert_int_equal(next_sent(w, &s), 1);
    assert_int_equal(iotp_server_hs_on_auth(&w->shs, &s.f, 30, 7, out, sizeof(out), &len),
                     IOTP_EAUTH);
    w->down_in_note = 1; /* the port closes from inside the note */
    assert_int_equal(iotp_device_feed(&w->dev, out, len), 0);
    n = last_note(w, IOTP_DEVICE_NOTE_CLOSE);
    assert_int_equal(n->error, IOTP_EAUTH);
    assert_int_equal(n->was, IOTP_DEVICE_HANDSHAKE);
    assert_int_equal(n->value, 7);
    assert_string_equal(w->note_codes[n - w->notes], "auth");
    /* retry=7 is a floor: 7 s plus at most the 500 ms window. */
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_BACKOFF);
    delay = iotp_device_next_timeout_ms(&w->dev);
    assert_true(delay >= 7000 && delay <= 7500);
    /* The hint is for one delay only. */
    w->now += delay;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_connecting(&w->dev), 0);
    assert_int_equal(iotp_device_transport_down(&w->dev) <= 1000, 1);
}

static void impostor_server(void **state)
{
    struct world *w = &W;
    struct sent_frame s;
    uint8_t out[512];
    size_t len;

    (void)state;
    setup_world(w, handlers, 2, 0);
    server_challenge(w, key, out, sizeof(out), &len);
    assert_int_equal(iotp_device_feed(&w->dev, out, len), 0);
    assert_int_equal(next_sent(w, &s), 1);
    /* A WELCOME whose mac is not the server's. */
    FEED(w, "WELCOME", 2, "mac=0000000000000000000000000000000000000000000000000000000000000000",
         "ping=30");
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->error, IOTP_EAUTH);
    assert_null(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->code);
    assert_null(last_note(w, IOTP_DEVICE_NOTE_ONLINE));
}

static void handshake_deadline(void **state)
{
    struct world *w = &W;

    (void)state;
    setup_world(w, handlers, 2, 0);
    assert_int_equal(iotp_device_connecting(&w->dev), 0);
    assert_int_equal(iotp_device_next_timeout_ms(&w->dev), IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS);
    w->now += 4000; /* connecting took 4 s: 6 s left for the handshake */
    assert_int_equal(iotp_device_transport_up(&w->dev), 0);
    assert_int_equal(iotp_device_next_timeout_ms(&w->dev), IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS - 4000);
    w->now += 6000;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_CLOSING);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->error, IOTP_ETIMEOUT);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->was, IOTP_DEVICE_HANDSHAKE);
}

static void bye_both_ways_and_bad_frames(void **state)
{
    struct world *w = &W;
    const struct iotp_device_note *n;

    (void)state;
    setup_world(w, handlers, 2, 0);
    handshake(w, 0, 0);
    /* A malformed frame is noted and skipped; the next one is acted on. */
    assert_int_equal(iotp_device_feed(&w->dev,
                                      (const uint8_t *)"iotd\x1f\x1fPING\x1f"
                                                       "1\x04",
                                      13),
                     0);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_BAD_FRAME)->error, IOTP_EEMPTY_FIELD);
    FEED(w, "PING", 3);
    expect_sent(w, "PONG", 3);
    /* The server's BYE with its reason and a retry=. */
    FEED(w, "BYE", 0, "reason=replaced", "retry=4");
    n = last_note(w, IOTP_DEVICE_NOTE_CLOSE);
    assert_int_equal(n->error, 0);
    assert_string_equal(w->note_codes[n - w->notes], "replaced");
    assert_true(iotp_device_transport_down(&w->dev) >= 4000);
    /* Our BYE at stop, and nothing after. */
    w->now += 10000;
    iotp_device_tick(&w->dev);
    handshake(w, 0, 0);
    assert_int_equal(iotp_device_stop(&w->dev), 1);
    expect_sent(w, "BYE", 0);
    assert_int_equal(iotp_device_transport_down(&w->dev), 0);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_STOPPED);
    w->now += 100000;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_STOPPED);
}

static void send_failure_ends_session(void **state)
{
    struct world *w = &W;

    (void)state;
    setup_world(w, handlers, 2, 0);
    handshake(w, 0, 0);
    w->send_fail = 1;
    FEED(w, "PING", 4);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_CLOSING);
    assert_int_equal(last_note(w, IOTP_DEVICE_NOTE_CLOSE)->error, IOTP_EIO);
}

static void polling_port(void **state)
{
    struct world *w = &W;
    struct sent_frame s;
    size_t len;

    (void)state;
    setup_world(w, handlers, 2, 0);
    server_challenge(w, key, w->inbox, sizeof(w->inbox), &len);
    w->inbox_len = len;
    assert_int_equal(iotp_device_poll(&w->dev), 0);
    assert_int_equal(next_sent(w, &s), 1);
    assert_int_equal(iotp_server_hs_on_auth(&w->shs, &s.f, 10, 0, w->inbox + w->inbox_len,
                                            sizeof(w->inbox) - w->inbox_len, &len),
                     IOTP_HS_DONE);
    w->inbox_len += len;
    assert_int_equal(iotp_device_poll(&w->dev), 0);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_ONLINE);
    /* Time passes between polls: the PING goes from poll's tick. */
    w->now += 10000;
    assert_int_equal(iotp_device_poll(&w->dev), 0);
    expect_sent(w, "PING", 1);
    /* The peer closes: the poll reports it and the engine backs off. */
    w->recv_fail = 1;
    assert_int_equal(iotp_device_poll(&w->dev), IOTP_EIO);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_BACKOFF);
}

/* Several addresses: the first is first_server mod their number, and every attempt that ends
 * (a connection that never opened, a session lost) moves to the next, wrapping around. */
static void server_rotation(void **state)
{
    static const struct iotp_server servers[3] = {{"a", 1}, {"b", 2}, {"c", 3}};
    struct world *w = &W;
    struct iotp_device_params p;
    struct iotp_device_platform pl;

    (void)state;
    setup_world(w, handlers, 2, 0);
    assert_null(iotp_device_server(&w->dev));
    assert_int_equal(iotp_device_server_index(&w->dev), 0);
    p = w->dev.params;
    pl = w->dev.platform;
    p.servers = servers;
    p.nservers = 3;
    p.first_server = 7; /* device 7 of a fleet: starts at 7 mod 3 = 1 */
    assert_int_equal(iotp_device_init(&w->dev, &p, &pl, w->rx, sizeof(w->rx), w->tx, sizeof(w->tx)),
                     0);
    assert_string_equal(iotp_device_server(&w->dev)->host, "b");
    assert_int_equal(iotp_device_server(&w->dev)->port, 2);
    /* b is online, then lost: the next attempt goes to c. */
    handshake(w, 0, 0);
    assert_string_equal(iotp_device_server(&w->dev)->host, "b");
    assert_true(iotp_device_transport_down(&w->dev) > 0);
    assert_string_equal(iotp_device_server(&w->dev)->host, "c");
    /* A repeated transport_down in BACKOFF is no attempt: c stays current. */
    assert_int_equal(iotp_device_transport_down(&w->dev), 0);
    assert_int_equal(iotp_device_server_index(&w->dev), 2);
    /* c does not open: a; a's handshake times out: b again. */
    w->now += 100000;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_connecting(&w->dev), 0);
    iotp_device_transport_down(&w->dev);
    assert_string_equal(iotp_device_server(&w->dev)->host, "a");
    w->now += 100000;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_transport_up(&w->dev), 0);
    w->now += IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS;
    iotp_device_tick(&w->dev);
    assert_int_equal(iotp_device_state(&w->dev), IOTP_DEVICE_CLOSING);
    iotp_device_transport_down(&w->dev);
    assert_string_equal(iotp_device_server(&w->dev)->host, "b");
    /* A list without servers is none, whatever the count says. */
    p.servers = NULL;
    assert_int_equal(iotp_device_init(&w->dev, &p, &pl, w->rx, sizeof(w->rx), w->tx, sizeof(w->tx)),
                     0);
    assert_null(iotp_device_server(&w->dev));
    iotp_device_transport_down(&w->dev);
    assert_int_equal(iotp_device_server_index(&w->dev), 0);
}

static void bad_init(void **state)
{
    struct world *w = &W;
    struct iotp_device_params p;
    struct iotp_device_platform pl;

    (void)state;
    setup_world(w, handlers, 2, 0);
    p = w->dev.params;
    pl = w->dev.platform;
    p.key = NULL;
    assert_int_equal(iotp_device_init(&w->dev, &p, &pl, w->rx, sizeof(w->rx), w->tx, sizeof(w->tx)),
                     IOTP_EINVAL);
    p.key = key;
    pl.clock.now_ms = NULL;
    assert_int_equal(iotp_device_init(&w->dev, &p, &pl, w->rx, sizeof(w->rx), w->tx, sizeof(w->tx)),
                     IOTP_EINVAL);
    pl.clock.now_ms = w_now;
    assert_int_equal(iotp_device_init(&w->dev, &p, &pl, w->rx, 64, w->tx, sizeof(w->tx)),
                     IOTP_EINVAL);
    assert_string_equal(iotp_device_state_name(IOTP_DEVICE_ONLINE), "online");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_and_keepalive),
        cmocka_unit_test(ping_override),
        cmocka_unit_test(dispatch),
        cmocka_unit_test(dispatch_catch_all),
        cmocka_unit_test(events),
        cmocka_unit_test(events_persist_failure),
        cmocka_unit_test(refused_with_retry),
        cmocka_unit_test(impostor_server),
        cmocka_unit_test(handshake_deadline),
        cmocka_unit_test(bye_both_ways_and_bad_frames),
        cmocka_unit_test(send_failure_ends_session),
        cmocka_unit_test(polling_port),
        cmocka_unit_test(server_rotation),
        cmocka_unit_test(bad_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
