/*
 * snapshot.c - building and freeing registry snapshots (see registry_internal.h): the string
 * arena and the rows added one by one while a snapshot is loaded. snapshot_index.c finishes it.
 *
 * A snapshot is a set of flat arrays, one per entity, plus a few sorted arrays of pointers that
 * serve as indexes (snapshot_index.c). All strings live in one arena that is freed in one go.
 * The arrays grow while rows are added; snapshot_finish is the point after which they never
 * move again, which is what makes it safe to resolve references into pointers there.
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
    struct reg_arena_chunk *c = s->arena;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c) {
            *ok = false;
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = s->arena;
        s->arena = c;
    }
    char *out = c->data + c->used;
    memcpy(out, str, len);
    c->used += len;
    return out;
}

registry_snapshot_t *snapshot_builder_new(void)
{
    registry_snapshot_t *s = calloc(1, sizeof(*s));
    if (s)
        atomic_init(&s->refs, 1);
    return s;
}

void snapshot_destroy(registry_snapshot_t *s)
{
    if (!s)
        return;
    while (s->arena) {
        struct reg_arena_chunk *next = s->arena->next;
        free(s->arena);
        s->arena = next;
    }
    free(s->tenants);
    free(s->types);
    free(s->messages);
    free(s->devices);
    free(s->users);
    free(s->groups);
    free(s->rules);
    free(s->member_rows);
    free(s->members_by_group);
    free(s->members_by_member);
    free(s->tenant_by_name);
    free(s->type_by_name);
    free(s->user_by_name);
    free(s->group_by_name);
    free(s->rule_by_target);
    free(s);
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
    t = add_slot(s, &s->tenants, s->ntenants, &s->cap_tenants, sizeof(*t), row);
    if (!t)
        return SLOT_FAILED(s);
    t->name = snapshot_strdup(s, row->name, &ok);
    t->display_name = snapshot_strdup(s, row->display_name, &ok);
    t->ntypes = t->ndevices = t->nusers = t->ngroups = t->nrules = 0;
    if (!ok || !t->name)
        return IOT_ENOMEM;
    s->ntenants++;
    return IOT_OK;
}

int snapshot_add_type(registry_snapshot_t *s, const struct reg_type *row)
{
    struct reg_type *t;
    bool ok = true;
    t = add_slot(s, &s->types, s->ntypes, &s->cap_types, sizeof(*t), row);
    if (!t)
        return SLOT_FAILED(s);
    t->name = snapshot_strdup(s, row->name, &ok);
    t->description = snapshot_strdup(s, row->description, &ok);
    t->tenant = NULL;
    t->messages = NULL;
    t->nmessages = t->ndevices = 0;
    if (!ok || !t->name)
        return IOT_ENOMEM;
    s->ntypes++;
    return IOT_OK;
}

int snapshot_add_message(registry_snapshot_t *s, const struct reg_message *row)
{
    struct reg_message *m;
    bool ok = true;
    m = add_slot(s, &s->messages, s->nmessages, &s->cap_messages, sizeof(*m), row);
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
    s->nmessages++;
    return IOT_OK;
}

int snapshot_add_device(registry_snapshot_t *s, const struct reg_device *row)
{
    struct reg_device *d;
    bool ok = true;
    if (row->sealed_len > REG_SEALED_LEN)
        return IOT_EINVAL;
    d = add_slot(s, &s->devices, s->ndevices, &s->cap_devices, sizeof(*d), row);
    if (!d)
        return SLOT_FAILED(s);
    d->id = snapshot_strdup(s, row->id, &ok);
    d->display_name = snapshot_strdup(s, row->display_name, &ok);
    d->last_address = snapshot_strdup(s, row->last_address, &ok);
    d->tenant = NULL;
    d->type = NULL;
    if (!ok || !d->id)
        return IOT_ENOMEM;
    s->ndevices++;
    return IOT_OK;
}

int snapshot_add_user(registry_snapshot_t *s, const struct reg_user *row)
{
    struct reg_user *u;
    bool ok = true;
    u = add_slot(s, &s->users, s->nusers, &s->cap_users, sizeof(*u), row);
    if (!u)
        return SLOT_FAILED(s);
    u->name = snapshot_strdup(s, row->name, &ok);
    u->password_hash = snapshot_strdup(s, row->password_hash, &ok);
    u->tenant = NULL;
    u->address = NULL;
    if (!ok || !u->name)
        return IOT_ENOMEM;
    s->nusers++;
    return IOT_OK;
}

int snapshot_add_group(registry_snapshot_t *s, const struct reg_group *row)
{
    struct reg_group *g;
    bool ok = true;
    g = add_slot(s, &s->groups, s->ngroups, &s->cap_groups, sizeof(*g), row);
    if (!g)
        return SLOT_FAILED(s);
    g->name = snapshot_strdup(s, row->name, &ok);
    g->tenant = NULL;
    g->nmembers = 0;
    if (!ok || !g->name)
        return IOT_ENOMEM;
    s->ngroups++;
    return IOT_OK;
}

int snapshot_add_member(registry_snapshot_t *s, const struct reg_member_row *row)
{
    struct reg_member_row *m;
    bool ok = true;
    m = add_slot(s, &s->member_rows, s->nmember_rows, &s->cap_member_rows, sizeof(*m), row);
    if (!m)
        return SLOT_FAILED(s);
    m->device_id = snapshot_strdup(s, row->device_id, &ok);
    if (!ok)
        return IOT_ENOMEM;
    s->nmember_rows++;
    return IOT_OK;
}

int snapshot_add_rule(registry_snapshot_t *s, const struct reg_rule *row)
{
    struct reg_rule *r;
    bool ok = true;
    r = add_slot(s, &s->rules, s->nrules, &s->cap_rules, sizeof(*r), row);
    if (!r)
        return SLOT_FAILED(s);
    r->subject_device_id = snapshot_strdup(s, row->subject_device_id, &ok);
    r->target_device_id = snapshot_strdup(s, row->target_device_id, &ok);
    r->message = snapshot_strdup(s, row->message, &ok);
    r->created_by = snapshot_strdup(s, row->created_by ? row->created_by : "", &ok);
    r->tenant = NULL;
    r->subject_user = NULL;
    r->subject_device = NULL;
    r->subject_group = NULL;
    r->target_device = NULL;
    r->target_type = NULL;
    r->target_group = NULL;
    if (!ok)
        return IOT_ENOMEM;
    s->nrules++;
    return IOT_OK;
}
