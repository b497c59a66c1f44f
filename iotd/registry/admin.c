/*
 * admin.c - the administrative commands that change the registry in MariaDB (every CTL_MUTATES
 * command) and the audit log query (changes.list). See admin.h for the contract.
 *
 * admin_execute validates the args against the command table, opens a transaction, runs the
 * command's handler (one per command, in a table indexed by command id), writes the audit row
 * for a mutating command in the same transaction, and commits; any failure rolls back, so a
 * change and its audit record exist together or not at all. Handlers are short: lookups and
 * statements go through sql_stmt.h, and every refusal is a sentence in err with the project's
 * error code (unknown names IOT_ENOTFOUND, duplicates IOT_EEXIST, rows still referenced
 * IOT_EINUSE, references into another tenant IOT_ECROSS, bad values IOT_EINVAL).
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
#include "admin.h"

#include "argspec.h"
#include "audit_query.h"
#include "crypto/password.h"
#include "ctl_proto.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_BUF           65
#define DISPLAY_MAX        255
#define DESCRIPTION_MAX    1024
#define TIMEOUT_MIN_MS     100
#define TIMEOUT_MAX_MS     600000
#define TIMEOUT_DEFAULT_MS 5000
#define CHANGES_DEFAULT    50
#define CHANGES_MAX        1000

struct admin_op {
    MYSQL *conn;
    const struct admin_ctx *ctx;
    const cJSON *args;
    cJSON *result;
    char *err;
    size_t errlen;
    /* for the audit row, filled by the handler */
    char tenant[NAME_BUF]; /* empty: not tenant-scoped */
    char target[300];
};

typedef int (*admin_fn)(struct admin_op *op);

__attribute__((format(printf, 3, 4))) static int fail(struct admin_op *op, int rc, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->err, op->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static const char *arg(const struct admin_op *op, const char *key)
{
    return ctl_get_string(op->args, key);
}

__attribute__((format(printf, 2, 3))) static void set_target(struct admin_op *op, const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->target, sizeof(op->target), fmt, ap);
    va_end(ap);
}

static int result_str(struct admin_op *op, const char *key, const char *value)
{
    cJSON *item = value ? cJSON_AddStringToObject(op->result, key, value)
                        : cJSON_AddNullToObject(op->result, key);
    return item ? IOT_OK : fail(op, IOT_ENOMEM, "out of memory");
}

static int result_num(struct admin_op *op, const char *key, double value)
{
    return cJSON_AddNumberToObject(op->result, key, value) ? IOT_OK
                                                           : fail(op, IOT_ENOMEM, "out of memory");
}

/* ---- lookups: every "which row is NAME" query returns (id, tenant_id, tenant name, extra) ---- */

struct ref {
    long long id;
    long long tenant_id;
    char tenant[NAME_BUF];
    char extra[NAME_BUF]; /* kind, role or auth, depending on the query */
};

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
static int lookup(struct admin_op *op, const char *sql, const struct sql_param *params,
                  size_t nparams, struct ref *out)
{
    memset(out, 0, sizeof(*out));
    int rc = sql_query(op->conn, sql, params, nparams, ref_row, out, op->err, op->errlen);
    if (rc == 1)
        return IOT_OK;
    return rc == IOT_OK ? IOT_ENOTFOUND : rc;
}

static int find_tenant(struct admin_op *op, const char *name, struct ref *out)
{
    int rc = lookup(op, "SELECT id, id, name, NULL FROM tenants WHERE name = ?",
                    SQL_PARAMS(sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? fail(op, rc, "unknown tenant %s", name) : rc;
}

static int find_type(struct admin_op *op, const char *tenant, const char *name, struct ref *out)
{
    int rc = lookup(op,
                    "SELECT ty.id, ty.tenant_id, te.name, NULL FROM device_types ty "
                    "JOIN tenants te ON te.id = ty.tenant_id WHERE te.name = ? AND ty.name = ?",
                    SQL_PARAMS(sql_str(tenant), sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? fail(op, rc, "unknown device type %s in tenant %s", name, tenant)
                               : rc;
}

static int find_device(struct admin_op *op, const char *id, struct ref *out)
{
    int rc = lookup(op,
                    "SELECT 0, d.tenant_id, te.name, d.auth FROM devices d "
                    "JOIN tenants te ON te.id = d.tenant_id WHERE d.id = ?",
                    SQL_PARAMS(sql_str(id)), out);
    return rc == IOT_ENOTFOUND ? fail(op, rc, "unknown device %s", id) : rc;
}

static int find_user(struct admin_op *op, const char *tenant, const char *name, struct ref *out)
{
    int rc = lookup(op,
                    "SELECT u.id, u.tenant_id, te.name, u.role FROM users u "
                    "JOIN tenants te ON te.id = u.tenant_id WHERE te.name = ? AND u.name = ?",
                    SQL_PARAMS(sql_str(tenant), sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? fail(op, rc, "unknown user %s@%s", name, tenant) : rc;
}

static int find_group(struct admin_op *op, const char *tenant, const char *name, struct ref *out)
{
    int rc = lookup(op,
                    "SELECT g.id, g.tenant_id, te.name, g.kind FROM tenant_groups g "
                    "JOIN tenants te ON te.id = g.tenant_id WHERE te.name = ? AND g.name = ?",
                    SQL_PARAMS(sql_str(tenant), sql_str(name)), out);
    return rc == IOT_ENOTFOUND ? fail(op, rc, "unknown group %s in tenant %s", name, tenant) : rc;
}

static int count(struct admin_op *op, const char *sql, const struct sql_param *params,
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

static int check_message_name(struct admin_op *op, const char *name)
{
    if (message_name_valid(name))
        return IOT_OK;
    return fail(op, IOT_EINVAL,
                "message type name '%s' must be lower case: a letter, then letters, digits, "
                "'_', '.' or '-' (upper case is reserved for system messages)",
                name ? name : "");
}

static int check_length(struct admin_op *op, const char *key, size_t max)
{
    const char *v = arg(op, key);
    if (v && strlen(v) > max)
        return fail(op, IOT_EINVAL, "%s is longer than %zu bytes", key, max);
    return IOT_OK;
}

/* Decode exactly n bytes of hex. */
static bool hex_decode(const char *hex, uint8_t *out, size_t n)
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

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* "name@tenant" with both parts valid names. */
static int parse_user(struct admin_op *op, char name[NAME_BUF], char tenant[NAME_BUF])
{
    const char *user = arg(op, "user");
    if (!reg_split_address(user, name, NAME_BUF, tenant, NAME_BUF) ||
        !ctl_value_valid(CTL_ARG_NAME, name) || !ctl_value_valid(CTL_ARG_NAME, tenant))
        return fail(op, IOT_EINVAL, "user '%s' must be written name@tenant", user ? user : "");
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "user:%s@%s", name, tenant);
    return IOT_OK;
}

/* ---- tenants ---- */

static int tenant_add(struct admin_op *op)
{
    const char *name = arg(op, "name"), *display = arg(op, "display_name");
    int rc = check_length(op, "display_name", DISPLAY_MAX);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", name);
    set_target(op, "tenant:%s", name);
    rc = sql_exec(op->conn, "INSERT INTO tenants (name, display_name) VALUES (?, ?)",
                  SQL_PARAMS(sql_str(name), sql_str(display)), NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return fail(op, rc, "tenant %s already exists", name);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = result_str(op, "display_name", display);
    return rc;
}

static int tenant_remove(struct admin_op *op)
{
    const char *name = arg(op, "name");
    bool force = ctl_get_bool(op->args, "force", 0);
    struct ref t;
    int rc = find_tenant(op, name, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", name);
    set_target(op, "tenant:%s", name);

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
        rc = count(op, contents[i].count_sql, SQL_PARAMS(sql_int(t.id)), &n[i]);
        if (rc != IOT_OK)
            return rc;
        total += n[i];
    }
    if (total > 0 && !force)
        return fail(op, IOT_EINUSE,
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
    rc = result_str(op, "name", name);
    cJSON *removed = cJSON_AddObjectToObject(op->result, "removed");
    for (size_t i = 0; removed && i < 5; i++)
        if (!cJSON_AddNumberToObject(removed, contents[i].key, (double)n[i]))
            removed = NULL;
    return rc != IOT_OK ? rc : removed ? IOT_OK : fail(op, IOT_ENOMEM, "out of memory");
}

/* ---- device types and the catalogue ---- */

static int type_add(struct admin_op *op)
{
    const char *name = arg(op, "name"), *tenant = arg(op, "tenant");
    struct ref t;
    int rc = check_length(op, "description", DESCRIPTION_MAX);
    if (rc == IOT_OK)
        rc = find_tenant(op, tenant, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "type:%s", name);
    rc = sql_exec(op->conn,
                  "INSERT INTO device_types (tenant_id, name, description) VALUES (?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(arg(op, "description"))), NULL,
                  NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return fail(op, rc, "device type %s already exists in tenant %s", name, tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    return rc;
}

/* Removing a device, user, type or group takes the rules naming it along (CASCADE in the
 * schema); these count them first so the result can say how many went. */
#define RULES_OF_TYPE "SELECT COUNT(*) FROM access_rules WHERE target_type_id = ?"
#define RULES_OF_DEVICE                                                                            \
    "SELECT COUNT(*) FROM access_rules WHERE subject_device_id = ? OR target_device_id = ?"
#define RULES_OF_GROUP                                                                             \
    "SELECT COUNT(*) FROM access_rules WHERE subject_group_id = ? OR target_group_id = ?"
#define RULES_OF_USER "SELECT COUNT(*) FROM access_rules WHERE subject_user_id = ?"

static int type_remove(struct admin_op *op)
{
    const char *name = arg(op, "name"), *tenant = arg(op, "tenant");
    struct ref t;
    long long devices = 0, rules = 0;
    int rc = find_type(op, tenant, name, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "type:%s", name);
    rc = count(op, "SELECT COUNT(*) FROM devices WHERE type_id = ?", SQL_PARAMS(sql_int(t.id)),
               &devices);
    if (rc != IOT_OK)
        return rc;
    if (devices > 0)
        return fail(op, IOT_EINUSE, "device type %s is used by %lld device%s; remove them first",
                    name, devices, devices == 1 ? "" : "s");
    rc = count(op, RULES_OF_TYPE, SQL_PARAMS(sql_int(t.id)), &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM device_types WHERE id = ?", SQL_PARAMS(sql_int(t.id)),
                      NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EINUSE) /* a device was added meanwhile */
        return fail(op, rc, "device type %s is in use by a device", name);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = result_num(op, "rules_removed", (double)rules);
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
        return fail(op, IOT_EINVAL, "--start and --stop apply to event message types only");
    if (!start || !stop)
        return fail(op, IOT_EINVAL, "an event's lease needs both --start and --stop");
    for (int i = 0; i < 2; i++) {
        long long n = 0;
        int rc = count(op,
                       "SELECT COUNT(*) FROM message_types WHERE type_id = ? AND name = ? "
                       "AND direction = 'command'",
                       SQL_PARAMS(sql_int(t->id), sql_str(names[i])), &n);
        if (rc != IOT_OK)
            return rc;
        if (n == 0)
            return fail(op, IOT_ENOTFOUND,
                        "%s is not a command in this type's catalogue (add it first)", names[i]);
    }
    return IOT_OK;
}

static int message_add(struct admin_op *op)
{
    const char *type = arg(op, "type"), *name = arg(op, "name"), *tenant = arg(op, "tenant");
    const char *direction = arg(op, "direction") ? arg(op, "direction") : "command";
    long long timeout = ctl_get_int(op->args, "timeout_ms", TIMEOUT_DEFAULT_MS);
    struct argspec spec;
    char canonical[1025];
    struct ref t;
    int rc = check_message_name(op, name);
    if (rc == IOT_OK)
        rc = check_length(op, "description", DESCRIPTION_MAX);
    if (rc != IOT_OK)
        return rc;
    if (reg_direction_parse(direction) < 0)
        return fail(op, IOT_EINVAL, "direction must be command or event, not '%s'", direction);
    if (timeout < TIMEOUT_MIN_MS || timeout > TIMEOUT_MAX_MS)
        return fail(op, IOT_EINVAL, "timeout must be between %d and %d ms, not %lld",
                    TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, timeout);
    rc = argspec_parse(arg(op, "args"), &spec, op->err, op->errlen);
    if (rc != IOT_OK)
        return rc;
    if (argspec_format(&spec, canonical, sizeof(canonical)) != IOT_OK)
        return fail(op, IOT_EINVAL, "args spec is longer than %zu bytes", sizeof(canonical) - 1);
    rc = find_type(op, tenant, type, &t);
    if (rc != IOT_OK)
        return rc;
    rc = check_lease_commands(op, &t, direction, arg(op, "start"), arg(op, "stop"));
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "message:%s/%s", type, name);
    rc = sql_exec(op->conn,
                  "INSERT INTO message_types (type_id, name, direction, args_spec, timeout_ms, "
                  "start_message, stop_message, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(direction), sql_str(canonical),
                             sql_int(timeout), sql_str(arg(op, "start")), sql_str(arg(op, "stop")),
                             sql_str(arg(op, "description"))),
                  NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return fail(op, rc, "message type %s already exists in the catalogue of type %s", name,
                    type);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "type", type);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = result_str(op, "direction", direction);
    if (rc == IOT_OK)
        rc = result_str(op, "args", canonical);
    if (rc == IOT_OK)
        rc = result_num(op, "timeout_ms", (double)timeout);
    if (rc == IOT_OK && arg(op, "start"))
        rc = result_str(op, "start", arg(op, "start"));
    if (rc == IOT_OK && arg(op, "stop"))
        rc = result_str(op, "stop", arg(op, "stop"));
    return rc;
}

static int message_remove(struct admin_op *op)
{
    const char *type = arg(op, "type"), *name = arg(op, "name"), *tenant = arg(op, "tenant");
    struct ref t;
    unsigned long long affected = 0;
    int rc = find_type(op, tenant, type, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "message:%s/%s", type, name);
    /* Rules naming the message stay: they name it, not reference it, and match nothing until
     * a catalogue has it again (the catalogue check denies first). */
    rc = sql_exec(op->conn, "DELETE FROM message_types WHERE type_id = ? AND name = ?",
                  SQL_PARAMS(sql_int(t.id), sql_str(name)), &affected, NULL, op->err, op->errlen);
    if (rc == IOT_OK && affected == 0)
        return fail(op, IOT_ENOTFOUND, "message type %s is not in the catalogue of type %s", name,
                    type);
    if (rc == IOT_OK)
        rc = result_str(op, "type", type);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    return rc;
}

/* ---- devices ---- */

/* The secret for add/rekey: --secret (exactly 32 bytes of hex) or 32 fresh random bytes;
 * sealed with the device id as associated data. */
static int make_secret(struct admin_op *op, const char *id, uint8_t secret[REG_SECRET_LEN],
                       uint8_t sealed[REG_SEALED_LEN])
{
    const char *given = arg(op, "secret");
    int rc;
    if (given) {
        if (!hex_decode(given, secret, REG_SECRET_LEN))
            return fail(op, IOT_EINVAL, "--secret must be exactly 32 bytes (64 hex digits)");
    } else {
        rc = secretbox_random(secret, REG_SECRET_LEN);
        if (rc != IOT_OK)
            return fail(op, rc, "cannot generate a random secret");
    }
    rc = secretbox_seal(op->ctx->secret_key, secret, REG_SECRET_LEN, (const uint8_t *)id,
                        strlen(id), sealed);
    return rc == IOT_OK ? IOT_OK : fail(op, rc, "cannot seal the device secret");
}

static int result_secret(struct admin_op *op, const uint8_t secret[REG_SECRET_LEN])
{
    char hex[2 * REG_SECRET_LEN + 1];
    hex_encode(secret, REG_SECRET_LEN, hex);
    int rc = result_str(op, "secret", hex);
    explicit_bzero(hex, sizeof(hex));
    return rc;
}

static int device_add(struct admin_op *op)
{
    const char *id = arg(op, "id"), *tenant = arg(op, "tenant"), *type = arg(op, "type");
    const char *auth = arg(op, "auth") ? arg(op, "auth") : "hmac";
    const char *serial_hex = arg(op, "serial");
    bool enabled = !ctl_get_bool(op->args, "disabled", 0);
    uint8_t secret[REG_SECRET_LEN], sealed[REG_SEALED_LEN], serial[REG_SERIAL_LEN];
    struct ref t;
    int kind = reg_auth_parse(auth);
    int rc = check_length(op, "display_name", DISPLAY_MAX);
    if (rc != IOT_OK)
        goto out;
    if (kind < 0) {
        rc = fail(op, IOT_EINVAL, "auth must be hmac or atecc508a, not '%s'", auth);
        goto out;
    }
    if (kind == REG_AUTH_ATECC508A && !serial_hex) {
        rc = fail(op, IOT_EINVAL,
                  "an atecc508a device needs --serial (the chip's 9-byte serial "
                  "number, 18 hex digits)");
        goto out;
    }
    if (kind == REG_AUTH_HMAC && serial_hex) {
        rc = fail(op, IOT_EINVAL, "--serial only applies to --auth atecc508a");
        goto out;
    }
    if (serial_hex && !hex_decode(serial_hex, serial, sizeof(serial))) {
        rc = fail(op, IOT_EINVAL, "--serial must be exactly 9 bytes (18 hex digits)");
        goto out;
    }
    rc = find_type(op, tenant, type, &t);
    if (rc != IOT_OK)
        goto out;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "device:%s", id);
    rc = make_secret(op, id, secret, sealed);
    if (rc != IOT_OK)
        goto out;
    rc = sql_exec(op->conn,
                  "INSERT INTO devices (id, tenant_id, type_id, display_name, auth, secret, "
                  "atecc_serial, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  SQL_PARAMS(sql_str(id), sql_int(t.tenant_id), sql_int(t.id),
                             sql_str(arg(op, "display_name")), sql_str(auth),
                             sql_blob(sealed, sizeof(sealed)),
                             serial_hex ? sql_blob(serial, sizeof(serial)) : sql_str(NULL),
                             sql_int(enabled)),
                  NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST) {
        /* ids are global: say so, since the duplicate may live in another tenant */
        rc = fail(op, rc, "device %s already exists (device ids are unique across tenants)", id);
        goto out;
    }
    if (rc == IOT_OK)
        rc = result_str(op, "id", id);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "type", type);
    if (rc == IOT_OK)
        rc = result_str(op, "auth", auth);
    if (rc == IOT_OK)
        rc = cJSON_AddBoolToObject(op->result, "enabled", enabled) ? IOT_OK : IOT_ENOMEM;
    if (rc == IOT_OK)
        rc = result_secret(op, secret);
out:
    explicit_bzero(secret, sizeof(secret));
    return rc;
}

/* Look up a device for a per-device command and record it for the audit. */
static int device_target(struct admin_op *op, struct ref *d)
{
    const char *id = arg(op, "id");
    int rc = find_device(op, id, d);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", d->tenant);
    set_target(op, "device:%s", id);
    return result_str(op, "id", id);
}

static int device_remove(struct admin_op *op)
{
    struct ref d;
    long long rules = 0;
    int rc = device_target(op, &d);
    if (rc == IOT_OK)
        rc = count(op, RULES_OF_DEVICE, SQL_PARAMS(sql_str(arg(op, "id")), sql_str(arg(op, "id"))),
                   &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM devices WHERE id = ?",
                      SQL_PARAMS(sql_str(arg(op, "id"))), NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = result_num(op, "rules_removed", (double)rules);
    return rc;
}

static int device_set_enabled(struct admin_op *op, bool enabled)
{
    struct ref d;
    int rc = device_target(op, &d);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "UPDATE devices SET enabled = ? WHERE id = ?",
                      SQL_PARAMS(sql_int(enabled), sql_str(arg(op, "id"))), NULL, NULL, op->err,
                      op->errlen);
    if (rc == IOT_OK)
        rc = cJSON_AddBoolToObject(op->result, "enabled", enabled) ? IOT_OK : IOT_ENOMEM;
    return rc;
}

static int device_enable(struct admin_op *op)
{
    return device_set_enabled(op, true);
}

static int device_disable(struct admin_op *op)
{
    return device_set_enabled(op, false);
}

static int device_rekey(struct admin_op *op)
{
    const char *id = arg(op, "id");
    uint8_t secret[REG_SECRET_LEN], sealed[REG_SEALED_LEN];
    struct ref d;
    int rc = device_target(op, &d);
    if (rc == IOT_OK)
        rc = make_secret(op, id, secret, sealed);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "UPDATE devices SET secret = ? WHERE id = ?",
                      SQL_PARAMS(sql_blob(sealed, sizeof(sealed)), sql_str(id)), NULL, NULL,
                      op->err, op->errlen);
    if (rc == IOT_OK)
        rc = result_secret(op, secret);
    explicit_bzero(secret, sizeof(secret));
    return rc;
}

/* ---- users ---- */

static int hash_password(struct admin_op *op, char *out, size_t outlen)
{
    int rc = password_hash(arg(op, "password"), out, outlen);
    if (rc == IOT_EINVAL)
        return fail(op, rc, "password must be %d to 1024 characters long", PASSWORD_MIN_LEN);
    return rc == IOT_OK ? IOT_OK : fail(op, rc, "cannot hash the password");
}

static int user_add(struct admin_op *op)
{
    char name[NAME_BUF], tenant[NAME_BUF], hash[PASSWORD_HASH_MAX];
    const char *role = arg(op, "role") ? arg(op, "role") : "operator";
    struct ref t;
    int rc = parse_user(op, name, tenant);
    if (rc != IOT_OK)
        return rc;
    if (reg_role_parse(role) < 0)
        return fail(op, IOT_EINVAL, "role must be admin, operator or viewer, not '%s'", role);
    rc = find_tenant(op, tenant, &t);
    if (rc == IOT_OK)
        rc = hash_password(op, hash, sizeof(hash));
    if (rc != IOT_OK)
        return rc;
    rc = sql_exec(op->conn,
                  "INSERT INTO users (tenant_id, name, role, password_hash) VALUES (?, ?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(role), sql_str(hash)), NULL,
                  NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST)
        return fail(op, rc, "user %s@%s already exists", name, tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "user", arg(op, "user"));
    if (rc == IOT_OK)
        rc = result_str(op, "role", role);
    return rc;
}

static int user_remove(struct admin_op *op)
{
    char name[NAME_BUF], tenant[NAME_BUF];
    struct ref u;
    long long rules = 0;
    int rc = parse_user(op, name, tenant);
    if (rc == IOT_OK)
        rc = find_user(op, tenant, name, &u);
    if (rc == IOT_OK)
        rc = count(op, RULES_OF_USER, SQL_PARAMS(sql_int(u.id)), &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM users WHERE id = ?", SQL_PARAMS(sql_int(u.id)), NULL,
                      NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = result_str(op, "user", arg(op, "user"));
    if (rc == IOT_OK)
        rc = result_num(op, "rules_removed", (double)rules);
    return rc;
}

static int user_passwd(struct admin_op *op)
{
    char name[NAME_BUF], tenant[NAME_BUF], hash[PASSWORD_HASH_MAX];
    struct ref u;
    int rc = parse_user(op, name, tenant);
    if (rc == IOT_OK)
        rc = find_user(op, tenant, name, &u);
    if (rc == IOT_OK)
        rc = hash_password(op, hash, sizeof(hash));
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "UPDATE users SET password_hash = ? WHERE id = ?",
                      SQL_PARAMS(sql_str(hash), sql_int(u.id)), NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = result_str(op, "user", arg(op, "user"));
    return rc;
}

/* ---- groups ---- */

static int group_add(struct admin_op *op)
{
    const char *name = arg(op, "name"), *tenant = arg(op, "tenant"), *kind = arg(op, "kind");
    struct ref t;
    if (reg_group_kind_parse(kind) < 0)
        return fail(op, IOT_EINVAL, "group kind must be device or user, not '%s'",
                    kind ? kind : "");
    int rc = find_tenant(op, tenant, &t);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "group:%s", name);
    rc = sql_exec(op->conn, "INSERT INTO tenant_groups (tenant_id, name, kind) VALUES (?, ?, ?)",
                  SQL_PARAMS(sql_int(t.id), sql_str(name), sql_str(kind)), NULL, NULL, op->err,
                  op->errlen);
    if (rc == IOT_EEXIST)
        return fail(op, rc, "group %s already exists in tenant %s", name, tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = result_str(op, "kind", kind);
    return rc;
}

static int group_remove(struct admin_op *op)
{
    const char *name = arg(op, "name"), *tenant = arg(op, "tenant");
    struct ref g;
    long long rules = 0;
    int rc = find_group(op, tenant, name, &g);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "group:%s", name);
    rc = count(op, RULES_OF_GROUP, SQL_PARAMS(sql_int(g.id), sql_int(g.id)), &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM tenant_groups WHERE id = ?", SQL_PARAMS(sql_int(g.id)),
                      NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "name", name);
    if (rc == IOT_OK)
        rc = result_num(op, "rules_removed", (double)rules);
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
        rc = find_device(op, member, &m);
        if (rc == IOT_OK && m.tenant_id != g->tenant_id)
            rc = fail(op, IOT_ECROSS, "device %s belongs to tenant %s, not to %s", member, m.tenant,
                      g->tenant);
        return rc;
    }
    rc = find_user(op, g->tenant, member, &m);
    *member_id = m.id;
    return rc;
}

static int group_member_change(struct admin_op *op, bool add)
{
    const char *group = arg(op, "group"), *member = arg(op, "member"), *tenant = arg(op, "tenant");
    struct ref g;
    long long user_id;
    unsigned long long affected = 0;
    int rc = find_group(op, tenant, group, &g);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "group:%s", group);
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
        return fail(op, rc, "%s is already a member of group %s", member, group);
    if (rc == IOT_OK && !add && affected == 0)
        return fail(op, IOT_ENOTFOUND, "%s is not a member of group %s", member, group);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "group", group);
    if (rc == IOT_OK)
        rc = result_str(op, "member", member);
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

/* ---- access rules ---- */

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
        return fail(op, IOT_EINVAL, "%s '%s' must be written kind:NAME", what, text);
    memcpy(kind, text, (size_t)(colon - text));
    kind[colon - text] = '\0';
    char other[NAME_BUF];
    const char *rest = colon + 1;
    if (strchr(rest, '@')) {
        if (!reg_split_address(rest, name, NAME_BUF, other, sizeof(other)))
            return fail(op, IOT_EINVAL, "%s '%s' is malformed", what, text);
        if (strcmp(other, tenant) != 0)
            return fail(op, IOT_ECROSS, "%s %s is in tenant %s, but the rule is in tenant %s", what,
                        text, other, tenant);
    } else {
        snprintf(name, NAME_BUF, "%s", rest);
    }
    if (!ctl_value_valid(CTL_ARG_NAME, name))
        return fail(op, IOT_EINVAL, "%s '%s' does not name anything valid", what, text);
    return IOT_OK;
}

/* A device named by a rule must be in the rule's tenant. */
static int rule_device(struct admin_op *op, const char *tenant, struct endpoint *e)
{
    int rc = find_device(op, e->name, &e->ref);
    if (rc == IOT_OK && strcmp(e->ref.tenant, tenant) != 0)
        rc = fail(op, IOT_ECROSS, "device %s belongs to tenant %s, not to %s", e->name,
                  e->ref.tenant, tenant);
    return rc;
}

static int parse_subject(struct admin_op *op, const char *tenant, struct endpoint *e)
{
    char kind[16];
    const char *text = arg(op, "subject");
    int rc = split_endpoint(op, "subject", text, tenant, kind, e->name);
    if (rc != IOT_OK)
        return rc;
    e->kind = reg_subject_kind_parse(kind);
    switch (e->kind) {
    case REG_SUBJECT_USER:
        return find_user(op, tenant, e->name, &e->ref);
    case REG_SUBJECT_DEVICE:
        return rule_device(op, tenant, e);
    case REG_SUBJECT_GROUP:
        return find_group(op, tenant, e->name, &e->ref);
    }
    return fail(op, IOT_EINVAL, "subject '%s' must be user:NAME, device:ID or group:NAME", text);
}

static int parse_target(struct admin_op *op, const char *tenant, struct endpoint *e)
{
    char kind[16];
    const char *text = arg(op, "target");
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
        return find_type(op, tenant, e->name, &e->ref);
    case REG_TARGET_GROUP:
        rc = find_group(op, tenant, e->name, &e->ref);
        if (rc == IOT_OK && strcmp(e->ref.extra, "device") != 0)
            rc = fail(op, IOT_EINVAL, "group %s holds users; a target group must hold devices",
                      e->name);
        return rc;
    case REG_TARGET_ANY:
        break;
    }
    return fail(op, IOT_EINVAL, "target '%s' must be device:ID, type:NAME, group:NAME or any",
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
        rc = count(op,
                   "SELECT COUNT(*) FROM message_types m JOIN devices d ON d.type_id = m.type_id "
                   "WHERE d.id = ? AND m.name = ?",
                   SQL_PARAMS(sql_str(t->name), sql_str(message)), &n);
        break;
    case REG_TARGET_TYPE:
        rc = count(op, "SELECT COUNT(*) FROM message_types WHERE type_id = ? AND name = ?",
                   SQL_PARAMS(sql_int(t->ref.id), sql_str(message)), &n);
        break;
    default:
        rc = count(op,
                   "SELECT COUNT(*) FROM message_types m JOIN device_types ty ON ty.id = m.type_id "
                   "WHERE ty.tenant_id = ? AND m.name = ?",
                   SQL_PARAMS(sql_int(tenant_id), sql_str(message)), &n);
        break;
    }
    if (rc == IOT_OK && n == 0)
        rc = fail(op, IOT_ENOTFOUND, "message type %s is not in the catalogue of %s %s", message,
                  t->kind == REG_TARGET_DEVICE ? "device"
                  : t->kind == REG_TARGET_TYPE ? "type"
                                               : "any device type of tenant",
                  t->kind == REG_TARGET_DEVICE || t->kind == REG_TARGET_TYPE ? t->name
                                                                             : arg(op, "tenant"));
    return rc;
}

static int access_grant(struct admin_op *op)
{
    const char *tenant = arg(op, "tenant"), *message = arg(op, "message");
    struct endpoint s = {0}, t = {0};
    struct ref te;
    unsigned long long id = 0;
    long long existing = 0;
    int rc = find_tenant(op, tenant, &te);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    if (message && (rc = check_message_name(op, message)) != IOT_OK)
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
        return fail(op, IOT_EEXIST, "rule %lld already grants this", existing);
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
    set_target(op, "rule:%llu", id);
    char subject[100], target[100];
    snprintf(subject, sizeof(subject), "%s:%s", subject_kind, s.name);
    if (t.kind == REG_TARGET_ANY)
        snprintf(target, sizeof(target), "any");
    else
        snprintf(target, sizeof(target), "%s:%s", target_kind, t.name);
    rc = result_num(op, "rule", (double)id);
    if (rc == IOT_OK)
        rc = result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = result_str(op, "subject", subject);
    if (rc == IOT_OK)
        rc = result_str(op, "target", target);
    if (rc == IOT_OK)
        rc = result_str(op, "message", message ? message : "any");
    return rc;
}

static int access_revoke(struct admin_op *op)
{
    const char *tenant = arg(op, "tenant");
    long long id = ctl_get_int(op->args, "rule", 0);
    struct ref r;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    set_target(op, "rule:%lld", id);
    int rc = lookup(op,
                    "SELECT r.id, r.tenant_id, te.name, NULL FROM access_rules r "
                    "JOIN tenants te ON te.id = r.tenant_id WHERE r.id = ?",
                    SQL_PARAMS(sql_int(id)), &r);
    if (rc == IOT_ENOTFOUND)
        return fail(op, rc, "no access rule %lld", id);
    if (rc == IOT_OK && strcmp(r.tenant, tenant) != 0)
        return fail(op, IOT_ECROSS, "access rule %lld belongs to another tenant than %s", id,
                    tenant);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM access_rules WHERE id = ?", SQL_PARAMS(sql_int(id)),
                      NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = result_num(op, "rule", (double)id);
    return rc;
}

/* ---- the audit log ---- */

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
    const char *tenant = arg(op, "tenant");
    long long limit = ctl_get_int(op->args, "limit", CHANGES_DEFAULT);
    if (limit < 1 || limit > CHANGES_MAX)
        return fail(op, IOT_EINVAL, "--limit must be between 1 and %d", CHANGES_MAX);
    cJSON *list = cJSON_AddArrayToObject(op->result, "changes");
    if (!list)
        return fail(op, IOT_ENOMEM, "out of memory");
    int rc = sql_query(op->conn,
                       "SELECT id, UNIX_TIMESTAMP(at), actor, action, tenant, target, detail "
                       "FROM admin_audit WHERE ? IS NULL OR tenant = ? ORDER BY id DESC LIMIT ?",
                       SQL_PARAMS(sql_str(tenant), sql_str(tenant), sql_int(limit)), change_row,
                       list, op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return fail(op, rc, "out of memory");
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
              cJSON_AddStringToObject(o, "reason", sql_row_str(r, 4));
    return ok ? IOT_OK : IOT_ENOMEM;
}

/* The connection history sessions record (sql/002): any id, registered or not, since an
 * operator chasing failed logins needs the ids that are not. */
static int device_history(struct admin_op *op)
{
    long long limit = ctl_get_int(op->args, "limit", CHANGES_DEFAULT);
    if (limit < 1 || limit > CHANGES_MAX)
        return fail(op, IOT_EINVAL, "--limit must be between 1 and %d", CHANGES_MAX);
    cJSON *list = cJSON_AddArrayToObject(op->result, "history");
    if (!list)
        return fail(op, IOT_ENOMEM, "out of memory");
    int rc = sql_query(op->conn,
                       "SELECT UNIX_TIMESTAMP(at), event, address, transport, reason "
                       "FROM device_connections WHERE device_id = ? ORDER BY id DESC LIMIT ?",
                       SQL_PARAMS(sql_str(arg(op, "id")), sql_int(limit)), history_row, list,
                       op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return fail(op, rc, "out of memory");
    return rc;
}

/* The relay audit (sql/008, audit_query.c), filtered, newest first. */
static int relay_audit_list(struct admin_op *op)
{
    long long limit = ctl_get_int(op->args, "limit", CHANGES_DEFAULT);
    const char *since_text = arg(op, "since");
    long long since = since_text ? ctl_parse_time(since_text) : 0;
    if (limit < 1 || limit > CHANGES_MAX)
        return fail(op, IOT_EINVAL, "--limit must be between 1 and %d", CHANGES_MAX);
    if (since < 0)
        return fail(op, IOT_EINVAL,
                    "--since: expected a UTC time such as 2026-05-01T12:00:00 "
                    "or an age such as 15m, 2h, 3d");
    cJSON *list = cJSON_AddArrayToObject(op->result, "audit");
    if (!list)
        return fail(op, IOT_ENOMEM, "out of memory");
    struct audit_filter f = {.tenant = arg(op, "tenant"),
                             .device = arg(op, "device"),
                             .sender = arg(op, "user"),
                             .outcome = arg(op, "outcome"),
                             .since_s = since,
                             .limit = (unsigned)limit};
    int rc = audit_query(op->conn, &f, list, op->err, op->errlen);
    if (rc == IOT_ENOMEM)
        return fail(op, rc, "out of memory");
    return rc;
}

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

static const admin_fn handlers[CTL_COMMAND_COUNT] = {
    [CTL_TENANT_ADD] = tenant_add,
    [CTL_TENANT_REMOVE] = tenant_remove,
    [CTL_TYPE_ADD] = type_add,
    [CTL_TYPE_REMOVE] = type_remove,
    [CTL_MESSAGE_ADD] = message_add,
    [CTL_MESSAGE_REMOVE] = message_remove,
    [CTL_DEVICE_ADD] = device_add,
    [CTL_DEVICE_REMOVE] = device_remove,
    [CTL_DEVICE_ENABLE] = device_enable,
    [CTL_DEVICE_DISABLE] = device_disable,
    [CTL_DEVICE_REKEY] = device_rekey,
    [CTL_USER_ADD] = user_add,
    [CTL_USER_REMOVE] = user_remove,
    [CTL_USER_PASSWD] = user_passwd,
    [CTL_GROUP_ADD] = group_add,
    [CTL_GROUP_REMOVE] = group_remove,
    [CTL_GROUP_MEMBER_ADD] = group_member_add,
    [CTL_GROUP_MEMBER_REMOVE] = group_member_remove,
    [CTL_ACCESS_GRANT] = access_grant,
    [CTL_ACCESS_REVOKE] = access_revoke,
    [CTL_CHANGES_LIST] = changes_list,
    [CTL_DEVICE_HISTORY] = device_history,
    [CTL_AUDIT] = relay_audit_list,
};

bool admin_handles(const struct ctl_command *cmd)
{
    return cmd && (unsigned)cmd->id < CTL_COMMAND_COUNT && handlers[cmd->id] != NULL;
}

int admin_execute(MYSQL *conn, const struct admin_ctx *ctx, const struct ctl_command *cmd,
                  const cJSON *args, cJSON **result, char *err, size_t errlen)
{
    struct admin_op op = {.conn = conn, .ctx = ctx, .args = args, .err = err, .errlen = errlen};
    bool in_tx = false;
    int rc;
    *result = NULL;
    if (!admin_handles(cmd)) {
        snprintf(err, errlen, "%s is not an administrative command", cmd ? cmd->name : "?");
        return IOT_EINVAL;
    }
    rc = ctl_args_validate(cmd, args, err, errlen);
    if (rc != IOT_OK)
        goto out;
    op.result = cJSON_CreateObject();
    if (!op.result) {
        rc = fail(&op, IOT_ENOMEM, "out of memory");
        goto out;
    }
    rc = sql_begin(conn, false, err, errlen);
    if (rc != IOT_OK)
        goto out;
    in_tx = true;
    rc = handlers[cmd->id](&op);
    if (rc == IOT_OK && (cmd->flags & CTL_MUTATES))
        rc = write_audit(&op, cmd);
    if (rc == IOT_OK)
        rc = sql_commit(conn, err, errlen);
    if (rc == IOT_OK)
        in_tx = false;
out:
    if (in_tx)
        sql_rollback(conn);
    if (rc != IOT_OK) {
        cJSON_Delete(op.result);
        return rc;
    }
    *result = op.result;
    return IOT_OK;
}
