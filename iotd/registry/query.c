/*
 * query.c - the read-only control commands, answered from a snapshot without touching the
 * database: tenant/type/device/user/group list and show, message list, access list and check.
 *
 * One handler per command in a table indexed by the command id (registry_answers is "has a
 * handler"). Result keys are the ones ctl_commands.c names as columns and list_key, so iotctl
 * prints them without knowing the command; lists come out sorted (tenant, then name or id).
 * Every key is always present; an absent value is JSON null. Timestamps are UTC ISO 8601
 * strings ("2024-05-01T12:00:00Z"). Device results never carry the secret, user results never
 * carry the password hash. Lists hold counts or short text where a table cell is expected
 * (user list: "groups" is "ops,oncall"); show commands hold arrays (user show: "groups").
 * device list has no "online" column: presence is not registry state, the control server adds
 * it from the presence map.
 */
#include "registry_internal.h"

#include "ctl_page.h"
#include "ctl_proto.h"
#include "iot_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A page of device list when no --limit is given. */
#define DEVICE_LIST_DEFAULT CTL_PAGE_MAX

struct query {
    const registry_snapshot_t *snap;
    const struct registry_presence *presence; /* NULL: not known (--online refused) */
    const cJSON *args;
    cJSON *result;
    char *err;
    size_t errlen;
    bool oom; /* some part of the answer could not be allocated */
};

typedef int (*query_fn)(struct query *q);

__attribute__((format(printf, 3, 4))) static int fail(struct query *q, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err, q->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- JSON helpers. cJSON_Add* return NULL when out of memory; rather than an error path
 * after every field, the helpers note it in q->oom and registry_query fails the whole answer
 * once at the end, so a reply is either complete or an error. ---- */

static void *noted(struct query *q, void *p)
{
    if (!p)
        q->oom = true;
    return p;
}

static void put_str(struct query *q, cJSON *o, const char *key, const char *v)
{
    noted(q, v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key));
}

static void put_num(struct query *q, cJSON *o, const char *key, double v)
{
    noted(q, cJSON_AddNumberToObject(o, key, v));
}

static void put_bool(struct query *q, cJSON *o, const char *key, bool v)
{
    noted(q, cJSON_AddBoolToObject(o, key, v));
}

static void put_time(struct query *q, cJSON *o, const char *key, int64_t seconds)
{
    char buf[32];
    if (seconds <= 0) {
        put_str(q, o, key, NULL);
        return;
    }
    reg_format_time(seconds, buf, sizeof(buf));
    put_str(q, o, key, buf);
}

static cJSON *put_array(struct query *q, cJSON *o, const char *key)
{
    return noted(q, cJSON_AddArrayToObject(o, key));
}

static void push_str(struct query *q, cJSON *list, const char *v)
{
    cJSON *s = noted(q, cJSON_CreateString(v));
    if (s && !cJSON_AddItemToArray(list, s)) {
        cJSON_Delete(s);
        q->oom = true;
    }
}

/* A new object appended to list; NULL (and q->oom) on allocation failure. */
static cJSON *new_item(struct query *q, cJSON *list)
{
    cJSON *o = noted(q, cJSON_CreateObject());
    if (o && !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        q->oom = true;
        o = NULL;
    }
    return o;
}

/* The --tenant filter of list commands: NULL when absent, else the tenant (must exist). */
static int tenant_filter(struct query *q, const struct reg_tenant **out)
{
    const char *name = ctl_get_string(q->args, "tenant");
    *out = NULL;
    if (!name)
        return IOT_OK;
    *out = snapshot_tenant(q->snap, name);
    if (!*out)
        return fail(q, IOT_ENOTFOUND, "unknown tenant %s", name);
    return IOT_OK;
}

static const struct reg_type *need_type(struct query *q, const char *key, int *rc)
{
    const char *tenant = ctl_get_string(q->args, "tenant"), *name = ctl_get_string(q->args, key);
    const struct reg_type *t = NULL;
    if (!tenant || !snapshot_tenant(q->snap, tenant))
        *rc = fail(q, IOT_ENOTFOUND, "unknown tenant %s", tenant ? tenant : "(none)");
    else if (!name || !(t = snapshot_type(q->snap, tenant, name)))
        *rc =
            fail(q, IOT_ENOTFOUND, "unknown device type %s in tenant %s", name ? name : "", tenant);
    return t;
}

/* ---- tenants ---- */

static void tenant_fields(struct query *q, cJSON *o, const struct reg_tenant *t)
{
    put_str(q, o, "name", t->name);
    put_str(q, o, "display_name", t->display_name);
    put_num(q, o, "types", t->ntypes);
    put_num(q, o, "devices", snapshot_tenant_devices(q->snap, t));
    put_num(q, o, "users", t->nusers);
    put_num(q, o, "groups", t->ngroups);
    put_num(q, o, "rules", t->nrules);
    put_time(q, o, "created", t->created);
}

static int q_tenant_list(struct query *q)
{
    cJSON *list = put_array(q, q->result, "tenants");
    for (size_t i = 0; list && i < q->snap->core->ntenants; i++) {
        cJSON *o = new_item(q, list);
        if (o)
            tenant_fields(q, o, q->snap->core->tenant_by_name[i]);
    }
    return IOT_OK;
}

static int q_tenant_show(struct query *q)
{
    const char *name = ctl_get_string(q->args, "name");
    const struct reg_tenant *t = name ? snapshot_tenant(q->snap, name) : NULL;
    if (!t)
        return fail(q, IOT_ENOTFOUND, "unknown tenant %s", name ? name : "");
    tenant_fields(q, q->result, t);
    return IOT_OK;
}

/* ---- device types and the catalogue ---- */

static void message_fields(struct query *q, cJSON *o, const struct reg_message *m)
{
    put_str(q, o, "name", m->name);
    put_str(q, o, "direction", reg_direction_name(m->direction));
    put_str(q, o, "args", m->args);
    put_num(q, o, "timeout_ms", m->timeout_ms);
    put_str(q, o, "description", m->description);
    if (m->direction == REG_DIR_EVENT) {
        put_str(q, o, "start", m->start_message);
        put_str(q, o, "stop", m->stop_message);
    }
}

static void type_fields(struct query *q, cJSON *o, const struct reg_type *t)
{
    put_str(q, o, "tenant", t->tenant->name);
    put_str(q, o, "name", t->name);
    put_num(q, o, "messages", t->nmessages);
    put_num(q, o, "devices", snapshot_type_devices(q->snap, t));
    put_str(q, o, "description", t->description);
    put_time(q, o, "created", t->created);
}

static int q_type_list(struct query *q)
{
    const struct reg_tenant *tenant;
    int rc = tenant_filter(q, &tenant);
    if (rc != IOT_OK)
        return rc;
    cJSON *list = put_array(q, q->result, "types");
    for (size_t i = 0; list && i < q->snap->core->ntypes; i++) {
        const struct reg_type *t = q->snap->core->type_by_name[i];
        if (tenant && t->tenant != tenant)
            continue;
        cJSON *o = new_item(q, list);
        if (o)
            type_fields(q, o, t);
    }
    return IOT_OK;
}

static cJSON *catalogue(struct query *q, cJSON *parent, const char *key, const struct reg_type *t)
{
    cJSON *list = put_array(q, parent, key);
    for (uint32_t i = 0; list && i < t->nmessages; i++) {
        cJSON *o = new_item(q, list);
        if (o)
            message_fields(q, o, &t->messages[i]);
    }
    return list;
}

static int q_type_show(struct query *q)
{
    int rc = IOT_OK;
    const struct reg_type *t = need_type(q, "name", &rc);
    if (!t)
        return rc;
    type_fields(q, q->result, t);
    /* "messages" is the count in lists; here the catalogue itself replaces it. */
    cJSON_DeleteItemFromObjectCaseSensitive(q->result, "messages");
    catalogue(q, q->result, "messages", t);
    return IOT_OK;
}

static int q_message_list(struct query *q)
{
    int rc = IOT_OK;
    const struct reg_type *t = need_type(q, "type", &rc);
    if (!t)
        return rc;
    put_str(q, q->result, "tenant", t->tenant->name);
    put_str(q, q->result, "type", t->name);
    catalogue(q, q->result, "messages", t);
    return IOT_OK;
}

/* ---- devices ---- */

static void device_fields(struct query *q, cJSON *o, const struct reg_device *d)
{
    put_str(q, o, "id", d->id);
    put_str(q, o, "tenant", snapshot_device_tenant(q->snap, d)->name);
    put_str(q, o, "type", snapshot_device_type(q->snap, d)->name);
    put_str(q, o, "auth", reg_auth_name(d->auth));
    put_bool(q, o, "enabled", d->enabled);
    put_time(q, o, "last_seen", d->last_seen);
    put_str(q, o, "display_name", d->display_name);
    put_time(q, o, "created", d->created);
}

/* Is d a member of device group g? */
static bool in_group(const registry_snapshot_t *snap, const struct reg_device *d,
                     const struct reg_group *g)
{
    size_t n;
    const struct reg_membership *m = snapshot_device_groups(snap, d, &n);
    for (size_t i = 0; i < n; i++)
        if (m[i].group == g)
            return true;
    return false;
}

/* Paged by device id: the cursor is the last id of the page (ctl_page.h). --online and
 * --offline ask the caller's presence, which is not registry state. */
static int q_device_list(struct query *q)
{
    const struct reg_tenant *tenant;
    const struct reg_group *group = NULL;
    struct ctl_page page;
    int rc = tenant_filter(q, &tenant);
    if (rc != IOT_OK)
        return rc;
    if ((rc = ctl_page_args(q->args, DEVICE_LIST_DEFAULT, &page, q->err, q->errlen)) != IOT_OK)
        return rc;
    if (page.after && !ctl_value_valid(CTL_ARG_NAME, page.after))
        return fail(q, IOT_EINVAL, "%s", CTL_CURSOR_BAD);
    const char *type = ctl_get_string(q->args, "type");
    const char *group_name = ctl_get_string(q->args, "group");
    bool online = ctl_get_bool(q->args, "online", 0), offline = ctl_get_bool(q->args, "offline", 0);
    if (type && tenant && !snapshot_type(q->snap, tenant->name, type))
        return fail(q, IOT_ENOTFOUND, "unknown device type %s in tenant %s", type, tenant->name);
    if (group_name && !tenant)
        return fail(q, IOT_EINVAL, "--group needs --tenant (group names are per tenant)");
    if (group_name && (!(group = snapshot_group(q->snap, tenant->name, group_name)) ||
                       group->kind != REG_GROUP_DEVICE))
        return fail(q, IOT_ENOTFOUND, "unknown device group %s in tenant %s", group_name,
                    tenant->name);
    if (online && offline)
        return fail(q, IOT_EINVAL, "--online and --offline exclude each other");
    if ((online || offline) && !q->presence)
        return fail(q, IOT_EINVAL, "presence is not known here");
    cJSON *list = put_array(q, q->result, "devices");
    unsigned shown = 0;
    const char *last = NULL;
    /* From the first device whose id sorts after the cursor (devices are sorted by id), so a
     * page continues where the one before ended even if that device has been removed since. */
    struct devset_iter it = devset_after(&q->snap->devices, page.after);
    for (const struct reg_device *d; list && (d = devset_next(&q->snap->devices, &it));) {
        if ((tenant && d->tenant_id != tenant->id) ||
            (type && strcmp(snapshot_device_type(q->snap, d)->name, type) != 0) ||
            (group && !in_group(q->snap, d, group)) ||
            ((online || offline) && q->presence->online(q->presence->ctx, d->id) != online))
            continue;
        if (shown == page.limit) {
            put_str(q, q->result, "next", last); /* a row beyond the page: more follow */
            break;
        }
        cJSON *o = new_item(q, list);
        if (o)
            device_fields(q, o, d);
        last = d->id;
        shown++;
    }
    return IOT_OK;
}

/* device export: the rows device import reads (never the secret), paged by id like device
 * list; iotctl asks for every page and writes them as CSV or JSON lines. */
static int q_device_export(struct query *q)
{
    const struct reg_tenant *tenant;
    struct ctl_page page;
    int rc = tenant_filter(q, &tenant);
    if (rc == IOT_OK)
        rc = ctl_page_args(q->args, CTL_PAGE_ALL, &page, q->err, q->errlen);
    if (rc != IOT_OK)
        return rc;
    const char *format = ctl_get_string(q->args, "format");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)
        return fail(q, IOT_EINVAL, "--format must be csv or jsonl");
    cJSON *list = put_array(q, q->result, "devices");
    unsigned shown = 0;
    const char *last = NULL;
    struct devset_iter it = devset_after(&q->snap->devices, page.after);
    for (const struct reg_device *d; list && (d = devset_next(&q->snap->devices, &it));) {
        if (tenant && d->tenant_id != tenant->id)
            continue;
        if (shown == page.limit) {
            put_str(q, q->result, "next", last);
            break;
        }
        cJSON *o = new_item(q, list);
        if (!o)
            break;
        char serial[2 * REG_SERIAL_LEN + 1];
        for (size_t b = 0; d->has_serial && b < REG_SERIAL_LEN; b++)
            snprintf(serial + 2 * b, 3, "%02x", d->serial[b]);
        put_str(q, o, "id", d->id);
        put_str(q, o, "tenant", snapshot_device_tenant(q->snap, d)->name);
        put_str(q, o, "type", snapshot_device_type(q->snap, d)->name);
        put_str(q, o, "name", d->display_name);
        size_t n;
        const struct reg_membership *m = snapshot_device_groups(q->snap, d, &n);
        cJSON *groups = put_array(q, o, "groups");
        for (size_t g = 0; groups && g < n; g++)
            push_str(q, groups, m[g].group->name);
        put_str(q, o, "auth", reg_auth_name(d->auth));
        put_str(q, o, "serial", d->has_serial ? serial : NULL);
        last = d->id;
        shown++;
    }
    return IOT_OK;
}

static int q_device_show(struct query *q)
{
    const char *id = ctl_get_string(q->args, "id");
    const struct reg_device *d = id ? snapshot_device(q->snap, id) : NULL;
    if (!d)
        return fail(q, IOT_ENOTFOUND, "unknown device %s", id ? id : "");
    device_fields(q, q->result, d);
    char serial[2 * REG_SERIAL_LEN + 1];
    for (size_t i = 0; d->has_serial && i < REG_SERIAL_LEN; i++)
        snprintf(serial + 2 * i, 3, "%02x", d->serial[i]);
    put_str(q, q->result, "serial", d->has_serial ? serial : NULL);
    put_str(q, q->result, "last_address", d->last_address);
    size_t n;
    const struct reg_membership *m = snapshot_device_groups(q->snap, d, &n);
    cJSON *groups = put_array(q, q->result, "groups");
    for (size_t i = 0; groups && i < n; i++)
        push_str(q, groups, m[i].group->name);
    return IOT_OK;
}

/* ---- users ---- */

static void user_fields(struct query *q, cJSON *o, const struct reg_user *u, bool groups_as_text)
{
    put_str(q, o, "user", u->address);
    put_str(q, o, "tenant", u->tenant->name);
    put_str(q, o, "name", u->name);
    put_str(q, o, "role", reg_role_name(u->role));
    put_time(q, o, "created", u->created);
    size_t n;
    const struct reg_membership *m = snapshot_user_groups(q->snap, u, &n);
    if (groups_as_text) {
        /* A table cell: "ops,oncall". */
        char text[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < n && used < sizeof(text); i++)
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? "," : "",
                                     m[i].group->name);
        put_str(q, o, "groups", text);
        return;
    }
    cJSON *groups = put_array(q, o, "groups");
    for (size_t i = 0; groups && i < n; i++)
        push_str(q, groups, m[i].group->name);
}

static int q_user_list(struct query *q)
{
    const struct reg_tenant *tenant;
    int rc = tenant_filter(q, &tenant);
    if (rc != IOT_OK)
        return rc;
    cJSON *list = put_array(q, q->result, "users");
    for (size_t i = 0; list && i < q->snap->core->nusers; i++) {
        const struct reg_user *u = q->snap->core->user_by_name[i];
        if (tenant && u->tenant != tenant)
            continue;
        cJSON *o = new_item(q, list);
        if (o)
            user_fields(q, o, u, true);
    }
    return IOT_OK;
}

static int q_user_show(struct query *q)
{
    const char *address = ctl_get_string(q->args, "user");
    char name[65], tenant[65];
    const struct reg_user *u = NULL;
    if (address && reg_split_address(address, name, sizeof(name), tenant, sizeof(tenant)))
        u = snapshot_user(q->snap, tenant, name);
    if (!u)
        return fail(q, IOT_ENOTFOUND, "unknown user %s (users are written name@tenant)",
                    address ? address : "");
    user_fields(q, q->result, u, false);
    return IOT_OK;
}

/* ---- groups ---- */

static void group_fields(struct query *q, cJSON *o, const struct reg_group *g)
{
    put_str(q, o, "tenant", g->tenant->name);
    put_str(q, o, "name", g->name);
    put_str(q, o, "kind", reg_group_kind_name(g->kind));
    put_num(q, o, "members", g->nmembers);
    put_time(q, o, "created", g->created);
}

static int q_group_list(struct query *q)
{
    const struct reg_tenant *tenant;
    int rc = tenant_filter(q, &tenant);
    if (rc != IOT_OK)
        return rc;
    cJSON *list = put_array(q, q->result, "groups");
    for (size_t i = 0; list && i < q->snap->core->ngroups; i++) {
        const struct reg_group *g = q->snap->core->group_by_name[i];
        if (tenant && g->tenant != tenant)
            continue;
        cJSON *o = new_item(q, list);
        if (o)
            group_fields(q, o, g);
    }
    return IOT_OK;
}

static int q_group_show(struct query *q)
{
    const char *tenant = ctl_get_string(q->args, "tenant"), *name = ctl_get_string(q->args, "name");
    const struct reg_group *g = (tenant && name) ? snapshot_group(q->snap, tenant, name) : NULL;
    if (!g)
        return fail(q, IOT_ENOTFOUND, "unknown group %s in tenant %s", name ? name : "",
                    tenant ? tenant : "");
    group_fields(q, q->result, g);
    cJSON_DeleteItemFromObjectCaseSensitive(q->result, "members");
    size_t n;
    const struct reg_membership *m = snapshot_group_members(q->snap, g, &n);
    cJSON *members = put_array(q, q->result, "members");
    for (size_t i = 0; members && i < n; i++)
        push_str(q, members, m[i].device_id ? m[i].device_id : m[i].user->name);
    return IOT_OK;
}

/* ---- access ---- */

static int q_access_list(struct query *q)
{
    const struct reg_tenant *tenant;
    int rc = tenant_filter(q, &tenant);
    if (rc != IOT_OK)
        return rc;
    cJSON *list = put_array(q, q->result, "rules");
    for (size_t i = 0; list && i < q->snap->core->nrules; i++) {
        const struct reg_rule *r = &q->snap->core->rules[i];
        if (tenant && r->tenant != tenant)
            continue;
        cJSON *o = new_item(q, list);
        if (!o)
            continue;
        char subject[100], target[100];
        reg_rule_subject(r, subject, sizeof(subject));
        reg_rule_target(r, target, sizeof(target));
        put_num(q, o, "rule", (double)r->id);
        put_str(q, o, "tenant", r->tenant->name);
        put_str(q, o, "subject", subject);
        put_str(q, o, "target", target);
        put_str(q, o, "message", r->message ? r->message : "any");
        put_time(q, o, "created", r->created);
        put_str(q, o, "created_by", r->created_by);
    }
    return IOT_OK;
}

/* access check SUBJECT DEVICE MESSAGE [--tenant T]. SUBJECT is "user:NAME@TENANT",
 * "user:NAME" (in --tenant, or else in the device's tenant), "device:ID", "NAME@TENANT" or a
 * bare device id. */
static int q_access_check(struct query *q)
{
    const char *subject = ctl_get_string(q->args, "subject");
    const char *device = ctl_get_string(q->args, "device");
    const char *message = ctl_get_string(q->args, "message");
    const char *tenant = ctl_get_string(q->args, "tenant");
    char principal[200];
    if (!subject || !device || !message)
        return fail(q, IOT_EINVAL, "access.check needs a subject, a device and a message");

    const char *bare = subject;
    bool user = strchr(subject, '@') != NULL;
    if (strncmp(subject, "user:", 5) == 0) {
        bare = subject + 5;
        user = true;
    } else if (strncmp(subject, "device:", 7) == 0) {
        bare = subject + 7;
        user = false;
    } else if (strncmp(subject, "group:", 6) == 0) {
        return fail(q, IOT_EINVAL,
                    "access.check asks about one principal: a user or a device, not a group");
    }
    if (user && !strchr(bare, '@')) {
        if (!tenant) {
            const struct reg_device *d = snapshot_device(q->snap, device);
            tenant = d ? snapshot_device_tenant(q->snap, d)->name : NULL;
        }
        if (!tenant)
            return fail(q, IOT_ENOTFOUND, "unknown device %s", device);
        snprintf(principal, sizeof(principal), "%s@%s", bare, tenant);
    } else {
        snprintf(principal, sizeof(principal), "%s", bare);
    }

    struct access_decision d;
    int rc = registry_access_check(q->snap, principal, device, message, &d);
    if (rc != IOT_OK)
        return fail(q, rc, "%s", d.reason);
    put_str(q, q->result, "subject", principal);
    put_str(q, q->result, "device", device);
    put_str(q, q->result, "message", message);
    put_str(q, q->result, "decision", d.allow ? "allow" : "deny");
    put_bool(q, q->result, "allow", d.allow);
    /* 0 when no rule decided, as iotctl(8) says: a number either way. */
    put_num(q, q->result, "rule", (double)d.rule_id);
    put_str(q, q->result, "reason", d.reason);
    return IOT_OK;
}

static const query_fn handlers[CTL_COMMAND_COUNT] = {
    [CTL_TENANT_LIST] = q_tenant_list,   [CTL_TENANT_SHOW] = q_tenant_show,
    [CTL_TYPE_LIST] = q_type_list,       [CTL_TYPE_SHOW] = q_type_show,
    [CTL_MESSAGE_LIST] = q_message_list, [CTL_DEVICE_LIST] = q_device_list,
    [CTL_DEVICE_SHOW] = q_device_show,   [CTL_DEVICE_EXPORT] = q_device_export,
    [CTL_USER_LIST] = q_user_list,       [CTL_USER_SHOW] = q_user_show,
    [CTL_GROUP_LIST] = q_group_list,     [CTL_GROUP_SHOW] = q_group_show,
    [CTL_ACCESS_LIST] = q_access_list,   [CTL_ACCESS_CHECK] = q_access_check,
};

bool registry_answers(const struct ctl_command *cmd)
{
    return cmd && (unsigned)cmd->id < CTL_COMMAND_COUNT && handlers[cmd->id] != NULL;
}

int registry_query(const registry_snapshot_t *snap, const struct ctl_command *cmd,
                   const cJSON *args, cJSON **result, char *err, size_t errlen)
{
    return registry_query_present(snap, cmd, args, NULL, result, err, errlen);
}

int registry_query_present(const registry_snapshot_t *snap, const struct ctl_command *cmd,
                           const cJSON *args, const struct registry_presence *presence,
                           cJSON **result, char *err, size_t errlen)
{
    struct query q = {snap, presence, args, NULL, err, errlen, false};
    int rc;
    *result = NULL;
    if (!registry_answers(cmd)) {
        snprintf(err, errlen, "%s is not answered from the registry", cmd ? cmd->name : "?");
        return IOT_EINVAL;
    }
    rc = ctl_args_validate(cmd, args, err, errlen);
    if (rc != IOT_OK)
        return rc;
    q.result = cJSON_CreateObject();
    if (!q.result)
        return IOT_ENOMEM;
    rc = handlers[cmd->id](&q);
    if (rc == IOT_OK && q.oom)
        rc = fail(&q, IOT_ENOMEM, "out of memory building the answer");
    if (rc != IOT_OK) {
        cJSON_Delete(q.result);
        return rc;
    }
    *result = q.result;
    return IOT_OK;
}
