/*
 * stmt_cache.h - prepared statements kept per db thread, for the statements a thread runs
 * thousands of times a second (the relay audit's multi-row INSERT).
 *
 * Preparing a 64-row INSERT costs MariaDB a parse and a plan every time; at 100,000 audited
 * messages a second that was a measurable share of the two cores the relay also needs. A db
 * thread owns one connection, so its statements are cached in thread-local storage, keyed by
 * the address of a static object of the caller (one per statement), and dropped when the
 * thread's connection changes (a reconnect) or the thread exits.
 */
#ifndef IOTD_STMT_CACHE_H
#define IOTD_STMT_CACHE_H

#include <mysql.h>
#include <stddef.h>

/* The statement of key for conn, prepared from sql on first use (or after a reconnect).
 * 0, or a negative IOT_E* with MariaDB's message in err (IOT_EDB: the connection failed). */
int stmt_cache_get(MYSQL *conn, const void *key, const char *sql, size_t len, MYSQL_STMT **out,
                   char *err, size_t errlen);

/* Forget key's statement (after an execution error left it unusable). */
void stmt_cache_drop(MYSQL *conn, const void *key);

#endif
