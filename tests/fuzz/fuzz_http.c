/*
 * fuzz_http.c - libFuzzer target for iotd's HTTP request head parser and the target-to-path
 * rules of the web root.
 *
 * The input is a connection's byte stream: it is parsed as pipelined requests, fed in chunks
 * whose sizes come from the input itself (so split points are explored), and the first
 * verdict that is not "more" must equal the one the parser gives for the same bytes at once:
 * incremental parsing changes nothing, early refusals included. A parsed head must lie inside what
 * was fed, within the bounds; an error is one of the documented statuses. Each parsed target goes
 * through web_path_from_target, whose result must never climb out of the root: no "." or ".."
 * component, no empty one, no leading '/', no NUL or backslash. Any disagreement aborts, which
 * libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/http_parser.h"
#include "web/web_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_path(const struct http_slice *target)
{
    char path[1024];
    bool directory;
    int rc = web_path_from_target(target->ptr, target->len, path, sizeof(path), &directory);
    if (rc < 0) {
        check(rc == -400 || rc == -404 || rc == -414);
        return;
    }
    size_t n = strlen(path);
    check(n < sizeof(path));
    check(n == 0 || path[0] != '/');
    check(strchr(path, '\\') == NULL);
    check(strstr(path, "//") == NULL);
    for (const char *seg = path; *seg;) {
        size_t len = strcspn(seg, "/");
        check(len > 0);
        check(seg[0] != '.'); /* ".", ".." and hidden names are all refused */
        seg += len;
        if (*seg == '/')
            seg++;
    }
    check(directory == (n == 0 || path[n - 1] == '/'));
}

static void check_request(const struct http_request *req, const uint8_t *buf, int head_len)
{
    const char *lo = (const char *)buf, *hi = (const char *)buf + head_len;
    check(req->method.len > 0 && req->method.ptr >= lo && req->method.ptr + req->method.len <= hi);
    check(req->target.len > 0 && req->target.len <= HTTP_MAX_TARGET);
    check(req->target.ptr >= lo && req->target.ptr + req->target.len <= hi);
    check(req->version_minor <= 1);
    check(req->nheaders <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        check(h->name.len > 0 && h->name.ptr >= lo && h->name.ptr + h->name.len <= hi);
        check(h->value.ptr >= lo && h->value.ptr + h->value.len <= hi);
        check(memchr(h->value.ptr, '\n', h->value.len) == NULL);
        check(memchr(h->value.ptr, '\r', h->value.len) == NULL);
    }
    check_path(&req->target);
}

static bool is_status(int rc)
{
    return rc == -400 || rc == -413 || rc == -414 || rc == -431 || rc == -505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_request whole, part;
    size_t off = 0, chunk = size ? (size_t)data[0] % 23 + 1 : 1;
    while (off < size) {
        const uint8_t *buf = data + off;
        size_t left = size - off;
        struct http_parser once = {0}, incremental = {0};
        int expect = http_parse_request(&once, buf, left, &whole);
        check(expect == HTTP_PARSE_MORE || is_status(expect) ||
              (expect > 0 && (size_t)expect <= left));
        /* The same bytes fed a chunk at a time: the first verdict that is not "more" is the
         * same one, at the same length. */
        int got = HTTP_PARSE_MORE;
        for (size_t fed = chunk < left ? chunk : left;;
             fed = fed + chunk < left ? fed + chunk : left) {
            got = http_parse_request(&incremental, buf, fed, &part);
            if (got != HTTP_PARSE_MORE || fed == left)
                break;
        }
        check(got == expect);
        if (got > 0) {
            check(part.nheaders == whole.nheaders);
            check(part.keep_alive == whole.keep_alive);
        }
        if (expect <= 0)
            break;
        check_request(&whole, buf, expect);
        off += (size_t)expect;
    }
    return 0;
}
