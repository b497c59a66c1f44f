/*
 * web_path.h - from a request target to a file path under the web root, refusing every way
 * out of it. Pure (no file system access): what the file system adds (symbolic links) is
 * checked where the file is opened (static_files.c).
 */
#ifndef IOTD_WEB_PATH_H
#define IOTD_WEB_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Turn target[0, len) ("/js/app.js?v=2") into a path relative to the root ("js/app.js"; ""
 * for the root itself) in out, NUL-terminated; *directory says whether it names a directory
 * (ends in '/': the caller serves its index.html). The query is dropped; percent escapes are
 * decoded once. Returns 0, or a negative HTTP status:
 *  -400 a target not in origin form ("/..."), a bad or decoded-NUL escape, a '\' or an
 *       encoded '/', an empty segment ("//"), or a "." or ".." segment (plain or encoded);
 *  -404 a segment starting with '.' (".git", ".env": hidden files are never served);
 *  -414 the path does not fit in outlen. */
int web_path_from_target(const char *target, size_t len, char *out, size_t outlen, bool *directory);

#endif
