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
    return strcmp(((const struct reg_device *)a)->id, ((const struct reg_device *)b)->id);
}

static int by_message(const void *a, const void *b)
{
    const struct reg_message *x = a, *y = b;
    int c = cmp_u32(x->type_id, y->type_id);
    return c ? c : strcmp(x->name, y->name);
}

/* Binary search by numeric id in an array sorted by its leading uint32_t id. */
static void *find_by_id(void *base, size_t n, size_t size, uint32_t id)
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
    if (x->device && y->device)
        return strcmp(x->device->id, y->device->id);
    if (x->user && y->user) {
        int c = strcmp(x->user->tenant->name, y->user->tenant->name);
        return c ? c : strcmp(x->user->name, y->user->name);
    }
    return x->device ? -1 : 1;
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

static int resolve_entities(registry_snapshot_t *s, char *err, size_t errlen)
{
    int rc = IOT_OK;
    sort(s->tenants, s->ntenants, sizeof(*s->tenants), by_u32_id);
    sort(s->types, s->ntypes, sizeof(*s->types), by_u32_id);
    sort(s->users, s->nusers, sizeof(*s->users), by_u32_id);
    sort(s->groups, s->ngroups, sizeof(*s->groups), by_u32_id);
    sort(s->rules, s->nrules, sizeof(*s->rules), by_rule_id);
    sort(s->devices, s->ndevices, sizeof(*s->devices), by_device_id);
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
    for (size_t i = 0; i < s->ndevices; i++) {
        struct reg_device *d = &s->devices[i];
        if (i > 0 && strcmp(d[-1].id, d->id) == 0)
            FAIL("device %s appears twice", d->id);
        struct reg_tenant *tn =
            find_by_id(s->tenants, s->ntenants, sizeof(*s->tenants), d->tenant_id);
        struct reg_type *t = find_by_id(s->types, s->ntypes, sizeof(*s->types), d->type_id);
        if (!tn || !t || t->tenant_id != d->tenant_id)
            FAIL("device %s names a missing tenant or a type of another tenant", d->id);
        d->tenant = tn;
        d->type = t;
        tn->ndevices++;
        t->ndevices++;
    }
    for (size_t i = 0; i < s->nusers; i++) {
        struct reg_user *u = &s->users[i];
        struct reg_tenant *tn =
            find_by_id(s->tenants, s->ntenants, sizeof(*s->tenants), u->tenant_id);
        if (!tn)
            FAIL("user %s names missing tenant %u", u->name, u->tenant_id);
        u->tenant = tn;
        tn->nusers++;
        char address[160];
        bool ok = true;
        snprintf(address, sizeof(address), "%s@%s", u->name, tn->name);
        u->address = snapshot_strdup(s, address, &ok);
        if (!ok) {
            rc = IOT_ENOMEM;
            goto out;
        }
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

static const struct reg_device *device_by_id(const registry_snapshot_t *s, const char *id)
{
    struct reg_device key = {.id = id};
    return id ? search(&key, s->devices, s->ndevices, sizeof(*s->devices), by_device_id) : NULL;
}

static int resolve_members(registry_snapshot_t *s, char *err, size_t errlen)
{
    int rc = IOT_OK;
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
            m->device = device_by_id(s, row->device_id);
            if (!m->device || m->device->tenant_id != g->tenant_id)
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
static int resolve_rule(registry_snapshot_t *s, struct reg_rule *r, char *err, size_t errlen)
{
    int rc = IOT_OK;
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
        r->subject_device = device_by_id(s, r->subject_device_id);
        subject_tenant = r->subject_device ? r->subject_device->tenant_id : 0;
        break;
    case REG_SUBJECT_GROUP:
        r->subject_group = find_by_id(s->groups, s->ngroups, sizeof(*s->groups), r->subject_id);
        subject_tenant = r->subject_group ? r->subject_group->tenant_id : 0;
        break;
    }
    switch (r->target_kind) {
    case REG_TARGET_DEVICE:
        r->target_device = device_by_id(s, r->target_device_id);
        target_tenant = r->target_device ? r->target_device->tenant_id : 0;
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

int snapshot_finish(registry_snapshot_t *s, char *err, size_t errlen)
{
    int rc = IOT_EINVAL;
    if (s->finished) {
        snprintf(err, errlen, "snapshot already finished");
        goto out;
    }
    rc = resolve_entities(s, err, errlen);
    if (rc != IOT_OK)
        goto out;
    rc = resolve_members(s, err, errlen);
    if (rc != IOT_OK)
        goto out;
    for (size_t i = 0; i < s->nrules; i++) {
        rc = resolve_rule(s, &s->rules[i], err, errlen);
        if (rc != IOT_OK)
            goto out;
    }

    rc = IOT_ENOMEM;
    s->tenant_by_name = calloc(s->ntenants + 1, sizeof(*s->tenant_by_name));
    s->type_by_name = calloc(s->ntypes + 1, sizeof(*s->type_by_name));
    s->user_by_name = calloc(s->nusers + 1, sizeof(*s->user_by_name));
    s->group_by_name = calloc(s->ngroups + 1, sizeof(*s->group_by_name));
    s->rule_by_target = calloc(s->nrules + 1, sizeof(*s->rule_by_target));
    if (!s->tenant_by_name || !s->type_by_name || !s->user_by_name || !s->group_by_name ||
        !s->rule_by_target)
        goto out;
    for (size_t i = 0; i < s->ntenants; i++)
        s->tenant_by_name[i] = &s->tenants[i];
    for (size_t i = 0; i < s->ntypes; i++)
        s->type_by_name[i] = &s->types[i];
    for (size_t i = 0; i < s->nusers; i++)
        s->user_by_name[i] = &s->users[i];
    for (size_t i = 0; i < s->ngroups; i++)
        s->group_by_name[i] = &s->groups[i];
    for (size_t i = 0; i < s->nrules; i++)
        s->rule_by_target[i] = &s->rules[i];
    sort(s->tenant_by_name, s->ntenants, sizeof(*s->tenant_by_name), tenant_name_sort);
    sort(s->type_by_name, s->ntypes, sizeof(*s->type_by_name), type_name_sort);
    sort(s->user_by_name, s->nusers, sizeof(*s->user_by_name), user_name_sort);
    sort(s->group_by_name, s->ngroups, sizeof(*s->group_by_name), group_name_sort);
    sort(s->rule_by_target, s->nrules, sizeof(*s->rule_by_target), rule_by_target_sort);
    s->finished = true;
    rc = IOT_OK;
out:
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory building the registry snapshot");
    return rc;
}

/* ---- lookups ---- */

const struct reg_tenant *snapshot_tenant(const registry_snapshot_t *s, const char *name)
{
    size_t i = lower_bound(s->tenant_by_name, s->ntenants, sizeof(*s->tenant_by_name), name,
                           tenant_name_key);
    if (i < s->ntenants && strcmp(s->tenant_by_name[i]->name, name) == 0)
        return s->tenant_by_name[i];
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
    return name_lookup(s->type_by_name, s->ntypes, tenant, name, type_name_key);
}

const struct reg_user *snapshot_user(const registry_snapshot_t *s, const char *tenant,
                                     const char *name)
{
    return name_lookup(s->user_by_name, s->nusers, tenant, name, user_name_key);
}

const struct reg_group *snapshot_group(const registry_snapshot_t *s, const char *tenant,
                                       const char *name)
{
    return name_lookup(s->group_by_name, s->ngroups, tenant, name, group_name_key);
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
    return device_by_id(s, id);
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
    return member_range(s->members_by_group, s->nmembers, g, members_group_key, n);
}

const struct reg_membership *snapshot_device_groups(const registry_snapshot_t *s,
                                                    const struct reg_device *d, size_t *n)
{
    struct reg_membership key = {.device = d};
    return member_range(s->members_by_member, s->nmembers, &key, members_member_key, n);
}

const struct reg_membership *snapshot_user_groups(const registry_snapshot_t *s,
                                                  const struct reg_user *u, size_t *n)
{
    struct reg_membership key = {.user = u};
    return member_range(s->members_by_member, s->nmembers, &key, members_member_key, n);
}

const struct reg_rule *const *snapshot_target_rules(const registry_snapshot_t *s,
                                                    uint32_t tenant_id, enum reg_target_kind kind,
                                                    uint32_t target_id,
                                                    const char *target_device_id, size_t *n)
{
    struct rule_key key = {tenant_id, kind, target_id, target_device_id};
    size_t first = lower_bound(s->rule_by_target, s->nrules, sizeof(*s->rule_by_target), &key,
                               rule_by_target_key);
    size_t last = first;
    while (last < s->nrules && rule_by_target_key(&key, &s->rule_by_target[last]) == 0)
        last++;
    *n = last - first;
    return s->rule_by_target + first;
}
