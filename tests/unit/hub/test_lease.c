/*
 * test_lease.c - leases with a fake relay: the start command is sent once, for the first
 * holder; the stop once the last holder has gone (released, its session ended, or its lease
 * expired); a device that was offline gets its start when it comes online; an event without
 * start/stop commands, or an unknown device, is refused with nothing sent. In a cluster: a
 * device online on another node is held there (no command from here), and another node's hold
 * counts as one holder among ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub_fixture.h"

#include "iot_error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void expect_commands(const struct hub_fixture *f, const char *const *want)
{
    size_t n = 0;
    for (; want[n]; n++) {
        if (n >= f->fake.ncommands)
            fail_msg("%zu commands sent, want \"%s\" next", f->fake.ncommands, want[n]);
        assert_string_equal(f->fake.commands[n], want[n]);
    }
    assert_int_equal(f->fake.ncommands, n);
}

static int lease(struct hub_fixture *f, uint64_t holder, const char *device, const char *event,
                 uint32_t ttl_ms)
{
    char err[160] = "";
    int rc = hub_lease(f->hub, holder, "acme", device, event, ttl_ms, err, sizeof(err));
    hub_fixture_run(f); /* the relay's answers come back through the inbox */
    return rc;
}

static size_t leases_started(struct hub_fixture *f, size_t *leases)
{
    struct hub_stats st;
    hub_stats(f->hub, &st);
    *leases = st.leases;
    return st.leases_started;
}

static void start_for_first_holder_stop_after_last(void **state)
{
    struct hub_fixture *f = *state;
    size_t leases;
    assert_int_equal(lease(f, 1, "t1", "temp_changed", 60000), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", NULL});
    assert_int_equal(leases_started(f, &leases), 1);
    assert_int_equal(leases, 1);

    /* A second holder, and a renewal: the device was told already. */
    assert_int_equal(lease(f, 2, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, 1, "t1", "temp_changed", 60000), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", NULL});

    /* Another device is its own lease. */
    assert_int_equal(lease(f, 1, "t2", "temp_changed", 60000), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t2", NULL});

    /* Holder 1 lets go of both: t2 has nobody left, t1 still has holder 2. */
    hub_release(f->hub, 1);
    hub_fixture_run(f);
    expect_commands(f,
                    (const char *const[]){"start_temp t1", "start_temp t2", "stop_temp t2", NULL});
    assert_int_equal(leases_started(f, &leases), 1);
    assert_int_equal(leases, 1);

    /* Holder 2's session ends: the last holder of t1 is gone. */
    struct session_event_hooks hooks = hub_session_hooks(f->hub);
    hooks.gone(hooks.arg, 0, 1, 2);
    hub_fixture_run(f);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t2", "stop_temp t2",
                                             "stop_temp t1", NULL});
    assert_int_equal(leases_started(f, &leases), 0);
    assert_int_equal(leases, 0);
}

/* A device cut off (removed, disabled, rekeyed) loses its leases at once, without a stop
 * command (it is gone); a holder asking again starts afresh. */
static void device_cut_off_loses_its_leases(void **state)
{
    struct hub_fixture *f = *state;
    size_t leases;
    assert_int_equal(lease(f, 1, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, 2, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, 1, "t2", "temp_changed", 60000), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t2", NULL});
    hub_release_device(f->hub, "t1");
    hub_fixture_run(f);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t2", NULL});
    assert_int_equal(leases_started(f, &leases), 1);
    assert_int_equal(leases, 1); /* t2's */
    assert_int_equal(lease(f, 2, "t1", "temp_changed", 60000), IOT_OK);
    expect_commands(f,
                    (const char *const[]){"start_temp t1", "start_temp t2", "start_temp t1", NULL});
}

static void expired_lease_sends_stop(void **state)
{
    struct hub_fixture *f = *state;
    assert_int_equal(lease(f, 7, "t1", "temp_changed", 20), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", NULL});
    /* The hub's tick (every 250 ms) drops expired holders. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        uv_run(&f->loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (f->fake.ncommands < 2 && now.tv_sec - start.tv_sec < 5);
    expect_commands(f, (const char *const[]){"start_temp t1", "stop_temp t1", NULL});
}

static void offline_device_gets_start_when_online(void **state)
{
    struct hub_fixture *f = *state;
    size_t leases;
    f->fake.relay_outcome = RELAY_OFFLINE;
    assert_int_equal(lease(f, 1, "t1", "temp_changed", 60000), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", NULL}); /* tried, refused */
    assert_int_equal(leases_started(f, &leases), 0);
    assert_int_equal(leases, 1); /* held all the same */

    f->fake.relay_outcome = RELAY_OK;
    struct session_event_hooks hooks = hub_session_hooks(f->hub);
    hooks.presence(hooks.arg, "acme", "t1", "thermo", true);
    hub_fixture_run(f);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t1", NULL});
    assert_int_equal(leases_started(f, &leases), 1);

    /* Never started on t2 (offline), so released without a stop. */
    f->fake.relay_outcome = RELAY_OFFLINE;
    assert_int_equal(lease(f, 1, "t2", "temp_changed", 60000), IOT_OK);
    hub_release(f->hub, 1);
    hub_fixture_run(f);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t1", "start_temp t2",
                                             "stop_temp t1", NULL});
}

/* A fake cluster: the holds the hub asks of other nodes, as "hold|release NODE DEVICE". */
struct fake_cluster {
    char calls[8][96];
    size_t n;
};

static void fake_cluster_lease(void *arg, uint16_t node, const char *tenant, const char *device,
                               const char *event, bool hold)
{
    struct fake_cluster *fc = arg;
    (void)tenant, (void)event;
    if (fc->n < 8)
        snprintf(fc->calls[fc->n++], sizeof(fc->calls[0]), "%s %u %s", hold ? "hold" : "release",
                 node, device);
}

/* In a cluster: a device online on another node is held there, once for all our holders, and
 * released after the last; no command goes from here. */
static void remote_device_held_at_its_node(void **state)
{
    struct hub_fixture *f = *state;
    struct fake_cluster fc = {0};
    struct hub_cluster_port port = {.arg = &fc, .lease = fake_cluster_lease};
    hub_set_cluster(f->hub, &port);
    uint16_t b = presence_node_id(f->presence, "b");
    struct presence_entry e = {.online = true, .node = b, .serial = 9}, previous;
    snprintf(e.device_id, sizeof(e.device_id), "t1");
    assert_int_equal(presence_claim_remote(f->presence, &e, true, &previous), 0);
    char hold[32], release[32];
    snprintf(hold, sizeof(hold), "hold %u t1", b);
    snprintf(release, sizeof(release), "release %u t1", b);

    assert_int_equal(lease(f, 1, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, 2, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(fc.n, 1);
    assert_string_equal(fc.calls[0], hold);
    hub_release(f->hub, 1);
    hub_fixture_run(f);
    assert_int_equal(fc.n, 1); /* holder 2 remains */
    hub_release(f->hub, 2);
    hub_fixture_run(f);
    assert_int_equal(fc.n, 2);
    assert_string_equal(fc.calls[1], release);
    expect_commands(f, (const char *const[]){NULL});
    hub_set_cluster(f->hub, NULL);
}

/* The device's node: another node is one holder among ours (hub_node_holder), released alone
 * or with every lease of that node (it died). */
static void other_nodes_count_with_ours(void **state)
{
    struct hub_fixture *f = *state;
    uint64_t b = hub_node_holder(2), c = hub_node_holder(3);
    assert_int_equal(lease(f, b, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, 5, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, c, "t1", "temp_changed", 60000), IOT_OK);
    assert_int_equal(lease(f, c, "t2", "temp_changed", 60000), IOT_OK);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t2", NULL});
    hub_release_one(f->hub, b, "t1", "temp_changed");
    hub_release(f->hub, 5);
    hub_fixture_run(f);
    expect_commands(f, (const char *const[]){"start_temp t1", "start_temp t2", NULL});
    hub_release(f->hub, c); /* node c is gone: both its leases end */
    hub_fixture_run(f);
    assert_int_equal(f->fake.ncommands, 4);
    assert_string_equal(f->fake.commands[2], "stop_temp t1");
    assert_string_equal(f->fake.commands[3], "stop_temp t2");
}

static void refused_leases_send_nothing(void **state)
{
    struct hub_fixture *f = *state;
    size_t leases;
    assert_int_equal(lease(f, 1, "t1", "humidity", 60000), IOT_EINVAL); /* no start/stop */
    assert_int_equal(lease(f, 1, "nope", "temp_changed", 60000), IOT_ENOTFOUND);
    assert_int_equal(lease(f, 1, "t1", "start_temp", 60000), IOT_ENOTFOUND); /* not an event */
    char err[160];
    /* b1 is beta's: not found in tenant acme */
    assert_int_equal(hub_lease(f->hub, 1, "acme", "b1", "temp_changed", 60000, err, sizeof(err)),
                     IOT_ENOTFOUND);
    assert_int_equal(f->fake.ncommands, 0);
    leases_started(f, &leases);
    assert_int_equal(leases, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(start_for_first_holder_stop_after_last, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(device_cut_off_loses_its_leases, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(expired_lease_sends_stop, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(offline_device_gets_start_when_online, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(remote_device_held_at_its_node, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(other_nodes_count_with_ours, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(refused_leases_send_nothing, hub_fixture_setup,
                                        hub_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
