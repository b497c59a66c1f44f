/* Unit tests of request target -> path under the web root (every traversal form refused) and of
 * the MIME table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web/mime.h"
#include "web/web_path.h"

#include <string.h>

static int to_path(const char *target, char *out, size_t outlen, bool *directory)
{
    return web_path_from_target(target, strlen(target), out, outlen, directory);
}

static void test_accepted(void **state)
{
    static const struct {
        const char *target, *path;
        bool directory;
    } cases[] = {
        {"/", "", true},
        {"/index.html", "index.html", false},
        {"/js/app.js?v=2", "js/app.js", false},
        {"/docs/", "docs/", true},
        {"/a%20b.txt", "a b.txt", false},
        {"/caf%C3%A9.css", "caf\xC3\xA9.css", false},
        {"/a..b", "a..b", false}, /* dots inside a name are just a name */
    };
    char out[256];
    bool directory;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(to_path(cases[i].target, out, sizeof(out), &directory), 0);
        assert_string_equal(out, cases[i].path);
        assert_int_equal(directory, cases[i].directory);
    }
}

static void test_refused(void **state)
{
    static const struct {
        const char *target;
        int status;
    } cases[] = {
        {"/../etc/passwd", -400},
        {"/a/../../etc/passwd", -400},
        {"/%2e%2e/etc/passwd", -400},
        {"/%2E%2e/etc/passwd", -400},
        {"/.%2e/etc/passwd", -400},
        {"/a/%2e/b", -400},
        {"/./a", -400},
        {"/a/..", -400},
        {"/..%2fetc%2fpasswd", -400}, /* an encoded slash */
        {"/a%5c..%5c..%5cb", -400},   /* an encoded backslash */
        {"/a\\b", -400},
        {"/a%00.html", -400},
        {"/a%zz", -400},
        {"/a%4", -400},
        {"//etc/passwd", -400},
        {"/a//b", -400},
        {"http://host/a", -400}, /* absolute form */
        {"*", -400},
        {"/.git/config", -404}, /* hidden files */
        {"/a/.env", -404},
        {"/%2egit/config", -404},
    };
    char out[256];
    bool directory;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = to_path(cases[i].target, out, sizeof(out), &directory);
        if (rc != cases[i].status)
            fail_msg("%s: got %d, want %d", cases[i].target, rc, cases[i].status);
    }
    assert_int_equal(to_path("/abcdef", out, 4, &directory), -414);
}

static void test_mime(void **state)
{
    (void)state;
    assert_string_equal(mime_for_path("index.html")->content_type, "text/html; charset=utf-8");
    assert_string_equal(mime_for_path("js/app.JS")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(mime_for_path("app.mjs")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(mime_for_path("a/b.css")->content_type, "text/css; charset=utf-8");
    assert_string_equal(mime_for_path("manifest.webmanifest")->content_type,
                        "application/manifest+json");
    assert_string_equal(mime_for_path("icon.svg")->content_type, "image/svg+xml");
    assert_true(mime_for_path("icon.svg")->compressible);
    assert_false(mime_for_path("photo.png")->compressible);
    assert_string_equal(mime_for_path("font.woff2")->content_type, "font/woff2");
    /* No extension, a dot file, a dot in a directory name, an unknown one. */
    assert_string_equal(mime_for_path("README")->content_type, "application/octet-stream");
    assert_string_equal(mime_for_path(".html")->content_type, "application/octet-stream");
    assert_string_equal(mime_for_path("a.d/file")->content_type, "application/octet-stream");
    assert_string_equal(mime_for_path("x.exe")->content_type, "application/octet-stream");
    assert_false(mime_for_path("x.exe")->compressible);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
