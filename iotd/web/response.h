/*
 * response.h - HTTP/1.1 response heads, each with the headers every answer of iotd carries:
 * a strict Content-Security-Policy (same-origin resources only, no inline script, no framing),
 * X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer, Server and Date.
 */
#ifndef IOTD_WEB_RESPONSE_H
#define IOTD_WEB_RESPONSE_H

#include "web/web_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The security headers of every response (also documented in iotd(8)). */
#define WEB_SECURITY_HEADERS                                                                       \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "               \
    "form-action 'self'; frame-ancestors 'none'\r\n"                                               \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Cross-Origin-Opener-Policy: same-origin\r\n"                                                  \
    "Cross-Origin-Resource-Policy: same-origin\r\n"

struct http_response {
    int status;
    const char *content_type; /* NULL: no Content-Type (304) */
    size_t content_length;    /* what a GET carries, also announced to a HEAD */
    bool keep_alive;          /* false: Connection: close */
    const char *extra;        /* more header lines, each ending in CRLF; NULL for none */
    const char *server;       /* the Server header's value */
    time_t now;               /* for Date */
};

/* "OK", "Not Found"...; "Unknown" for a status not in the table. */
const char *http_status_reason(int status);
/* Append the status line and headers, up to and including the empty line. */
void http_response_head(struct web_buf *b, const struct http_response *r);
/* Append a whole response whose body is text (text/plain), or only its head if head_only. */
void http_response_text(struct web_buf *b, struct http_response *r, const char *text,
                        bool head_only);

#endif
