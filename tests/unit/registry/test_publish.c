/*
 * test_publish.c - the snapshot holder under concurrency: readers acquire/release on threads
 * while the main thread publishes new snapshots; a reader's snapshot stays intact after it has
 * been replaced; generations increase. Meant to run under -DIOTD_SANITIZE=thread (data races)
 * and address (use after free of a replaced snapshot) as well as plain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "iot_error.h"
#include "registry_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define READERS   3
#define PUBLISHES 2000

/* A snapshot whose content encodes n: n devices, tenant named "t<n>". */
static registry_snapshot_t *make_snapshot(unsigned n)
{
    char err[200], name[32];
    registry_snapshot_t *s = snapshot_builder_new();
    assert_non_null(s);
    snprintf(name, sizeof(name), "t%u", n);
    struct reg_tenant t = {.id = 1, .name = name};
    struct reg_type ty = {.id = 1, .tenant_id = 1, .name = "thermo"};
    assert_int_equal(snapshot_add_tenant(s, &t), IOT_OK);
    assert_int_equal(snapshot_add_type(s, &ty), IOT_OK);
    for (unsigned i = 0; i < n % 8; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%u", i);
        struct reg_device d = {.id = id, .tenant_id = 1, .type_id = 1};
        assert_int_equal(snapshot_add_device(s, &d), IOT_OK);
    }
    assert_int_equal(snapshot_finish(s, err, sizeof(err)), IOT_OK);
    return s;
}

struct shared {
    registry_t *reg;
    atomic_bool stop;
    atomic_ulong reads;
    atomic_int errors;
};

/* Acquire, check the snapshot is self-consistent (its tenant name matches its device count),
 * release; count. Any mismatch means a torn or freed snapshot. */
static void *reader(void *arg)
{
    struct shared *sh = arg;
    uint64_t last_generation = 0;
    while (!atomic_load(&sh->stop)) {
        registry_snapshot_t *s = registry_acquire(sh->reg);
        size_t tenants, devices;
        registry_counts(s, &tenants, &devices, NULL, NULL);
        uint64_t generation = registry_snapshot_generation(s);
        if (generation < last_generation)
            atomic_fetch_add(&sh->errors, 1);
        last_generation = generation;
        if (tenants == 1) {
            unsigned n = 0;
            const struct reg_tenant *t = s->core->tenant_by_name[0];
            if (sscanf(t->name, "t%u", &n) != 1 || n % 8 != devices)
                atomic_fetch_add(&sh->errors, 1);
            if (devices > 0 && !snapshot_device(s, "d0"))
                atomic_fetch_add(&sh->errors, 1);
        }
        registry_release(s);
        atomic_fetch_add(&sh->reads, 1);
    }
    return NULL;
}

static void test_publish_under_readers(void **state)
{
    struct shared sh = {0};
    pthread_t threads[READERS];
    assert_int_equal(registry_new(&sh.reg), IOT_OK);
    assert_int_equal(registry_generation(sh.reg), 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, reader, &sh), 0);
    /* On a loaded machine the readers may not run before the publishes are over: wait until
     * they all read, so the publishes really race with them. */
    while (atomic_load(&sh.reads) < READERS * 4)
        sched_yield();
    for (unsigned n = 1; n <= PUBLISHES; n++) {
        registry_publish(sh.reg, make_snapshot(n));
        assert_int_equal(registry_generation(sh.reg), n);
    }
    atomic_store(&sh.stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&sh.errors), 0);
    assert_true(atomic_load(&sh.reads) > 0);
    printf("# %lu reads across %d publishes\n", atomic_load(&sh.reads), PUBLISHES);
    registry_free(sh.reg);
}

/* Readers of derived snapshots: every one holds WINDOW devices "x<k>".."x<k+WINDOW-1>" (after
 * the first WINDOW publishes), all of whose records the reader touches, while the publisher
 * derives each next snapshot from the current one, sharing its core and its other chunks: the
 * shared records and chunks are released by whichever thread drops the last snapshot holding
 * them (run it under -DIOTD_SANITIZE=thread and address). */
#define WINDOW 200

static void *derived_reader(void *arg)
{
    struct shared *sh = arg;
    while (!atomic_load(&sh->stop)) {
        registry_snapshot_t *s = registry_acquire(sh->reg);
        size_t devices = 0, seen = 0;
        registry_counts(s, NULL, &devices, NULL, NULL);
        struct devset_iter it = {0, 0};
        for (const struct reg_device *d; (d = devset_next(&s->devices, &it));)
            seen += d->id[0] == 'x' && d->tenant_id == 1;
        uint64_t g = registry_snapshot_generation(s);
        if (seen != devices || (g > WINDOW + 1 && devices != WINDOW))
            atomic_fetch_add(&sh->errors, 1);
        registry_release(s);
        atomic_fetch_add(&sh->reads, 1);
    }
    return NULL;
}

static void test_publish_derived_under_readers(void **state)
{
    struct shared sh = {0};
    pthread_t threads[READERS];
    assert_int_equal(registry_new(&sh.reg), IOT_OK);
    registry_publish(sh.reg, make_snapshot(0)); /* tenant 1, type 1, no device */
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, derived_reader, &sh), 0);
    while (atomic_load(&sh.reads) < READERS * 4)
        sched_yield();
    for (unsigned n = 0; n < PUBLISHES; n++) {
        char id[16];
        registry_snapshot_t *prev = registry_acquire(sh.reg);
        registry_snapshot_t *next = snapshot_derive(prev);
        assert_non_null(next);
        snprintf(id, sizeof(id), "x%07u", n);
        struct reg_device d = {.id = id, .tenant_id = 1, .type_id = 1};
        assert_int_equal(snapshot_put_device(next, &d), IOT_OK);
        if (n >= WINDOW) {
            snprintf(id, sizeof(id), "x%07u", n - WINDOW);
            assert_int_equal(snapshot_remove_device(next, id), IOT_OK);
        }
        assert_int_equal(snapshot_derive_finish(next), IOT_OK);
        assert_true(next->core == prev->core);
        registry_release(prev);
        registry_publish(sh.reg, next);
    }
    atomic_store(&sh.stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&sh.errors), 0);
    printf("# %lu reads across %d derived publishes\n", atomic_load(&sh.reads), PUBLISHES);
    registry_free(sh.reg);
}

static void test_held_snapshot_outlives_publish(void **state)
{
    registry_t *reg;
    assert_int_equal(registry_new(&reg), IOT_OK);
    registry_publish(reg, make_snapshot(3));
    registry_snapshot_t *held = registry_acquire(reg);
    registry_publish(reg, make_snapshot(5));
    registry_publish(reg, make_snapshot(6));
    /* still the old one, intact (ASan would flag a freed snapshot here) */
    size_t devices;
    registry_counts(held, NULL, &devices, NULL, NULL);
    assert_int_equal(devices, 3);
    assert_int_equal(registry_snapshot_generation(held), 1);
    assert_non_null(snapshot_device(held, "d2"));
    registry_release(held);
    registry_snapshot_t *now = registry_acquire(reg);
    registry_counts(now, NULL, &devices, NULL, NULL);
    assert_int_equal(devices, 6);
    assert_int_equal(registry_snapshot_generation(now), 3);
    registry_release(now);
    registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_snapshot_outlives_publish),
        cmocka_unit_test(test_publish_under_readers),
        cmocka_unit_test(test_publish_derived_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
