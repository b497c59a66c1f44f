/*
 * sim_device_engine.c - a simulated device's iotp_device engine: the platform it runs on (the
 * connection, the loop's clock, getrandom, the --state-dir sequence file), what the driver does
 * with the engine's notes (states, counters, logs), and the one request handler that answers
 * every type through the simulator's table and its misbehaviour rules (--slow, --mute, --error).
 *
 * The engine does the protocol; nothing here parses or builds a session frame except the
 * answers, which sim_handlers.c builds so that delayed answers can be kept as bytes.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "iotp_posix.h"
#include "sim_device.h"
#include "sim_device_internal.h"
#include "sim_fleet.h"

static struct sim_device *device_of(struct iotp_device *engine)
{
    return (struct sim_device *)((char *)engine - offsetof(struct sim_device, engine));
}

static int32_t transport_send(void *ctx, const uint8_t *buf, size_t len)
{
    struct sim_device *dev = ctx;

    int r = len > INT32_MAX ? UV_EINVAL : sim_device_write(dev, buf, len);

    if (r < 0) {
        dev->write_error = r; /* the engine knows only IOTP_EIO; the log says which */
        return IOTP_EIO;
    }
    return (int32_t)len;
}

static uint64_t loop_now(void *ctx)
{
    return uv_now(ctx);
}

void sim_device_send_answer(void *conn, const uint8_t *frame, size_t len, void *arg)
{
    struct sim_device *dev = conn;

    (void)arg;
    if (dev->state != SIM_DEVICE_AUTHENTICATED || dev->tcp_closing)
        return;
    if (iotp_device_send_frame(&dev->engine, frame, len) == 0)
        dev->fleet->stats.requests_answered++;
}

/* Every request: answered now, later (--slow) or never (--mute), per the fleet's rules. */
static int on_request(void *ctx, struct iotp_device *engine, const struct iotp_frame *f,
                      struct iotp_device_answer *answer)
{
    struct sim_device *dev = device_of(engine);
    struct sim_fleet *fleet = dev->fleet;
    enum sim_answer_when when;
    uint8_t out[IOTP_MAX_FRAME];
    int n, r;

    (void)ctx;
    (void)answer;
    n = sim_answer_request(fleet->cfg.answers, &dev->control, dev->entry->id, f, out, sizeof(out),
                           &when);
    if (n < 0) {
        sim_fleet_log(fleet, dev->entry->id, "cannot answer %s %u: %s", f->type, (unsigned)f->id,
                      iotp_strerror(n));
    } else if (when == SIM_ANSWER_LATER) {
        r = sim_delayed_push(&fleet->delayed, dev, fleet->cfg.answers->slow_ms, out, (size_t)n);
        if (r < 0)
            sim_fleet_log(fleet, dev->entry->id, "cannot delay the answer to %s %u: %s", f->type,
                          (unsigned)f->id, uv_strerror(r));
    } else if (when == SIM_ANSWER_NOW && iotp_device_send_frame(engine, out, (size_t)n) == 0) {
        fleet->stats.requests_answered++;
    }
    return IOTP_DEVICE_NO_REPLY;
}

static const struct iotp_device_handler request_handlers[] = {{NULL, on_request, NULL}};

/* The engine ended the session: say why the way iotsim always has, and close. */
static void on_close(struct sim_device *dev, const struct iotp_device_note *n)
{
    if (n->error == IOTP_ETIMEOUT && n->was != IOTP_DEVICE_ONLINE)
        sim_device_drop(dev, 0, "no WELCOME within %llu ms",
                        (unsigned long long)dev->fleet->cfg.handshake_timeout_ms);
    else if (n->error == IOTP_ETIMEOUT)
        sim_device_drop(dev, 0, "no %s for %s %u within %u s", iotp_type_name(IOTP_TYPE_PONG),
                        iotp_type_name(IOTP_TYPE_PING), (unsigned)n->id, (unsigned)n->value);
    else if (n->error == IOTP_EAUTH && n->code)
        sim_device_drop(dev, 1, "refused by the server (code=%s retry=%u)", n->code,
                        (unsigned)n->value);
    else if (n->error == IOTP_EAUTH)
        sim_device_drop(dev, 1,
                        "the server failed to prove it knows the key: not the real server?");
    else if (n->error == 0)
        sim_device_drop(dev, 0, "the server said %s%s%s", iotp_type_name(IOTP_TYPE_BYE),
                        n->code ? " reason=" : "", n->code ? n->code : "");
    else if (n->frame_type)
        sim_device_drop(dev, 0, "handshake failed at %s: %s", n->frame_type,
                        iotp_strerror(n->error));
    else if (n->error == IOTP_EIO && dev->write_error < 0)
        sim_device_drop(dev, 0, "send failed: %s", uv_strerror(dev->write_error));
    else
        sim_device_drop(dev, 0, "send failed: %s", iotp_strerror(n->error));
}

static void on_note(void *ctx, struct iotp_device *engine, const struct iotp_device_note *n)
{
    struct sim_device *dev = ctx;
    struct sim_fleet *fleet = dev->fleet;

    (void)engine;
    switch (n->kind) {
    case IOTP_DEVICE_NOTE_CONNECT:
        sim_device_set_state(dev, SIM_DEVICE_QUEUED);
        sim_fleet_enqueue(fleet, dev);
        break;
    case IOTP_DEVICE_NOTE_ONLINE:
        sim_device_set_state(dev, SIM_DEVICE_AUTHENTICATED);
        sim_device_events_on_session(dev);
        break;
    case IOTP_DEVICE_NOTE_CLOSE:
        on_close(dev, n);
        break;
    case IOTP_DEVICE_NOTE_PING_SENT:
        fleet->stats.pings_sent++;
        break;
    case IOTP_DEVICE_NOTE_PONG:
        fleet->stats.pongs_received++;
        break;
    case IOTP_DEVICE_NOTE_SERVER_ERROR:
        sim_fleet_log(fleet, dev->entry->id, "server error for id %u: code=%s", (unsigned)n->id,
                      n->code ? n->code : "?");
        break;
    case IOTP_DEVICE_NOTE_BAD_FRAME:
        /* A device does not argue with its server: the engine skipped to the next frame. */
        sim_fleet_log(fleet, dev->entry->id, "malformed frame from the server: %s",
                      iotp_strerror(n->error));
        break;
    default:
        sim_device_events_note(dev, n);
        break;
    }
}

int sim_device_engine_init(struct sim_device *dev)
{
    const struct sim_device_entry *e = dev->entry;
    struct sim_fleet *fleet = dev->fleet;
    struct iotp_device_params p;
    struct iotp_device_platform pl;

    memset(&p, 0, sizeof(p));
    p.device_id = e->id;
    p.device_type = e->type;
    p.fw_version = fleet->cfg.fw_version;
    p.alg = e->alg;
    p.key = e->key;
    if (e->alg == IOTP_ALG_ATECC508A_MAC) {
        iotp_atecc_soft_init(&dev->chip_soft, e->key, 0, e->serial, &dev->chip);
        p.chip = &dev->chip;
    }
    p.handshake_timeout_ms = fleet->cfg.handshake_timeout_ms > UINT32_MAX
                                 ? UINT32_MAX
                                 : (uint32_t)fleet->cfg.handshake_timeout_ms;
    p.ping_s = fleet->cfg.ping_s;
    p.backoff = fleet->cfg.backoff;
    p.handlers = request_handlers;
    p.nhandlers = 1;
    p.note = on_note;
    p.note_ctx = dev;
    p.servers = fleet->cfg.servers;
    p.nservers = fleet->cfg.nservers;
    p.first_server = (unsigned)(dev - fleet->devices); /* a fleet spreads over the servers */
    memset(&pl, 0, sizeof(pl));
    pl.transport.ctx = dev;
    pl.transport.send = transport_send;
    pl.clock.ctx = fleet->loop;
    pl.clock.now_ms = loop_now;
    iotp_posix_random(&pl.random);
    pl.persist.ctx = dev;
    pl.persist.store_high_water = sim_device_store_high_water;
    return iotp_device_init(&dev->engine, &p, &pl, dev->rx, sizeof(dev->rx), fleet->tx_buf,
                            sizeof(fleet->tx_buf));
}
