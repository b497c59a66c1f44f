/*
 * admin_op.c - what every administrative handler works with (see admin_internal.h): refusals
 * with a sentence, result fields, the "which row is NAME" lookups and the value checks shared by
 * the entity families.
 */
#include "admin_internal.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "iot_grow.h"
#include "registry_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int admin_fail(struct admin_op *op, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->err, op->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int admin_note_device(struct admin_op *op, const char *id)
{
    void *grown = iot_grow(op->devices, op->ndevices, &op->cap_devices, 8, sizeof(*op->devices));
    if (!grown)
        return admin_fail(op, IOT_ENOMEM, "out of memory");
    op->devices = grown;
    op->devices[op->ndevices++] = id;
    return IOT_OK;
}

const char *admin_arg(const struct admin_op *op, const char *key)
{
    return ctl_get_string(op->args, key);
}

void admin_set_target(struct admin_op *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->target, sizeof(op->target), fmt, ap);
    va_end(ap);
}

int admin_result_str(struct admin_op *op, const char *key, const char *value)
{
    cJSON *item = value ? cJSON_AddStringToObject(op->result, key, value)
                        : cJSON_AddNullToObject(op->result, key);
    return item ? IOT_OK : admin_fail(op, IOT_ENOMEM, "out of memory");
}

int admin_result_num(struct admin_op *op, const char *key, double value)
{
    return cJSON_AddNumberToObject(op->result, key, value)
               ? IOT_OK
               : admin_fail(op, IOT_ENOMEM, "out of memory");
}

/* ---- lookups: every "which row is NAME" query returns (id, tenant_id, tenant name, extra) ---- */

static int ref_row(void *ctx, const struct sql_row *r)
{
    struct ref *ref = ctx;
    ref->id = sql_row_int(r, 0, 0);
    ref->tenant_id = sql_row_int(r, 1, 0);
    snprintf(ref->tenant, sizeof(ref->tenant), "%s", sql_row_str(r, 2) ? sql_row_str(r, 2) : "");
    snprintf(ref->extra, sizeof(ref->extra), "%s", sql_row_str(r, 3) ? sql_row_str(r, 3) : "");
    return 1; /* one row is all we want */
}

/* Run a lookup; IOT_ENOTFOUND (err untouched) when there is no row. */
int admin_lookup(struct admin_op *op, const char *sql, const struct sql_param *params,
                 size_t nparams, struct ref *out)
{
    memset(out, 0, sizeof(*out));
    int rc = sql_query(op->conn, sql, params, nparams, ref_row, out, op->err, op->errlen);
    if (rc == 1)
        return IOT_OK;
    return rc == IOT_OK ? IOT_ENOTFOUND : rc;
}

int admin_find_tenant(struct admin_op *op, const char *name, struct ref *out)
{
    int rc = admin_lookup(op, "SELECT id, id, name, NULL FROM tenants WHERE name = ?",
                          SQL_PARAMS(sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? admin_fail(op, rc, "unknown tenant %s", name) : rc;
}

int admin_find_type(struct admin_op *op, const char *tenant, const char *name, struct ref *out)
{
    int rc =
        admin_lookup(op,
                     "SELECT ty.id, ty.tenant_id, te.name, NULL FROM device_types ty "
                     "JOIN tenants te ON te.id = ty.tenant_id WHERE te.name = ? AND ty.name = ?",
                     SQL_PARAMS(sql_str(tenant), sql_str(name)), out);
    return rc == IOT_ENOTFOUND
               ? admin_fail(op, rc, "unknown device type %s in tenant %s", name, tenant)
               : rc;
}

int admin_find_device(struct admin_op *op, const char *id, struct ref *out)
{
    int rc = admin_lookup(op,
                          "SELECT 0, d.tenant_id, te.name, d.auth FROM devices d "
                          "JOIN tenants te ON te.id = d.tenant_id WHERE d.id = ?",
                          SQL_PARAMS(sql_str(id)), out);
    return rc == IOT_ENOTFOUND ? admin_fail(op, rc, "unknown device %s", id) : rc;
}

int admin_find_user(struct admin_op *op, const char *tenant, const char *name, struct ref *out)
{
    int rc = admin_lookup(op,
                          "SELECT u.id, u.tenant_id, te.name, u.role FROM users u "
                          "JOIN tenants te ON te.id = u.tenant_id WHERE te.name = ? AND u.name = ?",
                          SQL_PARAMS(sql_str(tenant), sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? admin_fail(op, rc, "unknown user %s@%s", name, tenant) : rc;
}

int admin_find_group(struct admin_op *op, const char *tenant, const char *name, struct ref *out)
{
    int rc = admin_lookup(op,
                          "SELECT g.id, g.tenant_id, te.name, g.kind FROM tenant_groups g "
                          "JOIN tenants te ON te.id = g.tenant_id WHERE te.name = ? AND g.name = ?",
                          SQL_PARAMS(sql_str(tenant), sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? admin_fail(op, rc, "unknown group %s in tenant %s", name, tenant)
                               : rc;
}

int admin_count(struct admin_op *op, const char *sql, const struct sql_param *params,
                size_t nparams, long long *out)
{
    return sql_query_int(op->conn, sql, params, nparams, out, op->err, op->errlen);
}

/* ---- value checks ---- */

static bool message_name_valid(const char *name)
{
    if (!name || !(name[0] >= 'a' && name[0] <= 'z') || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
              *p == '-'))
            return false;
    return true;
}

int admin_check_message_name(struct admin_op *op, const char *name)
{
    if (message_name_valid(name))
        return IOT_OK;
    return admin_fail(op, IOT_EINVAL,
                      "message type name '%s' must be lower case: a letter, then letters, digits, "
                      "'_', '.' or '-' (upper case is reserved for system messages)",
                      name ? name : "");
}

int admin_check_length(struct admin_op *op, const char *key, size_t max)
{
    const char *v = admin_arg(op, key);
    if (v && strlen(v) > max)
        return admin_fail(op, IOT_EINVAL, "%s is longer than %zu bytes", key, max);
    return IOT_OK;
}

/* Decode exactly n bytes of hex. */
bool admin_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

void admin_hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* "name@tenant" with both parts valid names. */
int admin_parse_user(struct admin_op *op, char name[NAME_BUF], char tenant[NAME_BUF])
{
    const char *user = admin_arg(op, "user");
    if (!reg_split_address(user, name, NAME_BUF, tenant, NAME_BUF) ||
        !ctl_value_valid(CTL_ARG_NAME, name) || !ctl_value_valid(CTL_ARG_NAME, tenant))
        return admin_fail(op, IOT_EINVAL, "user '%s' must be written name@tenant",
                          user ? user : "");
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "user:%s@%s", name, tenant);
    return IOT_OK;
}
