/* Unit tests of the WebSocket opening handshake: RFC 6455's example accept, a valid upgrade,
 * each refusal (400, 426, 403) and the Origin rules (own origin by Host, or an allowed list). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web/ws_handshake.h"

#include <stdio.h>
#include <string.h>

static int check(const struct ws_handshake *hs, const char *text, char *accept)
{
    struct http_parser p = {0};
    struct http_request req;
    int rc = http_parse_request(&p, (const uint8_t *)text, strlen(text), &req);
    assert_true(rc > 0);
    return ws_handshake_check(hs, &req, accept);
}

#define UPGRADE(extra)                                                                             \
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"                           \
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" extra     \
    "\r\n"

static void test_rfc_example(void **state)
{
    char accept[WS_ACCEPT_LEN + 1];
    struct http_slice key = {"dGhlIHNhbXBsZSBub25jZQ==", 24};
    (void)state;
    ws_accept_for_key(&key, accept);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 1.3 */
}

static void test_own_origin(void **state)
{
    struct ws_handshake hs = {.scheme = "http"};
    char accept[WS_ACCEPT_LEN + 1] = "";
    (void)state;
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:8080\r\n"),
              accept),
        101);
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: HTTP://127.0.0.1:8080\r\n"),
              accept),
        101);
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n"), accept),
        403);
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: https://127.0.0.1:8080\r\n"),
              accept),
        403);
    assert_int_equal(check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\n"), accept), 403); /* none */
}

static void test_allowed_list(void **state)
{
    struct ws_handshake hs = {
        .allowed_origins = "https://console.example.com, http://localhost:3000", .scheme = "http"};
    char accept[WS_ACCEPT_LEN + 1];
    (void)state;
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:3000\r\n"),
              accept),
        101);
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: https://console.example.com\r\n"),
              accept),
        101);
    /* The list replaces the own origin. */
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:8080\r\n"),
              accept),
        403);
    assert_int_equal(
        check(&hs, UPGRADE("Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:30000\r\n"),
              accept),
        403);
}

static void test_refusals(void **state)
{
    struct ws_handshake hs = {.scheme = "http"};
    char accept[WS_ACCEPT_LEN + 1];
    (void)state;
    assert_int_equal(check(&hs,
                           UPGRADE("Sec-WebSocket-Version: 8\r\nOrigin: http://127.0.0.1:8080\r\n"),
                           accept),
                     426);
    assert_int_equal(check(&hs, UPGRADE("Origin: http://127.0.0.1:8080\r\n"), accept), 426);
    /* Not an upgrade, a bad key, HTTP/1.0. */
    assert_int_equal(check(&hs, "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", accept), 400);
    assert_int_equal(
        check(&hs,
              "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: "
              "Upgrade\r\nSec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 13\r\n\r\n",
              accept),
        400);
    assert_int_equal(check(&hs,
                           "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
                           "13\r\n\r\n",
                           accept),
                     400);
    assert_int_equal(check(&hs,
                           "GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: "
                           "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\nOrigin: http://a\r\n\r\n",
                           accept),
                     400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_own_origin),
        cmocka_unit_test(test_allowed_list),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
