/*
 * http_parser.h - the HTTP/1.1 request head parser of iotd: fed the bytes received so far,
 * it says "need more", "here is a request head of N bytes", or "answer this status and
 * close". It does no I/O and never allocates: the caller owns the buffer, and the parsed
 * request points into it (valid until the caller consumes those bytes).
 *
 * Bounds (RFC 9110/9112 leave them to the server): a head of at most HTTP_MAX_HEAD bytes and
 * HTTP_MAX_HEADERS header lines (431 beyond), a request target of at most HTTP_MAX_TARGET bytes
 * (414). iotd accepts no request body yet: a Content-Length above 0 or any Transfer-Encoding is
 * answered 413, which also keeps pipelining safe (the next request starts right after the
 * head). Only HTTP/1.0 and HTTP/1.1 are spoken (505 for another version); obsolete line
 * folding, whitespace before a colon, control bytes, a missing or repeated Host (HTTP/1.1) and
 * conflicting Content-Length headers are 400, the usual request-smuggling vectors. Lines may
 * end in CRLF or, tolerated as RFC 9112 allows, a bare LF.
 */
#ifndef IOTD_WEB_HTTP_PARSER_H
#define IOTD_WEB_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef HTTP_MAX_HEAD
#define HTTP_MAX_HEAD 8192
#endif
#ifndef HTTP_MAX_HEADERS
#define HTTP_MAX_HEADERS 100
#endif
#ifndef HTTP_MAX_TARGET
#define HTTP_MAX_TARGET 2048
#endif

/* A string inside the caller's buffer (not NUL-terminated). */
struct http_slice {
    const char *ptr;
    size_t len;
};

struct http_header {
    struct http_slice name, value; /* value without the surrounding whitespace */
};

struct http_request {
    struct http_slice method, target;
    unsigned version_minor; /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;        /* the version's default, changed by Connection: close/keep-alive */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
};

/* Scanning state between calls for one connection. Zeroed (http_parser_reset) before each
 * request; remembers how far the head terminator was searched, so feeding a head byte by
 * byte costs linear time. */
struct http_parser {
    size_t scanned;
};

#define HTTP_PARSE_MORE 0

static inline void http_parser_reset(struct http_parser *p)
{
    p->scanned = 0;
}

/* Parse the request head at the start of buf[0, len): every byte received since the previous
 * request's head ended (len may grow between calls; earlier bytes must stay as they were).
 * Returns HTTP_PARSE_MORE when the head is not complete yet (and within bounds), the head's
 * length in bytes (> 0) with *req filled, or a negative HTTP status (-400, -413, -414, -431,
 * -505) to answer before closing the connection. */
int http_parse_request(struct http_parser *p, const uint8_t *buf, size_t len,
                       struct http_request *req);

/* The value of the first header called name (case-insensitive), or NULL. */
const struct http_slice *http_request_header(const struct http_request *req, const char *name);
/* The next item of a comma-separated header value from *pos (0 at first), whitespace trimmed;
 * false at the end. Empty items are skipped. */
bool http_list_next(const struct http_slice *list, size_t *pos, struct http_slice *item);
/* Does the comma-separated list value contain token (case-insensitive)? ("keep-alive, Upgrade") */
bool http_list_has_token(const struct http_slice *value, const char *token);
/* Case-insensitive comparison of a slice with a NUL-terminated string. */
bool http_slice_equals(const struct http_slice *s, const char *text);

#endif
