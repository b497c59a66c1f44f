/*
 * load.c - registry_load: build a snapshot from MariaDB.
 *
 * One prepared SELECT per table, all inside one read-only transaction started WITH CONSISTENT
 * SNAPSHOT, so the tables are read as of one instant even while admin changes commit on other
 * connections (a membership can never name a device that the devices SELECT did not see). Each
 * row goes through the same builder the unit tests use (registry_internal.h); snapshot_finish
 * then resolves and indexes. The snapshot's last_seen values are those of the moment of the
 * load: sessions update last_seen in the database without republishing.
 */
#include "registry_internal.h"

#include "iot_error.h"
#include "db/sql_stmt.h"

#include <stdio.h>
#include <string.h>

static int tenant_row(void *ctx, const struct sql_row *r)
{
    struct reg_tenant t = {
        .id = (uint32_t)sql_row_int(r, 0, 0),
        .name = sql_row_str(r, 1),
        .display_name = sql_row_str(r, 2),
        .created = sql_row_int(r, 3, 0),
    };
    return snapshot_add_tenant(ctx, &t);
}

static int type_row(void *ctx, const struct sql_row *r)
{
    struct reg_type t = {
        .id = (uint32_t)sql_row_int(r, 0, 0),
        .tenant_id = (uint32_t)sql_row_int(r, 1, 0),
        .name = sql_row_str(r, 2),
        .description = sql_row_str(r, 3),
        .created = sql_row_int(r, 4, 0),
    };
    return snapshot_add_type(ctx, &t);
}

static int message_row(void *ctx, const struct sql_row *r)
{
    struct reg_message m = {
        .id = (uint32_t)sql_row_int(r, 0, 0),
        .type_id = (uint32_t)sql_row_int(r, 1, 0),
        .name = sql_row_str(r, 2),
        .direction = reg_direction_parse(sql_row_str(r, 3)) == REG_DIR_EVENT ? REG_DIR_EVENT
                                                                             : REG_DIR_COMMAND,
        .args = sql_row_str(r, 4),
        .timeout_ms = (uint32_t)sql_row_int(r, 5, 5000),
        .description = sql_row_str(r, 6),
        .start_message = sql_row_str(r, 7),
        .stop_message = sql_row_str(r, 8),
    };
    return snapshot_add_message(ctx, &m);
}

static int device_row(void *ctx, const struct sql_row *r)
{
    struct reg_device d = {
        .id = sql_row_str(r, 0),
        .tenant_id = (uint32_t)sql_row_int(r, 1, 0),
        .type_id = (uint32_t)sql_row_int(r, 2, 0),
        .display_name = sql_row_str(r, 3),
        .auth = reg_auth_parse(sql_row_str(r, 4)) == REG_AUTH_ATECC508A ? REG_AUTH_ATECC508A
                                                                        : REG_AUTH_HMAC,
        .enabled = sql_row_int(r, 7, 0) != 0,
        .created = sql_row_int(r, 8, 0),
        .last_seen = sql_row_int(r, 9, 0),
        .last_address = sql_row_str(r, 10),
    };
    size_t len;
    const uint8_t *sealed = sql_row_blob(r, 5, &len);
    if (sealed && len <= sizeof(d.sealed)) {
        memcpy(d.sealed, sealed, len);
        d.sealed_len = len;
    }
    const uint8_t *serial = sql_row_blob(r, 6, &len);
    if (serial && len == REG_SERIAL_LEN) {
        memcpy(d.serial, serial, len);
        d.has_serial = true;
    }
    return snapshot_add_device(ctx, &d);
}

static int user_row(void *ctx, const struct sql_row *r)
{
    int role = reg_role_parse(sql_row_str(r, 3));
    struct reg_user u = {
        .id = (uint32_t)sql_row_int(r, 0, 0),
        .tenant_id = (uint32_t)sql_row_int(r, 1, 0),
        .name = sql_row_str(r, 2),
        /* an unknown role (a newer schema's?) gets the least privilege */
        .role = role < 0 ? REG_ROLE_VIEWER : (enum reg_role)role,
        .password_hash = sql_row_str(r, 4),
        .created = sql_row_int(r, 5, 0),
    };
    return snapshot_add_user(ctx, &u);
}

static int group_row(void *ctx, const struct sql_row *r)
{
    struct reg_group g = {
        .id = (uint32_t)sql_row_int(r, 0, 0),
        .tenant_id = (uint32_t)sql_row_int(r, 1, 0),
        .name = sql_row_str(r, 2),
        .kind = reg_group_kind_parse(sql_row_str(r, 3)) == REG_GROUP_USER ? REG_GROUP_USER
                                                                          : REG_GROUP_DEVICE,
        .created = sql_row_int(r, 4, 0),
    };
    return snapshot_add_group(ctx, &g);
}

static int group_device_row(void *ctx, const struct sql_row *r)
{
    struct reg_member_row m = {.group_id = (uint32_t)sql_row_int(r, 0, 0),
                               .device_id = sql_row_str(r, 1)};
    return snapshot_add_member(ctx, &m);
}

static int group_user_row(void *ctx, const struct sql_row *r)
{
    struct reg_member_row m = {.group_id = (uint32_t)sql_row_int(r, 0, 0),
                               .user_id = (uint32_t)sql_row_int(r, 1, 0)};
    return snapshot_add_member(ctx, &m);
}

static int rule_row(void *ctx, const struct sql_row *r)
{
    int subject = reg_subject_kind_parse(sql_row_str(r, 2));
    int target = reg_target_kind_parse(sql_row_str(r, 6));
    if (subject < 0 || target < 0)
        return IOT_EINVAL;
    enum reg_subject_kind sk = (enum reg_subject_kind)subject;
    struct reg_rule rule = {
        .id = sql_row_int(r, 0, 0),
        .tenant_id = (uint32_t)sql_row_int(r, 1, 0),
        .subject_kind = sk,
        .subject_id = (uint32_t)sql_row_int(r, sk == REG_SUBJECT_GROUP ? 5 : 3, 0),
        .subject_device_id = sql_row_str(r, 4),
        .target_kind = (enum reg_target_kind)target,
        .target_device_id = sql_row_str(r, 7),
        .target_id = (uint32_t)sql_row_int(r, target == REG_TARGET_TYPE ? 8 : 9, 0),
        .message = sql_row_str(r, 10),
        .created = sql_row_int(r, 11, 0),
        .created_by = sql_row_str(r, 12),
    };
    return snapshot_add_rule(ctx, &rule);
}

static const struct {
    const char *sql;
    sql_row_fn row;
} load_steps[] = {
    {"SELECT id, name, display_name, UNIX_TIMESTAMP(created_at) FROM tenants", tenant_row},
    {"SELECT id, tenant_id, name, description, UNIX_TIMESTAMP(created_at) FROM device_types",
     type_row},
    {"SELECT id, type_id, name, direction, args_spec, timeout_ms, description, start_message, "
     "stop_message FROM message_types",
     message_row},
    {"SELECT id, tenant_id, type_id, display_name, auth, secret, atecc_serial, enabled, "
     "UNIX_TIMESTAMP(created_at), UNIX_TIMESTAMP(last_seen), last_address FROM devices",
     device_row},
    {"SELECT id, tenant_id, name, role, password_hash, UNIX_TIMESTAMP(created_at) FROM users",
     user_row},
    {"SELECT id, tenant_id, name, kind, UNIX_TIMESTAMP(created_at) FROM tenant_groups", group_row},
    {"SELECT group_id, device_id FROM group_devices", group_device_row},
    {"SELECT group_id, user_id FROM group_users", group_user_row},
    {"SELECT id, tenant_id, subject_kind, subject_user_id, subject_device_id, subject_group_id, "
     "target_kind, target_device_id, target_type_id, target_group_id, message, "
     "UNIX_TIMESTAMP(created_at), created_by FROM access_rules",
     rule_row},
};

int registry_load(MYSQL *conn, registry_snapshot_t **out, char *err, size_t errlen)
{
    int rc;
    bool in_tx = false;
    registry_snapshot_t *snap = snapshot_builder_new();
    *out = NULL;
    if (!snap) {
        snprintf(err, errlen, "out of memory loading the registry");
        rc = IOT_ENOMEM;
        goto out;
    }
    rc = sql_begin(conn, true, err, errlen);
    if (rc != IOT_OK)
        goto out;
    in_tx = true;
    for (size_t i = 0; i < sizeof(load_steps) / sizeof(load_steps[0]); i++) {
        rc =
            sql_query(conn, load_steps[i].sql, SQL_NO_PARAMS, load_steps[i].row, snap, err, errlen);
        if (rc == IOT_ENOMEM || rc == IOT_EINVAL)
            snprintf(err, errlen, "loading the registry: %s",
                     rc == IOT_ENOMEM ? "out of memory" : "unexpected value in the database");
        if (rc != IOT_OK)
            goto out;
    }
    rc = sql_commit(conn, err, errlen);
    if (rc != IOT_OK)
        goto out;
    in_tx = false;
    rc = snapshot_finish(snap, err, errlen);
    if (rc != IOT_OK)
        goto out;
    *out = snap;
    snap = NULL;
out:
    if (in_tx)
        sql_rollback(conn);
    snapshot_destroy(snap);
    return rc;
}
