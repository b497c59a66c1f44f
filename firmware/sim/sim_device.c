/*
 * sim_device.c - one simulated device (contract and state diagram in sim_device.h).
 *
 * Bytes flow socket -> (TLS) -> iotp_parser -> on_frame, and frames flow writer -> (TLS) ->
 * socket. Writes first try uv_try_write and queue only what the kernel did not take, copied
 * into a request freed by its callback: a device's frames are small and mostly go out at once,
 * so 10,000 idle devices hold no write buffers.
 *
 * Every way a connection ends goes through drop(), which counts it, logs it and closes the
 * socket; the close callback then decides between the next backoff (running) and STOPPED
 * (stopping). Callbacks that can run after drop() (a read's remaining frames, a write's
 * completion, a cancelled connect) check tcp_closing first.
 *
 * Events live in the device's iotp_outbox, allocated at the first one so that a fleet without
 * events costs nothing. pump_events() is the only sender: it runs after every WELCOME, every
 * generation tick and the end of a busy pause, and sends what the outbox hands out while the
 * connection is up. Sequence numbers come in reserved blocks; with --state-dir each block's
 * high-water mark is in the device's file (fsync'ed) before its first number is used.
 */
#include "sim_device.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotp_posix.h"
#include "sim_fleet.h"
#include "sim_handlers.h"

/* Grace for a BYE to leave at stop before the socket is closed anyway. */
#define STOP_GRACE_MS 2000

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
};

static void on_timer(uv_timer_t *timer);
static void on_event_timer(uv_timer_t *timer);
static void on_resume_timer(uv_timer_t *timer);
static int control_set_events(void *ctx, int on, uint32_t period_ms);
static void events_on_session(struct sim_device *dev);

const char *sim_device_state_name(enum sim_device_state state)
{
    static const char *const names[] = {
        [SIM_DEVICE_IDLE] = "idle",
        [SIM_DEVICE_QUEUED] = "queued",
        [SIM_DEVICE_CONNECTING] = "connecting",
        [SIM_DEVICE_TLS] = "tls",
        [SIM_DEVICE_HANDSHAKE] = "handshake",
        [SIM_DEVICE_AUTHENTICATED] = "authenticated",
        [SIM_DEVICE_CLOSING] = "closing",
        [SIM_DEVICE_BACKOFF] = "backoff",
        [SIM_DEVICE_STOPPED] = "stopped",
    };
    return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

static int is_connecting(enum sim_device_state s)
{
    return s == SIM_DEVICE_CONNECTING || s == SIM_DEVICE_TLS || s == SIM_DEVICE_HANDSHAKE;
}

/* Change state and keep the fleet's gauges in step with it. */
static void set_state(struct sim_device *dev, enum sim_device_state next)
{
    struct sim_stats *st = &dev->fleet->stats;
    enum sim_device_state prev = dev->state;

    if (prev == next)
        return;
    dev->state = next;
    if (is_connecting(prev) && !is_connecting(next))
        st->connecting--;
    else if (!is_connecting(prev) && is_connecting(next))
        st->connecting++;
    if (prev == SIM_DEVICE_AUTHENTICATED) {
        st->authenticated--;
        sim_fleet_authenticated_changed(dev->fleet);
    } else if (next == SIM_DEVICE_AUTHENTICATED) {
        st->authenticated++;
        sim_fleet_authenticated_changed(dev->fleet);
    }
}

int sim_device_init(struct sim_device *dev, struct sim_fleet *fleet,
                    const struct sim_device_entry *entry)
{
    int r;

    memset(dev, 0, sizeof(*dev));
    dev->fleet = fleet;
    dev->entry = entry;
    sim_backoff_init(&dev->backoff, &fleet->cfg.backoff);
    if (entry->alg == IOTP_ALG_ATECC508A_MAC)
        iotp_atecc_soft_init(&dev->chip_soft, entry->key, 0, entry->serial, &dev->chip);
    r = uv_timer_init(fleet->loop, &dev->timer);
    if (r < 0)
        return r;
    dev->timer.data = dev;
    dev->timer_open = 1;
    /* Timers hold no descriptor and cost nothing until started: every device gets them. */
    uv_timer_init(fleet->loop, &dev->event_timer);
    uv_timer_init(fleet->loop, &dev->resume_timer);
    dev->event_timer.data = dev->resume_timer.data = dev;
    dev->event_timers_open = 1;
    dev->control.ctx = dev;
    dev->control.set_events = fleet->cfg.events ? control_set_events : NULL;
    return 0;
}

/* Close every timer still open. */
static void close_timers(struct sim_device *dev)
{
    if (dev->timer_open) {
        dev->timer_open = 0;
        uv_timer_stop(&dev->timer);
        uv_close((uv_handle_t *)&dev->timer, NULL);
    }
    if (dev->event_timers_open) {
        dev->event_timers_open = 0;
        uv_close((uv_handle_t *)&dev->event_timer, NULL);
        uv_close((uv_handle_t *)&dev->resume_timer, NULL);
    }
}

void sim_device_close(struct sim_device *dev)
{
    close_timers(dev);
}

void sim_device_free(struct sim_device *dev)
{
    free(dev->outbox_storage);
    dev->outbox_storage = NULL;
}

static void on_tcp_closed(uv_handle_t *handle);

/* Close the socket once; on_tcp_closed continues. */
static void close_tcp(struct sim_device *dev)
{
    if (!dev->tcp_open || dev->tcp_closing)
        return;
    dev->tcp_closing = 1;
    uv_close((uv_handle_t *)&dev->tcp, on_tcp_closed);
}

/* End the current connection: count and log why, then close. auth says the server refused
 * the device (or failed to prove the key), which counts as an auth failure rather than a
 * connect failure. A no-op if the connection is already going away. */
static void drop(struct sim_device *dev, int auth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void drop(struct sim_device *dev, int auth, const char *fmt, ...)
{
    struct sim_stats *st = &dev->fleet->stats;
    char reason[256];
    va_list ap;

    if (!dev->tcp_open || dev->tcp_closing)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (auth)
        st->auth_failures++;
    else if (is_connecting(dev->state))
        st->connect_failures++;
    else if (dev->state == SIM_DEVICE_AUTHENTICATED)
        st->disconnects++;
    sim_fleet_log(dev->fleet, dev->entry->id, "%s (%s)", reason, sim_device_state_name(dev->state));
    uv_timer_stop(&dev->timer);
    /* Answers still waiting belong to this connection's requests: never send them on the next. */
    sim_delayed_cancel(&dev->fleet->delayed, dev);
    set_state(dev, SIM_DEVICE_CLOSING);
    close_tcp(dev);
}

/* Wait out the backoff, then ask the pacer for a slot again. */
static void schedule_retry(struct sim_device *dev)
{
    uint64_t delay = sim_backoff_next_ms(&dev->backoff, uv_now(dev->fleet->loop), dev->retry_hint_s,
                                         sim_fleet_random(dev->fleet));

    dev->retry_hint_s = 0;
    set_state(dev, SIM_DEVICE_BACKOFF);
    uv_timer_start(&dev->timer, on_timer, delay, 0);
}

static void finish_stop(struct sim_device *dev)
{
    set_state(dev, SIM_DEVICE_STOPPED);
    close_timers(dev);
}

static void on_tcp_closed(uv_handle_t *handle)
{
    struct sim_device *dev = handle->data;

    dev->tcp_open = 0;
    dev->tcp_closing = 0;
    sim_tls_close(&dev->tls);
    if (dev->fleet->stopping)
        finish_stop(dev);
    else
        schedule_retry(dev);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct sim_device *dev = req->handle->data;

    free(w);
    if (status < 0)
        drop(dev, 0, "write failed: %s", uv_strerror(status));
}

/* Put len bytes on the socket now. Returns 0 or a UV_E* code. */
static int write_now(struct sim_device *dev, const uint8_t *data, size_t len)
{
    uv_stream_t *stream = (uv_stream_t *)&dev->tcp;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    struct write_req *w;
    int n, r;

    if (!dev->tcp_open || dev->tcp_closing)
        return UV_ENOTCONN;
    n = uv_try_write(stream, &buf, 1);
    if (n == (int)len)
        return 0;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (n < 0)
        n = 0;
    w = malloc(sizeof(*w) + len - (size_t)n);
    if (!w)
        return UV_ENOMEM;
    memcpy(w->data, data + n, len - (size_t)n);
    w->buf = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
    r = uv_write(&w->req, stream, &w->buf, 1, on_write);
    if (r < 0)
        free(w);
    return r;
}

/* Send what the fleet's output buffer holds for the device being read. */
static int flush_out(struct sim_fleet *fleet)
{
    size_t len = fleet->out_len;

    fleet->out_len = 0;
    return len > 0 ? write_now(fleet->out_dev, fleet->out_buf, len) : 0;
}

/* Put len bytes on the socket. While the device's read is being handled they are appended to
 * the fleet's output buffer instead, so that the answers to one read (several requests often
 * arrive together) leave in one write: one system call and one wake-up of the server, not one
 * per answer. Returns 0 or a UV_E* code (the caller drops the connection). */
static int send_raw(struct sim_device *dev, const uint8_t *data, size_t len)
{
    struct sim_fleet *fleet = dev->fleet;
    int r;

    if (fleet->out_dev != dev)
        return write_now(dev, data, len);
    if (fleet->out_len + len > sizeof(fleet->out_buf)) {
        r = flush_out(fleet);
        if (r < 0)
            return r;
        if (len > sizeof(fleet->out_buf))
            return write_now(dev, data, len);
    }
    memcpy(fleet->out_buf + fleet->out_len, data, len);
    fleet->out_len += len;
    return 0;
}

/* Move the ciphertext OpenSSL produced onto the socket. */
static int flush_tls(struct sim_device *dev)
{
    uint8_t chunk[16384];
    size_t n;
    int r;

    while ((n = sim_tls_take(&dev->tls, chunk, sizeof(chunk))) > 0) {
        r = send_raw(dev, chunk, n);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Send one frame (through TLS when configured); drops the connection on failure. */
static void send_frame(struct sim_device *dev, const uint8_t *frame, size_t len)
{
    int r;

    if (dev->fleet->cfg.tls) {
        r = sim_tls_write(&dev->tls, frame, len) < 0 ? UV_EPROTO : flush_tls(dev);
    } else {
        r = send_raw(dev, frame, len);
    }
    if (r < 0)
        drop(dev, 0, "send failed: %s", uv_strerror(r));
}

/* Send `device iotd TYPE id` (PING, PONG, BYE). */
static void send_system(struct sim_device *dev, enum iotp_type type, uint32_t id)
{
    uint8_t out[IOTP_MAX_FRAME];
    struct iotp_writer w;
    int n;

    iotp_writer_begin(&w, out, sizeof(out), dev->entry->id, IOTP_SERVER_ADDRESS,
                      iotp_type_name(type), id);
    n = iotp_writer_end(&w);
    if (n < 0)
        drop(dev, 0, "cannot write %s: %s", iotp_type_name(type), iotp_strerror(n));
    else
        send_frame(dev, out, (size_t)n);
}

static void start_handshake(struct sim_device *dev)
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
        drop(dev, 0, "cannot start handshake: %s", iotp_strerror(r));
        return;
    }
    set_state(dev, SIM_DEVICE_HANDSHAKE);
    send_frame(dev, out, len);
}

static void on_authenticated(struct sim_device *dev)
{
    uint32_t ping_s = dev->fleet->cfg.ping_s ? dev->fleet->cfg.ping_s : dev->hs.ping_s;

    set_state(dev, SIM_DEVICE_AUTHENTICATED);
    sim_backoff_authenticated(&dev->backoff, uv_now(dev->fleet->loop));
    dev->ping_s = ping_s;
    dev->ping_outstanding = 0;
    uv_timer_stop(&dev->timer); /* the handshake deadline */
    if (ping_s > 0)
        uv_timer_start(&dev->timer, on_timer, (uint64_t)ping_s * 1000, (uint64_t)ping_s * 1000);
    events_on_session(dev);
}

static void on_handshake_frame(struct sim_device *dev, const struct iotp_frame *f)
{
    uint8_t out[IOTP_MAX_FRAME];
    uint32_t retry = 0;
    size_t len;
    int r;

    r = iotp_device_hs_on_frame(&dev->hs, f, out, sizeof(out), &len);
    if (r == IOTP_HS_DONE) {
        on_authenticated(dev);
    } else if (r == 0) {
        if (len > 0)
            send_frame(dev, out, len);
    } else if (r == IOTP_EAUTH && iotp_frame_type(f) == IOTP_TYPE_ERROR) {
        /* The server's retry= is how it spreads a fleet out; honour it as a floor. */
        if (iotp_frame_arg_u32(f, "retry", &retry) == 0)
            dev->retry_hint_s = retry;
        drop(dev, 1, "refused by the server (code=auth retry=%u)", (unsigned)retry);
    } else if (r == IOTP_EAUTH) {
        drop(dev, 1, "the server failed to prove it knows the key: not the real server?");
    } else {
        drop(dev, 0, "handshake failed at %s: %s", f->type, iotp_strerror(r));
    }
}

/* ---- events ---- */

static uint32_t fleet_random(void *fleet)
{
    return sim_fleet_random(fleet);
}

/* Allocate the outbox at the first event, numbering above the mark in --state-dir. Returns 0,
 * or -1 (logged once) when the device cannot have events. */
static int open_outbox(struct sim_device *dev)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    uint32_t high_water = 0;
    char err[512];
    size_t size;

    if (dev->outbox_storage)
        return 0;
    if (dev->outbox_failed)
        return -1;
    if (ec->state_dir &&
        sim_seq_load(ec->state_dir, dev->entry->id, &high_water, err, sizeof(err)) < 0) {
        sim_fleet_log(dev->fleet, dev->entry->id, "no events: %s", err);
        dev->outbox_failed = 1;
        return -1;
    }
    size = sim_event_storage_size(ec, dev->entry->id);
    dev->outbox_storage = malloc(size);
    if (!dev->outbox_storage ||
        iotp_outbox_init(&dev->outbox, dev->outbox_storage, size, high_water, 0) < 0) {
        sim_fleet_log(dev->fleet, dev->entry->id, "no events: out of memory");
        free(dev->outbox_storage);
        dev->outbox_storage = NULL;
        dev->outbox_failed = 1;
        return -1;
    }
    return 0;
}

/* Make the next block of sequence numbers durable when the outbox asks for it. A failure
 * leaves the old reservation: once it runs out, events are refused until a store succeeds. */
static void reserve_seqs(struct sim_device *dev)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    uint32_t high_water;
    char err[512];

    if (!iotp_outbox_reserve_needed(&dev->outbox, &high_water))
        return;
    if (ec->state_dir &&
        sim_seq_store(ec->state_dir, dev->entry->id, high_water, err, sizeof(err)) < 0) {
        sim_fleet_log(dev->fleet, dev->entry->id, "cannot reserve sequence numbers: %s", err);
        return;
    }
    iotp_outbox_reserved(&dev->outbox, high_water);
}

/* Queue one event (periodic: advances the generators) or alarm. Returns 0, or -1 when it was
 * refused (counted and logged; a periodic event's generators are left as they were). */
static int push_event(struct sim_device *dev, enum iotp_event_kind kind, const char *name,
                      int periodic, const char *state, const char *severity)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    struct iotp_event_field fields[SIM_EVENT_MAX_FIELDS + 2];
    char values[SIM_EVENT_MAX_FIELDS][SIM_EVENT_VALUE_LEN];
    struct sim_event_state saved = dev->gen;
    unsigned n;
    uint32_t seq;
    int r;

    if (open_outbox(dev) < 0)
        r = IOTP_ESTATE;
    else if (iotp_outbox_pending(&dev->outbox) >= ec->outbox_entries)
        r = IOTP_ENOSPC;
    else {
        reserve_seqs(dev);
        n = sim_event_fields(ec, &dev->gen, name, iotp_outbox_last_seq(&dev->outbox) + 1, periodic,
                             fleet_random, dev->fleet, fields, values);
        if (kind == IOTP_ALARM) {
            fields[n].key = "state";
            fields[n++].value = state;
            if (severity && *severity) {
                fields[n].key = "severity";
                fields[n++].value = severity;
            }
        }
        r = iotp_outbox_push(&dev->outbox, kind, dev->entry->id, name, n, fields, &seq);
    }
    if (r < 0) {
        dev->gen = saved;
        dev->fleet->stats.events_refused++;
        sim_fleet_log(dev->fleet, dev->entry->id, "%s %s not queued: %s",
                      iotp_type_name(kind == IOTP_ALARM ? IOTP_TYPE_ALARM : IOTP_TYPE_EVENT), name,
                      r == IOTP_ENOSPC   ? "the outbox is full"
                      : r == IOTP_ESTATE ? "no sequence number available"
                                         : iotp_strerror(r));
        return -1;
    }
    dev->fleet->stats.events_generated++;
    dev->fleet->stats.events_pending++;
    return 0;
}

/* Send what the outbox hands out while the connection is up. */
static void pump_events(struct sim_device *dev)
{
    const uint8_t *frame;
    size_t len;
    uint32_t seq;

    if (!dev->outbox_storage)
        return;
    while (dev->state == SIM_DEVICE_AUTHENTICATED && !dev->tcp_closing &&
           iotp_outbox_next(&dev->outbox, &frame, &len, &seq) == 1) {
        send_frame(dev, frame, len);
        if (dev->tcp_closing)
            return; /* the send failed: the next session sends it again */
        iotp_outbox_mark_sent(&dev->outbox, seq);
        dev->fleet->stats.events_sent++;
        if (seq <= dev->events_max_sent)
            dev->fleet->stats.events_resent++;
        else
            dev->events_max_sent = seq;
    }
}

/* Count the device as settled once every event it will make is made and acknowledged (what
 * iotsim --exit-when-acked waits for). */
static void check_settled(struct sim_device *dev)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;

    if (dev->events_settled || !ec || !dev->events_started)
        return;
    if (ec->count > 0 && dev->gen.made < ec->count)
        return;
    if (dev->outbox_storage && iotp_outbox_pending(&dev->outbox) > 0)
        return;
    dev->events_settled = 1;
    sim_fleet_events_settled(dev->fleet);
}

/* Make the events that are due by now. */
static void generate_due(struct sim_device *dev)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    double elapsed = (double)uv_now(dev->fleet->loop) - dev->events_t0;
    uint64_t due = elapsed > 0 ? (uint64_t)(elapsed * dev->events_rate / 1000.0 + 1e-9) : 0;
    unsigned budget = 10000; /* per tick, so a very high rate cannot stall the loop */

    while (dev->events_ticks < due && budget-- > 0) {
        if (ec->count > 0 && dev->gen.made >= ec->count) {
            uv_timer_stop(&dev->event_timer);
            break;
        }
        dev->events_ticks++;
        if (ec->alarm_every > 0 && (dev->gen.made + 1) % ec->alarm_every == 0) {
            if (push_event(dev, IOTP_ALARM, ec->name, 1, dev->alarm_raised ? "cleared" : "raised",
                           NULL) == 0)
                dev->alarm_raised = !dev->alarm_raised;
        } else {
            push_event(dev, IOTP_EVENT, ec->name, 1, NULL, NULL);
        }
    }
    if (ec->count > 0 && dev->gen.made >= ec->count)
        uv_timer_stop(&dev->event_timer);
}

static void on_event_timer(uv_timer_t *timer)
{
    struct sim_device *dev = timer->data;

    generate_due(dev);
    pump_events(dev);
    check_settled(dev);
}

/* Begin periodic generation at rate events per second. The first event comes after a random
 * part of one period, so a fleet's events are spread out rather than in lock-step. */
static void start_generation(struct sim_device *dev, double rate)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    double period = 1000.0 / rate;
    uint64_t tick = period < 1 ? 1 : (uint64_t)period;
    uint64_t first = 1 + (uint64_t)((double)sim_fleet_random(dev->fleet) / 4294967296.0 * period);

    dev->events_on = 1;
    dev->events_rate = rate;
    dev->events_ticks = 0;
    /* Counted from one period before the first event, so that one is due at `first`. */
    dev->events_t0 = (double)uv_now(dev->fleet->loop) + (double)first - period;
    if (ec->count > 0 && dev->gen.made >= ec->count)
        return;
    uv_timer_start(&dev->event_timer, on_event_timer, first, tick);
}

/* start_events / stop_events (through the device's sim_device_control). */
static int control_set_events(void *ctx, int on, uint32_t period_ms)
{
    struct sim_device *dev = ctx;
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    double rate;

    if (!on) {
        dev->events_on = 0;
        uv_timer_stop(&dev->event_timer);
        return 0;
    }
    rate = period_ms > 0 ? 1000.0 / period_ms : ec->rate > 0 ? ec->rate : 1.0;
    if (dev->events_on && rate == dev->events_rate)
        return 0;
    start_generation(dev, rate);
    return 0;
}

/* The first WELCOME: queue the --alarm frames and begin --events. */
static void start_events(struct sim_device *dev)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;

    dev->events_started = 1;
    for (unsigned i = 0; i < ec->nalarms; i++)
        push_event(dev, IOTP_ALARM, ec->alarms[i].name, 0, ec->alarms[i].state,
                   ec->alarms[i].severity);
    if (ec->rate > 0)
        start_generation(dev, ec->rate);
}

/* Every WELCOME: what was not acknowledged goes again, oldest first. */
static void events_on_session(struct sim_device *dev)
{
    if (!dev->fleet->cfg.events)
        return;
    if (!dev->events_started)
        start_events(dev);
    if (dev->outbox_storage)
        iotp_outbox_session_reset(&dev->outbox);
    pump_events(dev);
    check_settled(dev);
}

static void on_resume_timer(uv_timer_t *timer)
{
    struct sim_device *dev = timer->data;

    iotp_outbox_resume(&dev->outbox);
    pump_events(dev);
}

/* `iotd <dev> ACK <seq>`. */
static void on_event_ack(struct sim_device *dev, uint32_t seq)
{
    FILE *log = dev->fleet->cfg.events ? dev->fleet->cfg.events->ack_log : NULL;
    const uint8_t *frame;
    size_t len;

    if (!dev->outbox_storage || iotp_outbox_get(&dev->outbox, seq, &frame, &len) < 0) {
        if (dev->fleet->cfg.verbose)
            sim_fleet_log(dev->fleet, dev->entry->id, "%s %u for no pending event",
                          iotp_type_name(IOTP_TYPE_ACK), (unsigned)seq);
        return;
    }
    if (log)
        sim_ack_log_write(log, frame, len);
    iotp_outbox_on_ack(&dev->outbox, seq);
    dev->fleet->stats.events_acked++;
    dev->fleet->stats.events_pending--;
    check_settled(dev);
}

/* `iotd <dev> ERROR <seq> code=...` for a pending event. Returns 0 if seq was one. */
static int on_event_error(struct sim_device *dev, const struct iotp_frame *f)
{
    const char *code = iotp_frame_arg(f, "code"), *msg = iotp_frame_arg(f, "msg");
    uint32_t retry_s = 0;
    int r;

    if (!dev->outbox_storage)
        return -1;
    r = iotp_outbox_on_error(&dev->outbox, f->id, code ? code : "internal");
    if (r == IOTP_OUTBOX_DROPPED) {
        dev->fleet->stats.events_rejected++;
        dev->fleet->stats.events_pending--;
        sim_fleet_log(dev->fleet, dev->entry->id, "event %u refused: code=%s%s%s", (unsigned)f->id,
                      code ? code : "?", msg ? " msg=" : "", msg ? msg : "");
        check_settled(dev);
        return 0;
    }
    if (r != IOTP_OUTBOX_PAUSED)
        return -1;
    dev->fleet->stats.events_busy++;
    if (iotp_frame_arg_u32(f, "retry", &retry_s) < 0 || retry_s == 0)
        retry_s = 1;
    if (retry_s > 3600)
        retry_s = 3600;
    uv_timer_start(&dev->resume_timer, on_resume_timer, (uint64_t)retry_s * 1000, 0);
    return 0;
}

void sim_device_send_answer(void *conn, const uint8_t *frame, size_t len, void *arg)
{
    struct sim_device *dev = conn;

    (void)arg;
    if (dev->state != SIM_DEVICE_AUTHENTICATED || dev->tcp_closing)
        return;
    send_frame(dev, frame, len);
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
    send_frame(dev, out, (size_t)n);
    fleet->stats.requests_answered++;
}

/* ---- the session's frames, one handler per type ---- */

static void on_ping(struct sim_device *dev, const struct iotp_frame *f)
{
    send_system(dev, IOTP_TYPE_PONG, f->id);
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
    drop(dev, 0, "the server said %s", f->type);
}

static void on_ack(struct sim_device *dev, const struct iotp_frame *f)
{
    on_event_ack(dev, f->id);
}

/* An ERROR about an event is the events' business; any other is only logged. */
static void on_error(struct sim_device *dev, const struct iotp_frame *f)
{
    if (on_event_error(dev, f) == 0)
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
static void on_bytes(struct sim_device *dev, const uint8_t *data, size_t len)
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

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct sim_device *dev = handle->data;

    (void)suggested;
    /* One buffer for the whole fleet: on_read consumes it before the loop reads again. */
    *buf = uv_buf_init((char *)dev->fleet->read_buf, sizeof(dev->fleet->read_buf));
}

/* Ciphertext arrived: advance the TLS handshake, then pass any plaintext on. The fleet's read
 * buffer is free again once the ciphertext is inside OpenSSL, so it holds the plaintext. */
static void on_tls_bytes(struct sim_device *dev, const uint8_t *data, size_t len)
{
    uint8_t *plain = dev->fleet->read_buf;
    char why[256];
    int r;

    if (sim_tls_feed(&dev->tls, data, len) < 0) {
        drop(dev, 0, "TLS: out of memory");
        return;
    }
    if (dev->state == SIM_DEVICE_TLS) {
        r = sim_tls_handshake(&dev->tls);
        if (flush_tls(dev) < 0 || r < 0) {
            drop(dev, 0, "TLS handshake failed: %s", sim_tls_error(why, sizeof(why)));
            return;
        }
        if (r == 0)
            return;
        start_handshake(dev);
    }
    while (!dev->tcp_closing) {
        r = sim_tls_read(&dev->tls, plain, sizeof(dev->fleet->read_buf));
        if (r < 0) {
            drop(dev, 0, "TLS session ended: %s", sim_tls_error(why, sizeof(why)));
            return;
        }
        if (r == 0)
            break;
        on_bytes(dev, plain, (size_t)r);
    }
    if (!dev->tcp_closing && flush_tls(dev) < 0)
        drop(dev, 0, "send failed");
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct sim_device *dev = stream->data;
    struct sim_fleet *fleet = dev->fleet;
    int r;

    if (nread == 0 || dev->tcp_closing)
        return;
    if (nread < 0) {
        drop(dev, 0, "%s", nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (fleet->cfg.tls) {
        on_tls_bytes(dev, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    fleet->out_dev = dev;
    on_bytes(dev, (const uint8_t *)buf->base, (size_t)nread);
    /* A drop() on the way closed the socket: what was said to it goes nowhere. */
    if (!dev->tcp_closing && (r = flush_out(fleet)) < 0)
        drop(dev, 0, "send failed: %s", uv_strerror(r));
    fleet->out_dev = NULL;
    fleet->out_len = 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct sim_device *dev = req->handle->data;
    int r;

    if (status == UV_ECANCELED || dev->tcp_closing)
        return;
    if (status < 0) {
        drop(dev, 0, "connect failed: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&dev->tcp, 1);
    r = uv_read_start((uv_stream_t *)&dev->tcp, on_alloc, on_read);
    if (r < 0) {
        drop(dev, 0, "read failed: %s", uv_strerror(r));
        return;
    }
    if (!dev->fleet->cfg.tls) {
        start_handshake(dev);
        return;
    }
    if (sim_tls_open(&dev->tls, dev->fleet->cfg.tls, dev->fleet->cfg.server_name) < 0) {
        drop(dev, 0, "cannot start a TLS session");
        return;
    }
    set_state(dev, SIM_DEVICE_TLS);
    if (sim_tls_handshake(&dev->tls) < 0 || flush_tls(dev) < 0)
        drop(dev, 0, "TLS handshake failed");
}

void sim_device_connect(struct sim_device *dev)
{
    struct sim_fleet *fleet = dev->fleet;
    int r;

    if (fleet->stopping || dev->tcp_open)
        return;
    if (dev->attempts++ > 0)
        fleet->stats.reconnects++;
    r = uv_tcp_init(fleet->loop, &dev->tcp);
    if (r < 0) {
        fleet->stats.connect_failures++;
        sim_fleet_log(fleet, dev->entry->id, "socket: %s", uv_strerror(r));
        schedule_retry(dev);
        return;
    }
    dev->tcp.data = dev;
    dev->tcp_open = 1;
    dev->tcp_closing = 0;
    set_state(dev, SIM_DEVICE_CONNECTING);
    uv_timer_start(&dev->timer, on_timer, fleet->cfg.handshake_timeout_ms, 0);
    r = uv_tcp_connect(&dev->connect_req, &dev->tcp, (const struct sockaddr *)&fleet->cfg.addr,
                       on_connect);
    if (r < 0)
        drop(dev, 0, "connect failed: %s", uv_strerror(r));
}

static void on_ping_timer(struct sim_device *dev)
{
    if (dev->ping_outstanding != 0) {
        drop(dev, 0, "no %s for %s %u within %u s", iotp_type_name(IOTP_TYPE_PONG),
             iotp_type_name(IOTP_TYPE_PING), (unsigned)dev->ping_outstanding,
             (unsigned)dev->ping_s);
        return;
    }
    if (++dev->ping_id == 0)
        dev->ping_id = 1; /* 0 is not a request id */
    dev->ping_outstanding = dev->ping_id;
    dev->fleet->stats.pings_sent++;
    send_system(dev, IOTP_TYPE_PING, dev->ping_id);
}

static void on_timer(uv_timer_t *timer)
{
    struct sim_device *dev = timer->data;

    switch (dev->state) {
    case SIM_DEVICE_BACKOFF:
        set_state(dev, SIM_DEVICE_QUEUED);
        sim_fleet_enqueue(dev->fleet, dev);
        break;
    case SIM_DEVICE_CONNECTING:
    case SIM_DEVICE_TLS:
    case SIM_DEVICE_HANDSHAKE:
        drop(dev, 0, "no WELCOME within %llu ms",
             (unsigned long long)dev->fleet->cfg.handshake_timeout_ms);
        break;
    case SIM_DEVICE_AUTHENTICATED:
        on_ping_timer(dev);
        break;
    case SIM_DEVICE_CLOSING:
        close_tcp(dev); /* the BYE grace at stop ran out */
        break;
    default:
        break;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    close_tcp(req->handle->data);
}

void sim_device_stop(struct sim_device *dev)
{
    enum sim_device_state prev = dev->state;

    if (prev == SIM_DEVICE_STOPPED)
        return;
    sim_fleet_dequeue(dev->fleet, dev);
    if (!dev->tcp_open) {
        finish_stop(dev);
        return;
    }
    if (dev->tcp_closing) {
        set_state(dev, SIM_DEVICE_CLOSING); /* on_tcp_closed finishes the stop */
        return;
    }
    if (prev == SIM_DEVICE_AUTHENTICATED) {
        send_system(dev, IOTP_TYPE_BYE, 0);
        if (dev->fleet->cfg.tls) {
            sim_tls_shutdown(&dev->tls);
            flush_tls(dev);
        }
    }
    if (dev->tcp_closing) /* sending BYE failed and dropped the connection */
        return;
    uv_read_stop((uv_stream_t *)&dev->tcp);
    set_state(dev, SIM_DEVICE_CLOSING);
    /* uv_shutdown lets the queued BYE leave before the close; a socket still connecting
     * has nothing to flush. */
    if (prev == SIM_DEVICE_CONNECTING ||
        uv_shutdown(&dev->shutdown_req, (uv_stream_t *)&dev->tcp, on_shutdown) < 0) {
        close_tcp(dev);
        return;
    }
    uv_timer_start(&dev->timer, on_timer, STOP_GRACE_MS, 0);
}
