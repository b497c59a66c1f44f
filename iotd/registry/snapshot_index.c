/*
 * snapshot_index.c - the order of a registry snapshot: snapshot_finish sorts the rows, resolves
 * their references into pointers, counts and builds the name indexes; the snapshot_* lookups
 * binary-search the same orders (O(log n)), so sorting and searching live together and cannot
 * disagree. Nothing is hashed: the iteration order of every list is deterministic (sorted by
 * tenant then name).
 */
#include "registry_internal.h"

#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- comparators and binary search ---- */

/* First index i in [0, n) with cmp(key, base[i]) <= 0 (n if none). */
static size_t lower_bound(const void *base, size_t n, size_t size, const void *key,
                          int (*cmp)(const void *key, const void *elem))
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(key, (const char *)base + mid * size) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* qsort and bsearch must not see a NULL base even for zero elements (C11 7.22.5): empty
 * arrays of a snapshot are NULL, so go through these. */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

static void *search(const void *key, const void *base, size_t n, size_t size,
                    int (*cmp)(const void *, const void *))
{
    return n ? bsearch(key, base, n, size, cmp) : NULL;
}

static int cmp_u32(uint32_t a, uint32_t b)
{
    return (a > b) - (a < b);
}

/* The id is the first member of tenants, types, users and groups. */
static int by_u32_id(const void *a, const void *b)
{
    return cmp_u32(*(const uint32_t *)a, *(const uint32_t *)b);
}

static int by_rule_id(const void *a, const void *b)
{
    int64_t x = ((const struct reg_rule *)a)->id, y = ((const struct reg_rule *)b)->id;
    return (x > y) - (x < y);
}

static int by_device_id(const void *a, const void *b)
{
    return strcmp((*(const struct reg_device *const *)a)->id,
                  (*(const struct reg_device *const *)b)->id);
}

static int by_message(const void *a, const void *b)
{
    const struct reg_message *x = a, *y = b;
    int c = cmp_u32(x->type_id, y->type_id);
    return c ? c : strcmp(x->name, y->name);
}

/* Binary search by numeric id in an array sorted by its leading uint32_t id. */
static void *find_by_id(const void *base, size_t n, size_t size, uint32_t id)
{
    return search(&id, base, n, size, by_u32_id);
}

/* Name indexes: elements are pointers to structs whose tenant and name are reached through the
 * accessor below; all four entity kinds keep (tenant, name) in the same spirit. */
struct name_key {
    const char *tenant;
    const char *name;
};

#define NAME_CMP(fn, type)                                                                         \
    static int fn##_sort(const void *a, const void *b)                                             \
    {                                                                                              \
        const type *x = *(const type *const *)a, *y = *(const type *const *)b;                     \
        int c = strcmp(x->tenant->name, y->tenant->name);                                          \
        return c ? c : strcmp(x->name, y->name);                                                   \
    }                                                                                              \
    static int fn##_key(const void *k, const void *e)                                              \
    {                                                                                              \
        const struct name_key *key = k;                                                            \
        const type *y = *(const type *const *)e;                                                   \
        int c = strcmp(key->tenant, y->tenant->name);                                              \
        return c ? c : strcmp(key->name, y->name);                                                 \
    }
NAME_CMP(type_name, struct reg_type)
NAME_CMP(user_name, struct reg_user)
NAME_CMP(group_name, struct reg_group)

static int tenant_name_sort(const void *a, const void *b)
{
    return strcmp((*(const struct reg_tenant *const *)a)->name,
                  (*(const struct reg_tenant *const *)b)->name);
}

static int tenant_name_key(const void *k, const void *e)
{
    return strcmp(k, (*(const struct reg_tenant *const *)e)->name);
}

/* Member order inside a group: devices by id, users by name (one group holds one kind). */
static int member_cmp(const struct reg_membership *x, const struct reg_membership *y)
{
    if (x->device_id && y->device_id)
        return strcmp(x->device_id, y->device_id);
    if (x->user && y->user) {
        int c = strcmp(x->user->tenant->name, y->user->tenant->name);
        return c ? c : strcmp(x->user->name, y->user->name);
    }
    return x->device_id ? -1 : 1;
}

static int group_cmp(const struct reg_group *x, const struct reg_group *y)
{
    int c = strcmp(x->tenant->name, y->tenant->name);
    return c ? c : strcmp(x->name, y->name);
}

static int members_by_group_sort(const void *a, const void *b)
{
    const struct reg_membership *x = a, *y = b;
    int c = group_cmp(x->group, y->group);
    return c ? c : member_cmp(x, y);
}

static int members_by_member_sort(const void *a, const void *b)
{
    const struct reg_membership *x = a, *y = b;
    int c = member_cmp(x, y);
    return c ? c : group_cmp(x->group, y->group);
}

static int members_group_key(const void *k, const void *e)
{
    return group_cmp(k, ((const struct reg_membership *)e)->group);
}

static int members_member_key(const void *k, const void *e)
{
    return member_cmp(k, e);
}

/* Evaluation order of rules (see access.c): per tenant and target, rules naming a message come
 * before rules for any message, then the lowest id. */
struct rule_key {
    uint32_t tenant_id;
    enum reg_target_kind kind;
    uint32_t target_id;
    const char *device_id;
};

static int rule_target_cmp(const struct rule_key *k, const struct reg_rule *r)
{
    int c = cmp_u32(k->tenant_id, r->tenant_id);
    if (c)
        return c;
    c = cmp_u32((uint32_t)k->kind, (uint32_t)r->target_kind);
    if (c)
        return c;
    switch (k->kind) {
    case REG_TARGET_DEVICE:
        return strcmp(k->device_id, r->target_device_id);
    case REG_TARGET_GROUP:
    case REG_TARGET_TYPE:
        return cmp_u32(k->target_id, r->target_id);
    case REG_TARGET_ANY:
        return 0;
    }
    return 0;
}

static void rule_key_of(const struct reg_rule *r, struct rule_key *k)
{
    k->tenant_id = r->tenant_id;
    k->kind = r->target_kind;
    k->target_id = r->target_id;
    k->device_id = r->target_device_id;
}

static int rule_by_target_sort(const void *a, const void *b)
{
    const struct reg_rule *x = *(const struct reg_rule *const *)a;
    const struct reg_rule *y = *(const struct reg_rule *const *)b;
    struct rule_key kx;
    rule_key_of(x, &kx);
    int c = rule_target_cmp(&kx, y);
    if (c)
        return c;
    c = (x->message == NULL) - (y->message == NULL);
    if (c)
        return c;
    return (x->id > y->id) - (x->id < y->id);
}

static int rule_by_target_key(const void *k, const void *e)
{
    return rule_target_cmp(k, *(const struct reg_rule *const *)e);
}

/* ---- finish: sort, resolve, count, index ---- */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        rc = IOT_EINVAL;                                                                           \
        goto out;                                                                                  \
    } while (0)

static int resolve_entities(struct reg_core *s, char *err, size_t errlen)
{
    int rc = IOT_OK;
    sort(s->tenants, s->ntenants, sizeof(*s->tenants), by_u32_id);
    sort(s->types, s->ntypes, sizeof(*s->types), by_u32_id);
    sort(s->users, s->nusers, sizeof(*s->users), by_u32_id);
    sort(s->groups, s->ngroups, sizeof(*s->groups), by_u32_id);
    sort(s->rules, s->nrules, sizeof(*s->rules), by_rule_id);
    sort(s->messages, s->nmessages, sizeof(*s->messages), by_message);

    for (size_t i = 0; i < s->ntypes; i++) {
        struct reg_type *t = &s->types[i];
        struct reg_tenant *tn =
            find_by_id(s->tenants, s->ntenants, sizeof(*s->tenants), t->tenant_id);
        if (!tn)
            FAIL("device type %s names missing tenant %u", t->name, t->tenant_id);
        t->tenant = tn;
        tn->ntypes++;
    }
    for (size_t i = 0; i < s->nmessages; i++) {
        struct reg_message *m = &s->messages[i];
        struct reg_type *t = find_by_id(s->types, s->ntypes, sizeof(*s->types), m->type_id);
        if (!t)
            FAIL("message type %s names missing device type %u", m->name, m->type_id);
        if (i > 0 && by_message(m - 1, m) == 0)
            FAIL("message type %s appears twice in type %s", m->name, t->name);
        m->type = t;
        if (!t->messages)
            t->messages = m; /* messages are sorted by type, so the first one starts the run */
        t->nmessages++;
    }
    for (size_t i = 0; i < s->nusers; i++) {
        struct reg_user *u = &s->users[i];
        struct reg_tenant *tn =
            find_by_id(s->tenants, s->ntenants, sizeof(*s->tenants), u->tenant_id);
        if (!tn)
            FAIL("user %s names missing tenant %u", u->name, u->tenant_id);
        u->tenant = tn;
        tn->nusers++;
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        struct reg_group *g = &s->groups[i];
        struct reg_tenant *tn =
            find_by_id(s->tenants, s->ntenants, sizeof(*s->tenants), g->tenant_id);
        if (!tn)
            FAIL("group %s names missing tenant %u", g->name, g->tenant_id);
        g->tenant = tn;
        tn->ngroups++;
    }
out:
    return rc;
}

/* The users' "name@tenant" addresses, into the core's arena. */
static int user_addresses(registry_snapshot_t *s)
{
    bool ok = true;
    for (size_t i = 0; ok && i < s->core->nusers; i++) {
        struct reg_user *u = &s->core->users[i];
        char address[160];
        snprintf(address, sizeof(address), "%s@%s", u->name, u->tenant->name);
        u->address = snapshot_strdup(s, address, &ok);
    }
    return ok ? IOT_OK : IOT_ENOMEM;
}

/* The device id of a membership or a rule names a device of the snapshot in this tenant. */
static bool device_in_tenant(const registry_snapshot_t *s, const char *id, uint32_t tenant_id)
{
    const struct reg_device *d = devset_find(&s->devices, id);
    return d && d->tenant_id == tenant_id;
}

static int resolve_members(registry_snapshot_t *snap, char *err, size_t errlen)
{
    int rc = IOT_OK;
    struct reg_core *s = snap->core;
    size_t n = s->nmember_rows;
    s->members_by_group = calloc(n ? n : 1, sizeof(*s->members_by_group));
    s->members_by_member = calloc(n ? n : 1, sizeof(*s->members_by_member));
    if (!s->members_by_group || !s->members_by_member) {
        rc = IOT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct reg_member_row *row = &s->member_rows[i];
        struct reg_membership *m = &s->members_by_group[i];
        struct reg_group *g = find_by_id(s->groups, s->ngroups, sizeof(*s->groups), row->group_id);
        if (!g)
            FAIL("membership names missing group %u", row->group_id);
        m->group = g;
        if (g->kind == REG_GROUP_DEVICE) {
            m->device_id = row->device_id;
            if (!row->device_id || !device_in_tenant(snap, row->device_id, g->tenant_id))
                FAIL("group %s: member device %s is missing or of another tenant", g->name,
                     row->device_id ? row->device_id : "?");
        } else {
            m->user = find_by_id(s->users, s->nusers, sizeof(*s->users), row->user_id);
            if (!m->user || m->user->tenant_id != g->tenant_id)
                FAIL("group %s: member user %u is missing or of another tenant", g->name,
                     row->user_id);
        }
        g->nmembers++;
    }
    memcpy(s->members_by_member, s->members_by_group, n * sizeof(*s->members_by_group));
    sort(s->members_by_group, n, sizeof(*s->members_by_group), members_by_group_sort);
    sort(s->members_by_member, n, sizeof(*s->members_by_member), members_by_member_sort);
    for (size_t i = 1; i < n; i++)
        if (members_by_group_sort(&s->members_by_group[i - 1], &s->members_by_group[i]) == 0)
            FAIL("group %s lists a member twice", s->members_by_group[i].group->name);
    s->nmembers = n;
out:
    return rc;
}

/* Resolve one rule's subject and target in the rule's own tenant. */
static int resolve_rule(registry_snapshot_t *snap, struct reg_rule *r, char *err, size_t errlen)
{
    int rc = IOT_OK;
    struct reg_core *s = snap->core;
    struct reg_tenant *tn = find_by_id(s->tenants, s->ntenants, sizeof(*s->tenants), r->tenant_id);
    if (!tn)
        FAIL("rule %lld names missing tenant %u", (long long)r->id, r->tenant_id);
    r->tenant = tn;
    tn->nrules++;
    uint32_t subject_tenant = 0, target_tenant = r->tenant_id;
    switch (r->subject_kind) {
    case REG_SUBJECT_USER:
        r->subject_user = find_by_id(s->users, s->nusers, sizeof(*s->users), r->subject_id);
        subject_tenant = r->subject_user ? r->subject_user->tenant_id : 0;
        break;
    case REG_SUBJECT_DEVICE:
        subject_tenant =
            device_in_tenant(snap, r->subject_device_id, r->tenant_id) ? r->tenant_id : 0;
        break;
    case REG_SUBJECT_GROUP:
        r->subject_group = find_by_id(s->groups, s->ngroups, sizeof(*s->groups), r->subject_id);
        subject_tenant = r->subject_group ? r->subject_group->tenant_id : 0;
        break;
    }
    switch (r->target_kind) {
    case REG_TARGET_DEVICE:
        target_tenant =
            device_in_tenant(snap, r->target_device_id, r->tenant_id) ? r->tenant_id : 0;
        break;
    case REG_TARGET_TYPE:
        r->target_type = find_by_id(s->types, s->ntypes, sizeof(*s->types), r->target_id);
        target_tenant = r->target_type ? r->target_type->tenant_id : 0;
        break;
    case REG_TARGET_GROUP:
        r->target_group = find_by_id(s->groups, s->ngroups, sizeof(*s->groups), r->target_id);
        target_tenant = r->target_group ? r->target_group->tenant_id : 0;
        break;
    case REG_TARGET_ANY:
        r->target_id = r->tenant_id; /* "any" is keyed by its tenant in the target index */
        break;
    }
    if (subject_tenant != r->tenant_id || target_tenant != r->tenant_id)
        FAIL("rule %lld names a missing subject or target, or one of another tenant",
             (long long)r->id);
out:
    return rc;
}

/* The devices of a builder: its staged records sorted into a new set, checked against the
 * core. */
static int finish_devices(registry_snapshot_t *s, char *err, size_t errlen)
{
    int rc = IOT_OK;
    const struct reg_core *c = s->core;
    sort(s->staged, s->nstaged, sizeof(*s->staged), by_device_id);
    for (size_t i = 0; i < s->nstaged; i++) {
        const struct reg_device *d = s->staged[i];
        if (i > 0 && strcmp(s->staged[i - 1]->id, d->id) == 0)
            FAIL("device %s appears twice", d->id);
        const struct reg_type *t = find_by_id(c->types, c->ntypes, sizeof(*c->types), d->type_id);
        if (!find_by_id(c->tenants, c->ntenants, sizeof(*c->tenants), d->tenant_id) || !t ||
            t->tenant_id != d->tenant_id)
            FAIL("device %s names a missing tenant or a type of another tenant", d->id);
    }
    rc = devset_build(&s->devices, s->staged, s->nstaged);
    /* the set took (or released) every record; the staging array would be 8 bytes a device */
    free(s->staged);
    s->staged = NULL;
    s->nstaged = s->cap_staged = 0;
out:
    return rc;
}

/* Devices per tenant and per type: counted for a builder with its own devices; carried over
 * by id from prev for one on another snapshot's devices (snapshot_builder_on), where every
 * tenant and type that holds devices must still exist. */
static int count_devices(registry_snapshot_t *s, const registry_snapshot_t *prev, char *err,
                         size_t errlen)
{
    int rc = IOT_ENOMEM;
    struct reg_core *c = s->core;
    s->tenant_devices = calloc(c->ntenants + 1, sizeof(*s->tenant_devices));
    s->type_devices = calloc(c->ntypes + 1, sizeof(*s->type_devices));
    if (!s->tenant_devices || !s->type_devices)
        goto out;
    rc = IOT_OK;
    if (!prev) {
        struct devset_iter it = {0, 0};
        for (const struct reg_device *d; (d = devset_next(&s->devices, &it));) {
            s->tenant_devices[snapshot_device_tenant(s, d) - c->tenants]++;
            s->type_devices[snapshot_device_type(s, d) - c->types]++;
        }
        goto out;
    }
    const struct reg_core *p = prev->core;
    for (size_t i = 0; i < p->ntenants; i++) {
        const struct reg_tenant *t =
            find_by_id(c->tenants, c->ntenants, sizeof(*c->tenants), p->tenants[i].id);
        if (t)
            s->tenant_devices[t - c->tenants] = prev->tenant_devices[i];
        else if (prev->tenant_devices[i])
            FAIL("tenant %s is gone but has devices", p->tenants[i].name);
    }
    for (size_t i = 0; i < p->ntypes; i++) {
        const struct reg_type *t =
            find_by_id(c->types, c->ntypes, sizeof(*c->types), p->types[i].id);
        if (t && t->tenant_id == p->types[i].tenant_id)
            s->type_devices[t - c->types] = prev->type_devices[i];
        else if (prev->type_devices[i])
            FAIL("device type %s is gone but has devices", p->types[i].name);
    }
out:
    return rc;
}

int snapshot_finish_on(registry_snapshot_t *s, const registry_snapshot_t *prev, char *err,
                       size_t errlen)
{
    int rc = IOT_EINVAL;
    struct reg_core *c = s->core;
    if (s->finished || (s->has_devices && !prev)) {
        snprintf(err, errlen, "snapshot already finished");
        goto out;
    }
    rc = resolve_entities(c, err, errlen);
    if (rc == IOT_OK && !s->has_devices)
        rc = finish_devices(s, err, errlen);
    if (rc == IOT_OK)
        rc = user_addresses(s);
    if (rc == IOT_OK)
        rc = count_devices(s, s->has_devices ? prev : NULL, err, errlen);
    if (rc == IOT_OK)
        rc = resolve_members(s, err, errlen);
    for (size_t i = 0; rc == IOT_OK && i < c->nrules; i++)
        rc = resolve_rule(s, &c->rules[i], err, errlen);
    if (rc != IOT_OK)
        goto out;

    rc = IOT_ENOMEM;
    c->tenant_by_name = calloc(c->ntenants + 1, sizeof(*c->tenant_by_name));
    c->type_by_name = calloc(c->ntypes + 1, sizeof(*c->type_by_name));
    c->user_by_name = calloc(c->nusers + 1, sizeof(*c->user_by_name));
    c->group_by_name = calloc(c->ngroups + 1, sizeof(*c->group_by_name));
    c->rule_by_target = calloc(c->nrules + 1, sizeof(*c->rule_by_target));
    if (!c->tenant_by_name || !c->type_by_name || !c->user_by_name || !c->group_by_name ||
        !c->rule_by_target)
        goto out;
    for (size_t i = 0; i < c->ntenants; i++)
        c->tenant_by_name[i] = &c->tenants[i];
    for (size_t i = 0; i < c->ntypes; i++)
        c->type_by_name[i] = &c->types[i];
    for (size_t i = 0; i < c->nusers; i++)
        c->user_by_name[i] = &c->users[i];
    for (size_t i = 0; i < c->ngroups; i++)
        c->group_by_name[i] = &c->groups[i];
    for (size_t i = 0; i < c->nrules; i++)
        c->rule_by_target[i] = &c->rules[i];
    sort(c->tenant_by_name, c->ntenants, sizeof(*c->tenant_by_name), tenant_name_sort);
    sort(c->type_by_name, c->ntypes, sizeof(*c->type_by_name), type_name_sort);
    sort(c->user_by_name, c->nusers, sizeof(*c->user_by_name), user_name_sort);
    sort(c->group_by_name, c->ngroups, sizeof(*c->group_by_name), group_name_sort);
    sort(c->rule_by_target, c->nrules, sizeof(*c->rule_by_target), rule_by_target_sort);
    devset_seal(&s->devices);
    s->finished = true;
    rc = IOT_OK;
out:
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory building the registry snapshot");
    return rc;
}

int snapshot_finish(registry_snapshot_t *s, char *err, size_t errlen)
{
    return snapshot_finish_on(s, NULL, err, errlen);
}

/* ---- lookups ---- */

const struct reg_tenant *snapshot_tenant(const registry_snapshot_t *s, const char *name)
{
    size_t i = lower_bound(s->core->tenant_by_name, s->core->ntenants,
                           sizeof(*s->core->tenant_by_name), name, tenant_name_key);
    if (i < s->core->ntenants && strcmp(s->core->tenant_by_name[i]->name, name) == 0)
        return s->core->tenant_by_name[i];
    return NULL;
}

/* Binary search of a (tenant, name) index of count pointers. */
static const void *name_lookup(const void *index, size_t count, const char *tenant,
                               const char *name, int (*keyfn)(const void *, const void *))
{
    struct name_key key = {tenant, name};
    size_t i = lower_bound(index, count, sizeof(void *), &key, keyfn);
    if (i < count && keyfn(&key, (const char *)index + i * sizeof(void *)) == 0)
        return ((const void *const *)index)[i];
    return NULL;
}

const struct reg_type *snapshot_type(const registry_snapshot_t *s, const char *tenant,
                                     const char *name)
{
    return name_lookup(s->core->type_by_name, s->core->ntypes, tenant, name, type_name_key);
}

const struct reg_user *snapshot_user(const registry_snapshot_t *s, const char *tenant,
                                     const char *name)
{
    return name_lookup(s->core->user_by_name, s->core->nusers, tenant, name, user_name_key);
}

const struct reg_group *snapshot_group(const registry_snapshot_t *s, const char *tenant,
                                       const char *name)
{
    return name_lookup(s->core->group_by_name, s->core->ngroups, tenant, name, group_name_key);
}

static int message_key(const void *k, const void *e)
{
    return strcmp(k, ((const struct reg_message *)e)->name);
}

const struct reg_message *snapshot_message(const struct reg_type *type, const char *name)
{
    if (!type || !type->messages)
        return NULL;
    return search(name, type->messages, type->nmessages, sizeof(*type->messages), message_key);
}

const struct reg_device *snapshot_device(const registry_snapshot_t *s, const char *id)
{
    return devset_find(&s->devices, id);
}

/* The run of entries in arr (sorted by cmp) equal to key. */
static const struct reg_membership *member_range(const struct reg_membership *arr, size_t count,
                                                 const void *key,
                                                 int (*cmp)(const void *, const void *), size_t *n)
{
    size_t first = lower_bound(arr, count, sizeof(*arr), key, cmp);
    size_t last = first;
    while (last < count && cmp(key, &arr[last]) == 0)
        last++;
    *n = last - first;
    return arr + first;
}

const struct reg_membership *snapshot_group_members(const registry_snapshot_t *s,
                                                    const struct reg_group *g, size_t *n)
{
    return member_range(s->core->members_by_group, s->core->nmembers, g, members_group_key, n);
}

const struct reg_membership *snapshot_device_groups(const registry_snapshot_t *s,
                                                    const struct reg_device *d, size_t *n)
{
    struct reg_membership key = {.device_id = d->id};
    return member_range(s->core->members_by_member, s->core->nmembers, &key, members_member_key, n);
}

const struct reg_membership *snapshot_user_groups(const registry_snapshot_t *s,
                                                  const struct reg_user *u, size_t *n)
{
    struct reg_membership key = {.user = u};
    return member_range(s->core->members_by_member, s->core->nmembers, &key, members_member_key, n);
}

const struct reg_rule *const *snapshot_target_rules(const registry_snapshot_t *s,
                                                    uint32_t tenant_id, enum reg_target_kind kind,
                                                    uint32_t target_id,
                                                    const char *target_device_id, size_t *n)
{
    struct rule_key key = {tenant_id, kind, target_id, target_device_id};
    size_t first = lower_bound(s->core->rule_by_target, s->core->nrules,
                               sizeof(*s->core->rule_by_target), &key, rule_by_target_key);
    size_t last = first;
    while (last < s->core->nrules && rule_by_target_key(&key, &s->core->rule_by_target[last]) == 0)
        last++;
    *n = last - first;
    return s->core->rule_by_target + first;
}

const struct reg_tenant *snapshot_device_tenant(const registry_snapshot_t *s,
                                                const struct reg_device *d)
{
    const struct reg_core *c = s->core;
    return find_by_id(c->tenants, c->ntenants, sizeof(*c->tenants), d->tenant_id);
}

const struct reg_type *snapshot_device_type(const registry_snapshot_t *s,
                                            const struct reg_device *d)
{
    const struct reg_core *c = s->core;
    return find_by_id(c->types, c->ntypes, sizeof(*c->types), d->type_id);
}

uint32_t snapshot_tenant_devices(const registry_snapshot_t *s, const struct reg_tenant *t)
{
    return s->tenant_devices[t - s->core->tenants];
}

uint32_t snapshot_type_devices(const registry_snapshot_t *s, const struct reg_type *t)
{
    return s->type_devices[t - s->core->types];
}
