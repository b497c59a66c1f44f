/*
 * http_parser.c - the request head parser (see http_parser.h): find the end of the head
 * within the bounds, then check the request line and each header line by the grammar of
 * RFC 9112, then the few headers whose meaning the framing depends on.
 */
#include "web/http_parser.h"

#include <string.h>

/* tchar of RFC 9110: the characters of a token (method, header name). */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte of a header value: visible, obs-text, space or tab. */
static bool is_value_byte(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

bool http_slice_equals(const struct http_slice *s, const char *text)
{
    size_t n = strlen(text);
    if (s->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((uint8_t)s->ptr[i]) != lower((uint8_t)text[i]))
            return false;
    return true;
}

const struct http_slice *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (http_slice_equals(&req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

bool http_list_next(const struct http_slice *list, size_t *pos, struct http_slice *item)
{
    size_t i = *pos;
    while (i < list->len && (list->ptr[i] == ' ' || list->ptr[i] == '\t' || list->ptr[i] == ','))
        i++;
    if (i >= list->len)
        return false;
    size_t start = i;
    while (i < list->len && list->ptr[i] != ',')
        i++;
    size_t end = i;
    while (end > start && (list->ptr[end - 1] == ' ' || list->ptr[end - 1] == '\t'))
        end--;
    *item = (struct http_slice){list->ptr + start, end - start};
    *pos = i;
    return true;
}

bool http_list_has_token(const struct http_slice *value, const char *token)
{
    struct http_slice item;
    size_t pos = 0;
    while (http_list_next(value, &pos, &item))
        if (http_slice_equals(&item, token))
            return true;
    return false;
}

/* Bytes of empty lines before the request line (RFC 9112 2.2: ignored), or -1 when buf is
 * only a CR so far. */
static long leading_empty_lines(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (buf[i] == '\n')
            i++;
        else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i += 2;
        else if (buf[i] == '\r' && i + 1 == len)
            return -1;
        else
            break;
    }
    return (long)i;
}

/* The end of the head (just after its empty line) in buf[0, len), searching from *scanned;
 * 0 when not there yet, with *scanned where the next search resumes. */
static size_t find_head_end(const uint8_t *buf, size_t len, size_t *scanned)
{
    size_t i = *scanned;
    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 == len)
            break;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r') {
            if (i + 2 == len)
                break;
            if (buf[i + 2] == '\n')
                return i + 3;
        }
    }
    *scanned = i;
    return 0;
}

/* The longest request line: the target's bound, a method and the version. */
#define MAX_REQUEST_LINE (HTTP_MAX_TARGET + 64)

/* Early verdict on an incomplete first line: garbage (400) or an overlong target (414) need
 * not wait for the rest of the head. */
static int check_partial_request_line(const uint8_t *line, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar(line[i]))
        i++;
    if (i < len && line[i] != ' ')
        return -400;
    const uint8_t *lf = memchr(line, '\n', len);
    size_t line_len = lf ? (size_t)(lf - line) : len;
    if (!lf && line_len > MAX_REQUEST_LINE)
        return -414;
    return 0;
}

/* The length of the line at p (up to but not including its LF, CR stripped) and the start of
 * the next; every line of a complete head ends in LF. */
static size_t line_at(const uint8_t *p, const uint8_t *end, const uint8_t **next)
{
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
    *next = lf + 1;
    size_t n = (size_t)(lf - p);
    return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

/* method SP request-target SP HTTP-version */
static int parse_request_line(const uint8_t *p, size_t n, struct http_request *req)
{
    size_t i = 0;
    if (n > MAX_REQUEST_LINE)
        return -414;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return -400;
    req->method = (struct http_slice){(const char *)p, i};
    size_t t = ++i;
    while (i < n && p[i] > 0x20 && p[i] < 0x7f)
        i++;
    if (i == t || i >= n || p[i] != ' ')
        return -400;
    if (i - t > HTTP_MAX_TARGET)
        return -414;
    req->target = (struct http_slice){(const char *)p + t, i - t};
    const uint8_t *v = p + i + 1;
    size_t vn = n - i - 1;
    if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return -400;
    if (v[5] != '1' || v[7] > '1')
        return -505;
    req->version_minor = (unsigned)(v[7] - '0');
    return 0;
}

/* field-name ":" OWS field-value OWS */
static int parse_header_line(const uint8_t *p, size_t n, struct http_header *h)
{
    size_t i = 0;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':') /* also obs-fold and whitespace before the colon */
        return -400;
    h->name = (struct http_slice){(const char *)p, i};
    i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t start = i, end = n;
    for (size_t k = start; k < n; k++)
        if (!is_value_byte(p[k]))
            return -400;
    while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\t'))
        end--;
    h->value = (struct http_slice){(const char *)p + start, end - start};
    return 0;
}

/* The headers that decide the framing and the connection: Host, Content-Length,
 * Transfer-Encoding, Connection. */
static int check_framing(struct http_request *req)
{
    unsigned hosts = 0;
    bool has_length = false, has_encoding = false;
    unsigned long long length = 0;
    for (size_t k = 0; k < req->nheaders; k++) {
        const struct http_header *h = &req->headers[k];
        if (http_slice_equals(&h->name, "host")) {
            hosts++;
        } else if (http_slice_equals(&h->name, "transfer-encoding")) {
            has_encoding = true;
        } else if (http_slice_equals(&h->name, "content-length")) {
            unsigned long long v = 0;
            if (h->value.len == 0 || h->value.len > 18)
                return -400;
            for (size_t i = 0; i < h->value.len; i++) {
                if (h->value.ptr[i] < '0' || h->value.ptr[i] > '9')
                    return -400;
                v = v * 10 + (unsigned)(h->value.ptr[i] - '0');
            }
            if (has_length && v != length)
                return -400;
            has_length = true;
            length = v;
        }
    }
    if (hosts > 1 || (hosts == 0 && req->version_minor == 1))
        return -400;
    if (has_length && has_encoding)
        return -400;
    if (has_encoding || length > 0)
        return -413;
    const struct http_slice *conn = http_request_header(req, "connection");
    req->keep_alive = req->version_minor == 1;
    if (conn && http_list_has_token(conn, "close"))
        req->keep_alive = false;
    else if (conn && http_list_has_token(conn, "keep-alive"))
        req->keep_alive = true;
    return 0;
}

int http_parse_request(struct http_parser *p, const uint8_t *buf, size_t len,
                       struct http_request *req)
{
    long skip = leading_empty_lines(buf, len);
    if (skip < 0)
        return HTTP_PARSE_MORE;
    size_t start = (size_t)skip;
    if (p->scanned < start)
        p->scanned = start;
    size_t end = find_head_end(buf, len, &p->scanned);
    if (end == 0) {
        int rc = check_partial_request_line(buf + start, len - start);
        if (rc < 0)
            return rc;
        return len - start >= HTTP_MAX_HEAD ? -431 : HTTP_PARSE_MORE;
    }
    if (end - start > HTTP_MAX_HEAD)
        return -431;

    const uint8_t *line = buf + start, *stop = buf + end, *next;
    size_t n = line_at(line, stop, &next);
    int rc = parse_request_line(line, n, req);
    if (rc < 0)
        return rc;
    req->nheaders = 0;
    for (line = next; line < stop; line = next) {
        n = line_at(line, stop, &next);
        if (n == 0)
            break; /* the empty line that ends the head */
        if (req->nheaders == HTTP_MAX_HEADERS)
            return -431;
        if ((rc = parse_header_line(line, n, &req->headers[req->nheaders])) < 0)
            return rc;
        req->nheaders++;
    }
    if ((rc = check_framing(req)) < 0)
        return rc;
    return (int)end;
}
