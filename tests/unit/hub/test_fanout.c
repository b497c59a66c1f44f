/*
 * test_fanout.c - the hub's fan-out: every subscriber gets the items its filter and the access
 * map let it see (read access is the same map as write access), a retransmitted event reaches
 * nobody twice, an io thread whose inbox is full loses the item for its own subscribers only
 * (counted as dropped) while the others get it, a connection gets an item once however many
 * of its subscriptions match, and a sink that ends its own subscription during fan-out makes
 * no other subscriber miss the item. Presence changes reach only the subscriptions that asked
 * for them (presence=1), of their scope, for devices the user may see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub_fixture.h"

#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A main-loop sink that records "device:name" of what it got. */
struct sink {
    char got[8][140];
    size_t n;
    hub_t *hub;
    uint64_t id;
    bool leave_after_first; /* unsubscribes itself from inside its first call */
};

static void on_item(void *arg, struct event *item)
{
    struct sink *s = arg;
    assert_true(s->n < 8);
    snprintf(s->got[s->n++], sizeof(s->got[0]), "%s:%s", item->device, item->name);
    if (s->leave_after_first)
        hub_unsubscribe(s->hub, s->id);
}

static void subscribe(struct hub_fixture *f, struct sink *s, const char *tenant,
                      const char *principal, const char *device, const char *event)
{
    struct hub_filter filter = {.alarms = HUB_EVENTS_AND_ALARMS};
    snprintf(filter.tenant, sizeof(filter.tenant), "%s", tenant);
    snprintf(filter.principal, sizeof(filter.principal), "%s", principal);
    snprintf(filter.device, sizeof(filter.device), "%s", device);
    snprintf(filter.event, sizeof(filter.event), "%s", event);
    s->hub = f->hub;
    assert_int_equal(hub_subscribe(f->hub, &filter, on_item, s, &s->id), IOT_OK);
}

static void expect_got(const struct sink *s, const char *const *want)
{
    size_t n = 0;
    for (; want[n]; n++) {
        if (n >= s->n)
            fail_msg("got %zu items, want %s next", s->n, want[n]);
        assert_string_equal(s->got[n], want[n]);
    }
    assert_int_equal(s->n, n);
}

/* The four events of the tests, made durable in one batch (as the store completes it). */
static void durable_batch(struct hub_fixture *f)
{
    struct event *events[] = {hub_fixture_event("acme", "t1", "thermo", "temp_changed", 1),
                              hub_fixture_event("acme", "t2", "thermo", "temp_changed", 1),
                              hub_fixture_event("acme", "t1", "thermo", "humidity", 2),
                              hub_fixture_event("beta", "b1", "bthermo", "temp_changed", 1)};
    hub_durable(events, 4, f->hub);
    for (size_t i = 0; i < 4; i++)
        event_unref(events[i]);
}

static void subscribers_see_what_filter_and_access_map_allow(void **state)
{
    struct hub_fixture *f = *state;
    struct sink all = {0}, beta = {0}, alice = {0}, dave = {0}, t2 = {0}, humidity = {0};
    subscribe(f, &all, "", "", "", "");                 /* an operator, every tenant */
    subscribe(f, &beta, "beta", "", "", "");            /* an operator of beta */
    subscribe(f, &alice, "acme", "alice@acme", "", ""); /* temp_changed of t1 only */
    subscribe(f, &dave, "acme", "dave@acme", "", "");   /* humidity of any device */
    subscribe(f, &t2, "acme", "", "t2", "");
    subscribe(f, &humidity, "acme", "", "", "humidity");

    durable_batch(f);

    expect_got(&all, (const char *const[]){"t1:temp_changed", "t2:temp_changed", "t1:humidity",
                                           "b1:temp_changed", NULL});
    expect_got(&beta, (const char *const[]){"b1:temp_changed", NULL});
    expect_got(&alice, (const char *const[]){"t1:temp_changed", NULL});
    expect_got(&dave, (const char *const[]){"t1:humidity", NULL});
    expect_got(&t2, (const char *const[]){"t2:temp_changed", NULL});
    expect_got(&humidity, (const char *const[]){"t1:humidity", NULL});
    assert_int_equal(f->fake.acked, 4); /* every event is acknowledged to its device */

    struct hub_stats st;
    hub_stats(f->hub, &st);
    assert_int_equal(st.events, 4);
    assert_int_equal(st.subscribers, 6);
    assert_int_equal(st.delivered, 4 + 1 + 1 + 1 + 1 + 1);
    uint64_t ids[] = {all.id, beta.id, alice.id, dave.id, t2.id, humidity.id};
    for (size_t i = 0; i < 6; i++)
        hub_unsubscribe(f->hub, ids[i]);
    hub_stats(f->hub, &st);
    assert_int_equal(st.subscribers, 0);
}

static void retransmission_reaches_nobody_twice(void **state)
{
    struct hub_fixture *f = *state;
    struct sink all = {0};
    subscribe(f, &all, "", "", "", "");
    struct event *ev = hub_fixture_event("acme", "t1", "thermo", "temp_changed", 7);
    ev->duplicate = true; /* the store had it already: the device retransmitted */
    hub_durable(&ev, 1, f->hub);
    event_unref(ev);
    assert_int_equal(all.n, 0);
    assert_int_equal(f->fake.acked, 1); /* acknowledged all the same, so it stops resending */
    struct hub_stats st;
    hub_stats(f->hub, &st);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.events, 0);
    hub_unsubscribe(f->hub, all.id);
}

/* A user session's SUBSCRIBE, through the session hooks; returns the subscription's id. */
static void app_subscribe(struct hub_fixture *f, unsigned io, uint64_t serial,
                          const char *principal)
{
    struct session_sub_request r = {.op = SESSION_SUBSCRIBE, .io = io, .slot = 1, .serial = serial};
    snprintf(r.principal, sizeof(r.principal), "%s", principal);
    snprintf(r.tenant, sizeof(r.tenant), "acme");
    size_t replies = f->fake.nreplies;
    hub_fixture_request(f, &r);
    assert_int_equal(f->fake.nreplies, replies + 1);
    assert_string_equal(f->fake.replies[replies].code, "ok");
    assert_string_equal(f->fake.replies[replies].key, "sub");
}

static void full_io_thread_loses_items_for_its_subscribers_only(void **state)
{
    struct hub_fixture *f = *state;
    /* alice on io 0 and io 1, dave on io 2; io 1's inbox is full (its loop is slow). */
    app_subscribe(f, 0, 101, "alice@acme");
    app_subscribe(f, 1, 102, "alice@acme");
    app_subscribe(f, 1, 103, "dave@acme");
    app_subscribe(f, 2, 104, "dave@acme");
    f->fake.full_io = 1;

    durable_batch(f);

    /* io 0: alice's t1:temp_changed; io 2: dave's t1:humidity; io 1 refused both. */
    assert_int_equal(f->fake.delivered[0], 1);
    assert_int_equal(f->fake.delivered[1], 0);
    assert_int_equal(f->fake.delivered[2], 1);
    struct hub_stats st;
    hub_stats(f->hub, &st);
    assert_int_equal(st.dropped, 2); /* counted, one per subscriber that lost an item */

    /* The thread drains: its subscribers get the next items again. */
    f->fake.full_io = FAKE_IO;
    durable_batch(f);
    assert_int_equal(f->fake.delivered[0], 2);
    assert_int_equal(f->fake.delivered[1], 2);
    assert_int_equal(f->fake.delivered[2], 2);
    hub_stats(f->hub, &st);
    assert_int_equal(st.dropped, 2);

    /* A session that goes away takes its subscriptions with it. */
    struct session_event_hooks hooks = hub_session_hooks(f->hub);
    for (uint64_t serial = 101; serial <= 104; serial++)
        hooks.gone(hooks.arg, 0, 1, serial);
    hub_fixture_run(f);
    hub_stats(f->hub, &st);
    assert_int_equal(st.subscribers, 0);
}

static void connection_gets_an_item_once_however_many_subscriptions_match(void **state)
{
    struct hub_fixture *f = *state;
    /* dave's whole tenant, twice, on one connection, and once on another of the same thread:
     * each connection gets t1:humidity once. */
    app_subscribe(f, 0, 101, "dave@acme");
    app_subscribe(f, 0, 101, "dave@acme");
    app_subscribe(f, 0, 102, "dave@acme");
    durable_batch(f);
    assert_int_equal(f->fake.delivered[0], 2);
    size_t to101 = 0, to102 = 0;
    for (size_t i = 0; i < f->fake.ndelivered_to; i++) {
        to101 += f->fake.delivered_to[i] == 101;
        to102 += f->fake.delivered_to[i] == 102;
    }
    assert_int_equal(to101, 1);
    assert_int_equal(to102, 1);
    struct session_event_hooks hooks = hub_session_hooks(f->hub);
    hooks.gone(hooks.arg, 0, 1, 101);
    hooks.gone(hooks.arg, 0, 1, 102);
    hub_fixture_run(f);
}

static void sink_leaving_during_fanout_skips_nobody(void **state)
{
    struct hub_fixture *f = *state;
    struct sink first = {.leave_after_first = true}, second = {0}, third = {0};
    subscribe(f, &first, "", "", "", "");
    subscribe(f, &second, "", "", "", "");
    subscribe(f, &third, "", "", "", "");
    durable_batch(f);
    assert_int_equal(first.n, 1); /* gone after its first item */
    assert_int_equal(second.n, 4);
    assert_int_equal(third.n, 4);
    struct hub_stats st;
    hub_stats(f->hub, &st);
    assert_int_equal(st.subscribers, 2);
    hub_unsubscribe(f->hub, second.id);
    hub_unsubscribe(f->hub, third.id);
}

/* A SUBSCRIBE presence=1 (alarms only: no events) of principal, optionally of one device. */
static void presence_subscribe(struct hub_fixture *f, uint64_t serial, const char *principal,
                               const char *device)
{
    struct session_sub_request r = {.op = SESSION_SUBSCRIBE,
                                    .io = 0,
                                    .slot = 1,
                                    .serial = serial,
                                    .alarms = 2,
                                    .presence = true};
    snprintf(r.principal, sizeof(r.principal), "%s", principal);
    snprintf(r.tenant, sizeof(r.tenant), "acme");
    snprintf(r.device, sizeof(r.device), "%s", device);
    size_t replies = f->fake.nreplies;
    hub_fixture_request(f, &r);
    assert_string_equal(f->fake.replies[replies].code, "ok");
}

static size_t presence_to(const struct hub_fixture *f, uint64_t serial, const char *what)
{
    size_t n = 0;
    for (size_t i = 0; i < f->fake.ndelivered_to; i++)
        n += f->fake.delivered_to[i] == serial && strcmp(f->fake.delivered_what[i], what) == 0;
    return n;
}

static void presence_reaches_who_asked_and_may_see(void **state)
{
    struct hub_fixture *f = *state;
    struct sink operator_stream = {0};
    subscribe(f, &operator_stream, "", "", "", ""); /* iotctl watch: never presence */
    presence_subscribe(f, 201, "alice@acme", "");   /* sees t1 only */
    presence_subscribe(f, 202, "dave@acme", "");    /* sees t1 and t2 */
    presence_subscribe(f, 203, "dave@acme", "t1");
    app_subscribe(f, 0, 204, "dave@acme"); /* no presence=1 */
    struct session_event_hooks hooks = hub_session_hooks(f->hub);
    hooks.presence(hooks.arg, "acme", "t2", "thermo", true);
    hooks.presence(hooks.arg, "acme", "t1", "thermo", false);
    hooks.presence(hooks.arg, "beta", "b1", "bthermo", true);
    hub_fixture_run(f);

    assert_int_equal(presence_to(f, 201, "presence:t1:online=0"), 1);
    assert_int_equal(presence_to(f, 201, "presence:t2:online=1"), 0);
    assert_int_equal(presence_to(f, 202, "presence:t2:online=1"), 1);
    assert_int_equal(presence_to(f, 202, "presence:t1:online=0"), 1);
    assert_int_equal(presence_to(f, 203, "presence:t1:online=0"), 1);
    assert_int_equal(presence_to(f, 203, "presence:t2:online=1"), 0);
    assert_int_equal(f->fake.ndelivered_to, 4); /* nobody else, nothing of beta */
    assert_int_equal(operator_stream.n, 0);
    struct hub_stats st;
    hub_stats(f->hub, &st);
    assert_int_equal(st.alarms, 0);
    hub_unsubscribe(f->hub, operator_stream.id);
    for (uint64_t serial = 201; serial <= 204; serial++)
        hooks.gone(hooks.arg, 0, 1, serial);
    hub_fixture_run(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(subscribers_see_what_filter_and_access_map_allow,
                                        hub_fixture_setup, hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(retransmission_reaches_nobody_twice, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(full_io_thread_loses_items_for_its_subscribers_only,
                                        hub_fixture_setup, hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            connection_gets_an_item_once_however_many_subscriptions_match, hub_fixture_setup,
            hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(sink_leaving_during_fanout_skips_nobody, hub_fixture_setup,
                                        hub_fixture_teardown),
        cmocka_unit_test_setup_teardown(presence_reaches_who_asked_and_may_see, hub_fixture_setup,
                                        hub_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
