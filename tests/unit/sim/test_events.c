/*
 * test_events.c - iotsim's event policy without a loop: --field generators (constant, walk,
 * steps, seq, count) and their parse errors, --alarm specs, the outbox size that holds
 * --outbox events, the per-device sequence files of --state-dir, and the --ack-log line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "sim_events.h"

static uint32_t lcg_state = 1;

static uint32_t lcg(void *ctx)
{
    (void)ctx;
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state;
}

static void field_specs(void **state)
{
    struct sim_field_gen g;
    char err[256];

    (void)state;
    assert_int_equal(sim_field_parse("value=walk:21.0:0.5", &g, err, sizeof(err)), 0);
    assert_string_equal(g.key, "value");
    assert_int_equal(g.kind, SIM_FIELD_WALK);
    assert_true(g.start == 21.0 && g.step == 0.5);
    assert_int_equal(sim_field_parse("unit=C", &g, err, sizeof(err)), 0);
    assert_int_equal(g.kind, SIM_FIELD_CONST);
    assert_string_equal(g.text, "C");
    assert_int_equal(sim_field_parse("value=const:35.5", &g, err, sizeof(err)), 0);
    assert_string_equal(g.text, "35.5");
    assert_int_equal(sim_field_parse("note=const:walk:1", &g, err, sizeof(err)), 0);
    assert_int_equal(g.kind, SIM_FIELD_CONST);
    assert_string_equal(g.text, "walk:1");
    assert_int_equal(sim_field_parse("empty=", &g, err, sizeof(err)), 0);
    assert_string_equal(g.text, "");
    assert_int_equal(sim_field_parse("value=steps:20,31,35,28", &g, err, sizeof(err)), 0);
    assert_int_equal(g.kind, SIM_FIELD_STEPS);
    assert_int_equal(sim_field_parse("n=seq", &g, err, sizeof(err)), 0);
    assert_int_equal(g.kind, SIM_FIELD_SEQ);
    assert_int_equal(sim_field_parse("n=count", &g, err, sizeof(err)), 0);
    assert_int_equal(g.kind, SIM_FIELD_COUNT);

    static const char *const bad[] = {
        "novalue",      "=x",
        "v=walk:abc:1", "v=walk:1",
        "v=walk:1:-1",  "v=steps:",
        "v=steps:1,,2", "v=steps:1,",
        "v=\x01",       "v=const:0123456789012345678901234567890123456789012345678901234567890123",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(sim_field_parse(bad[i], &g, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
}

static void alarm_specs(void **state)
{
    struct sim_alarm_spec a;
    char err[256];

    (void)state;
    assert_int_equal(sim_alarm_parse("temperature:raised", &a, err, sizeof(err)), 0);
    assert_string_equal(a.name, "temperature");
    assert_string_equal(a.state, "raised");
    assert_string_equal(a.severity, "");
    assert_int_equal(sim_alarm_parse("door:cleared:critical", &a, err, sizeof(err)), 0);
    assert_string_equal(a.state, "cleared");
    assert_string_equal(a.severity, "critical");
    static const char *const bad[] = {"temperature",   ":raised", "t:on",
                                      "t:raised:huge", "t:",      "t:raised:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sim_alarm_parse(bad[i], &a, err, sizeof(err)), -1);
}

/* Generate one event's fields and return the value of key (a copy), "" if absent. */
static const char *gen_value(const struct sim_event_config *cfg, struct sim_event_state *st,
                             uint32_t seq, const char *key, unsigned *nfields)
{
    static char copy[SIM_EVENT_VALUE_LEN];
    struct iotp_event_field out[SIM_EVENT_MAX_FIELDS];
    char values[SIM_EVENT_MAX_FIELDS][SIM_EVENT_VALUE_LEN];
    unsigned n = sim_event_fields(cfg, st, cfg->name, seq, 1, lcg, NULL, out, values);

    if (nfields)
        *nfields = n;
    copy[0] = '\0';
    for (unsigned i = 0; i < n; i++)
        if (strcmp(out[i].key, key) == 0)
            snprintf(copy, sizeof(copy), "%s", out[i].value);
    return copy;
}

static void default_temperature_walks(void **state)
{
    struct sim_event_config cfg;
    struct sim_event_state st;
    struct iotp_event_field out[SIM_EVENT_MAX_FIELDS];
    char values[SIM_EVENT_MAX_FIELDS][SIM_EVENT_VALUE_LEN];
    double lo = 1e9, hi = -1e9, prev = 21.0;
    unsigned n;

    (void)state;
    sim_event_config_init(&cfg);
    memset(&st, 0, sizeof(st));
    for (int i = 0; i < 5000; i++) {
        const char *v = gen_value(&cfg, &st, (uint32_t)i + 1, "value", &n);
        const char *dot = strchr(v, '.');
        double x = atof(v);
        assert_int_equal(n, 2);
        assert_non_null(dot);
        assert_int_equal(strlen(dot), 2);    /* one decimal */
        assert_true(x >= 16.0 && x <= 26.0); /* ten steps of 0.5 around 21.0 */
        assert_true(x - prev <= 0.5 + 1e-9 && prev - x <= 0.5 + 1e-9);
        prev = x;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    assert_true(hi - lo >= 2.0); /* it does move */
    assert_string_equal(gen_value(&cfg, &st, 1, "unit", NULL), "C");
    assert_int_equal(st.made, 5001);
    /* Another name gets no fields; advance=0 leaves the state alone. */
    assert_int_equal(sim_event_fields(&cfg, &st, "door", 1, 1, lcg, NULL, out, values), 0);
    n = sim_event_fields(&cfg, &st, "temperature", 1, 0, lcg, NULL, out, values);
    assert_int_equal(n, 2);
    assert_int_equal(st.made, 5001);
}

static void configured_generators(void **state)
{
    static const char *const specs[] = {"value=steps:20,31,35,28", "n=seq", "c=count",
                                        "unit=const:C"};
    static const char *const want[] = {"20", "31", "35", "28", "20", "31"};
    struct sim_event_config cfg;
    struct sim_event_state st;
    char err[256], expect[16];

    (void)state;
    sim_event_config_init(&cfg);
    cfg.name = "level";
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sim_field_parse(specs[i], &cfg.fields[cfg.nfields++], err, sizeof(err)),
                         0);
    memset(&st, 0, sizeof(st));
    for (unsigned i = 0; i < 6; i++) {
        unsigned n;
        struct sim_event_state before = st;
        assert_string_equal(gen_value(&cfg, &st, 100 + i, "value", &n), want[i]);
        assert_int_equal(n, 4);
        st = before;
        snprintf(expect, sizeof(expect), "%u", 100 + i);
        assert_string_equal(gen_value(&cfg, &st, 100 + i, "n", NULL), expect);
        st = before;
        snprintf(expect, sizeof(expect), "%u", i + 1);
        assert_string_equal(gen_value(&cfg, &st, 100 + i, "c", NULL), expect);
        st = before;
        assert_string_equal(gen_value(&cfg, &st, 100 + i, "unit", NULL), "C");
    }
}

/* sim_event_storage_size holds --outbox events even when every value is as long as it gets. */
static void storage_holds_outbox_entries(void **state)
{
    static const char id[] = "a-device-with-a-rather-long-identifier-0000000000000000000001";
    struct sim_event_config cfg;
    struct iotp_event_field f[SIM_EVENT_MAX_FIELDS + 2];
    char keys[SIM_EVENT_MAX_FIELDS][SIM_EVENT_KEY_LEN], value[SIM_EVENT_VALUE_LEN], err[64];
    struct iotp_outbox ob;
    uint8_t *storage;
    size_t size;
    uint32_t hw;

    (void)state;
    sim_event_config_init(&cfg);
    cfg.outbox_entries = 50;
    cfg.nfields = SIM_EVENT_MAX_FIELDS;
    for (unsigned i = 0; i < SIM_EVENT_MAX_FIELDS; i++)
        assert_int_equal(sim_field_parse("k=v", &cfg.fields[i], err, sizeof(err)), 0);
    memset(value, '9', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (unsigned i = 0; i < SIM_EVENT_MAX_FIELDS; i++) {
        memset(keys[i], 'k', SIM_EVENT_KEY_LEN - 1);
        keys[i][SIM_EVENT_KEY_LEN - 1] = '\0';
        f[i].key = keys[i];
        f[i].value = value;
    }
    f[SIM_EVENT_MAX_FIELDS].key = "state";
    f[SIM_EVENT_MAX_FIELDS].value = "cleared";
    f[SIM_EVENT_MAX_FIELDS + 1].key = "severity";
    f[SIM_EVENT_MAX_FIELDS + 1].value = "critical";
    size = sim_event_storage_size(&cfg, id);
    storage = malloc(size);
    assert_non_null(storage);
    assert_int_equal(iotp_outbox_init(&ob, storage, size, 4000000000u, 0), 0);
    assert_int_equal(iotp_outbox_reserve_needed(&ob, &hw), 1);
    iotp_outbox_reserved(&ob, hw);
    for (unsigned i = 0; i < cfg.outbox_entries; i++)
        assert_int_equal(
            iotp_outbox_push(&ob, IOTP_ALARM, id, "temperature", SIM_EVENT_MAX_FIELDS + 2, f, NULL),
            0);
    free(storage);
}

static void sequence_files(void **state)
{
    char dir[] = "/tmp/iotsim-seq-XXXXXX", path[256], name[300], err[512];
    uint32_t hw = 99;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    /* No file yet: 0, the device's first life. */
    assert_int_equal(sim_seq_load(dir, "dev1", &hw, err, sizeof(err)), 0);
    assert_int_equal(hw, 0);
    assert_int_equal(sim_seq_store(dir, "dev1", 1024, err, sizeof(err)), 0);
    assert_int_equal(sim_seq_store(dir, "dev1", 2048, err, sizeof(err)), 0);
    assert_int_equal(sim_seq_load(dir, "dev1", &hw, err, sizeof(err)), 0);
    assert_int_equal(hw, 2048);
    snprintf(path, sizeof(path), "%s/dev1.seq", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(name, sizeof(name), f));
    fclose(f);
    assert_string_equal(name, "2048\n");
    /* An id that is not a plain file name is hex-encoded. */
    assert_int_equal(sim_seq_file_name("a/b", name, sizeof(name)), 0);
    assert_string_equal(name, "x-612f62.seq");
    assert_int_equal(sim_seq_file_name(".hidden", name, sizeof(name)), 0);
    assert_string_equal(name, "x-2e68696464656e.seq");
    assert_int_equal(sim_seq_file_name("sim-1@x_y.z", name, sizeof(name)), 0);
    assert_string_equal(name, "sim-1@x_y.z.seq");
    assert_int_equal(sim_seq_file_name("sim-1", name, 8), -1);
    assert_int_equal(sim_seq_store(dir, "a/b", 7, err, sizeof(err)), 0);
    assert_int_equal(sim_seq_load(dir, "a/b", &hw, err, sizeof(err)), 0);
    assert_int_equal(hw, 7);
    /* A damaged file is an error, not a silent restart at 1. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("12x\n", f);
    fclose(f);
    assert_int_equal(sim_seq_load(dir, "dev1", &hw, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "dev1.seq"));
    /* An unwritable place is reported. */
    assert_int_equal(sim_seq_store("/nonexistent-dir", "dev1", 1, err, sizeof(err)), -1);

    unlink(path);
    snprintf(path, sizeof(path), "%s/x-612f62.seq", dir);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void ack_log_line(void **state)
{
    static const struct iotp_event_field fields[] = {{"value", "21.5"}, {"unit", "C"}};
    static const struct iotp_event_field alarm[] = {{"state", "raised"}};
    uint8_t storage[512];
    struct iotp_outbox ob;
    const uint8_t *frame;
    char line[256];
    size_t len;
    uint32_t hw, seq;
    FILE *log = tmpfile();

    (void)state;
    assert_non_null(log);
    assert_int_equal(iotp_outbox_init(&ob, storage, sizeof(storage), 41, 0), 0);
    assert_int_equal(iotp_outbox_reserve_needed(&ob, &hw), 1);
    iotp_outbox_reserved(&ob, hw);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_EVENT, "dev1", "temperature", 2, fields, &seq), 0);
    assert_int_equal(iotp_outbox_get(&ob, seq, &frame, &len), 0);
    sim_ack_log_write(log, frame, len);
    assert_int_equal(iotp_outbox_push(&ob, IOTP_ALARM, "dev1", "door", 1, alarm, &seq), 0);
    assert_int_equal(iotp_outbox_get(&ob, seq, &frame, &len), 0);
    sim_ack_log_write(log, frame, len);
    rewind(log);
    assert_non_null(fgets(line, sizeof(line), log));
    assert_string_equal(line, "dev1 42 EVENT temperature value=21.5 unit=C\n");
    assert_non_null(fgets(line, sizeof(line), log));
    assert_string_equal(line, "dev1 43 ALARM door state=raised\n");
    fclose(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(field_specs),
        cmocka_unit_test(alarm_specs),
        cmocka_unit_test(default_temperature_walks),
        cmocka_unit_test(configured_generators),
        cmocka_unit_test(storage_holds_outbox_entries),
        cmocka_unit_test(sequence_files),
        cmocka_unit_test(ack_log_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
