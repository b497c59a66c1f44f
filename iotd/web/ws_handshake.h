/*
 * ws_handshake.h - the server side of the WebSocket opening handshake (RFC 6455 4.2): is this
 * request a valid upgrade, from an origin we accept, and what is its Sec-WebSocket-Accept.
 * Pure: a parsed request in, a verdict out.
 *
 * Origins: a browser always sends Origin with a WebSocket request, and a page of another site
 * can open one to us with the user's cookies, so the Origin must match. With an allowed list
 * ("https://console.example.com, http://127.0.0.1:8080", compared case-insensitively) it must
 * be one of them; without one, it must be the listener's own origin as the browser addressed
 * it: scheme (http, https once TLS comes) "://" Host. A request without Origin is refused too.
 */
#ifndef IOTD_WEB_WS_HANDSHAKE_H
#define IOTD_WEB_WS_HANDSHAKE_H

#include "web/http_parser.h"

#include <stdbool.h>

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

struct ws_handshake {
    const char *allowed_origins; /* comma-separated; NULL or empty: the own origin only */
    const char *scheme;          /* "http" */
};

/* Check req (a GET of the /ws path). Returns 101 with accept (WS_ACCEPT_LEN + 1 bytes) filled,
 * or the status of the refusal: 400 (not an upgrade to websocket, not HTTP/1.1 GET, a missing
 * or malformed Sec-WebSocket-Key), 426 (a Sec-WebSocket-Version other than 13: answer with
 * Sec-WebSocket-Version: 13), 403 (Origin missing or not allowed). */
int ws_handshake_check(const struct ws_handshake *hs, const struct http_request *req, char *accept);

/* Whether req's Origin is one /ws accepts (the same rule as ws_handshake_check's 403): the
 * check of the requests that set and clear the session cookie. */
bool ws_origin_allowed(const struct ws_handshake *hs, const struct http_request *req);

/* Sec-WebSocket-Accept for key (the header's value): base64(SHA-1(key GUID)). */
void ws_accept_for_key(const struct http_slice *key, char *accept);

#endif
