/*
 * sim_device_events.c - a simulated device's events and alarms: generating them at the
 * configured rate and handing them to the device's engine, which queues them in its
 * iotp_outbox, sends them while the session is up and acts on the server's ACK or ERROR; the
 * engine's notes about them come back here to be counted and logged.
 *
 * The outbox storage is allocated at the first event, so that a fleet without events costs
 * nothing. Sequence numbers come in reserved blocks; with --state-dir each block's high-water
 * mark is in the device's file (fsync'ed) before its first number is used: the engine asks
 * through its persist store, sim_device_store_high_water.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim_device.h"
#include "sim_device_internal.h"
#include "sim_fleet.h"

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
        iotp_device_attach_outbox(&dev->engine, dev->outbox_storage, size, high_water) < 0) {
        sim_fleet_log(dev->fleet, dev->entry->id, "no events: out of memory");
        free(dev->outbox_storage);
        dev->outbox_storage = NULL;
        dev->outbox_failed = 1;
        return -1;
    }
    return 0;
}

/* The engine's persist store: make the next block of sequence numbers durable. A failure
 * leaves the old reservation: once it runs out, events are refused until a store succeeds. */
int sim_device_store_high_water(void *ctx, uint32_t high_water)
{
    struct sim_device *dev = ctx;
    const struct sim_event_config *ec = dev->fleet->cfg.events;
    char err[512];

    if (ec && ec->state_dir &&
        sim_seq_store(ec->state_dir, dev->entry->id, high_water, err, sizeof(err)) < 0) {
        sim_fleet_log(dev->fleet, dev->entry->id, "cannot reserve sequence numbers: %s", err);
        return IOTP_EIO;
    }
    return 0;
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
    else if (iotp_outbox_pending(iotp_device_outbox(&dev->engine)) >= ec->outbox_entries)
        r = IOTP_ENOSPC;
    else {
        n = sim_event_fields(ec, &dev->gen, name,
                             iotp_outbox_last_seq(iotp_device_outbox(&dev->engine)) + 1, periodic,
                             fleet_random, dev->fleet, fields, values);
        if (kind == IOTP_ALARM) {
            fields[n].key = "state";
            fields[n++].value = state;
            if (severity && *severity) {
                fields[n].key = "severity";
                fields[n++].value = severity;
            }
        }
        r = iotp_device_event(&dev->engine, kind, name, n, fields, &seq);
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

/* Count the device as settled once every event it will make is made and acknowledged (what
 * iotsim --exit-when-acked waits for); leaving is how many pending events are about to go. */
static void settle_check(struct sim_device *dev, unsigned leaving)
{
    const struct sim_event_config *ec = dev->fleet->cfg.events;

    if (dev->events_settled || !ec || !dev->events_started)
        return;
    if (ec->count > 0 && dev->gen.made < ec->count)
        return;
    if (dev->outbox_storage && iotp_outbox_pending(iotp_device_outbox(&dev->engine)) > leaving)
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
    settle_check(dev, 0);
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
int sim_device_control_set_events(void *ctx, int on, uint32_t period_ms)
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

/* Every WELCOME (the engine has already rewound its outbox to resend what is unacknowledged). */
void sim_device_events_on_session(struct sim_device *dev)
{
    if (!dev->fleet->cfg.events)
        return;
    if (!dev->events_started)
        start_events(dev);
    settle_check(dev, 0);
}

/* The engine's notes about events. */
void sim_device_events_note(struct sim_device *dev, const struct iotp_device_note *n)
{
    struct sim_fleet *fleet = dev->fleet;
    struct sim_stats *st = &fleet->stats;
    FILE *log = fleet->cfg.events ? fleet->cfg.events->ack_log : NULL;

    switch (n->kind) {
    case IOTP_DEVICE_NOTE_EVENT_SENT:
        st->events_sent++;
        st->events_resent += n->value;
        break;
    case IOTP_DEVICE_NOTE_EVENT_ACKED:
        if (log)
            sim_ack_log_write(log, n->frame, n->len);
        st->events_acked++;
        st->events_pending--;
        settle_check(dev, 1); /* the engine removes the event once this note returns */
        break;
    case IOTP_DEVICE_NOTE_EVENT_DROPPED:
        st->events_rejected++;
        st->events_pending--;
        sim_fleet_log(fleet, dev->entry->id, "event %u refused: code=%s%s%s", (unsigned)n->id,
                      n->code ? n->code : "?", n->msg ? " msg=" : "", n->msg ? n->msg : "");
        settle_check(dev, 0);
        break;
    case IOTP_DEVICE_NOTE_EVENT_BUSY:
        st->events_busy++;
        break;
    case IOTP_DEVICE_NOTE_ACK_UNKNOWN:
        if (fleet->cfg.verbose)
            sim_fleet_log(fleet, dev->entry->id, "%s %u for no pending event",
                          iotp_type_name(IOTP_TYPE_ACK), (unsigned)n->id);
        break;
    default:
        break;
    }
}
