/*
 * registry.c - the holder of the current registry snapshot: publish, acquire, release, the lock
 * that keeps changes in order (admin_apply), and the small accessors other modules use on a
 * snapshot (device secret, device/user/message lookups, counts).
 *
 * Why acquire takes a mutex. Readers need "load the current pointer, then add a reference" to
 * be atomic with respect to a publisher that swaps the pointer and drops the old snapshot's
 * reference. With a bare atomic pointer, a reader could load p, be preempted, the publisher
 * swaps and releases p (refs 1 -> 0, freed), and the reader then increments freed memory. The
 * usual cures are hazard pointers, RCU or split reference counts; here a mutex held only for
 * the pointer load plus one atomic increment (tens of nanoseconds, no allocation, no call
 * out) closes the window: the publisher swaps under the same mutex, so once it holds the old
 * pointer outside the lock, every reader that saw it has already counted itself in. The old
 * snapshot is released outside the lock, so freeing a large snapshot never blocks readers.
 * Hot paths avoid even that mutex: an io thread keeps the snapshot it acquired and compares
 * registry_generation() (a lock-free atomic load) with the snapshot's generation to notice a
 * newer one.
 *
 * Releases are atomic decrements; the thread that takes the count to zero frees the snapshot
 * (acq_rel ordering so that every other holder's reads happen-before the free).
 */
#include "registry_internal.h"

#include "crypto/secretbox.h"
#include "iot_error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct registry {
    pthread_mutex_t lock; /* guards current: see the top of the file */
    registry_snapshot_t *current;
    _Atomic uint64_t generation;
    pthread_mutex_t change_lock; /* serializes changes: see registry_change_lock */
    atomic_bool stale;           /* see registry_change_stale */
};

int registry_new(registry_t **out)
{
    int rc = IOT_ENOMEM;
    char err[64];
    registry_t *reg = calloc(1, sizeof(*reg));
    registry_snapshot_t *empty = snapshot_builder_new();
    if (!reg || !empty)
        goto out;
    rc = snapshot_finish(empty, err, sizeof(err));
    if (rc != IOT_OK)
        goto out;
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        rc = IOT_EINTERNAL;
        goto out;
    }
    if (pthread_mutex_init(&reg->change_lock, NULL) != 0) {
        pthread_mutex_destroy(&reg->lock);
        rc = IOT_EINTERNAL;
        goto out;
    }
    reg->current = empty;
    atomic_init(&reg->generation, 0);
    atomic_init(&reg->stale, true); /* the empty snapshot is not the database */
    *out = reg;
    return IOT_OK;
out:
    snapshot_destroy(empty);
    free(reg);
    return rc;
}

void registry_free(registry_t *reg)
{
    if (!reg)
        return;
    registry_release(reg->current);
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->change_lock);
    free(reg);
}

void registry_change_lock(registry_t *reg)
{
    pthread_mutex_lock(&reg->change_lock);
}

void registry_change_unlock(registry_t *reg)
{
    pthread_mutex_unlock(&reg->change_lock);
}

bool registry_change_stale(const registry_t *reg)
{
    return atomic_load(&((registry_t *)reg)->stale);
}

void registry_change_set_stale(registry_t *reg, bool stale)
{
    atomic_store(&reg->stale, stale);
}

void registry_publish(registry_t *reg, registry_snapshot_t *snap)
{
    pthread_mutex_lock(&reg->lock);
    registry_snapshot_t *old = reg->current;
    /* Written before the snapshot becomes reachable; the mutex orders it for readers. */
    snap->generation = atomic_load(&reg->generation) + 1;
    reg->current = snap;
    atomic_store(&reg->generation, snap->generation);
    atomic_store(&reg->stale, false); /* a published snapshot is the database's, whole */
    pthread_mutex_unlock(&reg->lock);
    registry_release(old);
}

registry_snapshot_t *registry_acquire(registry_t *reg)
{
    pthread_mutex_lock(&reg->lock);
    registry_snapshot_t *snap = reg->current;
    atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&reg->lock);
    return snap;
}

void registry_release(registry_snapshot_t *snap)
{
    if (!snap)
        return;
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1)
        snapshot_destroy(snap);
}

uint64_t registry_generation(const registry_t *reg)
{
    return atomic_load(&((registry_t *)reg)->generation);
}

uint64_t registry_snapshot_generation(const registry_snapshot_t *snap)
{
    return snap->generation;
}

void registry_counts(const registry_snapshot_t *snap, size_t *tenants, size_t *devices,
                     size_t *users, size_t *rules)
{
    if (tenants)
        *tenants = snap->core->ntenants;
    if (devices)
        *devices = snap->devices.count;
    if (users)
        *users = snap->core->nusers;
    if (rules)
        *rules = snap->core->nrules;
}

int registry_device_secret(const registry_snapshot_t *snap, const uint8_t *key, const char *id,
                           uint8_t out[REGISTRY_SECRET_LEN])
{
    const struct reg_device *d = snapshot_device(snap, id);
    if (!d)
        return IOT_ENOTFOUND;
    if (d->sealed_len != REG_SEALED_LEN)
        return IOT_EDENIED;
    /* The device id is the associated data: a sealed secret copied onto another row fails. */
    return secretbox_open(key, d->sealed, d->sealed_len, (const uint8_t *)d->id, strlen(d->id),
                          out);
}

int registry_device_lookup(const registry_snapshot_t *snap, const char *id,
                           struct registry_device_info *out)
{
    const struct reg_device *d = snapshot_device(snap, id);
    if (!d)
        return IOT_ENOTFOUND;
    out->id = d->id;
    out->tenant = snapshot_device_tenant(snap, d)->name;
    out->type = snapshot_device_type(snap, d)->name;
    out->enabled = d->enabled;
    out->atecc508a = d->auth == REG_AUTH_ATECC508A;
    out->incarnation = d->incarnation;
    memset(out->serial, 0, sizeof(out->serial));
    if (d->has_serial)
        memcpy(out->serial, d->serial, sizeof(out->serial));
    return IOT_OK;
}

int registry_user_lookup(const registry_snapshot_t *snap, const char *address,
                         struct registry_user_info *out)
{
    char name[65], tenant[65];
    if (!reg_split_address(address, name, sizeof(name), tenant, sizeof(tenant)))
        return IOT_ENOTFOUND;
    const struct reg_user *u = snapshot_user(snap, tenant, name);
    if (!u)
        return IOT_ENOTFOUND;
    out->address = u->address;
    out->tenant = u->tenant->name;
    out->role = reg_role_name(u->role);
    out->password_hash = u->password_hash;
    out->may_act = u->role != REG_ROLE_VIEWER;
    return IOT_OK;
}

int registry_message_lookup(const registry_snapshot_t *snap, const char *device_id,
                            const char *message, struct registry_message_info *out)
{
    const struct reg_device *d = snapshot_device(snap, device_id);
    if (!d)
        return IOT_ENOTFOUND;
    const struct reg_message *m = snapshot_message(snapshot_device_type(snap, d), message);
    if (!m)
        return IOT_ENOTFOUND;
    out->name = m->name;
    out->event = m->direction == REG_DIR_EVENT;
    out->args = m->args;
    out->spec = &m->spec;
    out->timeout_ms = m->timeout_ms;
    out->start = m->start_message;
    out->stop = m->stop_message;
    return IOT_OK;
}

bool registry_event_defined(const registry_snapshot_t *snap, const char *tenant, const char *type,
                            const char *name)
{
    for (size_t i = 0; i < snap->core->ntypes; i++) {
        const struct reg_type *t = &snap->core->types[i];
        if (strcmp(t->tenant->name, tenant) != 0 || (type && type[0] && strcmp(t->name, type)))
            continue;
        const struct reg_message *m = snapshot_message(t, name);
        if (m && m->direction == REG_DIR_EVENT)
            return true;
    }
    return false;
}

bool registry_device_in_group(const registry_snapshot_t *snap, const char *device_id,
                              const char *group)
{
    const struct reg_device *d = snapshot_device(snap, device_id);
    size_t n = 0;
    if (!d || !group)
        return false;
    const struct reg_membership *m = snapshot_device_groups(snap, d, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].group->name, group) == 0)
            return true;
    return false;
}

void registry_devices_foreach(const registry_snapshot_t *snap,
                              void (*fn)(const char *id, const char *tenant, const char *type,
                                         void *arg),
                              void *arg)
{
    struct devset_iter it = {0, 0};
    for (const struct reg_device *d; (d = devset_next(&snap->devices, &it));)
        fn(d->id, snapshot_device_tenant(snap, d)->name, snapshot_device_type(snap, d)->name, arg);
}

void registry_devices_last_address(const registry_snapshot_t *snap,
                                   void (*fn)(const char *id, const char *address, void *arg),
                                   void *arg)
{
    struct devset_iter it = {0, 0};
    for (const struct reg_device *d; (d = devset_next(&snap->devices, &it));)
        if (d->last_address && d->last_address[0])
            fn(d->id, d->last_address, arg);
}

struct diff_call {
    const registry_snapshot_t *older, *newer;
    void (*fn)(const char *id, const char *tenant, const char *type, bool removed, void *arg);
    void *arg;
};

static void diff_one(const struct reg_device *old, const struct reg_device *now, void *arg)
{
    struct diff_call *c = arg;
    const registry_snapshot_t *s = now ? c->newer : c->older;
    const struct reg_device *d = now ? now : old;
    c->fn(d->id, snapshot_device_tenant(s, d)->name, snapshot_device_type(s, d)->name, !now,
          c->arg);
}

bool registry_devices_diff(const registry_snapshot_t *older, const registry_snapshot_t *newer,
                           void (*fn)(const char *id, const char *tenant, const char *type,
                                      bool removed, void *arg),
                           void *arg)
{
    struct diff_call c = {older, newer, fn, arg};
    if (older->core != newer->core)
        return false;
    devset_diff(&older->devices, &newer->devices, diff_one, &c);
    return true;
}
