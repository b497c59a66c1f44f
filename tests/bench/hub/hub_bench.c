/*
 * hub_bench.c - the hub's fan-out in process: durable events per second through hub_durable
 * (the store's completion: ACKs, fan-out to subscribers, alarm rules) with W watchers, of
 * which six match the events (an every-tenant stream, a whole-tenant stream, one per device
 * that sends) and the rest watch other devices of the same tenant, as 10,000 operators' or
 * apps' streams of a large fleet would. No MariaDB, no sockets: a hub on its own loop, sessions
 * faked through hub_deps.port, a registry snapshot built in memory. Run by hub/run.sh (or by
 * hand: hub_bench WATCHERS EVENTS), which links it against a build's libraries.
 *
 * Prints one line: "watchers=W events=E seconds=S events_per_s=R delivered=D".
 */
#include "hub/hub.h"

#include "iot_error.h"
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SENDERS 4  /* devices whose events go round */
#define BATCH   64 /* events per durable batch, as the store's group commit completes them */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fake_ack(sessions_t *s, struct event *const *events, size_t n)
{
    (void)s, (void)events, (void)n;
}

static int fake_deliver(sessions_t *s, unsigned io, struct event *item,
                        const struct session_target *targets, size_t n)
{
    (void)s, (void)io, (void)item, (void)targets, (void)n;
    return IOT_OK;
}

static void fake_reply(sessions_t *s, unsigned io, uint32_t slot, uint64_t serial, uint32_t id,
                       const char *code, const char *key, const char *value)
{
    (void)s, (void)io, (void)slot, (void)serial, (void)id, (void)code, (void)key, (void)value;
}

static enum relay_outcome fake_relay(sessions_t *s, int current, struct relay_request *req)
{
    (void)s, (void)current;
    free(req);
    return RELAY_OFFLINE;
}

static void on_item(void *arg, struct event *item)
{
    (void)item;
    ++*(uint64_t *)arg;
}

static int watch(hub_t *hub, const char *tenant, const char *device, uint64_t *counter)
{
    struct hub_filter f = {.alarms = HUB_EVENTS_AND_ALARMS};
    uint64_t id;
    snprintf(f.tenant, sizeof(f.tenant), "%s", tenant);
    snprintf(f.device, sizeof(f.device), "%s", device);
    return hub_subscribe(hub, &f, on_item, counter, &id);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hub_bench WATCHERS EVENTS\n");
        return 2;
    }
    long watchers = atol(argv[1]), nevents = atol(argv[2]);
    if (watchers < 6 || nevents < BATCH) {
        fprintf(stderr, "hub_bench: at least 6 watchers and %d events\n", BATCH);
        return 2;
    }
    uv_loop_t loop;
    inbox_t inbox;
    registry_t *registry = NULL;
    presence_t *presence = NULL;
    hub_t *hub = NULL;
    uint64_t delivered = 0;
    char err[200] = "";
    int rc = 1;

    uv_loop_init(&loop);
    registry_snapshot_t *snap = snapshot_builder_new();
    if (inbox_init(&inbox, &loop, 256, NULL) != IOT_OK || registry_new(&registry) != IOT_OK ||
        presence_new(&presence) != IOT_OK || !snap ||
        snapshot_finish(snap, err, sizeof(err)) != IOT_OK) {
        fprintf(stderr, "hub_bench: set-up failed %s\n", err);
        return 1;
    }
    registry_publish(registry, snap);
    struct hub_deps deps = {.loop = &loop,
                            .inbox = &inbox,
                            .registry = registry,
                            .presence = presence,
                            .port = {fake_ack, fake_deliver, fake_reply, fake_relay}};
    struct hub_options opts = {0};
    if (hub_start(&hub, &deps, &opts) != IOT_OK)
        goto out;
    hub_set_sessions(hub, (sessions_t *)(void *)&delivered);

    /* The six that match, then the others. */
    char dev[32];
    int bad = watch(hub, "", "", &delivered) | watch(hub, "bench", "", &delivered);
    for (int d = 0; d < SENDERS; d++) {
        snprintf(dev, sizeof(dev), "sender-%d", d);
        bad |= watch(hub, "bench", dev, &delivered);
    }
    for (long w = 6; w < watchers; w++) {
        snprintf(dev, sizeof(dev), "other-%ld", w);
        bad |= watch(hub, "bench", dev, &delivered);
    }
    if (bad)
        goto out;

    struct event *batch[BATCH];
    for (int i = 0; i < BATCH; i++) {
        const char *fields[] = {"value=21.5"};
        snprintf(dev, sizeof(dev), "sender-%d", i % SENDERS);
        batch[i] = event_new(EVENT_KIND_EVENT, "bench", dev, "sensor", "temperature",
                             (uint32_t)i + 1, 0, 1, fields);
        if (!batch[i])
            goto out;
    }
    long done = 0;
    double t0 = now_s();
    for (; done + BATCH <= nevents; done += BATCH)
        hub_durable(batch, BATCH, hub);
    double secs = now_s() - t0;
    for (int i = 0; i < BATCH; i++)
        event_unref(batch[i]);
    /* Each event reaches its three: every tenant, the tenant, its device. */
    if (delivered != (uint64_t)done * 3) {
        fprintf(stderr, "hub_bench: %llu deliveries, want %ld\n", (unsigned long long)delivered,
                done * 3);
        goto out;
    }
    printf("watchers=%ld events=%ld seconds=%.4f events_per_s=%.0f delivered=%llu\n", watchers,
           done, secs, (double)done / secs, (unsigned long long)delivered);
    rc = 0;
out:
    if (hub)
        hub_stop(hub);
    inbox_close(&inbox, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    hub_free(hub);
    uv_loop_close(&loop);
    presence_free(presence);
    registry_free(registry);
    return rc;
}
