/*
 * test_spool.c - the event spool file: append and replay in order, a replayed offset that
 * survives a reopen, truncation once drained, and a torn or corrupt tail cut off at open.
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
        cmocka_unit_test_setup_teardown(test_offset_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
        cmocka_unit_test(test_crc32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
