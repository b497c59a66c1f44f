/*
 * mime.c - the extension table (see mime.h): what a console of ES modules, styles, images,
 * fonts, a web app manifest and source maps needs.
 */
#include "web/mime.h"

#include <string.h>
#include <strings.h>

static const struct mime_type types[] = {
    {"html", "text/html; charset=utf-8", true},
    {"htm", "text/html; charset=utf-8", true},
    {"js", "text/javascript; charset=utf-8", true},
    {"mjs", "text/javascript; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"json", "application/json", true},
    {"map", "application/json", true},
    {"webmanifest", "application/manifest+json", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"svg", "image/svg+xml", true},
    {"xml", "application/xml", true},
    {"wasm", "application/wasm", true},
    {"png", "image/png", false},
    {"jpg", "image/jpeg", false},
    {"jpeg", "image/jpeg", false},
    {"gif", "image/gif", false},
    {"webp", "image/webp", false},
    {"avif", "image/avif", false},
    {"ico", "image/x-icon", true},
    {"woff", "font/woff", false},
    {"woff2", "font/woff2", false},
    {"ttf", "font/ttf", true},
    {"otf", "font/otf", true},
    {"pdf", "application/pdf", false},
};

static const struct mime_type octet_stream = {"", "application/octet-stream", false};

const struct mime_type *mime_for_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return &octet_stream;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot + 1, types[i].extension) == 0)
            return &types[i];
    return &octet_stream;
}
