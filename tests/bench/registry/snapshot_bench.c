/*
 * snapshot_bench.c - the registry snapshot in process, without MariaDB: what a snapshot of N
 * devices and R rules costs in memory (heap in use, glibc mallinfo2), how long building it
 * from rows takes (the in-memory part of a full load), and what one change to a device costs
 * when the next snapshot is derived from the current one (time, and heap added while both
 * snapshots are alive: what the change copied), alone and in batches of 500. Run by
 * registry/run.sh (or by hand: snapshot_bench N R).
 */
#include "registry_internal.h"

#include "iot_error.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANGES 2000
#define BATCH   500

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd; /* small blocks, and the mmap()ed large ones */
}

static void device_row(struct reg_device *d, char *id, size_t idlen, const char *prefix, unsigned i)
{
    snprintf(id, idlen, "%s%07u", prefix, i);
    memset(d, 0, sizeof(*d));
    d->id = id;
    d->tenant_id = 1;
    d->type_id = 1;
    d->sealed_len = REG_SEALED_LEN;
    memset(d->sealed, (int)(i & 0xff), REG_SEALED_LEN);
    d->enabled = true;
    d->created = 1700000000;
}

static registry_snapshot_t *build(unsigned n, unsigned rules)
{
    char err[200], id[32], target[32];
    registry_snapshot_t *s = snapshot_builder_new();
    struct reg_tenant t = {.id = 1, .name = "bench"};
    struct reg_type ty = {.id = 1, .tenant_id = 1, .name = "sensor"};
    struct reg_user u = {.id = 1, .tenant_id = 1, .name = "ops", .password_hash = "$argon2id$x"};
    struct reg_message m = {.id = 1, .type_id = 1, .name = "read", .timeout_ms = 5000};
    if (!s || snapshot_add_tenant(s, &t) || snapshot_add_type(s, &ty) || snapshot_add_user(s, &u) ||
        snapshot_add_message(s, &m))
        exit(1);
    for (unsigned i = 0; i < n; i++) {
        struct reg_device d;
        device_row(&d, id, sizeof(id), "fleet-", i + 1);
        if (snapshot_add_device(s, &d) != IOT_OK)
            exit(1);
    }
    for (unsigned i = 0; i < rules; i++) {
        snprintf(target, sizeof(target), "fleet-%07u", (i * (n / (rules ? rules : 1))) + 1);
        struct reg_rule r = {.id = i + 1,
                             .tenant_id = 1,
                             .subject_kind = REG_SUBJECT_USER,
                             .subject_id = 1,
                             .target_kind = REG_TARGET_DEVICE,
                             .target_device_id = target,
                             .created_by = "bench"};
        if (snapshot_add_rule(s, &r) != IOT_OK)
            exit(1);
    }
    if (snapshot_finish(s, err, sizeof(err)) != IOT_OK) {
        fprintf(stderr, "finish: %s\n", err);
        exit(1);
    }
    return s;
}

/* One derived snapshot per batch of `batch` new devices; returns seconds per batch and the heap
 * the last batch's snapshot added while its predecessor was alive. */
static double changes(registry_snapshot_t **cur, unsigned count, unsigned batch, unsigned *next_id,
                      size_t *added)
{
    char id[32];
    double t0 = now_s();
    for (unsigned c = 0; c < count; c++) {
        size_t before = heap_in_use();
        registry_snapshot_t *s = snapshot_derive(*cur);
        if (!s)
            exit(1);
        for (unsigned b = 0; b < batch; b++) {
            struct reg_device d;
            device_row(&d, id, sizeof(id), "added-", (*next_id)++);
            if (snapshot_put_device(s, &d) != IOT_OK)
                exit(1);
        }
        snapshot_derive_finish(s);
        *added = heap_in_use() - before;
        registry_release(*cur); /* as registry_publish drops the previous snapshot */
        *cur = s;
    }
    return (now_s() - t0) / count;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 100000;
    unsigned rules = argc > 2 ? (unsigned)atoi(argv[2]) : n / 10;
    /* The fleet without rules (what the devices alone take), then with them. */
    size_t h0 = heap_in_use();
    registry_snapshot_t *s = build(n, 0);
    size_t devices_only = heap_in_use() - h0;
    registry_release(s);
    h0 = heap_in_use();
    double t0 = now_s();
    s = build(n, rules);
    double build_s = now_s() - t0;
    size_t total = heap_in_use() - h0;
    printf("%7u devices %6u rules: snapshot built from rows in %.0f ms; heap %.1f MB "
           "(%.0f bytes per device with the rules, %.0f without)\n",
           n, rules, build_s * 1000, (double)total / 1e6, (double)total / n,
           (double)devices_only / n);

    unsigned next_id = 1;
    size_t added = 0;
    double one = changes(&s, CHANGES, 1, &next_id, &added);
    printf("%7u devices: one device added by derivation: %.1f us, %zu bytes of new heap per "
           "change\n",
           n, one * 1e6, added);
    double many = changes(&s, 10, BATCH, &next_id, &added);
    printf("%7u devices: a batch of %u added by one derivation: %.2f ms (%.1f us per device), "
           "%zu bytes of new heap\n",
           n, BATCH, many * 1000, many * 1e6 / BATCH, added);
    registry_release(s);
    return 0;
}
