/* Unit tests of the static file rules on a temporary root: types, ETag and 304, HEAD, gzip on
 * the fly (inflated back to the file) and precompressed, symbolic links inside and out of the
 * root, directories, and the If-None-Match and Accept-Encoding parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web/static_files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char top[PATH_MAX], root[PATH_MAX];

static void write_file(const char *rel, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", top, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/iotd-web-static.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(top, sizeof(top), "%s", tmpl);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/root", top);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/root/sub", top);
    mkdir(path, 0755);
    if (!realpath(top, root))
        return -1;
    strcat(root, "/root");
    write_file("secret.txt", "outside the root\n");
    write_file("root/index.html", "<!doctype html><title>t</title>\n");
    write_file("root/sub/index.html", "sub\n");
    char big[2048];
    memset(big, 'x', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    write_file("root/app.js", big);
    write_file("root/style.css", "body{}\n");
    write_file("root/style.css.gz", "precompressed bytes");
    snprintf(path, sizeof(path), "%s/secret.txt", top);
    char link[PATH_MAX * 2];
    snprintf(link, sizeof(link), "%s/root/escape.txt", top);
    if (symlink(path, link) != 0)
        return -1;
    snprintf(link, sizeof(link), "%s/root/inside.html", top);
    if (symlink("index.html", link) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    return system(cmd) == 0 ? 0 : -1;
}

struct answer {
    int status;
    char head[4096];
    struct web_buf body;
};

static void serve(const char *path, bool directory, const char *inm, const char *ae, bool head_only,
                  struct answer *a)
{
    struct http_slice inm_s = {inm, inm ? strlen(inm) : 0}, ae_s = {ae, ae ? strlen(ae) : 0};
    struct static_request s = {.root = root,
                               .path = path,
                               .directory = directory,
                               .if_none_match = inm ? &inm_s : NULL,
                               .accept_encoding = ae ? &ae_s : NULL,
                               .head_only = head_only};
    struct http_response r = {.keep_alive = true, .server = "test", .now = 0};
    struct web_buf out = {0};
    a->status = static_serve(&s, &r, &out);
    assert_false(web_buf_failed(&out));
    web_buf_append(&out, "", 1);
    char *end = strstr((char *)out.data, "\r\n\r\n");
    assert_non_null(end);
    size_t head_len = (size_t)(end - (char *)out.data) + 4;
    assert_true(head_len < sizeof(a->head));
    memcpy(a->head, out.data, head_len);
    a->head[head_len] = '\0';
    a->body = (struct web_buf){0};
    web_buf_append(&a->body, out.data + head_len, out.len - 1 - head_len);
    web_buf_append(&a->body, "", 1); /* NUL-terminated for strstr, not counted */
    a->body.len--;
    web_buf_free(&out);
}

/* The value of header name in a->head ("" when absent). */
static const char *header(const struct answer *a, const char *name, char *value, size_t len)
{
    char key[64];
    snprintf(key, sizeof(key), "\r\n%s: ", name);
    const char *at = strstr(a->head, key);
    value[0] = '\0';
    if (at) {
        at += strlen(key);
        size_t n = strcspn(at, "\r");
        snprintf(value, len, "%.*s", (int)n, at);
    }
    return value;
}

static void test_file_and_304(void **state)
{
    struct answer a;
    char etag[80], v[128];
    (void)state;
    serve("index.html", false, NULL, NULL, false, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(header(&a, "Content-Type", v, sizeof(v)), "text/html; charset=utf-8");
    assert_string_equal(header(&a, "Cache-Control", v, sizeof(v)), "no-cache");
    assert_string_equal(header(&a, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    assert_non_null(strstr(a.head, "frame-ancestors 'none'"));
    assert_int_equal(a.body.len, strlen("<!doctype html><title>t</title>\n"));
    header(&a, "ETag", etag, sizeof(etag));
    assert_true(etag[0] == '"');
    web_buf_free(&a.body);

    char list[200];
    snprintf(list, sizeof(list), "\"other\", W/%s", etag);
    serve("index.html", false, list, NULL, false, &a);
    assert_int_equal(a.status, 304);
    assert_int_equal(a.body.len, 0);
    assert_null(strstr(a.head, "Content-Length"));
    assert_string_equal(header(&a, "ETag", v, sizeof(v)), etag);
    web_buf_free(&a.body);

    serve("index.html", false, "\"stale\"", NULL, false, &a);
    assert_int_equal(a.status, 200);
    web_buf_free(&a.body);
}

static void test_head_and_directory(void **state)
{
    struct answer a;
    char v[64];
    (void)state;
    serve("", true, NULL, NULL, true, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body.len, 0);
    assert_string_equal(header(&a, "Content-Length", v, sizeof(v)), "32");
    web_buf_free(&a.body);
    serve("sub/", true, NULL, NULL, false, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body.len, 4);
    web_buf_free(&a.body);
    serve("sub", false, NULL, NULL, false, &a); /* a directory is reached with its '/' */
    assert_int_equal(a.status, 404);
    web_buf_free(&a.body);
    serve("missing.js", false, NULL, NULL, false, &a);
    assert_int_equal(a.status, 404);
    web_buf_free(&a.body);
}

static void test_symlinks(void **state)
{
    struct answer a;
    (void)state;
    serve("escape.txt", false, NULL, NULL, false, &a);
    assert_int_equal(a.status, 404);
    assert_null(strstr((char *)a.body.data, "outside"));
    web_buf_free(&a.body);
    serve("inside.html", false, NULL, NULL, false, &a);
    assert_int_equal(a.status, 200);
    web_buf_free(&a.body);
}

static void test_gzip(void **state)
{
    struct answer a;
    char v[128], etag_plain[80];
    (void)state;
    serve("app.js", false, NULL, "br;q=1, gzip;q=0.8", false, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(header(&a, "Content-Encoding", v, sizeof(v)), "gzip");
    assert_string_equal(header(&a, "Vary", v, sizeof(v)), "Accept-Encoding");
    assert_true(a.body.len < 200);
    uint8_t plain[4096];
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = a.body.data;
    z.avail_in = (uInt)a.body.len;
    z.next_out = plain;
    z.avail_out = sizeof(plain);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, 2047);
    inflateEnd(&z);
    header(&a, "ETag", v, sizeof(v));
    web_buf_free(&a.body);

    serve("app.js", false, NULL, "gzip;q=0, *", false, &a); /* refused by name */
    assert_int_equal(a.body.len, 2047);
    assert_string_equal(header(&a, "Content-Encoding", etag_plain, sizeof(etag_plain)), "");
    header(&a, "ETag", etag_plain, sizeof(etag_plain));
    assert_string_not_equal(v, etag_plain); /* each representation has its own ETag */
    web_buf_free(&a.body);

    serve("style.css", false, NULL, "gzip", false, &a); /* the .gz beside it */
    assert_string_equal(header(&a, "Content-Encoding", v, sizeof(v)), "gzip");
    assert_int_equal(a.body.len, strlen("precompressed bytes"));
    web_buf_free(&a.body);
}

static void test_header_parsers(void **state)
{
    struct http_slice s;
    (void)state;
#define SLICE(text) (s = (struct http_slice){text, strlen(text)}, &s)
    assert_true(static_accepts_gzip(SLICE("gzip, deflate, br")));
    assert_true(static_accepts_gzip(SLICE("*")));
    assert_true(static_accepts_gzip(SLICE("x-gzip")));
    assert_false(static_accepts_gzip(SLICE("gzip;q=0")));
    assert_false(static_accepts_gzip(SLICE("identity")));
    assert_false(static_accepts_gzip(SLICE("*;q=0")));
    assert_true(static_accepts_gzip(SLICE("GZIP ; q=0.5")));
    assert_true(static_etag_matches(SLICE("*"), "\"a\""));
    assert_true(static_etag_matches(SLICE("\"b\", \"a\""), "\"a\""));
    assert_true(static_etag_matches(SLICE("W/\"a\""), "\"a\""));
    assert_false(static_etag_matches(SLICE("\"ab\""), "\"a\""));
#undef SLICE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_and_304),   cmocka_unit_test(test_head_and_directory),
        cmocka_unit_test(test_symlinks),       cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_header_parsers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
