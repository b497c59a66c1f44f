/*
 * snapshot.c - building and freeing registry snapshots (see registry_internal.h): the string
 * arena and the rows added one by one while a snapshot is loaded, and the snapshots derived
 * from another one. snapshot_index.c finishes them.
 *
 * A snapshot is a core (struct reg_core: a set of flat arrays, one per entity but devices,
 * plus a few sorted arrays of pointers that serve as indexes, all its strings in one arena
 * freed in one go) and a set of device records (devset.h). Core and device records are both
 * reference counted and shared between snapshots: a change to a device makes a snapshot that
 * shares the core and all the other records, a change to anything else one that shares the
 * devices. The core's arrays grow while rows are added; snapshot_finish is the point after
 * which they never move again, which is what makes it safe to resolve references into
 * pointers there.
 */
#include "registry_internal.h"

#include "iot_error.h"
#include "iot_grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reg_arena_chunk {
    struct reg_arena_chunk *next;
    size_t used, cap;
    char data[];
};

#define ARENA_CHUNK 16384

/* Copy str into the snapshot's arena; NULL stays NULL. *ok is cleared on allocation failure. */
const char *snapshot_strdup(registry_snapshot_t *s, const char *str, bool *ok)
{
    if (!str)
        return NULL;
    size_t len = strlen(str) + 1;
    struct reg_core *core = s->core;
    struct reg_arena_chunk *c = core->arena;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c) {
            *ok = false;
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = core->arena;
        core->arena = c;
    }
    char *out = c->data + c->used;
    memcpy(out, str, len);
    c->used += len;
    return out;
}

static void core_release(struct reg_core *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    while (c->arena) {
        struct reg_arena_chunk *next = c->arena->next;
        free(c->arena);
        c->arena = next;
    }
    free(c->tenants);
    free(c->types);
    free(c->messages);
    free(c->users);
    free(c->groups);
    free(c->rules);
    free(c->member_rows);
    free(c->members_by_group);
    free(c->members_by_member);
    free(c->tenant_by_name);
    free(c->type_by_name);
    free(c->user_by_name);
    free(c->group_by_name);
    free(c->rule_by_target);
    free(c);
}

registry_snapshot_t *snapshot_builder_new(void)
{
    registry_snapshot_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->core = calloc(1, sizeof(*s->core));
    if (!s->core) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    atomic_init(&s->core->refs, 1);
    return s;
}

void snapshot_destroy(registry_snapshot_t *s)
{
    if (!s)
        return;
    core_release(s->core);
    devset_free(&s->devices);
    for (size_t i = 0; i < s->nstaged; i++)
        reg_device_release(s->staged[i]);
    free(s->staged);
    free(s->tenant_devices);
    free(s->type_devices);
    free(s);
}

registry_snapshot_t *snapshot_builder_on(const registry_snapshot_t *prev)
{
    registry_snapshot_t *s = prev->finished ? snapshot_builder_new() : NULL;
    if (s && devset_copy(&s->devices, &prev->devices) != IOT_OK) {
        snapshot_destroy(s);
        return NULL;
    }
    if (s)
        s->has_devices = true;
    return s;
}

/* A copy of n counters (at least one element, so that an empty registry is not NULL). */
static uint32_t *copy_counts(const uint32_t *from, size_t n)
{
    uint32_t *c = calloc(n ? n : 1, sizeof(*c));
    if (c && n)
        memcpy(c, from, n * sizeof(*c));
    return c;
}

registry_snapshot_t *snapshot_derive(const registry_snapshot_t *prev)
{
    registry_snapshot_t *s = prev->finished ? calloc(1, sizeof(*s)) : NULL;
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->core = prev->core;
    atomic_fetch_add_explicit(&s->core->refs, 1, memory_order_relaxed);
    s->tenant_devices = copy_counts(prev->tenant_devices, prev->core->ntenants);
    s->type_devices = copy_counts(prev->type_devices, prev->core->ntypes);
    if (!s->tenant_devices || !s->type_devices ||
        devset_copy(&s->devices, &prev->devices) != IOT_OK) {
        snapshot_destroy(s);
        return NULL;
    }
    return s;
}

/* The slot for one more row of an array under construction, holding a copy of row (the caller
 * then re-points its strings into the arena and counts it). NULL when the snapshot is finished
 * (immutable) or memory is short. */
static void *add_slot(registry_snapshot_t *s, void *arrp, size_t n, size_t *cap, size_t elem,
                      const void *row)
{
    void **arr = arrp;
    char *grown = s->finished ? NULL : iot_grow(*arr, n, cap, 16, elem);
    if (!grown)
        return NULL;
    *arr = grown;
    char *slot = grown + n * elem;
    memcpy(slot, row, elem);
    return slot;
}

#define SLOT_FAILED(s) ((s)->finished ? IOT_EINVAL : IOT_ENOMEM)

int snapshot_add_tenant(registry_snapshot_t *s, const struct reg_tenant *row)
{
    struct reg_tenant *t;
    bool ok = true;
    t = add_slot(s, &s->core->tenants, s->core->ntenants, &s->core->cap_tenants, sizeof(*t), row);
    if (!t)
        return SLOT_FAILED(s);
    t->name = snapshot_strdup(s, row->name, &ok);
    t->display_name = snapshot_strdup(s, row->display_name, &ok);
    t->ntypes = t->nusers = t->ngroups = t->nrules = 0;
    if (!ok || !t->name)
        return IOT_ENOMEM;
    s->core->ntenants++;
    return IOT_OK;
}

int snapshot_add_type(registry_snapshot_t *s, const struct reg_type *row)
{
    struct reg_type *t;
    bool ok = true;
    t = add_slot(s, &s->core->types, s->core->ntypes, &s->core->cap_types, sizeof(*t), row);
    if (!t)
        return SLOT_FAILED(s);
    t->name = snapshot_strdup(s, row->name, &ok);
    t->description = snapshot_strdup(s, row->description, &ok);
    t->tenant = NULL;
    t->messages = NULL;
    t->nmessages = 0;
    if (!ok || !t->name)
        return IOT_ENOMEM;
    s->core->ntypes++;
    return IOT_OK;
}

int snapshot_add_message(registry_snapshot_t *s, const struct reg_message *row)
{
    struct reg_message *m;
    bool ok = true;
    m = add_slot(s, &s->core->messages, s->core->nmessages, &s->core->cap_messages, sizeof(*m),
                 row);
    if (!m)
        return SLOT_FAILED(s);
    m->name = snapshot_strdup(s, row->name, &ok);
    m->args = snapshot_strdup(s, row->args ? row->args : "", &ok);
    m->description = snapshot_strdup(s, row->description, &ok);
    m->start_message = snapshot_strdup(s, row->start_message, &ok);
    m->stop_message = snapshot_strdup(s, row->stop_message, &ok);
    m->type = NULL;
    if (!ok || !m->name)
        return IOT_ENOMEM;
    char err[128];
    if (argspec_parse(m->args, &m->spec, err, sizeof(err)) != 0)
        return IOT_EINVAL; /* admin_execute validated it before it was stored */
    s->core->nmessages++;
    return IOT_OK;
}

/* Devices are staged as records (the form they keep in every later snapshot) and put in order
 * by snapshot_finish. */
int snapshot_add_device(registry_snapshot_t *s, const struct reg_device *row)
{
    if (row->sealed_len > REG_SEALED_LEN || !row->id || s->finished || s->has_devices)
        return IOT_EINVAL;
    void *grown = iot_grow(s->staged, s->nstaged, &s->cap_staged, 64, sizeof(*s->staged));
    if (!grown)
        return IOT_ENOMEM;
    s->staged = grown;
    struct reg_device *d = reg_device_new(row);
    if (!d)
        return IOT_ENOMEM;
    s->staged[s->nstaged++] = d;
    return IOT_OK;
}

int snapshot_add_user(registry_snapshot_t *s, const struct reg_user *row)
{
    struct reg_user *u;
    bool ok = true;
    u = add_slot(s, &s->core->users, s->core->nusers, &s->core->cap_users, sizeof(*u), row);
    if (!u)
        return SLOT_FAILED(s);
    u->name = snapshot_strdup(s, row->name, &ok);
    u->password_hash = snapshot_strdup(s, row->password_hash, &ok);
    u->tenant = NULL;
    u->address = NULL;
    if (!ok || !u->name)
        return IOT_ENOMEM;
    s->core->nusers++;
    return IOT_OK;
}

int snapshot_add_group(registry_snapshot_t *s, const struct reg_group *row)
{
    struct reg_group *g;
    bool ok = true;
    g = add_slot(s, &s->core->groups, s->core->ngroups, &s->core->cap_groups, sizeof(*g), row);
    if (!g)
        return SLOT_FAILED(s);
    g->name = snapshot_strdup(s, row->name, &ok);
    g->tenant = NULL;
    g->nmembers = 0;
    if (!ok || !g->name)
        return IOT_ENOMEM;
    s->core->ngroups++;
    return IOT_OK;
}

int snapshot_add_member(registry_snapshot_t *s, const struct reg_member_row *row)
{
    struct reg_member_row *m;
    bool ok = true;
    m = add_slot(s, &s->core->member_rows, s->core->nmember_rows, &s->core->cap_member_rows,
                 sizeof(*m), row);
    if (!m)
        return SLOT_FAILED(s);
    m->device_id = snapshot_strdup(s, row->device_id, &ok);
    if (!ok)
        return IOT_ENOMEM;
    s->core->nmember_rows++;
    return IOT_OK;
}

int snapshot_add_rule(registry_snapshot_t *s, const struct reg_rule *row)
{
    struct reg_rule *r;
    bool ok = true;
    r = add_slot(s, &s->core->rules, s->core->nrules, &s->core->cap_rules, sizeof(*r), row);
    if (!r)
        return SLOT_FAILED(s);
    r->subject_device_id = snapshot_strdup(s, row->subject_device_id, &ok);
    r->target_device_id = snapshot_strdup(s, row->target_device_id, &ok);
    r->message = snapshot_strdup(s, row->message, &ok);
    r->created_by = snapshot_strdup(s, row->created_by ? row->created_by : "", &ok);
    r->tenant = NULL;
    r->subject_user = NULL;
    r->subject_group = NULL;
    r->target_type = NULL;
    r->target_group = NULL;
    if (!ok)
        return IOT_ENOMEM;
    s->core->nrules++;
    return IOT_OK;
}

/* ---- changes to the devices of a derived snapshot ---- */

/* The counters of d's tenant and type, NULL when either is missing or the type is another
 * tenant's. */
static bool device_counters(registry_snapshot_t *s, const struct reg_device *d, uint32_t **tenant,
                            uint32_t **type)
{
    const struct reg_tenant *tn = snapshot_device_tenant(s, d);
    const struct reg_type *ty = snapshot_device_type(s, d);
    if (!tn || !ty || ty->tenant_id != d->tenant_id)
        return false;
    *tenant = &s->tenant_devices[tn - s->core->tenants];
    *type = &s->type_devices[ty - s->core->types];
    return true;
}

int snapshot_put_device(registry_snapshot_t *s, const struct reg_device *row)
{
    uint32_t *tenant, *type, *old_tenant, *old_type;
    struct reg_device *d, *old = NULL;
    if (s->finished || row->sealed_len > REG_SEALED_LEN || !row->id ||
        !device_counters(s, row, &tenant, &type))
        return IOT_EINVAL;
    if (!(d = reg_device_new(row)))
        return IOT_ENOMEM;
    int rc = devset_put(&s->devices, d, &old);
    if (rc != IOT_OK)
        return rc;
    if (old && device_counters(s, old, &old_tenant, &old_type)) {
        (*old_tenant)--;
        (*old_type)--;
    }
    (*tenant)++;
    (*type)++;
    reg_device_release(old);
    return IOT_OK;
}

int snapshot_remove_device(registry_snapshot_t *s, const char *id)
{
    uint32_t *tenant, *type;
    struct reg_device *old = NULL;
    if (s->finished)
        return IOT_EINVAL;
    int rc = devset_remove(&s->devices, id, &old);
    if (rc != IOT_OK)
        return rc;
    if (device_counters(s, old, &tenant, &type)) {
        (*tenant)--;
        (*type)--;
    }
    reg_device_release(old);
    return IOT_OK;
}

int snapshot_derive_finish(registry_snapshot_t *s)
{
    if (s->finished)
        return IOT_EINVAL;
    devset_seal(&s->devices);
    s->finished = true;
    return IOT_OK;
}

bool snapshot_device_referenced(const registry_snapshot_t *s, const char *id)
{
    const struct reg_core *c = s->core;
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members_by_member[i].device_id && strcmp(c->members_by_member[i].device_id, id) == 0)
            return true;
    for (size_t i = 0; i < c->nrules; i++) {
        const struct reg_rule *r = &c->rules[i];
        if ((r->subject_kind == REG_SUBJECT_DEVICE && strcmp(r->subject_device_id, id) == 0) ||
            (r->target_kind == REG_TARGET_DEVICE && strcmp(r->target_device_id, id) == 0))
            return true;
    }
    return false;
}
