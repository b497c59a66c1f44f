/*
 * test_frame.c - the iotp frame parser and writer: every split of a stream of frames, every
 * malformed case with its exact error, resynchronization, limits, round trips (fixed and
 * random), writer refusals, argument helpers and hex. The parser's fast path for runs of
 * ordinary bytes and the word-at-a-time scan behind it and the writer are checked against
 * byte-at-a-time references: exhaustively over byte values and positions, and on random
 * streams with random limits and splits.
 *
 * Parsing a stream is recorded as a list of events ("F" + the frame re-serialized, or "E" +
 * the error code and the error id) so that any two ways of feeding the same bytes can be
 * compared with one string comparison.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iotp/iotp.h"

/* The library's private scan helper (static inline), tested here on its own as well. */
#include "iotp_scan.h"

#define US  "\x1f"
#define EOT "\x04"

/* Events of one parse, appended as text. */
struct events {
    char text[65536];
    size_t len;
    int frames;
    int errors;
};

static void add_event(struct events *ev, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(ev->text + ev->len, sizeof(ev->text) - ev->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(ev->text) - ev->len);
    ev->len += (size_t)n;
}

static void record_frame(struct events *ev, const struct iotp_frame *f)
{
    unsigned i;

    ev->frames++;
    add_event(ev, "F[%s|%s|%s|%u", f->from, f->to, f->type, (unsigned)f->id);
    for (i = 0; i < f->nargs; i++)
        add_event(ev, "|%s", f->args[i]);
    add_event(ev, "]");
}

/* Feed data to p in pieces whose sizes come from chunk() and record what comes out. */
static void feed(struct iotp_parser *p, const uint8_t *data, size_t len, struct events *ev,
                 size_t (*chunk)(size_t offset, void *arg), void *arg)
{
    size_t off = 0;

    while (off < len) {
        size_t n = chunk(off, arg);
        if (n > len - off)
            n = len - off;
        while (n > 0) {
            const struct iotp_frame *f = NULL;
            uint32_t err_id = 12345;
            size_t used = 0;
            int r = iotp_parser_feed(p, data + off, n, &used, &f, &err_id);
            assert_true(used <= n);
            if (r == 1) {
                assert_true(used > 0);
                record_frame(ev, f);
            } else if (r < 0) {
                assert_true(used > 0);
                ev->errors++;
                add_event(ev, "E[%d|%u]", r, (unsigned)err_id);
            } else {
                assert_int_equal(used, n);
            }
            off += used;
            n -= used;
        }
    }
}

static size_t chunk_all(size_t offset, void *arg)
{
    (void)offset;
    (void)arg;
    return SIZE_MAX;
}

static size_t chunk_one(size_t offset, void *arg)
{
    (void)offset;
    (void)arg;
    return 1;
}

/* First piece ends at *split, then the rest at once. */
static size_t chunk_split(size_t offset, void *arg)
{
    size_t split = *(size_t *)arg;
    return offset < split ? split - offset : SIZE_MAX;
}

static uint8_t pbuf[IOTP_MAX_FRAME];

static void parse_stream(const void *data, size_t len, struct events *ev,
                         size_t (*chunk)(size_t, void *), void *arg)
{
    struct iotp_parser p;

    memset(ev, 0, sizeof(*ev));
    assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), 0, 0), 0);
    feed(&p, data, len, ev, chunk, arg);
}

/* Parse a single frame given as bytes; returns 1 and fills *ev with the frame or the error. */
static int parse_one(const void *data, size_t len, struct events *ev)
{
    parse_stream(data, len, ev, chunk_all, NULL);
    return ev->frames + ev->errors;
}

/* ---- splits ---- */

static const char stream[] =
    "dev1" US "iotd" US "HELLO" US "1" US "proto=1" US "type=lamp" US "fw=1.0" US "cnonce=00ff" EOT
    "alice@acme" US "dev1" US "read_temp" US "7" EOT "iotd" US "dev1" US "PING" US "4294967295" US
    "" US "x" US "" EOT "a" US "b" US "T" US "0" US "\xc3\xa9t\xc3\xa9" EOT;

static void test_split_every_boundary(void **state)
{
    static struct events whole, split, bytewise;
    size_t len = sizeof(stream) - 1, i;

    (void)state;
    parse_stream(stream, len, &whole, chunk_all, NULL);
    assert_int_equal(whole.frames, 4);
    assert_int_equal(whole.errors, 0);
    assert_string_equal(whole.text, "F[dev1|iotd|HELLO|1|proto=1|type=lamp|fw=1.0|cnonce=00ff]"
                                    "F[alice@acme|dev1|read_temp|7]"
                                    "F[iotd|dev1|PING|4294967295||x|]"
                                    "F[a|b|T|0|\xc3\xa9t\xc3\xa9]");
    for (i = 0; i <= len; i++) {
        parse_stream(stream, len, &split, chunk_split, &i);
        assert_string_equal(whole.text, split.text);
    }
    parse_stream(stream, len, &bytewise, chunk_one, NULL);
    assert_string_equal(whole.text, bytewise.text);
}

/* A stream with malformed frames between good ones splits the same way too. */
static void test_split_with_errors(void **state)
{
    static const char bad[] =
        "a" US "b" US "T" US "01" US "junk" EOT "a" US "b" US "T" US "5" EOT "\x04"
        "a" US "" US "T" US "1" EOT "x" US "y" US "Z" US "9" US "ok" EOT;
    static struct events whole, split, bytewise;
    size_t len = sizeof(bad) - 1, i;

    (void)state;
    parse_stream(bad, len, &whole, chunk_all, NULL);
    assert_int_equal(whole.frames, 2);
    assert_int_equal(whole.errors, 3);
    for (i = 0; i <= len; i++) {
        parse_stream(bad, len, &split, chunk_split, &i);
        assert_string_equal(whole.text, split.text);
    }
    parse_stream(bad, len, &bytewise, chunk_one, NULL);
    assert_string_equal(whole.text, bytewise.text);
}

/* ---- malformed frames ---- */

struct bad_case {
    const char *bytes;
    size_t len; /* 0: strlen */
    int error;
    uint32_t error_id;
};

static void check_bad(const struct bad_case *c)
{
    static struct events ev;
    static uint8_t buf[8192];
    static const char good[] = "g" US "h" US "OK" US "3" EOT;
    size_t len = c->len ? c->len : strlen(c->bytes);
    char want[64];

    /* The bad frame, then a good one: the error is exact and the parser recovers. */
    assert_true(len + sizeof(good) <= sizeof(buf));
    memcpy(buf, c->bytes, len);
    memcpy(buf + len, good, sizeof(good) - 1);
    parse_stream(buf, len + sizeof(good) - 1, &ev, chunk_all, NULL);
    snprintf(want, sizeof(want), "E[%d|%u]F[g|h|OK|3]", c->error, (unsigned)c->error_id);
    if (strcmp(ev.text, want) != 0)
        fail_msg("case %.40s: got %s want %s", c->bytes, ev.text, want);
    parse_stream(buf, len + sizeof(good) - 1, &ev, chunk_one, NULL);
    assert_string_equal(ev.text, want);
}

static void test_malformed(void **state)
{
    static const struct bad_case cases[] = {
        /* empty fields */
        {US "b" US "T" US "1" EOT, 0, IOTP_EEMPTY_FIELD, 0},
        {"a" US US "T" US "1" EOT, 0, IOTP_EEMPTY_FIELD, 0},
        {"a" US "b" US US "1" EOT, 0, IOTP_EEMPTY_FIELD, 0},
        {"a" US "b" US "T" US EOT, 0, IOTP_EEMPTY_FIELD, 0},
        {"a" US "b" US "T" US US "x" EOT, 0, IOTP_EEMPTY_FIELD, 0},
        /* bad ids */
        {"a" US "b" US "T" US "1a" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "a1" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "-1" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "+1" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US " 1" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "01" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "00" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "4294967296" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "4294967300" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "99999999999" EOT, 0, IOTP_EBAD_ID, 0},
        {"a" US "b" US "T" US "12345678901234567890" EOT, 0, IOTP_EBAD_ID, 0},
        /* too few fields */
        {EOT, 0, IOTP_ETOO_FEW_FIELDS, 0},
        {"a" EOT, 0, IOTP_ETOO_FEW_FIELDS, 0},
        {"a" US "b" EOT, 0, IOTP_ETOO_FEW_FIELDS, 0},
        {"a" US "b" US "T" EOT, 0, IOTP_ETOO_FEW_FIELDS, 0},
        {"a" US "b" US EOT, 0, IOTP_ETOO_FEW_FIELDS, 0},
        /* control bytes in every kind of field */
        {"a\x01" US "b" US "T" US "1" EOT, 0, IOTP_ECONTROL, 0},
        {"a" US "\nb" US "T" US "1" EOT, 0, IOTP_ECONTROL, 0},
        {"a" US "b" US "T\x1b" US "1" EOT, 0, IOTP_ECONTROL, 0},
        {"a" US "b" US "T" US "1\r" EOT, 0, IOTP_ECONTROL, 0},
        {"a" US "b" US "T" US "1" US "x\x7f" EOT, 0, IOTP_ECONTROL, 1},
        {"a" US "b" US "T" US "77" US "x" US "y\tz" EOT, 0, IOTP_ECONTROL, 77},
        {"a\0" US "b" US "T" US "1" EOT, 9, IOTP_ECONTROL, 0},
        {"a" US "b" US "T" US "1" US "\0" EOT, 10, IOTP_ECONTROL, 1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i]);
}

/* Build a frame into buf with n args of arg_len bytes each; returns its length. */
static size_t build(char *buf, const char *from, const char *to, const char *type, const char *id,
                    unsigned nargs, size_t arg_len)
{
    size_t len = (size_t)sprintf(buf, "%s" US "%s" US "%s" US "%s", from, to, type, id);
    unsigned i;

    for (i = 0; i < nargs; i++) {
        buf[len++] = US[0];
        memset(buf + len, 'v', arg_len);
        len += arg_len;
    }
    buf[len++] = EOT[0];
    buf[len] = '\0';
    return len;
}

static void test_field_lengths(void **state)
{
    static char big[IOTP_MAX_ADDRESS_LEN + 2], type[IOTP_MAX_TYPE_LEN + 2];
    static char frame[9000];
    static struct events ev;
    struct bad_case c;

    (void)state;
    memset(big, 'd', IOTP_MAX_ADDRESS_LEN);
    memset(type, 'T', IOTP_MAX_TYPE_LEN);
    /* At the limits: accepted. */
    assert_int_equal(parse_one(frame, build(frame, big, big, type, "1", 0, 0), &ev), 1);
    assert_int_equal(ev.frames, 1);
    /* One byte over: refused with the field error. */
    big[IOTP_MAX_ADDRESS_LEN] = 'd';
    type[IOTP_MAX_TYPE_LEN] = 'T';
    c.len = build(frame, big, "b", "T", "1", 0, 0);
    c.bytes = frame;
    c.error = IOTP_EFIELD_TOO_LONG;
    c.error_id = 0;
    check_bad(&c);
    c.len = build(frame, "a", big, "T", "1", 0, 0);
    check_bad(&c);
    c.len = build(frame, "a", "b", type, "1", 0, 0);
    check_bad(&c);
}

static void test_frame_limit(void **state)
{
    static char frame[9000];
    static struct events ev;
    struct bad_case c;
    size_t len, head;

    (void)state;
    /* Exactly IOTP_MAX_FRAME bytes with its EOT: one arg that fills the rest. */
    head = strlen("a" US "b" US "T" US "42" US);
    len = build(frame, "a", "b", "T", "42", 1, IOTP_MAX_FRAME - head - 1);
    assert_int_equal(len, IOTP_MAX_FRAME);
    assert_int_equal(parse_one(frame, len, &ev), 1);
    assert_int_equal(ev.frames, 1);
    /* One more byte: too large, with the id it already knew, then resynchronized. */
    c.len = build(frame, "a", "b", "T", "42", 1, IOTP_MAX_FRAME - head);
    c.bytes = frame;
    c.error = IOTP_ETOO_LARGE;
    c.error_id = 42;
    check_bad(&c);
    /* Far too large: reported at the first byte over the limit, before the EOT arrives. */
    c.len = build(frame, "a", "b", "T", "42", 2, 4000);
    check_bad(&c);
}

static void test_too_large_reported_early(void **state)
{
    static uint8_t data[IOTP_MAX_FRAME + 100];
    struct iotp_parser p;
    const struct iotp_frame *f;
    uint32_t err_id;
    size_t used;

    (void)state;
    memset(data, 'x', sizeof(data));
    memcpy(data, "a" US "b" US "T" US "1" US, 8);
    assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), 0, 0), 0);
    assert_int_equal(iotp_parser_feed(&p, data, sizeof(data), &used, &f, &err_id), IOTP_ETOO_LARGE);
    assert_int_equal(used, IOTP_MAX_FRAME + 1);
    assert_int_equal(err_id, 1);
    /* The tail is swallowed without another error, however long it is. */
    assert_int_equal(iotp_parser_feed(&p, data, sizeof(data), &used, &f, &err_id), 0);
    assert_int_equal(used, sizeof(data));
    assert_int_equal(iotp_parser_feed(&p, (const uint8_t *)"zz" EOT "a" US "b" US "C" US "1" EOT,
                                      11, &used, &f, &err_id),
                     1);
    assert_string_equal(f->type, "C");
}

static void test_too_many_args(void **state)
{
    static char frame[2000];
    static struct events ev;
    struct bad_case c;

    (void)state;
    assert_int_equal(parse_one(frame, build(frame, "a", "b", "T", "9", IOTP_MAX_ARGS, 2), &ev), 1);
    assert_int_equal(ev.frames, 1);
    c.len = build(frame, "a", "b", "T", "9", IOTP_MAX_ARGS + 1, 2);
    c.bytes = frame;
    c.error = IOTP_ETOO_MANY_ARGS;
    c.error_id = 9;
    check_bad(&c);
    c.len = build(frame, "a", "b", "T", "9", IOTP_MAX_ARGS + 1, 0);
    check_bad(&c);
}

static void test_custom_limits(void **state)
{
    static uint8_t small[64];
    struct iotp_parser p;
    const struct iotp_frame *f;
    const char *ok = "a" US "b" US "T" US "1" US "x" US "y" EOT;
    const char *many = "a" US "b" US "T" US "1" US "x" US "y" US "z" EOT;
    uint32_t err_id;
    size_t used;

    (void)state;
    assert_int_equal(iotp_parser_init(&p, small, sizeof(small), 0, 0), IOTP_EINVAL);
    assert_int_equal(iotp_parser_init(&p, small, sizeof(small), 65, 2), IOTP_EINVAL);
    assert_int_equal(iotp_parser_init(&p, small, sizeof(small), 7, 2), IOTP_EINVAL);
    assert_int_equal(iotp_parser_init(&p, small, sizeof(small), 64, IOTP_MAX_ARGS + 1),
                     IOTP_EINVAL);
    assert_int_equal(iotp_parser_init(NULL, small, sizeof(small), 64, 2), IOTP_EINVAL);
    assert_int_equal(iotp_parser_init(&p, small, sizeof(small), 64, 2), 0);
    assert_int_equal(iotp_parser_feed(&p, (const uint8_t *)ok, strlen(ok), &used, &f, &err_id), 1);
    assert_int_equal(f->nargs, 2);
    assert_int_equal(iotp_parser_feed(&p, (const uint8_t *)many, strlen(many), &used, &f, &err_id),
                     IOTP_ETOO_MANY_ARGS);
    assert_int_equal(err_id, 1);
    assert_int_equal(
        iotp_parser_feed(&p, (const uint8_t *)many + used, strlen(many) - used, &used, &f, &err_id),
        0);
    /* reset drops a partial frame. */
    assert_int_equal(iotp_parser_feed(&p, (const uint8_t *)"zzz", 3, &used, &f, NULL), 0);
    iotp_parser_reset(&p);
    assert_int_equal(iotp_parser_feed(&p, (const uint8_t *)ok, strlen(ok), &used, &f, NULL), 1);
    assert_string_equal(f->from, "a");
}

static void test_resync(void **state)
{
    static const char data[] = "garbage\x01more" EOT "a" US "b" US "T" US "1" EOT "\x02" EOT "c" US
                               "d" US "U" US "2" US "arg" EOT;
    static struct events ev;

    (void)state;
    parse_stream(data, sizeof(data) - 1, &ev, chunk_all, NULL);
    assert_string_equal(ev.text, "E[-7|0]F[a|b|T|1]E[-7|0]F[c|d|U|2|arg]");
}

/* ---- writer ---- */

static void test_writer_round_trip(void **state)
{
    uint8_t buf[IOTP_MAX_FRAME];
    struct iotp_frame f = {0}, *g;
    struct iotp_parser p;
    const struct iotp_frame *out;
    size_t used;
    int len;

    (void)state;
    f.from = "alice@acme";
    f.to = "dev1";
    f.type = "set_pixel";
    f.id = 4294967295u;
    f.nargs = 4;
    f.args[0] = "3";
    f.args[1] = "";
    f.args[2] = "k=v=w";
    f.args[3] = "\xe2\x82\xac";
    len = iotp_frame_write(&f, buf, sizeof(buf));
    assert_int_equal(len, strlen("alice@acme" US "dev1" US "set_pixel" US "4294967295" US "3" US US
                                 "k=v=w" US "\xe2\x82\xac" EOT));
    assert_memory_equal(buf,
                        "alice@acme" US "dev1" US "set_pixel" US "4294967295" US "3" US US
                        "k=v=w" US "\xe2\x82\xac" EOT,
                        (size_t)len);
    assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), 0, 0), 0);
    assert_int_equal(iotp_parser_feed(&p, buf, (size_t)len, &used, &out, NULL), 1);
    assert_int_equal(used, len);
    g = (struct iotp_frame *)out;
    assert_string_equal(g->from, f.from);
    assert_string_equal(g->to, f.to);
    assert_string_equal(g->type, f.type);
    assert_int_equal(g->id, f.id);
    assert_int_equal(g->nargs, 4);
    assert_string_equal(g->args[1], "");
    assert_string_equal(g->args[2], "k=v=w");
    assert_string_equal(iotp_frame_arg(g, "k"), "v=w");
}

/* Random field of 0..max bytes with no control bytes (any other byte, 0x80..0xFF too). */
static size_t random_field(char *out, size_t min, size_t max)
{
    size_t len = min + (size_t)rand() % (max - min + 1), i;

    for (i = 0; i < len; i++) {
        int c;
        do
            c = rand() & 0xFF;
        while (c < 0x20 || c == 0x7F);
        out[i] = (char)c;
    }
    out[len] = '\0';
    return len;
}

static void test_random_round_trips(void **state)
{
    static char fields[3 + IOTP_MAX_ARGS][256];
    static uint8_t buf[IOTP_MAX_FRAME], stream_buf[64 * IOTP_MAX_FRAME];
    static struct events ev1, ev2;
    size_t stream_len = 0;
    int round, written = 0;

    (void)state;
    srand(1234);
    for (round = 0; round < 2000; round++) {
        struct iotp_frame f = {0};
        struct iotp_parser p;
        const struct iotp_frame *g;
        size_t used;
        unsigned i;
        int len;

        random_field(fields[0], 1, IOTP_MAX_ADDRESS_LEN);
        random_field(fields[1], 1, 20);
        random_field(fields[2], 1, IOTP_MAX_TYPE_LEN);
        f.from = fields[0];
        f.to = fields[1];
        f.type = fields[2];
        f.id = (uint32_t)rand() * 2654435761u;
        f.nargs = (unsigned)rand() % (IOTP_MAX_ARGS + 1);
        for (i = 0; i < f.nargs; i++) {
            random_field(fields[3 + i], 0, 200);
            f.args[i] = fields[3 + i];
        }
        len = iotp_frame_write(&f, buf, sizeof(buf));
        if (len == IOTP_ETOO_LARGE)
            continue; /* many long args: legitimately refused */
        assert_true(len > 0);
        assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), 0, 0), 0);
        assert_int_equal(iotp_parser_feed(&p, buf, (size_t)len, &used, &g, NULL), 1);
        assert_int_equal(used, (size_t)len);
        assert_string_equal(g->from, f.from);
        assert_string_equal(g->to, f.to);
        assert_string_equal(g->type, f.type);
        assert_int_equal(g->id, f.id);
        assert_int_equal(g->nargs, f.nargs);
        for (i = 0; i < f.nargs; i++)
            assert_string_equal(g->args[i], f.args[i]);
        if (stream_len + (size_t)len <= sizeof(stream_buf) && written < 40) {
            memcpy(stream_buf + stream_len, buf, (size_t)len);
            stream_len += (size_t)len;
            written++;
        }
    }
    /* Many random frames back to back, whole and byte by byte. */
    parse_stream(stream_buf, stream_len, &ev1, chunk_all, NULL);
    parse_stream(stream_buf, stream_len, &ev2, chunk_one, NULL);
    assert_int_equal(ev1.frames, written);
    assert_int_equal(ev1.errors, 0);
    assert_string_equal(ev1.text, ev2.text);
}

static void test_writer_refusals(void **state)
{
    static char big[IOTP_MAX_ADDRESS_LEN + 2], arg[IOTP_MAX_FRAME + 10];
    uint8_t buf[IOTP_MAX_FRAME + 100];
    struct iotp_frame f = {0};
    struct iotp_writer w;
    unsigned i;
    int len;

    (void)state;
    f.from = "a";
    f.to = "b";
    f.type = "T";
    f.id = 1;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), 8);
    f.from = "";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_EEMPTY_FIELD);
    f.from = "a";
    f.to = "";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_EEMPTY_FIELD);
    f.to = "b";
    f.type = "";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_EEMPTY_FIELD);
    f.type = NULL;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_EINVAL);
    f.type = "T" US "x";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ECONTROL);
    f.type = "T";
    f.from = "a" EOT;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ECONTROL);
    f.from = "a";
    f.to = "b\x7f";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ECONTROL);
    f.to = "b";
    memset(big, 'x', IOTP_MAX_ADDRESS_LEN + 1);
    f.from = big;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_EFIELD_TOO_LONG);
    f.from = "a";
    f.type = big;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_EFIELD_TOO_LONG);
    f.type = "T";
    f.nargs = 1;
    f.args[0] = "x\ny";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ECONTROL);
    f.args[0] = "x" US "y";
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ECONTROL);
    f.args[0] = "ok";
    f.nargs = IOTP_MAX_ARGS + 1;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ETOO_MANY_ARGS);
    /* Over the caller's buffer vs over the protocol limit. */
    f.nargs = 1;
    assert_int_equal(iotp_frame_write(&f, buf, 10), IOTP_ENOSPC);
    assert_int_equal(iotp_frame_write(&f, buf, 11), 11);
    memset(arg, 'v', IOTP_MAX_FRAME - 9); /* "a b T 1 " is 8 bytes, EOT 1 */
    f.args[0] = arg;
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_MAX_FRAME);
    arg[IOTP_MAX_FRAME - 9] = 'v';
    assert_int_equal(iotp_frame_write(&f, buf, sizeof(buf)), IOTP_ETOO_LARGE);
    /* Writer: sticky errors and key rules. */
    iotp_writer_begin(&w, buf, sizeof(buf), "a", "b", "T", 1);
    assert_int_equal(iotp_writer_kv(&w, "k=x", "v"), IOTP_EINVAL);
    assert_int_equal(iotp_writer_arg(&w, "fine"), IOTP_EINVAL);
    assert_int_equal(iotp_writer_end(&w), IOTP_EINVAL);
    iotp_writer_begin(&w, buf, sizeof(buf), "a", "b", "T", 1);
    assert_int_equal(iotp_writer_kv(&w, "", "v"), IOTP_EINVAL);
    iotp_writer_begin(&w, buf, sizeof(buf), "a", "b", "T", 1);
    assert_int_equal(iotp_writer_kv(&w, "k", "v\x01"), IOTP_ECONTROL);
    iotp_writer_begin(&w, buf, sizeof(buf), "a", "b", "T", 1);
    for (i = 0; i < IOTP_MAX_ARGS; i++)
        assert_int_equal(iotp_writer_kv_u32(&w, "n", i), 0);
    assert_int_equal(iotp_writer_arg(&w, "one too many"), IOTP_ETOO_MANY_ARGS);
    assert_int_equal(iotp_writer_end(&w), IOTP_ETOO_MANY_ARGS);
    assert_int_equal(iotp_writer_begin(&w, NULL, 10, "a", "b", "T", 1), IOTP_EINVAL);
    /* Measuring (buf NULL, cap 0): the written length, the same checks, the frame limit. */
    iotp_writer_begin(&w, buf, sizeof(buf), "dev", "iotd", "EVENT", 4294967295u);
    iotp_writer_kv_hex(&w, "h", (const uint8_t *)"\x01\x02", 2);
    iotp_writer_kv(&w, "k", "value");
    len = iotp_writer_end(&w);
    assert_true(len > 0);
    iotp_writer_begin(&w, NULL, 0, "dev", "iotd", "EVENT", 4294967295u);
    iotp_writer_kv_hex(&w, "h", (const uint8_t *)"\x01\x02", 2);
    iotp_writer_kv(&w, "k", "value");
    assert_int_equal(iotp_writer_end(&w), len);
    iotp_writer_begin(&w, NULL, 0, "a", "b", "T", 1);
    assert_int_equal(iotp_writer_kv(&w, "k", "v\x01"), IOTP_ECONTROL);
    iotp_writer_begin(&w, NULL, 0, "a", "b", "T", 1);
    memset(arg, 'v', IOTP_MAX_FRAME - 9); /* "a b T 1 " is 8 bytes, EOT 1 */
    memset(arg + IOTP_MAX_FRAME - 9, 0, sizeof(arg) - (IOTP_MAX_FRAME - 9));
    assert_int_equal(iotp_writer_arg(&w, arg), 0);
    assert_int_equal(iotp_writer_end(&w), IOTP_MAX_FRAME);
    iotp_writer_begin(&w, NULL, 0, "a", "b", "T", 1);
    arg[IOTP_MAX_FRAME - 9] = 'v'; /* one byte more: the EOT no longer fits the limit */
    assert_int_equal(iotp_writer_arg(&w, arg), 0);
    assert_int_equal(iotp_writer_end(&w), IOTP_ETOO_LARGE);
}

static void test_args_helpers(void **state)
{
    uint8_t buf[512], bytes[4];
    struct iotp_parser p;
    const struct iotp_frame *f;
    struct iotp_writer w;
    uint32_t v;
    size_t used;
    int len;

    (void)state;
    iotp_writer_begin(&w, buf, sizeof(buf), "iotd", "dev1", "WELCOME", 2);
    iotp_writer_kv_hex(&w, "mac", (const uint8_t *)"\x01\xab\xff\x00", 4);
    iotp_writer_kv_u32(&w, "ping", 30);
    iotp_writer_kv(&w, "empty", "");
    iotp_writer_kv(&w, "bad", "012");
    iotp_writer_arg(&w, "pingx=1");
    iotp_writer_kv(&w, "ping", "99");
    len = iotp_writer_end(&w);
    assert_true(len > 0);
    assert_memory_equal(
        buf, "iotd" US "dev1" US "WELCOME" US "2" US "mac=01abff00" US "ping=30",
        strlen("iotd" US "dev1" US "WELCOME" US "2" US "mac=01abff00" US "ping=30"));
    assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), 0, 0), 0);
    assert_int_equal(iotp_parser_feed(&p, buf, (size_t)len, &used, &f, NULL), 1);
    assert_string_equal(iotp_frame_arg(f, "mac"), "01abff00");
    assert_string_equal(iotp_frame_arg(f, "ping"), "30"); /* the first one wins */
    assert_string_equal(iotp_frame_arg(f, "empty"), "");
    assert_null(iotp_frame_arg(f, "pin"));
    assert_null(iotp_frame_arg(f, "missing"));
    assert_int_equal(iotp_frame_arg_u32(f, "ping", &v), 0);
    assert_int_equal(v, 30);
    assert_int_equal(iotp_frame_arg_u32(f, "bad", &v), IOTP_EBAD_ARGS);
    assert_int_equal(iotp_frame_arg_u32(f, "empty", &v), IOTP_EBAD_ARGS);
    assert_int_equal(iotp_frame_arg_u32(f, "nope", &v), IOTP_ENOTFOUND);
    assert_int_equal(iotp_frame_arg_hex(f, "mac", bytes, 4), 0);
    assert_memory_equal(bytes, "\x01\xab\xff\x00", 4);
    assert_int_equal(iotp_frame_arg_hex(f, "mac", bytes, 3), IOTP_EBAD_ARGS);
    assert_int_equal(iotp_frame_arg_hex(f, "ping", bytes, 2), IOTP_EBAD_ARGS);
    assert_int_equal(iotp_frame_arg_hex(f, "bad", bytes, 2), IOTP_EBAD_ARGS);
    assert_int_equal(iotp_frame_arg_hex(f, "nope", bytes, 1), IOTP_ENOTFOUND);
    assert_int_equal(iotp_parse_u32("4294967295", 10, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(iotp_parse_u32("4294967296", 10, &v), IOTP_EBAD_ID);
    assert_int_equal(iotp_parse_u32("0", 1, &v), 0);
    assert_int_equal(iotp_parse_u32("", 0, &v), IOTP_EBAD_ID);
}

/* iotp_format_fixed against snprintf over a range of values and every decimals count. */
static void test_format_fixed(void **state)
{
    static const int32_t values[] = {0,   1,   5,    9,     10,       42,        99,
                                     100, 123, 215,  1000,  99999,    123456789, INT32_MAX,
                                     -1,  -5,  -123, -1000, INT32_MIN};
    char out[13], want[32];

    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        for (unsigned d = 0; d <= 10; d++) {
            unsigned dd = d > 9 ? 9 : d;
            uint32_t mag = values[i] < 0 ? 0u - (uint32_t)values[i] : (uint32_t)values[i];
            uint32_t scale = 1;
            for (unsigned k = 0; k < dd; k++)
                scale *= 10;
            if (dd == 0)
                snprintf(want, sizeof(want), "%s%" PRIu32, values[i] < 0 ? "-" : "", mag);
            else
                snprintf(want, sizeof(want), "%s%" PRIu32 ".%0*" PRIu32, values[i] < 0 ? "-" : "",
                         mag / scale, (int)dd, mag % scale);
            assert_int_equal(iotp_format_fixed(values[i], d, out), strlen(want));
            assert_string_equal(out, want);
        }
    }
}

static void test_hex(void **state)
{
    uint8_t bytes[256], back[256];
    char hex[513];
    int i;

    (void)state;
    for (i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    iotp_hex_encode(bytes, 256, hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102", 6);
    assert_memory_equal(hex + 506, "fdfeff", 6);
    assert_int_equal(iotp_hex_decode(hex, 512, back, sizeof(back)), 256);
    assert_memory_equal(bytes, back, 256);
    assert_int_equal(iotp_hex_decode("ABcd", 4, back, 2), 2);
    assert_memory_equal(back, "\xab\xcd", 2);
    assert_int_equal(iotp_hex_decode("abc", 3, back, 2), IOTP_EINVAL);
    assert_int_equal(iotp_hex_decode("zz", 2, back, 2), IOTP_EINVAL);
    assert_int_equal(iotp_hex_decode("abcd", 4, back, 1), IOTP_EINVAL);
    assert_int_equal(iotp_hex_decode("", 0, back, 0), 0);
}

static void test_errors(void **state)
{
    int i, j;

    (void)state;
    for (i = 0; i < IOTP_ERROR_COUNT; i++)
        for (j = i + 1; j < IOTP_ERROR_COUNT; j++)
            assert_string_not_equal(iotp_error_name(-i), iotp_error_name(-j));
    assert_string_equal(iotp_strerror(IOTP_ECONTROL), "control byte inside a field");
    assert_string_equal(iotp_strerror(-999), "unknown error");
    assert_string_equal(iotp_strerror(5), "unknown error");
    assert_string_equal(iotp_error_wire_code(IOTP_ETOO_LARGE), "too_large");
    assert_string_equal(iotp_error_wire_code(IOTP_EBAD_ID), "bad_frame");
    assert_string_equal(iotp_error_wire_code(IOTP_ETOO_FEW_FIELDS), "bad_frame");
    assert_string_equal(iotp_error_wire_code(IOTP_EBAD_ARGS), "bad_args");
    assert_string_equal(iotp_error_wire_code(IOTP_EAUTH), "auth");
    assert_string_equal(iotp_error_wire_code(IOTP_ERANDOM), "internal");
}

/* ---- the word-at-a-time scan and the parser's fast path ---- */

/* The control-byte rule spelled out independently of the library. */
static int ref_is_control(unsigned c)
{
    return c <= 0x1F || c == 0x7F;
}

/* Every byte value at every position of a word, next to every kind of neighbour, and every
 * pair of values in adjacent positions: the mask flags exactly the control bytes (so neither a
 * missed control byte nor a false alarm), and the scan stops exactly at the first one. */
static void test_scan_exhaustive(void **state)
{
    static const uint8_t fillers[] = {0x20, 'a', 0x7E, 0x80, 0xA0, 0xFF, 0x00, 0x1F, 0x7F};
    enum { W = sizeof(size_t) };
    uint8_t bytes[W], flags[W], buf[4 * W + 1];
    size_t word, want, f, pos, pos2, off, len;
    unsigned b, b2;

    (void)state;
    for (f = 0; f < sizeof(fillers); f++) {
        for (pos = 0; pos < W; pos++) {
            for (b = 0; b < 256; b++) {
                for (pos2 = 0; pos2 < W; pos2++) {
                    bytes[pos2] = fillers[f];
                    flags[pos2] = ref_is_control(fillers[f]) ? 0x80 : 0;
                }
                bytes[pos] = (uint8_t)b;
                flags[pos] = ref_is_control(b) ? 0x80 : 0;
                memcpy(&word, bytes, W);
                memcpy(&want, flags, W);
                assert_true(iotp_scan_control_mask(word) == want);
            }
        }
    }
    for (pos = 0; pos + 1 < W; pos++) {
        for (b = 0; b < 256; b++) {
            for (b2 = 0; b2 < 256; b2++) {
                memset(bytes, 'x', W);
                memset(flags, 0, W);
                bytes[pos] = (uint8_t)b;
                bytes[pos + 1] = (uint8_t)b2;
                flags[pos] = ref_is_control(b) ? 0x80 : 0;
                flags[pos + 1] = ref_is_control(b2) ? 0x80 : 0;
                memcpy(&word, bytes, W);
                memcpy(&want, flags, W);
                assert_true(iotp_scan_control_mask(word) == want);
            }
        }
    }
    /* The scan, at every alignment and length, with one byte value placed at every position
     * (inside the range, or just past its end where it must not be looked at). */
    for (off = 0; off < W; off++) {
        for (len = 0; len + off < sizeof(buf) - 1; len++) {
            for (pos = 0; pos <= len; pos++) {
                for (b = 0; b < 256; b++) {
                    memset(buf, 0xC3, sizeof(buf));
                    buf[off + pos] = (uint8_t)b;
                    want = pos < len && ref_is_control(b) ? pos : len;
                    assert_int_equal(iotp_scan_plain(buf + off, len), want);
                    assert_int_equal(iotp_scan_is_control((uint8_t)b), ref_is_control(b));
                }
            }
        }
    }
}

/* The writer refuses a control byte anywhere in a field, and only a control byte. */
static void test_writer_control_every_position(void **state)
{
    enum { W = sizeof(size_t) };
    char field[3 * W + 2];
    uint8_t buf[512];
    struct iotp_writer w;
    size_t len, pos, off;
    unsigned b;

    (void)state;
    for (len = 1; len <= 3 * W + 1; len++) {
        for (pos = 0; pos < len; pos++) {
            for (b = 1; b < 256; b++) { /* a NUL would end the C string */
                int want = ref_is_control(b) ? IOTP_ECONTROL : 0;
                memset(field, 0xE2, sizeof(field));
                field[pos] = (char)b;
                field[len] = '\0';
                for (off = 0; off < 2; off++) {
                    assert_int_equal(
                        iotp_writer_begin(&w, buf, sizeof(buf), field + off, "b", "T", 1),
                        len - off == 0 ? IOTP_EEMPTY_FIELD
                        : pos < off    ? 0
                                       : want);
                    iotp_writer_begin(&w, buf, sizeof(buf), "a", "b", "T", 1);
                    assert_int_equal(iotp_writer_arg_bytes(&w, field + off, len - off),
                                     pos < off ? 0 : want);
                }
                iotp_writer_begin(&w, buf, sizeof(buf), "a", "b", "T", 1);
                assert_int_equal(iotp_writer_kv(&w, "k", field), want);
            }
        }
    }
}

/* The byte-at-a-time parser as it was before the fast path, kept as the reference the
 * library's parser must agree with on every call: result, *consumed, frame, error id. */
struct ref_parser {
    uint8_t buf[IOTP_MAX_FRAME];
    size_t max_frame;
    unsigned max_args;
    size_t len, field_start;
    unsigned field;
    uint32_t id;
    int id_known, skipping;
    struct iotp_frame frame;
};

static void ref_start_frame(struct ref_parser *p)
{
    p->len = 0;
    p->field_start = 0;
    p->field = 0;
    p->id = 0;
    p->id_known = 0;
}

static int ref_close_field(struct ref_parser *p)
{
    const char *start = (const char *)p->buf + p->field_start;
    size_t field_len = p->len - 1 - p->field_start;

    if (p->field <= 3 && field_len == 0)
        return IOTP_EEMPTY_FIELD;
    if (p->field == 0)
        p->frame.from = start;
    else if (p->field == 1)
        p->frame.to = start;
    else if (p->field == 2)
        p->frame.type = start;
    else if (p->field == 3) {
        p->frame.id = p->id;
        p->id_known = 1;
    } else
        p->frame.args[p->field - 4] = start;
    p->field++;
    p->field_start = p->len;
    return 0;
}

static int ref_check_field_byte(struct ref_parser *p, uint8_t c)
{
    size_t field_len = p->len - p->field_start;

    if (ref_is_control(c))
        return IOTP_ECONTROL;
    if (p->field <= 1)
        return field_len + 1 > IOTP_MAX_ADDRESS_LEN ? IOTP_EFIELD_TOO_LONG : 0;
    if (p->field == 2)
        return field_len + 1 > IOTP_MAX_TYPE_LEN ? IOTP_EFIELD_TOO_LONG : 0;
    if (p->field == 3) {
        if (c < '0' || c > '9')
            return IOTP_EBAD_ID;
        if (field_len == 1 && p->id == 0)
            return IOTP_EBAD_ID;
        if (p->id > (UINT32_MAX - (uint32_t)(c - '0')) / 10)
            return IOTP_EBAD_ID;
        p->id = p->id * 10 + (uint32_t)(c - '0');
    }
    return 0;
}

static int ref_step(struct ref_parser *p, uint8_t c)
{
    int err;

    if (p->len + 1 > p->max_frame)
        return IOTP_ETOO_LARGE;
    if (c == IOTP_EOT || c == IOTP_US) {
        p->buf[p->len++] = '\0';
        if (c == IOTP_EOT && p->field < 3)
            return IOTP_ETOO_FEW_FIELDS;
        err = ref_close_field(p);
        if (err)
            return err;
        if (c == IOTP_EOT) {
            p->frame.nargs = p->field - 4;
            return 1;
        }
        return p->field >= 4 && p->field - 4 >= p->max_args ? IOTP_ETOO_MANY_ARGS : 0;
    }
    err = ref_check_field_byte(p, c);
    if (err)
        return err;
    p->buf[p->len++] = c;
    return 0;
}

static int ref_feed(struct ref_parser *p, const uint8_t *data, size_t len, size_t *consumed,
                    const struct iotp_frame **out, uint32_t *error_id)
{
    size_t i;
    int r;

    for (i = 0; i < len; i++) {
        if (p->skipping) {
            if (data[i] == IOTP_EOT)
                p->skipping = 0;
            continue;
        }
        r = ref_step(p, data[i]);
        if (r == 0)
            continue;
        *consumed = i + 1;
        if (r == 1) {
            *out = &p->frame;
            ref_start_frame(p);
            return 1;
        }
        *error_id = p->id_known ? p->id : 0;
        p->skipping = data[i] != IOTP_EOT;
        ref_start_frame(p);
        return r;
    }
    *consumed = len;
    return 0;
}

/* xorshift32: the same sequence on every libc. */
static uint32_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* One byte of a class picked by weight: plain ASCII, UTF-8-like high bytes, digits, the
 * bytes right at the edges of the control rule, separators and other control bytes. */
static uint8_t random_byte(void)
{
    static const uint8_t edges[] = {0x00, 0x1E, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0x9F, 0xFF};
    uint32_t k = rng() % 100;

    if (k < 40)
        return (uint8_t)(0x20 + rng() % 0x5F); /* 0x20..0x7E */
    if (k < 60)
        return (uint8_t)(0x80 + rng() % 0x80);
    if (k < 75)
        return (uint8_t)('0' + rng() % 10);
    if (k < 88)
        return IOTP_US;
    if (k < 93)
        return IOTP_EOT;
    if (k < 97)
        return edges[rng() % sizeof(edges)];
    return (uint8_t)(rng() % 0x20);
}

/* A stream of frame-shaped input: fields with lengths around the field and frame limits too,
 * an ID that is usually valid, each field ending in US or EOT; one field in six holds one
 * byte of any class, so every error comes up as well as valid frames. */
static size_t random_stream(uint8_t *out, size_t cap)
{
    size_t len = 0;
    unsigned field = 0;

    while (len < cap) {
        uint32_t shape = rng() % 10;
        size_t field_len, i, start = len;

        if (shape < 6)
            field_len = 1 + rng() % 12;
        else if (shape < 7)
            field_len = rng() % 2;
        else if (shape < 8)
            field_len = IOTP_MAX_TYPE_LEN - 2 + rng() % 5;
        else if (shape < 9)
            field_len = IOTP_MAX_ADDRESS_LEN - 2 + rng() % 5;
        else
            field_len = rng() % 700;
        if (field == 3 && rng() % 8) {
            char id[16];
            uint32_t k = rng() % 16;
            if (k == 0)
                strcpy(id, rng() % 2 ? "0" : "4294967295");
            else if (k == 1)
                strcpy(id, rng() % 2 ? "007" : "4294967296");
            else
                snprintf(id, sizeof(id), "%lu", (unsigned long)(rng() >> (rng() % 32)));
            field_len = strlen(id);
            if (field_len > cap - len)
                field_len = cap - len;
            memcpy(out + len, id, field_len);
            len += field_len;
        } else {
            for (i = 0; i < field_len && len < cap; i++) {
                uint32_t k = rng() % 100;
                if (k < 60)
                    out[len++] = (uint8_t)(0x20 + rng() % 0x5F);
                else if (k < 85)
                    out[len++] = (uint8_t)(0x80 + rng() % 0x80);
                else
                    out[len++] = (uint8_t)('0' + rng() % 10);
            }
        }
        if (len > start && rng() % 6 == 0)
            out[start + rng() % (len - start)] = random_byte();
        if (len < cap) {
            int end = field >= 3 ? rng() % 4 == 0 : rng() % 30 == 0;
            out[len++] = end ? IOTP_EOT : IOTP_US;
            field = end ? 0 : field + 1;
        }
    }
    return len;
}

static void assert_same_string(const char *a, const char *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
}

/* What the differential runs saw, to check that the random input reaches every outcome. */
static struct {
    unsigned long frames, errors[16];
} diff_seen;

/* Feed data to the parser and the reference in the same chunks, comparing every call. */
static void differential_feed(struct iotp_parser *p, struct ref_parser *ref, const uint8_t *data,
                              size_t len, int chunking)
{
    size_t off = 0;

    while (off < len) {
        const struct iotp_frame *f = NULL, *g = NULL;
        uint32_t err_id = 777, ref_err_id = 777;
        size_t used = 999999, ref_used = 888888, n = len - off;
        unsigned i;
        int r, ref_r;

        if (chunking == 1)
            n = 1;
        else if (chunking == 2 && n > 1)
            n = 1 + rng() % (rng() % 4 ? 24 : n);
        r = iotp_parser_feed(p, data + off, n, &used, &f, &err_id);
        ref_r = ref_feed(ref, data + off, n, &ref_used, &g, &ref_err_id);
        assert_int_equal(r, ref_r);
        assert_int_equal(used, ref_used);
        if (r == 1) {
            assert_same_string(f->from, g->from);
            assert_same_string(f->to, g->to);
            assert_same_string(f->type, g->type);
            assert_int_equal(f->id, g->id);
            assert_int_equal(f->nargs, g->nargs);
            for (i = 0; i < f->nargs; i++)
                assert_same_string(f->args[i], g->args[i]);
            diff_seen.frames++;
        } else if (r < 0) {
            assert_int_equal(err_id, ref_err_id);
            assert_true(r > -16);
            diff_seen.errors[-r]++;
        }
        off += used;
    }
}

static void differential_run(const uint8_t *data, size_t len, size_t max_frame, unsigned max_args,
                             int chunking)
{
    static struct ref_parser ref;
    struct iotp_parser p;

    assert_int_equal(iotp_parser_init(&p, pbuf, sizeof(pbuf), max_frame, max_args), 0);
    ref.max_frame = max_frame ? max_frame : IOTP_MAX_FRAME;
    ref.max_args = max_args ? max_args : IOTP_MAX_ARGS;
    ref.skipping = 0;
    ref_start_frame(&ref);
    differential_feed(&p, &ref, data, len, chunking);
}

/* Random streams, random limits, random splits: the parser with its fast path gives the same
 * results, consumed counts and frames as the byte-at-a-time reference, call for call. */
static void test_parser_matches_reference(void **state)
{
    static const size_t frame_limits[] = {0, 8, 9, 15, 16, 17, 40, 64, 70, 100, 140, 333, 1000};
    static uint8_t data[6000];
    int round, e;

    (void)state;
    rng_state = 0x9E3779B9u;
    memset(&diff_seen, 0, sizeof(diff_seen));
    for (round = 0; round < 3000; round++) {
        size_t len = random_stream(data, 1 + rng() % (round % 10 ? 600 : sizeof(data)));
        size_t max_frame =
            rng() % 2 ? 0 : frame_limits[rng() % (sizeof(frame_limits) / sizeof(frame_limits[0]))];
        unsigned max_args = rng() % 2 ? 0 : rng() % 4 ? rng() % 3 + 1 : rng() % IOTP_MAX_ARGS + 1;
        int chunking = (int)(rng() % 3);

        differential_run(data, len, max_frame, max_args, chunking);
    }
    /* The input is not all noise: it makes frames, and every frame error. */
    assert_true(diff_seen.frames > 1000);
    for (e = -IOTP_EEMPTY_FIELD; e <= -IOTP_ETOO_FEW_FIELDS; e++)
        assert_true(diff_seen.errors[e] > 100);
}

/* Every byte value at every position of an ordinary run, in each kind of field, fed whole (and
 * one value in eight in random pieces), and runs that end exactly at, before and after the field
 * and frame limits. */
static void test_parser_fast_path_edges(void **state)
{
    enum { W = sizeof(size_t) };
    static uint8_t frame[IOTP_MAX_FRAME + 64];
    static const char *const heads[] = {"",
                                        "a" US,
                                        "a" US "b" US,
                                        "a" US "b" US "T" US,
                                        "a" US "b" US "T" US "1" US,
                                        "a" US "b" US "T" US "1" US "x" US};
    /* Runs shorter than a word, of about one word and of about two. */
    static const size_t runs[] = {1, 2, 3, W - 1, W, W + 1, 2 * W - 1, 2 * W, 2 * W + 1};
    size_t h, r, pos, run, head_len, len, limit;
    unsigned b;

    (void)state;
    for (h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        head_len = strlen(heads[h]);
        for (r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
            run = runs[r];
            for (pos = 0; pos < run; pos++) {
                for (b = 0; b < 256; b++) {
                    memcpy(frame, heads[h], head_len);
                    memset(frame + head_len, h == 3 ? '7' : 0xCE, run);
                    frame[head_len + pos] = (uint8_t)b;
                    len = head_len + run;
                    memcpy(frame + len, US "q" US "r" US "S" US "2" EOT, 10);
                    len += 10;
                    differential_run(frame, len, 0, 0, 0);
                    if (b % 8 == pos % 8)
                        differential_run(frame, len, 0, 0, 2);
                }
            }
        }
    }
    /* Long runs around the field limits (FROM, TO, TYPE) and the frame limit (an ARG). */
    for (h = 0; h < 5; h++) {
        size_t field_max = h == 2 ? IOTP_MAX_TYPE_LEN : IOTP_MAX_ADDRESS_LEN;
        head_len = strlen(heads[h]);
        for (run = field_max - 2 * W; run <= field_max + 2 * W; run++) {
            memcpy(frame, heads[h], head_len);
            memset(frame + head_len, h == 3 ? '1' : 'z', run);
            len = head_len + run;
            memcpy(frame + len, US "x" US "y" US "Z" US "3" US "w" EOT, 12);
            len += 12;
            for (limit = 0; limit < 5; limit++) {
                size_t max_frame = limit == 0 ? 0 : len - 2 + limit;
                if (max_frame > IOTP_MAX_FRAME || (max_frame && max_frame < 8))
                    continue;
                differential_run(frame, len, max_frame, 0, 0);
                differential_run(frame, len, max_frame, 0, 1);
                differential_run(frame, len, max_frame, 0, 2);
            }
        }
    }
    for (run = IOTP_MAX_FRAME - 16 - 2 * W; run <= IOTP_MAX_FRAME - 8 + 2 * W; run++) {
        memcpy(frame, "a" US "b" US "T" US "1" US, 8);
        memset(frame + 8, 0xAA, run);
        frame[8 + run] = IOTP_EOT;
        memcpy(frame + 9 + run, "c" US "d" US "E" US "4" EOT, 8);
        differential_run(frame, 17 + run, 0, 0, 0);
        differential_run(frame, 17 + run, 0, 0, 2);
        for (limit = run + 7; limit <= run + 10 && limit <= sizeof(pbuf); limit++)
            differential_run(frame, 17 + run, limit, 0, limit % 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_every_boundary),
        cmocka_unit_test(test_split_with_errors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_field_lengths),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_too_large_reported_early),
        cmocka_unit_test(test_too_many_args),
        cmocka_unit_test(test_custom_limits),
        cmocka_unit_test(test_resync),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_args_helpers),
        cmocka_unit_test(test_format_fixed),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_scan_exhaustive),
        cmocka_unit_test(test_writer_control_every_position),
        cmocka_unit_test(test_parser_matches_reference),
        cmocka_unit_test(test_parser_fast_path_edges),
    };
    return cmocka_run_group_tests_name("firmware_frame", tests, NULL, NULL);
}
