/*
 * test_iot_text.c - the UTF-8 decoder against RFC 3629's edge cases (overlong forms, surrogates,
 * beyond U+10FFFF, truncated sequences), escaping for terminals and logs (C0, DEL, C1, bad
 * bytes; cutting never splits an escape) and repairing for JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iot_text.h"

#include <stdlib.h>
#include <string.h>

static size_t decode(const char *s, size_t len, uint32_t *cp)
{
    *cp = 0xffffffffu;
    return iot_text_utf8_decode(s, len, cp);
}

static void test_decode_valid(void **state)
{
    uint32_t cp;
    assert_int_equal(decode("A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(decode("\xc2\x80", 2, &cp), 2); /* the first C1 control */
    assert_int_equal(cp, 0x80);
    assert_int_equal(decode("\xdf\xbf", 2, &cp), 2);
    assert_int_equal(cp, 0x7ff);
    assert_int_equal(decode("\xe0\xa0\x80", 3, &cp), 3); /* smallest 3-byte */
    assert_int_equal(cp, 0x800);
    assert_int_equal(decode("\xed\x9f\xbf", 3, &cp), 3); /* just below the surrogates */
    assert_int_equal(cp, 0xd7ff);
    assert_int_equal(decode("\xee\x80\x80", 3, &cp), 3); /* just above them */
    assert_int_equal(cp, 0xe000);
    assert_int_equal(decode("\xef\xbf\xbd", 3, &cp), 3);
    assert_int_equal(cp, 0xfffd);
    assert_int_equal(decode("\xf0\x90\x80\x80", 4, &cp), 4); /* smallest 4-byte */
    assert_int_equal(cp, 0x10000);
    assert_int_equal(decode("\xf4\x8f\xbf\xbf", 4, &cp), 4); /* U+10FFFF */
    assert_int_equal(cp, 0x10ffff);
    assert_true(iot_text_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_true(iot_text_utf8_valid("", 0));
}

static void test_decode_invalid(void **state)
{
    uint32_t cp;
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\x80", 1},                 /* lone continuation byte */
        {"\xbf", 1},                 /* lone continuation byte */
        {"\xc0\xaf", 2},             /* overlong '/' (2 bytes) */
        {"\xc1\xbf", 2},             /* overlong 0x7f */
        {"\xe0\x80\xaf", 3},         /* overlong '/' (3 bytes) */
        {"\xe0\x9f\xbf", 3},         /* overlong 0x7ff */
        {"\xf0\x80\x80\xaf", 4},     /* overlong '/' (4 bytes) */
        {"\xf0\x8f\xbf\xbf", 4},     /* overlong 0xffff */
        {"\xed\xa0\x80", 3},         /* U+D800, a high surrogate */
        {"\xed\xbf\xbf", 3},         /* U+DFFF, a low surrogate */
        {"\xf4\x90\x80\x80", 4},     /* U+110000 */
        {"\xf5\x80\x80\x80", 4},     /* beyond any code point */
        {"\xff", 1},                 /* never in UTF-8 */
        {"\xfe", 1},                 /* never in UTF-8 */
        {"\xc3", 1},                 /* truncated 2-byte */
        {"\xe2\x82", 2},             /* truncated 3-byte */
        {"\xf0\x9f\x98", 3},         /* truncated 4-byte */
        {"\xc3\x41", 2},             /* lead byte followed by ASCII */
        {"\xe2\x28\xa1", 3},         /* bad second byte */
        {"\xf0\x9f\x98\x41", 4},     /* bad fourth byte */
        {"\xf8\x88\x80\x80\x80", 5}, /* old 5-byte form */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(decode(bad[i].bytes, bad[i].len, &cp), 0);
        assert_false(iot_text_utf8_valid(bad[i].bytes, bad[i].len));
    }
    assert_int_equal(decode("", 0, &cp), 0);
    /* A valid sequence cut by the length given is truncated, not read past. */
    assert_int_equal(decode("\xe2\x82\xac", 2, &cp), 0);
}

/* Escape the first len bytes of s into a buffer large enough and compare. */
static void expect_escape(const char *s, size_t len, const char *want)
{
    char buf[256];
    size_t n = iot_text_escape(buf, sizeof(buf), s, len);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    assert_true(n < IOT_TEXT_ESCAPED_MAX(len));
}

static void test_escape(void **state)
{
    expect_escape("device-1", 8, "device-1");
    expect_escape("h\xc3\xa9 \xe2\x82\xac\\n", 9, "h\xc3\xa9 \xe2\x82\xac\\n"); /* kept */
    expect_escape("a\nb\tc\rd", 7, "a\\x0ab\\x09c\\x0dd");
    expect_escape("\x1b[2J", 4, "\\x1b[2J");
    expect_escape("x\x7fy", 3, "x\\x7fy");
    expect_escape("a\0b", 3, "a\\x00b");
    /* C1 CSI (U+009B) encoded in UTF-8, the attack of issue 17, and NEL (U+0085). */
    expect_escape("\xc2\x9b"
                  "31m",
                  5, "\\u009b31m");
    expect_escape("\xc2\x85", 2, "\\u0085");
    expect_escape("\xc2\xa0", 2, "\xc2\xa0"); /* U+00A0 is not a control */
    /* Raw C1 bytes are not UTF-8: escaped byte by byte. */
    expect_escape("\x9b"
                  "31m",
                  4, "\\x9b31m");
    /* Overlong, surrogate, truncated: one byte escaped, decoding resumes after it. */
    expect_escape("\xc0\xaf", 2, "\\xc0\\xaf");
    expect_escape("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
    expect_escape("ab\xe2\x82", 4, "ab\\xe2\\x82");
    expect_escape("\xc3"
                  "A",
                  2, "\\xc3A");
    expect_escape("\xff\xfe\xfd\xfc", 4, "\\xff\\xfe\\xfd\\xfc"); /* the worst case, 4x */
}

static void test_escape_cut(void **state)
{
    char buf[8];
    /* "abc" and one escape fill 7 bytes and the NUL the 8th; the second escape is left out. */
    size_t n = iot_text_escape(buf, sizeof(buf), "abc\x1b\x1b", 5);
    assert_int_equal(n, 11);
    assert_string_equal(buf, "abc\\x1b");
    n = iot_text_escape(buf, 5, "ab\x1b", 3);
    assert_int_equal(n, 6);
    assert_string_equal(buf, "ab"); /* never half an escape */
    n = iot_text_escape(buf, 4, "a\xe2\x82\xac", 4);
    assert_string_equal(buf, "a"); /* never half a character */
    n = iot_text_escape(buf, 1, "abc", 3);
    assert_int_equal(n, 3);
    assert_string_equal(buf, "");

    char *copy = iot_text_escape_dup("\xc2\x9b\n");
    assert_string_equal(copy, "\\u009b\\x0a");
    free(copy);
    copy = iot_text_escape_dup(NULL);
    assert_string_equal(copy, "");
    free(copy);
}

static void test_repair(void **state)
{
    char buf[64];
    size_t n = iot_text_utf8_repair(buf, sizeof(buf), "ok \xc3\xa9", 5);
    assert_string_equal(buf, "ok \xc3\xa9");
    assert_int_equal(n, 5);
    n = iot_text_utf8_repair(buf, sizeof(buf),
                             "a\xff"
                             "b\xc0\xaf\xed\xa0\x80\xe2\x82",
                             10);
    assert_string_equal(buf, "a\xef\xbf\xbd"
                             "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(n, strlen(buf));
    assert_true(iot_text_utf8_valid(buf, n));
    /* Controls are left for the JSON printer, which escapes them. */
    n = iot_text_utf8_repair(buf, sizeof(buf), "\x1b\xc2\x9b", 3);
    assert_string_equal(buf, "\x1b\xc2\x9b");
    char *copy = iot_text_utf8_repair_dup("\x80");
    assert_string_equal(copy, "\xef\xbf\xbd");
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_valid), cmocka_unit_test(test_decode_invalid),
        cmocka_unit_test(test_escape),       cmocka_unit_test(test_escape_cut),
        cmocka_unit_test(test_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
