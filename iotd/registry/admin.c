/*
 * admin.c - runs the administrative commands: one transaction per command, with its audit row.
 * The commands themselves live in their entity family's file (admin_internal.h); this file says
 * how every one of them runs. See admin.h for the contract.
 *
 * admin_execute validates the args against the command table, opens a transaction, runs the
 * command's handler (found in the one family table that lists it), writes the audit row
 * for a mutating command in the same transaction, and commits; any failure rolls back, so a
 * change and its audit record exist together or not at all. Handlers are short: lookups and
 * statements go through sql_stmt.h, and every refusal is a sentence in err with the project's
 * error code (unknown names IOT_ENOTFOUND, duplicates IOT_EEXIST, rows still referenced
 * IOT_EINUSE, references into another tenant IOT_ECROSS, bad values IOT_EINVAL). admin_apply
 * adds what follows a committed change: the registry refreshed and published under the
 * registry's change lock, reading again only what the change touched (refresh_of below:
 * the devices a handler noted with admin_note_device, or the small tables, or everything).
 *
 * Choices an operator may want to know:
 *  - message type names are lower case ([a-z][a-z0-9_.-]*): on the wire, upper case is the
 *    system's; timeouts are 100..600000 ms (default 5000); args specs follow argspec.h and are
 *    stored in canonical form;
 *  - removing a device, user, type or group removes the access rules and memberships that name
 *    it (the result says how many rules went); a type still used by devices is refused;
 *  - "tenant remove" refuses a tenant that still has anything in it unless --force, which
 *    removes its contents first (rules, memberships, groups, devices, users, types);
 *  - "access grant" refuses a rule identical to an existing one (IOT_EEXIST, naming it) and a
 *    message that no catalogue the target can reach contains (catches typos early);
 *  - the audit detail is the command's args minus "secret" and "password".
 * Device secrets: 32 random bytes (or --secret), sealed with the server key and the device id as
 * associated data; the plain secret is returned once in the result and wiped from memory.
 */
#include "admin_internal.h"

#include "base/log.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_audit(struct admin_op *op, const struct ctl_command *cmd)
{
    int rc = IOT_ENOMEM;
    char *text = NULL;
    cJSON *detail = cJSON_Duplicate(op->args ? op->args : NULL, true);
    if (op->args && !detail)
        goto out;
    /* The audit log is readable by every operator: never store secrets in it. */
    cJSON_DeleteItemFromObjectCaseSensitive(detail, "secret");
    cJSON_DeleteItemFromObjectCaseSensitive(detail, "password");
    text = detail ? cJSON_PrintUnformatted(detail) : NULL;
    if (detail && !text)
        goto out;
    rc = sql_exec(op->conn,
                  "INSERT INTO admin_audit (actor, tenant, action, target, detail) "
                  "VALUES (?, ?, ?, ?, ?)",
                  SQL_PARAMS(sql_str(op->ctx->actor ? op->ctx->actor : "unknown"),
                             sql_str(op->tenant[0] ? op->tenant : NULL), sql_str(cmd->name),
                             sql_str(op->target), sql_str(text)),
                  NULL, NULL, op->err, op->errlen);
out:
    if (rc == IOT_ENOMEM)
        snprintf(op->err, op->errlen, "out of memory writing the audit record");
    free(text);
    cJSON_Delete(detail);
    return rc;
}

static const struct admin_handler *const families[] = {
    admin_catalogue_handlers, admin_devices_handlers, admin_users_handlers,
    admin_access_handlers,    admin_log_handlers,     admin_import_handlers,
};

/* The handler of cmd, NULL if no family lists it. */
static int (*handler_of(const struct ctl_command *cmd))(struct admin_op *op)
{
    for (size_t f = 0; cmd && f < sizeof(families) / sizeof(families[0]); f++)
        for (const struct admin_handler *h = families[f]; h->run; h++)
            if (h->id == cmd->id)
                return h->run;
    return NULL;
}

bool admin_handles(const struct ctl_command *cmd)
{
    return handler_of(cmd) != NULL;
}

/* What each change publishes (registry_internal.h, registry_refresh): a change to devices
 * re-reads the devices its handler noted, one to anything else but tenants' removal (which may
 * take devices with it: --force) re-reads the core; anything not listed reloads it all. */
static const enum registry_refresh refresh_of[CTL_COMMAND_COUNT] = {
    [CTL_TENANT_ADD] = REGISTRY_REFRESH_CORE,
    [CTL_TYPE_ADD] = REGISTRY_REFRESH_CORE,
    [CTL_TYPE_REMOVE] = REGISTRY_REFRESH_CORE,
    [CTL_MESSAGE_ADD] = REGISTRY_REFRESH_CORE,
    [CTL_MESSAGE_REMOVE] = REGISTRY_REFRESH_CORE,
    [CTL_DEVICE_ADD] = REGISTRY_REFRESH_DEVICES,
    [CTL_DEVICE_REMOVE] = REGISTRY_REFRESH_DEVICES,
    [CTL_DEVICE_ENABLE] = REGISTRY_REFRESH_DEVICES,
    [CTL_DEVICE_DISABLE] = REGISTRY_REFRESH_DEVICES,
    [CTL_DEVICE_REKEY] = REGISTRY_REFRESH_DEVICES,
    [CTL_DEVICE_IMPORT] = REGISTRY_REFRESH_DEVICES, /* a batch: the devices it added */
    [CTL_USER_ADD] = REGISTRY_REFRESH_CORE,
    [CTL_USER_REMOVE] = REGISTRY_REFRESH_CORE,
    [CTL_USER_PASSWD] = REGISTRY_REFRESH_CORE,
    [CTL_USER_ROLE] = REGISTRY_REFRESH_CORE,
    [CTL_GROUP_ADD] = REGISTRY_REFRESH_CORE,
    [CTL_GROUP_REMOVE] = REGISTRY_REFRESH_CORE,
    [CTL_GROUP_MEMBER_ADD] = REGISTRY_REFRESH_CORE,
    [CTL_GROUP_MEMBER_REMOVE] = REGISTRY_REFRESH_CORE,
    [CTL_ACCESS_GRANT] = REGISTRY_REFRESH_CORE,
    [CTL_ACCESS_REVOKE] = REGISTRY_REFRESH_CORE,
};

/* Run cmd in its transaction (see admin_execute); op carries what the handler noted. */
static int execute(struct admin_op *op, const struct ctl_command *cmd)
{
    bool in_tx = false;
    int (*handler)(struct admin_op * op) = handler_of(cmd);
    int rc;
    if (!handler) {
        snprintf(op->err, op->errlen, "%s is not an administrative command", cmd ? cmd->name : "?");
        return IOT_EINVAL;
    }
    rc = ctl_args_validate(cmd, op->args, op->err, op->errlen);
    if (rc != IOT_OK)
        goto out;
    op->result = cJSON_CreateObject();
    if (!op->result) {
        rc = admin_fail(op, IOT_ENOMEM, "out of memory");
        goto out;
    }
    rc = sql_begin(op->conn, false, op->err, op->errlen);
    if (rc != IOT_OK)
        goto out;
    in_tx = true;
    rc = handler(op);
    if (rc == IOT_OK && (cmd->flags & CTL_MUTATES))
        rc = write_audit(op, cmd);
    if (rc == IOT_OK)
        rc = sql_commit(op->conn, op->err, op->errlen);
    if (rc == IOT_OK)
        in_tx = false;
out:
    if (in_tx)
        sql_rollback(op->conn);
    if (rc != IOT_OK) {
        cJSON_Delete(op->result);
        op->result = NULL;
    }
    return rc;
}

int admin_execute(MYSQL *conn, const struct admin_ctx *ctx, const struct ctl_command *cmd,
                  const cJSON *args, cJSON **result, char *err, size_t errlen)
{
    struct admin_op op = {.conn = conn, .ctx = ctx, .args = args, .err = err, .errlen = errlen};
    int rc = execute(&op, cmd);
    *result = op.result;
    free(op.devices);
    return rc;
}

int admin_apply(registry_t *reg, MYSQL *conn, const struct admin_ctx *ctx,
                const struct ctl_command *cmd, const cJSON *args, cJSON **result, char *err,
                size_t errlen)
{
    struct admin_op op = {.conn = conn, .ctx = ctx, .args = args, .err = err, .errlen = errlen};
    /* A kick (CTL_KEEPS_REGISTRY) is audited like a change but has nothing to reload:
     * publishing would only make every io thread's cached relay decisions stale. */
    bool publishes = cmd && (cmd->flags & CTL_MUTATES) && !(cmd->flags & CTL_KEEPS_REGISTRY);
    if (publishes)
        registry_change_lock(reg);
    int rc = execute(&op, cmd);
    *result = op.result;
    /* A batch that found every row there already (op.unchanged) has nothing to publish. */
    if (rc == IOT_OK && publishes && !op.unchanged) {
        char why[256];
        enum registry_refresh what = refresh_of[cmd->id];
        if (op.core_changed && what == REGISTRY_REFRESH_DEVICES)
            what = REGISTRY_REFRESH_DEVICES_CORE; /* one snapshot with both, never one between */
        if (registry_refresh(reg, conn, what, op.devices, op.ndevices, why, sizeof(why)) != IOT_OK)
            /* The change is committed; the next successful refresh will show it. */
            log_error("registry: %s committed but reloading the registry failed: %s", cmd->name,
                      why);
    }
    if (publishes)
        registry_change_unlock(reg);
    free(op.devices);
    return rc;
}

int admin_reload(registry_t *reg, MYSQL *conn, char *err, size_t errlen)
{
    registry_change_lock(reg);
    int rc = registry_refresh(reg, conn, REGISTRY_REFRESH_FULL, NULL, 0, err, errlen);
    registry_change_unlock(reg);
    return rc;
}
