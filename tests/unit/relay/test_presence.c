/* Unit tests of the presence map (iotd/relay/presence.c): claims, releases, and the io
 * threads' remembered routes, which must never outlive a connect or disconnect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "relay/presence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct presence_entry entry(const char *id, unsigned io, uintptr_t session, uint64_t serial)
{
    struct presence_entry e = {.io_index = io, .session = (void *)session, .serial = serial};
    snprintf(e.device_id, sizeof(e.device_id), "%s", id);
    memcpy(e.transport, "tcp", 4);
    return e;
}

static void claim(presence_t *p, const char *id, unsigned io, uintptr_t session, uint64_t serial)
{
    struct presence_entry e = entry(id, io, session, serial), previous;
    assert_true(presence_claim(p, &e, true, &previous, NULL) >= 0);
}

static void test_route_follows_claims_and_releases(void **state)
{
    (void)state;
    presence_t *p = NULL;
    assert_int_equal(presence_new(&p), IOT_OK);
    struct presence_route_cache *cache = calloc(1, sizeof(*cache));
    assert_non_null(cache);
    struct presence_route r;

    assert_false(presence_route(p, cache, "dev1", &r)); /* never seen */
    claim(p, "dev1", 1, 7, 100);
    for (int i = 0; i < 3; i++) { /* looked up, then remembered */
        assert_true(presence_route(p, cache, "dev1", &r));
        assert_int_equal(r.io_index, 1);
        assert_ptr_equal(r.session, (void *)7);
        assert_int_equal(r.serial, 100);
    }

    /* A disconnect: the remembered route must not be used. */
    presence_release(p, "dev1", 100, 0);
    assert_false(presence_route(p, cache, "dev1", &r));

    /* A reconnect elsewhere, looked up again by the same cache. */
    claim(p, "dev1", 0, 9, 101);
    assert_true(presence_route(p, cache, "dev1", &r));
    assert_int_equal(r.io_index, 0);
    assert_int_equal(r.serial, 101);

    /* A replacing connection (no release in between) is a change too. */
    claim(p, "dev1", 1, 11, 102);
    assert_true(presence_route(p, cache, "dev1", &r));
    assert_int_equal(r.io_index, 1);
    assert_ptr_equal(r.session, (void *)11);
    assert_int_equal(r.serial, 102);

    /* A stale release (the replaced session's) changes nothing. */
    presence_release(p, "dev1", 101, 0);
    assert_true(presence_route(p, cache, "dev1", &r));
    assert_int_equal(r.serial, 102);

    free(cache);
    presence_free(p);
}

/* Devices whose names share a slot evict each other and are never confused. */
static void test_route_slots_are_keyed_by_name(void **state)
{
    (void)state;
    presence_t *p = NULL;
    assert_int_equal(presence_new(&p), IOT_OK);
    struct presence_route_cache *cache = calloc(1, sizeof(*cache));
    assert_non_null(cache);
    enum { N = 3 * PRESENCE_ROUTE_SLOTS };
    char name[32];
    for (unsigned i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "dev%u", i);
        claim(p, name, i % 2, 1000 + i, 1 + i);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < N; i++) {
            struct presence_route r;
            snprintf(name, sizeof(name), "dev%u", i);
            assert_true(presence_route(p, cache, name, &r));
            assert_int_equal(r.serial, 1 + i);
            assert_ptr_equal(r.session, (void *)(uintptr_t)(1000 + i));
        }
    }
    /* Without a cache, the same answers. */
    struct presence_route r;
    assert_true(presence_route(p, NULL, "dev5", &r));
    assert_int_equal(r.serial, 6);
    assert_false(presence_route(p, NULL, "nobody", &r));
    free(cache);
    presence_free(p);
}

/* A device refused as a duplicate (no replace) changes nothing: its route stays remembered. */
static void test_refused_claim_keeps_route(void **state)
{
    (void)state;
    presence_t *p = NULL;
    assert_int_equal(presence_new(&p), IOT_OK);
    struct presence_route_cache *cache = calloc(1, sizeof(*cache));
    assert_non_null(cache);
    claim(p, "dev1", 1, 7, 100);
    struct presence_route r;
    assert_true(presence_route(p, cache, "dev1", &r));
    struct presence_entry e = entry("dev1", 0, 8, 200), previous;
    assert_int_equal(presence_claim(p, &e, false, &previous, NULL), IOT_EEXIST);
    assert_true(presence_route(p, cache, "dev1", &r));
    assert_int_equal(r.serial, 100);
    free(cache);
    presence_free(p);
}

/* The cluster's side: another node's entries route to that node, never to an io thread; a
 * local release never undoes them; a dropped node's devices go offline; local claims and
 * releases (only those) reach the observer. */
struct observed {
    int claims, releases;
    char last[65];
};

static void observe_claim(void *arg, const struct presence_entry *e)
{
    struct observed *o = arg;
    o->claims++;
    snprintf(o->last, sizeof(o->last), "%s", e->device_id);
}

static void observe_release(void *arg, const char *device_id, uint64_t serial)
{
    struct observed *o = arg;
    (void)serial;
    o->releases++;
    snprintf(o->last, sizeof(o->last), "%s", device_id);
}

static void test_remote_entries(void **state)
{
    (void)state;
    presence_t *p = NULL;
    struct observed seen = {0};
    assert_int_equal(presence_new(&p), IOT_OK);
    struct presence_observer o = {&seen, observe_claim, observe_release};
    presence_set_observer(p, &o);
    presence_set_local_name(p, "a");
    uint16_t b = presence_node_id(p, "b"), c = presence_node_id(p, "c");
    assert_true(b != 0 && c != 0 && b != c);
    assert_int_equal(presence_node_id(p, "b"), b); /* kept */
    char name[33];
    assert_true(presence_node_name(p, 0, name));
    assert_string_equal(name, "a");
    assert_true(presence_node_name(p, c, name));
    assert_string_equal(name, "c");
    assert_false(presence_node_name(p, 77, name));

    /* dev1 online on b: routed there, not counted here, not told to the observer. */
    struct presence_entry e = entry("dev1", 0, 0, 500), previous;
    e.node = b;
    assert_int_equal(presence_claim_remote(p, &e, true, &previous), 0);
    struct presence_route r;
    assert_true(presence_route(p, NULL, "dev1", &r));
    assert_int_equal(r.node, b);
    assert_int_equal(presence_online(p), 0);
    assert_int_equal(seen.claims, 0);

    /* A local session whose serial happens to match does not release it. */
    presence_release(p, "dev1", 500, 0);
    assert_true(presence_route(p, NULL, "dev1", &r));
    assert_int_equal(seen.releases, 0);
    /* Nor does a release of b with another serial (a late one), nor c's. */
    presence_release_remote(p, "dev1", b, 499, 0);
    presence_release_remote(p, "dev1", c, 500, 0);
    assert_true(presence_route(p, NULL, "dev1", &r));
    presence_release_remote(p, "dev1", b, 500, 0);
    assert_false(presence_route(p, NULL, "dev1", &r));

    /* dev2 here, then on c too: with replace c's wins and ours is handed back to be closed;
     * with refuse, ours stays. */
    claim(p, "dev2", 1, 7, 100);
    assert_int_equal(seen.claims, 1);
    assert_string_equal(seen.last, "dev2");
    assert_int_equal(presence_online(p), 1);
    struct presence_entry e2 = entry("dev2", 0, 0, 900);
    e2.node = c;
    assert_int_equal(presence_claim_remote(p, &e2, false, &previous), IOT_EEXIST);
    assert_true(presence_route(p, NULL, "dev2", &r));
    assert_int_equal(r.node, 0);
    assert_int_equal(presence_claim_remote(p, &e2, true, &previous), 1);
    assert_int_equal(previous.serial, 100);
    assert_int_equal(previous.node, 0);
    assert_int_equal(presence_online(p), 0);
    assert_true(presence_route(p, NULL, "dev2", &r));
    assert_int_equal(r.node, c);
    presence_release(p, "dev2", 100, 0); /* the replaced session closes: c's entry stays */
    assert_true(presence_route(p, NULL, "dev2", &r));
    assert_int_equal(seen.releases, 0);

    /* A local claim over c's entry: refused without replace, else ours (counted here). */
    struct presence_entry e3 = entry("dev2", 1, 9, 101);
    assert_int_equal(presence_claim(p, &e3, false, &previous, NULL), IOT_EEXIST);
    assert_int_equal(presence_claim(p, &e3, true, &previous, NULL), 1);
    assert_int_equal(previous.node, c);
    assert_int_equal(presence_online(p), 1);

    /* c dies: its devices go, ours stay; each-local lists only ours. */
    struct presence_entry e4 = entry("dev3", 0, 0, 7);
    e4.node = c;
    assert_int_equal(presence_claim_remote(p, &e4, true, &previous), 0);
    struct observed dropped = {0};
    assert_int_equal(presence_drop_node(p, c, 0, observe_claim, &dropped), 1);
    assert_int_equal(dropped.claims, 1);
    assert_string_equal(dropped.last, "dev3");
    assert_false(presence_route(p, NULL, "dev3", &r));
    assert_true(presence_route(p, NULL, "dev2", &r));
    assert_int_equal(presence_drop_node(p, 0, 0, NULL, NULL), 0); /* never this node */
    presence_release(p, "dev2", 101, 0);
    assert_int_equal(seen.releases, 1);
    presence_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_follows_claims_and_releases),
        cmocka_unit_test(test_route_slots_are_keyed_by_name),
        cmocka_unit_test(test_refused_claim_keeps_route),
        cmocka_unit_test(test_remote_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
