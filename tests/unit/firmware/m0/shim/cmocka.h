/*
 * cmocka.h - the part of cmocka's API the library's unit tests use, for running them on an
 * emulated Cortex-M0 (qemu -M microbit) where the real cmocka does not exist. A failed check
 * longjmps out of the test, as cmocka's does; results go out through semihosting (m0_runner.c).
 * Only for tests/unit/firmware built by m0_tests.sh.
 */
#ifndef M0_CMOCKA_SHIM_H
#define M0_CMOCKA_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct CMUnitTest {
    const char *name;
    void (*fn)(void **state);
};

#define cmocka_unit_test(f)                                                                        \
    {                                                                                              \
#f, f                                                                                      \
    }
#define cmocka_run_group_tests(tests, setup, teardown)                                             \
    m0_run_tests(tests, sizeof(tests) / sizeof(tests[0]))
#define cmocka_run_group_tests_name(name, tests, setup, teardown)                                  \
    m0_run_tests(tests, sizeof(tests) / sizeof(tests[0]))

int m0_run_tests(const struct CMUnitTest *tests, size_t count);
void m0_fail(const char *file, int line, const char *what);
void m0_check_int(int equal, uintmax_t a, uintmax_t b, const char *file, int line);
void m0_check_str(int equal, const char *a, const char *b, const char *file, int line);

#define assert_true(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            m0_fail(__FILE__, __LINE__, #c);                                                       \
    } while (0)
#define assert_false(c)        assert_true(!(c))
#define assert_non_null(p)     assert_true((p) != NULL)
#define assert_null(p)         assert_true((p) == NULL)
#define assert_int_equal(a, b) m0_check_int(1, (uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__)
#define assert_int_not_equal(a, b)                                                                 \
    m0_check_int(0, (uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__)
#define assert_string_equal(a, b)     m0_check_str(1, (a), (b), __FILE__, __LINE__)
#define assert_string_not_equal(a, b) m0_check_str(0, (a), (b), __FILE__, __LINE__)
#define assert_memory_equal(a, b, n)  assert_true(memcmp((a), (b), (n)) == 0)
#define fail_msg(...)                 m0_fail(__FILE__, __LINE__, "fail_msg")

#endif
