/*
 * partitions.h - day partitions of the append-only history tables (events, relay_audit).
 *
 * Such a table is PARTITION BY RANGE COLUMNS on a DATETIME(3) in UTC, with partitions named
 * pYYYYMMDD holding the rows of that day (VALUES LESS THAN the next day) and pmax above the
 * newest day. Retention is then a cheap DROP PARTITION instead of a huge DELETE, and queries
 * on a time range prune to the days they touch.
 */
#ifndef IOTD_DB_PARTITIONS_H
#define IOTD_DB_PARTITIONS_H

#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

/* Runs on a db thread: create the day partitions of table from the day of now_ms to ahead days
 * later (splitting pmax), and drop the day partitions entirely older than retention_days
 * (0: none). table is one of the product's own names (it is formatted into the SQL).
 * Serialized across iotd processes by a GET_LOCK per table; tolerant of another process having
 * done part of it. *created and *dropped (may be NULL) get the counts. IOT_EBUSY when another
 * process holds the lock for 30 s, IOT_EDB... with a sentence in err. */
int db_partitions_maintain(MYSQL *conn, const char *table, int64_t now_ms, unsigned retention_days,
                           unsigned ahead, unsigned *created, unsigned *dropped, char *err,
                           size_t errlen);

#endif
