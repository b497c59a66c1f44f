/*
 * test_check_cache.c - relay_check_cached (iotd/relay/relay.c): what an io thread remembers as
 * allowed is the sender's alone, still checks every request's arguments, and goes stale with a
 * new registry generation. Snapshots are built in memory (registry_internal.h).
 *
 * Fixture: tenant acme, type thermo (read_temp, set_point value:int), device t1, users alice
 * and dave. Rules: 4 alice -> t1 any; 9 dave -> any read_temp. The second generation lacks 4.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "registry_internal.h"
#include "relay/relay.h"

#include <stdlib.h>
#include <string.h>

enum { ACME = 1, THERMO = 10, ALICE = 1, DAVE = 2 };

static void add_rule(registry_snapshot_t *s, long long id, uint32_t user, const char *device,
                     const char *message)
{
    struct reg_rule r = {.id = id,
                         .tenant_id = ACME,
                         .message = message,
                         .created_by = "test",
                         .subject_kind = REG_SUBJECT_USER,
                         .subject_id = user,
                         .target_kind = device ? REG_TARGET_DEVICE : REG_TARGET_ANY,
                         .target_device_id = device};
    assert_int_equal(snapshot_add_rule(s, &r), IOT_OK);
}

/* alice's role in the snapshots build makes. */
static enum reg_role alice_role = REG_ROLE_OPERATOR;

static registry_snapshot_t *build(bool alice_rule)
{
    registry_snapshot_t *s = snapshot_builder_new();
    assert_non_null(s);
    struct reg_tenant acme = {.id = ACME, .name = "acme"};
    struct reg_type thermo = {.id = THERMO, .tenant_id = ACME, .name = "thermo"};
    struct reg_message read_temp = {.id = 1,
                                    .type_id = THERMO,
                                    .name = "read_temp",
                                    .direction = REG_DIR_COMMAND,
                                    .args = "",
                                    .timeout_ms = 5000};
    struct reg_message set_point = {.id = 2,
                                    .type_id = THERMO,
                                    .name = "set_point",
                                    .direction = REG_DIR_COMMAND,
                                    .args = "value:int",
                                    .timeout_ms = 3000};
    struct reg_device t1 = {.id = "t1",
                            .tenant_id = ACME,
                            .type_id = THERMO,
                            .enabled = true,
                            .sealed_len = REG_SEALED_LEN};
    const char *hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA";
    struct reg_user alice = {
        .id = ALICE, .tenant_id = ACME, .name = "alice", .role = alice_role, .password_hash = hash};
    struct reg_user dave = {.id = DAVE,
                            .tenant_id = ACME,
                            .name = "dave",
                            .role = REG_ROLE_OPERATOR,
                            .password_hash = hash};
    assert_int_equal(snapshot_add_tenant(s, &acme), IOT_OK);
    assert_int_equal(snapshot_add_type(s, &thermo), IOT_OK);
    assert_int_equal(snapshot_add_message(s, &read_temp), IOT_OK);
    assert_int_equal(snapshot_add_message(s, &set_point), IOT_OK);
    assert_int_equal(snapshot_add_device(s, &t1), IOT_OK);
    assert_int_equal(snapshot_add_user(s, &alice), IOT_OK);
    assert_int_equal(snapshot_add_user(s, &dave), IOT_OK);
    if (alice_rule)
        add_rule(s, 4, ALICE, "t1", NULL);
    add_rule(s, 9, DAVE, NULL, "read_temp");
    char err[200] = "";
    if (snapshot_finish(s, err, sizeof(err)) != IOT_OK)
        fail_msg("snapshot_finish: %s", err);
    return s;
}

/* Slots holding a decision of generation. */
static unsigned remembered(const struct relay_check_cache *cache, uint64_t generation)
{
    unsigned n = 0;
    for (unsigned i = 0; i < RELAY_CHECK_SLOTS; i++)
        n += cache->slots[i].generation == generation;
    return n;
}

static enum relay_outcome ask(struct relay_check_cache *cache, registry_snapshot_t *snap,
                              const char *sender, const char *type, const char *arg)
{
    uint32_t timeout_ms = 0;
    char why[96];
    const char *args[] = {arg};
    return relay_check_cached(cache, snap, sender, "t1", type, arg ? 1 : 0, args, 60000,
                              &timeout_ms, why, sizeof(why));
}

static void test_cache_is_the_senders_and_goes_stale(void **state)
{
    (void)state;
    registry_t *reg = NULL;
    assert_int_equal(registry_new(&reg), IOT_OK);
    registry_publish(reg, build(true));
    registry_snapshot_t *snap = registry_acquire(reg);
    uint64_t generation = registry_snapshot_generation(snap);
    assert_int_not_equal(generation, 0);
    struct relay_check_cache *cache = calloc(1, sizeof(*cache));
    assert_non_null(cache);

    /* alice's set_point on t1 is allowed, and remembered with its timeout. */
    uint32_t timeout_ms = 0;
    char why[96];
    const char *args[] = {"21"};
    assert_int_equal(relay_check_cached(cache, snap, "alice@acme", "t1", "set_point", 1, args,
                                        60000, &timeout_ms, why, sizeof(why)),
                     RELAY_OK);
    assert_int_equal(timeout_ms, 3000);
    assert_int_equal(remembered(cache, generation), 1);
    timeout_ms = 0;
    assert_int_equal(relay_check_cached(cache, snap, "alice@acme", "t1", "set_point", 1, args,
                                        60000, &timeout_ms, why, sizeof(why)),
                     RELAY_OK);
    assert_int_equal(timeout_ms, 3000); /* from the cache */
    /* A remembered decision still checks each request's arguments. */
    assert_int_equal(ask(cache, snap, "alice@acme", "set_point", "warm"), RELAY_BAD_ARGS);

    /* What alice may do is hers alone: dave (read_temp only) is refused, and not remembered. */
    assert_int_equal(ask(cache, snap, "dave@acme", "set_point", "21"), RELAY_DENIED);
    assert_int_equal(ask(cache, snap, "dave@acme", "read_temp", NULL), RELAY_OK);
    assert_int_equal(remembered(cache, generation), 2);

    /* A new generation (alice's rule revoked) makes every remembered decision stale. */
    registry_publish(reg, build(false));
    registry_snapshot_t *next = registry_acquire(reg);
    assert_true(registry_snapshot_generation(next) > generation);
    assert_int_equal(ask(cache, next, "alice@acme", "set_point", "21"), RELAY_DENIED);
    assert_int_equal(ask(cache, next, "dave@acme", "read_temp", NULL), RELAY_OK);
    assert_int_equal(remembered(cache, registry_snapshot_generation(next)), 1);

    free(cache);
    registry_release(next);
    registry_release(snap);
    registry_free(reg);
}

/* A role change publishes a new generation: a remembered OK of the old role does not outlive
 * it, and the refusal names the role (issue 17). */
static void test_role_change_goes_stale(void **state)
{
    (void)state;
    registry_t *reg = NULL;
    assert_int_equal(registry_new(&reg), IOT_OK);
    registry_publish(reg, build(true));
    registry_snapshot_t *snap = registry_acquire(reg);
    struct relay_check_cache *cache = calloc(1, sizeof(*cache));
    assert_non_null(cache);
    assert_int_equal(ask(cache, snap, "alice@acme", "read_temp", NULL), RELAY_OK);
    assert_int_equal(remembered(cache, registry_snapshot_generation(snap)), 1);

    alice_role = REG_ROLE_VIEWER;
    registry_publish(reg, build(true));
    alice_role = REG_ROLE_OPERATOR;
    registry_snapshot_t *next = registry_acquire(reg);
    uint32_t timeout_ms = 0;
    char why[96];
    assert_int_equal(relay_check_cached(cache, next, "alice@acme", "t1", "read_temp", 0, NULL,
                                        60000, &timeout_ms, why, sizeof(why)),
                     RELAY_DENIED);
    assert_string_equal(why, "role viewer may not send commands");

    free(cache);
    registry_release(next);
    registry_release(snap);
    registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_is_the_senders_and_goes_stale),
        cmocka_unit_test(test_role_change_goes_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
