/*
 * alarm_rules_db.c - alarm rules in MariaDB: add (checked against the registry's names),
 * remove, load for the engine, list for iotctl; every change audited (see alarm_db.h).
 *
 * Statements go through sql_stmt.h (prepared, bound from the caller's memory). A rule's
 * threshold and hysteresis travel as text ("%.17g" in, the server's shortest round-trip text
 * out), since the helper binds no doubles; both convert exactly.
 */
#include "alarm/alarm_db_internal.h"

#include "ctl_commands.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- audit ---- */

static int audit(MYSQL *conn, const char *actor, const char *tenant, const char *action,
                 const char *rule_name, cJSON *detail, char *err, size_t errlen)
{
    char target[100];
    if (!actor)
        return IOT_OK;
    char *text = detail ? cJSON_PrintUnformatted(detail) : NULL;
    if (detail && !text)
        return alarm_db_fail(err, errlen, IOT_ENOMEM, "out of memory");
    snprintf(target, sizeof(target), "alarm-rule:%s", rule_name);
    int rc = sql_exec(conn,
                      "INSERT INTO admin_audit (actor, tenant, action, target, detail) "
                      "VALUES (?, ?, ?, ?, ?)",
                      SQL_PARAMS(sql_str(actor), sql_str(tenant), sql_str(action), sql_str(target),
                                 sql_str(text)),
                      NULL, NULL, err, errlen);
    cJSON_free(text);
    return rc;
}

/* ---- rules ---- */

static bool name_valid(const char *s)
{
    return s && ctl_value_valid(CTL_ARG_NAME, s);
}

static int rule_check_values(const struct alarm_rule *r, char *err, size_t errlen)
{
    if (!name_valid(r->name))
        return alarm_db_fail(
            err, errlen, IOT_EINVAL,
            "rule name '%s' must be 1 to 64 letters, digits, '_', '.' or '-', starting "
            "with a letter or digit",
            r->name);
    if ((unsigned)r->scope > ALARM_SCOPE_TENANT)
        return alarm_db_fail(err, errlen, IOT_EINVAL,
                             "scope must be device, group, type or tenant");
    if (r->scope == ALARM_SCOPE_TENANT && r->target[0])
        return alarm_db_fail(err, errlen, IOT_EINVAL, "a rule on the whole tenant takes no target");
    if (r->scope != ALARM_SCOPE_TENANT && !name_valid(r->target))
        return alarm_db_fail(err, errlen, IOT_EINVAL,
                             "a rule on a %s needs the %s's name as its target",
                             alarm_scope_name(r->scope), alarm_scope_name(r->scope));
    if (!name_valid(r->event))
        return alarm_db_fail(err, errlen, IOT_EINVAL, "the event name '%s' is not a valid name",
                             r->event);
    if ((unsigned)r->severity >= ALARM_SEVERITY_COUNT)
        return alarm_db_fail(err, errlen, IOT_EINVAL,
                             "severity must be info, warning, minor, major or critical");
    if (alarm_rule_is_silence(r)) {
        if (r->silence_s > ALARM_SILENCE_S_MAX)
            return alarm_db_fail(err, errlen, IOT_EINVAL, "silence must be at most %u s",
                                 ALARM_SILENCE_S_MAX);
        if (r->field[0] || r->op != ALARM_OP_NONE || r->hysteresis != 0 || r->for_ms != 0)
            return alarm_db_fail(
                err, errlen, IOT_EINVAL,
                "a silence rule takes no field, condition, hysteresis or duration");
        return IOT_OK;
    }
    if (!name_valid(r->field))
        return alarm_db_fail(
            err, errlen, IOT_EINVAL,
            "a threshold rule needs the event field to compare (or a silence period)");
    if (r->op <= ALARM_OP_NONE || r->op > ALARM_OP_NE)
        return alarm_db_fail(err, errlen, IOT_EINVAL,
                             "the condition must be one of > >= < <= == !=");
    if (!isfinite(r->threshold))
        return alarm_db_fail(err, errlen, IOT_EINVAL, "the threshold must be a finite number");
    if (!isfinite(r->hysteresis) || r->hysteresis < 0)
        return alarm_db_fail(err, errlen, IOT_EINVAL, "hysteresis must be a number >= 0");
    if (r->hysteresis != 0 && (r->op == ALARM_OP_EQ || r->op == ALARM_OP_NE))
        return alarm_db_fail(err, errlen, IOT_EINVAL, "hysteresis does not apply to == and !=");
    if (r->for_ms > ALARM_FOR_MS_MAX)
        return alarm_db_fail(err, errlen, IOT_EINVAL, "the minimum duration must be at most %u ms",
                             ALARM_FOR_MS_MAX);
    return IOT_OK;
}

static int first_str_row(void *ctx, const struct sql_row *row)
{
    char *out = ctx;
    snprintf(out, ALARM_NAME_MAX + 1, "%s", sql_row_str(row, 0) ? sql_row_str(row, 0) : "");
    return 1;
}

/* The target exists in the tenant, and its catalogue has the event. */

/* A threshold rule's field must be an argument the event's catalogue declares (its args spec,
 * "name:kind ..."), in the rule's scope: a rule on a field no event carries would never fire,
 * silently. Silence rules have no field. */
static int rule_check_field(MYSQL *conn, long long tid, const char *tenant,
                            const struct alarm_rule *r, char *err, size_t errlen)
{
#define DECLARES_FIELD " AND LOCATE(CONCAT(' ', ?, ':'), CONCAT(' ', m.args_spec)) > 0"
    static const char field_sql_device[] =
        "SELECT COUNT(*) FROM message_types m JOIN devices d ON d.type_id = m.type_id "
        "WHERE d.tenant_id = ? AND d.id = ? AND m.name = ? AND m.direction = "
        "'event'" DECLARES_FIELD;
    static const char field_sql_type[] =
        "SELECT COUNT(*) FROM message_types m JOIN device_types ty ON ty.id = m.type_id "
        "WHERE ty.tenant_id = ? AND ty.name = ? AND m.name = ? AND m.direction = "
        "'event'" DECLARES_FIELD;
    static const char field_sql_any[] =
        "SELECT COUNT(*) FROM message_types m JOIN device_types ty ON ty.id = m.type_id "
        "WHERE ty.tenant_id = ? AND m.name = ? AND m.direction = 'event'" DECLARES_FIELD;
#undef DECLARES_FIELD
    long long n = 0;
    int rc;
    if (alarm_rule_is_silence(r))
        return IOT_OK;
    if (r->scope == ALARM_SCOPE_DEVICE || r->scope == ALARM_SCOPE_TYPE)
        rc = sql_query_int(
            conn, r->scope == ALARM_SCOPE_DEVICE ? field_sql_device : field_sql_type,
            SQL_PARAMS(sql_int(tid), sql_str(r->target), sql_str(r->event), sql_str(r->field)), &n,
            err, errlen);
    else
        rc = sql_query_int(conn, field_sql_any,
                           SQL_PARAMS(sql_int(tid), sql_str(r->event), sql_str(r->field)), &n, err,
                           errlen);
    if (rc != IOT_OK || n > 0)
        return rc;
    return alarm_db_fail(err, errlen, IOT_EINVAL,
                         "event %s declares no field %s in its catalogue (tenant %s; message add "
                         "--direction event --args \"%s:float ...\")",
                         r->event, r->field, tenant, r->field);
}

static int rule_check_refs(MYSQL *conn, long long tid, const char *tenant,
                           const struct alarm_rule *r, char *err, size_t errlen)
{
    long long n = 0;
    char kind[ALARM_NAME_MAX + 1] = "";
    int rc = IOT_OK;
    switch (r->scope) {
    case ALARM_SCOPE_DEVICE:
        rc = sql_query_int(conn, "SELECT COUNT(*) FROM devices WHERE tenant_id = ? AND id = ?",
                           SQL_PARAMS(sql_int(tid), sql_str(r->target)), &n, err, errlen);
        if (rc == IOT_OK && n == 0)
            return alarm_db_fail(err, errlen, IOT_ENOTFOUND, "unknown device %s in tenant %s",
                                 r->target, tenant);
        break;
    case ALARM_SCOPE_TYPE:
        rc = sql_query_int(conn,
                           "SELECT COUNT(*) FROM device_types WHERE tenant_id = ? AND name = ?",
                           SQL_PARAMS(sql_int(tid), sql_str(r->target)), &n, err, errlen);
        if (rc == IOT_OK && n == 0)
            return alarm_db_fail(err, errlen, IOT_ENOTFOUND, "unknown device type %s in tenant %s",
                                 r->target, tenant);
        break;
    case ALARM_SCOPE_GROUP:
        rc = sql_query(conn, "SELECT kind FROM tenant_groups WHERE tenant_id = ? AND name = ?",
                       SQL_PARAMS(sql_int(tid), sql_str(r->target)), first_str_row, kind, err,
                       errlen);
        if (rc == IOT_OK)
            return alarm_db_fail(err, errlen, IOT_ENOTFOUND, "unknown group %s in tenant %s",
                                 r->target, tenant);
        if (rc == 1 && strcmp(kind, "device") != 0)
            return alarm_db_fail(err, errlen, IOT_EINVAL, "group %s holds users, not devices",
                                 r->target);
        rc = rc == 1 ? IOT_OK : rc;
        break;
    case ALARM_SCOPE_TENANT:
        break;
    }
    if (rc != IOT_OK)
        return rc;

    static const char event_sql_device[] =
        "SELECT COUNT(*) FROM message_types m JOIN devices d ON d.type_id = m.type_id "
        "WHERE d.tenant_id = ? AND d.id = ? AND m.name = ? AND m.direction = 'event'";
    static const char event_sql_type[] =
        "SELECT COUNT(*) FROM message_types m JOIN device_types ty ON ty.id = m.type_id "
        "WHERE ty.tenant_id = ? AND ty.name = ? AND m.name = ? AND m.direction = 'event'";
    static const char event_sql_any[] =
        "SELECT COUNT(*) FROM message_types m JOIN device_types ty ON ty.id = m.type_id "
        "WHERE ty.tenant_id = ? AND m.name = ? AND m.direction = 'event'";
    if (r->scope == ALARM_SCOPE_DEVICE || r->scope == ALARM_SCOPE_TYPE)
        rc = sql_query_int(conn, r->scope == ALARM_SCOPE_DEVICE ? event_sql_device : event_sql_type,
                           SQL_PARAMS(sql_int(tid), sql_str(r->target), sql_str(r->event)), &n, err,
                           errlen);
    else
        rc = sql_query_int(conn, event_sql_any, SQL_PARAMS(sql_int(tid), sql_str(r->event)), &n,
                           err, errlen);
    if (rc != IOT_OK)
        return rc;
    if (n > 0)
        return rule_check_field(conn, tid, tenant, r, err, errlen);
    if (r->scope == ALARM_SCOPE_DEVICE || r->scope == ALARM_SCOPE_TYPE)
        return alarm_db_fail(
            err, errlen, IOT_ENOTFOUND,
            "the catalogue of %s %s has no event named %s (message add --direction "
            "event)",
            r->scope == ALARM_SCOPE_DEVICE ? "device" : "type", r->target, r->event);
    return alarm_db_fail(
        err, errlen, IOT_ENOTFOUND,
        "no device type of tenant %s has an event named %s (message add --direction "
        "event)",
        tenant, r->event);
}

static cJSON *rule_detail(const struct alarm_rule *r)
{
    cJSON *d = cJSON_CreateObject();
    bool ok = d && alarm_json_str(d, "name", r->name) &&
              alarm_json_str(d, "scope", alarm_scope_name(r->scope)) &&
              alarm_json_str(d, "target", r->target[0] ? r->target : NULL) &&
              alarm_json_str(d, "event", r->event) &&
              alarm_json_str(d, "severity", alarm_severity_name(r->severity));
    if (ok && alarm_rule_is_silence(r)) {
        ok = alarm_json_num(d, "silence_s", r->silence_s);
    } else if (ok) {
        ok = alarm_json_str(d, "field", r->field) &&
             alarm_json_str(d, "op", alarm_op_name(r->op)) &&
             alarm_json_num(d, "threshold", r->threshold) &&
             alarm_json_num(d, "hysteresis", r->hysteresis) &&
             alarm_json_num(d, "for_ms", r->for_ms);
    }
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

int alarm_rule_add(MYSQL *conn, const char *tenant, const struct alarm_rule *r, const char *actor,
                   uint64_t *id, char *err, size_t errlen)
{
    long long tid = 0;
    unsigned long long insert_id = 0;
    char threshold[40], hysteresis[40];
    bool silence = alarm_rule_is_silence(r);
    cJSON *detail = NULL;
    int rc = rule_check_values(r, err, errlen);
    if (rc != IOT_OK)
        return rc;
    snprintf(threshold, sizeof(threshold), "%.17g", r->threshold);
    snprintf(hysteresis, sizeof(hysteresis), "%.17g", r->hysteresis);
    if ((rc = sql_begin(conn, false, err, errlen)) != IOT_OK)
        return rc;
    if ((rc = alarm_db_tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK ||
        (rc = rule_check_refs(conn, tid, tenant, r, err, errlen)) != IOT_OK)
        goto out;
    rc = sql_exec(conn,
                  "INSERT INTO alarm_rules (tenant_id, name, scope, target, event, field, op, "
                  "threshold, hysteresis, for_ms, silence_s, severity, enabled, created_by) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  SQL_PARAMS(sql_int(tid), sql_str(r->name), sql_str(alarm_scope_name(r->scope)),
                             sql_str(r->target[0] ? r->target : NULL), sql_str(r->event),
                             sql_str(silence ? NULL : r->field),
                             sql_str(silence ? NULL : alarm_op_name(r->op)),
                             sql_str(silence ? NULL : threshold), sql_str(hysteresis),
                             sql_int(r->for_ms), sql_int(r->silence_s),
                             sql_str(alarm_severity_name(r->severity)), sql_int(r->enabled),
                             sql_str(actor)),
                  NULL, &insert_id, err, errlen);
    if (rc == IOT_EEXIST) {
        rc = alarm_db_fail(err, errlen, rc, "alarm rule %s already exists in tenant %s", r->name,
                           tenant);
        goto out;
    }
    if (rc != IOT_OK)
        goto out;
    if (actor) {
        detail = rule_detail(r);
        if (!detail) {
            rc = alarm_db_fail(err, errlen, IOT_ENOMEM, "out of memory");
            goto out;
        }
    }
    if ((rc = audit(conn, actor, tenant, "alarm.rule.add", r->name, detail, err, errlen)) != IOT_OK)
        goto out;
    rc = sql_commit(conn, err, errlen);
out:
    cJSON_Delete(detail);
    if (rc != IOT_OK)
        sql_rollback(conn);
    else if (id)
        *id = insert_id;
    return rc;
}

struct rule_ref {
    long long id;
    char name[ALARM_NAME_MAX + 1];
};

static int rule_ref_row(void *ctx, const struct sql_row *row)
{
    struct rule_ref *ref = ctx;
    ref->id = sql_row_int(row, 0, 0);
    snprintf(ref->name, sizeof(ref->name), "%s", sql_row_str(row, 1) ? sql_row_str(row, 1) : "");
    return 1;
}

int alarm_rule_remove(MYSQL *conn, const char *tenant, const char *name, uint64_t id,
                      const char *actor, uint64_t *removed_id, char *err, size_t errlen)
{
    long long tid = 0;
    struct rule_ref ref = {0};
    if (!name && !id)
        return alarm_db_fail(err, errlen, IOT_EINVAL, "name the rule to remove");
    int rc = sql_begin(conn, false, err, errlen);
    if (rc != IOT_OK)
        return rc;
    if ((rc = alarm_db_tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK)
        goto out;
    if (name)
        rc = sql_query(conn,
                       "SELECT id, name FROM alarm_rules WHERE tenant_id = ? AND name = ? "
                       "FOR UPDATE",
                       SQL_PARAMS(sql_int(tid), sql_str(name)), rule_ref_row, &ref, err, errlen);
    else
        rc = sql_query(conn,
                       "SELECT id, name FROM alarm_rules WHERE tenant_id = ? AND id = ? "
                       "FOR UPDATE",
                       SQL_PARAMS(sql_int(tid), sql_int((long long)id)), rule_ref_row, &ref, err,
                       errlen);
    if (rc == IOT_OK) {
        if (name)
            rc = alarm_db_fail(err, errlen, IOT_ENOTFOUND, "no alarm rule %s in tenant %s", name,
                               tenant);
        else
            rc = alarm_db_fail(err, errlen, IOT_ENOTFOUND, "no alarm rule %llu in tenant %s",
                               (unsigned long long)id, tenant);
        goto out;
    }
    if (rc != 1)
        goto out;
    rc = sql_exec(conn,
                  "UPDATE alarms SET state = 'cleared', cleared_at = GREATEST(raised_at, NOW(3)), "
                  "clear_message = 'rule removed' WHERE rule_id = ? AND open_key = 1",
                  SQL_PARAMS(sql_int(ref.id)), NULL, NULL, err, errlen);
    if (rc != IOT_OK)
        goto out;
    rc = sql_exec(conn, "DELETE FROM alarm_rules WHERE id = ?", SQL_PARAMS(sql_int(ref.id)), NULL,
                  NULL, err, errlen);
    if (rc != IOT_OK)
        goto out;
    if ((rc = audit(conn, actor, tenant, "alarm.rule.remove", ref.name, NULL, err, errlen)) !=
        IOT_OK)
        goto out;
    rc = sql_commit(conn, err, errlen);
out:
    if (rc != IOT_OK)
        sql_rollback(conn);
    else if (removed_id)
        *removed_id = (uint64_t)ref.id;
    return rc;
}

#define RULE_COLUMNS                                                                               \
    "r.id, t.name, r.name, r.scope, r.target, r.event, r.field, r.op, r.threshold, "               \
    "r.hysteresis, r.for_ms, r.silence_s, r.severity, r.enabled, UNIX_TIMESTAMP(r.created_at), "   \
    "r.created_by"

/* A row of RULE_COLUMNS into a struct alarm_rule. */
static void rule_from_row(const struct sql_row *row, struct alarm_rule *r)
{
    memset(r, 0, sizeof(*r));
    r->id = (uint64_t)sql_row_int(row, 0, 0);
    snprintf(r->tenant, sizeof(r->tenant), "%s", sql_row_str(row, 1) ? sql_row_str(row, 1) : "");
    snprintf(r->name, sizeof(r->name), "%s", sql_row_str(row, 2) ? sql_row_str(row, 2) : "");
    (void)alarm_scope_parse(sql_row_str(row, 3), &r->scope);
    snprintf(r->target, sizeof(r->target), "%s", sql_row_str(row, 4) ? sql_row_str(row, 4) : "");
    snprintf(r->event, sizeof(r->event), "%s", sql_row_str(row, 5) ? sql_row_str(row, 5) : "");
    snprintf(r->field, sizeof(r->field), "%s", sql_row_str(row, 6) ? sql_row_str(row, 6) : "");
    r->op = ALARM_OP_NONE;
    (void)alarm_op_parse(sql_row_str(row, 7), &r->op);
    if (!alarm_parse_number(sql_row_str(row, 8), &r->threshold))
        r->threshold = 0;
    if (!alarm_parse_number(sql_row_str(row, 9), &r->hysteresis))
        r->hysteresis = 0;
    r->for_ms = (uint32_t)sql_row_int(row, 10, 0);
    r->silence_s = (uint32_t)sql_row_int(row, 11, 0);
    r->severity = ALARM_SEVERITY_WARNING;
    (void)alarm_severity_parse(sql_row_str(row, 12), &r->severity);
    r->enabled = sql_row_int(row, 13, 1) != 0;
}

struct rule_array {
    struct alarm_rule *rules;
    size_t n, cap;
};

static int rule_load_row(void *ctx, const struct sql_row *row)
{
    struct rule_array *a = ctx;
    struct alarm_rule *rules = iot_grow(a->rules, a->n, &a->cap, 16, sizeof(*rules));
    if (!rules)
        return IOT_ENOMEM;
    a->rules = rules;
    rule_from_row(row, &a->rules[a->n++]);
    return IOT_OK;
}

int alarm_rules_load(MYSQL *conn, struct alarm_rule **rules, size_t *n, char *err, size_t errlen)
{
    struct rule_array a = {0};
    int rc = sql_query(conn,
                       "SELECT " RULE_COLUMNS " FROM alarm_rules r "
                       "JOIN tenants t ON t.id = r.tenant_id ORDER BY r.id",
                       SQL_NO_PARAMS, rule_load_row, &a, err, errlen);
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc != IOT_OK) {
        free(a.rules);
        a.rules = NULL;
        a.n = 0;
    }
    *rules = a.rules;
    *n = a.n;
    return rc;
}

static int rule_list_row(void *ctx, const struct sql_row *row)
{
    cJSON *rows = ctx;
    struct alarm_rule r;
    rule_from_row(row, &r);
    bool silence = alarm_rule_is_silence(&r);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return IOT_ENOMEM;
    cJSON_AddItemToArray(rows, o);
    bool ok = alarm_json_num(o, "id", (double)r.id) && alarm_json_str(o, "name", r.name) &&
              alarm_json_str(o, "scope", alarm_scope_name(r.scope)) &&
              alarm_json_str(o, "target", r.target[0] ? r.target : NULL) &&
              alarm_json_str(o, "event", r.event) &&
              alarm_json_str(o, "field", silence ? NULL : r.field) &&
              alarm_json_str(o, "op", silence ? NULL : alarm_op_name(r.op)) &&
              (silence ? alarm_json_str(o, "threshold", NULL)
                       : alarm_json_num(o, "threshold", r.threshold)) &&
              alarm_json_num(o, "hysteresis", r.hysteresis) &&
              alarm_json_num(o, "for_ms", r.for_ms) &&
              alarm_json_num(o, "silence_s", r.silence_s) &&
              alarm_json_str(o, "severity", alarm_severity_name(r.severity)) &&
              cJSON_AddBoolToObject(o, "enabled", r.enabled) &&
              alarm_json_time(o, "created_at", row, 14) &&
              alarm_json_str(o, "created_by", sql_row_str(row, 15));
    return ok ? IOT_OK : IOT_ENOMEM;
}

int alarm_rules_list(MYSQL *conn, const char *tenant, cJSON **rows, char *err, size_t errlen)
{
    long long tid = 0;
    *rows = NULL;
    int rc = alarm_db_tenant_id(conn, tenant, &tid, err, errlen);
    if (rc != IOT_OK)
        return rc;
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return alarm_db_fail(err, errlen, IOT_ENOMEM, "out of memory");
    rc = sql_query(conn,
                   "SELECT " RULE_COLUMNS " FROM alarm_rules r "
                   "JOIN tenants t ON t.id = r.tenant_id WHERE r.tenant_id = ? ORDER BY r.name",
                   SQL_PARAMS(sql_int(tid)), rule_list_row, a, err, errlen);
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc != IOT_OK) {
        cJSON_Delete(a);
        return rc;
    }
    *rows = a;
    return IOT_OK;
}
