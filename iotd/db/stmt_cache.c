/*
 * stmt_cache.c - prepared statements kept per db thread (see stmt_cache.h).
 */
#include "db/stmt_cache.h"

#include "db/db.h"
#include "iot_error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define STMT_CACHE_SLOTS 32 /* the event store uses 24, the audit 1 */

struct stmt_cache {
    MYSQL *conn;
    const void *key[STMT_CACHE_SLOTS];
    MYSQL_STMT *stmt[STMT_CACHE_SLOTS];
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_clear(struct stmt_cache *c)
{
    for (int i = 0; i < STMT_CACHE_SLOTS; i++) {
        if (c->stmt[i])
            mysql_stmt_close(c->stmt[i]); /* a connection that is gone: only freed */
        c->stmt[i] = NULL;
        c->key[i] = NULL;
    }
}

static void cache_destroy(void *p)
{
    cache_clear(p);
    free(p);
}

static void cache_key_create(void)
{
    pthread_key_create(&cache_key, cache_destroy);
}

static struct stmt_cache *cache_of(MYSQL *conn)
{
    pthread_once(&cache_once, cache_key_create);
    struct stmt_cache *c = pthread_getspecific(cache_key);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c || pthread_setspecific(cache_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    if (c->conn != conn) {
        cache_clear(c);
        c->conn = conn;
    }
    return c;
}

MYSQL_STMT *stmt_cache_find(MYSQL *conn, const void *key)
{
    struct stmt_cache *c = cache_of(conn);
    for (int i = 0; c && i < STMT_CACHE_SLOTS; i++)
        /* A statement whose connection was closed under it (same address reused) is stale. */
        if (c->key[i] == key && c->stmt[i] && c->stmt[i]->mysql == conn)
            return c->stmt[i];
    return NULL;
}

int stmt_cache_prepare(MYSQL *conn, const void *key, const char *sql, size_t len, MYSQL_STMT **out,
                       char *err, size_t errlen)
{
    struct stmt_cache *c = cache_of(conn);
    int free_slot = -1;
    *out = NULL;
    if (!c)
        return IOT_ENOMEM;
    for (int i = 0; i < STMT_CACHE_SLOTS; i++)
        if (c->key[i] == key || (!c->key[i] && free_slot < 0))
            free_slot = i;
    if (free_slot < 0) {
        snprintf(err, errlen, "statement cache full");
        return IOT_EINTERNAL;
    }
    if (c->stmt[free_slot])
        mysql_stmt_close(c->stmt[free_slot]);
    c->stmt[free_slot] = NULL;
    c->key[free_slot] = NULL;
    MYSQL_STMT *stmt = mysql_stmt_init(conn);
    if (!stmt)
        return IOT_ENOMEM;
    if (mysql_stmt_prepare(stmt, sql, (unsigned long)len) != 0) {
        int rc = db_error_from_errno(mysql_stmt_errno(stmt));
        snprintf(err, errlen, "%s", mysql_stmt_error(stmt));
        mysql_stmt_close(stmt);
        return rc ? rc : IOT_EINTERNAL;
    }
    c->key[free_slot] = key;
    c->stmt[free_slot] = stmt;
    *out = stmt;
    return IOT_OK;
}

void stmt_cache_drop(MYSQL *conn, const void *key)
{
    struct stmt_cache *c = cache_of(conn);
    for (int i = 0; c && i < STMT_CACHE_SLOTS; i++) {
        if (c->key[i] == key) {
            if (c->stmt[i])
                mysql_stmt_close(c->stmt[i]);
            c->stmt[i] = NULL;
            c->key[i] = NULL;
        }
    }
}

void stmt_cache_release(void)
{
    pthread_once(&cache_once, cache_key_create);
    struct stmt_cache *c = pthread_getspecific(cache_key);
    if (c) {
        pthread_setspecific(cache_key, NULL);
        cache_destroy(c);
    }
}
