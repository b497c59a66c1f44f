/*
 * backup.h - a consistent snapshot of iotd's database and secret key in one file, and its
 * restore (iotctl backup, iotd -R; see iotd(8), BACKUP AND RESTORE).
 *
 * The file is text: a header of "-- key: value" lines (format version, schema version, the
 * secret key in hex), then for each table a "-- table: NAME" line and INSERT statements of its
 * rows, one statement per line (values escaped, binary columns in hex), and "-- end" last. It
 * is taken in one REPEATABLE READ transaction started WITH CONSISTENT SNAPSHOT, so it is what
 * the database held at one instant while iotd goes on writing; it holds the data of every
 * table, not its definition: restore migrates a fresh database to the same schema version and
 * loads the rows into it.
 */
#ifndef IOTD_DB_BACKUP_H
#define IOTD_DB_BACKUP_H

#include <mysql.h>
#include <stdint.h>
#include <stdio.h>

#define BACKUP_KEY_LEN 32

struct backup_summary {
    int schema_version;
    unsigned tables;
    uint64_t rows;
    uint64_t bytes;
};

/* Write the snapshot of conn's database and key to path (absolute; it must not exist), mode
 * 0600, through a temporary file renamed once complete and fsync'ed. On the caller's
 * connection: the transaction is committed and the session left as it was. IOT_EEXIST when
 * path exists, IOT_EINVAL for a relative path, IOT_EIO or IOT_EDB with a sentence in err. */
int backup_write(MYSQL *conn, const char *path, const uint8_t key[BACKUP_KEY_LEN],
                 struct backup_summary *summary, char *err, size_t errlen);

/* Read the header of an open backup file: its schema version and key. IOT_EINVAL with a
 * sentence for a file that is not an iotd backup. Leaves in positioned after the header. */
int backup_read_header(FILE *in, int *schema_version, uint8_t key[BACKUP_KEY_LEN], char *err,
                       size_t errlen);

/* Load the rows of the rest of the file into conn's database, which must be migrated to the
 * backup's schema version and hold no data of its own (each table is emptied first). Foreign
 * keys are checked once everything is in. IOT_EINVAL for a truncated file (no "-- end"). */
int backup_load(MYSQL *conn, FILE *in, struct backup_summary *summary, char *err, size_t errlen);

#endif
