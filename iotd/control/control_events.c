/*
 * control_events.c - events history and alarm commands of the control socket (see
 * control_events.h).
 */
#include "control/control_events.h"

#include "alarm/alarm_db.h"
#include "alarm/engine.h"
#include "ctl_page.h"
#include "ctl_proto.h"
#include "ctl_time.h"
#include "events/store.h"
#include "iot_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return rc;
}

/* --since / --until as ms since the epoch (0 when absent); IOT_EINVAL if unreadable. */
static int time_arg(const cJSON *args, const char *key, int64_t *out, char *err, size_t errlen)
{
    const char *text = ctl_get_string(args, key);
    *out = 0;
    if (!text)
        return IOT_OK;
    long long s = ctl_parse_time(text);
    if (s < 0) {
        snprintf(err, errlen,
                 "--%s: expected a UTC time such as 2026-05-01T12:00:00 or an age such as 15m, "
                 "2h, 3d",
                 key);
        return IOT_EINVAL;
    }
    *out = (int64_t)s * 1000;
    return IOT_OK;
}

/* The tenant of the request: --tenant, else the tenant of --device. */
static const char *request_tenant(const registry_snapshot_t *snap, const cJSON *args)
{
    const char *tenant = ctl_get_string(args, "tenant");
    const char *device = ctl_get_string(args, "device");
    struct registry_device_info d;
    if (!tenant && device && registry_device_lookup(snap, device, &d) == 0)
        tenant = d.tenant;
    return tenant;
}

static int list_result(cJSON **result, const char *key, cJSON *rows)
{
    *result = cJSON_CreateObject();
    if (!*result || !cJSON_AddItemToObject(*result, key, rows)) {
        cJSON_Delete(rows);
        cJSON_Delete(*result);
        *result = NULL;
        return IOT_ENOMEM;
    }
    return IOT_OK;
}

static int events_history(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args,
                          const char *actor, cJSON **result, char *err, size_t errlen)
{
    (void)actor;
    struct event_query q = {.tenant = request_tenant(snap, args),
                            .device = ctl_get_string(args, "device"),
                            .name = ctl_get_string(args, "name")};
    const char *kind = ctl_get_string(args, "kind");
    struct ctl_page page;
    unsigned long long key[2] = {0, 0};
    char next[64];
    bool more = false;
    cJSON *rows = NULL;
    int rc;
    if (!q.tenant)
        return fail(err, errlen, IOT_EINVAL,
                    ctl_get_string(args, "device") ? "no such device"
                                                   : "give --tenant or --device");
    if (kind && strcmp(kind, "event") != 0 && strcmp(kind, "alarm") != 0)
        return fail(err, errlen, IOT_EINVAL, "--kind must be event or alarm");
    q.kind = !kind ? EVENT_QUERY_ANY : kind[0] == 'e' ? EVENT_QUERY_EVENT : EVENT_QUERY_ALARM;
    if ((rc = ctl_page_args(args, EVENT_QUERY_DEFAULT_LIMIT, &page, err, errlen)) != 0)
        return rc;
    /* The cursor is the last row's place in the order: received_at (ms), id. */
    if (page.after && (!ctl_cursor_parse(page.after, key, 2) || key[1] == 0))
        return fail(err, errlen, IOT_EINVAL, CTL_CURSOR_BAD);
    q.limit = page.limit;
    q.after_ms = (int64_t)key[0];
    q.after_id = key[1];
    q.more = &more;
    if ((rc = time_arg(args, "since", &q.since_ms, err, errlen)) != 0 ||
        (rc = time_arg(args, "until", &q.until_ms, err, errlen)) != 0)
        return rc;
    rc = event_store_query(conn, &q, &rows, err, errlen);
    if (rc != 0)
        return rc;
    /* Rows name their tenant too, so exports from several runs can be merged. */
    cJSON *row, *last = NULL;
    cJSON_ArrayForEach(row, rows)
    {
        if (!cJSON_GetObjectItemCaseSensitive(row, "tenant"))
            cJSON_AddStringToObject(row, "tenant", q.tenant);
        last = row;
    }
    if ((rc = list_result(result, "events", rows)) != 0 || !more || !last)
        return rc;
    key[0] = (unsigned long long)ctl_get_int(last, "ts_ms", 0);
    key[1] = (unsigned long long)ctl_get_int(last, "id", 0);
    ctl_cursor_format(next, sizeof(next), key, 2);
    return ctl_page_set_next(*result, next);
}

static bool number_arg(const cJSON *args, const char *key, double *out)
{
    const char *text = ctl_get_string(args, key);
    char *end = NULL;
    if (!text)
        return true;
    *out = strtod(text, &end);
    return end != text && !*end && isfinite(*out);
}

/* "device:ID", "group:NAME", "type:NAME", "tenant" (or absent). */
static bool scope_arg(const char *on, struct alarm_rule *r)
{
    static const struct {
        const char *prefix;
        enum alarm_scope scope;
    } kinds[] = {{"device:", ALARM_SCOPE_DEVICE},
                 {"group:", ALARM_SCOPE_GROUP},
                 {"type:", ALARM_SCOPE_TYPE}};
    if (!on || strcmp(on, "tenant") == 0) {
        r->scope = ALARM_SCOPE_TENANT;
        return true;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(on, kinds[i].prefix, n) == 0 && on[n] && strlen(on + n) < sizeof(r->target)) {
            r->scope = kinds[i].scope;
            snprintf(r->target, sizeof(r->target), "%s", on + n);
            return true;
        }
    }
    return false;
}

static int rule_add(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args,
                    const char *actor, cJSON **result, char *err, size_t errlen)
{
    (void)snap;
    struct alarm_rule r = {.enabled = true, .severity = ALARM_SEVERITY_WARNING};
    const char *tenant = ctl_get_string(args, "tenant");
    const char *op = ctl_get_string(args, "op");
    const char *severity = ctl_get_string(args, "severity");
    long long for_ms = ctl_get_int(args, "for_ms", 0);
    long long silence_s = ctl_get_int(args, "silence_s", 0);
    uint64_t id = 0;

    snprintf(r.name, sizeof(r.name), "%s", ctl_get_string(args, "name"));
    snprintf(r.event, sizeof(r.event), "%s", ctl_get_string(args, "event"));
    snprintf(r.field, sizeof(r.field), "%s",
             ctl_get_string(args, "field") ? ctl_get_string(args, "field") : "");
    if (!scope_arg(ctl_get_string(args, "on"), &r))
        return fail(err, errlen, IOT_EINVAL,
                    "--on must be device:ID, group:NAME, type:NAME or tenant");
    if (op && !alarm_op_parse(op, &r.op))
        return fail(err, errlen, IOT_EINVAL, "--op must be one of > >= < <= == !=");
    if (!number_arg(args, "threshold", &r.threshold))
        return fail(err, errlen, IOT_EINVAL, "--threshold must be a number");
    if (!number_arg(args, "hysteresis", &r.hysteresis))
        return fail(err, errlen, IOT_EINVAL, "--hysteresis must be a number");
    if (op && !ctl_get_string(args, "threshold"))
        return fail(err, errlen, IOT_EINVAL, "--op needs --threshold");
    if (severity && !alarm_severity_parse(severity, &r.severity))
        return fail(err, errlen, IOT_EINVAL,
                    "--severity must be info, warning, minor, major or critical");
    if (for_ms < 0 || for_ms > ALARM_FOR_MS_MAX)
        return fail(err, errlen, IOT_EINVAL, "--for must be 0..86400000 ms");
    if (silence_s < 0 || silence_s > ALARM_SILENCE_S_MAX)
        return fail(err, errlen, IOT_EINVAL, "--silence must be 1..2592000 s");
    r.for_ms = (uint32_t)for_ms;
    r.silence_s = (uint32_t)silence_s;
    int rc = alarm_rule_add(conn, tenant, &r, actor, &id, err, errlen);
    if (rc != 0)
        return rc;
    *result = cJSON_CreateObject();
    if (!*result || !cJSON_AddNumberToObject(*result, "id", (double)id) ||
        !cJSON_AddStringToObject(*result, "tenant", tenant) ||
        !cJSON_AddStringToObject(*result, "name", r.name) ||
        !cJSON_AddStringToObject(*result, "kind", r.silence_s ? "silence" : "threshold"))
        return IOT_ENOMEM;
    return IOT_OK;
}

static int rule_remove(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args,
                       const char *actor, cJSON **result, char *err, size_t errlen)
{
    (void)snap;
    uint64_t id = 0;
    const char *name = ctl_get_string(args, "name");
    int rc =
        alarm_rule_remove(conn, ctl_get_string(args, "tenant"), name, 0, actor, &id, err, errlen);
    if (rc != 0)
        return rc;
    *result = cJSON_CreateObject();
    if (!*result || !cJSON_AddStringToObject(*result, "removed", name) ||
        !cJSON_AddNumberToObject(*result, "id", (double)id))
        return IOT_ENOMEM;
    return IOT_OK;
}

static int alarms_list(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args,
                       const char *actor, cJSON **result, char *err, size_t errlen)
{
    (void)snap, (void)actor;
    struct alarm_filter f = {.state = ALARM_FILTER_OPEN, .device = ctl_get_string(args, "device")};
    const char *state = ctl_get_string(args, "state");
    struct ctl_page page;
    unsigned long long after = 0;
    char next[32];
    bool more = false;
    cJSON *rows = NULL;
    int rc;
    if (state && !alarm_state_filter_parse(state, &f.state))
        return fail(err, errlen, IOT_EINVAL,
                    "--state must be open, raised, acknowledged, cleared or all");
    if ((rc = ctl_page_args(args, ALARM_LIST_DEFAULT, &page, err, errlen)) != 0)
        return rc;
    /* Newest first by id: the cursor is the last row's id. */
    if (page.after && (!ctl_cursor_parse(page.after, &after, 1) || after == 0))
        return fail(err, errlen, IOT_EINVAL, CTL_CURSOR_BAD);
    f.limit = page.limit;
    f.before_id = after;
    f.more = &more;
    if ((rc = time_arg(args, "since", &f.since_ms, err, errlen)) != 0)
        return rc;
    rc = alarm_list(conn, ctl_get_string(args, "tenant"), &f, &rows, err, errlen);
    if (rc != 0)
        return rc;
    cJSON *last = cJSON_GetArrayItem(rows, cJSON_GetArraySize(rows) - 1);
    if ((rc = list_result(result, "alarms", rows)) != 0 || !more || !last)
        return rc;
    after = (unsigned long long)ctl_get_int(last, "id", 0);
    ctl_cursor_format(next, sizeof(next), &after, 1);
    return ctl_page_set_next(*result, next);
}

static int rules_list(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args,
                      const char *actor, cJSON **result, char *err, size_t errlen)
{
    cJSON *rows = NULL;
    (void)snap, (void)actor;
    int rc = alarm_rules_list(conn, ctl_get_string(args, "tenant"), &rows, err, errlen);
    return rc != 0 ? rc : list_result(result, "rules", rows);
}

static int alarm_acknowledge(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args,
                             const char *actor, cJSON **result, char *err, size_t errlen)
{
    long long id = ctl_get_int(args, "id", 0);
    const char *as = ctl_get_string(args, "as");
    const char *by = as ? as : actor;
    struct registry_user_info user;
    if (id <= 0)
        return fail(err, errlen, IOT_EINVAL, "the alarm id is a positive number");
    /* --as a user (user@tenant) acts as that user: one of the alarm's tenant whose role may
     * acknowledge. A plain name is only a label for the operator's own acknowledgement. */
    if (as && strchr(as, '@')) {
        const char *tenant = ctl_get_string(args, "tenant");
        if (registry_user_lookup(snap, as, &user) != 0 || strcmp(user.tenant, tenant) != 0) {
            snprintf(err, errlen, "no user %.128s in tenant %.64s", as, tenant);
            return IOT_ENOTFOUND;
        }
        if (!user.may_act) {
            snprintf(err, errlen, "%.128s has role %s, which may not acknowledge alarms", as,
                     user.role);
            return IOT_EDENIED;
        }
    }
    return alarm_ack(conn, ctl_get_string(args, "tenant"), (uint64_t)id, by, result, err, errlen);
}

/* ---- what a command changes beyond its reply (on the main loop) ---- */

static void rules_changed(hub_t *hub, registry_t *registry, const cJSON *args, const cJSON *result)
{
    (void)registry, (void)args, (void)result;
    hub_alarm_rules_changed(hub);
}

static void ack_published(hub_t *hub, registry_t *registry, const cJSON *args, const cJSON *result)
{
    if (!result)
        return;
    registry_snapshot_t *snap = registry_acquire(registry);
    long long rule = ctl_get_int(result, "rule", 0);
    struct event *item =
        control_ack_item(snap, ctl_get_string(args, "tenant"), result,
                         rule > 0 ? hub_alarm_rule_event(hub, (uint64_t)rule) : NULL);
    registry_release(snap);
    if (item)
        hub_publish(hub, item);
    event_unref(item);
}

/* The commands of this module, indexed by command id. */
static const struct {
    int (*run)(MYSQL *conn, const registry_snapshot_t *snap, const cJSON *args, const char *actor,
               cJSON **result, char *err, size_t errlen);
    void (*after)(hub_t *hub, registry_t *registry, const cJSON *args, const cJSON *result);
} handlers[CTL_COMMAND_COUNT] = {
    [CTL_EVENTS] = {events_history, NULL},
    [CTL_ALARM_RULE_ADD] = {rule_add, rules_changed},
    [CTL_ALARM_RULE_LIST] = {rules_list, NULL},
    [CTL_ALARM_RULE_REMOVE] = {rule_remove, rules_changed},
    [CTL_ALARM_LIST] = {alarms_list, NULL},
    [CTL_ALARM_ACK] = {alarm_acknowledge, ack_published},
};

bool control_events_handles(const struct ctl_command *cmd)
{
    return cmd && (unsigned)cmd->id < CTL_COMMAND_COUNT && handlers[cmd->id].run != NULL;
}

int control_events_execute(MYSQL *conn, const registry_snapshot_t *snap,
                           const struct ctl_command *cmd, const cJSON *args, const char *actor,
                           cJSON **result, char *err, size_t errlen)
{
    *result = NULL;
    if (!control_events_handles(cmd))
        return fail(err, errlen, IOT_EINVAL, "not an events command");
    return handlers[cmd->id].run(conn, snap, args, actor, result, err, errlen);
}

void control_events_after(hub_t *hub, registry_t *registry, const struct ctl_command *cmd,
                          const cJSON *args, const cJSON *result)
{
    if (control_events_handles(cmd) && handlers[cmd->id].after)
        handlers[cmd->id].after(hub, registry, args, result);
}

cJSON *control_event_item(const struct event *item)
{
    char time[CTL_TIME_LEN];
    ctl_format_time_ms(item->ts_ms, time, sizeof(time));
    cJSON *o = cJSON_CreateObject();
    cJSON *fields = o ? cJSON_CreateObject() : NULL;
    bool ok = fields && cJSON_AddStringToObject(o, "time", time) &&
              cJSON_AddNumberToObject(o, "ts_ms", (double)item->ts_ms) &&
              cJSON_AddStringToObject(o, "kind", event_kind_name(item->kind)) &&
              cJSON_AddStringToObject(o, "tenant", item->tenant) &&
              cJSON_AddStringToObject(o, "device", item->device) &&
              cJSON_AddStringToObject(o, "type", item->type) &&
              cJSON_AddNumberToObject(o, "seq", item->seq) &&
              cJSON_AddStringToObject(o, "name", item->name);
    for (unsigned i = 0; ok && i < item->nfields; i++) {
        const char *kv = event_field_at(item, i);
        const char *eq = strchr(kv, '=');
        char key[65];
        if (!eq)
            continue;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        ok = cJSON_AddStringToObject(fields, key, eq + 1) != NULL;
    }
    if (ok && cJSON_AddItemToObject(o, "fields", fields))
        return o;
    if (o && !cJSON_GetObjectItemCaseSensitive(o, "fields"))
        cJSON_Delete(fields);
    cJSON_Delete(o);
    return NULL;
}

struct event *control_ack_item(const registry_snapshot_t *snap, const char *tenant,
                               const cJSON *row, const char *event)
{
    const char *device = ctl_get_string(row, "device"), *name = ctl_get_string(row, "name");
    struct registry_device_info d;
    if (!device || !name)
        return NULL;
    char state[64], severity[64], source[64], by[200], value[160], msg[300], watched[96];
    snprintf(watched, sizeof(watched), "event=%s", event && event[0] ? event : name);
    snprintf(state, sizeof(state), "state=acknowledged");
    snprintf(severity, sizeof(severity), "severity=%s",
             ctl_get_string(row, "severity") ? ctl_get_string(row, "severity") : "");
    snprintf(source, sizeof(source), "source=%s",
             ctl_get_string(row, "source") ? ctl_get_string(row, "source") : "");
    snprintf(by, sizeof(by), "by=%s",
             ctl_get_string(row, "acked_by") ? ctl_get_string(row, "acked_by") : "");
    snprintf(value, sizeof(value), "value=%s",
             ctl_get_string(row, "value") ? ctl_get_string(row, "value") : "");
    snprintf(msg, sizeof(msg), "msg=%s",
             ctl_get_string(row, "message") ? ctl_get_string(row, "message") : "");
    const char *fields[] = {state, severity, source, watched, by, value, msg};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return event_new(EVENT_KIND_ALARM, tenant, device,
                     registry_device_lookup(snap, device, &d) == 0 ? d.type : "", name,
                     0, /* alarm changes carry id 0 (iot-protocol(7)) */
                     (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, 7, fields);
}
