/*
 * static_files.h - the console's static files under [web] root: GET and HEAD, the type from
 * the extension (mime.h), a strong ETag (size and modification time) answered with 304 on a
 * matching If-None-Match, Cache-Control: no-cache (the console's files are not fingerprinted,
 * so a browser revalidates each and gets a 304 when nothing changed), and gzip when the
 * browser accepts it: a precompressed FILE.gz beside the file (not older than it) when there
 * is one, else compressed on the fly (zlib) for text types above a few hundred bytes.
 *
 * The file must resolve, symbolic links followed, to a regular file inside the root: a link
 * that leads out of the root is a 404, like a missing file (the root itself may be a link).
 * Files are read whole on the io thread: they are small and in the page cache; above
 * STATIC_MAX_FILE a file is refused (500) rather than held in memory.
 */
#ifndef IOTD_WEB_STATIC_FILES_H
#define IOTD_WEB_STATIC_FILES_H

#include "web/http_parser.h"
#include "web/response.h"
#include "web/web_buf.h"

#include <stdbool.h>

#define STATIC_MAX_FILE (8 * 1024 * 1024)
#define STATIC_GZIP_MIN                                                                            \
    256 /* smaller text is sent as it is: the gzip header would eat the gain                       \
         */

struct static_request {
    const char *root; /* the root's real path (realpath), without a trailing '/' */
    const char *path; /* relative to the root, from web_path_from_target */
    bool directory;   /* path names a directory: serve its index.html */
    const struct http_slice *if_none_match, *accept_encoding; /* NULL when absent */
    bool head_only;
};

/* Append the whole response to out; r carries keep_alive, server and now, the rest is filled
 * here. Returns the status answered (200, 304, 404, 500). */
int static_serve(const struct static_request *s, struct http_response *r, struct web_buf *out);

/* Does an If-None-Match value match etag (weak comparison, "*" matches anything)? */
bool static_etag_matches(const struct http_slice *if_none_match, const char *etag);
/* Does an Accept-Encoding value allow gzip (gzip, x-gzip or *, with a q above 0)? */
bool static_accepts_gzip(const struct http_slice *accept_encoding);

#endif
