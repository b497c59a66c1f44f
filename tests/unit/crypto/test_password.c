/*
 * test_password.c - Argon2id password hashes: hash then verify, wrong password denied, length
 * limits, salts differ, and malformed or foreign hashes denied rather than crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crypto/password.h"
#include "iot_error.h"

#include <string.h>

static void test_hash_and_verify(void **state)
{
    char hash[PASSWORD_HASH_MAX], other[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("correct horse battery", hash, sizeof hash), 0);
    assert_true(strncmp(hash, "$argon2id$v=19$", 15) == 0);
    assert_int_equal(password_verify(hash, "correct horse battery"), 0);
    assert_int_equal(password_verify(hash, "correct horse batterY"), IOT_EDENIED);
    assert_int_equal(password_verify(hash, ""), IOT_EDENIED);
    /* Random salt: the same password never hashes to the same string. */
    assert_int_equal(password_hash("correct horse battery", other, sizeof other), 0);
    assert_string_not_equal(hash, other);
    assert_int_equal(password_verify(other, "correct horse battery"), 0);
}

static void test_length_limits(void **state)
{
    char hash[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("short", hash, sizeof hash), IOT_EINVAL);
    assert_int_equal(password_hash("1234567", hash, sizeof hash), IOT_EINVAL);
    assert_int_equal(password_hash("12345678", hash, sizeof hash), 0);
    char longpw[1100];
    memset(longpw, 'x', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    assert_int_equal(password_hash(longpw, hash, sizeof hash), IOT_EINVAL);
    longpw[1024] = '\0';
    assert_int_equal(password_hash(longpw, hash, sizeof hash), 0);
    assert_int_equal(password_verify(hash, longpw), 0);
    /* An output buffer too small for the encoded hash is refused, not truncated. */
    char tiny[40];
    assert_int_equal(password_hash("12345678", tiny, sizeof tiny), IOT_EINVAL);
}

static void test_malformed_hash_denied(void **state)
{
    char hash[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("password123", hash, sizeof hash), 0);
    const char *bad[] = {
        "",
        "plaintext",
        "$argon2id$",
        "$argon2id$v=19$m=32768,t=3,p=1$",
        "$argon2i$v=19$m=32768,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=32768,t=3,p=1$!!!$???",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(password_verify(bad[i], "password123"), IOT_EDENIED);
    assert_int_equal(password_verify(NULL, "password123"), IOT_EDENIED);
    /* Truncating a valid hash or flipping a character of its tag denies. */
    char cut[PASSWORD_HASH_MAX];
    strcpy(cut, hash);
    cut[strlen(cut) - 3] = '\0';
    assert_int_equal(password_verify(cut, "password123"), IOT_EDENIED);
    strcpy(cut, hash);
    size_t last = strlen(cut) - 2;
    cut[last] = cut[last] == 'A' ? 'B' : 'A';
    assert_int_equal(password_verify(cut, "password123"), IOT_EDENIED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_malformed_hash_denied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
