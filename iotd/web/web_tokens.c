/*
 * web_tokens.c - the browsers' session tokens (see web_tokens.h): a plain array under one
 * mutex, scanned linearly. Browsers logged in at once are a few thousand at most, and a scan
 * runs once per login, upgrade or cookie request, so a hash table would buy nothing measurable.
 */
#include "web/web_tokens.h"

#include "iot_error.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct token {
    char value[WEB_TOKEN_LEN + 1];
    char user[WEB_TOKEN_USER_MAX];
    int64_t expires_ms;
    int64_t issued_ms;
    uint64_t family;
    bool ticket;
};

struct web_tokens {
    pthread_mutex_t lock;
    uint32_t ttl_s;
    size_t max, n, cap;
    uint64_t last_family;
    struct token *items;
};

int web_tokens_new(web_tokens_t **out, uint32_t ttl_s, size_t max)
{
    web_tokens_t *t = calloc(1, sizeof(*t));
    *out = NULL;
    if (!t)
        return IOT_ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    t->ttl_s = ttl_s ? ttl_s : 86400;
    t->max = max ? max : WEB_TOKENS_MAX;
    *out = t;
    return 0;
}

void web_tokens_free(web_tokens_t *t)
{
    if (!t)
        return;
    OPENSSL_cleanse(t->items, t->cap * sizeof(*t->items));
    free(t->items);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

uint32_t web_tokens_ttl(const web_tokens_t *t)
{
    return t->ttl_s;
}

static void remove_at(web_tokens_t *t, size_t i)
{
    t->items[i] = t->items[--t->n];
    OPENSSL_cleanse(&t->items[t->n], sizeof(t->items[t->n]));
}

/* Drop what has expired; if still full, the oldest entry. Under the lock. */
static void make_room(web_tokens_t *t, int64_t now_ms)
{
    for (size_t i = 0; i < t->n;)
        if (t->items[i].expires_ms <= now_ms)
            remove_at(t, i);
        else
            i++;
    if (t->n < t->max)
        return;
    size_t oldest = 0;
    for (size_t i = 1; i < t->n; i++)
        if (t->items[i].issued_ms < t->items[oldest].issued_ms)
            oldest = i;
    remove_at(t, oldest);
}

/* The index of the entry whose value is v[0, len), or -1. Under the lock. Every entry is
 * compared in full, in constant time. */
static long find(const web_tokens_t *t, const char *v, size_t len)
{
    long found = -1;
    if (len != WEB_TOKEN_LEN)
        return -1;
    for (size_t i = 0; i < t->n; i++)
        if (CRYPTO_memcmp(t->items[i].value, v, WEB_TOKEN_LEN) == 0)
            found = (long)i;
    return found;
}

/* Add an entry for user with a fresh random value, copied to out. Under the lock. */
static int add(web_tokens_t *t, const char *user, int64_t now_ms, int64_t ttl_ms, bool ticket,
               uint64_t family, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[WEB_TOKEN_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return IOT_EINTERNAL;
    make_room(t, now_ms);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct token *items = realloc(t->items, cap * sizeof(*items));
        if (!items)
            return IOT_ENOMEM;
        t->items = items;
        t->cap = cap;
    }
    struct token *e = &t->items[t->n++];
    memset(e, 0, sizeof(*e));
    for (size_t i = 0; i < sizeof(raw); i++) {
        e->value[2 * i] = hex[raw[i] >> 4];
        e->value[2 * i + 1] = hex[raw[i] & 15];
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    strncpy(e->user, user, sizeof(e->user) - 1);
    e->issued_ms = now_ms;
    e->expires_ms = now_ms + ttl_ms;
    e->ticket = ticket;
    e->family = family;
    memcpy(out, e->value, WEB_TOKEN_LEN + 1);
    return 0;
}

int web_tokens_ticket(web_tokens_t *t, const char *user, int64_t now_ms, char *out,
                      uint64_t *family)
{
    pthread_mutex_lock(&t->lock);
    if (*family == 0)
        *family = ++t->last_family;
    int rc = add(t, user, now_ms, WEB_TICKET_TTL_MS, true, *family, out);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int web_tokens_redeem(web_tokens_t *t, const char *ticket, size_t len, int64_t now_ms, char *out)
{
    char user[WEB_TOKEN_USER_MAX];
    int rc = IOT_ENOTFOUND;
    pthread_mutex_lock(&t->lock);
    long i = find(t, ticket, len);
    if (i >= 0 && t->items[i].ticket) {
        bool live = t->items[i].expires_ms > now_ms;
        uint64_t family = t->items[i].family;
        memcpy(user, t->items[i].user, sizeof(user));
        remove_at(t, (size_t)i); /* used up, or expired: gone either way */
        if (live)
            rc = add(t, user, now_ms, (int64_t)t->ttl_s * 1000, false, family, out);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int web_tokens_lookup(web_tokens_t *t, const char *token, size_t len, int64_t now_ms, char *user,
                      uint64_t *family)
{
    int rc = IOT_ENOTFOUND;
    pthread_mutex_lock(&t->lock);
    long i = find(t, token, len);
    if (i >= 0 && !t->items[i].ticket) {
        if (t->items[i].expires_ms > now_ms) {
            memcpy(user, t->items[i].user, WEB_TOKEN_USER_MAX);
            if (family)
                *family = t->items[i].family;
            rc = 0;
        } else {
            remove_at(t, (size_t)i);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int web_tokens_revoke(web_tokens_t *t, const char *token, size_t len, uint64_t *family)
{
    pthread_mutex_lock(&t->lock);
    long i = find(t, token, len);
    if (i >= 0 && family)
        *family = t->items[i].family;
    if (i >= 0)
        remove_at(t, (size_t)i);
    pthread_mutex_unlock(&t->lock);
    return i >= 0 ? 0 : IOT_ENOTFOUND;
}

/* Whether an entry's user is name, or (tenant) any user of the tenant name. */
static bool user_matches(const char *entry, const char *name, bool tenant)
{
    const char *at = strrchr(entry, '@');
    if (tenant)
        return at && strcmp(at + 1, name) == 0;
    return strcmp(entry, name) == 0;
}

static size_t revoke_matching(web_tokens_t *t, const char *name, bool tenant)
{
    size_t ended = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n;)
        if (user_matches(t->items[i].user, name, tenant)) {
            remove_at(t, i);
            ended++;
        } else {
            i++;
        }
    pthread_mutex_unlock(&t->lock);
    return ended;
}

size_t web_tokens_revoke_user(web_tokens_t *t, const char *user)
{
    return revoke_matching(t, user, false);
}

size_t web_tokens_revoke_tenant(web_tokens_t *t, const char *tenant)
{
    return revoke_matching(t, tenant, true);
}

size_t web_tokens_count(web_tokens_t *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

bool web_cookie_find(const struct http_slice *header, const char *name, struct http_slice *value)
{
    size_t name_len = strlen(name), pos = 0;
    while (pos < header->len) {
        while (pos < header->len && (header->ptr[pos] == ' ' || header->ptr[pos] == ';'))
            pos++;
        size_t start = pos;
        while (pos < header->len && header->ptr[pos] != ';')
            pos++;
        const char *item = header->ptr + start;
        size_t len = pos - start;
        if (len > name_len && item[name_len] == '=' && memcmp(item, name, name_len) == 0) {
            *value = (struct http_slice){item + name_len + 1, len - name_len - 1};
            while (value->len > 0 && value->ptr[value->len - 1] == ' ')
                value->len--;
            return true;
        }
    }
    return false;
}
