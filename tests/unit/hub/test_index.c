/*
 * test_index.c - the hub's subscriber index (iotd/hub/hub_index.h): an item's candidates are
 * exactly the subscribers whose filter's tenant and device are its own or "any", each once;
 * removal (in any order, of any slot) keeps every other subscriber findable and frees emptied
 * buckets; and through the hub, 10,000 subscribers of other devices neither get an item nor
 * stop the few that match from getting it, including one that a sink removes mid-walk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub_fixture.h"

#include "hub/hub_internal.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct hub_sub *new_sub(uint64_t id, const char *tenant, const char *device, bool presence)
{
    struct hub_sub *sub = calloc(1, sizeof(*sub));
    assert_non_null(sub);
    sub->id = id;
    snprintf(sub->f.tenant, sizeof(sub->f.tenant), "%s", tenant);
    snprintf(sub->f.device, sizeof(sub->f.device), "%s", device);
    sub->f.presence = presence;
    return sub;
}

/* The ids of the candidates for (tenant, device), sorted, as "1,4,7". */
static void candidate_ids(const hub_index_t *x, const char *tenant, const char *device, char *out,
                          size_t outlen)
{
    struct hub_sub *local[HUB_INDEX_SCAN], **cand = NULL;
    size_t n = hub_index_candidates(x, tenant, device, local, HUB_INDEX_SCAN, &cand);
    assert_true(n != (size_t)-1);
    uint64_t ids[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        ids[i] = cand[i]->id;
    if (cand != local)
        free(cand);
    for (size_t i = 1; i < n; i++) /* insertion sort: few ids */
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, outlen - len, "%s%llu", i ? "," : "",
                                (unsigned long long)ids[i]);
}

static void expect_candidates(const hub_index_t *x, const char *tenant, const char *device,
                              const char *want)
{
    char got[256];
    candidate_ids(x, tenant, device, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("candidates of (%s, %s): got \"%s\", want \"%s\"", tenant, device, got, want);
}

static void candidates_are_the_four_buckets_of_the_item(void **state)
{
    (void)state;
    hub_index_t x = {0};
    struct hub_sub *subs[] = {
        new_sub(1, "", "", false),       /* every tenant, every device */
        new_sub(2, "", "t1", true),      /* any tenant's t1 (an operator's device=) */
        new_sub(3, "acme", "", false),   /* acme's every device */
        new_sub(4, "acme", "t1", true),  /* acme's t1 */
        new_sub(5, "acme", "t2", false), /* another device */
        new_sub(6, "beta", "", false),   /* another tenant */
        new_sub(7, "beta", "t1", false), /* another tenant's (same) device name */
        new_sub(8, "acme", "t1", false), /* a second in the same bucket */
    };
    size_t n = sizeof(subs) / sizeof(subs[0]);
    /* A handful are all candidates (scanning them is cheaper than the lookups)... */
    for (size_t i = 0; i < n && i < HUB_INDEX_SCAN; i++)
        assert_int_equal(hub_index_add(&x, subs[i]), IOT_OK);
    expect_candidates(&x, "gamma", "g1", "1,2,3,4,5,6,7,8");
    /* ...past that, the index answers: fillers in a bucket of their own make it so. */
    struct hub_sub *fillers[HUB_INDEX_SCAN];
    for (size_t i = 0; i < HUB_INDEX_SCAN; i++)
        assert_int_equal(hub_index_add(&x, fillers[i] = new_sub(100 + i, "zz", "fill", false)),
                         IOT_OK);
    for (size_t i = HUB_INDEX_SCAN; i < n; i++)
        assert_int_equal(hub_index_add(&x, subs[i]), IOT_OK);
    assert_int_equal(x.n, n + HUB_INDEX_SCAN);
    assert_int_equal(x.npresence, 2);
    assert_int_equal(x.buckets.count, 7 + 1); /* 4 and 8 share one; the fillers' */

    expect_candidates(&x, "acme", "t1", "1,2,3,4,8");
    expect_candidates(&x, "acme", "t2", "1,3,5");
    expect_candidates(&x, "beta", "t1", "1,2,6,7");
    expect_candidates(&x, "gamma", "g1", "1");
    /* An item without a device or tenant looks each distinct bucket up once. */
    expect_candidates(&x, "acme", "", "1,3");
    expect_candidates(&x, "", "t1", "1,2");
    expect_candidates(&x, "", "", "1");

    /* Remove from the middle of a bucket and of the array: the others stay findable. */
    hub_index_remove(&x, subs[3]);
    expect_candidates(&x, "acme", "t1", "1,2,3,8");
    hub_index_remove(&x, subs[7]); /* the bucket (acme, t1) is empty now: freed */
    assert_int_equal(x.buckets.count, 6 + 1);
    expect_candidates(&x, "acme", "t1", "1,2,3");
    assert_int_equal(x.npresence, 1);
    hub_index_remove(&x, subs[0]);
    expect_candidates(&x, "beta", "t1", "2,6,7");
    for (size_t i = 0; i < x.n; i++)
        assert_ptr_equal(x.all[x.all[i]->all_pos], x.all[i]);
    for (size_t i = 0; i < n; i++)
        if (subs[i]->bucket)
            hub_index_remove(&x, subs[i]);
    for (size_t i = 0; i < HUB_INDEX_SCAN; i++)
        hub_index_remove(&x, fillers[i]);
    assert_int_equal(x.n, 0);
    assert_int_equal(x.buckets.count, 0);
    assert_int_equal(x.npresence, 0);
    hub_index_free(&x);
    for (size_t i = 0; i < n; i++)
        free(subs[i]);
    for (size_t i = 0; i < HUB_INDEX_SCAN; i++)
        free(fillers[i]);
}

/* 10,000 subscribers over 1,000 devices, removed in a scattered order; after each tenth the
 * candidates of one device are exactly the subscribers of it still indexed. */
static void many_subscribers_removed_in_any_order(void **state)
{
    (void)state;
    enum { N = 10000, DEVICES = 1000 };
    hub_index_t x = {0};
    struct hub_sub **subs = calloc(N, sizeof(*subs));
    assert_non_null(subs);
    for (size_t i = 0; i < N; i++) {
        char dev[16];
        snprintf(dev, sizeof(dev), "d%zu", i % DEVICES);
        subs[i] = new_sub(i + 1, "acme", dev, false);
        assert_int_equal(hub_index_add(&x, subs[i]), IOT_OK);
    }
    assert_int_equal(x.buckets.count, DEVICES);
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 7919) % N; /* 7919 is prime to N: every index once */
        hub_index_remove(&x, subs[i]);
        subs[i]->id = 0;
        if (k % 10 == 0 && x.n > HUB_INDEX_SCAN) { /* fewer: all are candidates */
            struct hub_sub *local[HUB_INDEX_SCAN], **cand = NULL;
            size_t n = hub_index_candidates(&x, "acme", "d7", local, HUB_INDEX_SCAN, &cand);
            size_t want = 0;
            for (size_t j = 7; j < N; j += DEVICES)
                want += subs[j]->id != 0;
            assert_int_equal(n, want);
            for (size_t j = 0; j < n; j++)
                assert_string_equal(cand[j]->f.device, "d7");
            if (cand != local)
                free(cand);
        }
    }
    assert_int_equal(x.n, 0);
    assert_int_equal(x.buckets.count, 0);
    hub_index_free(&x);
    for (size_t i = 0; i < N; i++)
        free(subs[i]);
    free(subs);
}

/* ---- through the hub ---- */

struct sink {
    size_t n;
    hub_t *hub;
    uint64_t id;
    uint64_t remove_id; /* a subscription this sink ends from inside its call */
};

static void on_item(void *arg, struct event *item)
{
    struct sink *s = arg;
    (void)item;
    s->n++;
    if (s->remove_id) {
        hub_unsubscribe(s->hub, s->remove_id);
        s->remove_id = 0;
    }
}

static void subscribe(struct hub_fixture *f, struct sink *s, const char *tenant, const char *device)
{
    struct hub_filter filter = {.alarms = HUB_EVENTS_AND_ALARMS};
    snprintf(filter.tenant, sizeof(filter.tenant), "%s", tenant);
    snprintf(filter.device, sizeof(filter.device), "%s", device);
    s->hub = f->hub;
    assert_int_equal(hub_subscribe(f->hub, &filter, on_item, s, &s->id), IOT_OK);
}

static void ten_thousand_other_watchers_get_nothing(void **state)
{
    struct hub_fixture *f = *state;
    enum { OTHERS = 10000 };
    struct sink *others = calloc(OTHERS, sizeof(*others));
    assert_non_null(others);
    for (size_t i = 0; i < OTHERS; i++) {
        char dev[16];
        snprintf(dev, sizeof(dev), "x%zu", i);
        subscribe(f, &others[i], "acme", dev); /* devices that send nothing here */
    }
    struct sink everything = {0}, acme = {0}, t1 = {0}, beta_t1 = {0}, victim = {0};
    subscribe(f, &everything, "", "");
    subscribe(f, &acme, "acme", "");
    subscribe(f, &victim, "acme", "t1");
    subscribe(f, &t1, "acme", "t1");
    subscribe(f, &beta_t1, "beta", "t1");
    /* The first matching sink to be called ends the victim's subscription: the victim is
     * called at most for that first item, never after its removal. */
    everything.remove_id = victim.id;

    for (uint32_t seq = 1; seq <= 3; seq++) {
        struct event *ev = hub_fixture_event("acme", "t1", "thermo", "temp_changed", seq);
        hub_durable(&ev, 1, f->hub);
        event_unref(ev);
    }
    assert_int_equal(everything.n, 3);
    assert_int_equal(acme.n, 3);
    assert_int_equal(t1.n, 3);
    assert_int_equal(beta_t1.n, 0);
    assert_true(victim.n <= 1);
    for (size_t i = 0; i < OTHERS; i++)
        assert_int_equal(others[i].n, 0);
    struct hub_stats st;
    hub_stats(f->hub, &st);
    assert_int_equal(st.subscribers, OTHERS + 4);
    assert_int_equal(st.delivered, 3 * 3 + victim.n);

    for (size_t i = 0; i < OTHERS; i++)
        hub_unsubscribe(f->hub, others[i].id);
    hub_unsubscribe(f->hub, everything.id);
    hub_unsubscribe(f->hub, acme.id);
    hub_unsubscribe(f->hub, t1.id);
    hub_unsubscribe(f->hub, beta_t1.id);
    hub_stats(f->hub, &st);
    assert_int_equal(st.subscribers, 0);
    free(others);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(candidates_are_the_four_buckets_of_the_item),
        cmocka_unit_test(many_subscribers_removed_in_any_order),
        cmocka_unit_test_setup_teardown(ten_thousand_other_watchers_get_nothing, hub_fixture_setup,
                                        hub_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
