/*
 * alarm_db.c - the alarm lifecycle in MariaDB: raise, clear and acknowledge, lists, and the
 * open alarms the engine restores at start (see alarm_db.h; the rules are alarm_rules_db.c).
 *
 * The "at most one open alarm per (device, source, name)" rule is the schema's (UNIQUE with
 * open_key); alarm_apply relies on it instead of a read-then-insert race: a duplicate key on
 * raise means "already open".
 */
#include "alarm/alarm_db_internal.h"

#include "ctl_time.h"
#include "iot_error.h"
#include "iot_grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BY_MAX 255

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
        return alarm_db_fail(err, errlen, IOT_ENOTFOUND, "unknown tenant %s", t->tenant);
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
        return alarm_db_fail(err, errlen, IOT_EINVAL,
                             "an alarm needs a tenant, a device and a name");
    if (t->ts_ms < 1000)
        return alarm_db_fail(err, errlen, IOT_EINVAL, "an alarm needs a time");
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
    bool ok =
        alarm_json_col_num(o, "id", row, 0) && alarm_json_str(o, "device", sql_row_str(row, 1)) &&
        alarm_json_str(o, "source", sql_row_str(row, 2)) && alarm_json_col_num(o, "rule", row, 3) &&
        alarm_json_str(o, "name", sql_row_str(row, 4)) &&
        alarm_json_str(o, "severity", sql_row_str(row, 5)) &&
        alarm_json_str(o, "state", sql_row_str(row, 6)) &&
        alarm_json_time(o, "raised_at", row, 7) && alarm_json_time(o, "acked_at", row, 8) &&
        alarm_json_str(o, "acked_by", sql_row_str(row, 9)) &&
        alarm_json_time(o, "cleared_at", row, 10) &&
        alarm_json_str(o, "value", sql_row_str(row, 11)) &&
        alarm_json_str(o, "message", sql_row_str(row, 12)) &&
        alarm_json_str(o, "clear_value", sql_row_str(row, 13)) &&
        alarm_json_str(o, "clear_message", sql_row_str(row, 14));
    /* Lists name the tenant (a list without --tenant spans them all). */
    if (ok && row->ncols > 15)
        ok = alarm_json_str(o, "tenant", sql_row_str(row, 15));
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
        return alarm_db_fail(err, errlen, IOT_EINVAL, "say who acknowledges (1 to %d bytes)",
                             BY_MAX);
    int rc = sql_begin(conn, false, err, errlen);
    if (rc != IOT_OK)
        return rc;
    if ((rc = alarm_db_tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK)
        goto out;
    rc =
        sql_query(conn,
                  "SELECT acked_by, UNIX_TIMESTAMP(acked_at) FROM alarms "
                  "WHERE id = ? AND tenant_id = ? FOR UPDATE",
                  SQL_PARAMS(sql_int((long long)id), sql_int(tid)), ack_state_row, &s, err, errlen);
    if (rc != IOT_OK && rc != 1)
        goto out;
    if (!s.found) {
        rc = alarm_db_fail(err, errlen, IOT_ENOTFOUND, "no alarm %llu in tenant %s",
                           (unsigned long long)id, tenant);
        goto out;
    }
    if (s.acked_by[0]) {
        ctl_format_time_ms(s.acked_at_ms, when, sizeof(when));
        rc = alarm_db_fail(err, errlen, IOT_EEXIST, "alarm %llu was acknowledged by %s at %s",
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
            rc = alarm_db_fail(err, errlen, IOT_ENOMEM, "out of memory");
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
    struct sql_param params[6];
    size_t n = 0;
    long long tid = 0;
    int rc;
    *rows = NULL;
    if ((unsigned)f->state > ALARM_FILTER_ALL)
        return alarm_db_fail(err, errlen, IOT_EINVAL,
                             "state must be open, raised, acknowledged, cleared or all");
    if (f->limit > ALARM_LIST_MAX)
        return alarm_db_fail(err, errlen, IOT_EINVAL, "limit must be at most %d", ALARM_LIST_MAX);
    if (tenant && (rc = alarm_db_tenant_id(conn, tenant, &tid, err, errlen)) != IOT_OK)
        return rc;
    if (tenant)
        params[n++] = sql_int(tid);
    snprintf(sql, sizeof(sql),
             "SELECT " ALARM_COLUMNS ", t.name FROM alarms a JOIN tenants t ON t.id = a.tenant_id "
             "WHERE %s%s%s%s%s ORDER BY a.id DESC LIMIT ?",
             tenant ? "a.tenant_id = ?" : "TRUE", state_sql[f->state],
             f->device ? " AND a.device_id = ?" : "",
             f->since_ms > 0 ? " AND a.raised_at >= FROM_UNIXTIME(? / 1000)" : "",
             f->before_id ? " AND a.id < ?" : "");
    if (f->device)
        params[n++] = sql_str(f->device);
    if (f->since_ms > 0)
        params[n++] = sql_int(f->since_ms);
    if (f->before_id)
        params[n++] = sql_int((long long)f->before_id);
    /* One row beyond the page says whether another page follows. */
    unsigned limit = f->limit ? f->limit : ALARM_LIST_DEFAULT;
    params[n++] = sql_int(limit + 1);
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return alarm_db_fail(err, errlen, IOT_ENOMEM, "out of memory");
    rc = sql_query(conn, sql, params, n, alarm_row, a, err, errlen);
    if (rc == IOT_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc != IOT_OK) {
        cJSON_Delete(a);
        return rc;
    }
    bool more = cJSON_GetArraySize(a) > (int)limit;
    if (more)
        cJSON_DeleteItemFromArray(a, (int)limit);
    if (f->more)
        *f->more = more;
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
