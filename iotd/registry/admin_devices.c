/*
 * admin_devices.c - the administrative commands of devices (device add|remove|enable|disable|
 * rekey|kick) and their sealed secrets; see admin.c for how they run.
 */
#include "admin_internal.h"

#include "ctl_proto.h"
#include "iot_error.h"
#include "crypto/secretbox.h"
#include "registry_internal.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The secret for add/rekey: --secret (exactly 32 bytes of hex) or 32 fresh random bytes;
 * sealed with the device id as associated data. */
static int make_secret(struct admin_op *op, const char *id, uint8_t secret[REG_SECRET_LEN],
                       uint8_t sealed[REG_SEALED_LEN])
{
    const char *given = admin_arg(op, "secret");
    int rc;
    if (given) {
        if (!admin_hex_decode(given, secret, REG_SECRET_LEN))
            return admin_fail(op, IOT_EINVAL, "--secret must be exactly 32 bytes (64 hex digits)");
    } else {
        rc = secretbox_random(secret, REG_SECRET_LEN);
        if (rc != IOT_OK)
            return admin_fail(op, rc, "cannot generate a random secret");
    }
    rc = secretbox_seal(op->ctx->secret_key, secret, REG_SECRET_LEN, (const uint8_t *)id,
                        strlen(id), sealed);
    return rc == IOT_OK ? IOT_OK : admin_fail(op, rc, "cannot seal the device secret");
}

static int result_secret(struct admin_op *op, const uint8_t secret[REG_SECRET_LEN])
{
    char hex[2 * REG_SECRET_LEN + 1];
    admin_hex_encode(secret, REG_SECRET_LEN, hex);
    int rc = admin_result_str(op, "secret", hex);
    explicit_bzero(hex, sizeof(hex));
    return rc;
}

static int device_add(struct admin_op *op)
{
    const char *id = admin_arg(op, "id"), *tenant = admin_arg(op, "tenant"),
               *type = admin_arg(op, "type");
    const char *auth = admin_arg(op, "auth") ? admin_arg(op, "auth") : "hmac";
    const char *serial_hex = admin_arg(op, "serial");
    bool enabled = !ctl_get_bool(op->args, "disabled", 0);
    uint8_t secret[REG_SECRET_LEN], sealed[REG_SEALED_LEN], serial[REG_SERIAL_LEN];
    struct ref t;
    int kind = reg_auth_parse(auth);
    int rc = admin_check_length(op, "display_name", DISPLAY_MAX);
    if (rc != IOT_OK)
        goto out;
    if (kind < 0) {
        rc = admin_fail(op, IOT_EINVAL, "auth must be hmac or atecc508a, not '%s'", auth);
        goto out;
    }
    if (kind == REG_AUTH_ATECC508A && !serial_hex) {
        rc = admin_fail(op, IOT_EINVAL,
                        "an atecc508a device needs --serial (the chip's 9-byte serial "
                        "number, 18 hex digits)");
        goto out;
    }
    if (kind == REG_AUTH_HMAC && serial_hex) {
        rc = admin_fail(op, IOT_EINVAL, "--serial only applies to --auth atecc508a");
        goto out;
    }
    if (serial_hex && !admin_hex_decode(serial_hex, serial, sizeof(serial))) {
        rc = admin_fail(op, IOT_EINVAL, "--serial must be exactly 9 bytes (18 hex digits)");
        goto out;
    }
    rc = admin_find_type(op, tenant, type, &t);
    if (rc != IOT_OK)
        goto out;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    admin_set_target(op, "device:%s", id);
    rc = make_secret(op, id, secret, sealed);
    if (rc != IOT_OK)
        goto out;
    rc = sql_exec(op->conn,
                  "INSERT INTO devices (id, tenant_id, type_id, display_name, auth, secret, "
                  "atecc_serial, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  SQL_PARAMS(sql_str(id), sql_int(t.tenant_id), sql_int(t.id),
                             sql_str(admin_arg(op, "display_name")), sql_str(auth),
                             sql_blob(sealed, sizeof(sealed)),
                             serial_hex ? sql_blob(serial, sizeof(serial)) : sql_str(NULL),
                             sql_int(enabled)),
                  NULL, NULL, op->err, op->errlen);
    if (rc == IOT_EEXIST) {
        /* ids are global: say so, since the duplicate may live in another tenant */
        rc = admin_fail(op, rc, "device %s already exists (device ids are unique across tenants)",
                        id);
        goto out;
    }
    if (rc == IOT_OK)
        rc = admin_note_device(op, id);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "id", id);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "tenant", tenant);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "type", type);
    if (rc == IOT_OK)
        rc = admin_result_str(op, "auth", auth);
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
    const char *id = admin_arg(op, "id");
    int rc = admin_find_device(op, id, d);
    if (rc != IOT_OK)
        return rc;
    snprintf(op->tenant, sizeof(op->tenant), "%s", d->tenant);
    admin_set_target(op, "device:%s", id);
    rc = admin_note_device(op, id);
    return rc == IOT_OK ? admin_result_str(op, "id", id) : rc;
}

static int device_remove(struct admin_op *op)
{
    struct ref d;
    long long rules = 0;
    int rc = device_target(op, &d);
    if (rc == IOT_OK)
        rc = admin_count(op, RULES_OF_DEVICE,
                         SQL_PARAMS(sql_str(admin_arg(op, "id")), sql_str(admin_arg(op, "id"))),
                         &rules);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM devices WHERE id = ?",
                      SQL_PARAMS(sql_str(admin_arg(op, "id"))), NULL, NULL, op->err, op->errlen);
    /* Its events stay (history is by name), but not its sequence high-water mark: a device
     * added again under this name starts counting at 1 and must not be taken for the old one
     * retransmitting (sql/009). Same transaction: the removal and the mark go together. */
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "DELETE FROM event_seq WHERE device_id = ?",
                      SQL_PARAMS(sql_str(admin_arg(op, "id"))), NULL, NULL, op->err, op->errlen);
    if (rc == IOT_OK)
        rc = admin_result_num(op, "rules_removed", (double)rules);
    return rc;
}

static int device_set_enabled(struct admin_op *op, bool enabled)
{
    struct ref d;
    int rc = device_target(op, &d);
    if (rc == IOT_OK)
        rc = sql_exec(op->conn, "UPDATE devices SET enabled = ? WHERE id = ?",
                      SQL_PARAMS(sql_int(enabled), sql_str(admin_arg(op, "id"))), NULL, NULL,
                      op->err, op->errlen);
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
    const char *id = admin_arg(op, "id");
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

/* Nothing changes in the registry: the device must exist, and the audit row says who ended
 * its session (control_commands.c ends it once this is committed). */
static int device_kick(struct admin_op *op)
{
    struct ref d;
    return device_target(op, &d);
}

const struct admin_handler admin_devices_handlers[] = {
    {CTL_DEVICE_ADD, device_add},       {CTL_DEVICE_REMOVE, device_remove},
    {CTL_DEVICE_ENABLE, device_enable}, {CTL_DEVICE_DISABLE, device_disable},
    {CTL_DEVICE_REKEY, device_rekey},   {CTL_DEVICE_KICK, device_kick},
    {CTL_COMMAND_COUNT, NULL},
};
