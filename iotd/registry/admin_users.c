/*
 * admin_users.c - the administrative commands of users and groups (user add|remove|passwd|
 * role|kick, group add|remove, group member add|remove); see admin.c for how they run.
 */
#include "admin_internal.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "crypto/password.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hash_password(struct admin_op *op, char *out, size_t outlen)
{
    int rc = password_hash(admin_arg(op, "password"), out, outlen);
    if (rc == IOT_EINVAL)
        return admin_fail(op, rc, "password must be %d to 1024 characters long", PASSWORD_MIN_LEN);
    return rc == IOT_OK ? IOT_OK : admin_fail(op, rc, "cannot hash the password");
}

static int user_add(struct admin_op *op)
{
    char name[NAME_BUF], tenant[NAME_BUF], hash[PASSWORD_HASH_MAX];
    const char *role = admin_arg(op, "role") ? admin_arg(op, "role") : "operator";
    struct ref t;
    int rc = admin_parse_user(op, name, tenant);
    if (rc != IOT_OK)
        return rc;
    if (reg_role_parse(role) < 0)
        return admin_fail(op, IOT_EINVAL, "role must be admin, operator or viewer, not '%s'", role);
    rc = admin_find_tenant(op, tenant, &t);
    if (rc == IOT_OK)
        rc = hash_password(op, hash, sizeof(hash));
    if (rc != IOT_OK)
        return rc;
    rc = sql_exec(op->conn,
                  "INSERT INTO users (tenant_id, name, role, password_hash) VALUES (?, ?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(role), sql_str(hash)), NULL,
                  NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return admin_fail(op, rc, "user %s@%s already exists", name, tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "user", admin_arg(op, "user"));
    if (rc == IOT_OK)
        rc = admin_result_str(op, "role", role);
    return rc;
}

static int user_remove(struct admin_op *op)
{
    char name[NAME_BUF], tenant[NAME_BUF];
    struct ref u;
    long long rules = 0;
    int rc = admin_parse_user(op, name, tenant);
    if (rc == IOT_OK)
        rc = admin_find_user(op, tenant, name, &u);
    if (rc == IOT_OK)
        rc = admin_count(op, RULES_OF_USER, SQL_PARAMS(sql_int(u.id)), &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM users WHERE id = ?", SQL_PARAMS(sql_int(u.id)), NULL,
                      NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "user", admin_arg(op, "user"));
    if (rc == IOT_OK)
        rc = admin_result_num(op, "rules_removed", (double)rules);
    return rc;
}

/* Look up the user of a per-user command and name it in the result (and, through
 * admin_parse_user, in the audit row). */
static int user_target(struct admin_op *op, struct ref *u)
{
    char name[NAME_BUF], tenant[NAME_BUF];
    int rc = admin_parse_user(op, name, tenant);
    if (rc == IOT_OK)
        rc = admin_find_user(op, tenant, name, u);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "user", admin_arg(op, "user"));
    return rc;
}

static int user_passwd(struct admin_op *op)
{
    char hash[PASSWORD_HASH_MAX];
    struct ref u;
    int rc = user_target(op, &u);
    if (rc == IOT_OK)
        rc = hash_password(op, hash, sizeof(hash));
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "UPDATE users SET password_hash = ? WHERE id = ?",
                      SQL_PARAMS(sql_str(hash), sql_int(u.id)), NULL, NULL, op->err, op->errlen);
    return rc;
}

static int user_role(struct admin_op *op)
{
    const char *role = admin_arg(op, "role");
    struct ref u;
    if (reg_role_parse(role) < 0)
        return admin_fail(op, IOT_EINVAL, "role must be admin, operator or viewer, not '%s'", role);
    int rc = user_target(op, &u);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "UPDATE users SET role = ? WHERE id = ?",
                      SQL_PARAMS(sql_str(role), sql_int(u.id)), NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "previous_role", u.extra);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "role", role);
    return rc;
}

/* Nothing changes in the registry: the user must exist, and the audit row says who ended its
 * sessions (control_commands.c ends them once this is committed). */
static int user_kick(struct admin_op *op)
{
    struct ref u;
    return user_target(op, &u);
}

/* ---- groups ---- */

static int group_add(struct admin_op *op)
{
    const char *name = admin_arg(op, "name"), *tenant = admin_arg(op, "tenant"),
               *kind = admin_arg(op, "kind");
    struct ref t;
    if (reg_group_kind_parse(kind) < 0)
        return admin_fail(op, IOT_EINVAL, "group kind must be device or user, not '%s'",
                          kind ? kind : "");
    int rc = admin_find_tenant(op, tenant, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "group:%s", name);
    rc = sql_exec(op->conn, "INSERT INTO tenant_groups (tenant_id, name, kind) VALUES (?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(kind)), NULL, NULL, op->err,
                  op->errlen);
    if (rc == IOT_EEXIST)
        return admin_fail(op, rc, "group %s already exists in tenant %s", name, tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "kind", kind);
    return rc;
}

static int group_remove(struct admin_op *op)
{
    const char *name = admin_arg(op, "name"), *tenant = admin_arg(op, "tenant");
    struct ref g;
    long long rules = 0;
    int rc = admin_find_group(op, tenant, name, &g);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "group:%s", name);
    rc = admin_count(op, RULES_OF_GROUP, SQL_PARAMS(sql_int(g.id), sql_int(g.id)), &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM tenant_groups WHERE id = ?", SQL_PARAMS(sql_int(g.id)),
                      NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = admin_result_num(op, "rules_removed", (double)rules);
    return rc;
}

/* Resolve a group member: a device id (device groups; must be in the group's tenant) or a user
 * name in the group's tenant (user groups). *member_id is the user id; 0 for devices. */
static int resolve_member(struct admin_op *op, const struct ref *g, const char *member,
                          long long *member_id)
{
    struct ref m;
    int rc;
    *member_id = 0;
    if (strcmp(g->extra, "device") == 0) {
        rc = admin_find_device(op, member, &m);
        if (rc == IOT_OK && m.tenant_id != g->tenant_id)
            rc = admin_fail(op, IOT_ECROSS, "device %s belongs to tenant %s, not to %s", member,
                            m.tenant, g->tenant);
        return rc;
    }
    rc = admin_find_user(op, g->tenant, member, &m);
    *member_id = m.id;
    return rc;
}

static int group_member_change(struct admin_op *op, bool add)
{
    const char *group = admin_arg(op, "group"), *member = admin_arg(op, "member"),
               *tenant = admin_arg(op, "tenant");
    struct ref g;
    long long user_id;
    unsigned long long affected = 0;
    int rc = admin_find_group(op, tenant, group, &g);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "group:%s", group);
    rc = resolve_member(op, &g, member, &user_id);
    if (rc != IOT_OK)
        return rc;
    bool devices = user_id == 0;
    static const char *const sql[2][2] = {
        {"DELETE FROM group_users WHERE tenant_id = ? AND group_id = ? AND user_id = ?",
         "INSERT INTO group_users (tenant_id, group_id, user_id) VALUES (?, ?, ?)"},
        {"DELETE FROM group_devices WHERE tenant_id = ? AND group_id = ? AND device_id = ?",
         "INSERT INTO group_devices (tenant_id, group_id, device_id) VALUES (?, ?, ?)"},
    };
    rc = sql_exec(op->conn, sql[devices][add],
                  SQL_PARAMS(sql_int(g.tenant_id), sql_int(g.id),
                             devices ? sql_str(member) : sql_int(user_id)),
                  &affected, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return admin_fail(op, rc, "%s is already a member of group %s", member, group);
    if (rc == IOT_OK && !add && affected == 0)
        return admin_fail(op, IOT_ENOTFOUND, "%s is not a member of group %s", member, group);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "group", group);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "member", member);
    return rc;
}

static int group_member_add(struct admin_op *op)
{
    return group_member_change(op, true);
}

static int group_member_remove(struct admin_op *op)
{
    return group_member_change(op, false);
}

const struct admin_handler admin_users_handlers[] = {
    {CTL_USER_ADD, user_add},
    {CTL_USER_REMOVE, user_remove},
    {CTL_USER_PASSWD, user_passwd},
    {CTL_USER_ROLE, user_role},
    {CTL_USER_KICK, user_kick},
    {CTL_GROUP_ADD, group_add},
    {CTL_GROUP_REMOVE, group_remove},
    {CTL_GROUP_MEMBER_ADD, group_member_add},
    {CTL_GROUP_MEMBER_REMOVE, group_member_remove},
    {CTL_COMMAND_COUNT, NULL},
};
