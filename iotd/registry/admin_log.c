/*
 * admin_log.c - the read commands answered from the database's logs rather than the snapshot:
 * the admin audit (changes list), a device's connection history and the relay audit.
 */
#include "admin_internal.h"

#include "audit_query.h"
#include "ctl_page.h"
#include "ctl_proto.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "iot_outcome.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANGES_DEFAULT 50
#define CHANGES_MAX     1000 /* device history */

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

/* Rows of the page plus one, so a list knows whether another page follows: drops the extra
 * row and, when there was one, adds "next" from the key of the last row kept. */
static int page_finish(struct admin_op *op, cJSON *list, unsigned limit, const char *key)
{
    char next[32];
    if (cJSON_GetArraySize(list) <= (int)limit)
        return IOT_OK;
    cJSON_DeleteItemFromArray(list, (int)limit);
    unsigned long long last =
        (unsigned long long)ctl_get_int(cJSON_GetArrayItem(list, (int)limit - 1), key, 0);
    ctl_cursor_format(next, sizeof(next), &last, 1);
    if (ctl_page_set_next(op->result, next) != IOT_OK)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    return IOT_OK;
}

/* Newest first, like a log viewer's default; --tenant filters, paged by id (ctl_page.h). */
static int changes_list(struct admin_op *op)
{
    const char *tenant = admin_arg(op, "tenant");
    struct ctl_page page;
    unsigned long long after = 0;
    int rc = ctl_page_args(op->args, CHANGES_DEFAULT, &page, op->err, op->errlen);
    if (rc != IOT_OK)
        return rc;
    /* Newest first by id: the cursor is the last row's id. */
    if (page.after && (!ctl_cursor_parse(page.after, &after, 1) || after == 0))
        return admin_fail(op, IOT_EINVAL, "%s", CTL_CURSOR_BAD);
    cJSON *list = cJSON_AddArrayToObject(op->result, "changes");
    if (!list)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    rc = sql_query(op->conn,
                   "SELECT id, UNIX_TIMESTAMP(at), actor, action, tenant, target, detail "
                   "FROM admin_audit WHERE (? IS NULL OR tenant = ?) AND (? = 0 OR id < ?) "
                   "ORDER BY id DESC LIMIT ?",
                   SQL_PARAMS(sql_str(tenant), sql_str(tenant), sql_int((long long)after),
                              sql_int((long long)after), sql_int(page.limit + 1)),
                   change_row, list, op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return admin_fail(op, rc, "out of memory");
    return rc != IOT_OK ? rc : page_finish(op, list, page.limit, "id");
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
    const char *since_text = admin_arg(op, "since");
    long long since = since_text ? ctl_parse_time(since_text) : 0;
    struct ctl_page page;
    char next[AUDIT_CURSOR_LEN] = "";
    int rc = ctl_page_args(op->args, CHANGES_DEFAULT, &page, op->err, op->errlen);
    if (rc != IOT_OK)
        return rc;
    if (since < 0)
        return admin_fail(op, IOT_EINVAL,
                          "--since: expected a UTC time such as 2026-05-01T12:00:00 "
                          "or an age such as 15m, 2h, 3d");
    /* A typo in --outcome would match nothing and look like an empty audit: refused instead
     * (iotctl(8), audit). */
    const char *outcome = admin_arg(op, "outcome");
    if (outcome && !iot_outcome_known(outcome))
        return admin_fail(op, IOT_EINVAL,
                          "--outcome: unknown outcome '%s' (ok, denied, unknown_type, bad_args, "
                          "offline, busy, timeout, error or internal)",
                          outcome);
    cJSON *list = cJSON_AddArrayToObject(op->result, "audit");
    if (!list)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    struct audit_filter f = {.tenant = admin_arg(op, "tenant"),
                             .device = admin_arg(op, "device"),
                             .sender = admin_arg(op, "user"),
                             .outcome = admin_arg(op, "outcome"),
                             .since_s = since,
                             .limit = page.limit,
                             .after = page.after,
                             .next = next};
    rc = audit_query(op->conn, &f, list, op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return admin_fail(op, rc, "out of memory");
    if (rc == IOT_OK && next[0] && ctl_page_set_next(op->result, next) != IOT_OK)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    return rc;
}

const struct admin_handler admin_log_handlers[] = {
    {CTL_CHANGES_LIST, changes_list},
    {CTL_DEVICE_HISTORY, device_history},
    {CTL_AUDIT, relay_audit_list},
    {CTL_COMMAND_COUNT, NULL},
};
