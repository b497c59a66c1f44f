/*
 * hub_fixture.h - a hub on its own loop for the unit tests of iotd/hub: a registry snapshot
 * built in memory, presence, and fake sessions standing in for the session layer and the relay
 * (struct hub_sessions_port), which record what the hub asked of them.
 *
 * The registry: tenants acme and beta. acme's type thermo has the events temp_changed (started
 * and stopped by the commands start_temp and stop_temp) and humidity (no commands); beta's
 * type bthermo has temp_changed. Devices t1, t2 (acme, thermo) and b1 (beta, bthermo). Users
 * alice@acme (may read temp_changed of t1 only) and dave@acme (may read humidity of any
 * device).
 */
#ifndef TEST_HUB_FIXTURE_H
#define TEST_HUB_FIXTURE_H

#include "hub/hub.h"

#define FAKE_MAX 32
#define FAKE_IO  3

struct fake_sessions {
    /* sessions_ack */
    size_t acked;
    /* sessions_deliver: the io thread whose inbox is full (refuses), or FAKE_IO for none */
    unsigned full_io;
    size_t delivered[FAKE_IO]; /* targets reached per io thread */
    uint64_t delivered_to[FAKE_MAX];
    char delivered_what[FAKE_MAX][96]; /* "kind:device:first field" of each */
    size_t ndelivered_to;
    /* sessions_reply */
    struct fake_reply {
        uint64_t serial;
        char code[32], key[16], value[32];
    } replies[FAKE_MAX];
    size_t nreplies;
    /* sessions_relay: what it answers (RELAY_OK: on its way, then answered OK), and the
     * commands it was given as "command device" */
    enum relay_outcome relay_outcome;
    char commands[FAKE_MAX][160];
    size_t ncommands;
};

struct hub_fixture {
    uv_loop_t loop;
    inbox_t inbox;
    registry_t *registry;
    presence_t *presence;
    hub_t *hub;
    struct fake_sessions fake;
};

/* Set up and tear down (cmocka group fixtures: *state is the struct hub_fixture). */
int hub_fixture_setup(void **state);
int hub_fixture_teardown(void **state);

/* Run the loop until nothing is ready (inbox messages handled). */
void hub_fixture_run(struct hub_fixture *f);

/* A user session's request, pushed through the hub's session hooks as an io thread does. */
void hub_fixture_request(struct hub_fixture *f, const struct session_sub_request *r);

/* An event of device (tenant, type) named name with one field, one reference. */
struct event *hub_fixture_event(const char *tenant, const char *device, const char *type,
                                const char *name, uint32_t seq);

#endif
