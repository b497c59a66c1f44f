/*
 * ws_handshake.c - the upgrade checks in RFC 6455's order (see ws_handshake.h); SHA-1 and
 * base64 from OpenSSL's libcrypto.
 */
#include "web/ws_handshake.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_accept_for_key(const struct http_slice *key, char *accept)
{
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1 ||
        EVP_DigestUpdate(md, key->ptr, key->len) != 1 ||
        EVP_DigestUpdate(md, ws_guid, sizeof(ws_guid) - 1) != 1 ||
        EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 20) {
        accept[0] = '\0'; /* no browser will take it: the handshake fails, not the server */
    } else {
        EVP_EncodeBlock((unsigned char *)accept, digest, (int)len);
    }
    EVP_MD_CTX_free(md);
}

/* A Sec-WebSocket-Key is the base64 of 16 bytes: 22 characters and "==". */
static bool key_is_valid(const struct http_slice *key)
{
    if (key->len != 24 || key->ptr[22] != '=' || key->ptr[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        char c = key->ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return true;
}

static bool origin_allowed(const struct ws_handshake *hs, const struct http_request *req,
                           const struct http_slice *origin)
{
    if (!origin)
        return false;
    if (hs->allowed_origins && hs->allowed_origins[0]) {
        struct http_slice list = {hs->allowed_origins, strlen(hs->allowed_origins)}, item;
        size_t pos = 0;
        while (http_list_next(&list, &pos, &item))
            if (item.len == origin->len && strncasecmp(item.ptr, origin->ptr, item.len) == 0)
                return true;
        return false;
    }
    const struct http_slice *host = http_request_header(req, "host");
    char own[512];
    if (!host)
        return false;
    int n = snprintf(own, sizeof(own), "%s://%.*s", hs->scheme, (int)host->len, host->ptr);
    return n > 0 && (size_t)n < sizeof(own) && http_slice_equals(origin, own);
}

int ws_handshake_check(const struct ws_handshake *hs, const struct http_request *req, char *accept)
{
    const struct http_slice *upgrade = http_request_header(req, "upgrade");
    const struct http_slice *connection = http_request_header(req, "connection");
    const struct http_slice *key = http_request_header(req, "sec-websocket-key");
    const struct http_slice *version = http_request_header(req, "sec-websocket-version");
    const struct http_slice *origin = http_request_header(req, "origin");
    if (!http_slice_equals(&req->method, "GET") || req->version_minor != 1 || !upgrade ||
        !http_list_has_token(upgrade, "websocket") || !connection ||
        !http_list_has_token(connection, "upgrade") || !key || !key_is_valid(key))
        return 400;
    if (!version || !http_slice_equals(version, "13"))
        return 426;
    if (!origin_allowed(hs, req, origin))
        return 403;
    ws_accept_for_key(key, accept);
    return 101;
}

bool ws_origin_allowed(const struct ws_handshake *hs, const struct http_request *req)
{
    return origin_allowed(hs, req, http_request_header(req, "origin"));
}
