/*
 * test_incremental.c - the incremental registry against a full reload, on a real MariaDB.
 *
 * Random sequences of administrative changes (every mutating registry command, over small sets
 * of names so that changes collide, name each other and fail) go through admin_apply, which
 * publishes each one incrementally (registry_refresh: the changed devices re-read by key, or
 * the core re-read with the devices shared). After every step, the published snapshot and one
 * loaded from scratch (registry_load) are rendered the same way and must be identical: every
 * list and show query, every access decision (with its rule and reason) and read permission
 * between every principal and device for every message name, the accessors of registry.h
 * (device, user and message lookups, sealed secrets, groups, events, iteration). Some steps are
 * batches: several device changes committed one by one, then published by one refresh with
 * their ids, as a bulk import does. Each step also checks that the refresh shared what it
 * should (the core for a device change, the device chunks for any other), so the test cannot
 * pass by falling back to full reloads. Seeds are fixed (IOTD_TEST_SEED overrides the first);
 * a failure names the seed, the step and the first line that differs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db_fixture.h"
#include "ctl_proto.h"
#include "iot_error.h"
#include "registry.h"
#include "registry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEPS_PER_SEED 150
#define TIME_LIMIT_S   150
#define NTENANTNAMES   2
#define NTYPENAMES     3
#define NMESSAGENAMES  4
#define NDEVICENAMES   24
#define NUSERNAMES     4
#define NGROUPNAMES    4 /* g0, g1 hold devices; g2, g3 users */

/* ---- a growable text ---- */

struct text {
    char *p;
    size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int len = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        assert_true(len >= 0);
        if (t->p && t->n + (size_t)len < t->cap) {
            t->n += (size_t)len;
            return;
        }
        t->cap = (t->cap + (size_t)len + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
}

/* ---- rendering a snapshot: everything a reader can ask of it ---- */

static void query(struct text *t, const registry_snapshot_t *s, const char *name,
                  const char *args_json)
{
    char err[300] = "";
    cJSON *args = cJSON_Parse(args_json), *result = NULL;
    assert_non_null(args);
    int rc = registry_query(s, ctl_command_by_name(name), args, &result, err, sizeof(err));
    char *json = result ? cJSON_PrintUnformatted(result) : NULL;
    put(t, "%s %s -> %s %s\n", name, args_json, iot_error_name(rc), json ? json : err);
    free(json);
    cJSON_Delete(result);
    cJSON_Delete(args);
}

static void foreach_device(const char *id, const char *tenant, const char *type, void *arg)
{
    put(arg, "foreach %s %s %s\n", id, tenant, type);
}

static void foreach_address(const char *id, const char *address, void *arg)
{
    put(arg, "address %s %s\n", id, address);
}

static void render_lookups(struct text *t, const registry_snapshot_t *s, const uint8_t *key)
{
    char id[16], user[32], msg[16], group[16];
    for (int d = 0; d < NDEVICENAMES; d++) {
        snprintf(id, sizeof(id), "d%d", d);
        struct registry_device_info di;
        int rc = registry_device_lookup(s, id, &di);
        if (rc == IOT_OK)
            put(t, "device %s %s %s %d %d\n", di.id, di.tenant, di.type, di.enabled, di.atecc508a);
        uint8_t secret[REGISTRY_SECRET_LEN] = {0};
        rc = registry_device_secret(s, key, id, secret);
        put(t, "secret %s %d %02x%02x%02x\n", id, rc, secret[0], secret[1], secret[31]);
        for (int m = 0; m <= NMESSAGENAMES; m++) {
            snprintf(msg, sizeof(msg), "m%d", m);
            struct registry_message_info mi;
            if (registry_message_lookup(s, id, msg, &mi) == IOT_OK)
                put(t, "message %s %s %d %s %u %s %s\n", id, mi.name, mi.event, mi.args,
                    mi.timeout_ms, mi.start ? mi.start : "-", mi.stop ? mi.stop : "-");
        }
        for (int g = 0; g < NGROUPNAMES; g++) {
            snprintf(group, sizeof(group), "g%d", g);
            if (registry_device_in_group(s, id, group))
                put(t, "in-group %s %s\n", id, group);
        }
    }
    for (int tn = 0; tn < NTENANTNAMES; tn++)
        for (int u = 0; u < NUSERNAMES; u++) {
            snprintf(user, sizeof(user), "u%d@p%d", u, tn);
            struct registry_user_info ui;
            if (registry_user_lookup(s, user, &ui) == IOT_OK)
                put(t, "user %s %s %s %d %s\n", ui.address, ui.tenant, ui.role, ui.may_act,
                    ui.password_hash);
        }
    for (int tn = 0; tn < NTENANTNAMES; tn++) {
        char tenant[8], type[8];
        snprintf(tenant, sizeof(tenant), "p%d", tn);
        for (int ty = -1; ty < NTYPENAMES; ty++) {
            snprintf(type, sizeof(type), "t%d", ty);
            for (int m = 0; m < NMESSAGENAMES; m++) {
                snprintf(msg, sizeof(msg), "m%d", m);
                if (registry_event_defined(s, tenant, ty < 0 ? NULL : type, msg))
                    put(t, "event %s %s %s\n", tenant, ty < 0 ? "*" : type, msg);
            }
        }
    }
    registry_devices_foreach(s, foreach_device, t);
    registry_devices_last_address(s, foreach_address, t);
    size_t tenants, devices, users, rules;
    registry_counts(s, &tenants, &devices, &users, &rules);
    put(t, "counts %zu %zu %zu %zu\n", tenants, devices, users, rules);
}

static void render_access(struct text *t, const registry_snapshot_t *s)
{
    char principal[32], device[16], msg[16];
    for (int p = 0; p < NDEVICENAMES + NTENANTNAMES * NUSERNAMES; p++) {
        if (p < NDEVICENAMES)
            snprintf(principal, sizeof(principal), "d%d", p);
        else
            snprintf(principal, sizeof(principal), "u%d@p%d", (p - NDEVICENAMES) % NUSERNAMES,
                     (p - NDEVICENAMES) / NUSERNAMES);
        for (int d = 0; d < NDEVICENAMES; d++) {
            snprintf(device, sizeof(device), "d%d", d);
            for (int m = 0; m <= NMESSAGENAMES; m++) {
                snprintf(msg, sizeof(msg), "m%d", m);
                struct access_decision dec;
                int rc = registry_access_check(s, principal, device, msg, &dec);
                put(t, "access %s %s %s %d %d %lld %s | %d %d\n", principal, device, msg, rc,
                    dec.allow, dec.rule_id, dec.reason,
                    registry_access_allows(s, principal, device, msg),
                    registry_access_allows_read(s, principal, device, msg));
            }
        }
    }
}

static void render(struct text *t, const registry_snapshot_t *s, const uint8_t *key)
{
    char args[160];
    t->n = 0;
    put(t, "%s", "");
    static const char *const lists[] = {"tenant.list", "type.list",  "device.list",
                                        "user.list",   "group.list", "access.list"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        query(t, s, lists[i], "{}");
    for (int tn = 0; tn < NTENANTNAMES; tn++) {
        snprintf(args, sizeof(args), "{\"name\":\"p%d\"}", tn);
        query(t, s, "tenant.show", args);
        for (int ty = 0; ty < NTYPENAMES; ty++) {
            snprintf(args, sizeof(args), "{\"tenant\":\"p%d\",\"name\":\"t%d\"}", tn, ty);
            query(t, s, "type.show", args);
            snprintf(args, sizeof(args), "{\"tenant\":\"p%d\",\"type\":\"t%d\"}", tn, ty);
            query(t, s, "device.list", args);
        }
        for (int g = 0; g < NGROUPNAMES; g++) {
            snprintf(args, sizeof(args), "{\"tenant\":\"p%d\",\"name\":\"g%d\"}", tn, g);
            query(t, s, "group.show", args);
        }
        for (int u = 0; u < NUSERNAMES; u++) {
            snprintf(args, sizeof(args), "{\"user\":\"u%d@p%d\"}", u, tn);
            query(t, s, "user.show", args);
        }
    }
    for (int d = 0; d < NDEVICENAMES; d++) {
        snprintf(args, sizeof(args), "{\"id\":\"d%d\"}", d);
        query(t, s, "device.show", args);
    }
    render_lookups(t, s, key);
    render_access(t, s);
}

/* ---- random changes ---- */

struct step {
    char name[32];
    char args[300];
};

static int pick(unsigned *seed, int n)
{
    return (int)(rand_r(seed) % (unsigned)n);
}

static void random_grant(unsigned *seed, int tn, struct step *st)
{
    static const char *const subjects[] = {"user:u", "device:d", "group:g"};
    static const char *const targets[] = {"device:d", "type:t", "group:g", "any"};
    int sk = pick(seed, 3), tk = pick(seed, 4);
    int sn = sk == 0   ? pick(seed, NUSERNAMES)
             : sk == 1 ? pick(seed, NDEVICENAMES)
                       : 2 + pick(seed, 2);
    int tnum = tk == 0   ? pick(seed, NDEVICENAMES)
               : tk == 1 ? pick(seed, NTYPENAMES)
                         : pick(seed, 2);
    char target[32], message[40] = "";
    if (tk == 3)
        snprintf(target, sizeof(target), "any");
    else
        snprintf(target, sizeof(target), "%s%d", targets[tk], tnum);
    if (pick(seed, 2))
        snprintf(message, sizeof(message), ",\"message\":\"m%d\"", pick(seed, NMESSAGENAMES));
    snprintf(st->name, sizeof(st->name), "access.grant");
    snprintf(st->args, sizeof(st->args),
             "{\"subject\":\"%s%d\",\"target\":\"%s\",\"tenant\":\"p%d\"%s}", subjects[sk], sn,
             target, tn, message);
}

/* One random command (never the batch: see batch_step). rules: the rule ids published. */
static void random_step(unsigned *seed, const registry_snapshot_t *s, struct step *st)
{
    int tn = pick(seed, NTENANTNAMES), d = pick(seed, NDEVICENAMES), ty = pick(seed, NTYPENAMES);
    int m = pick(seed, NMESSAGENAMES), u = pick(seed, NUSERNAMES), g = pick(seed, NGROUPNAMES);
    static const char *const roles[] = {"admin", "operator", "viewer"};
    int k = pick(seed, 40);
#define STEP(n, ...)                                                                               \
    do {                                                                                           \
        snprintf(st->name, sizeof(st->name), "%s", n);                                             \
        snprintf(st->args, sizeof(st->args), __VA_ARGS__);                                         \
    } while (0)
    if (k < 2)
        STEP("tenant.add", "{\"name\":\"p%d\"}", tn);
    else if (k < 3 && pick(seed, 3) == 0)
        STEP("tenant.remove", "{\"name\":\"p%d\",\"force\":true}", tn);
    else if (k < 5)
        STEP("type.add", "{\"name\":\"t%d\",\"tenant\":\"p%d\"}", ty, tn);
    else if (k < 6)
        STEP("type.remove", "{\"name\":\"t%d\",\"tenant\":\"p%d\"}", ty, tn);
    else if (k < 8)
        STEP("message.add",
             "{\"type\":\"t%d\",\"name\":\"m%d\",\"tenant\":\"p%d\",\"direction\":\"%s\","
             "\"args\":\"%s\",\"timeout_ms\":%d}",
             ty, m, tn, pick(seed, 3) ? "command" : "event", pick(seed, 2) ? "x:int?" : "",
             1000 + 100 * pick(seed, 10));
    else if (k < 9)
        STEP("message.remove", "{\"type\":\"t%d\",\"name\":\"m%d\",\"tenant\":\"p%d\"}", ty, m, tn);
    else if (k < 15)
        STEP("device.add", "{\"id\":\"d%d\",\"tenant\":\"p%d\",\"type\":\"t%d\"%s}", d, tn, ty,
             pick(seed, 4) ? "" : ",\"disabled\":true");
    else if (k < 17)
        STEP("device.remove", "{\"id\":\"d%d\"}", d);
    else if (k < 19)
        STEP(pick(seed, 2) ? "device.enable" : "device.disable", "{\"id\":\"d%d\"}", d);
    else if (k < 20)
        STEP("device.rekey", "{\"id\":\"d%d\"}", d);
    else if (k < 22)
        STEP("user.add",
             "{\"user\":\"u%d@p%d\",\"password\":\"correct horse battery\","
             "\"role\":\"%s\"}",
             u, tn, roles[pick(seed, 3)]);
    else if (k < 23)
        STEP("user.remove", "{\"user\":\"u%d@p%d\"}", u, tn);
    else if (k < 24)
        STEP("user.role", "{\"user\":\"u%d@p%d\",\"role\":\"%s\"}", u, tn, roles[pick(seed, 3)]);
    else if (k < 25)
        STEP("user.passwd", "{\"user\":\"u%d@p%d\",\"password\":\"another horse %d\"}", u, tn,
             pick(seed, 1000));
    else if (k < 27)
        STEP("group.add", "{\"name\":\"g%d\",\"tenant\":\"p%d\",\"kind\":\"%s\"}", g, tn,
             g < 2 ? "device" : "user");
    else if (k < 28)
        STEP("group.remove", "{\"name\":\"g%d\",\"tenant\":\"p%d\"}", g, tn);
    else if (k < 31) {
        char member[16];
        snprintf(member, sizeof(member), g < 2 ? "d%d" : "u%d", g < 2 ? d : u);
        STEP(pick(seed, 3) ? "group.member.add" : "group.member.remove",
             "{\"group\":\"g%d\",\"member\":\"%s\",\"tenant\":\"p%d\"}", g, member, tn);
    } else if (k < 36) {
        random_grant(seed, tn, st);
    } else {
        /* revoke one of the published rules, or a rule that does not exist */
        long long rule = 999999;
        if (s->core->nrules && pick(seed, 5))
            rule = (long long)s->core->rules[pick(seed, (int)s->core->nrules)].id;
        STEP("access.revoke", "{\"rule\":%lld}", rule);
    }
#undef STEP
}

/* ---- the test ---- */

struct run {
    struct fixture *f;
    registry_t *reg;
    struct text got, want;
    unsigned seed;
    int step;
    int shared_core, shared_devices; /* how often the refresh shared what it should */
};

static void compare(struct run *r, const char *what)
{
    char err[300] = "";
    registry_snapshot_t *full = NULL, *incremental = registry_acquire(r->reg);
    if (registry_load(r->f->conn, &full, err, sizeof(err)) != IOT_OK)
        fail_msg("registry_load: %s", err);
    render(&r->got, incremental, r->f->key);
    render(&r->want, full, r->f->key);
    registry_release(incremental);
    registry_release(full);
    if (r->got.n == r->want.n && memcmp(r->got.p, r->want.p, r->got.n) == 0)
        return;
    size_t line = 0, i = 0;
    while (i < r->got.n && i < r->want.n && r->got.p[i] == r->want.p[i])
        if (r->got.p[i++] == '\n')
            line = i;
    fail_msg("seed %u step %d (%s): the incremental snapshot differs from a full reload:\n"
             "incremental: %.300s\nfull reload: %.300s",
             r->seed, r->step, what, r->got.p + line, r->want.p + line);
}

static bool is_device_command(const char *name)
{
    return strncmp(name, "device.", 7) == 0;
}

/* One command through admin_apply; checks the sharing that proves the refresh was
 * incremental when the command succeeded. */
static void apply_step(struct run *r, const struct step *st)
{
    char err[300] = "";
    cJSON *args = cJSON_Parse(st->args), *result = NULL;
    assert_non_null(args);
    registry_snapshot_t *before = registry_acquire(r->reg);
    bool referenced = strcmp(st->name, "device.remove") == 0 &&
                      snapshot_device_referenced(before, ctl_get_string(args, "id"));
    int rc = admin_apply(r->reg, r->f->conn, &r->f->ctx, ctl_command_by_name(st->name), args,
                         &result, err, sizeof(err));
    registry_snapshot_t *after = registry_acquire(r->reg);
    if (rc == IOT_OK && strcmp(st->name, "tenant.remove") != 0) {
        assert_true(after != before);
        if (is_device_command(st->name) && !referenced) {
            if (after->core != before->core)
                fail_msg("seed %u step %d: %s did not share the core", r->seed, r->step, st->name);
            r->shared_core++;
        } else if (!is_device_command(st->name) && before->devices.nchunks) {
            if (after->devices.chunks[0] != before->devices.chunks[0])
                fail_msg("seed %u step %d: %s did not share the devices", r->seed, r->step,
                         st->name);
            r->shared_devices++;
        }
    }
    if (rc != IOT_OK)
        assert_true(after == before); /* a refused change publishes nothing */
    registry_release(before);
    registry_release(after);
    cJSON_Delete(result);
    cJSON_Delete(args);
}

/* Several device changes, each committed on its own (admin_execute), then one refresh with all
 * their ids under the change lock: how a bulk import publishes. */
static void batch_step(struct run *r, unsigned *seed)
{
    cJSON *args[6] = {0};
    const char *ids[6];
    size_t n = 1 + (size_t)pick(seed, 6);
    char err[300] = "";
    registry_change_lock(r->reg);
    for (size_t i = 0; i < n; i++) {
        struct step st;
        int d = pick(seed, NDEVICENAMES), k = pick(seed, 4);
        snprintf(st.name, sizeof(st.name), "%s",
                 k < 2    ? "device.add"
                 : k == 2 ? "device.remove"
                          : "device.disable");
        snprintf(st.args, sizeof(st.args), "{\"id\":\"d%d\",\"tenant\":\"p%d\",\"type\":\"t%d\"}",
                 d, pick(seed, NTENANTNAMES), pick(seed, NTYPENAMES));
        if (k >= 2)
            snprintf(st.args, sizeof(st.args), "{\"id\":\"d%d\"}", d);
        args[i] = cJSON_Parse(st.args);
        cJSON *result = NULL;
        admin_execute(r->f->conn, &r->f->ctx, ctl_command_by_name(st.name), args[i], &result, err,
                      sizeof(err));
        cJSON_Delete(result);
        ids[i] = ctl_get_string(args[i], "id");
    }
    /* Either kind of batch refresh (the core re-read too, as an import with groups asks) must
     * come out as a full reload would. */
    enum registry_refresh what =
        pick(seed, 2) ? REGISTRY_REFRESH_DEVICES_CORE : REGISTRY_REFRESH_DEVICES;
    if (registry_refresh(r->reg, r->f->conn, what, ids, n, err, sizeof(err)) != IOT_OK)
        fail_msg("seed %u step %d: refresh of a batch: %s", r->seed, r->step, err);
    registry_change_unlock(r->reg);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(args[i]);
}

static void test_random_changes_match_full_reload(void **state)
{
    struct run r = {.f = *state};
    unsigned seeds[] = {1, 2, 3};
    const char *env = getenv("IOTD_TEST_SEED");
    if (env)
        seeds[0] = (unsigned)strtoul(env, NULL, 10);
    time_t t0 = time(NULL);
    char err[300];
    registry_snapshot_t *start = NULL;
    assert_int_equal(registry_new(&r.reg), IOT_OK);
    assert_int_equal(registry_load(r.f->conn, &start, err, sizeof(err)), IOT_OK);
    registry_publish(r.reg, start);
    int steps = 0;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        unsigned seed = seeds[i];
        r.seed = seeds[i];
        for (r.step = 0; r.step < STEPS_PER_SEED && time(NULL) - t0 < TIME_LIMIT_S; r.step++) {
            struct step st;
            if (pick(&seed, 10) == 0) {
                batch_step(&r, &seed);
                compare(&r, "batch");
            } else {
                registry_snapshot_t *s = registry_acquire(r.reg);
                random_step(&seed, s, &st);
                registry_release(s);
                apply_step(&r, &st);
                compare(&r, st.name);
            }
            steps++;
        }
    }
    printf("# %d steps in %lds; the core shared by %d device changes, the devices by %d other "
           "changes\n",
           steps, (long)(time(NULL) - t0), r.shared_core, r.shared_devices);
    assert_true(steps >= 100);
    assert_true(r.shared_core > 20 && r.shared_devices > 20);
    registry_free(r.reg);
    free(r.got.p);
    free(r.want.p);
}

static int test_setup(void **state)
{
    if (!*state)
        skip();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_random_changes_match_full_reload, test_setup),
    };
    return cmocka_run_group_tests(tests, db_fixture_setup, db_fixture_teardown);
}
