/*
 * test_iot_hash.c - FNV-1a against the published test vectors, and chaining: hashing two
 * fields one after the other is the hash of their concatenation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iot_hash.h"

static void test_vectors(void **state)
{
    /* The reference values of FNV-1a for "", "a" and "foobar". */
    assert_int_equal(iot_fnv32_str(IOT_FNV32_SEED, ""), 0x811c9dc5u);
    assert_int_equal(iot_fnv32_str(IOT_FNV32_SEED, "a"), 0xe40c292cu);
    assert_int_equal(iot_fnv32_str(IOT_FNV32_SEED, "foobar"), 0xbf9cf968u);
    assert_true(iot_fnv64_str(IOT_FNV64_SEED, "") == 0xcbf29ce484222325ull);
    assert_true(iot_fnv64_str(IOT_FNV64_SEED, "a") == 0xaf63dc4c8601ec8cull);
    assert_true(iot_fnv64_str(IOT_FNV64_SEED, "foobar") == 0x85944171f73967e8ull);
}

static void test_bytes_match_strings(void **state)
{
    assert_int_equal(iot_fnv32(IOT_FNV32_SEED, "foobar", 6),
                     iot_fnv32_str(IOT_FNV32_SEED, "foobar"));
    assert_true(iot_fnv64(IOT_FNV64_SEED, "foobar", 6) == iot_fnv64_str(IOT_FNV64_SEED, "foobar"));
    /* A NUL is hashed like any byte when the length says so (keys of several names). */
    assert_int_not_equal(iot_fnv32(IOT_FNV32_SEED, "a\0", 2), iot_fnv32(IOT_FNV32_SEED, "a", 1));
}

static void test_chaining(void **state)
{
    assert_int_equal(iot_fnv32_str(iot_fnv32_str(IOT_FNV32_SEED, "foo"), "bar"),
                     iot_fnv32_str(IOT_FNV32_SEED, "foobar"));
    assert_true(iot_fnv64_str(iot_fnv64_str(IOT_FNV64_SEED, "foo"), "bar") ==
                iot_fnv64_str(IOT_FNV64_SEED, "foobar"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_bytes_match_strings),
        cmocka_unit_test(test_chaining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
