/*
 * web_tokens.h - the browsers' session tokens (iot-websocket(7)): a one-time ticket given
 * with WELCOME, exchanged for a token that the browser keeps as an HttpOnly cookie and that
 * logs a /ws upgrade in without the password until it expires or is revoked.
 *
 * Held in memory only (a restart logs every browser out) in one table shared by the io
 * threads under a mutex: a token is looked up once per upgrade or cookie request, never per
 * message. Tokens and tickets are 32 random bytes (OpenSSL's RAND_bytes) as 64 lower-case hex
 * digits, compared in constant time. Revoking removes the entry, so there is no separate
 * revocation list to grow: a revoked token is simply unknown. The table is bounded: when full,
 * expired entries go first, then the oldest.
 */
#ifndef IOTD_WEB_TOKENS_H
#define IOTD_WEB_TOKENS_H

#include "web/http_parser.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEB_TOKEN_LEN      64    /* hex digits of a token or ticket */
#define WEB_TICKET_TTL_MS  30000 /* a ticket must be exchanged within this */
#define WEB_TOKEN_USER_MAX 129   /* user@tenant, NUL included */
#define WEB_TOKEN_COOKIE   "iotd_session"
#define WEB_TOKENS_MAX     65536 /* entries the table holds at most */

typedef struct web_tokens web_tokens_t;

/* A table whose tokens live ttl_s seconds and that holds at most max entries (0: the
 * default). IOT_ENOMEM. */
int web_tokens_new(web_tokens_t **out, uint32_t ttl_s, size_t max);
void web_tokens_free(web_tokens_t *t); /* NULL is fine */

/* A one-time ticket for user, valid WEB_TICKET_TTL_MS from now_ms, into out (WEB_TOKEN_LEN
 * digits and a NUL). It belongs to *family (a number shared by a login's ticket, the token it
 * buys and the WebSockets either logs in, so that a logout finds them): a fresh one is given
 * when *family is 0. 0, IOT_EINTERNAL (no randomness), IOT_ENOMEM. */
int web_tokens_ticket(web_tokens_t *t, const char *user, int64_t now_ms, char *out,
                      uint64_t *family);
/* Exchange ticket[0, len) for a session token of the same user (the ticket is used up) into
 * out. 0, IOT_ENOTFOUND (unknown, used or expired), IOT_EINTERNAL, IOT_ENOMEM. */
int web_tokens_redeem(web_tokens_t *t, const char *ticket, size_t len, int64_t now_ms, char *out);
/* The user of the live session token token[0, len) into user (WEB_TOKEN_USER_MAX bytes), and
 * its family into *family (may be NULL). 0 or IOT_ENOTFOUND (unknown, revoked or expired; a
 * ticket is not a token). */
int web_tokens_lookup(web_tokens_t *t, const char *token, size_t len, int64_t now_ms, char *user,
                      uint64_t *family);
/* End token[0, len) (a session token or a ticket); its family into *family (may be NULL).
 * 0 or IOT_ENOTFOUND. */
int web_tokens_revoke(web_tokens_t *t, const char *token, size_t len, uint64_t *family);
/* End every token and ticket of user (removed, password changed): how many ended. */
size_t web_tokens_revoke_user(web_tokens_t *t, const char *user);
/* End every token and ticket of every user of tenant (user@tenant; the tenant is removed): how
 * many ended. */
size_t web_tokens_revoke_tenant(web_tokens_t *t, const char *tenant);
/* Live entries (tokens and tickets), for stats and tests. */
size_t web_tokens_count(web_tokens_t *t);
/* Seconds a token lives. */
uint32_t web_tokens_ttl(const web_tokens_t *t);

/* The value of cookie name in a Cookie header ("a=1; iotd_session=ab"), or false. */
bool web_cookie_find(const struct http_slice *header, const char *name, struct http_slice *value);

#endif
