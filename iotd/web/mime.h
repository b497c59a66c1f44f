/*
 * mime.h - the Content-Type of a file from its name's extension, from one table, and whether
 * that type is worth compressing. Unknown extensions are application/octet-stream (and, with
 * X-Content-Type-Options: nosniff on every response, a browser will not guess otherwise).
 */
#ifndef IOTD_WEB_MIME_H
#define IOTD_WEB_MIME_H

#include <stdbool.h>

struct mime_type {
    const char *extension; /* without the dot, lower case: "js" */
    const char *content_type;
    bool compressible; /* text formats gain from gzip; images and fonts are compressed already */
};

/* The entry for path's extension (case-insensitive), or the octet-stream default. Never NULL. */
const struct mime_type *mime_for_path(const char *path);

#endif
