/*
 * test_registry_db.c - admin_execute, admin_apply and registry_load against a real MariaDB.
 *
 * The group setup (db_fixture.h) starts a throwaway MariaDB in a mkdtemp directory the way iotd
 * does and applies the compiled-in migrations of sql/, so the schema under test is exactly what
 * iotd runs. The tests then drive the
 * registry only through admin_execute (as the control server will), load snapshots with
 * registry_load and ask them questions: every mutating command, the refusals (duplicates, unknown
 * names, cross-tenant references, bad values, in-use rows), the audit log, the sealed device
 * secret, and a killed connection reported as IOT_EDB. Skipped, saying why, when mariadbd is not
 * installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "admin.h"
#include "db_fixture.h"
#include "audit_query.h"
#include "db/db.h"
#include "db/mariadb_local.h"
#include "iot_error.h"
#include "registry.h"
#include "registry_internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct db_migration db_migrations[];
extern const size_t db_migrations_count;

static int test_setup(void **state)
{
    if (!*state)
        skip();
    return 0;
}

/* Run one command; check its code; return the result (caller frees) or NULL. */
static cJSON *run(void **state, const char *name, const char *args_json, int want)
{
    struct fixture *f = *state;
    char err[300] = "";
    cJSON *args = cJSON_Parse(args_json), *result = NULL;
    const struct ctl_command *cmd = ctl_command_by_name(name);
    assert_non_null(args);
    assert_non_null(cmd);
    int rc = admin_execute(f->conn, &f->ctx, cmd, args, &result, err, sizeof(err));
    cJSON_Delete(args);
    if (rc != want)
        fail_msg("%s %s: got %s (%s), want %s", name, args_json, iot_error_name(rc), err,
                 iot_error_name(want));
    if (rc != IOT_OK && !err[0])
        fail_msg("%s: error without a sentence", name);
    if (rc != IOT_OK)
        printf("# %s -> %s: %s\n", name, iot_error_name(rc), err);
    return result;
}

static void ok(void **state, const char *name, const char *args_json)
{
    cJSON_Delete(run(state, name, args_json, IOT_OK));
}

static registry_snapshot_t *load(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    registry_snapshot_t *snap = NULL;
    int rc = registry_load(f->conn, &snap, err, sizeof(err));
    if (rc != IOT_OK)
        fail_msg("registry_load: %s", err);
    return snap;
}

static void test_tenants_types_catalogue(void **state)
{
    ok(state, "tenant.add", "{\"name\":\"acme\",\"display_name\":\"Acme Corp\"}");
    ok(state, "tenant.add", "{\"name\":\"beta\"}");
    run(state, "tenant.add", "{\"name\":\"acme\"}", IOT_EEXIST);
    ok(state, "type.add", "{\"name\":\"thermo\",\"tenant\":\"acme\"}");
    ok(state, "type.add", "{\"name\":\"thermo\",\"tenant\":\"beta\"}");
    run(state, "type.add", "{\"name\":\"thermo\",\"tenant\":\"acme\"}", IOT_EEXIST);
    run(state, "type.add", "{\"name\":\"x\",\"tenant\":\"nope\"}", IOT_ENOTFOUND);

    cJSON *r = run(state, "message.add",
                   "{\"type\":\"thermo\",\"name\":\"read_temp\",\"tenant\":\"acme\","
                   "\"args\":\"  unit:str? \",\"timeout_ms\":2000}",
                   IOT_OK);
    assert_string_equal(cJSON_GetObjectItem(r, "args")->valuestring, "unit:str?");
    cJSON_Delete(r);
    ok(state, "message.add",
       "{\"type\":\"thermo\",\"name\":\"set_point\",\"tenant\":\"acme\",\"args\":\"c:float\"}");
    ok(state, "message.add",
       "{\"type\":\"thermo\",\"name\":\"temp_changed\",\"tenant\":\"acme\","
       "\"direction\":\"event\"}");
    ok(state, "message.add", "{\"type\":\"thermo\",\"name\":\"read_temp\",\"tenant\":\"beta\"}");
    run(state, "message.add", "{\"type\":\"thermo\",\"name\":\"read_temp\",\"tenant\":\"acme\"}",
        IOT_EEXIST);
    run(state, "message.add", "{\"type\":\"thermo\",\"name\":\"ReadTemp\",\"tenant\":\"acme\"}",
        IOT_EINVAL);
    run(state, "message.add",
        "{\"type\":\"thermo\",\"name\":\"x\",\"tenant\":\"acme\",\"args\":\"a:long\"}", IOT_EINVAL);
    run(state, "message.add",
        "{\"type\":\"thermo\",\"name\":\"x\",\"tenant\":\"acme\",\"timeout_ms\":5}", IOT_EINVAL);
    run(state, "message.add",
        "{\"type\":\"thermo\",\"name\":\"x\",\"tenant\":\"acme\",\"direction\":\"both\"}",
        IOT_EINVAL);
    run(state, "message.add", "{\"type\":\"lamp\",\"name\":\"x\",\"tenant\":\"acme\"}",
        IOT_ENOTFOUND);
    ok(state, "message.add", "{\"type\":\"thermo\",\"name\":\"gone\",\"tenant\":\"acme\"}");
    ok(state, "message.remove", "{\"type\":\"thermo\",\"name\":\"gone\",\"tenant\":\"acme\"}");
    run(state, "message.remove", "{\"type\":\"thermo\",\"name\":\"gone\",\"tenant\":\"acme\"}",
        IOT_ENOTFOUND);
}

static void test_devices(void **state)
{
    struct fixture *f = *state;
    cJSON *r = run(state, "device.add",
                   "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"display_name\":"
                   "\"Hall\"}",
                   IOT_OK);
    const char *secret = cJSON_GetObjectItem(r, "secret")->valuestring;
    assert_int_equal(strlen(secret), 64);
    snprintf(f->dev1_secret, sizeof(f->dev1_secret), "%s", secret);
    cJSON_Delete(r);
    ok(state, "device.add", "{\"id\":\"dev2\",\"tenant\":\"acme\",\"type\":\"thermo\"}");
    ok(state, "device.add", "{\"id\":\"bdev\",\"tenant\":\"beta\",\"type\":\"thermo\"}");
    run(state, "device.add", "{\"id\":\"dev1\",\"tenant\":\"beta\",\"type\":\"thermo\"}",
        IOT_EEXIST);
    run(state, "device.add", "{\"id\":\"dev3\",\"tenant\":\"acme\",\"type\":\"lamp\"}",
        IOT_ENOTFOUND);
    run(state, "device.add",
        "{\"id\":\"chip1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"auth\":\"atecc508a\"}",
        IOT_EINVAL);
    run(state, "device.add",
        "{\"id\":\"chip1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"auth\":\"atecc508a\","
        "\"serial\":\"0123456789abcdef\"}",
        IOT_EINVAL);
    run(state, "device.add",
        "{\"id\":\"chip1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"serial\":"
        "\"0123456789abcdefee\"}",
        IOT_EINVAL);
    run(state, "device.add",
        "{\"id\":\"chip1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"auth\":\"tpm\"}", IOT_EINVAL);
    run(state, "device.add",
        "{\"id\":\"chip1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"secret\":\"00ff\"}",
        IOT_EINVAL);
    r = run(state, "device.add",
            "{\"id\":\"chip1\",\"tenant\":\"acme\",\"type\":\"thermo\",\"auth\":\"atecc508a\","
            "\"serial\":\"0123456789abcdefee\",\"secret\":"
            "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\","
            "\"disabled\":true}",
            IOT_OK);
    assert_string_equal(cJSON_GetObjectItem(r, "secret")->valuestring,
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    cJSON_Delete(r);
    ok(state, "device.disable", "{\"id\":\"dev2\"}");
    ok(state, "device.enable", "{\"id\":\"chip1\"}");
    run(state, "device.enable", "{\"id\":\"nope\"}", IOT_ENOTFOUND);
    run(state, "type.remove", "{\"name\":\"thermo\",\"tenant\":\"acme\"}", IOT_EINUSE);

    /* the sealed secret opens with the key and the device id, and matches what add printed */
    registry_snapshot_t *snap = load(state);
    uint8_t plain[REGISTRY_SECRET_LEN];
    char hex[65];
    assert_int_equal(registry_device_secret(snap, f->key, "dev1", plain), IOT_OK);
    for (int i = 0; i < REGISTRY_SECRET_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", plain[i]);
    assert_string_equal(hex, f->dev1_secret);
    uint8_t wrong[SECRETBOX_KEY_LEN] = {0};
    assert_int_equal(registry_device_secret(snap, wrong, "dev1", plain), IOT_EDENIED);
    struct registry_device_info info;
    assert_int_equal(registry_device_lookup(snap, "chip1", &info), IOT_OK);
    assert_true(info.atecc508a && info.enabled);
    assert_int_equal(info.serial[8], 0xee);
    assert_int_equal(registry_device_lookup(snap, "dev2", &info), IOT_OK);
    assert_false(info.enabled);
    registry_release(snap);

    /* rekey: a new secret, and the old one no longer is the device's */
    cJSON *k = run(state, "device.rekey", "{\"id\":\"dev1\"}", IOT_OK);
    assert_string_not_equal(cJSON_GetObjectItem(k, "secret")->valuestring, f->dev1_secret);
    cJSON_Delete(k);
}

static void test_users_groups(void **state)
{
    ok(state, "user.add", "{\"user\":\"alice@acme\",\"password\":\"correct horse battery\"}");
    ok(state, "user.add",
       "{\"user\":\"carol@acme\",\"role\":\"admin\",\"password\":\"correct horse battery\"}");
    ok(state, "user.add", "{\"user\":\"bob@beta\",\"password\":\"correct horse battery\"}");
    run(state, "user.add", "{\"user\":\"alice@acme\",\"password\":\"another password\"}",
        IOT_EEXIST);
    run(state, "user.add", "{\"user\":\"eve@acme\",\"password\":\"short\"}", IOT_EINVAL);
    run(state, "user.add", "{\"user\":\"eve\",\"password\":\"long enough pw\"}", IOT_EINVAL);
    run(state, "user.add",
        "{\"user\":\"eve@acme\",\"role\":\"root\",\"password\":\"long enough pw\"}", IOT_EINVAL);
    run(state, "user.add", "{\"user\":\"eve@nope\",\"password\":\"long enough pw\"}",
        IOT_ENOTFOUND);
    ok(state, "user.passwd", "{\"user\":\"alice@acme\",\"password\":\"new password here\"}");
    run(state, "user.passwd", "{\"user\":\"zed@acme\",\"password\":\"new password here\"}",
        IOT_ENOTFOUND);

    ok(state, "group.add", "{\"name\":\"ops\",\"tenant\":\"acme\",\"kind\":\"user\"}");
    ok(state, "group.add", "{\"name\":\"hall\",\"tenant\":\"acme\",\"kind\":\"device\"}");
    run(state, "group.add", "{\"name\":\"ops\",\"tenant\":\"acme\",\"kind\":\"user\"}", IOT_EEXIST);
    run(state, "group.add", "{\"name\":\"x\",\"tenant\":\"acme\",\"kind\":\"robot\"}", IOT_EINVAL);
    ok(state, "group.member.add", "{\"group\":\"ops\",\"member\":\"alice\",\"tenant\":\"acme\"}");
    run(state, "group.member.add", "{\"group\":\"ops\",\"member\":\"alice\",\"tenant\":\"acme\"}",
        IOT_EEXIST);
    run(state, "group.member.add", "{\"group\":\"ops\",\"member\":\"bob\",\"tenant\":\"acme\"}",
        IOT_ENOTFOUND);
    ok(state, "group.member.add", "{\"group\":\"hall\",\"member\":\"dev2\",\"tenant\":\"acme\"}");
    run(state, "group.member.add", "{\"group\":\"hall\",\"member\":\"bdev\",\"tenant\":\"acme\"}",
        IOT_ECROSS);
    ok(state, "group.member.add", "{\"group\":\"hall\",\"member\":\"chip1\",\"tenant\":\"acme\"}");
    ok(state, "group.member.remove",
       "{\"group\":\"hall\",\"member\":\"chip1\",\"tenant\":\"acme\"}");
    run(state, "group.member.remove",
        "{\"group\":\"hall\",\"member\":\"chip1\",\"tenant\":\"acme\"}", IOT_ENOTFOUND);
}

static void test_access_rules(void **state)
{
    cJSON *r = run(state, "access.grant",
                   "{\"subject\":\"group:ops\",\"target\":\"type:thermo\",\"tenant\":\"acme\","
                   "\"message\":\"read_temp\"}",
                   IOT_OK);
    int rule = cJSON_GetObjectItem(r, "rule")->valueint;
    assert_true(rule > 0);
    cJSON_Delete(r);
    run(state, "access.grant",
        "{\"subject\":\"group:ops\",\"target\":\"type:thermo\",\"tenant\":\"acme\","
        "\"message\":\"read_temp\"}",
        IOT_EEXIST);
    ok(state, "access.grant",
       "{\"subject\":\"user:alice\",\"target\":\"device:dev1\",\"tenant\":\"acme\"}");
    ok(state, "access.grant",
       "{\"subject\":\"device:dev2\",\"target\":\"group:hall\",\"tenant\":\"acme\"}");
    ok(state, "access.grant", "{\"subject\":\"user:bob\",\"target\":\"any\",\"tenant\":\"beta\"}");
    /* cross-tenant: a user, a device, a target device of another tenant */
    run(state, "access.grant",
        "{\"subject\":\"user:bob@beta\",\"target\":\"device:dev1\",\"tenant\":\"acme\"}",
        IOT_ECROSS);
    run(state, "access.grant",
        "{\"subject\":\"device:bdev\",\"target\":\"any\",\"tenant\":\"acme\"}", IOT_ECROSS);
    run(state, "access.grant",
        "{\"subject\":\"user:alice\",\"target\":\"device:bdev\",\"tenant\":\"acme\"}", IOT_ECROSS);
    run(state, "access.grant", "{\"subject\":\"user:bob\",\"target\":\"any\",\"tenant\":\"acme\"}",
        IOT_ENOTFOUND);
    run(state, "access.grant",
        "{\"subject\":\"user:alice\",\"target\":\"group:ops\",\"tenant\":\"acme\"}", IOT_EINVAL);
    run(state, "access.grant", "{\"subject\":\"robot:x\",\"target\":\"any\",\"tenant\":\"acme\"}",
        IOT_EINVAL);
    run(state, "access.grant",
        "{\"subject\":\"user:alice\",\"target\":\"type:thermo\",\"tenant\":\"acme\","
        "\"message\":\"reboot\"}",
        IOT_ENOTFOUND);

    registry_snapshot_t *snap = load(state);
    struct access_decision d;
    assert_int_equal(registry_access_check(snap, "alice@acme", "dev2", "read_temp", &d), IOT_OK);
    assert_true(d.allow);
    assert_int_equal(d.rule_id, rule);
    printf("# alice@acme -> dev2 read_temp: %s\n", d.reason);
    assert_int_equal(registry_access_check(snap, "alice@acme", "dev2", "set_point", &d), IOT_OK);
    assert_false(d.allow);
    assert_int_equal(registry_access_check(snap, "bob@beta", "dev1", "read_temp", &d), IOT_OK);
    assert_false(d.allow);
    assert_int_equal(registry_access_check(snap, "carol@acme", "dev2", "set_point", &d), IOT_OK);
    assert_true(d.allow);
    assert_string_equal(d.reason, "role admin");

    /* queries never leak secrets or password hashes */
    char err[200];
    cJSON *result, *args = cJSON_Parse("{\"id\":\"dev1\"}");
    assert_int_equal(
        registry_query(snap, ctl_command_by_name("device.show"), args, &result, err, sizeof(err)),
        IOT_OK);
    char *text = cJSON_PrintUnformatted(result);
    assert_null(strstr(text, "secret"));
    assert_non_null(strstr(text, "\"display_name\":\"Hall\""));
    free(text);
    cJSON_Delete(result);
    cJSON_Delete(args);
    args = cJSON_Parse("{\"user\":\"alice@acme\"}");
    assert_int_equal(
        registry_query(snap, ctl_command_by_name("user.show"), args, &result, err, sizeof(err)),
        IOT_OK);
    text = cJSON_PrintUnformatted(result);
    assert_null(strstr(text, "argon2"));
    assert_non_null(strstr(text, "\"groups\":[\"ops\"]"));
    free(text);
    cJSON_Delete(result);
    cJSON_Delete(args);
    struct registry_user_info user;
    assert_int_equal(registry_user_lookup(snap, "alice@acme", &user), IOT_OK);
    assert_non_null(strstr(user.password_hash, "$argon2id$"));
    registry_release(snap);

    /* revoke: not from another tenant */
    char json[128];
    snprintf(json, sizeof(json), "{\"rule\":%d,\"tenant\":\"beta\"}", rule);
    run(state, "access.revoke", json, IOT_ECROSS);
    snprintf(json, sizeof(json), "{\"rule\":%d,\"tenant\":\"acme\"}", rule);
    ok(state, "access.revoke", json);
    run(state, "access.revoke", json, IOT_ENOTFOUND);
}

static void test_removals_cascade(void **state)
{
    /* removing dev2 takes its rule and membership with it */
    cJSON *r = run(state, "device.remove", "{\"id\":\"dev2\"}", IOT_OK);
    assert_int_equal(cJSON_GetObjectItem(r, "rules_removed")->valueint, 1);
    cJSON_Delete(r);
    run(state, "device.remove", "{\"id\":\"dev2\"}", IOT_ENOTFOUND);
    registry_snapshot_t *snap = load(state);
    const struct reg_group *hall = snapshot_group(snap, "acme", "hall");
    assert_non_null(hall);
    assert_int_equal(hall->nmembers, 0);
    registry_release(snap);

    r = run(state, "group.remove", "{\"name\":\"ops\",\"tenant\":\"acme\"}", IOT_OK);
    assert_int_equal(cJSON_GetObjectItem(r, "rules_removed")->valueint, 0);
    cJSON_Delete(r);
    ok(state, "user.remove", "{\"user\":\"carol@acme\"}");
    run(state, "user.remove", "{\"user\":\"carol@acme\"}", IOT_ENOTFOUND);

    run(state, "tenant.remove", "{\"name\":\"beta\"}", IOT_EINUSE);
    r = run(state, "tenant.remove", "{\"name\":\"beta\",\"force\":true}", IOT_OK);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "removed"), "devices")->valueint,
                     1);
    cJSON_Delete(r);
    run(state, "tenant.remove", "{\"name\":\"beta\"}", IOT_ENOTFOUND);
    snap = load(state);
    size_t tenants, devices, users, rules;
    registry_counts(snap, &tenants, &devices, &users, &rules);
    assert_int_equal(tenants, 1);
    assert_int_equal(devices, 2); /* dev1, chip1 */
    assert_int_equal(users, 1);   /* alice */
    assert_int_equal(rules, 1);   /* alice -> device:dev1 */
    registry_release(snap);
}

static void test_audit_log(void **state)
{
    cJSON *r = run(state, "changes.list", "{\"limit\":1000}", IOT_OK);
    cJSON *changes = cJSON_GetObjectItem(r, "changes");
    int n = cJSON_GetArraySize(changes);
    assert_true(n >= 30);
    char *text = cJSON_PrintUnformatted(changes);
    /* secrets and passwords never reach the audit log */
    assert_null(strstr(text, "correct horse"));
    assert_null(strstr(text, "000102030405"));
    assert_null(strstr(text, "\"secret\""));
    free(text);
    /* newest first: the last change was the forced tenant removal */
    cJSON *last = cJSON_GetArrayItem(changes, 0);
    assert_string_equal(cJSON_GetObjectItem(last, "action")->valuestring, "tenant.remove");
    assert_string_equal(cJSON_GetObjectItem(last, "actor")->valuestring, "uid=0(root)");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "detail"), "force")));
    cJSON_Delete(r);

    r = run(state, "changes.list", "{\"tenant\":\"acme\",\"limit\":3}", IOT_OK);
    changes = cJSON_GetObjectItem(r, "changes");
    assert_int_equal(cJSON_GetArraySize(changes), 3);
    cJSON *item;
    cJSON_ArrayForEach(item, changes)
    {
        assert_string_equal(cJSON_GetObjectItem(item, "tenant")->valuestring, "acme");
    }
    cJSON_Delete(r);
    run(state, "changes.list", "{\"limit\":0}", IOT_EINVAL);

    /* a refused change leaves no audit row: count before and after */
    r = run(state, "changes.list", "{\"limit\":1000}", IOT_OK);
    int before = cJSON_GetArraySize(cJSON_GetObjectItem(r, "changes"));
    cJSON_Delete(r);
    run(state, "tenant.add", "{\"name\":\"acme\"}", IOT_EEXIST);
    r = run(state, "changes.list", "{\"limit\":1000}", IOT_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "changes")), before);
    cJSON_Delete(r);
}

/* admin_apply: a committed change is published as a new snapshot; a refused change and a read
 * of the logs publish nothing. */
static void test_apply_publishes(void **state)
{
    struct fixture *f = *state;
    registry_t *reg = NULL;
    cJSON *args = cJSON_Parse("{\"name\":\"delta\"}"), *result = NULL;
    cJSON *list_args = cJSON_Parse("{\"limit\":1}");
    char err[300] = "";
    assert_int_equal(registry_new(&reg), IOT_OK);
    assert_int_equal(registry_generation(reg), 0);

    assert_int_equal(admin_apply(reg, f->conn, &f->ctx, ctl_command_by_name("tenant.add"), args,
                                 &result, err, sizeof(err)),
                     IOT_OK);
    cJSON_Delete(result);
    assert_int_equal(registry_generation(reg), 1);
    registry_snapshot_t *snap = registry_acquire(reg);
    assert_non_null(snapshot_tenant(snap, "delta"));
    registry_release(snap);

    assert_int_equal(admin_apply(reg, f->conn, &f->ctx, ctl_command_by_name("tenant.add"), args,
                                 &result, err, sizeof(err)),
                     IOT_EEXIST);
    assert_null(result);
    assert_int_equal(admin_apply(reg, f->conn, &f->ctx, ctl_command_by_name("changes.list"),
                                 list_args, &result, err, sizeof(err)),
                     IOT_OK);
    assert_non_null(result);
    cJSON_Delete(result);
    assert_int_equal(registry_generation(reg), 1);

    cJSON_Delete(args);
    cJSON_Delete(list_args);
    registry_free(reg);
}

/* A connection killed under admin_execute is reported as IOT_EDB, after rollback. */
static void test_lost_connection(void **state)
{
    struct fixture *f = *state;
    MYSQL *other = db_fixture_connect(f);
    assert_non_null(other);
    char kill_sql[64];
    snprintf(kill_sql, sizeof(kill_sql), "KILL %lu", mysql_thread_id(f->conn));
    assert_int_equal(mysql_query(other, kill_sql), 0);
    run(state, "tenant.add", "{\"name\":\"gamma\"}", IOT_EDB);
    mysql_close(f->conn);
    f->conn = other;
    registry_snapshot_t *snap = load(state);
    assert_null(snapshot_tenant(snap, "gamma"));
    registry_release(snap);
}

/* sql/008 on a database that already has a relay audit (schema 7, one row per message): each
 * row becomes a block of one, the view shows them as they were (a NULL latency stays NULL, a
 * quote in a message name survives the JSON), and iotctl's reader returns them newest first. */
static void test_audit_upgrade(void **state)
{
    struct fixture *f = *state;
    struct db_target t;
    MYSQL *c = NULL;
    char err[512];
    int version = 0;
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->mariadb), "iotd_upgrade", &t), 0);
    if (db_connect(&t, true, &c, err, sizeof(err)) != 0)
        fail_msg("connect: %s", err);
    size_t before_blocks = 0;
    while (before_blocks < db_migrations_count && db_migrations[before_blocks].version < 8)
        before_blocks++;
    assert_int_equal(db_migrate_list(c, db_migrations, before_blocks, &version, err, sizeof(err)),
                     0);
    assert_int_equal(version, 7);
    assert_int_equal(
        mysql_query(c, "INSERT INTO relay_audit (at, tenant, sender, device, message, outcome, "
                       "latency_us) VALUES ('2026-11-30 10:00:00.250', 'acme', 'alice@acme', "
                       "'dev1', 'echo', 'ok', 1234), ('2026-11-30 10:00:01.500', 'acme', "
                       "'bob@acme', 'dev2', 'say\"hi', 'denied', NULL)"),
        0);
    if (db_migrate_list(c, db_migrations, db_migrations_count, &version, err, sizeof(err)) != 0)
        fail_msg("upgrade: %s", err);
    assert_int_equal(version, db_schema_latest());

    assert_int_equal(mysql_query(c, "SELECT COUNT(*), SUM(records) FROM relay_audit_block"), 0);
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = mysql_fetch_row(res);
    assert_string_equal(row[0], "2");
    assert_string_equal(row[1], "2");
    mysql_free_result(res);
    assert_int_equal(mysql_query(c, "SELECT at, sender, device, message, outcome, latency_us "
                                    "FROM relay_audit ORDER BY at"),
                     0);
    res = mysql_store_result(c);
    row = mysql_fetch_row(res);
    assert_string_equal(row[0], "2026-11-30 10:00:00.250");
    assert_string_equal(row[3], "echo");
    assert_string_equal(row[5], "1234");
    row = mysql_fetch_row(res);
    assert_string_equal(row[1], "bob@acme");
    assert_string_equal(row[3], "say\"hi");
    assert_string_equal(row[4], "denied");
    assert_null(row[5]);
    mysql_free_result(res);

    cJSON *list = cJSON_CreateArray();
    struct audit_filter all = {.limit = 10};
    assert_int_equal(audit_query(c, &all, list, err, sizeof(err)), IOT_OK);
    assert_int_equal(cJSON_GetArraySize(list), 2);
    cJSON *newest = cJSON_GetArrayItem(list, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(newest, "at")),
                        "2026-11-30T10:00:01.500Z");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(newest, "message")), "say\"hi");
    assert_null(cJSON_GetObjectItem(newest, "latency_ms"));
    cJSON *oldest = cJSON_GetArrayItem(list, 1);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(oldest, "latency_ms")) == 1.234);
    cJSON_Delete(list);
    list = cJSON_CreateArray();
    struct audit_filter denied = {.outcome = "denied", .device = "dev2", .limit = 10};
    assert_int_equal(audit_query(c, &denied, list, err, sizeof(err)), IOT_OK);
    assert_int_equal(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
    mysql_close(c);
    db_target_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tenants_types_catalogue, test_setup),
        cmocka_unit_test_setup(test_devices, test_setup),
        cmocka_unit_test_setup(test_users_groups, test_setup),
        cmocka_unit_test_setup(test_access_rules, test_setup),
        cmocka_unit_test_setup(test_removals_cascade, test_setup),
        cmocka_unit_test_setup(test_audit_log, test_setup),
        cmocka_unit_test_setup(test_apply_publishes, test_setup),
        cmocka_unit_test_setup(test_audit_upgrade, test_setup),
        cmocka_unit_test_setup(test_lost_connection, test_setup),
    };
    return cmocka_run_group_tests(tests, db_fixture_setup, db_fixture_teardown);
}
