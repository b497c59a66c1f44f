/*
 * test_devset.c - the persistent device set (iotd/registry/devset.h) against a plain sorted
 * array: random rounds of inserts, replacements and removals on a copy of the last sealed set,
 * enough of them to split chunks, empty them and start before the first id; after each round
 * the set must hold exactly the model's records in order, and the set of the round before
 * (still held, as a published snapshot would be) must be unchanged. Records are reference
 * counted: the sanitizer builds' leak check sees any that a chunk copy or removal loses. The
 * difference of each round's two sets (devset_diff) must be exactly the keys the round changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "iot_error.h"
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS   3000 /* ids k0000..k2999 */
#define ROUNDS 40
#define OPS    400

/* The model: for each key, 0 when absent, else the version its record carries. */
struct model {
    int version[KEYS];
    size_t count;
};

static void key_of(int k, char *out, size_t len)
{
    snprintf(out, len, "k%04d", k);
}

static struct reg_device *record(int k, int version)
{
    char id[16], name[16];
    key_of(k, id, sizeof(id));
    snprintf(name, sizeof(name), "v%d", version);
    struct reg_device row = {.id = id, .display_name = name, .tenant_id = 1, .type_id = 1};
    struct reg_device *d = reg_device_new(&row);
    assert_non_null(d);
    return d;
}

static void check(const struct reg_devset *set, const struct model *m)
{
    char id[16], name[16];
    struct devset_iter it = {0, 0};
    const struct reg_device *d;
    int k = 0;
    assert_int_equal(set->count, m->count);
    for (size_t c = 0; c < set->nchunks; c++)
        assert_true(set->chunks[c]->n > 0 && set->chunks[c]->n <= DEVSET_CHUNK);
    while ((d = devset_next(set, &it))) {
        while (k < KEYS && !m->version[k])
            k++;
        assert_true(k < KEYS);
        key_of(k, id, sizeof(id));
        snprintf(name, sizeof(name), "v%d", m->version[k]);
        assert_string_equal(d->id, id);
        assert_string_equal(d->display_name, name);
        k++;
    }
    while (k < KEYS && !m->version[k])
        k++;
    assert_int_equal(k, KEYS);
    for (k = 0; k < KEYS; k += 7) {
        key_of(k, id, sizeof(id));
        d = devset_find(set, id);
        assert_true((d != NULL) == (m->version[k] != 0));
    }
    assert_null(devset_find(set, "a"));
    assert_null(devset_find(set, "z"));
}

/* devset_diff must report exactly the keys whose version differs between two models. */
struct diff_seen {
    int seen[KEYS];
    int calls;
};

static void on_diff(const struct reg_device *old, const struct reg_device *now, void *arg)
{
    struct diff_seen *d = arg;
    const char *id = now ? now->id : old->id;
    d->seen[atoi(id + 1)]++;
    d->calls++;
}

static void check_diff(const struct reg_devset *older, const struct reg_devset *newer,
                       const struct model *before, const struct model *after)
{
    static struct diff_seen d;
    memset(&d, 0, sizeof(d));
    devset_diff(older, newer, on_diff, &d);
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(d.seen[k], before->version[k] != after->version[k]);
}

static void test_rounds_against_a_sorted_array(void **state)
{
    (void)state;
    unsigned seed = 7;
    int versions = 1;
    static struct model model, before;
    struct reg_devset old = {0}, cur = {0};
    struct reg_device **initial = calloc(KEYS, sizeof(*initial));
    size_t n = 0;
    assert_non_null(initial);
    for (int k = 1000; k < 2000; k += 2) { /* later rounds insert before and after these */
        initial[n++] = record(k, 1);
        model.version[k] = 1;
    }
    model.count = n;
    assert_int_equal(devset_build(&cur, initial, n), IOT_OK);
    free(initial);
    devset_seal(&cur);
    check(&cur, &model);

    for (int round = 0; round < ROUNDS; round++) {
        before = model;
        devset_free(&old);
        old = cur;
        memset(&cur, 0, sizeof(cur));
        assert_int_equal(devset_copy(&cur, &old), IOT_OK);
        /* Early rounds grow the set (splitting chunks), later ones shrink it (emptying some), the
         * last ones grow it again. */
        int remove_share = round < 15 ? 3 : round < 30 ? 8 : 2;
        for (int op = 0; op < OPS; op++) {
            int k = (int)(rand_r(&seed) % KEYS);
            char id[16];
            key_of(k, id, sizeof(id));
            struct reg_device *gone = NULL;
            if ((int)(rand_r(&seed) % 10) < remove_share) {
                int rc = devset_remove(&cur, id, &gone);
                assert_int_equal(rc, model.version[k] ? IOT_OK : IOT_ENOTFOUND);
                if (gone) {
                    model.version[k] = 0;
                    model.count--;
                }
            } else {
                int version = ++versions; /* never reused: a record put again differs */
                assert_int_equal(devset_put(&cur, record(k, version), &gone), IOT_OK);
                assert_true((gone != NULL) == (model.version[k] != 0));
                model.count += model.version[k] ? 0 : 1;
                model.version[k] = version;
            }
            reg_device_release(gone);
        }
        check(&cur, &model);
        check(&old, &before); /* the sealed set of the round before is untouched */
        check_diff(&old, &cur, &before, &model);
        devset_seal(&cur);
    }
    devset_free(&old);
    devset_free(&cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounds_against_a_sorted_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
