/*
 * test_access.c - access evaluation and snapshot queries on a registry snapshot built in memory
 * with the builder of registry_internal.h (no database).
 *
 * The fixture is two tenants. acme: types thermo (read_temp, set_point, event temp_changed)
 * and lamp (set_pixel); devices t1, t2 (thermo), l1 (lamp); users alice and dave (operators),
 * carol (admin); groups ops (users: alice), floor1 (devices: t2, l1), sensors
 * (devices: t2). beta: type bthermo (read_temp), device b1, user bob.
 * Rules (ids chosen so that "lowest id" and "most specific" disagree where it matters):
 *   4  user:alice   -> device:t1     any
 *   5  user:alice   -> device:t1     read_temp
 *   3  group:ops    -> group:floor1  set_pixel
 *   8  group:ops    -> group:sensors any
 *   13 group:ops    -> group:floor1  read_temp
 *   7  group:ops    -> type:thermo   any
 *   9  user:dave    -> any           read_temp
 *   11 device:l1    -> device:t2     any
 *   20 user:bob     -> any           any         (tenant beta)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "iot_error.h"
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ACME = 1, BETA = 2 };
enum { THERMO = 10, LAMP = 11, BTHERMO = 12 };
enum { ALICE = 1, CAROL = 2, DAVE = 3, BOB = 4 };
enum { OPS = 100, FLOOR1 = 101, SENSORS = 102 };

static void add_message(registry_snapshot_t *s, uint32_t id, uint32_t type, const char *name,
                        enum reg_direction dir)
{
    struct reg_message m = {
        .id = id, .type_id = type, .name = name, .direction = dir, .args = "", .timeout_ms = 5000};
    assert_int_equal(snapshot_add_message(s, &m), IOT_OK);
}

static void add_device(registry_snapshot_t *s, const char *id, uint32_t tenant, uint32_t type)
{
    struct reg_device d = {.id = id,
                           .tenant_id = tenant,
                           .type_id = type,
                           .enabled = true,
                           .sealed_len = REG_SEALED_LEN};
    memset(d.sealed, 0xAB, sizeof(d.sealed));
    assert_int_equal(snapshot_add_device(s, &d), IOT_OK);
}

static void add_user(registry_snapshot_t *s, uint32_t id, uint32_t tenant, const char *name,
                     enum reg_role role)
{
    struct reg_user u = {.id = id,
                         .tenant_id = tenant,
                         .name = name,
                         .role = role,
                         .password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"};
    assert_int_equal(snapshot_add_user(s, &u), IOT_OK);
}

static void add_group(registry_snapshot_t *s, uint32_t id, uint32_t tenant, const char *name,
                      enum reg_group_kind kind)
{
    struct reg_group g = {.id = id, .tenant_id = tenant, .name = name, .kind = kind};
    assert_int_equal(snapshot_add_group(s, &g), IOT_OK);
}

static void add_member_device(registry_snapshot_t *s, uint32_t group, const char *device)
{
    struct reg_member_row m = {.group_id = group, .device_id = device};
    assert_int_equal(snapshot_add_member(s, &m), IOT_OK);
}

static void add_member_user(registry_snapshot_t *s, uint32_t group, uint32_t user)
{
    struct reg_member_row m = {.group_id = group, .user_id = user};
    assert_int_equal(snapshot_add_member(s, &m), IOT_OK);
}

/* subject: 'u' user id, 'd' device, 'g' group; target: 'd' device, 't' type, 'g' group, 'a'. */
static void add_rule(registry_snapshot_t *s, long long id, uint32_t tenant, char sk,
                     uint32_t subject_id, const char *subject_device, char tk, uint32_t target_id,
                     const char *target_device, const char *message)
{
    struct reg_rule r = {.id = id, .tenant_id = tenant, .message = message, .created_by = "test"};
    r.subject_kind = sk == 'u'   ? REG_SUBJECT_USER
                     : sk == 'd' ? REG_SUBJECT_DEVICE
                                 : REG_SUBJECT_GROUP;
    r.subject_id = subject_id;
    r.subject_device_id = subject_device;
    r.target_kind = tk == 'd'   ? REG_TARGET_DEVICE
                    : tk == 't' ? REG_TARGET_TYPE
                    : tk == 'g' ? REG_TARGET_GROUP
                                : REG_TARGET_ANY;
    r.target_id = target_id;
    r.target_device_id = target_device;
    assert_int_equal(snapshot_add_rule(s, &r), IOT_OK);
}

/* Rows are added in a scrambled order on purpose: finish must not depend on it. */
static registry_snapshot_t *build(void)
{
    registry_snapshot_t *s = snapshot_builder_new();
    assert_non_null(s);
    add_rule(s, 11, ACME, 'd', 0, "l1", 'd', 0, "t2", NULL);
    add_rule(s, 20, BETA, 'u', BOB, NULL, 'a', 0, NULL, NULL);
    add_rule(s, 5, ACME, 'u', ALICE, NULL, 'd', 0, "t1", "read_temp");
    add_rule(s, 4, ACME, 'u', ALICE, NULL, 'd', 0, "t1", NULL);
    add_rule(s, 3, ACME, 'g', OPS, NULL, 'g', FLOOR1, NULL, "set_pixel");
    add_rule(s, 8, ACME, 'g', OPS, NULL, 'g', SENSORS, NULL, NULL);
    add_rule(s, 13, ACME, 'g', OPS, NULL, 'g', FLOOR1, NULL, "read_temp");
    add_rule(s, 7, ACME, 'g', OPS, NULL, 't', THERMO, NULL, NULL);
    add_rule(s, 9, ACME, 'u', DAVE, NULL, 'a', 0, NULL, "read_temp");

    add_member_device(s, FLOOR1, "t2");
    add_member_device(s, FLOOR1, "l1");
    add_member_device(s, SENSORS, "t2");
    add_member_user(s, OPS, ALICE);

    add_group(s, SENSORS, ACME, "sensors", REG_GROUP_DEVICE);
    add_group(s, OPS, ACME, "ops", REG_GROUP_USER);
    add_group(s, FLOOR1, ACME, "floor1", REG_GROUP_DEVICE);

    add_user(s, BOB, BETA, "bob", REG_ROLE_OPERATOR);
    add_user(s, ALICE, ACME, "alice", REG_ROLE_OPERATOR);
    add_user(s, CAROL, ACME, "carol", REG_ROLE_ADMIN);
    add_user(s, DAVE, ACME, "dave", REG_ROLE_OPERATOR);

    add_device(s, "t2", ACME, THERMO);
    add_device(s, "b1", BETA, BTHERMO);
    add_device(s, "t1", ACME, THERMO);
    add_device(s, "l1", ACME, LAMP);

    add_message(s, 1, THERMO, "set_point", REG_DIR_COMMAND);
    add_message(s, 2, THERMO, "read_temp", REG_DIR_COMMAND);
    add_message(s, 3, THERMO, "temp_changed", REG_DIR_EVENT);
    add_message(s, 4, LAMP, "set_pixel", REG_DIR_COMMAND);
    add_message(s, 5, BTHERMO, "read_temp", REG_DIR_COMMAND);

    struct reg_type types[] = {{.id = LAMP, .tenant_id = ACME, .name = "lamp"},
                               {.id = BTHERMO, .tenant_id = BETA, .name = "bthermo"},
                               {.id = THERMO, .tenant_id = ACME, .name = "thermo"}};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(snapshot_add_type(s, &types[i]), IOT_OK);
    struct reg_tenant beta = {.id = BETA, .name = "beta"}, acme = {.id = ACME, .name = "acme"};
    assert_int_equal(snapshot_add_tenant(s, &beta), IOT_OK);
    assert_int_equal(snapshot_add_tenant(s, &acme), IOT_OK);

    char err[200] = "";
    int rc = snapshot_finish(s, err, sizeof(err));
    if (rc != IOT_OK)
        fail_msg("snapshot_finish: %s", err);
    return s;
}

static int setup(void **state)
{
    *state = build();
    return 0;
}

static int teardown(void **state)
{
    registry_release(*state);
    return 0;
}

/* Check one decision: allow, deciding rule (0 = none) and a fragment of the reason. */
static void expect(void **state, const char *principal, const char *device, const char *message,
                   bool allow, long long rule, const char *reason_part)
{
    struct access_decision d;
    assert_int_equal(registry_access_check(*state, principal, device, message, &d), IOT_OK);
    if (d.allow != allow || d.rule_id != rule || !strstr(d.reason, reason_part))
        fail_msg("%s -> %s : %s: got %s rule %lld (%s), want %s rule %lld (%s)", principal, device,
                 message, d.allow ? "allow" : "deny", d.rule_id, d.reason, allow ? "allow" : "deny",
                 rule, reason_part);
    /* The relay's check, which skips the reason, decides the same. */
    if (registry_access_allows(*state, principal, device, message) != allow)
        fail_msg("%s -> %s : %s: registry_access_allows disagrees", principal, device, message);
}

static void test_direct_user_rule(void **state)
{
    expect(state, "alice@acme", "t1", "read_temp", true, 5,
           "rule 5: user:alice -> device:t1 message read_temp");
}

static void test_specific_message_beats_lower_id(void **state)
{
    /* rule 4 (any message) has the lower id, rule 5 names the message: 5 decides */
    expect(state, "alice@acme", "t1", "read_temp", true, 5, "message read_temp");
    /* for another message only rule 4 matches */
    expect(state, "alice@acme", "t1", "set_point", true, 4,
           "rule 4: user:alice -> device:t1 message any");
}

static void test_group_rule(void **state)
{
    expect(state, "alice@acme", "l1", "set_pixel", true, 3,
           "rule 3: group:ops -> group:floor1 message set_pixel");
}

static void test_group_level_across_groups(void **state)
{
    /* t2 is in floor1 and sensors: 13 (floor1, read_temp) beats 8 (sensors, any), and both
     * beat 7 (type thermo), though 7 and 8 have lower ids */
    expect(state, "alice@acme", "t2", "read_temp", true, 13,
           "rule 13: group:ops -> group:floor1 message read_temp");
    expect(state, "alice@acme", "t2", "set_point", true, 8, "group:sensors message any");
}

static void test_any_target(void **state)
{
    expect(state, "dave@acme", "t1", "read_temp", true, 9,
           "rule 9: user:dave -> any message read_temp");
    expect(state, "dave@acme", "l1", "set_pixel", false, 0, "no rule allows dave@acme");
}

/* A small snapshot of its own: tenant acme, type thermo (read_temp, event temp_changed), device
 * t1, and one user; the caller adds rules and finishes it (snapshot_finish). */
static registry_snapshot_t *small_snapshot(uint32_t user, const char *name, enum reg_role role)
{
    registry_snapshot_t *s = snapshot_builder_new();
    struct reg_tenant acme = {.id = ACME, .name = "acme"};
    struct reg_type thermo = {.id = THERMO, .tenant_id = ACME, .name = "thermo"};
    assert_int_equal(snapshot_add_tenant(s, &acme), IOT_OK);
    assert_int_equal(snapshot_add_type(s, &thermo), IOT_OK);
    add_message(s, 1, THERMO, "read_temp", REG_DIR_COMMAND);
    add_message(s, 2, THERMO, "temp_changed", REG_DIR_EVENT);
    add_device(s, "t1", ACME, THERMO);
    add_user(s, user, ACME, name, role);
    return s;
}

/* A viewer's rules let it read the events they name, never send a command (issue 17). */
static void test_viewer_sends_nothing(void **state)
{
    registry_snapshot_t *s = small_snapshot(DAVE, "dave", REG_ROLE_VIEWER);
    char err[200];
    add_rule(s, 1, ACME, 'u', DAVE, NULL, 'd', 0, "t1", NULL);
    assert_int_equal(snapshot_finish(s, err, sizeof(err)), IOT_OK);
    void *saved = *state;
    *state = s;
    expect(state, "dave@acme", "t1", "read_temp", false, 0, "role viewer may not send commands");
    assert_true(registry_access_allows_read(s, "dave@acme", "t1", "temp_changed"));
    struct registry_user_info u;
    assert_int_equal(registry_user_lookup(s, "dave@acme", &u), IOT_OK);
    assert_false(u.may_act);
    *state = saved;
    registry_release(s);
}

static void test_type_target(void **state)
{
    /* A snapshot where only the type rule and an any rule exist for alice. */
    registry_snapshot_t *s = small_snapshot(ALICE, "alice", REG_ROLE_OPERATOR);
    char err[200];
    add_rule(s, 1, ACME, 'u', ALICE, NULL, 'a', 0, NULL, "read_temp");
    add_rule(s, 2, ACME, 'u', ALICE, NULL, 't', THERMO, NULL, NULL);
    assert_int_equal(snapshot_finish(s, err, sizeof(err)), IOT_OK);
    void *saved = *state;
    *state = s;
    /* the type rule (any message) is more specific in target than the any-target rule */
    expect(state, "alice@acme", "t1", "read_temp", true, 2,
           "rule 2: user:alice -> type:thermo message any");
    *state = saved;
    registry_release(s);
}

static void test_default_deny(void **state)
{
    expect(state, "alice@acme", "l1", "set_pixel", true, 3, "rule 3");
    /* carol is admin; dave has only read_temp; bob is of beta */
    expect(state, "dave@acme", "t2", "set_point", false, 0, "no rule");
    expect(state, "t1", "t2", "read_temp", false, 0, "no rule");
}

static void test_cross_tenant_denied(void **state)
{
    /* bob has an allow-everything rule in beta, but t1 is acme's */
    expect(state, "bob@beta", "t1", "read_temp", false, 0, "not in principal's tenant");
    expect(state, "bob@beta", "b1", "read_temp", true, 20, "rule 20: user:bob -> any message any");
    /* an admin of acme does not reach beta either */
    expect(state, "carol@acme", "b1", "read_temp", false, 0, "not in principal's tenant");
}

static void test_admin_role(void **state)
{
    expect(state, "carol@acme", "t1", "set_point", true, 0, "role admin");
    expect(state, "carol@acme", "l1", "set_pixel", true, 0, "role admin");
    /* even an admin cannot send what the catalogue does not have */
    expect(state, "carol@acme", "l1", "read_temp", false, 0,
           "message type read_temp not in catalogue of type lamp");
}

static void test_device_subject(void **state)
{
    expect(state, "l1", "t2", "read_temp", true, 11, "rule 11: device:l1 -> device:t2 message any");
    expect(state, "device:l1", "t2", "set_point", true, 11, "rule 11");
    expect(state, "l1", "t1", "read_temp", false, 0, "no rule");
}

static void test_catalogue(void **state)
{
    expect(state, "alice@acme", "t1", "reboot", false, 0,
           "message type reboot not in catalogue of type thermo");
    /* an event is pushed by devices, never sent to one */
    expect(state, "alice@acme", "t1", "temp_changed", false, 0, "is an event");
}

static void test_unknown_names(void **state)
{
    struct access_decision d;
    assert_int_equal(registry_access_check(*state, "nobody@acme", "t1", "read_temp", &d),
                     IOT_ENOTFOUND);
    assert_false(d.allow);
    assert_int_equal(registry_access_check(*state, "alice@acme", "t9", "read_temp", &d),
                     IOT_ENOTFOUND);
    assert_int_equal(registry_access_check(*state, "ghost", "t1", "read_temp", &d), IOT_ENOTFOUND);
    assert_false(registry_access_allows(*state, "nobody@acme", "t1", "read_temp"));
    assert_false(registry_access_allows(*state, "ghost", "t1", "read_temp"));
    assert_false(registry_access_allows_read(*state, "alice@acme", "t9", "temp_changed"));
}

static void test_finish_refuses_cross_tenant_rows(void **state)
{
    char err[200];
    registry_snapshot_t *s = snapshot_builder_new();
    struct reg_tenant a = {.id = ACME, .name = "acme"}, b = {.id = BETA, .name = "beta"};
    struct reg_type t = {.id = BTHERMO, .tenant_id = BETA, .name = "bthermo"};
    assert_int_equal(snapshot_add_tenant(s, &a), IOT_OK);
    assert_int_equal(snapshot_add_tenant(s, &b), IOT_OK);
    assert_int_equal(snapshot_add_type(s, &t), IOT_OK);
    add_device(s, "b1", BETA, BTHERMO);
    add_group(s, FLOOR1, ACME, "floor1", REG_GROUP_DEVICE);
    add_member_device(s, FLOOR1, "b1");
    assert_int_equal(snapshot_finish(s, err, sizeof(err)), IOT_EINVAL);
    assert_non_null(strstr(err, "another tenant"));
    snapshot_destroy(s);
}

/* ---- queries on the same snapshot ---- */

static cJSON *query(void **state, const char *name, const char *args_json, int want_rc)
{
    char err[256] = "";
    cJSON *args = cJSON_Parse(args_json), *result = NULL;
    const struct ctl_command *cmd = ctl_command_by_name(name);
    assert_non_null(cmd);
    assert_true(registry_answers(cmd));
    int rc = registry_query(*state, cmd, args, &result, err, sizeof(err));
    if (rc != want_rc)
        fail_msg("%s %s: rc %d (%s), want %d", name, args_json, rc, err, want_rc);
    cJSON_Delete(args);
    return result;
}

static void test_queries(void **state)
{
    cJSON *r = query(state, "device.show", "{\"id\":\"t2\"}", IOT_OK);
    char *text = cJSON_PrintUnformatted(r);
    assert_null(strstr(text, "secret"));
    assert_non_null(strstr(text, "\"groups\":[\"floor1\",\"sensors\"]"));
    free(text);
    cJSON_Delete(r);

    r = query(state, "user.list", "{\"tenant\":\"acme\"}", IOT_OK);
    text = cJSON_PrintUnformatted(r);
    assert_null(strstr(text, "argon2"));
    assert_null(strstr(text, "bob"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "users")), 3);
    free(text);
    cJSON_Delete(r);

    r = query(state, "access.check",
              "{\"subject\":\"user:alice\",\"device\":\"t2\",\"message\":\"read_temp\"}", IOT_OK);
    assert_string_equal(cJSON_GetObjectItem(r, "decision")->valuestring, "allow");
    assert_int_equal(cJSON_GetObjectItem(r, "rule")->valueint, 13);
    cJSON_Delete(r);

    r = query(state, "access.list", "{\"tenant\":\"beta\"}", IOT_OK);
    cJSON *rules = cJSON_GetObjectItem(r, "rules");
    assert_int_equal(cJSON_GetArraySize(rules), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rules, 0), "subject")->valuestring,
                        "user:bob");
    cJSON_Delete(r);

    r = query(state, "type.show", "{\"name\":\"thermo\",\"tenant\":\"acme\"}", IOT_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "messages")), 3);
    assert_int_equal(cJSON_GetObjectItem(r, "devices")->valueint, 2);
    cJSON_Delete(r);

    r = query(state, "tenant.list", "{}", IOT_OK);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "tenants"), 0);
    assert_string_equal(cJSON_GetObjectItem(first, "name")->valuestring, "acme");
    assert_int_equal(cJSON_GetObjectItem(first, "devices")->valueint, 3);
    cJSON_Delete(r);

    query(state, "device.list", "{\"tenant\":\"nope\"}", IOT_ENOTFOUND);
    query(state, "group.show", "{\"name\":\"ops\",\"tenant\":\"beta\"}", IOT_ENOTFOUND);
    query(state, "user.show", "{\"user\":\"alice\"}", IOT_ENOTFOUND);
}

/* Who sees which device in a client's lists (QUERY): an admin every device of its tenant,
 * others a device on which some rule grants them some message, nobody another tenant's. */
static void test_device_visible(void **state)
{
    const registry_snapshot_t *s = *state;
    assert_true(registry_device_visible(s, "carol@acme", "l1")); /* admin */
    assert_true(registry_device_visible(s, "alice@acme", "t1"));
    assert_true(registry_device_visible(s, "alice@acme", "l1"));  /* group ops -> floor1 */
    assert_true(registry_device_visible(s, "dave@acme", "t2"));   /* any -> read_temp */
    assert_false(registry_device_visible(s, "dave@acme", "l1"));  /* a lamp has no read_temp */
    assert_false(registry_device_visible(s, "carol@acme", "b1")); /* another tenant */
    assert_false(registry_device_visible(s, "bob@beta", "t1"));
    assert_true(registry_device_visible(s, "bob@beta", "b1"));
    assert_false(registry_device_visible(s, "nobody@acme", "t1"));
    assert_false(registry_device_visible(s, "carol@acme", "nosuch"));
    assert_false(registry_device_visible(s, "t2", "t1")); /* devices do not list */
}

static bool collect_id(const struct registry_device_entry *d, void *arg)
{
    char *out = arg;
    strcat(out, d->id);
    strcat(out, d->ngroups ? "+ " : " ");
    return strlen(out) < 12; /* stops the walk after a few */
}

static void count_message(const struct registry_message_info *m, void *arg)
{
    strcat(arg, m->event ? "E:" : "C:");
    strcat(arg, m->name);
    strcat(arg, " ");
}

static void test_listings(void **state)
{
    const registry_snapshot_t *s = *state;
    char ids[64] = "";
    registry_devices_after(s, "acme", NULL, collect_id, ids);
    assert_string_equal(ids, "l1+ t1 t2+ "); /* acme only, by id; l1 and t2 are in groups */
    ids[0] = '\0';
    registry_devices_after(s, "acme", "l1", collect_id, ids); /* after the cursor */
    assert_string_equal(ids, "t1 t2+ ");
    ids[0] = '\0';
    registry_devices_after(s, "acme", "t15", collect_id, ids); /* a cursor that is no id */
    assert_string_equal(ids, "t2+ ");
    ids[0] = '\0';
    registry_devices_after(s, "nope", NULL, collect_id, ids);
    assert_string_equal(ids, "");
    char cat[128] = "";
    assert_int_equal(registry_catalogue_foreach(s, "acme", "thermo", count_message, cat), IOT_OK);
    assert_string_equal(cat, "C:read_temp C:set_point E:temp_changed ");
    assert_int_equal(registry_catalogue_foreach(s, "beta", "thermo", count_message, cat),
                     IOT_ENOTFOUND);
    assert_true(registry_group_exists(s, "acme", "floor1"));
    assert_false(registry_group_exists(s, "acme", "ops")); /* a group of users */
    assert_false(registry_group_exists(s, "beta", "floor1"));
    assert_true(registry_type_exists(s, "acme", "lamp"));
    assert_false(registry_type_exists(s, "beta", "lamp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_user_rule),
        cmocka_unit_test(test_viewer_sends_nothing),
        cmocka_unit_test(test_specific_message_beats_lower_id),
        cmocka_unit_test(test_group_rule),
        cmocka_unit_test(test_group_level_across_groups),
        cmocka_unit_test(test_any_target),
        cmocka_unit_test(test_type_target),
        cmocka_unit_test(test_default_deny),
        cmocka_unit_test(test_cross_tenant_denied),
        cmocka_unit_test(test_admin_role),
        cmocka_unit_test(test_device_subject),
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_finish_refuses_cross_tenant_rows),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_device_visible),
        cmocka_unit_test(test_listings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
