/*
 * test_state.c - iotdev's state dir (iotdev_state.h): the sequence mark and the event journal
 * survive a reopen, in order; a damaged mark is an error, not a silent restart at 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "iotdev_state.h"

static char sdir[300];
static struct iotdev_state st; /* large: not on the stack */

static int setup(void **state)
{
    (void)state;
    assert_int_equal(tmpdir_make(), 0);
    snprintf(sdir, sizeof(sdir), "%s/state", tmp_dir);
    return 0;
}

static void mark_and_journal_survive(void **state)
{
    struct stat sb;
    uint32_t mark = 99;
    char err[256];

    (void)state;
    assert_int_equal(iotdev_state_open(&st, sdir, &mark, err, sizeof(err)), 0);
    assert_int_equal(mark, 0);
    assert_int_equal(st.n, 0);
    assert_int_equal(stat(sdir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);

    assert_int_equal(iotdev_state_store_mark(&st, 2048), 0);
    assert_int_equal(iotdev_state_add(&st, 1025, "temperature value=1"), 0);
    assert_int_equal(iotdev_state_add(&st, 1026, "temperature value=2"), 0);
    assert_int_equal(iotdev_state_add(&st, 1027, "door open=true"), 0);
    assert_int_equal(iotdev_state_remove(&st, 1026), 1);
    assert_int_equal(iotdev_state_remove(&st, 1026), 0);
    assert_int_equal(iotdev_state_remove(&st, 7), 0);

    assert_int_equal(iotdev_state_open(&st, sdir, &mark, err, sizeof(err)), 0);
    assert_int_equal(mark, 2048);
    assert_int_equal(st.n, 2);
    assert_string_equal(st.entries[0].line, "temperature value=1");
    assert_string_equal(st.entries[1].line, "door open=true");
    assert_int_equal(st.entries[0].seq, 0); /* numbers are given again when queued */

    st.n = 0;
    assert_int_equal(iotdev_state_save(&st), 0);
    assert_int_equal(iotdev_state_open(&st, sdir, &mark, err, sizeof(err)), 0);
    assert_int_equal(st.n, 0);
}

static void full_journal_and_bad_mark(void **state)
{
    char line[IOTDEV_LINE_MAX + 1], path[400], err[256];
    uint32_t mark;
    FILE *f;

    (void)state;
    assert_int_equal(iotdev_state_open(&st, sdir, &mark, err, sizeof(err)), 0);
    for (unsigned i = 0; i < IOTDEV_JOURNAL_MAX; i++) {
        snprintf(line, sizeof(line), "e n=%u", i);
        assert_int_equal(iotdev_state_add(&st, i + 1, line), 0);
    }
    assert_int_equal(iotdev_state_add(&st, 9999, "one more"), -1);
    memset(line, 'x', IOTDEV_LINE_MAX);
    line[IOTDEV_LINE_MAX] = '\0';
    st.n = 0;
    assert_int_equal(iotdev_state_add(&st, 1, line), -1); /* a line too long */
    assert_int_equal(iotdev_state_save(&st), 0);

    snprintf(path, sizeof(path), "%s/seq", sdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("12x\n", f);
    fclose(f);
    assert_int_equal(iotdev_state_open(&st, sdir, &mark, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a sequence number"));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("4294967296\n", f);
    fclose(f);
    assert_int_equal(iotdev_state_open(&st, sdir, &mark, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mark_and_journal_survive),
        cmocka_unit_test(full_journal_and_bad_mark),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
