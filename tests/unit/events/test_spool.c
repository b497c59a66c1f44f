/*
 * test_spool.c - the event spool file: append and replay in order, a replayed offset that
 * survives a reopen, truncation once drained, a torn or corrupt tail cut off at open, and
 * records of the format before the device's incarnation (sql/011) still read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "events/spool.h"
#include "iot_error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/iotd-spool-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/events.spool", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char side[160];
    snprintf(side, sizeof side, "%s.offset", f->path);
    unlink(f->path);
    unlink(side);
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct event *make(uint32_t seq, const char *device)
{
    char v[32];
    snprintf(v, sizeof v, "v=%u", seq);
    const char *fields[] = {"unit=C", v, "note=a;b=c"};
    struct event *ev = event_new(seq % 2 ? EVENT_KIND_ALARM : EVENT_KIND_EVENT, "acme", device,
                                 "thermo", "temp", seq, 1700000000000LL + seq, 3, fields);
    assert_non_null(ev);
    ev->incarnation = (1ULL << 40) + seq; /* all 64 bits round-trip */
    return ev;
}

static void append_range(spool_t *s, uint32_t from, uint32_t to)
{
    struct event *evs[64] = {0};
    size_t n = 0;
    assert_true(to >= from && to - from < 64);
    for (uint32_t i = from; i <= to; i++)
        evs[n++] = make(i, "dev1");
    assert_int_equal(spool_append(s, evs, n), IOT_OK);
    for (size_t i = 0; i < n; i++)
        event_unref(evs[i]);
}

static void test_roundtrip_and_drain(void **state)
{
    struct fixture *f = *state;
    char err[256];
    spool_t *s;
    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    assert_int_equal(spool_size(s), 0);
    append_range(s, 1, 3);
    struct event *probe = make(1, "dev1");
    assert_int_equal(spool_size(s), 3 * spool_record_size(probe)); /* same sizes */
    event_unref(probe);
    struct event **evs;
    size_t n, records;
    uint64_t end;
    assert_int_equal(spool_read(s, 10, &evs, &n, &end, &records), IOT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(records, 3);
    assert_int_equal(end, spool_size(s));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(evs[i]->seq, i + 1);
        assert_string_equal(evs[i]->tenant, "acme");
        assert_string_equal(evs[i]->device, "dev1");
        assert_string_equal(evs[i]->type, "thermo");
        assert_string_equal(evs[i]->name, "temp");
        assert_int_equal(evs[i]->ts_ms, 1700000000000LL + i + 1);
        assert_int_equal(evs[i]->incarnation, (1ULL << 40) + i + 1);
        assert_int_equal(evs[i]->kind, (i + 1) % 2 ? EVENT_KIND_ALARM : EVENT_KIND_EVENT);
        assert_int_equal(evs[i]->nfields, 3);
        assert_string_equal(event_field(evs[i], "note"), "a;b=c");
        event_unref(evs[i]);
    }
    free(evs);
    assert_int_equal(spool_consume(s, end, records), IOT_OK);
    assert_int_equal(spool_size(s), 0);
    assert_int_equal(spool_pending(s), 0);
    spool_close(s);
}

static unsigned char *put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

/* A spool written by a version before sql/011 ("IOTE" records without the incarnation) is
 * replayed after the upgrade: its events come back with incarnation 0 (unknown). */
static void test_reads_records_before_incarnation(void **state)
{
    struct fixture *f = *state;
    unsigned char rec[256], *p = rec + 12;
    *p++ = 0; /* kind: event */
    p = put_le(p, 7, 4);
    p = put_le(p, 1700000000007ULL, 8);
    const char *strs[] = {"acme", "dev1", "thermo", "temp"};
    for (int i = 0; i < 4; i++) {
        *p++ = (unsigned char)strlen(strs[i]);
        memcpy(p, strs[i], strlen(strs[i]));
        p += strlen(strs[i]);
    }
    p = put_le(p, 1, 4); /* one field, 8 bytes with its NUL */
    p = put_le(p, 8, 4);
    memcpy(p, "value=7", 8);
    p += 8;
    size_t plen = (size_t)(p - rec - 12);
    put_le(rec, 0x45544f49u, 4); /* "IOTE" */
    put_le(rec + 4, plen, 4);
    put_le(rec + 8, spool_crc32(0, rec + 12, plen), 4);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, 12 + plen), (ssize_t)(12 + plen));
    close(fd);

    char err[256];
    spool_t *s;
    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    assert_int_equal(spool_pending(s), 1);
    append_range(s, 8, 8); /* new records follow in the new format */
    struct event **evs;
    size_t n, records;
    uint64_t end;
    assert_int_equal(spool_read(s, 10, &evs, &n, &end, &records), IOT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(evs[0]->seq, 7);
    assert_int_equal(evs[0]->incarnation, 0);
    assert_string_equal(event_field(evs[0], "value"), "7");
    assert_int_equal(evs[1]->seq, 8);
    assert_int_equal(evs[1]->incarnation, (1ULL << 40) + 8);
    for (size_t i = 0; i < n; i++)
        event_unref(evs[i]);
    free(evs);
    spool_close(s);
}

static void test_offset_survives_reopen(void **state)
{
    struct fixture *f = *state;
    char err[256];
    spool_t *s;
    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    append_range(s, 1, 5);
    struct event **evs;
    size_t n, records;
    uint64_t end;
    assert_int_equal(spool_read(s, 2, &evs, &n, &end, &records), IOT_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        event_unref(evs[i]);
    free(evs);
    assert_int_equal(spool_consume(s, end, records), IOT_OK);
    assert_int_equal(spool_pending(s), 3);
    spool_close(s);

    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    assert_int_equal(spool_offset(s), end);
    assert_int_equal(spool_pending(s), 3);
    assert_int_equal(spool_read(s, 10, &evs, &n, &end, &records), IOT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(evs[0]->seq, 3);
    assert_int_equal(evs[2]->seq, 5);
    for (size_t i = 0; i < n; i++)
        event_unref(evs[i]);
    free(evs);
    spool_close(s);
}

static void test_torn_tail_cut(void **state)
{
    struct fixture *f = *state;
    char err[256];
    spool_t *s;
    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    append_range(s, 1, 3);
    uint64_t good = spool_size(s);
    spool_close(s);
    /* SIGKILL in the middle of an append: half a record at the end. */
    struct event *ev = make(4, "dev1");
    size_t rec = spool_record_size(ev);
    event_unref(ev);
    int fd = open(f->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    unsigned char junk[512] = {0x49, 0x4f, 0x54, 0x45, (unsigned char)(rec - 12), 0, 0, 0};
    assert_int_equal(write(fd, junk, rec / 2), (ssize_t)(rec / 2));
    close(fd);
    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    assert_int_equal(spool_size(s), good);
    assert_int_equal(spool_pending(s), 3);
    /* Appends continue after the cut. */
    append_range(s, 4, 4);
    spool_close(s);

    /* A flipped byte in record 2: records 2.. are cut (never trust what follows). */
    fd = open(f->path, O_RDWR);
    unsigned char b;
    off_t at = (off_t)(good / 3 + 20);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    assert_int_equal(spool_open(&s, f->path, err, sizeof err), IOT_OK);
    assert_int_equal(spool_pending(s), 1);
    assert_int_equal(spool_size(s), good / 3);
    spool_close(s);
}

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(spool_crc32(0, "123456789", 9), 0xcbf43926u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_records_before_incarnation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
        cmocka_unit_test(test_crc32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
