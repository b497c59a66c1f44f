/*
 * admin_log.c - the read commands answered from the database's logs rather than the snapshot:
 * the admin audit (changes list), a device's connection history and the relay audit.
 */
#include "admin_internal.h"

#include "audit_query.h"
#include "ctl_proto.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANGES_DEFAULT 50
#define CHANGES_MAX     1000

/* A new object appended to list (NULL if out of memory), for the row callbacks below. */
static cJSON *append_object(cJSON *list)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* "2024-05-01T12:00:00.123Z" (digits = 3) or ".123456Z" (digits = 6) from microseconds. */
static void format_micros(int64_t micros, int digits, char *out, size_t outlen)
{
    char secs[32];
    reg_format_time(micros / 1000000, secs, sizeof(secs));
    long long fraction = digits == 6 ? micros % 1000000 : micros % 1000000 / 1000;
    snprintf(out, outlen, "%.*s.%0*lldZ", (int)strlen(secs) - 1, secs, digits, fraction);
}

static int change_row(void *ctx, const struct sql_row *r)
{
    cJSON *o = append_object(ctx);
    if (!o)
        return IOT_ENOMEM;
    char at[48];
    format_micros(sql_row_micros(r, 1), 6, at, sizeof(at));
    const char *detail = sql_row_str(r, 6);
    cJSON *parsed = detail ? cJSON_Parse(detail) : NULL;
    bool ok = cJSON_AddNumberToObject(o, "id", (double)sql_row_int(r, 0, 0)) &&
              cJSON_AddStringToObject(o, "at", at) &&
              cJSON_AddStringToObject(o, "actor", sql_row_str(r, 2)) &&
              cJSON_AddStringToObject(o, "action", sql_row_str(r, 3)) &&
              (sql_row_str(r, 4) ? cJSON_AddStringToObject(o, "tenant", sql_row_str(r, 4))
                                 : cJSON_AddNullToObject(o, "tenant")) &&
              cJSON_AddStringToObject(o, "target", sql_row_str(r, 5));
    if (ok)
        ok = parsed ? cJSON_AddItemToObject(o, "detail", parsed)
                    : !!cJSON_AddNullToObject(o, "detail");
    else
        cJSON_Delete(parsed);
    return ok ? IOT_OK : IOT_ENOMEM;
}

/* Newest first, like a log viewer's default; --tenant filters, --limit caps (1..1000). */
static int changes_list(struct admin_op *op)
{
    const char *tenant = admin_arg(op, "tenant");
    long long limit = ctl_get_int(op->args, "limit", CHANGES_DEFAULT);
    if (limit < 1 || limit > CHANGES_MAX)
        return admin_fail(op, IOT_EINVAL, "--limit must be between 1 and %d", CHANGES_MAX);
    cJSON *list = cJSON_AddArrayToObject(op->result, "changes");
    if (!list)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    int rc = sql_query(op->conn,
                       "SELECT id, UNIX_TIMESTAMP(at), actor, action, tenant, target, detail "
                       "FROM admin_audit WHERE ? IS NULL OR tenant = ? ORDER BY id DESC LIMIT ?",
                       SQL_PARAMS(sql_str(tenant), sql_str(tenant), sql_int(limit)), change_row,
                       list, op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return admin_fail(op, rc, "out of memory");
    return rc;
}

static int history_row(void *ctx, const struct sql_row *r)
{
    cJSON *o = append_object(ctx);
    if (!o)
        return IOT_ENOMEM;
    char at[48];
    format_micros(sql_row_micros(r, 0), 3, at, sizeof(at));
    bool ok = cJSON_AddStringToObject(o, "at", at) &&
              cJSON_AddStringToObject(o, "event", sql_row_str(r, 1)) &&
              cJSON_AddStringToObject(o, "address", sql_row_str(r, 2)) &&
              cJSON_AddStringToObject(o, "transport", sql_row_str(r, 3)) &&
              cJSON_AddStringToObject(o, "reason", sql_row_str(r, 4)) &&
              cJSON_AddNumberToObject(o, "count", (double)sql_row_int(r, 5, 1));
    return ok ? IOT_OK : IOT_ENOMEM;
}

/* The connection history sessions record (sql/002): any id, registered or not, since an
 * operator chasing failed logins needs the ids that are not. */
static int device_history(struct admin_op *op)
{
    long long limit = ctl_get_int(op->args, "limit", CHANGES_DEFAULT);
    if (limit < 1 || limit > CHANGES_MAX)
        return admin_fail(op, IOT_EINVAL, "--limit must be between 1 and %d", CHANGES_MAX);
    cJSON *list = cJSON_AddArrayToObject(op->result, "history");
    if (!list)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    int rc = sql_query(op->conn,
                       "SELECT UNIX_TIMESTAMP(at), event, address, transport, reason, count "
                       "FROM device_connections WHERE device_id = ? ORDER BY id DESC LIMIT ?",
                       SQL_PARAMS(sql_str(admin_arg(op, "id")), sql_int(limit)), history_row, list,
                       op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return admin_fail(op, rc, "out of memory");
    return rc;
}

/* The relay audit (sql/008, audit_query.c), filtered, newest first. */
static int relay_audit_list(struct admin_op *op)
{
    long long limit = ctl_get_int(op->args, "limit", CHANGES_DEFAULT);
    const char *since_text = admin_arg(op, "since");
    long long since = since_text ? ctl_parse_time(since_text) : 0;
    if (limit < 1 || limit > CHANGES_MAX)
        return admin_fail(op, IOT_EINVAL, "--limit must be between 1 and %d", CHANGES_MAX);
    if (since < 0)
        return admin_fail(op, IOT_EINVAL,
                          "--since: expected a UTC time such as 2026-05-01T12:00:00 "
                          "or an age such as 15m, 2h, 3d");
    cJSON *list = cJSON_AddArrayToObject(op->result, "audit");
    if (!list)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    struct audit_filter f = {.tenant = admin_arg(op, "tenant"),
                             .device = admin_arg(op, "device"),
                             .sender = admin_arg(op, "user"),
                             .outcome = admin_arg(op, "outcome"),
                             .since_s = since,
                             .limit = (unsigned)limit};
    int rc = audit_query(op->conn, &f, list, op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return admin_fail(op, rc, "out of memory");
    return rc;
}

const struct admin_handler admin_log_handlers[] = {
    {CTL_CHANGES_LIST, changes_list},
    {CTL_DEVICE_HISTORY, device_history},
    {CTL_AUDIT, relay_audit_list},
    {CTL_COMMAND_COUNT, NULL},
};
