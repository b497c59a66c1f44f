/*
 * sim_fleet.c - the devices of one iotsim process and what they share (contract in
 * sim_fleet.h).
 *
 * The connect pacer is a token bucket refilled at cfg.connect_rate per second, holding at most
 * 20 ms worth of tokens so the attempts of a large start come as a steady stream rather than
 * bursts. Its timer runs only while devices wait, so an idle simulator wakes up only for
 * keepalives.
 */
#include "sim_fleet.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sim_device.h"

/* Problems logged without --verbose before the rest are only counted. */
#define QUIET_LOG_LIMIT 10
#define PACER_TICK_MS   10

static void on_pacer(uv_timer_t *timer);

int sim_fleet_init(struct sim_fleet *fleet, uv_loop_t *loop, const struct sim_fleet_config *cfg,
                   const struct sim_device_entry *entries, size_t count)
{
    size_t i = 0;
    int r;

    memset(fleet, 0, sizeof(*fleet));
    fleet->loop = loop;
    fleet->cfg = *cfg;
    fleet->count = count;
    fleet->all_authenticated_ms = -1;
    fleet->stats.configured = count;
    if (getrandom(&fleet->rng, sizeof(fleet->rng), 0) != sizeof(fleet->rng) || fleet->rng == 0)
        fleet->rng = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull | 1;
    fleet->devices = calloc(count, sizeof(*fleet->devices));
    if (!fleet->devices)
        return UV_ENOMEM;
    r = uv_timer_init(loop, &fleet->pacer);
    if (r < 0)
        goto fail;
    fleet->pacer.data = fleet;
    fleet->pacer_open = 1;
    sim_delayed_init(&fleet->delayed, loop, sim_device_send_answer, NULL);
    for (i = 0; i < count; i++) {
        r = sim_device_init(&fleet->devices[i], fleet, &entries[i]);
        if (r < 0)
            goto fail;
    }
    return 0;
fail:
    /* Handles already initialised must be closed and the loop run before the memory goes. */
    while (i-- > 0)
        sim_device_close(&fleet->devices[i]);
    if (fleet->pacer_open)
        uv_close((uv_handle_t *)&fleet->pacer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    free(fleet->devices);
    fleet->devices = NULL;
    return r;
}

void sim_fleet_start(struct sim_fleet *fleet)
{
    fleet->started_ms = uv_now(fleet->loop);
    fleet->tokens = 1; /* the first device goes at once */
    fleet->tokens_ms = fleet->started_ms;
    for (size_t i = 0; i < fleet->count; i++) {
        fleet->devices[i].state = SIM_DEVICE_QUEUED;
        sim_fleet_enqueue(fleet, &fleet->devices[i]);
    }
}

void sim_fleet_stop(struct sim_fleet *fleet)
{
    if (fleet->stopping)
        return;
    fleet->stopping = 1;
    fleet->at_stop = fleet->stats;
    for (size_t i = 0; i < fleet->count; i++)
        sim_device_stop(&fleet->devices[i]);
    sim_delayed_close(&fleet->delayed);
    if (fleet->pacer_open) {
        fleet->pacer_open = 0;
        uv_close((uv_handle_t *)&fleet->pacer, NULL);
    }
}

void sim_fleet_free(struct sim_fleet *fleet)
{
    for (size_t i = 0; i < fleet->count; i++)
        sim_device_free(&fleet->devices[i]);
    free(fleet->devices);
    fleet->devices = NULL;
    fleet->count = 0;
}

void sim_fleet_enqueue(struct sim_fleet *fleet, struct sim_device *dev)
{
    if (dev->queued || fleet->stopping)
        return;
    dev->queued = 1;
    dev->next_queued = NULL;
    if (fleet->queue_tail)
        fleet->queue_tail->next_queued = dev;
    else
        fleet->queue_head = dev;
    fleet->queue_tail = dev;
    if (!uv_is_active((uv_handle_t *)&fleet->pacer))
        uv_timer_start(&fleet->pacer, on_pacer, 0, PACER_TICK_MS);
}

void sim_fleet_dequeue(struct sim_fleet *fleet, struct sim_device *dev)
{
    struct sim_device **link = &fleet->queue_head, *prev = NULL;

    if (!dev->queued)
        return;
    /* Linear, but only used at stop, once per device still waiting. */
    while (*link && *link != dev) {
        prev = *link;
        link = &(*link)->next_queued;
    }
    if (*link) {
        *link = dev->next_queued;
        if (fleet->queue_tail == dev)
            fleet->queue_tail = prev;
    }
    dev->queued = 0;
    dev->next_queued = NULL;
}

static void on_pacer(uv_timer_t *timer)
{
    struct sim_fleet *fleet = timer->data;
    uint64_t now = uv_now(fleet->loop);
    double burst = fleet->cfg.connect_rate * 0.02;

    if (burst < 1)
        burst = 1;
    fleet->tokens += fleet->cfg.connect_rate * (double)(now - fleet->tokens_ms) / 1000.0;
    fleet->tokens_ms = now;
    if (fleet->tokens > burst)
        fleet->tokens = burst;
    while (fleet->queue_head && fleet->tokens >= 1) {
        struct sim_device *dev = fleet->queue_head;

        fleet->queue_head = dev->next_queued;
        if (!fleet->queue_head)
            fleet->queue_tail = NULL;
        dev->queued = 0;
        dev->next_queued = NULL;
        fleet->tokens -= 1;
        sim_device_connect(dev);
    }
    if (!fleet->queue_head)
        uv_timer_stop(&fleet->pacer);
}

uint32_t sim_fleet_random(struct sim_fleet *fleet)
{
    /* xorshift64*: fast and well spread, which is all jitter needs. */
    uint64_t x = fleet->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    fleet->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

void sim_fleet_log(struct sim_fleet *fleet, const char *device_id, const char *fmt, ...)
{
    va_list ap;

    if (!fleet->cfg.verbose) {
        if (fleet->logged > QUIET_LOG_LIMIT)
            return;
        if (fleet->logged++ == QUIET_LOG_LIMIT) {
            fprintf(stderr, "iotsim: further device messages suppressed (-v shows all)\n");
            return;
        }
    }
    fprintf(stderr, "iotsim: %s: ", device_id);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void sim_fleet_authenticated_changed(struct sim_fleet *fleet)
{
    if (fleet->all_authenticated_ms < 0 && fleet->stats.authenticated == fleet->count)
        fleet->all_authenticated_ms = (int64_t)(uv_now(fleet->loop) - fleet->started_ms);
    if (fleet->on_authenticated_change)
        fleet->on_authenticated_change(fleet, fleet->arg);
}

void sim_fleet_events_settled(struct sim_fleet *fleet)
{
    fleet->events_settled++;
    if (fleet->on_events_settled)
        fleet->on_events_settled(fleet, fleet->arg);
}

/* The event counters, appended to a stats line once events are in use. */
static void print_event_stats(const struct sim_stats *s, FILE *out, int json)
{
    fprintf(out,
            json ? ",\"events_generated\":%llu,\"events_sent\":%llu,\"events_resent\":%llu,"
                   "\"events_acked\":%llu,\"events_rejected\":%llu,\"events_busy\":%llu,"
                   "\"events_refused\":%llu,\"events_pending\":%llu"
                 : " events_generated=%llu events_sent=%llu events_resent=%llu events_acked=%llu"
                   " events_rejected=%llu events_busy=%llu events_refused=%llu"
                   " events_pending=%llu",
            (unsigned long long)s->events_generated, (unsigned long long)s->events_sent,
            (unsigned long long)s->events_resent, (unsigned long long)s->events_acked,
            (unsigned long long)s->events_rejected, (unsigned long long)s->events_busy,
            (unsigned long long)s->events_refused, (unsigned long long)s->events_pending);
}

void sim_fleet_print_stats(const struct sim_fleet *fleet, FILE *out, int json, int final)
{
    struct sim_stats now = fleet->stats;
    const struct sim_stats *s = &now;
    uint64_t elapsed = uv_now(fleet->loop) - fleet->started_ms;
    char when[32], reached[48] = "";
    struct timespec ts;
    struct tm tm;

    if (final && fleet->stopping) {
        now.connecting = fleet->at_stop.connecting;
        now.authenticated = fleet->at_stop.authenticated;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (final && fleet->all_authenticated_ms >= 0)
        snprintf(reached, sizeof(reached),
                 json ? ",\"all_authenticated_ms\":%lld" : " all_authenticated_ms=%lld",
                 (long long)fleet->all_authenticated_ms);
    if (json)
        fprintf(out,
                "{\"time\":\"%s\",\"elapsed_ms\":%llu,\"configured\":%llu,\"connecting\":%llu,"
                "\"authenticated\":%llu,\"auth_failures\":%llu,\"connect_failures\":%llu,"
                "\"disconnects\":%llu,\"reconnects\":%llu,\"pings_sent\":%llu,"
                "\"pongs_received\":%llu,\"requests_answered\":%llu",
                when, (unsigned long long)elapsed, (unsigned long long)s->configured,
                (unsigned long long)s->connecting, (unsigned long long)s->authenticated,
                (unsigned long long)s->auth_failures, (unsigned long long)s->connect_failures,
                (unsigned long long)s->disconnects, (unsigned long long)s->reconnects,
                (unsigned long long)s->pings_sent, (unsigned long long)s->pongs_received,
                (unsigned long long)s->requests_answered);
    else
        fprintf(out,
                "%s elapsed=%.1fs configured=%llu connecting=%llu authenticated=%llu "
                "auth_failures=%llu connect_failures=%llu disconnects=%llu reconnects=%llu "
                "pings_sent=%llu pongs_received=%llu requests_answered=%llu",
                when, (double)elapsed / 1000.0, (unsigned long long)s->configured,
                (unsigned long long)s->connecting, (unsigned long long)s->authenticated,
                (unsigned long long)s->auth_failures, (unsigned long long)s->connect_failures,
                (unsigned long long)s->disconnects, (unsigned long long)s->reconnects,
                (unsigned long long)s->pings_sent, (unsigned long long)s->pongs_received,
                (unsigned long long)s->requests_answered);
    if (fleet->cfg.events &&
        (fleet->cfg.events->rate > 0 || fleet->cfg.events->nalarms > 0 || s->events_generated > 0))
        print_event_stats(s, out, json);
    if (json)
        fprintf(out, "%s%s}\n", final ? ",\"final\":true" : "", reached);
    else
        fprintf(out, "%s%s\n", final ? " final" : "", reached);
    fflush(out);
}
