/*
 * alarm_db.c - alarm rules and the alarm lifecycle in MariaDB (see alarm_db.h).
 *
 * Statements go through sql_stmt.h (prepared, bound from the caller's memory). A rule's
 * threshold and hysteresis travel as text ("%.17g" in, the server's shortest round-trip text
 * out), since the helper binds no doubles; both convert exactly. The "at most one open alarm
 * per (device, source, name)" rule is the schema's (UNIQUE with open_key); alarm_apply relies on
 * it instead of a read-then-insert race: a duplicate key on raise means "already open".
 */
#include "alarm/alarm_db.h"

#include "ctl_commands.h"
#include "db/sql_stmt.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BY_MAX 255

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int tenant_id(MYSQL *conn, const char *tenant, long long *id, char *err, size_t errlen)
{
    if (!tenant || !*tenant)
        return fail(err, errlen, IOT_EINVAL, "a tenant is required");
    int rc = sql_query_int(conn, "SELECT id FROM tenants WHERE name = ?",
                           SQL_PARAMS(sql_str(tenant)), id, err, errlen);
    return rc == IOT_ENOTFOUND ? fail(err, errlen, rc, "unknown tenant %s", tenant) : rc;
}

/* "2024-05-01T12:00:00.123Z" into out (at least 32 bytes). */
/* ---- JSON helpers: every add checks for memory ---- */

static bool add_str(cJSON *o, const char *key, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/* A column of UNIX_TIMESTAMP(x) as RFC 3339, or null. */
static bool add_time(cJSON *o, const char *key, const struct sql_row *r, unsigned col)
{
    char buf[40];
    if (sql_row_null(r, col))
        return cJSON_AddNullToObject(o, key) != NULL;
    ctl_format_time_ms(sql_row_micros(r, col) / 1000, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

/* A numeric column as a JSON number, or null. */
static bool add_col_num(cJSON *o, const char *key, const struct sql_row *r, unsigned col)
{
    double v;
    if (sql_row_null(r, col) || !alarm_parse_number(sql_row_str(r, col), &v))
        return cJSON_AddNullToObject(o, key) != NULL;
    return add_num(o, key, v);
}

/* ---- audit ---- */

static int audit(MYSQL *conn, const char *actor, const char *tenant, const char *action,
                 const char *rule_name, cJSON *detail, char *err, size_t errlen)
{
    char target[100];
    if (!actor)
        return IOT_OK;
    char *text = detail ? cJSON_PrintUnformatted(detail) : NULL;
    if (detail && !text)
        return fail(err, errlen, IOT_ENOMEM, "out of memory");
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
        return fail(err, errlen, IOT_EINVAL,
                    "rule name '%s' must be 1 to 64 letters, digits, '_', '.' or '-', starting "
                    "with a letter or digit",
                    r->name);
    if ((unsigned)r->scope > ALARM_SCOPE_TENANT)
        return fail(err, errlen, IOT_EINVAL, "scope must be device, group, type or tenant");
    if (r->scope == ALARM_SCOPE_TENANT && r->target[0])
        return fail(err, errlen, IOT_EINVAL, "a rule on the whole tenant takes no target");
    if (r->scope != ALARM_SCOPE_TENANT && !name_valid(r->target))
        return fail(err, errlen, IOT_EINVAL, "a rule on a %s needs the %s's name as its target",
                    alarm_scope_name(r->scope), alarm_scope_name(r->scope));
    if (!name_valid(r->event))
        return fail(err, errlen, IOT_EINVAL, "the event name '%s' is not a valid name", r->event);
    if ((unsigned)r->severity >= ALARM_SEVERITY_COUNT)
        return fail(err, errlen, IOT_EINVAL,
                    "severity must be info, warning, minor, major or critical");
    if (alarm_rule_is_silence(r)) {
        if (r->silence_s > ALARM_SILENCE_S_MAX)
            return fail(err, errlen, IOT_EINVAL, "silence must be at most %u s",
                        ALARM_SILENCE_S_MAX);
        if (r->field[0] || r->op != ALARM_OP_NONE || r->hysteresis != 0 || r->for_ms != 0)
            return fail(err, errlen, IOT_EINVAL,
                        "a silence rule takes no field, condition, hysteresis or duration");
        return IOT_OK;
    }
    if (!name_valid(r->field))
        return fail(err, errlen, IOT_EINVAL,
                    "a threshold rule needs the event field to compare (or a silence period)");
    if (r->op <= ALARM_OP_NONE || r->op > ALARM_OP_NE)
        return fail(err, errlen, IOT_EINVAL, "the condition must be one of > >= < <= == !=");
    if (!isfinite(r->threshold))
        return fail(err, errlen, IOT_EINVAL, "the threshold must be a finite number");
    if (!isfinite(r->hysteresis) || r->hysteresis < 0)
        return fail(err, errlen, IOT_EINVAL, "hysteresis must be a number >= 0");
    if (r->hysteresis != 0 && (r->op == ALARM_OP_EQ || r->op == ALARM_OP_NE))
        return fail(err, errlen, IOT_EINVAL, "hysteresis does not apply to == and !=");
    if (r->for_ms > ALARM_FOR_MS_MAX)
        return fail(err, errlen, IOT_EINVAL, "the minimum duration must be at most %u ms",
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
            return fail(err, errlen, IOT_ENOTFOUND, "unknown device %s in tenant %s", r->target,
                        tenant);
        break;
    case ALARM_SCOPE_TYPE:
        rc = sql_query_int(conn,
                           "SELECT COUNT(*) FROM device_types WHERE tenant_id = ? AND name = ?",
                           SQL_PARAMS(sql_int(tid), sql_str(r->target)), &n, err, errlen);
        if (rc == IOT_OK && n == 0)
            return fail(err, errlen, IOT_ENOTFOUND, "unknown device type %s in tenant %s",
                        r->target, tenant);
        break;
    case ALARM_SCOPE_GROUP:
        rc = sql_query(conn, "SELECT kind FROM tenant_groups WHERE tenant_id = ? AND name = ?",
                       SQL_PARAMS(sql_int(tid), sql_str(r->target)), first_str_row, kind, err,
                       errlen);
        if (rc == IOT_OK)
            return fail(err, errlen, IOT_ENOTFOUND, "unknown group %s in tenant %s", r->target,
                        tenant);
        if (rc == 1 && strcmp(kind, "device") != 0)
            return fail(err, errlen, IOT_EINVAL, "group %s holds users, not devices", r->target);
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
        return IOT_OK;
    if (r->scope == ALARM_SCOPE_DEVICE || r->scope == ALARM_SCOPE_TYPE)
        return fail(err, errlen, IOT_ENOTFOUND,
                    "the catalogue of %s %s has no event named %s (message add --direction "
                    "event)",
                    r->scope == ALARM_SCOPE_DEVICE ? "device" : "type", r->target, r->event);
    return fail(err, errlen, IOT_ENOTFOUND,
                "no device type of tenant %s has an event named %s (message add --direction "
                "event)",
                tenant, r->event);
}

static cJSON *rule_detail(const struct alarm_rule *r)
{
    cJSON *d = cJSON_CreateObject();
    bool ok = d && add_str(d, "name", r->name) && add_str(d, "scope", alarm_scope_name(r->scope)) &&
              add_str(d, "target", r->target[0] ? r->target : NULL) &&
              add_str(d, "event", r->event) &&
              add_str(d, "severity", alarm_severity_name(r->severity));
    if (ok && alarm_rule_is_silence(r)) {
        ok = add_num(d, "silence_s", r->silence_s);
    } else if (ok) {
        ok = add_str(d, "field", r->field) && add_str(d, "op", alarm_op_name(r->op)) &&
             add_num(d, "threshold", r->threshold) && add_num(d, "hysteresis", r->hysteresis) &&
             add_num(d, "for_ms", r->for_ms);
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
    if ((rc = tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK ||
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
        rc = fail(err, errlen, rc, "alarm rule %s already exists in tenant %s", r->name, tenant);
        goto out;
    }
    if (rc != IOT_OK)
        goto out;
    if (actor) {
        detail = rule_detail(r);
        if (!detail) {
            rc = fail(err, errlen, IOT_ENOMEM, "out of memory");
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
        return fail(err, errlen, IOT_EINVAL, "name the rule to remove");
    int rc = sql_begin(conn, false, err, errlen);
    if (rc != IOT_OK)
        return rc;
    if ((rc = tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK)
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
            rc = fail(err, errlen, IOT_ENOTFOUND, "no alarm rule %s in tenant %s", name, tenant);
        else
            rc = fail(err, errlen, IOT_ENOTFOUND, "no alarm rule %llu in tenant %s",
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
    bool ok = add_num(o, "id", (double)r.id) && add_str(o, "name", r.name) &&
              add_str(o, "scope", alarm_scope_name(r.scope)) &&
              add_str(o, "target", r.target[0] ? r.target : NULL) && add_str(o, "event", r.event) &&
              add_str(o, "field", silence ? NULL : r.field) &&
              add_str(o, "op", silence ? NULL : alarm_op_name(r.op)) &&
              (silence ? add_str(o, "threshold", NULL) : add_num(o, "threshold", r.threshold)) &&
              add_num(o, "hysteresis", r.hysteresis) && add_num(o, "for_ms", r.for_ms) &&
              add_num(o, "silence_s", r.silence_s) &&
              add_str(o, "severity", alarm_severity_name(r.severity)) &&
              cJSON_AddBoolToObject(o, "enabled", r.enabled) &&
              add_time(o, "created_at", row, 14) && add_str(o, "created_by", sql_row_str(row, 15));
    return ok ? IOT_OK : IOT_ENOMEM;
}

int alarm_rules_list(MYSQL *conn, const char *tenant, cJSON **rows, char *err, size_t errlen)
{
    long long tid = 0;
    *rows = NULL;
    int rc = tenant_id(conn, tenant, &tid, err, errlen);
    if (rc != IOT_OK)
        return rc;
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return fail(err, errlen, IOT_ENOMEM, "out of memory");
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

/* ---- alarms ---- */

static int raise_alarm(MYSQL *conn, const struct alarm_transition *t, uint64_t *alarm_id, char *err,
                       size_t errlen)
{
    unsigned long long affected = 0, insert_id = 0;
    const char *source = alarm_source_name(t->source);
    int rc = sql_exec(
        conn,
        "INSERT INTO alarms (tenant_id, device_id, source, rule_id, name, severity, raised_at, "
        "value, message) SELECT t.id, ?, ?, (SELECT r.id FROM alarm_rules r WHERE r.id = ?), ?, "
        "?, FROM_UNIXTIME(? / 1000), ?, ? FROM tenants t WHERE t.name = ?",
        SQL_PARAMS(sql_str(t->device), sql_str(source),
                   sql_id_or_null(t->source == ALARM_SOURCE_RULE ? (long long)t->rule_id : 0),
                   sql_str(t->name), sql_str(alarm_severity_name(t->severity)), sql_int(t->ts_ms),
                   sql_str(t->value[0] ? t->value : NULL),
                   sql_str(t->message[0] ? t->message : NULL), sql_str(t->tenant)),
        &affected, &insert_id, err, errlen);
    if (rc == IOT_EEXIST) { /* open already: the open one's id */
        long long id = 0;
        rc = sql_query_int(conn,
                           "SELECT id FROM alarms WHERE device_id = ? AND source = ? AND name = ? "
                           "AND open_key = 1",
                           SQL_PARAMS(sql_str(t->device), sql_str(source), sql_str(t->name)), &id,
                           err, errlen);
        if (rc == IOT_OK)
            *alarm_id = (uint64_t)id;
        return rc;
    }
    if (rc != IOT_OK)
        return rc;
    if (affected == 0)
        return fail(err, errlen, IOT_ENOTFOUND, "unknown tenant %s", t->tenant);
    *alarm_id = insert_id;
    return IOT_OK;
}

static int clear_alarm(MYSQL *conn, const struct alarm_transition *t, uint64_t *alarm_id, char *err,
                       size_t errlen)
{
    long long id = 0;
    int rc = sql_begin(conn, false, err, errlen);
    if (rc != IOT_OK)
        return rc;
    rc = sql_query_int(conn,
                       "SELECT a.id FROM alarms a JOIN tenants t ON t.id = a.tenant_id "
                       "WHERE t.name = ? AND a.device_id = ? AND a.source = ? AND a.name = ? "
                       "AND a.open_key = 1 FOR UPDATE",
                       SQL_PARAMS(sql_str(t->tenant), sql_str(t->device),
                                  sql_str(alarm_source_name(t->source)), sql_str(t->name)),
                       &id, err, errlen);
    if (rc == IOT_ENOTFOUND) { /* not open: nothing to clear */
        *alarm_id = 0;
        rc = sql_commit(conn, err, errlen);
        goto out;
    }
    if (rc != IOT_OK)
        goto out;
    /* GREATEST: a wall clock stepped back must not clear an alarm before it was raised. */
    rc = sql_exec(conn,
                  "UPDATE alarms SET state = 'cleared', "
                  "cleared_at = GREATEST(raised_at, FROM_UNIXTIME(? / 1000)), clear_value = ?, "
                  "clear_message = ? WHERE id = ?",
                  SQL_PARAMS(sql_int(t->ts_ms), sql_str(t->value[0] ? t->value : NULL),
                             sql_str(t->message[0] ? t->message : NULL), sql_int(id)),
                  NULL, NULL, err, errlen);
    if (rc != IOT_OK)
        goto out;
    *alarm_id = (uint64_t)id;
    rc = sql_commit(conn, err, errlen);
out:
    if (rc != IOT_OK)
        sql_rollback(conn);
    return rc;
}

int alarm_apply(MYSQL *conn, const struct alarm_transition *t, uint64_t *alarm_id, char *err,
                size_t errlen)
{
    uint64_t id = 0;
    int rc;
    if (!t->tenant[0] || !t->device[0] || !t->name[0])
        return fail(err, errlen, IOT_EINVAL, "an alarm needs a tenant, a device and a name");
    if (t->ts_ms < 1000)
        return fail(err, errlen, IOT_EINVAL, "an alarm needs a time");
    rc = t->kind == ALARM_RAISE ? raise_alarm(conn, t, &id, err, errlen)
                                : clear_alarm(conn, t, &id, err, errlen);
    if (rc == IOT_OK && alarm_id)
        *alarm_id = id;
    return rc;
}

#define ALARM_COLUMNS                                                                              \
    "a.id, a.device_id, a.source, a.rule_id, a.name, a.severity, a.state, "                        \
    "UNIX_TIMESTAMP(a.raised_at), UNIX_TIMESTAMP(a.acked_at), a.acked_by, "                        \
    "UNIX_TIMESTAMP(a.cleared_at), a.value, a.message, a.clear_value, a.clear_message"

static int alarm_row(void *ctx, const struct sql_row *row)
{
    cJSON *rows = ctx;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return IOT_ENOMEM;
    cJSON_AddItemToArray(rows, o);
    bool ok = add_col_num(o, "id", row, 0) && add_str(o, "device", sql_row_str(row, 1)) &&
              add_str(o, "source", sql_row_str(row, 2)) && add_col_num(o, "rule", row, 3) &&
              add_str(o, "name", sql_row_str(row, 4)) &&
              add_str(o, "severity", sql_row_str(row, 5)) &&
              add_str(o, "state", sql_row_str(row, 6)) && add_time(o, "raised_at", row, 7) &&
              add_time(o, "acked_at", row, 8) && add_str(o, "acked_by", sql_row_str(row, 9)) &&
              add_time(o, "cleared_at", row, 10) && add_str(o, "value", sql_row_str(row, 11)) &&
              add_str(o, "message", sql_row_str(row, 12)) &&
              add_str(o, "clear_value", sql_row_str(row, 13)) &&
              add_str(o, "clear_message", sql_row_str(row, 14));
    return ok ? IOT_OK : IOT_ENOMEM;
}

struct ack_state {
    bool found;
    char acked_by[BY_MAX + 1];
    int64_t acked_at_ms;
};

static int ack_state_row(void *ctx, const struct sql_row *row)
{
    struct ack_state *s = ctx;
    s->found = true;
    snprintf(s->acked_by, sizeof(s->acked_by), "%s",
             sql_row_str(row, 0) ? sql_row_str(row, 0) : "");
    s->acked_at_ms = sql_row_micros(row, 1) / 1000;
    return 1;
}

int alarm_ack(MYSQL *conn, const char *tenant, uint64_t id, const char *by, cJSON **row, char *err,
              size_t errlen)
{
    long long tid = 0;
    struct ack_state s = {0};
    cJSON *rows = NULL;
    char when[40];
    if (row)
        *row = NULL;
    if (!by || !*by || strlen(by) > BY_MAX)
        return fail(err, errlen, IOT_EINVAL, "say who acknowledges (1 to %d bytes)", BY_MAX);
    int rc = sql_begin(conn, false, err, errlen);
    if (rc != IOT_OK)
        return rc;
    if ((rc = tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK)
        goto out;
    rc =
        sql_query(conn,
                  "SELECT acked_by, UNIX_TIMESTAMP(acked_at) FROM alarms "
                  "WHERE id = ? AND tenant_id = ? FOR UPDATE",
                  SQL_PARAMS(sql_int((long long)id), sql_int(tid)), ack_state_row, &s, err, errlen);
    if (rc != IOT_OK && rc != 1)
        goto out;
    if (!s.found) {
        rc = fail(err, errlen, IOT_ENOTFOUND, "no alarm %llu in tenant %s", (unsigned long long)id,
                  tenant);
        goto out;
    }
    if (s.acked_by[0]) {
        ctl_format_time_ms(s.acked_at_ms, when, sizeof(when));
        rc = fail(err, errlen, IOT_EEXIST, "alarm %llu was acknowledged by %s at %s",
                  (unsigned long long)id, s.acked_by, when);
        goto out;
    }
    rc = sql_exec(conn,
                  "UPDATE alarms SET acked_at = NOW(3), acked_by = ?, "
                  "state = IF(state = 'raised', 'acknowledged', state) WHERE id = ?",
                  SQL_PARAMS(sql_str(by), sql_int((long long)id)), NULL, NULL, err, errlen);
    if (rc != IOT_OK)
        goto out;
    if (row) {
        if (!(rows = cJSON_CreateArray())) {
            rc = fail(err, errlen, IOT_ENOMEM, "out of memory");
            goto out;
        }
        rc = sql_query(conn, "SELECT " ALARM_COLUMNS " FROM alarms a WHERE a.id = ?",
                       SQL_PARAMS(sql_int((long long)id)), alarm_row, rows, err, errlen);
        if (rc == IOT_ENOMEM)
            snprintf(err, errlen, "out of memory");
        if (rc != IOT_OK)
            goto out;
    }
    rc = sql_commit(conn, err, errlen);
out:
    if (rc != IOT_OK) {
        sql_rollback(conn);
    } else if (row && rows) {
        *row = cJSON_DetachItemFromArray(rows, 0);
    }
    cJSON_Delete(rows);
    return rc;
}

bool alarm_state_filter_parse(const char *name, enum alarm_state_filter *out)
{
    static const char *const names[] = {"open", "raised", "acknowledged", "cleared", "all"};
    for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0) {
            *out = (enum alarm_state_filter)i;
            return true;
        }
    return false;
}

int alarm_list(MYSQL *conn, const char *tenant, const struct alarm_filter *f, cJSON **rows,
               char *err, size_t errlen)
{
    static const char *const state_sql[] = {
        [ALARM_FILTER_OPEN] = " AND a.open_key = 1",
        [ALARM_FILTER_RAISED] = " AND a.state = 'raised'",
        [ALARM_FILTER_ACKNOWLEDGED] = " AND a.state = 'acknowledged'",
        [ALARM_FILTER_CLEARED] = " AND a.state = 'cleared'",
        [ALARM_FILTER_ALL] = "",
    };
    char sql[1024];
    struct sql_param params[4];
    size_t n = 0;
    long long tid = 0;
    *rows = NULL;
    if ((unsigned)f->state > ALARM_FILTER_ALL)
        return fail(err, errlen, IOT_EINVAL,
                    "state must be open, raised, acknowledged, cleared or all");
    if (f->limit > ALARM_LIST_MAX)
        return fail(err, errlen, IOT_EINVAL, "limit must be at most %d", ALARM_LIST_MAX);
    int rc = tenant_id(conn, tenant, &tid, err, errlen);
    if (rc != IOT_OK)
        return rc;
    params[n++] = sql_int(tid);
    snprintf(sql, sizeof(sql),
             "SELECT " ALARM_COLUMNS " FROM alarms a WHERE a.tenant_id = ?%s%s%s "
             "ORDER BY a.id DESC LIMIT ?",
             state_sql[f->state], f->device ? " AND a.device_id = ?" : "",
             f->since_ms > 0 ? " AND a.raised_at >= FROM_UNIXTIME(? / 1000)" : "");
    if (f->device)
        params[n++] = sql_str(f->device);
    if (f->since_ms > 0)
        params[n++] = sql_int(f->since_ms);
    params[n++] = sql_int(f->limit ? f->limit : ALARM_LIST_DEFAULT);
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return fail(err, errlen, IOT_ENOMEM, "out of memory");
    rc = sql_query(conn, sql, params, n, alarm_row, a, err, errlen);
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc != IOT_OK) {
        cJSON_Delete(a);
        return rc;
    }
    *rows = a;
    return IOT_OK;
}

struct open_array {
    struct alarm_open *open;
    size_t n, cap;
};

static int open_row(void *ctx, const struct sql_row *row)
{
    struct open_array *a = ctx;
    struct alarm_open *open = iot_grow(a->open, a->n, &a->cap, 64, sizeof(*open));
    if (!open)
        return IOT_ENOMEM;
    a->open = open;
    struct alarm_open *o = &a->open[a->n++];
    memset(o, 0, sizeof(*o));
    o->source = ALARM_SOURCE_RULE;
    (void)alarm_source_parse(sql_row_str(row, 0), &o->source);
    o->rule_id = (uint64_t)sql_row_int(row, 1, 0);
    snprintf(o->tenant, sizeof(o->tenant), "%s", sql_row_str(row, 2) ? sql_row_str(row, 2) : "");
    snprintf(o->device, sizeof(o->device), "%s", sql_row_str(row, 3) ? sql_row_str(row, 3) : "");
    snprintf(o->name, sizeof(o->name), "%s", sql_row_str(row, 4) ? sql_row_str(row, 4) : "");
    o->severity = ALARM_SEVERITY_WARNING;
    (void)alarm_severity_parse(sql_row_str(row, 5), &o->severity);
    snprintf(o->value, sizeof(o->value), "%s", sql_row_str(row, 6) ? sql_row_str(row, 6) : "");
    o->raised_at_ms = sql_row_micros(row, 7) / 1000;
    return IOT_OK;
}

int alarm_open_load(MYSQL *conn, struct alarm_open **open, size_t *n, char *err, size_t errlen)
{
    struct open_array a = {0};
    int rc = sql_query(conn,
                       "SELECT a.source, a.rule_id, t.name, a.device_id, a.name, a.severity, "
                       "a.value, UNIX_TIMESTAMP(a.raised_at) FROM alarms a "
                       "JOIN tenants t ON t.id = a.tenant_id WHERE a.open_key = 1 ORDER BY a.id",
                       SQL_NO_PARAMS, open_row, &a, err, errlen);
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc != IOT_OK) {
        free(a.open);
        a.open = NULL;
        a.n = 0;
    }
    *open = a.open;
    *n = a.n;
    return rc;
}
