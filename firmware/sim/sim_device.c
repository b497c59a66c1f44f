/*
 * sim_device.c - one simulated device's connection: its state, the socket and TLS, writes,
 * the engine's timer, reconnecting when the engine says, and stopping (contract and state
 * diagram in sim_device.h). The engine's platform and notes are in sim_device_engine.c, the
 * events in sim_device_events.c.
 *
 * Bytes flow socket -> (TLS) -> iotp_device_feed, and frames flow engine -> (TLS) -> socket.
 * Writes first try uv_try_write and queue only what the kernel did not take, copied into a
 * request freed by its callback: a device's frames are small and mostly go out at once, so
 * 10,000 idle devices hold no write buffers.
 *
 * Every way a connection ends goes through sim_device_drop(), which counts it, logs it and
 * closes the socket; the close callback then decides between the next backoff (running) and
 * STOPPED (stopping). Callbacks that can run after a drop (a read's remaining frames, a write's
 * completion, a cancelled connect) check tcp_closing first.
 */
#include "sim_device.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_device_internal.h"
#include "sim_fleet.h"

/* Grace for a BYE to leave at stop before the socket is closed anyway. */
#define STOP_GRACE_MS 2000

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
};

static void on_timer(uv_timer_t *timer);

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
void sim_device_set_state(struct sim_device *dev, enum sim_device_state next)
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
    if (sim_device_engine_init(dev) < 0)
        return UV_EINVAL;
    r = uv_timer_init(fleet->loop, &dev->timer);
    if (r < 0)
        return r;
    dev->timer.data = dev;
    dev->timer_open = 1;
    /* Timers hold no descriptor and cost nothing until started: every device gets them. */
    uv_timer_init(fleet->loop, &dev->event_timer);
    dev->event_timer.data = dev;
    dev->event_timer_open = 1;
    dev->control.ctx = dev;
    dev->control.set_events = fleet->cfg.events ? sim_device_control_set_events : NULL;
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
    if (dev->event_timer_open) {
        dev->event_timer_open = 0;
        uv_close((uv_handle_t *)&dev->event_timer, NULL);
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

/* End the current connection (see sim_device_internal.h). */
void sim_device_drop(struct sim_device *dev, int auth, const char *fmt, ...)
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
    sim_device_set_state(dev, SIM_DEVICE_CLOSING);
    iotp_device_transport_down(&dev->engine); /* picks the backoff delay */
    close_tcp(dev);
}

void sim_device_arm_timer(struct sim_device *dev)
{
    uint32_t ms;

    /* At stop the timer is the BYE grace, and the engine has nothing left to wait for. */
    if (!dev->timer_open || dev->state == SIM_DEVICE_CLOSING || dev->state == SIM_DEVICE_STOPPED)
        return;
    ms = iotp_device_next_timeout_ms(&dev->engine);
    if (ms == IOTP_DEVICE_NO_TIMEOUT)
        uv_timer_stop(&dev->timer);
    else
        uv_timer_start(&dev->timer, on_timer, ms, 0);
}

/* Wait out the engine's backoff, then ask the pacer for a slot again (its CONNECT note). */
static void schedule_retry(struct sim_device *dev)
{
    iotp_device_transport_down(&dev->engine);
    sim_device_set_state(dev, SIM_DEVICE_BACKOFF);
    sim_device_arm_timer(dev);
}

static void finish_stop(struct sim_device *dev)
{
    iotp_device_stop(&dev->engine); /* a no-op if it is stopped already */
    sim_device_set_state(dev, SIM_DEVICE_STOPPED);
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
        sim_device_drop(dev, 0, "write failed: %s", uv_strerror(status));
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

/* Send bytes (through TLS when configured); the engine ends the session on failure. */
int sim_device_write(struct sim_device *dev, const uint8_t *data, size_t len)
{
    if (!dev->tcp_open || dev->tcp_closing)
        return UV_ENOTCONN;
    if (dev->fleet->cfg.tls)
        return sim_tls_write(&dev->tls, data, len) < 0 ? UV_EPROTO : flush_tls(dev);
    return send_raw(dev, data, len);
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
        sim_device_drop(dev, 0, "TLS: out of memory");
        return;
    }
    if (dev->state == SIM_DEVICE_TLS) {
        r = sim_tls_handshake(&dev->tls);
        if (flush_tls(dev) < 0 || r < 0) {
            sim_device_drop(dev, 0, "TLS handshake failed: %s", sim_tls_error(why, sizeof(why)));
            return;
        }
        if (r == 0)
            return;
        sim_device_set_state(dev, SIM_DEVICE_HANDSHAKE);
        iotp_device_transport_up(&dev->engine);
    }
    while (!dev->tcp_closing) {
        r = sim_tls_read(&dev->tls, plain, sizeof(dev->fleet->read_buf));
        if (r < 0) {
            sim_device_drop(dev, 0, "TLS session ended: %s", sim_tls_error(why, sizeof(why)));
            return;
        }
        if (r == 0)
            break;
        iotp_device_feed(&dev->engine, plain, (size_t)r);
    }
    if (!dev->tcp_closing && flush_tls(dev) < 0)
        sim_device_drop(dev, 0, "send failed");
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct sim_device *dev = stream->data;
    struct sim_fleet *fleet = dev->fleet;
    int r;

    if (nread == 0 || dev->tcp_closing)
        return;
    if (nread < 0) {
        sim_device_drop(dev, 0, "%s",
                        nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (fleet->cfg.tls) {
        on_tls_bytes(dev, (const uint8_t *)buf->base, (size_t)nread);
        sim_device_arm_timer(dev);
        return;
    }
    fleet->out_dev = dev;
    iotp_device_feed(&dev->engine, (const uint8_t *)buf->base, (size_t)nread);
    /* A sim_device_drop() on the way closed the socket: what was said to it goes nowhere. */
    if (!dev->tcp_closing && (r = flush_out(fleet)) < 0)
        sim_device_drop(dev, 0, "send failed: %s", uv_strerror(r));
    fleet->out_dev = NULL;
    fleet->out_len = 0;
    sim_device_arm_timer(dev);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct sim_device *dev = req->handle->data;
    int r;

    if (status == UV_ECANCELED || dev->tcp_closing)
        return;
    if (status < 0) {
        sim_device_drop(dev, 0, "connect failed: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&dev->tcp, 1);
    r = uv_read_start((uv_stream_t *)&dev->tcp, on_alloc, on_read);
    if (r < 0) {
        sim_device_drop(dev, 0, "read failed: %s", uv_strerror(r));
        return;
    }
    if (!dev->fleet->cfg.tls) {
        sim_device_set_state(dev, SIM_DEVICE_HANDSHAKE);
        iotp_device_transport_up(&dev->engine);
        sim_device_arm_timer(dev);
        return;
    }
    if (sim_tls_open(&dev->tls, dev->fleet->cfg.tls, iotp_device_server(&dev->engine)->host) < 0) {
        sim_device_drop(dev, 0, "cannot start a TLS session");
        return;
    }
    sim_device_set_state(dev, SIM_DEVICE_TLS);
    if (sim_tls_handshake(&dev->tls) < 0 || flush_tls(dev) < 0)
        sim_device_drop(dev, 0, "TLS handshake failed");
}

void sim_device_connect(struct sim_device *dev)
{
    struct sim_fleet *fleet = dev->fleet;
    const struct sockaddr *addr;
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
    if (fleet->cfg.source.ss_family != AF_UNSPEC &&
        (r = uv_tcp_bind(&dev->tcp, (const struct sockaddr *)&fleet->cfg.source, 0)) < 0) {
        sim_device_drop(dev, 0, "bind to the source address failed: %s", uv_strerror(r));
        return;
    }
    sim_device_set_state(dev, SIM_DEVICE_CONNECTING);
    iotp_device_connecting(&dev->engine); /* the handshake deadline runs from here */
    sim_device_arm_timer(dev);
    /* The engine's current server: the fleet resolved each one once. */
    addr = (const struct sockaddr *)&fleet->cfg.addrs[iotp_device_server_index(&dev->engine)];
    r = uv_tcp_connect(&dev->connect_req, &dev->tcp, addr, on_connect);
    if (r < 0)
        sim_device_drop(dev, 0, "connect failed: %s", uv_strerror(r));
}

static void on_timer(uv_timer_t *timer)
{
    struct sim_device *dev = timer->data;

    if (dev->state == SIM_DEVICE_CLOSING) {
        close_tcp(dev); /* the BYE grace at stop ran out */
        return;
    }
    /* The handshake deadline, keepalive, the end of a busy pause or of the backoff. */
    iotp_device_tick(&dev->engine);
    sim_device_arm_timer(dev);
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
        sim_device_set_state(dev, SIM_DEVICE_CLOSING); /* on_tcp_closed finishes the stop */
        return;
    }
    /* BYE when authenticated; a failed send drops the connection through the engine. */
    if (iotp_device_stop(&dev->engine) && !dev->tcp_closing) {
        if (dev->fleet->cfg.tls) {
            sim_tls_shutdown(&dev->tls);
            flush_tls(dev);
        }
    }
    if (dev->tcp_closing) /* sending BYE failed and dropped the connection */
        return;
    uv_read_stop((uv_stream_t *)&dev->tcp);
    sim_device_set_state(dev, SIM_DEVICE_CLOSING);
    /* uv_shutdown lets the queued BYE leave before the close; a socket still connecting
     * has nothing to flush. */
    if (prev == SIM_DEVICE_CONNECTING ||
        uv_shutdown(&dev->shutdown_req, (uv_stream_t *)&dev->tcp, on_shutdown) < 0) {
        close_tcp(dev);
        return;
    }
    uv_timer_start(&dev->timer, on_timer, STOP_GRACE_MS, 0);
}
