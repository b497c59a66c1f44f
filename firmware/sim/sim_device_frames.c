/*
 * sim_device_frames.c - what a simulated device does with the frames it receives: the
 * handshake until WELCOME, then the session's frames dispatched by type from one table
 * (keepalive both ways, requests to answer, ACK and ERROR for events, the server's BYE).
 *
 * System frames are named by enum iotp_type (firmware/include/iotp/iotp_types.h), never by
 * string: a type the table has no handler for is ignored, as a device does with what it does
 * not understand.
 */
#include <stdio.h>
#include <string.h>

#include "iotp_posix.h"
#include "sim_device.h"
#include "sim_device_internal.h"
#include "sim_fleet.h"

void sim_device_send_system(struct sim_device *dev, enum iotp_type type, uint32_t id)
{
    uint8_t out[IOTP_MAX_FRAME];
    struct iotp_writer w;
    int n;

    iotp_writer_begin(&w, out, sizeof(out), dev->entry->id, IOTP_SERVER_ADDRESS,
                      iotp_type_name(type), id);
    n = iotp_writer_end(&w);
    if (n < 0)
        sim_device_drop(dev, 0, "cannot write %s: %s", iotp_type_name(type), iotp_strerror(n));
    else
        sim_device_send_frame(dev, out, (size_t)n);
}

void sim_device_start_handshake(struct sim_device *dev)
{
    const struct sim_device_entry *e = dev->entry;
    struct iotp_device_config cfg;
    uint8_t out[IOTP_MAX_FRAME];
    size_t len;
    int r;

    memset(&cfg, 0, sizeof(cfg));
    cfg.device_id = e->id;
    cfg.device_type = e->type;
    cfg.fw_version = dev->fleet->cfg.fw_version;
    cfg.alg = e->alg;
    cfg.key = e->key;
    cfg.chip = e->alg == IOTP_ALG_ATECC508A_MAC ? &dev->chip : NULL;
    iotp_posix_random(&cfg.random);
    iotp_parser_init(&dev->parser, dev->rx, sizeof(dev->rx), 0, 0);
    r = iotp_device_hs_start(&dev->hs, &cfg, out, sizeof(out), &len);
    if (r < 0) {
        sim_device_drop(dev, 0, "cannot start handshake: %s", iotp_strerror(r));
        return;
    }
    sim_device_set_state(dev, SIM_DEVICE_HANDSHAKE);
    sim_device_send_frame(dev, out, len);
}

static void on_handshake_frame(struct sim_device *dev, const struct iotp_frame *f)
{
    uint8_t out[IOTP_MAX_FRAME];
    uint32_t retry = 0;
    size_t len;
    int r;

    r = iotp_device_hs_on_frame(&dev->hs, f, out, sizeof(out), &len);
    if (r == IOTP_HS_DONE) {
        sim_device_authenticated(dev);
    } else if (r == 0) {
        if (len > 0)
            sim_device_send_frame(dev, out, len);
    } else if (r == IOTP_EAUTH && iotp_frame_type(f) == IOTP_TYPE_ERROR) {
        /* The server's retry= is how it spreads a fleet out; honour it as a floor. */
        if (iotp_frame_arg_u32(f, "retry", &retry) == 0)
            dev->retry_hint_s = retry;
        sim_device_drop(dev, 1, "refused by the server (code=auth retry=%u)", (unsigned)retry);
    } else if (r == IOTP_EAUTH) {
        sim_device_drop(dev, 1,
                        "the server failed to prove it knows the key: not the real server?");
    } else {
        sim_device_drop(dev, 0, "handshake failed at %s: %s", f->type, iotp_strerror(r));
    }
}

void sim_device_send_answer(void *conn, const uint8_t *frame, size_t len, void *arg)
{
    struct sim_device *dev = conn;

    (void)arg;
    if (dev->state != SIM_DEVICE_AUTHENTICATED || dev->tcp_closing)
        return;
    sim_device_send_frame(dev, frame, len);
    dev->fleet->stats.requests_answered++;
}

/* A request: answered now, later (--slow) or never (--mute), per the fleet's rules. */
static void on_request(struct sim_device *dev, const struct iotp_frame *f)
{
    struct sim_fleet *fleet = dev->fleet;
    enum sim_answer_when when;
    uint8_t out[IOTP_MAX_FRAME];
    int n, r;

    n = sim_answer_request(fleet->cfg.answers, &dev->control, dev->entry->id, f, out, sizeof(out),
                           &when);
    if (n < 0) {
        sim_fleet_log(fleet, dev->entry->id, "cannot answer %s %u: %s", f->type, (unsigned)f->id,
                      iotp_strerror(n));
        return;
    }
    if (when == SIM_ANSWER_NEVER)
        return;
    if (when == SIM_ANSWER_LATER) {
        r = sim_delayed_push(&fleet->delayed, dev, fleet->cfg.answers->slow_ms, out, (size_t)n);
        if (r < 0)
            sim_fleet_log(fleet, dev->entry->id, "cannot delay the answer to %s %u: %s", f->type,
                          (unsigned)f->id, uv_strerror(r));
        return;
    }
    sim_device_send_frame(dev, out, (size_t)n);
    fleet->stats.requests_answered++;
}

/* ---- the session's frames, one handler per type ---- */

static void on_ping(struct sim_device *dev, const struct iotp_frame *f)
{
    sim_device_send_system(dev, IOTP_TYPE_PONG, f->id);
}

static void on_pong(struct sim_device *dev, const struct iotp_frame *f)
{
    if (dev->ping_outstanding != 0 && f->id == dev->ping_outstanding) {
        dev->ping_outstanding = 0;
        dev->fleet->stats.pongs_received++;
    }
}

static void on_bye(struct sim_device *dev, const struct iotp_frame *f)
{
    sim_device_drop(dev, 0, "the server said %s", f->type);
}

static void on_ack(struct sim_device *dev, const struct iotp_frame *f)
{
    sim_device_on_event_ack(dev, f->id);
}

/* An ERROR about an event is the events' business; any other is only logged. */
static void on_error(struct sim_device *dev, const struct iotp_frame *f)
{
    if (sim_device_on_event_error(dev, f) == 0)
        return;
    const char *code = iotp_frame_arg(f, "code");
    sim_fleet_log(dev->fleet, dev->entry->id, "server error for id %u: code=%s", (unsigned)f->id,
                  code ? code : "?");
}

typedef void (*session_handler_fn)(struct sim_device *dev, const struct iotp_frame *f);

/* What the server may send an authenticated device; other types are ignored. */
static const session_handler_fn session_handlers[IOTP_TYPE_COUNT] = {
    [IOTP_TYPE_PING] = on_ping, [IOTP_TYPE_PONG] = on_pong,   [IOTP_TYPE_BYE] = on_bye,
    [IOTP_TYPE_ACK] = on_ack,   [IOTP_TYPE_ERROR] = on_error,
};

/* A frame while authenticated: requests (application types) from anyone, system frames from
 * the server. */
static void on_session_frame(struct sim_device *dev, const struct iotp_frame *f)
{
    enum iotp_type type = iotp_frame_type(f);

    if (strcmp(f->to, dev->entry->id) != 0)
        return; /* not for us: nothing sensible to answer */
    if (type == IOTP_TYPE_APP) {
        on_request(dev, f);
        return;
    }
    if (strcmp(f->from, IOTP_SERVER_ADDRESS) != 0)
        return; /* OK/ERROR from a user: the simulator sends no requests of its own */
    if (session_handlers[type])
        session_handlers[type](dev, f);
}

/* Feed received plaintext to the parser and act on each complete frame. */
void sim_device_on_bytes(struct sim_device *dev, const uint8_t *data, size_t len)
{
    const struct iotp_frame *f;
    size_t off = 0, used;
    int r;

    while (off < len && !dev->tcp_closing) {
        r = iotp_parser_feed(&dev->parser, data + off, len - off, &used, &f, NULL);
        off += used;
        if (r < 0) {
            /* A device does not argue with its server: note it and go on (the parser has
             * resynchronised at the next EOT). */
            sim_fleet_log(dev->fleet, dev->entry->id, "malformed frame from the server: %s",
                          iotp_strerror(r));
        } else if (r == 1) {
            if (dev->state == SIM_DEVICE_HANDSHAKE)
                on_handshake_frame(dev, f);
            else if (dev->state == SIM_DEVICE_AUTHENTICATED)
                on_session_frame(dev, f);
        }
    }
}

void sim_device_ping(struct sim_device *dev)
{
    if (dev->ping_outstanding != 0) {
        sim_device_drop(dev, 0, "no %s for %s %u within %u s", iotp_type_name(IOTP_TYPE_PONG),
                        iotp_type_name(IOTP_TYPE_PING), (unsigned)dev->ping_outstanding,
                        (unsigned)dev->ping_s);
        return;
    }
    if (++dev->ping_id == 0)
        dev->ping_id = 1; /* 0 is not a request id */
    dev->ping_outstanding = dev->ping_id;
    dev->fleet->stats.pings_sent++;
    sim_device_send_system(dev, IOTP_TYPE_PING, dev->ping_id);
}
