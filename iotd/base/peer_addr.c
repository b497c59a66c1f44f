/*
 * peer_addr.c - remote addresses, binary and printed (see peer_addr.h).
 */
#include "base/peer_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void peer_addr_from_sockaddr(struct peer_addr *out, const struct sockaddr *sa)
{
    *out = (struct peer_addr){0};
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        out->port = ntohs(a6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
            memcpy(out->ip, &a6->sin6_addr.s6_addr[12], 4);
            out->family = AF_INET;
        } else {
            memcpy(out->ip, &a6->sin6_addr, 16);
            out->family = AF_INET6;
        }
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        out->port = ntohs(a4->sin_port);
        memcpy(out->ip, &a4->sin_addr, 4);
        out->family = AF_INET;
    }
}

bool peer_addr_is_loopback(const struct peer_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if (a->family == AF_INET)
        return a->ip[0] == 127;
    return a->family == AF_INET6 && memcmp(a->ip, v6_loopback, 16) == 0;
}

const char *peer_addr_format(const struct peer_addr *a, char out[PEER_ADDR_TEXT])
{
    char host[40] = "?";
    if (a->family == AF_INET) {
        inet_ntop(AF_INET, a->ip, host, sizeof(host));
        snprintf(out, PEER_ADDR_TEXT, "%s:%u", host, (unsigned)a->port);
    } else if (a->family == AF_INET6) {
        inet_ntop(AF_INET6, a->ip, host, sizeof(host));
        snprintf(out, PEER_ADDR_TEXT, "[%s]:%u", host, (unsigned)a->port);
    } else {
        snprintf(out, PEER_ADDR_TEXT, "%s", a->empty ? "" : "unknown");
    }
    return out;
}

bool peer_addr_parse(struct peer_addr *out, const char *text)
{
    char host[PEER_ADDR_TEXT];
    const char *colon = strrchr(text, ':');
    *out = (struct peer_addr){0};
    if (text[0] == '\0') {
        out->empty = true;
        return true;
    }
    if (strcmp(text, "unknown") == 0)
        return true;
    if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
        return false;
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port > 65535)
        return false;
    size_t len = (size_t)(colon - text);
    bool bracketed = text[0] == '[' && len >= 2 && text[len - 1] == ']';
    if (bracketed) {
        memcpy(host, text + 1, len - 2);
        host[len - 2] = '\0';
    } else {
        memcpy(host, text, len);
        host[len] = '\0';
    }
    out->port = (uint16_t)port;
    if (!bracketed && inet_pton(AF_INET, host, out->ip) == 1)
        out->family = AF_INET;
    else if (bracketed && inet_pton(AF_INET6, host, out->ip) == 1)
        out->family = AF_INET6;
    else
        return false;
    return true;
}
