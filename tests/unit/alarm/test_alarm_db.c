/*
 * test_alarm_db.c - alarm rules, the alarm lifecycle and the writer against a real MariaDB.
 *
 * The group setup starts a throwaway MariaDB in a mkdtemp directory the way iotd does
 * (db/mariadb_local.h), applies the compiled-in migrations of sql/ (so the schema under test is
 * exactly what iotd runs), and builds a small registry through admin_execute: tenants acme and
 * beta, types thermo (events temp_changed and heartbeat, command read_temp) and lamp (no
 * events), devices, a device group and a user group. The tests then drive alarm_db.h: rule
 * validation, listing and loading, raise / duplicate raise / clear / raise again, acknowledgement,
 * the list filters, the open alarms for restore, the open-alarm uniqueness of the schema itself,
 * and the writer (in order, and retrying through an outage). Skipped, saying why, when mariadbd is
 * not installed. The tests share one database and run in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "admin.h"
#include "alarm/alarm_db.h"
#include "alarm/alarm_writer.h"
#include "crypto/secretbox.h"
#include "db/db.h"
#include "db/mariadb_local.h"
#include "db/sql_stmt.h"
#include "iot_error.h"

#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define START_TIMEOUT_S 90
#define T0              1700000000000LL

struct fixture {
    char dir[64];
    uv_loop_t loop;
    mariadb_local_t *mariadb;
    struct db_target target;
    MYSQL *conn;
    uint8_t key[SECRETBOX_KEY_LEN];
    struct admin_ctx ctx;
};

static bool have_mariadbd(void)
{
    return access("/usr/sbin/mariadbd", X_OK) == 0 || access("/usr/bin/mariadbd", X_OK) == 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void admin(struct fixture *f, const char *name, const char *args_json)
{
    char err[300] = "";
    cJSON *args = cJSON_Parse(args_json), *result = NULL;
    const struct ctl_command *cmd = ctl_command_by_name(name);
    assert_non_null(args);
    assert_non_null(cmd);
    int rc = admin_execute(f->conn, &f->ctx, cmd, args, &result, err, sizeof(err));
    cJSON_Delete(args);
    cJSON_Delete(result);
    if (rc != IOT_OK)
        fail_msg("%s %s: %s", name, args_json, err);
}

static int group_setup(void **state)
{
    char err[1024];
    int version = 0;
    if (!have_mariadbd()) {
        fprintf(stderr, "# skipping: mariadbd is not installed\n");
        *state = NULL;
        return 0;
    }
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotd-alarmtest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    time_t t0 = time(NULL);
    if (mariadb_local_start(&f->mariadb, &f->loop, f->dir, START_TIMEOUT_S * 1000, err,
                            sizeof(err)) != 0)
        fail_msg("mariadb: %s", err);
    assert_int_equal(db_target_for_socket(mariadb_local_socket(f->mariadb), "iotd", &f->target), 0);
    if (db_connect(&f->target, true, &f->conn, err, sizeof(err)) != 0 ||
        db_migrate(f->conn, &version, err, sizeof(err)) != 0)
        fail_msg("schema: %s", err);
    assert_int_equal(version, db_schema_latest());
    fprintf(stderr, "# mariadbd ready with schema %d in %lds\n", version, (long)(time(NULL) - t0));
    for (size_t i = 0; i < sizeof(f->key); i++)
        f->key[i] = (uint8_t)(i * 5 + 3);
    f->ctx.secret_key = f->key;
    f->ctx.actor = "uid=0(root)";

    admin(f, "tenant.add", "{\"name\":\"acme\"}");
    admin(f, "tenant.add", "{\"name\":\"beta\"}");
    admin(f, "type.add", "{\"name\":\"thermo\",\"tenant\":\"acme\"}");
    admin(f, "type.add", "{\"name\":\"lamp\",\"tenant\":\"acme\"}");
    admin(f, "type.add", "{\"name\":\"thermo\",\"tenant\":\"beta\"}");
    admin(f, "message.add",
          "{\"type\":\"thermo\",\"name\":\"temp_changed\",\"tenant\":\"acme\","
          "\"direction\":\"event\",\"args\":\"temp:float\"}");
    admin(f, "message.add",
          "{\"type\":\"thermo\",\"name\":\"heartbeat\",\"tenant\":\"acme\","
          "\"direction\":\"event\"}");
    admin(f, "message.add", "{\"type\":\"thermo\",\"name\":\"read_temp\",\"tenant\":\"acme\"}");
    admin(f, "message.add",
          "{\"type\":\"thermo\",\"name\":\"temp_changed\",\"tenant\":\"beta\","
          "\"direction\":\"event\",\"args\":\"temp:float\"}");
    admin(f, "device.add", "{\"id\":\"dev1\",\"tenant\":\"acme\",\"type\":\"thermo\"}");
    admin(f, "device.add", "{\"id\":\"dev2\",\"tenant\":\"acme\",\"type\":\"lamp\"}");
    admin(f, "device.add", "{\"id\":\"bdev1\",\"tenant\":\"beta\",\"type\":\"thermo\"}");
    admin(f, "group.add", "{\"name\":\"ops\",\"tenant\":\"acme\",\"kind\":\"device\"}");
    admin(f, "group.add", "{\"name\":\"admins\",\"tenant\":\"acme\",\"kind\":\"user\"}");
    admin(f, "group.member.add", "{\"group\":\"ops\",\"member\":\"dev1\",\"tenant\":\"acme\"}");
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    if (f->conn)
        mysql_close(f->conn);
    if (f->mariadb)
        mariadb_local_stop(f->mariadb, 30000);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    db_target_free(&f->target);
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int test_setup(void **state)
{
    if (!*state)
        skip();
    return 0;
}

/* ---- rules ---- */

static struct alarm_rule rule(const char *name, const char *scope, const char *target,
                              const char *event)
{
    struct alarm_rule r = {.severity = ALARM_SEVERITY_MAJOR, .enabled = true};
    snprintf(r.name, sizeof(r.name), "%s", name);
    assert_true(alarm_scope_parse(scope, &r.scope));
    snprintf(r.target, sizeof(r.target), "%s", target ? target : "");
    snprintf(r.event, sizeof(r.event), "%s", event);
    return r;
}

static struct alarm_rule hot_rule(const char *name, const char *scope, const char *target)
{
    struct alarm_rule r = rule(name, scope, target, "temp_changed");
    snprintf(r.field, sizeof(r.field), "temp");
    r.op = ALARM_OP_GT;
    r.threshold = 30.1;
    r.hysteresis = 0.5;
    r.for_ms = 2000;
    return r;
}

static uint64_t add_rule(void **state, const char *tenant, const struct alarm_rule *r, int want)
{
    struct fixture *f = *state;
    char err[300] = "";
    uint64_t id = 0;
    int rc = alarm_rule_add(f->conn, tenant, r, "alice@acme", &id, err, sizeof(err));
    if (rc != want)
        fail_msg("rule %s: got %s (%s), want %s", r->name, iot_error_name(rc), err,
                 iot_error_name(want));
    if (rc != IOT_OK) {
        if (!err[0])
            fail_msg("rule %s: error without a sentence", r->name);
        printf("# rule %s -> %s: %s\n", r->name, iot_error_name(rc), err);
    } else {
        assert_true(id > 0);
    }
    return id;
}

static void test_rule_add_validation(void **state)
{
    struct alarm_rule r;
    add_rule(state, "acme", &(struct alarm_rule){0}, IOT_EINVAL);
    r = hot_rule("hot", "tenant", NULL);
    uint64_t hot = add_rule(state, "acme", &r, IOT_OK);
    add_rule(state, "acme", &r, IOT_EEXIST);
    add_rule(state, "beta", &r, IOT_OK); /* names are per tenant */
    add_rule(state, "nope", &r, IOT_ENOTFOUND);
    r = hot_rule("hot-dev1", "device", "dev1");
    assert_true(add_rule(state, "acme", &r, IOT_OK) > hot);
    r = hot_rule("hot-thermo", "type", "thermo");
    add_rule(state, "acme", &r, IOT_OK);
    r = hot_rule("hot-ops", "group", "ops");
    add_rule(state, "acme", &r, IOT_OK);
    r = rule("quiet", "type", "thermo", "heartbeat");
    r.silence_s = 300;
    r.severity = ALARM_SEVERITY_CRITICAL;
    add_rule(state, "acme", &r, IOT_OK);

    /* unknown or foreign targets */
    r = hot_rule("x1", "device", "nodev");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    r = hot_rule("x2", "device", "bdev1"); /* beta's device */
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    r = hot_rule("x3", "type", "fridge");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    r = hot_rule("x4", "group", "nogroup");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    r = hot_rule("x5", "group", "admins"); /* a group of users */
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x6", "tenant", "dev1"); /* tenant scope takes no target */
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x7", "device", NULL);
    add_rule(state, "acme", &r, IOT_EINVAL);
    /* events: unknown, a command, not in the target type's catalogue */
    r = hot_rule("x8", "tenant", NULL);
    snprintf(r.event, sizeof(r.event), "nothing");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    snprintf(r.event, sizeof(r.event), "read_temp");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    r = hot_rule("x9", "type", "lamp");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    r = hot_rule("x10", "device", "dev2");
    add_rule(state, "acme", &r, IOT_ENOTFOUND);
    /* threshold rule values */
    r = hot_rule("x11", "tenant", NULL);
    r.field[0] = '\0';
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x12", "tenant", NULL);
    r.op = ALARM_OP_NONE;
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x13", "tenant", NULL);
    r.threshold = NAN;
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x14", "tenant", NULL);
    r.hysteresis = -1;
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x15", "tenant", NULL);
    r.op = ALARM_OP_EQ;
    add_rule(state, "acme", &r, IOT_EINVAL); /* hysteresis with == */
    r.hysteresis = 0;
    add_rule(state, "acme", &r, IOT_OK);
    r = hot_rule("x16", "tenant", NULL);
    r.for_ms = ALARM_FOR_MS_MAX + 1;
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("bad name!", "tenant", NULL);
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x17", "tenant", NULL);
    r.severity = (enum alarm_severity)9;
    add_rule(state, "acme", &r, IOT_EINVAL);
    /* a field the event's catalogue does not declare, in each kind of scope; a declared one
     * that is a prefix or suffix of another does not count */
    r = hot_rule("x21", "tenant", NULL);
    snprintf(r.field, sizeof(r.field), "humidity");
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x22", "device", "dev1");
    snprintf(r.field, sizeof(r.field), "tem");
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x23", "type", "thermo");
    snprintf(r.field, sizeof(r.field), "emp");
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = hot_rule("x24", "group", "ops");
    snprintf(r.field, sizeof(r.field), "float");
    add_rule(state, "acme", &r, IOT_EINVAL);
    /* silence rule values */
    r = rule("x18", "tenant", NULL, "heartbeat");
    r.silence_s = 60;
    snprintf(r.field, sizeof(r.field), "temp");
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = rule("x19", "tenant", NULL, "heartbeat");
    r.silence_s = 60;
    r.for_ms = 10;
    add_rule(state, "acme", &r, IOT_EINVAL);
    r = rule("x20", "tenant", NULL, "heartbeat");
    r.silence_s = ALARM_SILENCE_S_MAX + 1;
    add_rule(state, "acme", &r, IOT_EINVAL);

    /* the audit log has the additions */
    struct fixture *f = *state;
    long long n = 0;
    char err[200];
    assert_int_equal(sql_query_int(f->conn,
                                   "SELECT COUNT(*) FROM admin_audit WHERE action = "
                                   "'alarm.rule.add' AND actor = 'alice@acme'",
                                   SQL_NO_PARAMS, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 7);
}

static cJSON *find_by(cJSON *rows, const char *key, const char *value)
{
    cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        cJSON *v = cJSON_GetObjectItem(row, key);
        if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
            return row;
    }
    return NULL;
}

static void test_rules_list_and_load(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    cJSON *rows = NULL;
    assert_int_equal(alarm_rules_list(f->conn, "acme", &rows, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(rows), 6);
    cJSON *hot = find_by(rows, "name", "hot");
    assert_non_null(hot);
    assert_string_equal(cJSON_GetObjectItem(hot, "scope")->valuestring, "tenant");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(hot, "target")));
    assert_string_equal(cJSON_GetObjectItem(hot, "event")->valuestring, "temp_changed");
    assert_string_equal(cJSON_GetObjectItem(hot, "field")->valuestring, "temp");
    assert_string_equal(cJSON_GetObjectItem(hot, "op")->valuestring, ">");
    assert_true(cJSON_GetObjectItem(hot, "threshold")->valuedouble == 30.1);
    assert_true(cJSON_GetObjectItem(hot, "hysteresis")->valuedouble == 0.5);
    assert_int_equal(cJSON_GetObjectItem(hot, "for_ms")->valueint, 2000);
    assert_int_equal(cJSON_GetObjectItem(hot, "silence_s")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(hot, "severity")->valuestring, "major");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(hot, "enabled")));
    assert_string_equal(cJSON_GetObjectItem(hot, "created_by")->valuestring, "alice@acme");
    const char *created = cJSON_GetObjectItem(hot, "created_at")->valuestring;
    assert_int_equal(strlen(created), 24); /* 2024-05-01T12:00:00.000Z */
    assert_int_equal(created[23], 'Z');
    cJSON *quiet = find_by(rows, "name", "quiet");
    assert_non_null(quiet);
    assert_string_equal(cJSON_GetObjectItem(quiet, "target")->valuestring, "thermo");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(quiet, "field")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(quiet, "op")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(quiet, "threshold")));
    assert_int_equal(cJSON_GetObjectItem(quiet, "silence_s")->valueint, 300);
    cJSON_Delete(rows);
    assert_int_equal(alarm_rules_list(f->conn, "beta", &rows, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    cJSON_Delete(rows);
    assert_int_equal(alarm_rules_list(f->conn, "nope", &rows, err, sizeof(err)), IOT_ENOTFOUND);
    assert_null(rows);

    struct alarm_rule *rules = NULL;
    size_t n = 0;
    assert_int_equal(alarm_rules_load(f->conn, &rules, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 7);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rules[i].tenant, "acme") == 0 && strcmp(rules[i].name, "hot-ops") == 0) {
            seen++;
            assert_int_equal(rules[i].scope, ALARM_SCOPE_GROUP);
            assert_string_equal(rules[i].target, "ops");
            assert_int_equal(rules[i].op, ALARM_OP_GT);
            assert_true(rules[i].threshold == 30.1);
            assert_true(rules[i].hysteresis == 0.5);
            assert_int_equal(rules[i].for_ms, 2000);
            assert_true(rules[i].enabled);
        }
        if (strcmp(rules[i].name, "quiet") == 0) {
            seen++;
            assert_int_equal(rules[i].silence_s, 300);
            assert_int_equal(rules[i].op, ALARM_OP_NONE);
            assert_string_equal(rules[i].field, "");
            assert_int_equal(rules[i].severity, ALARM_SEVERITY_CRITICAL);
        }
        if (strcmp(rules[i].tenant, "beta") == 0)
            seen++;
        if (i > 0)
            assert_true(rules[i].id > rules[i - 1].id);
    }
    assert_int_equal(seen, 3);
    free(rules);
}

/* ---- the lifecycle ---- */

static struct alarm_transition transition(enum alarm_transition_kind kind, enum alarm_source source,
                                          uint64_t rule_id, const char *device, const char *name,
                                          int64_t ts)
{
    struct alarm_transition t = {.kind = kind,
                                 .source = source,
                                 .rule_id = rule_id,
                                 .severity = ALARM_SEVERITY_MAJOR,
                                 .ts_ms = ts};
    snprintf(t.tenant, sizeof(t.tenant), "acme");
    snprintf(t.device, sizeof(t.device), "%s", device);
    snprintf(t.name, sizeof(t.name), "%s", name);
    snprintf(t.value, sizeof(t.value), kind == ALARM_RAISE ? "31.5" : "29");
    snprintf(t.message, sizeof(t.message), "%s", kind == ALARM_RAISE ? "temp 31.5 > 30.1" : "back");
    return t;
}

static uint64_t apply(void **state, const struct alarm_transition *t, int want)
{
    struct fixture *f = *state;
    char err[300] = "";
    uint64_t id = 12345;
    int rc = alarm_apply(f->conn, t, &id, err, sizeof(err));
    if (rc != want)
        fail_msg("apply: got %s (%s), want %s", iot_error_name(rc), err, iot_error_name(want));
    return id;
}

static uint64_t rule_id(void **state, const char *tenant, const char *name)
{
    struct fixture *f = *state;
    long long id = 0;
    char err[200];
    assert_int_equal(sql_query_int(f->conn,
                                   "SELECT r.id FROM alarm_rules r JOIN tenants t ON "
                                   "t.id = r.tenant_id WHERE t.name = ? AND r.name = ?",
                                   SQL_PARAMS(sql_str(tenant), sql_str(name)), &id, err,
                                   sizeof(err)),
                     0);
    return (uint64_t)id;
}

static cJSON *list(void **state, const char *tenant, enum alarm_state_filter st, const char *device,
                   int64_t since, unsigned limit)
{
    struct fixture *f = *state;
    char err[300] = "";
    cJSON *rows = NULL;
    struct alarm_filter filter = {.state = st, .device = device, .since_ms = since, .limit = limit};
    int rc = alarm_list(f->conn, tenant, &filter, &rows, err, sizeof(err));
    if (rc != IOT_OK)
        fail_msg("list: %s", err);
    return rows;
}

static cJSON *row_by_id(cJSON *rows, uint64_t id)
{
    cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        if ((uint64_t)cJSON_GetObjectItem(row, "id")->valuedouble == id)
            return row;
    }
    return NULL;
}

static const char *str(cJSON *row, const char *key)
{
    cJSON *v = cJSON_GetObjectItem(row, key);
    assert_non_null(v);
    return cJSON_IsNull(v) ? NULL : v->valuestring;
}

static void test_apply_lifecycle(void **state)
{
    uint64_t hot = rule_id(state, "acme", "hot");
    struct alarm_transition raise =
        transition(ALARM_RAISE, ALARM_SOURCE_RULE, hot, "dev1", "hot", T0 + 1234);
    struct alarm_transition clear =
        transition(ALARM_CLEAR, ALARM_SOURCE_RULE, hot, "dev1", "hot", T0 + 5000);
    uint64_t a1 = apply(state, &raise, IOT_OK);
    assert_true(a1 > 0);
    raise.ts_ms += 100;
    assert_int_equal(apply(state, &raise, IOT_OK), a1); /* open already: the same alarm */
    cJSON *rows = list(state, "acme", ALARM_FILTER_ALL, NULL, 0, 0);
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    cJSON *row = row_by_id(rows, a1);
    assert_non_null(row);
    assert_string_equal(str(row, "device"), "dev1");
    assert_string_equal(str(row, "source"), "rule");
    assert_int_equal((uint64_t)cJSON_GetObjectItem(row, "rule")->valuedouble, hot);
    assert_string_equal(str(row, "name"), "hot");
    assert_string_equal(str(row, "severity"), "major");
    assert_string_equal(str(row, "state"), "raised");
    assert_string_equal(str(row, "raised_at"), "2023-11-14T22:13:21.234Z");
    assert_null(str(row, "acked_at"));
    assert_null(str(row, "acked_by"));
    assert_null(str(row, "cleared_at"));
    assert_string_equal(str(row, "value"), "31.5");
    assert_string_equal(str(row, "message"), "temp 31.5 > 30.1");
    cJSON_Delete(rows);

    assert_int_equal(apply(state, &clear, IOT_OK), a1);
    assert_int_equal(apply(state, &clear, IOT_OK), 0); /* nothing open */
    rows = list(state, "acme", ALARM_FILTER_ALL, NULL, 0, 0);
    row = row_by_id(rows, a1);
    assert_string_equal(str(row, "state"), "cleared");
    assert_string_equal(str(row, "cleared_at"), "2023-11-14T22:13:25.000Z");
    assert_string_equal(str(row, "clear_value"), "29");
    assert_string_equal(str(row, "clear_message"), "back");
    cJSON_Delete(rows);

    /* raised again: a new occurrence */
    raise.ts_ms = T0 + 10000;
    uint64_t a2 = apply(state, &raise, IOT_OK);
    assert_true(a2 > a1);
    /* the same name from the device is another alarm */
    struct alarm_transition dev =
        transition(ALARM_RAISE, ALARM_SOURCE_DEVICE, 0, "dev1", "hot", T0 + 11000);
    uint64_t a3 = apply(state, &dev, IOT_OK);
    assert_true(a3 > a2);
    rows = list(state, "acme", ALARM_FILTER_OPEN, NULL, 0, 0);
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    row = row_by_id(rows, a3);
    assert_string_equal(str(row, "source"), "device");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(row, "rule")));
    cJSON_Delete(rows);

    /* a clear whose clock is behind the raise does not end before it began */
    clear.ts_ms = T0;
    assert_int_equal(apply(state, &clear, IOT_OK), a2);
    rows = list(state, "acme", ALARM_FILTER_CLEARED, NULL, 0, 0);
    row = row_by_id(rows, a2);
    assert_string_equal(str(row, "cleared_at"), str(row, "raised_at"));
    cJSON_Delete(rows);

    /* refusals */
    struct alarm_transition bad = raise;
    snprintf(bad.tenant, sizeof(bad.tenant), "nope");
    apply(state, &bad, IOT_ENOTFOUND);
    bad = raise;
    bad.device[0] = '\0';
    apply(state, &bad, IOT_EINVAL);
    /* a rule that does not exist (any more) is stored without a reference */
    struct alarm_transition orphan =
        transition(ALARM_RAISE, ALARM_SOURCE_RULE, 999999, "dev2", "gone", T0 + 12000);
    uint64_t a4 = apply(state, &orphan, IOT_OK);
    rows = list(state, "acme", ALARM_FILTER_OPEN, "dev2", 0, 0);
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(row_by_id(rows, a4), "rule")));
    cJSON_Delete(rows);
    orphan.kind = ALARM_CLEAR;
    assert_int_equal(apply(state, &orphan, IOT_OK), a4);
}

static void test_ack(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    cJSON *row = NULL;
    struct alarm_transition t =
        transition(ALARM_RAISE, ALARM_SOURCE_DEVICE, 0, "dev2", "door_open", T0 + 20000);
    uint64_t a = apply(state, &t, IOT_OK);
    assert_int_equal(alarm_ack(f->conn, "acme", a, "bob@acme", &row, err, sizeof(err)), 0);
    assert_non_null(row);
    assert_string_equal(str(row, "state"), "acknowledged");
    assert_string_equal(str(row, "acked_by"), "bob@acme");
    assert_non_null(str(row, "acked_at"));
    cJSON_Delete(row);
    /* twice: refused, naming who was first */
    assert_int_equal(alarm_ack(f->conn, "acme", a, "carol@acme", &row, err, sizeof(err)),
                     IOT_EEXIST);
    assert_non_null(strstr(err, "bob@acme"));
    assert_null(row);
    /* another tenant, an unknown id, nobody */
    assert_int_equal(alarm_ack(f->conn, "beta", a, "eve@beta", NULL, err, sizeof(err)),
                     IOT_ENOTFOUND);
    assert_int_equal(alarm_ack(f->conn, "acme", 987654, "bob@acme", NULL, err, sizeof(err)),
                     IOT_ENOTFOUND);
    assert_int_equal(alarm_ack(f->conn, "nope", a, "bob@acme", NULL, err, sizeof(err)),
                     IOT_ENOTFOUND);
    assert_int_equal(alarm_ack(f->conn, "acme", a, "", NULL, err, sizeof(err)), IOT_EINVAL);
    /* an acknowledged alarm still clears, and keeps who acknowledged it */
    t.kind = ALARM_CLEAR;
    t.ts_ms = T0 + 21000;
    assert_int_equal(apply(state, &t, IOT_OK), a);
    cJSON *rows = list(state, "acme", ALARM_FILTER_CLEARED, "dev2", 0, 0);
    row = row_by_id(rows, a);
    assert_string_equal(str(row, "state"), "cleared");
    assert_string_equal(str(row, "acked_by"), "bob@acme");
    cJSON_Delete(rows);
    /* a cleared alarm nobody acknowledged: acknowledged, still cleared */
    t.kind = ALARM_RAISE;
    t.ts_ms = T0 + 22000;
    uint64_t b = apply(state, &t, IOT_OK);
    t.kind = ALARM_CLEAR;
    t.ts_ms = T0 + 23000;
    assert_int_equal(apply(state, &t, IOT_OK), b);
    assert_int_equal(alarm_ack(f->conn, "acme", b, "bob@acme", &row, err, sizeof(err)), 0);
    assert_string_equal(str(row, "state"), "cleared");
    assert_string_equal(str(row, "acked_by"), "bob@acme");
    cJSON_Delete(row);
}

static void test_list_filters(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    /* one raised (dev1 device "hot"), one acknowledged, the rest cleared (see above); add a
     * raised one on dev2 and acknowledge something open */
    struct alarm_transition t =
        transition(ALARM_RAISE, ALARM_SOURCE_DEVICE, 0, "dev2", "low_batt", T0 + 30000);
    uint64_t lb = apply(state, &t, IOT_OK);
    assert_int_equal(alarm_ack(f->conn, "acme", lb, "bob@acme", NULL, err, sizeof(err)), 0);
    cJSON *all = list(state, "acme", ALARM_FILTER_ALL, NULL, 0, 0);
    int n_all = cJSON_GetArraySize(all);
    assert_int_equal(n_all, 7);
    /* newest first */
    double prev = INFINITY;
    cJSON *row;
    cJSON_ArrayForEach(row, all)
    {
        double id = cJSON_GetObjectItem(row, "id")->valuedouble;
        assert_true(id < prev);
        prev = id;
    }
    cJSON_Delete(all);
    struct {
        enum alarm_state_filter st;
        const char *device;
        int64_t since;
        unsigned limit;
        int want;
    } cases[] = {
        {ALARM_FILTER_OPEN, NULL, 0, 0, 2},         {ALARM_FILTER_RAISED, NULL, 0, 0, 1},
        {ALARM_FILTER_ACKNOWLEDGED, NULL, 0, 0, 1}, {ALARM_FILTER_CLEARED, NULL, 0, 0, 5},
        {ALARM_FILTER_ALL, "dev2", 0, 0, 4},        {ALARM_FILTER_OPEN, "dev2", 0, 0, 1},
        {ALARM_FILTER_ALL, "nodev", 0, 0, 0},       {ALARM_FILTER_ALL, NULL, T0 + 20000, 0, 3},
        {ALARM_FILTER_ALL, NULL, 0, 3, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *rows =
            list(state, "acme", cases[i].st, cases[i].device, cases[i].since, cases[i].limit);
        if (cJSON_GetArraySize(rows) != cases[i].want)
            fail_msg("case %zu: %d rows, want %d", i, cJSON_GetArraySize(rows), cases[i].want);
        cJSON_Delete(rows);
    }
    cJSON *beta = list(state, "beta", ALARM_FILTER_ALL, NULL, 0, 0);
    assert_int_equal(cJSON_GetArraySize(beta), 0);
    cJSON_Delete(beta);
    cJSON *rows = NULL;
    struct alarm_filter bad = {.state = ALARM_FILTER_ALL, .limit = ALARM_LIST_MAX + 1};
    assert_int_equal(alarm_list(f->conn, "acme", &bad, &rows, err, sizeof(err)), IOT_EINVAL);
    bad.limit = 0;
    assert_int_equal(alarm_list(f->conn, "nope", &bad, &rows, err, sizeof(err)), IOT_ENOTFOUND);
    assert_null(rows);
    enum alarm_state_filter sf;
    assert_true(alarm_state_filter_parse("acknowledged", &sf) && sf == ALARM_FILTER_ACKNOWLEDGED);
    assert_false(alarm_state_filter_parse("closed", &sf));
}

static void test_open_load(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    struct alarm_open *open = NULL;
    size_t n = 0;
    assert_int_equal(alarm_open_load(f->conn, &open, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(open[0].tenant, "acme");
    assert_string_equal(open[0].device, "dev1");
    assert_string_equal(open[0].name, "hot");
    assert_int_equal(open[0].source, ALARM_SOURCE_DEVICE);
    assert_int_equal(open[0].rule_id, 0);
    assert_int_equal(open[0].raised_at_ms, T0 + 11000);
    assert_string_equal(open[0].value, "31.5");
    assert_string_equal(open[1].name, "low_batt");
    free(open);
}

static void test_unique_open(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    static const char insert[] =
        "INSERT INTO alarms (tenant_id, device_id, source, name, severity, state, raised_at, "
        "cleared_at) SELECT id, 'dev9', 'device', 'x', 'info', ?, NOW(3), ? FROM tenants "
        "WHERE name = 'acme'";
    assert_int_equal(sql_exec(f->conn, insert, SQL_PARAMS(sql_str("raised"), sql_str(NULL)), NULL,
                              NULL, err, sizeof(err)),
                     0);
    /* a second open one: refused by the schema, whatever its state */
    assert_int_equal(sql_exec(f->conn, insert, SQL_PARAMS(sql_str("raised"), sql_str(NULL)), NULL,
                              NULL, err, sizeof(err)),
                     IOT_EEXIST);
    assert_int_equal(sql_exec(f->conn,
                              "INSERT INTO alarms (tenant_id, device_id, source, name, severity, "
                              "state, raised_at, acked_at, acked_by) SELECT id, 'dev9', 'device', "
                              "'x', 'info', 'acknowledged', NOW(3), NOW(3), 'bob' FROM tenants "
                              "WHERE name = 'acme'",
                              SQL_NO_PARAMS, NULL, NULL, err, sizeof(err)),
                     IOT_EEXIST);
    /* any number of cleared ones */
    for (int i = 0; i < 2; i++)
        assert_int_equal(sql_exec(f->conn, insert,
                                  SQL_PARAMS(sql_str("cleared"), sql_str("2024-01-01 00:00:00")),
                                  NULL, NULL, err, sizeof(err)),
                         0);
    /* the CHECKs: cleared without cleared_at, acknowledged without who */
    assert_int_equal(sql_exec(f->conn, insert, SQL_PARAMS(sql_str("cleared"), sql_str(NULL)), NULL,
                              NULL, err, sizeof(err)),
                     IOT_EINVAL);
    assert_int_equal(sql_exec(f->conn,
                              "UPDATE alarms SET state = 'acknowledged' WHERE device_id = 'dev9' "
                              "AND open_key = 1",
                              SQL_NO_PARAMS, NULL, NULL, err, sizeof(err)),
                     IOT_EINVAL);
    /* a rule of the wrong kind is refused by the schema too */
    assert_int_equal(sql_exec(f->conn,
                              "INSERT INTO alarm_rules (tenant_id, name, scope, event, silence_s, "
                              "field) SELECT id, 'bad', 'tenant', 'heartbeat', 10, 'temp' FROM "
                              "tenants WHERE name = 'acme'",
                              SQL_NO_PARAMS, NULL, NULL, err, sizeof(err)),
                     IOT_EINVAL);
    assert_int_equal(sql_exec(f->conn, "DELETE FROM alarms WHERE device_id = 'dev9'", SQL_NO_PARAMS,
                              NULL, NULL, err, sizeof(err)),
                     0);
}

static void test_rule_remove(void **state)
{
    struct fixture *f = *state;
    char err[300] = "";
    uint64_t id = rule_id(state, "acme", "hot-dev1"), removed = 0;
    struct alarm_transition t =
        transition(ALARM_RAISE, ALARM_SOURCE_RULE, id, "dev1", "hot-dev1", T0 + 40000);
    uint64_t a = apply(state, &t, IOT_OK);
    assert_int_equal(
        alarm_rule_remove(f->conn, "acme", "hot-dev1", 0, "alice@acme", &removed, err, sizeof(err)),
        0);
    assert_int_equal(removed, id);
    cJSON *rows = list(state, "acme", ALARM_FILTER_ALL, "dev1", 0, 0);
    cJSON *row = row_by_id(rows, a);
    assert_string_equal(str(row, "state"), "cleared");
    assert_string_equal(str(row, "clear_message"), "rule removed");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(row, "rule"))); /* SET NULL, history kept */
    cJSON_Delete(rows);
    /* the engine's own clear then finds nothing open */
    t.kind = ALARM_CLEAR;
    assert_int_equal(apply(state, &t, IOT_OK), 0);
    assert_int_equal(
        alarm_rule_remove(f->conn, "acme", "hot-dev1", 0, NULL, NULL, err, sizeof(err)),
        IOT_ENOTFOUND);
    /* by id; not across tenants */
    uint64_t beta_hot = rule_id(state, "beta", "hot");
    assert_int_equal(
        alarm_rule_remove(f->conn, "acme", NULL, beta_hot, NULL, NULL, err, sizeof(err)),
        IOT_ENOTFOUND);
    assert_int_equal(
        alarm_rule_remove(f->conn, "beta", NULL, beta_hot, NULL, &removed, err, sizeof(err)), 0);
    assert_int_equal(removed, beta_hot);
    assert_int_equal(alarm_rule_remove(f->conn, "acme", NULL, 0, NULL, NULL, err, sizeof(err)),
                     IOT_EINVAL);
    long long n = 0;
    assert_int_equal(sql_query_int(f->conn,
                                   "SELECT COUNT(*) FROM admin_audit WHERE action = "
                                   "'alarm.rule.remove'",
                                   SQL_NO_PARAMS, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 1); /* only the one with an actor */
}

/* ---- the writer ---- */

struct writer_ctx {
    uv_loop_t loop;
    inbox_t inbox;
    uint64_t ids[16];
    int statuses[16];
    char names[16][ALARM_NAME_MAX + 1];
    size_t applied;
    bool released, inbox_closed;
};

static void on_applied(const struct alarm_transition *t, uint64_t alarm_id, int status, void *arg)
{
    struct writer_ctx *c = arg;
    assert_true(c->applied < 16);
    c->ids[c->applied] = alarm_id;
    c->statuses[c->applied] = status;
    snprintf(c->names[c->applied], sizeof(c->names[0]), "%s", t->name);
    c->applied++;
}

static void on_released(void *arg)
{
    ((struct writer_ctx *)arg)->released = true;
}

static void on_inbox_closed(inbox_t *inbox)
{
    struct writer_ctx *c = container_of(inbox, struct writer_ctx, inbox);
    c->inbox_closed = true;
}

/* Run the loop until *flag or a 20 s timeout. */
static void run_until(struct writer_ctx *c, const bool *flag, size_t *count, size_t want)
{
    time_t start = time(NULL);
    while (!(flag ? *flag : *count >= want)) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        usleep(2000);
        if (time(NULL) - start > 20)
            fail_msg("timed out waiting for the writer");
    }
}

static void test_writer(void **state)
{
    struct fixture *f = *state;
    struct writer_ctx c = {0};
    db_pool_t *pool = NULL;
    alarm_writer_t *w = NULL;
    struct db_target target;
    char alias[128];
    /* The pool connects through a socket path that does not exist yet: an outage. */
    snprintf(alias, sizeof(alias), "%s/alias.sock", f->dir);
    assert_int_equal(db_target_for_socket(alias, "iotd", &target), 0);
    assert_int_equal(uv_loop_init(&c.loop), 0);
    assert_int_equal(inbox_init(&c.inbox, &c.loop, 64, NULL), 0);
    assert_int_equal(db_pool_start(&pool, &target, 1, 16), 0);
    struct alarm_writer_options o = {.capacity = 4,
                                     .batch_max = 2,
                                     .retry_ms = 20,
                                     .applied = on_applied,
                                     .released = on_released,
                                     .arg = &c};
    assert_int_equal(alarm_writer_start(&w, &c.loop, &c.inbox, pool, &o), 0);

    /* seven transitions while the database is unreachable: the first goes to the database at
     * once (and is retried), the queue of four keeps the newest and drops the two oldest */
    const char *names[] = {"w1", "w2", "w3", "w4", "w5", "w6", "w7"};
    for (int i = 0; i < 7; i++) {
        struct alarm_transition t =
            transition(ALARM_RAISE, ALARM_SOURCE_DEVICE, 0, "dev1", names[i], T0 + 50000 + i);
        if (i == 6)
            snprintf(t.tenant, sizeof(t.tenant), "nope"); /* refused for good */
        alarm_writer_add(w, &t);
    }
    struct alarm_writer_stats st;
    usleep(100000);
    for (int i = 0; i < 10; i++) {
        uv_run(&c.loop, UV_RUN_NOWAIT);
        usleep(20000);
    }
    alarm_writer_stats(w, &st);
    assert_int_equal(st.written, 0);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.in_flight, 1);
    assert_true(st.retries >= 2);
    assert_int_equal(c.applied, 0);

    /* the database comes back: everything left is written, in order */
    assert_int_equal(symlink(mariadb_local_socket(f->mariadb), alias), 0);
    run_until(&c, NULL, &c.applied, 5);
    const char *want[] = {"w1", "w4", "w5", "w6", "w7"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(c.names[i], want[i]);
        if (i < 4) {
            assert_int_equal(c.statuses[i], 0);
            assert_true(c.ids[i] > 0);
            assert_true(i == 0 || c.ids[i] > c.ids[i - 1]);
        } else {
            assert_int_equal(c.statuses[i], IOT_ENOTFOUND);
        }
    }
    alarm_writer_stats(w, &st);
    assert_int_equal(st.written, 4);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.in_flight, 0);

    /* clears, then stop: what is queued at stop is still written */
    for (int i = 0; i < 2; i++) {
        struct alarm_transition t =
            transition(ALARM_CLEAR, ALARM_SOURCE_DEVICE, 0, "dev1", want[i], T0 + 60000);
        alarm_writer_add(w, &t);
    }
    alarm_writer_stop(w);
    run_until(&c, &c.released, NULL, 0);
    assert_int_equal(c.applied, 7);
    assert_int_equal(c.ids[5], c.ids[0]);
    assert_int_equal(c.ids[6], c.ids[1]);
    db_pool_stop(pool);
    inbox_close(&c.inbox, on_inbox_closed);
    run_until(&c, &c.inbox_closed, NULL, 0);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c.loop), 0);
    db_target_free(&target);

    cJSON *rows = list(state, "acme", ALARM_FILTER_OPEN, "dev1", T0 + 50000, 0);
    assert_int_equal(cJSON_GetArraySize(rows), 2); /* w5, w6 */
    cJSON_Delete(rows);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_rule_add_validation),
        T(test_rules_list_and_load),
        T(test_apply_lifecycle),
        T(test_ack),
        T(test_list_filters),
        T(test_open_load),
        T(test_unique_open),
        T(test_rule_remove),
        T(test_writer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
