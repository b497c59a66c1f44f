/*
 * test_peer_addr.c - remote addresses kept binary print as the text conn.c used to store, and
 * that text parses back (the cluster carries it between nodes).
 */
#include "base/peer_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void check_round_trip(const char *text, bool loopback)
{
    struct peer_addr a, b;
    char out[PEER_ADDR_TEXT];
    assert_true(peer_addr_parse(&a, text));
    assert_string_equal(peer_addr_format(&a, out), text);
    assert_int_equal(peer_addr_is_loopback(&a), loopback);
    assert_true(peer_addr_parse(&b, out));
    assert_memory_equal(&a, &b, sizeof(a));
}

static void test_round_trips(void **state)
{
    (void)state;
    check_round_trip("203.0.113.7:51234", false);
    check_round_trip("127.0.0.2:1", true);
    check_round_trip("[2001:db8::1]:65535", false);
    check_round_trip("[::1]:7800", true);
    /* The longest IPv6 text glibc prints: 39 characters, bracketed, with a 5-digit port. */
    check_round_trip("[2001:db8:1234:5678:9abc:def0:1234:5678]:65535", false);
    check_round_trip("", false);
    check_round_trip("unknown", false);
}

static void test_from_sockaddr(void **state)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(4242)};
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    struct sockaddr unknown = {.sa_family = AF_UNIX};
    struct peer_addr p;
    char out[PEER_ADDR_TEXT];
    (void)state;
    /* A dual-stack listener's IPv4 peer is shown and judged as IPv4. */
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
    peer_addr_from_sockaddr(&p, (struct sockaddr *)&a6);
    assert_string_equal(peer_addr_format(&p, out), "127.0.0.1:4242");
    assert_true(peer_addr_is_loopback(&p));
    inet_pton(AF_INET, "198.51.100.9", &a4.sin_addr);
    peer_addr_from_sockaddr(&p, (struct sockaddr *)&a4);
    assert_string_equal(peer_addr_format(&p, out), "198.51.100.9:80");
    assert_false(peer_addr_is_loopback(&p));
    peer_addr_from_sockaddr(&p, &unknown);
    assert_string_equal(peer_addr_format(&p, out), "unknown");
}

static void test_bad_text(void **state)
{
    static const char *const bad[] = {
        "1.2.3.4",        /* no port */
        "1.2.3.4:",       /* empty port */
        "1.2.3.4:65536",  /* port too large */
        "1.2.3.4:12x",    /* not a number */
        "::1:80",         /* IPv6 without brackets */
        "[1.2.3.4]:80",   /* IPv4 in brackets */
        "host.example:1", /* a name, not an address */
        ":80",
    };
    struct peer_addr p;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(peer_addr_parse(&p, bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_from_sockaddr),
        cmocka_unit_test(test_bad_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
