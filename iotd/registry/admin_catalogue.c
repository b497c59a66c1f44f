/*
 * admin_catalogue.c - the administrative commands of tenants, device types and their message
 * catalogue (tenant/type/message add|remove); see admin.c for how they run.
 */
#include "admin_internal.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "argspec.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MIN_MS     100
#define TIMEOUT_MAX_MS     600000
#define TIMEOUT_DEFAULT_MS 5000

static int tenant_add(struct admin_op *op)
{
    const char *name = admin_arg(op, "name"), *display = admin_arg(op, "display_name");
    int rc = admin_check_length(op, "display_name", DISPLAY_MAX);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", name);
    admin_set_target(op, "tenant:%s", name);
    rc = sql_exec(op->conn, "INSERT INTO tenants (name, display_name) VALUES (?, ?)",
                  SQL_PARAMS(sql_str(name), sql_str(display)), NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return admin_fail(op, rc, "tenant %s already exists", name);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "display_name", display);
    return rc;
}

static int tenant_remove(struct admin_op *op)
{
    const char *name = admin_arg(op, "name");
    bool force = ctl_get_bool(op->args, "force", 0);
    struct ref t;
    int rc = admin_find_tenant(op, name, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", name);
    admin_set_target(op, "tenant:%s", name);

    static const struct {
        const char *key;
        const char *count_sql;
    } contents[] = {
        {"types", "SELECT COUNT(*) FROM device_types WHERE tenant_id = ?"},
        {"devices", "SELECT COUNT(*) FROM devices WHERE tenant_id = ?"},
        {"users", "SELECT COUNT(*) FROM users WHERE tenant_id = ?"},
        {"groups", "SELECT COUNT(*) FROM tenant_groups WHERE tenant_id = ?"},
        {"rules", "SELECT COUNT(*) FROM access_rules WHERE tenant_id = ?"},
    };
    long long n[5], total = 0;
    for (size_t i = 0; i < 5; i++) {
        rc = admin_count(op, contents[i].count_sql, SQL_PARAMS(sql_int(t.id)), &n[i]);
        if (rc != IOT_OK)
            return rc;
        total += n[i];
    }
    if (total > 0 && !force)
        return admin_fail(
            op, IOT_EINUSE,
            "tenant %s is not empty (%lld device types, %lld devices, %lld users, %lld "
            "groups, %lld rules); remove them first or use --force",
            name, n[0], n[1], n[2], n[3], n[4]);

    /* Children first: the schema refuses (RESTRICT) to drop a tenant that still owns rows. */
    static const char *const purge[] = {
        "DELETE FROM alarms WHERE tenant_id = ?", /* the alarm history goes with the tenant */
        "DELETE FROM alarm_rules WHERE tenant_id = ?",
        "DELETE FROM access_rules WHERE tenant_id = ?",
        "DELETE FROM group_devices WHERE tenant_id = ?",
        "DELETE FROM group_users WHERE tenant_id = ?",
        "DELETE FROM tenant_groups WHERE tenant_id = ?",
        "DELETE FROM devices WHERE tenant_id = ?",
        "DELETE FROM users WHERE tenant_id = ?",
        "DELETE FROM device_types WHERE tenant_id = ?", /* the catalogue cascades */
        "DELETE FROM tenants WHERE id = ?",
    };
    for (size_t i = 0; i < sizeof(purge) / sizeof(purge[0]); i++) {
        rc = sql_exec(op->conn, purge[i], SQL_PARAMS(sql_int(t.id)), NULL, NULL, op->err,
                      op->errlen);
        if (rc != IOT_OK)
            return rc;
    }
    rc = admin_result_str(op, "name", name);
    cJSON *removed = cJSON_AddObjectToObject(op->result, "removed");
    for (size_t i = 0; removed && i < 5; i++)
        if (!cJSON_AddNumberToObject(removed, contents[i].key, (double)n[i]))
            removed = NULL;
    return rc != IOT_OK ? rc : removed ? IOT_OK : admin_fail(op, IOT_ENOMEM, "out of memory");
}

/* ---- device types and the catalogue ---- */

static int type_add(struct admin_op *op)
{
    const char *name = admin_arg(op, "name"), *tenant = admin_arg(op, "tenant");
    struct ref t;
    int rc = admin_check_length(op, "description", DESCRIPTION_MAX);
    if (rc == IOT_OK)
        rc = admin_find_tenant(op, tenant, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "type:%s", name);
    rc = sql_exec(op->conn,
                  "INSERT INTO device_types (tenant_id, name, description) VALUES (?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(admin_arg(op, "description"))),
                  NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return admin_fail(op, rc, "device type %s already exists in tenant %s", name, tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    return rc;
}

static int type_remove(struct admin_op *op)
{
    const char *name = admin_arg(op, "name"), *tenant = admin_arg(op, "tenant");
    struct ref t;
    long long devices = 0, rules = 0;
    int rc = admin_find_type(op, tenant, name, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "type:%s", name);
    rc = admin_count(op, "SELECT COUNT(*) FROM devices WHERE type_id = ?",
                     SQL_PARAMS(sql_int(t.id)), &devices);
    if (rc != IOT_OK)
        return rc;
    if (devices > 0)
        return admin_fail(op, IOT_EINUSE,
                          "device type %s is used by %lld device%s; remove them first", name,
                          devices, devices == 1 ? "" : "s");
    rc = admin_count(op, RULES_OF_TYPE, SQL_PARAMS(sql_int(t.id)), &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM device_types WHERE id = ?", SQL_PARAMS(sql_int(t.id)),
                      NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EINUSE) /* a device was added meanwhile */
        return admin_fail(op, rc, "device type %s is in use by a device", name);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = admin_result_num(op, "rules_removed", (double)rules);
    return rc;
}

/* An event's lease commands (--start/--stop): both or neither, only on events, and each a
 * command of the same catalogue, so a lease never sends something the device cannot take. */
static int check_lease_commands(struct admin_op *op, const struct ref *t, const char *direction,
                                const char *start, const char *stop)
{
    const char *names[2] = {start, stop};
    if (!start && !stop)
        return IOT_OK;
    if (strcmp(direction, "event") != 0)
        return admin_fail(op, IOT_EINVAL, "--start and --stop apply to event message types only");
    if (!start || !stop)
        return admin_fail(op, IOT_EINVAL, "an event's lease needs both --start and --stop");
    for (int i = 0; i < 2; i++) {
        long long n = 0;
        int rc = admin_count(op,
                             "SELECT COUNT(*) FROM message_types WHERE type_id = ? AND name = ? "
                             "AND direction = 'command'",
                             SQL_PARAMS(sql_int(t->id), sql_str(names[i])), &n);
        if (rc != IOT_OK)
            return rc;
        if (n == 0)
            return admin_fail(op, IOT_ENOTFOUND,
                              "%s is not a command in this type's catalogue (add it first)",
                              names[i]);
    }
    return IOT_OK;
}

static int message_add(struct admin_op *op)
{
    const char *type = admin_arg(op, "type"), *name = admin_arg(op, "name"),
               *tenant = admin_arg(op, "tenant");
    const char *direction = admin_arg(op, "direction") ? admin_arg(op, "direction") : "command";
    long long timeout = ctl_get_int(op->args, "timeout_ms", TIMEOUT_DEFAULT_MS);
    struct argspec spec;
    char canonical[1025];
    struct ref t;
    int rc = admin_check_message_name(op, name);
    if (rc == IOT_OK)
        rc = admin_check_length(op, "description", DESCRIPTION_MAX);
    if (rc != IOT_OK)
        return rc;
    if (reg_direction_parse(direction) < 0)
        return admin_fail(op, IOT_EINVAL, "direction must be command or event, not '%s'",
                          direction);
    if (timeout < TIMEOUT_MIN_MS || timeout > TIMEOUT_MAX_MS)
        return admin_fail(op, IOT_EINVAL, "timeout must be between %d and %d ms, not %lld",
                          TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, timeout);
    rc = argspec_parse(admin_arg(op, "args"), &spec, op->err, op->errlen);
    if (rc != IOT_OK)
        return rc;
    if (argspec_format(&spec, canonical, sizeof(canonical)) != IOT_OK)
        return admin_fail(op, IOT_EINVAL, "args spec is longer than %zu bytes",
                          sizeof(canonical) - 1);
    rc = admin_find_type(op, tenant, type, &t);
    if (rc != IOT_OK)
        return rc;
    rc = check_lease_commands(op, &t, direction, admin_arg(op, "start"), admin_arg(op, "stop"));
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "message:%s/%s", type, name);
    rc = sql_exec(op->conn,
                  "INSERT INTO message_types (type_id, name, direction, args_spec, timeout_ms, "
                  "start_message, stop_message, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(direction), sql_str(canonical),
                             sql_int(timeout), sql_str(admin_arg(op, "start")),
                             sql_str(admin_arg(op, "stop")), sql_str(admin_arg(op, "description"))),
                  NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return admin_fail(op, rc, "message type %s already exists in the catalogue of type %s",
                          name, type);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "type", type);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "direction", direction);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "args", canonical);
    if (rc == IOT_OK)
        rc = admin_result_num(op, "timeout_ms", (double)timeout);
    if (rc == IOT_OK && admin_arg(op, "start"))
        rc = admin_result_str(op, "start", admin_arg(op, "start"));
    if (rc == IOT_OK && admin_arg(op, "stop"))
        rc = admin_result_str(op, "stop", admin_arg(op, "stop"));
    return rc;
}

static int message_remove(struct admin_op *op)
{
    const char *type = admin_arg(op, "type"), *name = admin_arg(op, "name"),
               *tenant = admin_arg(op, "tenant");
    struct ref t;
    unsigned long long affected = 0;
    int rc = admin_find_type(op, tenant, type, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "message:%s/%s", type, name);
    /* Rules naming the message stay: they name it, not reference it, and match nothing until
     * a catalogue has it again (the catalogue check denies first). */
    rc = sql_exec(op->conn, "DELETE FROM message_types WHERE type_id = ? AND name = ?",
                  SQL_PARAMS(sql_int(t.id), sql_str(name)), &affected, NULL, op->err, op->errlen);
    if (rc == IOT_OK && affected == 0)
        return admin_fail(op, IOT_ENOTFOUND, "message type %s is not in the catalogue of type %s",
                          name, type);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "type", type);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    return rc;
}

const struct admin_handler admin_catalogue_handlers[] = {
    {CTL_TENANT_ADD, tenant_add},   {CTL_TENANT_REMOVE, tenant_remove},
    {CTL_TYPE_ADD, type_add},       {CTL_TYPE_REMOVE, type_remove},
    {CTL_MESSAGE_ADD, message_add}, {CTL_MESSAGE_REMOVE, message_remove},
    {CTL_COMMAND_COUNT, NULL},
};
