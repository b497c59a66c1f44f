/*
 * test_handlers.c - iotsim's message table and its misbehaviour rules.
 *
 * Each request is built as a frame, answered by sim_answer_request and parsed back with the
 * library's parser, so the tests see exactly the bytes a server would: `ping`, `read_temp`,
 * `set_pixel` (and its bad_args), `echo`, `start_events` / `stop_events` (through a recording
 * device control), unknown types, the --mute / --error / --slow rules, and scripted
 * (--answers) and generic (--generic) answers. The delayed-answer queue
 * runs on a real libuv loop with short timers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_handlers.h"
#include "sim_script.h"

struct parsed {
    struct iotp_parser parser;
    uint8_t buf[IOTP_MAX_FRAME];
};

/* Parse one whole frame out of data (len bytes). */
static const struct iotp_frame *parse(struct parsed *p, const uint8_t *data, size_t len)
{
    const struct iotp_frame *f = NULL;
    size_t used;

    assert_int_equal(iotp_parser_init(&p->parser, p->buf, sizeof(p->buf), 0, 0), 0);
    assert_int_equal(iotp_parser_feed(&p->parser, data, len, &used, &f, NULL), 1);
    assert_int_equal(used, len);
    return f;
}

/* The device controls ask() hands to the handlers (NULL: a device without any). */
static const struct sim_device_control *ask_control;

/* Answer `alice@acme dev TYPE id args...` under rules and parse the answer back; *when gets
 * what the rules said. nargs args follow. */
static const struct iotp_frame *ask(struct parsed *p, const struct sim_answer_rules *rules,
                                    const char *dev, const char *type, uint32_t id,
                                    enum sim_answer_when *when, unsigned nargs, ...)
{
    struct iotp_frame req;
    uint8_t out[IOTP_MAX_FRAME];
    va_list ap;
    int n;

    memset(&req, 0, sizeof(req));
    req.from = "alice@acme";
    req.to = dev;
    req.type = type;
    req.id = id;
    va_start(ap, nargs);
    for (unsigned i = 0; i < nargs; i++)
        req.args[req.nargs++] = va_arg(ap, const char *);
    va_end(ap);
    n = sim_answer_request(rules, ask_control, dev, &req, out, sizeof(out), when);
    if (*when == SIM_ANSWER_NEVER) {
        assert_int_equal(n, 0);
        return NULL;
    }
    assert_true(n > 0);
    return parse(p, out, (size_t)n);
}

static void ping_is_answered(void **state)
{
    static struct parsed p;
    enum sim_answer_when when;
    const struct iotp_frame *f = ask(&p, NULL, "dev1", "ping", 913, &when, 0);

    (void)state;
    assert_int_equal(when, SIM_ANSWER_NOW);
    assert_string_equal(f->from, "dev1");
    assert_string_equal(f->to, "alice@acme");
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->id, 913);
    assert_int_equal(f->nargs, 1);
    assert_string_equal(f->args[0], "pong");
    assert_non_null(sim_handler_find("ping"));
}

static void unknown_type_is_an_error(void **state)
{
    static struct parsed p;
    enum sim_answer_when when;
    const struct iotp_frame *f = ask(&p, NULL, "dev1", "frobnicate", 6, &when, 0);

    (void)state;
    assert_string_equal(f->type, "ERROR");
    assert_int_equal(f->id, 6);
    assert_string_equal(f->to, "alice@acme");
    assert_string_equal(iotp_frame_arg(f, "code"), "unknown_type");
    assert_null(sim_handler_find("frobnicate"));
}

/* The value of a read_temp answer in tenths of a degree, checking its shape on the way. */
static int read_tenths(const char *dev, uint32_t id)
{
    static struct parsed p;
    enum sim_answer_when when;
    const struct iotp_frame *f = ask(&p, NULL, dev, "read_temp", id, &when, 0);
    const char *t, *dot;

    assert_string_equal(f->type, "OK");
    assert_int_equal(f->nargs, 2);
    assert_string_equal(f->args[1], "C");
    t = f->args[0];
    dot = strchr(t, '.');
    assert_non_null(dot);
    assert_int_equal(strlen(dot), 2); /* one decimal: "21.5" */
    return atoi(t) * 10 + (dot[1] - '0');
}

static void read_temp_is_per_device_and_drifts(void **state)
{
    int lo = 1000, hi = 0, prev = read_tenths("dev1", 1), differs = 0;

    (void)state;
    /* Deterministic: the same device and request read the same. */
    assert_int_equal(read_tenths("dev1", 1), prev);
    for (uint32_t id = 2; id < 200; id++) {
        int t = read_tenths("dev1", id);
        /* A drift, not a jump: at most a tenth between consecutive requests. */
        assert_true(abs(t - prev) <= 1);
        prev = t;
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    assert_true(hi > lo);
    assert_true(hi - lo <= 10);
    assert_true(lo >= 175 && hi <= 264); /* a room, not an oven */
    /* Different devices read different bases (not all of a handful alike). */
    for (int i = 0; i < 8; i++) {
        char dev[16];
        snprintf(dev, sizeof(dev), "dev%d", 2 + i);
        differs += read_tenths(dev, 1) != read_tenths("dev1", 1);
    }
    assert_true(differs > 0);
}

/* What start_events / stop_events asked of the device. */
struct recorded_control {
    int calls;
    int on;
    uint32_t period_ms;
    int fail;
};

static int record_set_events(void *ctx, int on, uint32_t period_ms)
{
    struct recorded_control *r = ctx;

    r->calls++;
    r->on = on;
    r->period_ms = period_ms;
    return r->fail ? -1 : 0;
}

static void start_and_stop_events(void **state)
{
    static struct parsed p;
    struct recorded_control rec = {0, 0, 0, 0};
    struct sim_device_control control = {&rec, record_set_events};
    enum sim_answer_when when;
    const struct iotp_frame *f;

    (void)state;
    ask_control = &control;
    f = ask(&p, NULL, "dev1", "start_events", 41, &when, 1, "250");
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->id, 41);
    assert_int_equal(f->nargs, 0);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.on, 1);
    assert_int_equal(rec.period_ms, 250);
    /* Without a period: the device's own rate. */
    f = ask(&p, NULL, "dev1", "start_events", 42, &when, 0);
    assert_string_equal(f->type, "OK");
    assert_int_equal(rec.period_ms, 0);
    f = ask(&p, NULL, "dev1", "stop_events", 43, &when, 0);
    assert_string_equal(f->type, "OK");
    assert_int_equal(rec.on, 0);
    assert_int_equal(rec.calls, 3);
    /* Malformed periods never reach the device. */
    static const char *const bad[] = {"0", "abc", "-5", "012", "86400001", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = ask(&p, NULL, "dev1", "start_events", 44, &when, 1, bad[i]);
        assert_string_equal(f->type, "ERROR");
        assert_string_equal(iotp_frame_arg(f, "code"), "bad_args");
    }
    f = ask(&p, NULL, "dev1", "start_events", 45, &when, 2, "100", "200");
    assert_string_equal(iotp_frame_arg(f, "code"), "bad_args");
    assert_int_equal(rec.calls, 3);
    /* A device that cannot switch, and one without events at all. */
    rec.fail = 1;
    f = ask(&p, NULL, "dev1", "stop_events", 46, &when, 0);
    assert_string_equal(f->type, "ERROR");
    assert_string_equal(iotp_frame_arg(f, "code"), "device");
    ask_control = NULL;
    f = ask(&p, NULL, "dev1", "start_events", 47, &when, 0);
    assert_string_equal(f->type, "ERROR");
    assert_string_equal(iotp_frame_arg(f, "code"), "device");
    assert_non_null(sim_handler_find("start_events"));
    assert_non_null(sim_handler_find("stop_events"));
}

static void set_pixel_validates_coordinates(void **state)
{
    static struct parsed p;
    static const char *const bad[][3] = {
        {"8", "0", "red"}, {"0", "-1", "red"},  {"a", "1", "red"}, {"07", "1", "red"},
        {"", "1", "red"},  {"1", "1.0", "red"}, {"1", "1", ""},
    };
    enum sim_answer_when when;
    const struct iotp_frame *f;

    (void)state;
    f = ask(&p, NULL, "dev1", "set_pixel", 3, &when, 3, "7", "0", "#ff0000");
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->id, 3);
    assert_int_equal(f->nargs, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = ask(&p, NULL, "dev1", "set_pixel", 4, &when, 3, bad[i][0], bad[i][1], bad[i][2]);
        assert_string_equal(f->type, "ERROR");
        assert_string_equal(iotp_frame_arg(f, "code"), "bad_args");
        assert_non_null(iotp_frame_arg(f, "msg"));
    }
    f = ask(&p, NULL, "dev1", "set_pixel", 5, &when, 2, "1", "1");
    assert_string_equal(iotp_frame_arg(f, "code"), "bad_args");
    f = ask(&p, NULL, "dev1", "set_pixel", 5, &when, 4, "1", "1", "red", "extra");
    assert_string_equal(iotp_frame_arg(f, "code"), "bad_args");
}

static void echo_returns_its_args(void **state)
{
    static struct parsed p;
    static const char payload[] =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    enum sim_answer_when when;
    const struct iotp_frame *f;

    (void)state;
    f = ask(&p, NULL, "dev1", "echo", 77, &when, 3, payload, "two words", "ünïcode");
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->id, 77);
    assert_int_equal(f->nargs, 3);
    assert_string_equal(f->args[0], payload);
    assert_string_equal(f->args[1], "two words");
    assert_string_equal(f->args[2], "ünïcode");
    f = ask(&p, NULL, "dev1", "echo", 78, &when, 0);
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->nargs, 0);
}

static void rules_mute_error_slow(void **state)
{
    static struct parsed p;
    static const char *const mute[] = {"read_temp"};
    static const char *const error[] = {"set_pixel", "nosuch"};
    struct sim_answer_rules rules = {
        .mute = mute, .nmute = 1, .error = error, .nerror = 2, .slow_ms = 0};
    enum sim_answer_when when;
    const struct iotp_frame *f;

    (void)state;
    assert_null(ask(&p, &rules, "dev1", "read_temp", 1, &when, 0));
    assert_int_equal(when, SIM_ANSWER_NEVER);
    /* --error wins over the handler and over "unknown type". */
    f = ask(&p, &rules, "dev1", "set_pixel", 2, &when, 3, "1", "1", "red");
    assert_int_equal(when, SIM_ANSWER_NOW);
    assert_string_equal(f->type, "ERROR");
    assert_int_equal(f->id, 2);
    assert_string_equal(iotp_frame_arg(f, "code"), "device");
    assert_string_equal(iotp_frame_arg(f, "msg"), "refused");
    f = ask(&p, &rules, "dev1", "nosuch", 3, &when, 0);
    assert_string_equal(iotp_frame_arg(f, "code"), "device");
    /* Untouched types answer as usual... */
    f = ask(&p, &rules, "dev1", "ping", 4, &when, 0);
    assert_int_equal(when, SIM_ANSWER_NOW);
    assert_string_equal(f->type, "OK");
    /* ...and every answer, errors too, is late under --slow; a muted type stays silent. */
    rules.slow_ms = 50;
    f = ask(&p, &rules, "dev1", "ping", 5, &when, 0);
    assert_int_equal(when, SIM_ANSWER_LATER);
    assert_string_equal(f->type, "OK");
    f = ask(&p, &rules, "dev1", "frobnicate", 6, &when, 0);
    assert_int_equal(when, SIM_ANSWER_LATER);
    assert_string_equal(f->type, "ERROR");
    assert_null(ask(&p, &rules, "dev1", "read_temp", 7, &when, 0));
    assert_int_equal(when, SIM_ANSWER_NEVER);
}

static void answer_args(void **state)
{
    struct sim_answer a;

    (void)state;
    memset(&a, 0, sizeof(a));
    sim_answer_addf(&a, "%.1f", 21.5);
    sim_answer_addf(&a, "%s", "C");
    assert_int_equal(a.nargs, 2);
    assert_string_equal(a.args[0], "21.5");
    assert_string_equal(a.args[1], "C");
    for (int i = 0; i < 40; i++)
        sim_answer_addf(&a, "%d", i);
    assert_int_equal(a.nargs, SIM_ANSWER_MAX_ARGS);
}

/* ---- the delayed-answer queue ---- */

struct sent {
    int conn[8];
    uint64_t at_ms[8];
    char text[8][16];
    int n;
    uv_loop_t *loop;
    struct sim_delayed_answers *q;
    void *cancel_on_send; /* the first send ends this connection (as a write failure would) */
};

static void record_send(void *conn, const uint8_t *frame, size_t len, void *arg)
{
    struct sent *s = arg;

    assert_true(s->n < 8);
    s->conn[s->n] = *(int *)conn;
    s->at_ms[s->n] = uv_now(s->loop);
    memcpy(s->text[s->n], frame, len < 15 ? len : 15);
    s->n++;
    if (s->cancel_on_send) {
        sim_delayed_cancel(s->q, s->cancel_on_send);
        s->cancel_on_send = NULL;
    }
}

static void delayed_answers_wait_and_cancel(void **state)
{
    static int c1 = 1, c2 = 2;
    struct sim_delayed_answers q;
    struct sent s;
    uv_loop_t loop;
    uint64_t t0;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(uv_loop_init(&loop), 0);
    s.loop = &loop;
    s.q = &q;
    sim_delayed_init(&q, &loop, record_send, &s);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    assert_int_equal(sim_delayed_push(&q, &c1, 60, (const uint8_t *)"late", 4), 0);
    assert_int_equal(sim_delayed_push(&q, &c1, 20, (const uint8_t *)"early", 5), 0);
    assert_int_equal(sim_delayed_push(&q, &c2, 30, (const uint8_t *)"gone", 4), 0);
    assert_int_equal(q.pending, 3);
    /* conn 2 disconnected: its answer must never be sent. */
    sim_delayed_cancel(&q, &c2);
    assert_int_equal(q.pending, 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.text[0], "early");
    assert_string_equal(s.text[1], "late");
    assert_int_equal(s.conn[0], 1);
    assert_true(s.at_ms[0] - t0 >= 20);
    assert_true(s.at_ms[1] - t0 >= 60);
    assert_int_equal(q.sent, 2);
    assert_int_equal(q.dropped, 1);
    assert_int_equal(q.pending, 0);

    /* Sending may end a connection, whose other answers then go from inside the callback. */
    s.n = 0;
    s.cancel_on_send = &c2;
    assert_int_equal(sim_delayed_push(&q, &c1, 5, (const uint8_t *)"first", 5), 0);
    assert_int_equal(sim_delayed_push(&q, &c2, 40, (const uint8_t *)"never", 5), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text[0], "first");
    assert_int_equal(q.pending, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void delayed_answers_close_and_limit(void **state)
{
    static int c1 = 1;
    struct sim_delayed_answers q;
    struct sent s;
    uv_loop_t loop;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(uv_loop_init(&loop), 0);
    s.loop = &loop;
    sim_delayed_init(&q, &loop, record_send, &s);
    q.limit = 2;
    assert_int_equal(sim_delayed_push(&q, &c1, 10000, (const uint8_t *)"a", 1), 0);
    assert_int_equal(sim_delayed_push(&q, &c1, 10000, (const uint8_t *)"b", 1), 0);
    /* Full: refused and counted, not queued without bound. */
    assert_int_equal(sim_delayed_push(&q, &c1, 10, (const uint8_t *)"c", 1), UV_EBUSY);
    /* A stop drops what waits: the loop ends at once instead of after 10 s, and every entry
     * is freed by its close callback (the leak checker of sanitizer builds watches). */
    sim_delayed_close(&q);
    assert_int_equal(sim_delayed_push(&q, &c1, 10, (const uint8_t *)"d", 1), UV_EBUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.n, 0);
    assert_int_equal(q.dropped, 4);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Write text to a new temporary file; its path goes into path (a mkstemp template). */
static void write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* --answers: scripted answers before the table's, with $ references; --generic: the request's
 * args for a type nobody knows; the rest stays unknown_type. */
static void scripted_and_generic_answers(void **state)
{
    static struct parsed p;
    enum sim_answer_when when;
    char path[] = "/tmp/sim-answers.XXXXXX", err[256];
    struct sim_script *script = NULL;
    const struct iotp_frame *f;

    (void)state;
    write_temp(path, "# answers of the pump type\n"
                     "\n"
                     "read_level   level=42 unit=cm\n"
                     "  set_valve  state=$1 by=$device $$5 $9x\n"
                     "describe     $type $* end\n"
                     "reboot       !error busy not right now\n"
                     "ping         scripted-pong\n");
    assert_int_equal(sim_script_load(path, &script, err, sizeof(err)), 0);
    unlink(path);
    struct sim_answer_rules rules = {.script = script};

    f = ask(&p, &rules, "pump-1", "read_level", 5, &when, 0);
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->nargs, 2);
    assert_string_equal(f->args[0], "level=42");
    assert_string_equal(f->args[1], "unit=cm");
    f = ask(&p, &rules, "pump-1", "set_valve", 6, &when, 1, "open");
    assert_int_equal(f->nargs, 4);
    assert_string_equal(f->args[0], "state=open");
    assert_string_equal(f->args[1], "by=pump-1");
    assert_string_equal(f->args[2], "$5");
    assert_string_equal(f->args[3], "x"); /* $9: the request has no ninth arg */
    f = ask(&p, &rules, "pump-1", "describe", 7, &when, 2, "a b", "c");
    assert_int_equal(f->nargs, 4);
    assert_string_equal(f->args[0], "describe");
    assert_string_equal(f->args[1], "a b");
    assert_string_equal(f->args[2], "c");
    assert_string_equal(f->args[3], "end");
    f = ask(&p, &rules, "pump-1", "reboot", 8, &when, 0);
    assert_string_equal(f->type, "ERROR");
    assert_string_equal(iotp_frame_arg(f, "code"), "busy");
    assert_string_equal(iotp_frame_arg(f, "msg"), "not right now");
    f = ask(&p, &rules, "pump-1", "ping", 9, &when, 0); /* the script wins over the table */
    assert_string_equal(f->args[0], "scripted-pong");
    f = ask(&p, &rules, "pump-1", "flush", 10, &when, 1, "x");
    assert_string_equal(iotp_frame_arg(f, "code"), "unknown_type");
    rules.generic = 1;
    f = ask(&p, &rules, "pump-1", "flush", 11, &when, 2, "x", "y=2");
    assert_string_equal(f->type, "OK");
    assert_int_equal(f->nargs, 2);
    assert_string_equal(f->args[0], "x");
    assert_string_equal(f->args[1], "y=2");
    f = ask(&p, &rules, "pump-1", "read_temp", 12, &when, 0); /* the table still answers */
    assert_string_equal(f->args[1], "C");
    sim_script_free(script);
}

/* A bad answers file is refused with its file and line. */
static void bad_answers_files(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"ok_type a\nBad b\n", ":2: the type must be lower case"},
        {"a x\n# c\na y\n", ":3: a second answer for this type"},
        {"\n\nreboot !error\n", ":3: !error needs a code"},
    };
    char err[256];
    struct sim_script *script = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[] = "/tmp/sim-answers.XXXXXX";
        write_temp(path, cases[i].text);
        err[0] = '\0';
        assert_int_equal(sim_script_load(path, &script, err, sizeof(err)), -1);
        unlink(path);
        assert_null(script);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, cases[i].want));
    }
    assert_int_equal(sim_script_load("/nonexistent/answers", &script, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_is_answered),
        cmocka_unit_test(unknown_type_is_an_error),
        cmocka_unit_test(read_temp_is_per_device_and_drifts),
        cmocka_unit_test(set_pixel_validates_coordinates),
        cmocka_unit_test(echo_returns_its_args),
        cmocka_unit_test(start_and_stop_events),
        cmocka_unit_test(rules_mute_error_slow),
        cmocka_unit_test(answer_args),
        cmocka_unit_test(delayed_answers_wait_and_cancel),
        cmocka_unit_test(delayed_answers_close_and_limit),
        cmocka_unit_test(scripted_and_generic_answers),
        cmocka_unit_test(bad_answers_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
