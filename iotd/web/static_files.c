/*
 * static_files.c - serving files from the web root (see static_files.h): resolve and check
 * the path, pick the representation (identity, precompressed or compressed now), answer 304
 * or read and send it.
 */
#include "web/static_files.h"

#include "web/mime.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* A file opened under the root. */
struct opened {
    int fd;
    struct stat st;
};

/* Open root/path+suffix if it resolves to a regular file inside root. -404 or -500. */
static int open_under(const char *root, const char *path, const char *suffix, struct opened *o)
{
    char full[PATH_MAX], real[PATH_MAX];
    int n = snprintf(full, sizeof(full), "%s/%s%s", root, path, suffix);
    if (n < 0 || (size_t)n >= sizeof(full) || !realpath(full, real))
        return -404;
    size_t rl = strlen(root);
    bool inside = strcmp(root, "/") == 0 ||
                  (strncmp(real, root, rl) == 0 && (real[rl] == '/' || real[rl] == '\0'));
    if (!inside)
        return -404;
    /* real has no link left to follow; O_NOFOLLOW refuses one swapped in meanwhile. */
    o->fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (o->fd < 0)
        return -404;
    if (fstat(o->fd, &o->st) != 0 || !S_ISREG(o->st.st_mode)) {
        close(o->fd);
        o->fd = -1;
        return -404;
    }
    if (o->st.st_size > STATIC_MAX_FILE) {
        close(o->fd);
        o->fd = -1;
        return -500;
    }
    return 0;
}

static int read_whole(const struct opened *o, struct web_buf *into)
{
    size_t size = (size_t)o->st.st_size, done = 0;
    if (size == 0)
        return 0;
    uint8_t *to = web_buf_reserve(into, size);
    if (!to)
        return -500;
    while (done < size) {
        ssize_t n = pread(o->fd, to + done, size - done, (off_t)done);
        if (n <= 0)
            return -500; /* shrunk or failing under us */
        done += (size_t)n;
    }
    into->len += size;
    return 0;
}

/* gzip (RFC 1952) of data into out. */
static int gzip_into(const uint8_t *data, size_t len, struct web_buf *out)
{
    z_stream z = {0};
    int rc = -500;
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -500;
    size_t bound = deflateBound(&z, (uLong)len);
    uint8_t *to = web_buf_reserve(out, bound);
    if (!to)
        goto out;
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = to;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        goto out;
    out->len += z.total_out;
    rc = 0;
out:
    deflateEnd(&z);
    return rc;
}

bool static_etag_matches(const struct http_slice *if_none_match, const char *etag)
{
    struct http_slice item;
    size_t pos = 0, n = strlen(etag);
    while (http_list_next(if_none_match, &pos, &item)) {
        if (item.len == 1 && item.ptr[0] == '*')
            return true;
        if (item.len > 2 && item.ptr[0] == 'W' && item.ptr[1] == '/') {
            item.ptr += 2;
            item.len -= 2;
        }
        if (item.len == n && memcmp(item.ptr, etag, n) == 0)
            return true;
    }
    return false;
}

/* The q of one Accept-Encoding item ("gzip;q=0.5"): 1 when absent, 0 when malformed. */
static double item_quality(const struct http_slice *item, size_t *name_len)
{
    const char *semi = memchr(item->ptr, ';', item->len);
    size_t n = semi ? (size_t)(semi - item->ptr) : item->len;
    while (n > 0 && (item->ptr[n - 1] == ' ' || item->ptr[n - 1] == '\t'))
        n--;
    *name_len = n;
    if (!semi)
        return 1;
    char q[16];
    const char *p = semi + 1, *end = item->ptr + item->len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (end - p < 3 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' ||
        (size_t)(end - p - 2) >= sizeof(q))
        return 0;
    memcpy(q, p + 2, (size_t)(end - p - 2));
    q[end - p - 2] = '\0';
    char *stop;
    double v = strtod(q, &stop);
    return *stop == '\0' && v >= 0 && v <= 1 ? v : 0;
}

bool static_accepts_gzip(const struct http_slice *accept_encoding)
{
    struct http_slice item;
    size_t pos = 0;
    double gzip = -1, star = -1;
    while (http_list_next(accept_encoding, &pos, &item)) {
        size_t n;
        double q = item_quality(&item, &n);
        struct http_slice name = {item.ptr, n};
        if (http_slice_equals(&name, "gzip") || http_slice_equals(&name, "x-gzip"))
            gzip = q;
        else if (http_slice_equals(&name, "*"))
            star = q;
    }
    return gzip > 0 || (gzip < 0 && star > 0);
}

static int answer_error(int status, struct http_response *r, const struct static_request *s,
                        struct web_buf *out)
{
    r->status = status;
    http_response_text(out, r, status == 404 ? "not found\n" : "cannot read the file\n",
                       s->head_only);
    return status;
}

int static_serve(const struct static_request *s, struct http_response *r, struct web_buf *out)
{
    char path[PATH_MAX], etag[80], extra[256];
    struct opened file = {.fd = -1}, packed = {.fd = -1};
    struct web_buf body = {0}, plain = {0};
    int rc;
    if (snprintf(path, sizeof(path), "%s%s", s->path, s->directory ? "index.html" : "") >=
        (int)sizeof(path)) {
        rc = answer_error(404, r, s, out);
        goto out;
    }
    if ((rc = open_under(s->root, path, "", &file)) < 0) {
        rc = answer_error(-rc, r, s, out);
        goto out;
    }
    const struct mime_type *type = mime_for_path(path);
    bool gzip = type->compressible && s->accept_encoding && static_accepts_gzip(s->accept_encoding);
    if (gzip && (open_under(s->root, path, ".gz", &packed) < 0 ||
                 packed.st.st_mtim.tv_sec < file.st.st_mtim.tv_sec)) {
        if (packed.fd >= 0)
            close(packed.fd);
        packed.fd = -1;
        gzip = file.st.st_size >= STATIC_GZIP_MIN;
    }
    const struct opened *sent = packed.fd >= 0 ? &packed : &file;
    snprintf(etag, sizeof(etag), "\"%llx-%llx%s\"", (unsigned long long)sent->st.st_size,
             (unsigned long long)sent->st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)sent->st.st_mtim.tv_nsec,
             gzip ? "-gz" : "");
    snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: no-cache\r\n%s%s", etag,
             type->compressible ? "Vary: Accept-Encoding\r\n" : "",
             gzip ? "Content-Encoding: gzip\r\n" : "");
    r->extra = extra;
    if (s->if_none_match && static_etag_matches(s->if_none_match, etag)) {
        r->status = 304;
        r->content_type = NULL;
        http_response_head(out, r);
        rc = 304;
        goto out;
    }
    if (packed.fd >= 0) {
        rc = read_whole(&packed, &body);
    } else if (gzip) {
        if ((rc = read_whole(&file, &plain)) == 0)
            rc = gzip_into(plain.data, plain.len, &body);
    } else {
        rc = read_whole(&file, &body);
    }
    if (rc < 0) {
        r->extra = NULL;
        rc = answer_error(500, r, s, out);
        goto out;
    }
    r->status = 200;
    r->content_type = type->content_type;
    r->content_length = body.len;
    http_response_head(out, r);
    if (!s->head_only)
        web_buf_append(out, body.data, body.len);
    rc = 200;
out:
    r->extra = NULL; /* it pointed at this frame */
    if (file.fd >= 0)
        close(file.fd);
    if (packed.fd >= 0)
        close(packed.fd);
    web_buf_free(&body);
    web_buf_free(&plain);
    return rc;
}
