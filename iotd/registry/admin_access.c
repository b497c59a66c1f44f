/*
 * admin_access.c - the administrative commands of the access map (access grant|revoke): rules
 * parsed, resolved in their tenant and checked against the catalogue; see admin.c.
 */
#include "admin_internal.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A parsed "kind:NAME" subject or target, resolved in the rule's tenant. */
struct endpoint {
    int kind; /* reg_subject_kind or reg_target_kind */
    char name[NAME_BUF];
    struct ref ref;
};

/* Split "kind:NAME[@TENANT]" and check that an explicit tenant is the rule's. */
static int split_endpoint(struct admin_op *op, const char *what, const char *text,
                          const char *tenant, char kind[16], char name[NAME_BUF])
{
    const char *colon = strchr(text, ':');
    if (!colon || (size_t)(colon - text) >= 16)
        return admin_fail(op, IOT_EINVAL, "%s '%s' must be written kind:NAME", what, text);
    memcpy(kind, text, (size_t)(colon - text));
    kind[colon - text] = '\0';
    char other[NAME_BUF];
    const char *rest = colon + 1;
    if (strchr(rest, '@')) {
        if (!reg_split_address(rest, name, NAME_BUF, other, sizeof(other)))
            return admin_fail(op, IOT_EINVAL, "%s '%s' is malformed", what, text);
        if (strcmp(other, tenant) != 0)
            return admin_fail(op, IOT_ECROSS, "%s %s is in tenant %s, but the rule is in tenant %s",
                              what, text, other, tenant);
    } else {
        snprintf(name, NAME_BUF, "%s", rest);
    }
    if (!ctl_value_valid(CTL_ARG_NAME, name))
        return admin_fail(op, IOT_EINVAL, "%s '%s' does not name anything valid", what, text);
    return IOT_OK;
}

/* A device named by a rule must be in the rule's tenant. */
static int rule_device(struct admin_op *op, const char *tenant, struct endpoint *e)
{
    int rc = admin_find_device(op, e->name, &e->ref);
    if (rc == IOT_OK && strcmp(e->ref.tenant, tenant) != 0)
        rc = admin_fail(op, IOT_ECROSS, "device %s belongs to tenant %s, not to %s", e->name,
                        e->ref.tenant, tenant);
    return rc;
}

static int parse_subject(struct admin_op *op, const char *tenant, struct endpoint *e)
{
    char kind[16];
    const char *text = admin_arg(op, "subject");
    int rc = split_endpoint(op, "subject", text, tenant, kind, e->name);
    if (rc != IOT_OK)
        return rc;
    e->kind = reg_subject_kind_parse(kind);
    switch (e->kind) {
    case REG_SUBJECT_USER:
        return admin_find_user(op, tenant, e->name, &e->ref);
    case REG_SUBJECT_DEVICE:
        return rule_device(op, tenant, e);
    case REG_SUBJECT_GROUP:
        return admin_find_group(op, tenant, e->name, &e->ref);
    }
    return admin_fail(op, IOT_EINVAL, "subject '%s' must be user:NAME, device:ID or group:NAME",
                      text);
}

static int parse_target(struct admin_op *op, const char *tenant, struct endpoint *e)
{
    char kind[16];
    const char *text = admin_arg(op, "target");
    int rc;
    if (strcmp(text, "any") == 0) {
        e->kind = REG_TARGET_ANY;
        return IOT_OK;
    }
    rc = split_endpoint(op, "target", text, tenant, kind, e->name);
    if (rc != IOT_OK)
        return rc;
    e->kind = reg_target_kind_parse(kind);
    switch (e->kind) {
    case REG_TARGET_DEVICE:
        return rule_device(op, tenant, e);
    case REG_TARGET_TYPE:
        return admin_find_type(op, tenant, e->name, &e->ref);
    case REG_TARGET_GROUP:
        rc = admin_find_group(op, tenant, e->name, &e->ref);
        if (rc == IOT_OK && strcmp(e->ref.extra, "device") != 0)
            rc = admin_fail(op, IOT_EINVAL,
                            "group %s holds users; a target group must hold devices", e->name);
        return rc;
    case REG_TARGET_ANY:
        break;
    }
    return admin_fail(op, IOT_EINVAL, "target '%s' must be device:ID, type:NAME, group:NAME or any",
                      text);
}

/* The granted message must exist in a catalogue the target can reach: the device's or the
 * type's for those targets, some type of the tenant otherwise. */
static int check_rule_message(struct admin_op *op, long long tenant_id, const struct endpoint *t,
                              const char *message)
{
    long long n = 0;
    int rc;
    switch (t->kind) {
    case REG_TARGET_DEVICE:
        rc = admin_count(
            op,
            "SELECT COUNT(*) FROM message_types m JOIN devices d ON d.type_id = m.type_id "
            "WHERE d.id = ? AND m.name = ?",
            SQL_PARAMS(sql_str(t->name), sql_str(message)), &n);
        break;
    case REG_TARGET_TYPE:
        rc = admin_count(op, "SELECT COUNT(*) FROM message_types WHERE type_id = ? AND name = ?",
                         SQL_PARAMS(sql_int(t->ref.id), sql_str(message)), &n);
        break;
    default:
        rc = admin_count(
            op,
            "SELECT COUNT(*) FROM message_types m JOIN device_types ty ON ty.id = m.type_id "
            "WHERE ty.tenant_id = ? AND m.name = ?",
            SQL_PARAMS(sql_int(tenant_id), sql_str(message)), &n);
        break;
    }
    if (rc == IOT_OK && n == 0)
        rc = admin_fail(
            op, IOT_ENOTFOUND, "message type %s is not in the catalogue of %s %s", message,
            t->kind == REG_TARGET_DEVICE ? "device"
            : t->kind == REG_TARGET_TYPE ? "type"
                                         : "any device type of tenant",
            t->kind == REG_TARGET_DEVICE || t->kind == REG_TARGET_TYPE ? t->name
                                                                       : admin_arg(op, "tenant"));
    return rc;
}

static int access_grant(struct admin_op *op)
{
    const char *tenant = admin_arg(op, "tenant"), *message = admin_arg(op, "message");
    struct endpoint s = {0}, t = {0};
    struct ref te;
    unsigned long long id = 0;
    long long existing = 0;
    int rc = admin_find_tenant(op, tenant, &te);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    if (message && (rc = admin_check_message_name(op, message)) != IOT_OK)
        return rc;
    rc = parse_subject(op, tenant, &s);
    if (rc == IOT_OK)
        rc = parse_target(op, tenant, &t);
    if (rc == IOT_OK && message)
        rc = check_rule_message(op, te.id, &t, message);
    if (rc != IOT_OK)
        return rc;

    const char *subject_kind = reg_subject_kind_name(s.kind);
    const char *target_kind = reg_target_kind_name(t.kind);
    /* Columns: subject user/device/group, target device/type/group; NULL where not this kind. */
    struct sql_param cols[6] = {
        s.kind == REG_SUBJECT_USER ? sql_int(s.ref.id) : sql_str(NULL),
        sql_str(s.kind == REG_SUBJECT_DEVICE ? s.name : NULL),
        s.kind == REG_SUBJECT_GROUP ? sql_int(s.ref.id) : sql_str(NULL),
        sql_str(t.kind == REG_TARGET_DEVICE ? t.name : NULL),
        t.kind == REG_TARGET_TYPE ? sql_int(t.ref.id) : sql_str(NULL),
        t.kind == REG_TARGET_GROUP ? sql_int(t.ref.id) : sql_str(NULL),
    };
    struct sql_param params[] = {sql_int(te.id), sql_str(subject_kind), cols[0], cols[1],
                                 cols[2],        sql_str(target_kind),  cols[3], cols[4],
                                 cols[5],        sql_str(message)};
    rc = sql_query_int(op->conn,
                       "SELECT id FROM access_rules WHERE tenant_id = ? AND subject_kind = ? "
                       "AND subject_user_id <=> ? AND subject_device_id <=> ? "
                       "AND subject_group_id <=> ? AND target_kind = ? AND target_device_id <=> ? "
                       "AND target_type_id <=> ? AND target_group_id <=> ? AND message <=> ? "
                       "ORDER BY id LIMIT 1",
                       params, sizeof(params) / sizeof(params[0]), &existing, op->err, op->errlen);
    if (rc == IOT_OK)
        return admin_fail(op, IOT_EEXIST, "rule %lld already grants this", existing);
    if (rc != IOT_ENOTFOUND)
        return rc;

    struct sql_param insert[] = {sql_int(te.id),
                                 sql_str(subject_kind),
                                 cols[0],
                                 cols[1],
                                 cols[2],
                                 sql_str(target_kind),
                                 cols[3],
                                 cols[4],
                                 cols[5],
                                 sql_str(message),
                                 sql_str(op->ctx->actor)};
    rc = sql_exec(op->conn,
                  "INSERT INTO access_rules (tenant_id, subject_kind, subject_user_id, "
                  "subject_device_id, subject_group_id, target_kind, target_device_id, "
                  "target_type_id, target_group_id, message, created_by) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  insert, sizeof(insert) / sizeof(insert[0]), NULL, &id, op->err, op->errlen);
    if (rc != IOT_OK)
        return rc;
    admin_set_target(op, "rule:%llu", id);
    char subject[100], target[100];
    snprintf(subject, sizeof(subject), "%s:%s", subject_kind, s.name);
    if (t.kind == REG_TARGET_ANY)
        snprintf(target, sizeof(target), "any");
    else
        snprintf(target, sizeof(target), "%s:%s", target_kind, t.name);
    rc = admin_result_num(op, "rule", (double)id);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "subject", subject);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "target", target);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "message", message ? message : "any");
    return rc;
}

static int access_revoke(struct admin_op *op)
{
    const char *tenant = admin_arg(op, "tenant");
    long long id = ctl_get_int(op->args, "rule", 0);
    struct ref r;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "rule:%lld", id);
    int rc = admin_lookup(op,
                          "SELECT r.id, r.tenant_id, te.name, NULL FROM access_rules r "
                          "JOIN tenants te ON te.id = r.tenant_id WHERE r.id = ?",
                          SQL_PARAMS(sql_int(id)), &r);
    if (rc == IOT_ENOTFOUND)
        return admin_fail(op, rc, "no access rule %lld", id);
    if (rc == IOT_OK && strcmp(r.tenant, tenant) != 0)
        return admin_fail(op, IOT_ECROSS, "access rule %lld belongs to another tenant than %s", id,
                          tenant);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM access_rules WHERE id = ?", SQL_PARAMS(sql_int(id)),
                      NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = admin_result_num(op, "rule", (double)id);
    return rc;
}

const struct admin_handler admin_access_handlers[] = {
    {CTL_ACCESS_GRANT, access_grant},
    {CTL_ACCESS_REVOKE, access_revoke},
    {CTL_COMMAND_COUNT, NULL},
};
