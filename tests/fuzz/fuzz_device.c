/*
 * fuzz_device.c - libFuzzer target for the device engine (firmware/src/iotp_device.c): an
 * engine brought online by a real handshake against the library's server machine, then fed
 * arbitrary server bytes with time passing and events being pushed in between.
 *
 * The input is read as commands: a byte c, then for c < 0xf0 the next (c % 64) + 1 bytes are
 * fed to the engine at once; 0xf0..0xf7 advance the clock by (c - 0xef) * 700 ms and tick;
 * 0xf8..0xfb push an event; 0xfc..0xff feed one canned frame (PING, ACK of the last event,
 * ERROR code=busy for it, a request for a registered type). Whenever the engine ends the
 * session the harness closes, waits out the backoff and handshakes again.
 *
 * Properties checked (a failure aborts):
 *   - everything the engine sends parses as frames from the device, to the server or to the
 *     sender of a request, none longer than the frame limit;
 *   - the state is always one of the engine's, and a session ends only through CLOSE;
 *   - a lost session comes back: backoff, CONNECT, a handshake that completes;
 *   - the outbox never holds more than was pushed, and an ACK never removes an event that was
 *     not sent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotp/iotp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEVICE_ID "dev1"

static void check(int ok)
{
    if (!ok)
        abort();
}

struct harness {
    uint64_t now;
    uint32_t rnd;
    uint8_t sent[2 * IOTP_MAX_FRAME];
    size_t sent_len;
    unsigned closes, pushed;
    uint32_t last_seq;
    struct iotp_server_hs srv;
    struct iotp_device dev;
    uint8_t rx[IOTP_MAX_FRAME], tx[IOTP_MAX_FRAME], storage[1024];
};

static const uint8_t key[IOTP_KEY_LEN] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static int fill(void *ctx, uint8_t *buf, size_t len)
{
    struct harness *h = ctx;
    for (size_t i = 0; i < len; i++) {
        h->rnd = h->rnd * 1103515245u + 12345u;
        buf[i] = (uint8_t)(h->rnd >> 16);
    }
    return 0;
}

static uint64_t now_ms(void *ctx)
{
    return ((struct harness *)ctx)->now;
}

/* Everything sent must be well-formed frames from the device; the last one is kept parsed for
 * the handshake. */
static uint8_t last_buf[IOTP_MAX_FRAME];
static struct iotp_frame last_frame;
static int last_valid;

static int32_t send_bytes(void *ctx, const uint8_t *buf, size_t len)
{
    static struct iotp_parser p;
    const struct iotp_frame *f;
    size_t used;

    (void)ctx;
    check(len > 0 && len <= IOTP_MAX_FRAME);
    check(iotp_parser_init(&p, last_buf, sizeof(last_buf), 0, 0) == 0);
    check(iotp_parser_feed(&p, buf, len, &used, &f, NULL) == 1 && used == len);
    check(strcmp(f->from, DEVICE_ID) == 0);
    last_frame = *f;
    last_valid = 1;
    return (int32_t)len;
}

static void note(void *ctx, struct iotp_device *dev, const struct iotp_device_note *n)
{
    struct harness *h = ctx;

    (void)dev;
    if (n->kind == IOTP_DEVICE_NOTE_CLOSE)
        h->closes++;
    if (n->kind == IOTP_DEVICE_NOTE_EVENT_ACKED)
        check(n->frame && n->len > 0 && n->id <= h->last_seq);
}

static int handler(void *ctx, struct iotp_device *dev, const struct iotp_frame *req,
                   struct iotp_device_answer *a)
{
    (void)ctx;
    (void)dev;
    for (unsigned i = 0; i < req->nargs && a->nargs < IOTP_DEVICE_ANSWER_ARGS; i++)
        a->args[a->nargs++] = req->args[i];
    if (req->nargs == 1)
        a->error_code = req->args[0]; /* may be refused by the writer: the engine copes */
    return IOTP_DEVICE_REPLY;
}

static const struct iotp_device_handler handlers[] = {{"echo", handler, NULL}};

static void feed(struct harness *h, const uint8_t *buf, size_t len)
{
    enum iotp_device_state before = iotp_device_state(&h->dev);
    unsigned closes = h->closes;

    iotp_device_feed(&h->dev, buf, len);
    /* A session ends only through CLOSE. */
    if (iotp_device_state(&h->dev) == IOTP_DEVICE_CLOSING)
        check(h->closes > closes || before == IOTP_DEVICE_CLOSING);
}

/* Bring the engine online again: close, wait out the backoff, handshake with the server. */
static void reconnect(struct harness *h)
{
    struct iotp_device_secret secret;
    struct iotp_random r = {h, fill};
    uint8_t out[IOTP_MAX_FRAME];
    size_t len;

    if (iotp_device_state(&h->dev) == IOTP_DEVICE_ONLINE)
        return;
    if (iotp_device_state(&h->dev) != IOTP_DEVICE_CONNECT) {
        iotp_device_transport_down(&h->dev);
        check(iotp_device_state(&h->dev) == IOTP_DEVICE_BACKOFF);
        h->now += iotp_device_next_timeout_ms(&h->dev);
        iotp_device_tick(&h->dev);
        check(iotp_device_state(&h->dev) == IOTP_DEVICE_CONNECT);
    }
    last_valid = 0;
    check(iotp_device_transport_up(&h->dev) == 0 && last_valid);
    iotp_server_hs_init(&h->srv, &r);
    check(iotp_server_hs_on_hello(&h->srv, &last_frame) == 0);
    memset(&secret, 0, sizeof(secret));
    secret.alg = IOTP_ALG_HMAC_SHA256;
    memcpy(secret.key, key, sizeof(key));
    check(iotp_server_hs_challenge(&h->srv, &secret, out, sizeof(out), &len) == 0);
    last_valid = 0;
    feed(h, out, len);
    check(last_valid);
    check(iotp_server_hs_on_auth(&h->srv, &last_frame, 30, 0, out, sizeof(out), &len) ==
          IOTP_HS_DONE);
    feed(h, out, len);
    check(iotp_device_state(&h->dev) == IOTP_DEVICE_ONLINE);
}

static void canned(struct harness *h, unsigned which)
{
    uint8_t buf[256];
    struct iotp_writer w;
    int n;

    switch (which) {
    case 0:
        iotp_writer_begin(&w, buf, sizeof(buf), "iotd", DEVICE_ID, "PING", 7);
        break;
    case 1:
        iotp_writer_begin(&w, buf, sizeof(buf), "iotd", DEVICE_ID, "ACK", h->last_seq);
        break;
    case 2:
        iotp_writer_begin(&w, buf, sizeof(buf), "iotd", DEVICE_ID, "ERROR", h->last_seq);
        iotp_writer_kv(&w, "code", "busy");
        iotp_writer_kv(&w, "retry", "2");
        break;
    default:
        iotp_writer_begin(&w, buf, sizeof(buf), "u@t", DEVICE_ID, "echo", 3);
        iotp_writer_arg(&w, "x");
        iotp_writer_arg(&w, "y");
        break;
    }
    n = iotp_writer_end(&w);
    check(n > 0);
    feed(h, buf, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    struct iotp_device_params p;
    struct iotp_device_platform pl;
    const struct iotp_outbox *ob;
    size_t i = 0;

    memset(&h, 0, sizeof(h));
    h.now = 5000;
    memset(&p, 0, sizeof(p));
    p.device_id = DEVICE_ID;
    p.device_type = "t";
    p.fw_version = "1";
    p.key = key;
    p.handlers = handlers;
    p.nhandlers = 1;
    p.note = note;
    p.note_ctx = &h;
    memset(&pl, 0, sizeof(pl));
    pl.transport.ctx = pl.clock.ctx = pl.random.ctx = &h;
    pl.transport.send = send_bytes;
    pl.clock.now_ms = now_ms;
    pl.random.fill = fill;
    check(iotp_device_init(&h.dev, &p, &pl, h.rx, sizeof(h.rx), h.tx, sizeof(h.tx)) == 0);
    check(iotp_device_attach_outbox(&h.dev, h.storage, sizeof(h.storage), 0) == 0);
    reconnect(&h);
    while (i < size) {
        uint8_t c = data[i++];
        if (c < 0xf0) {
            size_t n = (size_t)(c % 64) + 1;
            if (n > size - i)
                n = size - i;
            feed(&h, data + i, n);
            i += n;
        } else if (c < 0xf8) {
            h.now += (uint64_t)(c - 0xef) * 700;
            iotp_device_tick(&h.dev);
        } else if (c < 0xfc) {
            struct iotp_event_field f = {"v", "1"};
            uint32_t seq = 0;
            if (iotp_device_event(&h.dev, IOTP_EVENT, "temp", 1, &f, &seq) == 0) {
                check(seq > h.last_seq);
                h.last_seq = seq;
                h.pushed++;
            }
        } else {
            canned(&h, c - 0xfc);
        }
        check(iotp_device_state(&h.dev) <= IOTP_DEVICE_STOPPED);
        ob = iotp_device_outbox(&h.dev);
        check(iotp_outbox_pending(ob) <= h.pushed);
        if (iotp_device_state(&h.dev) != IOTP_DEVICE_ONLINE)
            reconnect(&h);
    }
    iotp_device_stop(&h.dev);
    return 0;
}
