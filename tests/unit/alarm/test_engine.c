/*
 * test_engine.c - the alarm engine, every path, with time passed in by hand.
 *
 * A recorder collects the transitions the engine emits; each test feeds events, ticks, tracks,
 * offline notices and ALARM frames at chosen times and checks exactly which transitions came
 * out (kind, name, device, value, message, time) and that nothing else did.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alarm/engine.h"
#include "iot_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL /* a plausible wall clock */

struct recorder {
    struct alarm_transition t[256];
    size_t n, taken;
    const char *group_members; /* "dev1,dev2": members of every group */
};

static void record(const struct alarm_transition *t, void *arg)
{
    struct recorder *r = arg;
    assert_true(r->n < 256);
    r->t[r->n++] = *t;
}

static bool in_group(const struct alarm_rule *rule, const char *tenant, const char *device,
                     const char *type, void *arg)
{
    struct recorder *r = arg;
    char list[256];
    (void)rule, (void)tenant, (void)type;
    if (!r->group_members)
        return false;
    snprintf(list, sizeof(list), ",%s,", r->group_members);
    char needle[80];
    snprintf(needle, sizeof(needle), ",%s,", device);
    return strstr(list, needle) != NULL;
}

struct fixture {
    struct recorder rec;
    alarm_engine_t *e;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct alarm_engine_hooks hooks = {.emit = record, .in_scope = in_group, .arg = &f->rec};
    assert_int_equal(alarm_engine_new(&f->e, &hooks), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    alarm_engine_free(f->e);
    free(f);
    return 0;
}

/* ---- building rules and events ---- */

static struct alarm_rule threshold_rule(uint64_t id, const char *name, const char *op, double thr,
                                        double hyst, uint32_t for_ms)
{
    struct alarm_rule r = {.id = id,
                           .scope = ALARM_SCOPE_TENANT,
                           .threshold = thr,
                           .hysteresis = hyst,
                           .for_ms = for_ms,
                           .severity = ALARM_SEVERITY_MAJOR,
                           .enabled = true};
    snprintf(r.tenant, sizeof(r.tenant), "acme");
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.event, sizeof(r.event), "temp_changed");
    snprintf(r.field, sizeof(r.field), "temp");
    assert_true(alarm_op_parse(op, &r.op));
    return r;
}

static struct alarm_rule silence_rule(uint64_t id, const char *name, uint32_t silence_s)
{
    struct alarm_rule r = {.id = id,
                           .scope = ALARM_SCOPE_TENANT,
                           .silence_s = silence_s,
                           .severity = ALARM_SEVERITY_CRITICAL,
                           .enabled = true};
    snprintf(r.tenant, sizeof(r.tenant), "acme");
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.event, sizeof(r.event), "heartbeat");
    return r;
}

static void set_rules(struct fixture *f, const struct alarm_rule *rules, size_t n, int64_t now)
{
    assert_int_equal(alarm_engine_set_rules(f->e, rules, n, now), 0);
}

/* Fields are "key=value" strings, NULL-terminated. */
static const char *lookup(const void *ctx, const char *key)
{
    const char *const *fields = ctx;
    size_t klen = strlen(key);
    for (; *fields; fields++)
        if (strncmp(*fields, key, klen) == 0 && (*fields)[klen] == '=')
            return *fields + klen + 1;
    return NULL;
}

static void event_on(struct fixture *f, const char *device, const char *type, const char *name,
                     const char *field, int64_t now)
{
    const char *fields[] = {field, NULL};
    alarm_engine_event(f->e, "acme", device, type, name, lookup, field ? fields : fields + 1, now);
}

/* temp_changed temp=<value> from dev1 (type thermo). */
static void temp(struct fixture *f, const char *value, int64_t now)
{
    char field[64];
    snprintf(field, sizeof(field), "temp=%s", value);
    event_on(f, "dev1", "thermo", "temp_changed", field, now);
}

/* ---- checking what came out ---- */

static void expect(struct fixture *f, enum alarm_transition_kind kind, const char *name,
                   const char *device, const char *value, const char *message_part, int64_t ts)
{
    struct recorder *r = &f->rec;
    if (r->taken >= r->n)
        fail_msg("expected a %s of %s on %s, got nothing", kind == ALARM_RAISE ? "raise" : "clear",
                 name, device);
    const struct alarm_transition *t = &r->t[r->taken++];
    if (t->kind != kind || strcmp(t->name, name) != 0 || strcmp(t->device, device) != 0)
        fail_msg("expected %s %s/%s, got %s %s/%s (%s)", kind == ALARM_RAISE ? "raise" : "clear",
                 name, device, t->kind == ALARM_RAISE ? "raise" : "clear", t->name, t->device,
                 t->message);
    if (value)
        assert_string_equal(t->value, value);
    if (message_part && !strstr(t->message, message_part))
        fail_msg("message '%s' lacks '%s'", t->message, message_part);
    if (ts)
        assert_int_equal(t->ts_ms, ts);
    assert_string_equal(t->tenant, "acme");
}

static void expect_nothing(struct fixture *f)
{
    struct recorder *r = &f->rec;
    if (r->taken < r->n)
        fail_msg("unexpected %s of %s on %s: %s",
                 r->t[r->taken].kind == ALARM_RAISE ? "raise" : "clear", r->t[r->taken].name,
                 r->t[r->taken].device, r->t[r->taken].message);
}

static const struct alarm_transition *last(struct fixture *f)
{
    assert_true(f->rec.n > 0);
    return &f->rec.t[f->rec.n - 1];
}

/* ---- names and numbers ---- */

static void test_names(void **state)
{
    enum alarm_op op;
    enum alarm_severity sev;
    enum alarm_scope scope;
    enum alarm_source src;
    double v;
    (void)state;
    assert_true(alarm_op_parse(">=", &op) && op == ALARM_OP_GE);
    assert_true(alarm_op_parse("!=", &op) && op == ALARM_OP_NE);
    assert_false(alarm_op_parse("", &op));
    assert_false(alarm_op_parse("=>", &op));
    assert_false(alarm_op_parse(NULL, &op));
    assert_string_equal(alarm_op_name(ALARM_OP_LE), "<=");
    assert_string_equal(alarm_op_name(ALARM_OP_NONE), "");
    assert_true(alarm_severity_parse("critical", &sev) && sev == ALARM_SEVERITY_CRITICAL);
    assert_false(alarm_severity_parse("fatal", &sev));
    assert_string_equal(alarm_severity_name(ALARM_SEVERITY_MINOR), "minor");
    assert_true(alarm_scope_parse("group", &scope) && scope == ALARM_SCOPE_GROUP);
    assert_string_equal(alarm_scope_name(ALARM_SCOPE_TYPE), "type");
    assert_true(alarm_source_parse("device", &src) && src == ALARM_SOURCE_DEVICE);
    assert_string_equal(alarm_source_name(ALARM_SOURCE_RULE), "rule");

    assert_true(alarm_parse_number("21.5", &v) && v == 21.5);
    assert_true(alarm_parse_number("-3e2", &v) && v == -300);
    assert_true(alarm_parse_number(" 7", &v) && v == 7);
    assert_false(alarm_parse_number("", &v));
    assert_false(alarm_parse_number("21.5C", &v));
    assert_false(alarm_parse_number("nan", &v));
    assert_false(alarm_parse_number("inf", &v));
    assert_false(alarm_parse_number("1e999", &v));
    assert_false(alarm_parse_number("warm", &v));
    assert_false(alarm_parse_number(NULL, &v));
}

static void test_new_requires_emit(void **state)
{
    alarm_engine_t *e = NULL;
    struct alarm_engine_hooks hooks = {0};
    (void)state;
    assert_int_equal(alarm_engine_new(&e, &hooks), IOT_EINVAL);
    assert_null(e);
    assert_int_equal(alarm_engine_new(&e, NULL), IOT_EINVAL);
    alarm_engine_free(NULL);
}

/* ---- threshold rules ---- */

static void test_threshold_raise_and_clear(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 0);
    set_rules(f, &r, 1, T0);
    temp(f, "25", T0 + 1);
    expect_nothing(f);
    temp(f, "31.5", T0 + 2);
    expect(f, ALARM_RAISE, "hot", "dev1", "31.5", "temp 31.5 > 30", T0 + 2);
    assert_int_equal(last(f)->severity, ALARM_SEVERITY_MAJOR);
    assert_int_equal(last(f)->source, ALARM_SOURCE_RULE);
    assert_int_equal(last(f)->rule_id, 1);
    /* re-raise while open: nothing */
    temp(f, "35", T0 + 3);
    temp(f, "31", T0 + 4);
    expect_nothing(f);
    /* exactly the threshold: the condition is false, and without hysteresis that clears */
    temp(f, "30", T0 + 5);
    expect(f, ALARM_CLEAR, "hot", "dev1", "30", "temp 30 <= 30", T0 + 5);
    temp(f, "29", T0 + 6);
    expect_nothing(f);
    /* and again: a new raise */
    temp(f, "40", T0 + 7);
    expect(f, ALARM_RAISE, "hot", "dev1", "40", NULL, T0 + 7);
    expect_nothing(f);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.open, 1);
    assert_int_equal(st.raised, 2);
    assert_int_equal(st.cleared, 1);
}

static void test_threshold_ops(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {
        threshold_rule(1, "ge", ">=", 10, 0, 0), threshold_rule(2, "lt", "<", 0, 0, 0),
        threshold_rule(3, "le", "<=", 0, 0, 0),  threshold_rule(4, "eq", "==", 5, 0, 0),
        threshold_rule(5, "ne", "!=", 5, 0, 0),
    };
    set_rules(f, rules, 5, T0);
    temp(f, "5", T0 + 1); /* ne false, eq true */
    expect(f, ALARM_RAISE, "eq", "dev1", "5", "temp 5 == 5", 0);
    expect_nothing(f);
    temp(f, "10", T0 + 2); /* ge true, eq clears, ne raises */
    /* rules are evaluated in id order */
    expect(f, ALARM_RAISE, "ge", "dev1", "10", NULL, 0);
    expect(f, ALARM_CLEAR, "eq", "dev1", "10", "temp 10 != 5", 0);
    expect(f, ALARM_RAISE, "ne", "dev1", "10", NULL, 0);
    expect_nothing(f);
    temp(f, "0", T0 + 3); /* ge clears, le raises, lt not (0 < 0 false) */
    expect(f, ALARM_CLEAR, "ge", "dev1", "0", "temp 0 < 10", 0);
    expect(f, ALARM_RAISE, "le", "dev1", "0", NULL, 0);
    expect_nothing(f);
    temp(f, "-0.5", T0 + 4);
    expect(f, ALARM_RAISE, "lt", "dev1", "-0.5", NULL, 0);
    expect_nothing(f);
    temp(f, "0", T0 + 5); /* lt clears at >= 0, le stays */
    expect(f, ALARM_CLEAR, "lt", "dev1", "0", "temp 0 >= 0", 0);
    expect_nothing(f);
    temp(f, "0.1", T0 + 6);
    expect(f, ALARM_CLEAR, "le", "dev1", "0.1", "temp 0.1 > 0", 0);
    expect_nothing(f);
    temp(f, "5", T0 + 7); /* ne clears, eq raises */
    expect(f, ALARM_RAISE, "eq", "dev1", "5", NULL, 0);
    expect(f, ALARM_CLEAR, "ne", "dev1", "5", "temp 5 == 5", 0);
    expect_nothing(f);
}

static void test_hysteresis_above(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {threshold_rule(1, "gt", ">", 30, 2, 0),
                                 threshold_rule(2, "ge", ">=", 30, 2, 0)};
    set_rules(f, rules, 2, T0);
    temp(f, "30", T0 + 1);
    expect(f, ALARM_RAISE, "ge", "dev1", "30", NULL, 0);
    expect_nothing(f);
    temp(f, "30.5", T0 + 2);
    expect(f, ALARM_RAISE, "gt", "dev1", "30.5", NULL, 0);
    expect_nothing(f);
    /* inside the band: both stay open */
    temp(f, "29", T0 + 3);
    temp(f, "28.5", T0 + 4);
    expect_nothing(f);
    /* at threshold - hysteresis: '>' clears (<= 28), '>=' not yet (needs < 28) */
    temp(f, "28", T0 + 5);
    expect(f, ALARM_CLEAR, "gt", "dev1", "28", "temp 28 <= 28", 0);
    expect_nothing(f);
    temp(f, "27.99", T0 + 6);
    expect(f, ALARM_CLEAR, "ge", "dev1", "27.99", "temp 27.99 < 28", 0);
    expect_nothing(f);
}

static void test_hysteresis_below(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {threshold_rule(1, "lt", "<", 5, 1.5, 0),
                                 threshold_rule(2, "le", "<=", 5, 1.5, 0)};
    set_rules(f, rules, 2, T0);
    temp(f, "5", T0 + 1);
    expect(f, ALARM_RAISE, "le", "dev1", "5", NULL, 0);
    temp(f, "4", T0 + 2);
    expect(f, ALARM_RAISE, "lt", "dev1", "4", NULL, 0);
    temp(f, "6", T0 + 3);
    temp(f, "5.5", T0 + 4);
    expect_nothing(f);
    temp(f, "6.5", T0 + 5); /* '<' clears at >= 6.5, '<=' needs > 6.5 */
    expect(f, ALARM_CLEAR, "lt", "dev1", "6.5", "temp 6.5 >= 6.5", 0);
    expect_nothing(f);
    temp(f, "6.6", T0 + 6);
    expect(f, ALARM_CLEAR, "le", "dev1", "6.6", "temp 6.6 > 6.5", 0);
    expect_nothing(f);
}

static void test_flapping_without_hysteresis(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 0);
    set_rules(f, &r, 1, T0);
    const char *values[] = {"30.1", "29.9", "30.1", "29.9", "30.1", "29.9"};
    for (size_t i = 0; i < 6; i++)
        temp(f, values[i], T0 + (int64_t)i);
    for (size_t i = 0; i < 6; i++)
        expect(f, i % 2 ? ALARM_CLEAR : ALARM_RAISE, "hot", "dev1", values[i], NULL,
               T0 + (int64_t)i);
    expect_nothing(f);
}

static void test_flapping_with_hysteresis(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 1, 0);
    set_rules(f, &r, 1, T0);
    const char *values[] = {"30.1", "29.9", "30.1", "29.9", "30.1", "29.9", "29.5"};
    for (size_t i = 0; i < 7; i++)
        temp(f, values[i], T0 + (int64_t)i);
    expect(f, ALARM_RAISE, "hot", "dev1", "30.1", NULL, T0);
    expect_nothing(f); /* one raise, no clear: the value never crossed back to 29 */
    temp(f, "29", T0 + 10);
    expect(f, ALARM_CLEAR, "hot", "dev1", "29", "temp 29 <= 29", T0 + 10);
    expect_nothing(f);
}

static void test_min_duration_satisfied(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 5000);
    set_rules(f, &r, 1, T0);
    assert_int_equal(alarm_engine_tick(f->e, T0), INT64_MAX);
    temp(f, "31", T0 + 1000);
    expect_nothing(f);
    assert_int_equal(alarm_engine_next_deadline(f->e), T0 + 6000);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.pending, 1);
    assert_int_equal(alarm_engine_tick(f->e, T0 + 3000), T0 + 6000);
    temp(f, "32", T0 + 4000); /* still true: the pending clock keeps its start */
    assert_int_equal(alarm_engine_tick(f->e, T0 + 5999), T0 + 6000);
    expect_nothing(f);
    assert_int_equal(alarm_engine_tick(f->e, T0 + 6100), INT64_MAX);
    /* raised at the moment the duration was reached, with the last value seen */
    expect(f, ALARM_RAISE, "hot", "dev1", "32", "for 5000 ms", T0 + 6000);
    expect_nothing(f);
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.open, 1);
    temp(f, "29", T0 + 7000);
    expect(f, ALARM_CLEAR, "hot", "dev1", "29", NULL, T0 + 7000);
    expect_nothing(f);
}

static void test_min_duration_canceled(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 5000);
    set_rules(f, &r, 1, T0);
    temp(f, "31", T0);
    temp(f, "29", T0 + 3000); /* the condition broke: no alarm */
    alarm_engine_tick(f->e, T0 + 10000);
    expect_nothing(f);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.watches, 0);
    /* a new run starts its own clock */
    temp(f, "31", T0 + 11000);
    alarm_engine_tick(f->e, T0 + 15000);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 16000);
    expect(f, ALARM_RAISE, "hot", "dev1", "31", NULL, T0 + 16000);
    expect_nothing(f);
}

static void test_min_duration_raised_by_late_event(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 5000);
    set_rules(f, &r, 1, T0);
    temp(f, "31", T0);
    temp(f, "33", T0 + 7000); /* no tick in between: the event itself raises */
    expect(f, ALARM_RAISE, "hot", "dev1", "33", NULL, T0 + 5000);
    alarm_engine_tick(f->e, T0 + 8000);
    expect_nothing(f);
}

static void test_non_numeric_and_missing(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 0);
    set_rules(f, &r, 1, T0);
    temp(f, "31", T0);
    expect(f, ALARM_RAISE, "hot", "dev1", NULL, NULL, 0);
    temp(f, "cold", T0 + 1);
    temp(f, "12abc", T0 + 2);
    temp(f, "nan", T0 + 3);
    event_on(f, "dev1", "thermo", "temp_changed", "humidity=20", T0 + 4);
    event_on(f, "dev1", "thermo", "temp_changed", NULL, T0 + 5);
    expect_nothing(f); /* the alarm stays as it was */
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.non_numeric, 3);
    assert_int_equal(st.missing_field, 2);
    assert_int_equal(st.open, 1);
    /* another event name does not touch the rule */
    event_on(f, "dev1", "thermo", "other", "temp=1", T0 + 6);
    expect_nothing(f);
}

static void test_scopes(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {threshold_rule(1, "on-dev2", ">", 30, 0, 0),
                                 threshold_rule(2, "on-lamps", ">", 30, 0, 0),
                                 threshold_rule(3, "on-group", ">", 30, 0, 0),
                                 threshold_rule(4, "other-tenant", ">", 30, 0, 0)};
    rules[0].scope = ALARM_SCOPE_DEVICE;
    snprintf(rules[0].target, sizeof(rules[0].target), "dev2");
    rules[1].scope = ALARM_SCOPE_TYPE;
    snprintf(rules[1].target, sizeof(rules[1].target), "lamp");
    rules[2].scope = ALARM_SCOPE_GROUP;
    snprintf(rules[2].target, sizeof(rules[2].target), "ops");
    snprintf(rules[3].tenant, sizeof(rules[3].tenant), "beta");
    f->rec.group_members = "dev3";
    set_rules(f, rules, 4, T0);
    event_on(f, "dev1", "thermo", "temp_changed", "temp=40", T0);
    expect_nothing(f);
    event_on(f, "dev2", "thermo", "temp_changed", "temp=40", T0);
    expect(f, ALARM_RAISE, "on-dev2", "dev2", NULL, NULL, 0);
    expect_nothing(f);
    event_on(f, "dev4", "lamp", "temp_changed", "temp=40", T0);
    expect(f, ALARM_RAISE, "on-lamps", "dev4", NULL, NULL, 0);
    expect_nothing(f);
    event_on(f, "dev3", "thermo", "temp_changed", "temp=40", T0);
    expect(f, ALARM_RAISE, "on-group", "dev3", NULL, NULL, 0);
    expect_nothing(f);
}

static void test_disabled_and_invalid_rules(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {threshold_rule(1, "off", ">", 30, 0, 0),
                                 threshold_rule(2, "bad", ">", 30, 0, 0),
                                 threshold_rule(3, "good", ">", 30, 0, 0)};
    rules[0].enabled = false;
    rules[1].op = ALARM_OP_NONE;
    set_rules(f, rules, 3, T0);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.rules, 1);
    assert_int_equal(st.rules_skipped, 1);
    temp(f, "40", T0);
    expect(f, ALARM_RAISE, "good", "dev1", NULL, NULL, 0);
    expect_nothing(f);
}

/* ---- rule replacement ---- */

static void test_rules_replaced(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {threshold_rule(1, "hot", ">", 30, 0, 0),
                                 threshold_rule(2, "very-hot", ">", 50, 0, 0),
                                 threshold_rule(3, "slow", ">", 30, 0, 60000)};
    set_rules(f, rules, 3, T0);
    temp(f, "60", T0);
    expect(f, ALARM_RAISE, "hot", "dev1", NULL, NULL, 0);
    expect(f, ALARM_RAISE, "very-hot", "dev1", NULL, NULL, 0);
    expect_nothing(f);
    /* keep 1 and 3 (reordered), drop 2, add 4: 2's open alarm clears, 1 keeps its state, 3 keeps
     * its pending clock */
    struct alarm_rule next[] = {threshold_rule(4, "cold", "<", 0, 0, 0), rules[2], rules[0]};
    set_rules(f, next, 3, T0 + 10);
    expect(f, ALARM_CLEAR, "very-hot", "dev1", "", "rule removed", T0 + 10);
    expect_nothing(f);
    temp(f, "61", T0 + 20); /* 1 is still open: no duplicate */
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 60000);
    expect(f, ALARM_RAISE, "slow", "dev1", NULL, NULL, T0 + 60000);
    expect_nothing(f);
    /* disable 1: its alarm clears; the same rule set again changes nothing */
    next[2].enabled = false;
    set_rules(f, next, 3, T0 + 70000);
    expect(f, ALARM_CLEAR, "hot", "dev1", NULL, "rule disabled", T0 + 70000);
    expect_nothing(f);
    set_rules(f, next, 3, T0 + 80000);
    expect_nothing(f);
    /* everything removed */
    set_rules(f, NULL, 0, T0 + 90000);
    expect(f, ALARM_CLEAR, "slow", "dev1", NULL, "rule removed", T0 + 90000);
    expect_nothing(f);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.open, 0);
    assert_int_equal(st.watches, 0);
}

/* ---- silence ---- */

static void test_silence_raise_and_clear(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = silence_rule(7, "quiet", 60);
    set_rules(f, &r, 1, T0);
    assert_int_equal(alarm_engine_track(f->e, "acme", "dev1", "thermo", T0), 0);
    assert_int_equal(alarm_engine_track(f->e, "acme", "dev2", "thermo", T0 + 10000), 0);
    assert_int_equal(alarm_engine_next_deadline(f->e), T0 + 60000);
    assert_int_equal(alarm_engine_tick(f->e, T0 + 30000), T0 + 60000);
    /* dev1 reports in time: its clock restarts */
    event_on(f, "dev1", "thermo", "heartbeat", NULL, T0 + 50000);
    /* another event name does not count */
    event_on(f, "dev2", "thermo", "temp_changed", "temp=1", T0 + 55000);
    assert_int_equal(alarm_engine_tick(f->e, T0 + 60000), T0 + 70000);
    expect_nothing(f);
    assert_int_equal(alarm_engine_tick(f->e, T0 + 70000), T0 + 110000);
    expect(f, ALARM_RAISE, "quiet", "dev2", "", "no heartbeat for 60 s", T0 + 70000);
    assert_int_equal(last(f)->severity, ALARM_SEVERITY_CRITICAL);
    expect_nothing(f);
    /* open: no re-raise on later ticks */
    alarm_engine_tick(f->e, T0 + 200000);
    expect(f, ALARM_RAISE, "quiet", "dev1", NULL, NULL, T0 + 110000);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 400000);
    expect_nothing(f);
    /* the next heartbeat clears, and starts a new clock */
    event_on(f, "dev2", "thermo", "heartbeat", NULL, T0 + 500000);
    expect(f, ALARM_CLEAR, "quiet", "dev2", NULL, "heartbeat received", T0 + 500000);
    expect_nothing(f);
    event_on(f, "dev2", "thermo", "heartbeat", NULL, T0 + 510000);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 569999);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 570000);
    expect(f, ALARM_RAISE, "quiet", "dev2", NULL, NULL, T0 + 570000);
    expect_nothing(f);
}

static void test_silence_device_seen_first_by_event(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = silence_rule(7, "quiet", 10);
    set_rules(f, &r, 1, T0);
    event_on(f, "dev9", "thermo", "heartbeat", NULL, T0 + 5000); /* never tracked */
    alarm_engine_tick(f->e, T0 + 14999);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 15000);
    expect(f, ALARM_RAISE, "quiet", "dev9", NULL, NULL, T0 + 15000);
    expect_nothing(f);
}

static void test_silence_scope_and_retrack(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = silence_rule(7, "quiet", 10);
    r.scope = ALARM_SCOPE_GROUP;
    snprintf(r.target, sizeof(r.target), "ops");
    f->rec.group_members = "dev1";
    set_rules(f, &r, 1, T0);
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0);
    alarm_engine_track(f->e, "acme", "dev2", "thermo", T0);
    alarm_engine_tick(f->e, T0 + 10000);
    expect(f, ALARM_RAISE, "quiet", "dev1", NULL, NULL, T0 + 10000);
    expect_nothing(f);
    /* membership changes: dev1 leaves (its alarm clears), dev2 joins (its clock starts now) */
    f->rec.group_members = "dev2";
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0 + 20000);
    expect(f, ALARM_CLEAR, "quiet", "dev1", NULL, "device out of scope", T0 + 20000);
    alarm_engine_track(f->e, "acme", "dev2", "thermo", T0 + 20000);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 29999);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 30000);
    expect(f, ALARM_RAISE, "quiet", "dev2", NULL, NULL, T0 + 30000);
    expect_nothing(f);
    /* tracking again without a change keeps the clock and the alarm */
    alarm_engine_track(f->e, "acme", "dev2", "thermo", T0 + 40000);
    expect_nothing(f);
}

static void test_silence_rule_added_later(void **state)
{
    struct fixture *f = *state;
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0);
    struct alarm_rule r = silence_rule(7, "quiet", 10);
    set_rules(f, &r, 1, T0 + 100000); /* the clock starts with the rule, not with tracking */
    alarm_engine_tick(f->e, T0 + 100001);
    expect_nothing(f);
    alarm_engine_tick(f->e, T0 + 110000);
    expect(f, ALARM_RAISE, "quiet", "dev1", NULL, NULL, T0 + 110000);
    expect_nothing(f);
}

static void test_offline_online(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {silence_rule(7, "quiet", 600), silence_rule(8, "quiet2", 600),
                                 threshold_rule(1, "hot", ">", 30, 0, 0)};
    set_rules(f, rules, 3, T0);
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0);
    alarm_engine_device_offline(f->e, "acme", "dev1", "thermo", T0 + 1000);
    expect(f, ALARM_RAISE, "quiet", "dev1", "", "device offline", T0 + 1000);
    expect(f, ALARM_RAISE, "quiet2", "dev1", "", "device offline", T0 + 1000);
    expect_nothing(f);
    /* offline twice, and ticks: nothing more */
    alarm_engine_device_offline(f->e, "acme", "dev1", "thermo", T0 + 2000);
    alarm_engine_tick(f->e, T0 + 900000);
    expect_nothing(f);
    /* online clears nothing; the event does */
    alarm_engine_device_online(f->e, "acme", "dev1", "thermo", T0 + 3000);
    expect_nothing(f);
    event_on(f, "dev1", "thermo", "heartbeat", NULL, T0 + 4000);
    expect(f, ALARM_CLEAR, "quiet", "dev1", NULL, NULL, T0 + 4000);
    expect(f, ALARM_CLEAR, "quiet2", "dev1", NULL, NULL, T0 + 4000);
    expect_nothing(f);
    /* an untracked device going offline is tracked from then on */
    alarm_engine_device_offline(f->e, "acme", "dev5", "thermo", T0 + 5000);
    expect(f, ALARM_RAISE, "quiet", "dev5", NULL, "device offline", 0);
    expect(f, ALARM_RAISE, "quiet2", "dev5", NULL, "device offline", 0);
    expect_nothing(f);
}

static void test_untrack(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {silence_rule(7, "quiet", 10),
                                 threshold_rule(1, "hot", ">", 30, 0, 0)};
    set_rules(f, rules, 2, T0);
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0);
    temp(f, "40", T0);
    expect(f, ALARM_RAISE, "hot", "dev1", NULL, NULL, 0);
    assert_int_equal(
        alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", NULL, false, NULL, NULL, T0),
        1);
    expect(f, ALARM_RAISE, "door_open", "dev1", NULL, NULL, 0);
    alarm_engine_untrack(f->e, "dev1", T0 + 1000);
    /* two clears, in some order */
    assert_int_equal(f->rec.n - f->rec.taken, 2);
    for (size_t i = f->rec.taken; i < f->rec.n; i++) {
        assert_int_equal(f->rec.t[i].kind, ALARM_CLEAR);
        assert_string_equal(f->rec.t[i].message, "device removed");
    }
    f->rec.taken = f->rec.n;
    alarm_engine_tick(f->e, T0 + 100000); /* no silence alarm for a removed device */
    expect_nothing(f);
    alarm_engine_untrack(f->e, "dev1", T0 + 2000);
    alarm_engine_untrack(f->e, "never", T0 + 2000);
    expect_nothing(f);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.devices, 0);
    assert_int_equal(st.watches, 0);
    assert_int_equal(st.open, 0);
}

/* ---- device alarms ---- */

static void test_device_alarms(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", "critical", false,
                                               "1", "door forced", T0),
                     1);
    expect(f, ALARM_RAISE, "door_open", "dev1", "1", "door forced", T0);
    assert_int_equal(last(f)->source, ALARM_SOURCE_DEVICE);
    assert_int_equal(last(f)->rule_id, 0);
    assert_int_equal(last(f)->severity, ALARM_SEVERITY_CRITICAL);
    /* duplicate raise: nothing */
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", "critical", false,
                                               "1", NULL, T0 + 1),
                     0);
    expect_nothing(f);
    /* another name, unknown severity: warning */
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "low_battery", "urgent", false,
                                               NULL, NULL, T0 + 2),
                     1);
    expect(f, ALARM_RAISE, "low_battery", "dev1", "", "raised by device", T0 + 2);
    assert_int_equal(last(f)->severity, ALARM_SEVERITY_WARNING);
    /* clear */
    assert_int_equal(
        alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", NULL, true, "0", NULL, T0 + 3),
        1);
    expect(f, ALARM_CLEAR, "door_open", "dev1", "0", "cleared by device", T0 + 3);
    assert_int_equal(last(f)->severity, ALARM_SEVERITY_CRITICAL);
    /* clear of what is not open, and of an unknown device: nothing */
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", NULL, true, NULL,
                                               NULL, T0 + 4),
                     0);
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "devX", "door_open", NULL, true, NULL,
                                               NULL, T0 + 4),
                     0);
    expect_nothing(f);
    /* raise again: a new one */
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", NULL, false, NULL,
                                               NULL, T0 + 5),
                     1);
    expect(f, ALARM_RAISE, "door_open", "dev1", NULL, NULL, T0 + 5);
    expect_nothing(f);
    /* a device alarm named like a rule is a different alarm */
    struct alarm_rule r = threshold_rule(1, "door_open", ">", 0, 0, 0);
    set_rules(f, &r, 1, T0 + 6);
    temp(f, "1", T0 + 7);
    expect(f, ALARM_RAISE, "door_open", "dev1", NULL, NULL, T0 + 7);
    assert_int_equal(last(f)->source, ALARM_SOURCE_RULE);
    expect_nothing(f);
    /* bad names */
    assert_int_equal(
        alarm_engine_device_alarm(f->e, "acme", "dev1", "", NULL, false, NULL, NULL, T0),
        IOT_EINVAL);
    char long_name[100];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(
        alarm_engine_device_alarm(f->e, "acme", "dev1", long_name, NULL, false, NULL, NULL, T0),
        IOT_EINVAL);
    expect_nothing(f);
}

/* ---- restore ---- */

static struct alarm_open open_alarm(enum alarm_source source, uint64_t rule_id, const char *device,
                                    const char *name)
{
    struct alarm_open o = {.source = source,
                           .rule_id = rule_id,
                           .severity = ALARM_SEVERITY_MAJOR,
                           .raised_at_ms = T0 - 1000};
    snprintf(o.tenant, sizeof(o.tenant), "acme");
    snprintf(o.device, sizeof(o.device), "%s", device);
    snprintf(o.name, sizeof(o.name), "%s", name);
    snprintf(o.value, sizeof(o.value), "42");
    return o;
}

static void test_restore(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {threshold_rule(1, "hot", ">", 30, 2, 0),
                                 silence_rule(7, "quiet", 60)};
    set_rules(f, rules, 2, T0);
    struct alarm_open open[] = {
        open_alarm(ALARM_SOURCE_RULE, 1, "dev1", "hot"),
        open_alarm(ALARM_SOURCE_RULE, 7, "dev1", "quiet"),
        open_alarm(ALARM_SOURCE_DEVICE, 0, "dev1", "door_open"),
        open_alarm(ALARM_SOURCE_RULE, 99, "dev2", "gone"), /* its rule no longer exists */
        open_alarm(ALARM_SOURCE_RULE, 0, "dev3", "gone2"), /* rule_id set NULL by the schema */
    };
    assert_int_equal(alarm_engine_restore(f->e, open, 5, T0), 0);
    expect(f, ALARM_CLEAR, "gone", "dev2", NULL, "rule removed", T0);
    expect(f, ALARM_CLEAR, "gone2", "dev3", NULL, "rule removed", T0);
    expect_nothing(f);
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.open, 3);
    /* restoring twice changes nothing */
    assert_int_equal(alarm_engine_restore(f->e, open, 3, T0), 0);
    expect_nothing(f);
    /* no duplicates after the restart */
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0);
    temp(f, "35", T0 + 1);
    alarm_engine_device_offline(f->e, "acme", "dev1", "thermo", T0 + 2);
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", NULL, false, NULL,
                                               NULL, T0 + 3),
                     0);
    alarm_engine_tick(f->e, T0 + 1000000);
    expect_nothing(f);
    /* and the clears still work (hysteresis too) */
    temp(f, "29", T0 + 4);
    expect_nothing(f);
    temp(f, "28", T0 + 5);
    expect(f, ALARM_CLEAR, "hot", "dev1", "28", NULL, T0 + 5);
    event_on(f, "dev1", "thermo", "heartbeat", NULL, T0 + 6);
    expect(f, ALARM_CLEAR, "quiet", "dev1", NULL, NULL, T0 + 6);
    assert_int_equal(alarm_engine_device_alarm(f->e, "acme", "dev1", "door_open", NULL, true, NULL,
                                               NULL, T0 + 7),
                     1);
    expect(f, ALARM_CLEAR, "door_open", "dev1", NULL, NULL, T0 + 7);
    assert_int_equal(last(f)->severity, ALARM_SEVERITY_MAJOR);
    expect_nothing(f);
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.open, 0);
}

static void test_restore_waits_for_tracking(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule r = threshold_rule(1, "hot", ">", 30, 0, 0);
    r.scope = ALARM_SCOPE_TYPE;
    snprintf(r.target, sizeof(r.target), "thermo");
    set_rules(f, &r, 1, T0);
    struct alarm_open open[] = {open_alarm(ALARM_SOURCE_RULE, 1, "dev1", "hot"),
                                open_alarm(ALARM_SOURCE_RULE, 1, "dev2", "hot")};
    assert_int_equal(alarm_engine_restore(f->e, open, 2, T0), 0);
    /* the rules are reloaded before the devices are tracked: their types are not known yet, so
     * nothing is judged out of scope */
    set_rules(f, &r, 1, T0 + 1);
    expect_nothing(f);
    /* dev1 is a thermo: kept; dev2 turned out to be a lamp: out of scope */
    alarm_engine_track(f->e, "acme", "dev1", "thermo", T0 + 2);
    expect_nothing(f);
    alarm_engine_track(f->e, "acme", "dev2", "lamp", T0 + 3);
    expect(f, ALARM_CLEAR, "hot", "dev2", NULL, "device out of scope", T0 + 3);
    expect_nothing(f);
    temp(f, "31", T0 + 4); /* still open: no duplicate */
    expect_nothing(f);
    temp(f, "20", T0 + 5);
    expect(f, ALARM_CLEAR, "hot", "dev1", "20", NULL, T0 + 5);
    expect_nothing(f);
}

static void test_many_devices(void **state)
{
    struct fixture *f = *state;
    struct alarm_rule rules[] = {silence_rule(7, "quiet", 60),
                                 threshold_rule(1, "hot", ">", 30, 0, 0)};
    char id[32];
    set_rules(f, rules, 2, T0);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(alarm_engine_track(f->e, "acme", id, "thermo", T0), 0);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        if (i % 100 != 0)
            event_on(f, id, "thermo", "heartbeat", NULL, T0 + 30000);
    }
    struct alarm_engine_stats st;
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.devices, 5000);
    assert_int_equal(st.watches, 5000);
    alarm_engine_tick(f->e, T0 + 60000);
    assert_int_equal(f->rec.n, 50);
    for (size_t i = 0; i < f->rec.n; i++)
        assert_int_equal(f->rec.t[i].kind, ALARM_RAISE);
    assert_int_equal(alarm_engine_next_deadline(f->e), T0 + 90000);
    f->rec.taken = f->rec.n;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        alarm_engine_untrack(f->e, id, T0 + 70000);
    }
    alarm_engine_stats(f->e, &st);
    assert_int_equal(st.devices, 0);
    assert_int_equal(st.open, 0);
    assert_int_equal(f->rec.n - f->rec.taken, 50);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_new_requires_emit),
        T(test_threshold_raise_and_clear),
        T(test_threshold_ops),
        T(test_hysteresis_above),
        T(test_hysteresis_below),
        T(test_flapping_without_hysteresis),
        T(test_flapping_with_hysteresis),
        T(test_min_duration_satisfied),
        T(test_min_duration_canceled),
        T(test_min_duration_raised_by_late_event),
        T(test_non_numeric_and_missing),
        T(test_scopes),
        T(test_disabled_and_invalid_rules),
        T(test_rules_replaced),
        T(test_silence_raise_and_clear),
        T(test_silence_device_seen_first_by_event),
        T(test_silence_scope_and_retrack),
        T(test_silence_rule_added_later),
        T(test_offline_online),
        T(test_untrack),
        T(test_device_alarms),
        T(test_restore),
        T(test_restore_waits_for_tracking),
        T(test_many_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
