/*
 * allowlist.c - address allowlist (see allowlist.h): each entry is a family, the address
 * bytes and a prefix length; a peer matches when its first prefix bits are the entry's.
 */
#include "web/allowlist.h"

#include "iot_error.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct allow_entry {
    int family;
    uint8_t addr[16];
    unsigned prefix;
};

struct web_allowlist {
    size_t count;
    struct allow_entry entries[];
};

/* Parse "addr" or "addr/prefix" (text is NUL-terminated, trimmed). */
static int parse_entry(char *text, struct allow_entry *e)
{
    char *slash = strchr(text, '/');
    unsigned long prefix = 0;
    if (slash) {
        char *end;
        *slash = '\0';
        prefix = strtoul(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end)
            return IOT_EINVAL;
    }
    if (inet_pton(AF_INET, text, e->addr) == 1)
        e->family = AF_INET;
    else if (inet_pton(AF_INET6, text, e->addr) == 1)
        e->family = AF_INET6;
    else
        return IOT_EINVAL;
    unsigned bits = e->family == AF_INET ? 32 : 128;
    if (slash && prefix > bits)
        return IOT_EINVAL;
    e->prefix = slash ? (unsigned)prefix : bits;
    return 0;
}

int web_allowlist_parse(const char *text, web_allowlist_t **out, char *err, size_t errlen)
{
    size_t max = 1;
    for (const char *p = text; *p; p++)
        max += *p == ',';
    web_allowlist_t *l = calloc(1, sizeof(*l) + max * sizeof(l->entries[0]));
    char *copy = strdup(text);
    int rc = IOT_ENOMEM;
    *out = NULL;
    if (!l || !copy)
        goto out;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok == '\0')
            continue;
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", tok);
        if (parse_entry(tok, &l->entries[l->count]) != 0) {
            snprintf(err, errlen, "'%s' is not an address or address/prefix", shown);
            rc = IOT_EINVAL;
            goto out;
        }
        l->count++;
    }
    *out = l;
    l = NULL;
    rc = 0;
out:
    free(copy);
    free(l);
    return rc;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool web_allowlist_permits(const web_allowlist_t *l, const char *peer)
{
    char host[64];
    uint8_t addr[16];
    int family;
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        peer++;
        n -= 2;
    }
    if (n >= sizeof(host))
        return false;
    memcpy(host, peer, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, addr) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, host, addr) == 1)
        family = AF_INET6;
    else
        return false;
    for (size_t i = 0; i < l->count; i++)
        if (l->entries[i].family == family &&
            prefix_equal(l->entries[i].addr, addr, l->entries[i].prefix))
            return true;
    return false;
}

void web_allowlist_free(web_allowlist_t *l)
{
    free(l);
}
