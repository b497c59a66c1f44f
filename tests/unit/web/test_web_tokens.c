/* Unit tests of the browsers' session tokens: a ticket is exchanged once for a token, within
 * its 30 s; a token logs its user in until it expires or is revoked; revoking a user (or a
 * tenant) ends all of theirs and nobody else's; a login's ticket and token share a family; the
 * table stays bounded; and the Cookie header is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "iot_error.h"
#include "web/web_tokens.h"

#include <string.h>

static void test_ticket_for_token(void **state)
{
    web_tokens_t *t;
    uint64_t fam;
    char ticket[WEB_TOKEN_LEN + 1], token[WEB_TOKEN_LEN + 1], user[WEB_TOKEN_USER_MAX];
    (void)state;
    assert_int_equal(web_tokens_new(&t, 60, 0), 0);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 1000, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(strlen(ticket), WEB_TOKEN_LEN);
    /* A ticket is not a token. */
    assert_int_equal(web_tokens_lookup(t, ticket, WEB_TOKEN_LEN, 1000, user, NULL), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 2000, token), 0);
    assert_string_not_equal(ticket, token);
    /* Used up. */
    char again[WEB_TOKEN_LEN + 1];
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 2000, again), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_lookup(t, token, WEB_TOKEN_LEN, 3000, user, NULL), 0);
    assert_string_equal(user, "alice@acme");
    /* Expires after ttl_s. */
    assert_int_equal(web_tokens_lookup(t, token, WEB_TOKEN_LEN, 2000 + 60000, user, NULL),
                     IOT_ENOTFOUND);
    assert_int_equal(web_tokens_count(t), 0);
    /* A ticket too late is gone. */
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 1000, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 1000 + WEB_TICKET_TTL_MS, token),
                     IOT_ENOTFOUND);
    /* Wrong lengths and guesses. */
    assert_int_equal(web_tokens_lookup(t, "abc", 3, 0, user, NULL), IOT_ENOTFOUND);
    web_tokens_free(t);
}

static void test_revoke(void **state)
{
    web_tokens_t *t;
    uint64_t fam;
    char ticket[WEB_TOKEN_LEN + 1], a1[WEB_TOKEN_LEN + 1], a2[WEB_TOKEN_LEN + 1],
        b[WEB_TOKEN_LEN + 1], user[WEB_TOKEN_USER_MAX];
    (void)state;
    assert_int_equal(web_tokens_new(&t, 0, 0), 0);
    assert_int_equal(web_tokens_ttl(t), 86400);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, a1), 0);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, a2), 0);
    assert_int_equal(web_tokens_ticket(t, "bob@acme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, b), 0);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, ticket, (fam = 0, &fam)),
                     0); /* pending ticket */
    /* Logout ends one token. */
    assert_int_equal(web_tokens_revoke(t, a1, WEB_TOKEN_LEN, NULL), 0);
    assert_int_equal(web_tokens_revoke(t, a1, WEB_TOKEN_LEN, NULL), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_lookup(t, a1, WEB_TOKEN_LEN, 1, user, NULL), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_lookup(t, a2, WEB_TOKEN_LEN, 1, user, NULL), 0);
    /* user remove / user passwd: every token and ticket of alice, none of bob's. */
    assert_int_equal(web_tokens_revoke_user(t, "alice@acme"), 2);
    assert_int_equal(web_tokens_lookup(t, a2, WEB_TOKEN_LEN, 1, user, NULL), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 1, a1), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_lookup(t, b, WEB_TOKEN_LEN, 1, user, NULL), 0);
    assert_string_equal(user, "bob@acme");
    assert_int_equal(web_tokens_revoke_user(t, "alice@acme"), 0);
    web_tokens_free(t);
}

static void test_bounded(void **state)
{
    web_tokens_t *t;
    uint64_t fam;
    char first[WEB_TOKEN_LEN + 1], ticket[WEB_TOKEN_LEN + 1];
    (void)state;
    assert_int_equal(web_tokens_new(&t, 60, 4), 0);
    assert_int_equal(web_tokens_ticket(t, "u@t", 0, first, (fam = 0, &fam)), 0);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(web_tokens_ticket(t, "u@t", i, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_count(t), 4);
    /* The oldest went first. */
    char token[WEB_TOKEN_LEN + 1];
    assert_int_equal(web_tokens_redeem(t, first, WEB_TOKEN_LEN, 5, token), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 5, token), 0);
    web_tokens_free(t);
}

/* A login's ticket, the token it buys and a later ticket of a session that token logged in
 * share one family, which a logout names; another login's do not. */
static void test_family(void **state)
{
    web_tokens_t *t;
    char ticket[WEB_TOKEN_LEN + 1], token[WEB_TOKEN_LEN + 1], other[WEB_TOKEN_LEN + 1],
        user[WEB_TOKEN_USER_MAX];
    uint64_t fam = 0, fam2 = 0, seen = 0;
    (void)state;
    assert_int_equal(web_tokens_new(&t, 60, 0), 0);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, ticket, &fam), 0);
    assert_true(fam != 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, token), 0);
    assert_int_equal(web_tokens_lookup(t, token, WEB_TOKEN_LEN, 1, user, &seen), 0);
    assert_true(seen == fam);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, other, &fam2), 0);
    assert_true(fam2 != fam);
    uint64_t joined = fam;
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, other, &joined), 0);
    assert_true(joined == fam);
    seen = 0;
    assert_int_equal(web_tokens_revoke(t, token, WEB_TOKEN_LEN, &seen), 0);
    assert_true(seen == fam);
    web_tokens_free(t);
}

/* tenant remove: every token and ticket of the tenant's users, none of another tenant's (nor
 * of a tenant whose name only ends the same). */
static void test_revoke_tenant(void **state)
{
    web_tokens_t *t;
    char ticket[WEB_TOKEN_LEN + 1], a[WEB_TOKEN_LEN + 1], b[WEB_TOKEN_LEN + 1],
        c[WEB_TOKEN_LEN + 1], user[WEB_TOKEN_USER_MAX];
    uint64_t fam;
    (void)state;
    assert_int_equal(web_tokens_new(&t, 60, 0), 0);
    assert_int_equal(web_tokens_ticket(t, "alice@acme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, a), 0);
    assert_int_equal(web_tokens_ticket(t, "bob@acme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, b), 0);
    assert_int_equal(web_tokens_ticket(t, "carol@subacme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_redeem(t, ticket, WEB_TOKEN_LEN, 0, c), 0);
    assert_int_equal(web_tokens_ticket(t, "bob@acme", 0, ticket, (fam = 0, &fam)), 0);
    assert_int_equal(web_tokens_revoke_tenant(t, "acme"), 3);
    assert_int_equal(web_tokens_lookup(t, a, WEB_TOKEN_LEN, 1, user, NULL), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_lookup(t, b, WEB_TOKEN_LEN, 1, user, NULL), IOT_ENOTFOUND);
    assert_int_equal(web_tokens_lookup(t, c, WEB_TOKEN_LEN, 1, user, NULL), 0);
    assert_int_equal(web_tokens_revoke_tenant(t, "acme"), 0);
    web_tokens_free(t);
}

static void test_cookie(void **state)
{
    struct http_slice v;
    (void)state;
    struct http_slice h = {"a=1; iotd_session=abc ; b=2", 27};
    assert_true(web_cookie_find(&h, "iotd_session", &v));
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.ptr, "abc", 3);
    assert_true(web_cookie_find(&h, "b", &v));
    assert_memory_equal(v.ptr, "2", 1);
    assert_false(web_cookie_find(&h, "iotd", &v));
    struct http_slice h2 = {"xiotd_session=1", 15};
    assert_false(web_cookie_find(&h2, "iotd_session", &v));
    struct http_slice empty = {"", 0};
    assert_false(web_cookie_find(&empty, "a", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticket_for_token), cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_bounded),          cmocka_unit_test(test_family),
        cmocka_unit_test(test_revoke_tenant),    cmocka_unit_test(test_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
