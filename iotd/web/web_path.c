/*
 * web_path.c - request target to relative path (see web_path.h). Segments are checked after
 * decoding, so "%2e%2e" is the ".." it means; a decoded '/' or '\' is refused rather than
 * interpreted, so one segment of the URL is always one component of the path.
 */
#include "web/web_path.h"

#include "iotp/iotp_hex.h"

#include <string.h>

/* Check the segment just written at out[start, end). */
static int check_segment(const char *out, size_t start, size_t end)
{
    size_t n = end - start;
    if (n == 0)
        return -400;
    if ((n == 1 && out[start] == '.') || (n == 2 && out[start] == '.' && out[start + 1] == '.'))
        return -400;
    if (out[start] == '.')
        return -404;
    return 0;
}

int web_path_from_target(const char *target, size_t len, char *out, size_t outlen, bool *directory)
{
    const char *q = memchr(target, '?', len);
    if (q)
        len = (size_t)(q - target);
    *directory = false;
    if (outlen == 0)
        return -414;
    if (len == 0 || target[0] != '/')
        return -400;
    size_t o = 0, seg = 0;
    int rc;
    for (size_t i = 1; i < len; i++) {
        char c = target[i];
        if (c == '/') {
            if ((rc = check_segment(out, seg, o)) < 0)
                return rc;
            if (o + 1 >= outlen)
                return -414;
            out[o++] = '/';
            seg = o;
            continue;
        }
        if (c == '%') {
            uint8_t byte;
            if (i + 2 >= len || iotp_hex_decode(target + i + 1, 2, &byte, 1) != 1)
                return -400;
            c = (char)byte;
            i += 2;
            if (c == '\0' || c == '/')
                return -400;
        }
        if (c == '\\' || c == '#' || (unsigned char)c < 0x20 || c == 0x7f)
            return -400;
        if (o + 1 >= outlen)
            return -414;
        out[o++] = c;
    }
    out[o] = '\0';
    if (o == seg) {
        /* "/" or ".../": a directory (the root when nothing came before). */
        *directory = true;
        return 0;
    }
    return check_segment(out, seg, o);
}
