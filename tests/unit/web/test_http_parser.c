/* Unit tests of the HTTP request head parser: a request in one piece and byte by byte, keep-alive
 * rules of 1.0 and 1.1, pipelined heads, leading empty lines, and every refusal with its status
 * (400, 413, 414, 431, 505). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web/http_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, struct http_request *req)
{
    struct http_parser p = {0};
    return http_parse_request(&p, (const uint8_t *)text, strlen(text), req);
}

static void test_simple_get(void **state)
{
    struct http_request req;
    const char *text = "GET /index.html?x=1 HTTP/1.1\r\nHost: example\r\nAccept:  */*  \r\n\r\n";
    (void)state;
    assert_int_equal(parse(text, &req), (int)strlen(text));
    assert_true(http_slice_equals(&req.method, "GET"));
    assert_int_equal(req.target.len, strlen("/index.html?x=1"));
    assert_memory_equal(req.target.ptr, "/index.html?x=1", req.target.len);
    assert_int_equal(req.version_minor, 1);
    assert_true(req.keep_alive);
    assert_int_equal(req.nheaders, 2);
    const struct http_slice *accept = http_request_header(&req, "ACCEPT");
    assert_non_null(accept);
    assert_int_equal(accept->len, 3); /* whitespace around the value is not part of it */
    assert_memory_equal(accept->ptr, "*/*", 3);
    assert_null(http_request_header(&req, "cookie"));
}

static void test_byte_by_byte(void **state)
{
    const char *text = "HEAD / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n";
    struct http_parser p = {0};
    struct http_request req;
    size_t n = strlen(text);
    (void)state;
    for (size_t i = 1; i < n; i++)
        assert_int_equal(http_parse_request(&p, (const uint8_t *)text, i, &req), HTTP_PARSE_MORE);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)text, n, &req), (int)n);
    assert_true(http_slice_equals(&req.method, "head"));
}

static void test_bare_lf_and_leading_empty_lines(void **state)
{
    struct http_request req;
    const char *text = "\r\n\nGET / HTTP/1.1\nHost: a\n\n";
    (void)state;
    assert_int_equal(parse(text, &req), (int)strlen(text));
    assert_true(http_slice_equals(&req.target, "/"));
}

static void test_keep_alive_rules(void **state)
{
    struct http_request req;
    (void)state;
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req) > 0);
    assert_true(req.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", &req) > 0);
    assert_false(req.keep_alive);
}

static void test_pipelined(void **state)
{
    const char *text = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http_parser p = {0};
    struct http_request req;
    (void)state;
    int first = http_parse_request(&p, (const uint8_t *)text, strlen(text), &req);
    assert_true(first > 0);
    assert_true(http_slice_equals(&req.target, "/a"));
    http_parser_reset(&p);
    int second =
        http_parse_request(&p, (const uint8_t *)text + first, strlen(text) - (size_t)first, &req);
    assert_int_equal(first + second, (int)strlen(text));
    assert_true(http_slice_equals(&req.target, "/b"));
}

static void test_refusals(void **state)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", -400},                                  /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400},            /* two Hosts */
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},                      /* space before colon */
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", -400},            /* obs-fold */
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400},                    /* bare CR */
        {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", -400},            /* control byte */
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400},                      /* two spaces */
        {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400},                      /* trailing space */
        {"GET / FTP/1.1\r\nHost: a\r\n\r\n", -400},                        /* not HTTP */
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505},                       /* version */
        {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505},                       /* version */
        {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400},                       /* method token */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", -413}, /* a body */
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", -413},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
         -400}, /* both: a smuggling attempt */
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -400},
    };
    struct http_request req;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].text, &req);
        if (rc != cases[i].status)
            fail_msg("case %zu: got %d, want %d", i, rc, cases[i].status);
    }
    /* Content-Length: 0 twice, the same, is fine. */
    assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-length: 0\r\n\r\n",
                      &req) > 0);
}

static void test_garbage_refused_early(void **state)
{
    struct http_parser p = {0};
    struct http_request req;
    (void)state;
    /* No need to wait for a whole head to know this is not HTTP. */
    assert_int_equal(http_parse_request(&p, (const uint8_t *)"\x16\x03\x01", 3, &req), -400);
}

static void test_bounds(void **state)
{
    static char text[HTTP_MAX_HEAD * 2];
    struct http_request req;
    (void)state;
    /* A target over the bound: 414, before the rest of the head arrives. */
    memset(text, 0, sizeof(text));
    strcpy(text, "GET /");
    memset(text + 5, 'a', HTTP_MAX_TARGET + 100);
    assert_int_equal(parse(text, &req), -414);
    /* ... and within one complete line. */
    snprintf(text + 5 + HTTP_MAX_TARGET, sizeof(text) - 5 - HTTP_MAX_TARGET,
             " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(parse(text, &req), -414);
    /* A head over HTTP_MAX_HEAD: 431 once that many bytes came without its end. */
    size_t n = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(text + n, 'b', HTTP_MAX_HEAD);
    text[n + HTTP_MAX_HEAD] = '\0';
    assert_int_equal(parse(text, &req), -431);
    /* Too many header lines: 431. */
    n = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "X-%d: 1\r\n", i);
    snprintf(text + n, sizeof(text) - n, "\r\n");
    assert_int_equal(parse(text, &req), -431);
}

static void test_list_tokens(void **state)
{
    struct http_slice v = {"keep-alive ,  Upgrade,close", strlen("keep-alive ,  Upgrade,close")};
    (void)state;
    assert_true(http_list_has_token(&v, "upgrade"));
    assert_true(http_list_has_token(&v, "CLOSE"));
    assert_true(http_list_has_token(&v, "keep-alive"));
    assert_false(http_list_has_token(&v, "keep"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_bare_lf_and_leading_empty_lines),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_garbage_refused_early),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_list_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
