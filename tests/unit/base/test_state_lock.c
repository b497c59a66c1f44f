/*
 * test_state_lock.c - one iotd per state_dir: the first lock wins and records its pid, a second
 * one (another open file description, as another process has) is refused with that pid named,
 * and closing the holder's descriptor frees the directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/state_lock.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_second_lock_refused(void **state)
{
    char dir[] = "/tmp/iotd-lock.XXXXXX", sub[64], err[512], want[64], path[128], pid[32] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/state", dir); /* created by the lock */
    int first = -1, second = -1;

    assert_int_equal(state_lock_take(sub, &first, err, sizeof(err)), IOT_OK);
    assert_true(first >= 0);
    snprintf(path, sizeof(path), "%s/iotd.lock", sub);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(pid, sizeof(pid), f));
    fclose(f);
    assert_int_equal(atol(pid), (long)getpid());

    assert_int_equal(state_lock_take(sub, &second, err, sizeof(err)), IOT_EBUSY);
    assert_int_equal(second, -1);
    snprintf(want, sizeof(want), "pid %ld", (long)getpid());
    assert_non_null(strstr(err, want));

    close(first); /* what the kernel does when the holder exits */
    assert_int_equal(state_lock_take(sub, &second, err, sizeof(err)), IOT_OK);
    close(second);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void test_unusable_dir(void **state)
{
    char err[512];
    int fd = -1;
    assert_int_equal(state_lock_take("/proc/no/such/dir", &fd, err, sizeof(err)), IOT_EIO);
    assert_int_equal(fd, -1);
    assert_non_null(strstr(err, "/proc/no/such/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_lock_refused),
        cmocka_unit_test(test_unusable_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
