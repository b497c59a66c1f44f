/*
 * stmt_cache.h - prepared statements kept per db thread, for the statements a thread runs
 * many times a second (the relay audit's and the event store's multi-row INSERTs).
 *
 * Preparing a multi-row INSERT costs MariaDB a parse and a plan every time. A db thread owns
 * one connection, so its statements are cached in thread-local storage, keyed by the address
 * of a static object of the caller (one per statement), dropped when the thread's connection
 * changes (a reconnect; libmariadb also detaches the statements of a closed connection, which
 * is checked) and freed when the thread exits.
 */
#ifndef IOTD_STMT_CACHE_H
#define IOTD_STMT_CACHE_H

#include <mysql.h>
#include <stddef.h>

/* The statement of key prepared on conn, or NULL if there is none yet (or it went stale). */
MYSQL_STMT *stmt_cache_find(MYSQL *conn, const void *key);

/* Prepare sql on conn and keep it as key's statement (replacing a stale one). 0, or a
 * negative IOT_E* with MariaDB's message in err (IOT_EDB: the connection failed). */
int stmt_cache_prepare(MYSQL *conn, const void *key, const char *sql, size_t len, MYSQL_STMT **out,
                       char *err, size_t errlen);

/* Forget key's statement (after an execution error left it unusable). */
void stmt_cache_drop(MYSQL *conn, const void *key);

/* Close every statement of the calling thread now, e.g. before a test closes the connection
 * itself (otherwise they are freed when the thread exits). */
void stmt_cache_release(void);

#endif
