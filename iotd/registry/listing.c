/*
 * listing.c - the registry as clients list it (QUERY, iot-protocol(7)): a tenant's devices in
 * id order from a cursor, a type's catalogue, and whether a group or type exists. The snapshot
 * keeps devices sorted by id (devset.h), so a page starts with a search for its cursor and reads
 * on: a page costs its own length (plus the other tenants' devices interleaved with it), not
 * the whole table. Visibility is access.c's (registry_device_visible).
 */
#include "registry_internal.h"

#include "iot_error.h"

#include <string.h>

void registry_devices_after(const registry_snapshot_t *snap, const char *tenant, const char *after,
                            bool (*fn)(const struct registry_device_entry *d, void *arg), void *arg)
{
    const struct reg_tenant *t = snapshot_tenant(snap, tenant);
    if (!t)
        return;
    /* The first device whose id sorts after `after`. */
    struct devset_iter it = devset_after(&snap->devices, after && after[0] ? after : NULL);
    const struct reg_device *d;
    while ((d = devset_next(&snap->devices, &it)) != NULL) {
        if (d->tenant_id != t->id)
            continue;
        struct registry_device_entry e = {.id = d->id,
                                          .type = snapshot_device_type(snap, d)->name,
                                          .display_name = d->display_name ? d->display_name : ""};
        size_t n = 0;
        const struct reg_membership *m = snapshot_device_groups(snap, d, &n);
        for (size_t k = 0; k < n && e.ngroups < sizeof(e.groups) / sizeof(e.groups[0]); k++)
            e.groups[e.ngroups++] = m[k].group->name;
        if (!fn(&e, arg))
            return;
    }
}

int registry_catalogue_foreach(const registry_snapshot_t *snap, const char *tenant,
                               const char *type_name,
                               void (*fn)(const struct registry_message_info *m, void *arg),
                               void *arg)
{
    const struct reg_type *t = snapshot_type(snap, tenant, type_name);
    if (!t)
        return IOT_ENOTFOUND;
    for (uint32_t i = 0; i < t->nmessages; i++) {
        const struct reg_message *m = &t->messages[i];
        struct registry_message_info info = {.name = m->name,
                                             .event = m->direction == REG_DIR_EVENT,
                                             .args = m->args,
                                             .spec = &m->spec,
                                             .timeout_ms = m->timeout_ms,
                                             .start = m->start_message,
                                             .stop = m->stop_message};
        fn(&info, arg);
    }
    return IOT_OK;
}

bool registry_group_exists(const registry_snapshot_t *snap, const char *tenant, const char *name)
{
    const struct reg_group *g = snapshot_group(snap, tenant, name);
    return g && g->kind == REG_GROUP_DEVICE;
}

bool registry_type_exists(const registry_snapshot_t *snap, const char *tenant, const char *name)
{
    return snapshot_type(snap, tenant, name) != NULL;
}
