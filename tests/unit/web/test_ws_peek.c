/* Unit tests of ws_peek_text: the first text message of a WebSocket read from raw client
 * bytes (masked, 7-, 16- and 64-bit lengths), at every split point, and what it refuses
 * (control frames, fragments, unmasked frames, reserved bits, too long, empty). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web/ws_peek.h"

#include <string.h>

/* A client frame of payload p[0, n) into out: opcode byte b0, masked with key when mask. */
static size_t client_frame(uint8_t *out, uint8_t b0, const char *p, size_t n, int mask)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t at = 0;
    out[at++] = b0;
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        out[at++] = (uint8_t)(m | n);
    } else if (n < 65536) {
        out[at++] = m | 126;
        out[at++] = (uint8_t)(n >> 8);
        out[at++] = (uint8_t)n;
    } else {
        out[at++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[at++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    if (mask) {
        memcpy(out + at, key, 4);
        at += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[at + i] = (uint8_t)(p[i] ^ (mask ? key[i % 4] : 0));
    return at + n;
}

static void test_whole_and_every_split(void **state)
{
    (void)state;
    const char *login = "{\"type\":\"LOGIN\",\"id\":1,\"user\":\"alice@acme\",\"password\":\"pw\"}";
    uint8_t wire[256];
    char out[256];
    size_t n = client_frame(wire, 0x81, login, strlen(login), 1);
    /* A second frame behind the first is left alone. */
    size_t total = n + client_frame(wire + n, 0x81, "x", 1, 1);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(ws_peek_text(wire, cut, out, sizeof(out)), WS_PEEK_MORE);
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), (int)strlen(login));
    assert_memory_equal(out, login, strlen(login));
    assert_int_equal(ws_peek_text(wire, total, out, sizeof(out)), (int)strlen(login));
}

static void test_extended_lengths(void **state)
{
    (void)state;
    static char text[70000];
    static uint8_t wire[70016];
    static char out[70000];
    memset(text, 'a', sizeof(text));
    size_t n = client_frame(wire, 0x81, text, 300, 1); /* 16-bit length */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), 300);
    assert_int_equal(ws_peek_text(wire, n, out, 299), WS_PEEK_NO); /* longer than cap */
    n = client_frame(wire, 0x81, text, sizeof(text), 1);           /* 64-bit length */
    assert_int_equal(ws_peek_text(wire, 9, out, sizeof(out)), WS_PEEK_MORE);
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), (int)sizeof(text));
    assert_memory_equal(out, text, sizeof(text));
}

static void test_refused(void **state)
{
    (void)state;
    uint8_t wire[64];
    char out[64];
    size_t n = client_frame(wire, 0x89, "hi", 2, 1); /* a ping first */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), WS_PEEK_NO);
    n = client_frame(wire, 0x01, "hi", 2, 1); /* a first fragment */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), WS_PEEK_NO);
    n = client_frame(wire, 0x82, "hi", 2, 1); /* binary */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), WS_PEEK_NO);
    n = client_frame(wire, 0x81, "hi", 2, 0); /* not masked */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), WS_PEEK_NO);
    n = client_frame(wire, 0xc1, "hi", 2, 1); /* RSV1 */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), WS_PEEK_NO);
    n = client_frame(wire, 0x81, "", 0, 1); /* empty */
    assert_int_equal(ws_peek_text(wire, n, out, sizeof(out)), WS_PEEK_NO);
    /* A 64-bit length past anything real. */
    const uint8_t huge[] = {0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(ws_peek_text(huge, sizeof(huge), out, sizeof(out)), WS_PEEK_NO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_and_every_split),
        cmocka_unit_test(test_extended_lengths),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
