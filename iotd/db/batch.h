/*
 * batch.h - records written to MariaDB in batches, off the threads that produce them.
 *
 * Producers (any thread) append fixed-size records to a bounded buffer under a short mutex; a
 * timer on the main loop hands everything buffered to a db thread, one job in flight at a
 * time, where write() stores it in chunks of batch_max records (one transaction each, as few
 * round trips as it can). A full buffer drops and counts: a storm of history must not grow
 * iotd's memory. Producers that can wait should, before it comes to that: batch_backlogged
 * says when the database falls behind (the relay then stops reading from senders).
 *
 * With retry_ms, a batch the database could not take (unreachable, lost, hung: IOT_EDB, or
 * the db queue full) is not dropped: it is held and written again every retry_ms (doubling
 * up to 8 times that) until it goes through, resuming after the chunks already committed.
 * Meanwhile producers fill the other buffer, batch_backlogged rises at half of it, and the
 * producers that can wait, wait: an outage costs nothing as long as they do. A chunk whose
 * commit was sent but not answered may be written twice (at-least-once).
 * Used for the connection history and the relay audit.
 */
#ifndef IOTD_BATCH_H
#define IOTD_BATCH_H

#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct batch batch_t;

enum batch_note { BATCH_HELD, BATCH_RESUMED, BATCH_DROPPED };

struct batch_options {
    size_t record_size; /* bytes per record */
    size_t capacity;    /* records waiting at most (besides the batch at the database) */
    size_t batch_max;   /* records per write() */
    unsigned flush_ms;  /* how often the main loop hands a batch over */
    /* Runs on a db thread: store n records; 0 or a negative IOT_E* (the batch is then dropped
     * and counted: history is best effort). The records are the writer's until it returns (it
     * may fill in fields for its binds); a retry after a lost connection gets them again. */
    int (*write)(MYSQL *conn, void *records, size_t n, void *arg);
    /* Runs on the main loop once the writer is gone (after batch_stop and its last batch):
     * arg is no longer used, its owner may free it. May be NULL. */
    void (*release)(void *arg);
    void *arg;
    unsigned retry_ms; /* 0: a failed batch is dropped and counted; else held and retried */
    /* Main loop, may be NULL: what an operator should read in the log (the owner logs it):
     * BATCH_HELD when a batch failed and is held (status: write()'s error, n records held),
     * BATCH_RESUMED when a held batch went through (n: records written by it), BATCH_DROPPED
     * when records were dropped (n since the last note; at most one note per 10 s). */
    void (*note)(enum batch_note what, int status, uint64_t n, void *arg);
};

int batch_start(batch_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                const struct batch_options *o);
/* Thread-safe: copy one record in. */
void batch_add(batch_t *b, const void *record);
/* Thread-safe: one record written in place by fill(slot, arg), under the buffer's lock, so
 * that a producer need not build it on its stack first (and have it copied): fill writes what
 * the record needs and nothing else (the slot holds an old record's bytes), must be short, and
 * must not call the batch. Not called when the record is dropped (full, stopped). */
void batch_add_fill(batch_t *b, void (*fill)(void *slot, const void *arg), const void *arg);
/* Thread-safe, lock-free: true from the moment half the filling buffer's capacity waits
 * (the database did not take the last batch in time) until the next batch is handed over. */
bool batch_backlogged(const batch_t *b);
void batch_stats(batch_t *b, uint64_t *written, uint64_t *dropped, size_t *pending);
/* Hand over what is left at once (records added later are dropped and counted); free once
 * every batch is back. A held batch is tried once more now; if that fails too, it is dropped
 * (and noted). Before the db pool stops: nothing is submitted after this. */
void batch_stop(batch_t *b);

#endif
