/*
 * load.c - build snapshots from MariaDB: registry_load reads everything (start-up, and the
 * fallback); registry_refresh publishes what one committed change touched, reading only that:
 * the rows of the changed devices by key, or every table but devices (the core, small), and
 * building on the current snapshot (snapshot_derive, snapshot_builder_on).
 *
 * One prepared SELECT per table, all inside one read-only transaction started WITH CONSISTENT
 * SNAPSHOT, so the tables are read as of one instant even while admin changes commit on other
 * connections (a membership can never name a device that the devices SELECT did not see). Each
 * row goes through the same builder the unit tests use (registry_internal.h); snapshot_finish
 * then resolves and indexes. The snapshot's last_seen values are those of the moment of the
 * load: sessions update last_seen in the database without republishing.
 */
#include "registry_internal.h"

#include "base/log.h"
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
        .incarnation = (uint64_t)sql_row_int(r, 11, 0),
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

#define DEVICE_SELECT                                                                              \
    "SELECT id, tenant_id, type_id, display_name, auth, secret, atecc_serial, enabled, "           \
    "UNIX_TIMESTAMP(created_at), UNIX_TIMESTAMP(last_seen), last_address, incarnation FROM "       \
    "devices"

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
    {DEVICE_SELECT, device_row},
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

/* Run the load steps into snap in one consistent read transaction; with_devices false skips
 * the devices table (snap has them from another snapshot). */
static int run_steps(MYSQL *conn, registry_snapshot_t *snap, bool with_devices, char *err,
                     size_t errlen)
{
    bool in_tx = false;
    int rc = sql_begin(conn, true, err, errlen);
    if (rc != IOT_OK)
        goto out;
    in_tx = true;
    for (size_t i = 0; i < sizeof(load_steps) / sizeof(load_steps[0]); i++) {
        if (!with_devices && load_steps[i].row == device_row)
            continue;
        rc =
            sql_query(conn, load_steps[i].sql, SQL_NO_PARAMS, load_steps[i].row, snap, err, errlen);
        if (rc == IOT_ENOMEM || rc == IOT_EINVAL)
            snprintf(err, errlen, "loading the registry: %s",
                     rc == IOT_ENOMEM ? "out of memory" : "unexpected value in the database");
        if (rc != IOT_OK)
            goto out;
    }
    rc = sql_commit(conn, err, errlen);
    if (rc == IOT_OK)
        in_tx = false;
out:
    if (in_tx)
        sql_rollback(conn);
    return rc;
}

int registry_load(MYSQL *conn, registry_snapshot_t **out, char *err, size_t errlen)
{
    int rc;
    registry_snapshot_t *snap = snapshot_builder_new();
    *out = NULL;
    if (!snap) {
        snprintf(err, errlen, "out of memory loading the registry");
        rc = IOT_ENOMEM;
        goto out;
    }
    rc = run_steps(conn, snap, true, err, errlen);
    if (rc != IOT_OK)
        goto out;
    rc = snapshot_finish(snap, err, errlen);
    if (rc != IOT_OK)
        goto out;
    *out = snap;
    snap = NULL;
out:
    snapshot_destroy(snap);
    return rc;
}

/* Everything but the devices from the database, the devices from prev. */
static int load_core(MYSQL *conn, const registry_snapshot_t *prev, registry_snapshot_t **out,
                     char *err, size_t errlen)
{
    int rc = IOT_ENOMEM;
    registry_snapshot_t *snap = snapshot_builder_on(prev);
    *out = NULL;
    if (!snap) {
        snprintf(err, errlen, "out of memory loading the registry");
        goto out;
    }
    rc = run_steps(conn, snap, false, err, errlen);
    if (rc == IOT_OK)
        rc = snapshot_finish_on(snap, prev, err, errlen);
    if (rc != IOT_OK)
        goto out;
    *out = snap;
    snap = NULL;
out:
    snapshot_destroy(snap);
    return rc;
}

struct device_read {
    registry_snapshot_t *snap;
    int rc;
};

static int changed_device_row(void *ctx, const struct sql_row *r)
{
    struct device_read *read = ctx;
    /* device_row adds to a builder; here the row replaces the device in a derived snapshot */
    registry_snapshot_t *builder = snapshot_builder_new();
    if (!builder)
        return IOT_ENOMEM;
    int rc = device_row(builder, r);
    if (rc == IOT_OK)
        rc = snapshot_put_device(read->snap, builder->staged[0]);
    snapshot_destroy(builder);
    read->rc = rc;
    return rc == IOT_OK ? 1 : rc;
}

/* prev with the devices ids as the database holds them now (added, changed or removed), and,
 * when a removed one was named by a membership or a rule (gone with it, by cascade), the core
 * read again. */
static int load_devices(MYSQL *conn, const registry_snapshot_t *prev, const char *const *ids,
                        size_t n, bool core, registry_snapshot_t **out, char *err, size_t errlen)
{
    int rc = IOT_ENOMEM;
    bool removed_referenced = false;
    registry_snapshot_t *snap = snapshot_derive(prev), *rebuilt = NULL;
    *out = NULL;
    if (!snap) {
        snprintf(err, errlen, "out of memory loading the registry");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct device_read read = {snap, IOT_OK};
        rc = sql_query(conn, DEVICE_SELECT " WHERE id = ?", SQL_PARAMS(sql_str(ids[i])),
                       changed_device_row, &read, err, errlen);
        if (rc == 1)
            continue;
        if (rc != IOT_OK) {
            if (read.rc != IOT_OK)
                snprintf(err, errlen, "loading device %s: %s", ids[i], iot_strerror(read.rc));
            goto out;
        }
        rc = snapshot_remove_device(snap, ids[i]); /* no row: removed */
        if (rc == IOT_ENOTFOUND)
            rc = IOT_OK; /* never published: added and removed before this refresh */
        if (rc != IOT_OK)
            goto out;
        removed_referenced = removed_referenced || snapshot_device_referenced(prev, ids[i]);
    }
    rc = snapshot_derive_finish(snap);
    if (rc == IOT_OK && (core || removed_referenced)) {
        rc = load_core(conn, snap, &rebuilt, err, errlen);
        snapshot_destroy(snap);
        snap = rebuilt;
    }
    if (rc != IOT_OK)
        goto out;
    *out = snap;
    snap = NULL;
out:
    snapshot_destroy(snap);
    return rc;
}

int registry_refresh(registry_t *reg, MYSQL *conn, enum registry_refresh what,
                     const char *const *ids, size_t n, char *err, size_t errlen)
{
    registry_snapshot_t *prev = registry_acquire(reg), *next = NULL;
    int rc = IOT_EINVAL;
    char why[256] = "";
    if (registry_change_stale(reg))
        what = REGISTRY_REFRESH_FULL;
    if (what == REGISTRY_REFRESH_DEVICES || what == REGISTRY_REFRESH_DEVICES_CORE)
        rc = load_devices(conn, prev, ids, n, what == REGISTRY_REFRESH_DEVICES_CORE, &next, why,
                          sizeof(why));
    else if (what == REGISTRY_REFRESH_CORE)
        rc = load_core(conn, prev, &next, why, sizeof(why));
    if (rc != IOT_OK && what != REGISTRY_REFRESH_FULL)
        log_error("registry: the incremental refresh failed (%s); reloading it all", why);
    if (rc != IOT_OK)
        rc = registry_load(conn, &next, err, errlen);
    registry_release(prev);
    if (rc == IOT_OK)
        registry_publish(reg, next);
    else /* the published snapshot is behind the database: the next change reloads it all */
        registry_change_set_stale(reg, true);
    return rc;
}
