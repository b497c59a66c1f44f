/*
 * alarm_writer.h - carries the engine's transitions to MariaDB, in order, one db job at a time.
 *
 * The engine emits on the main loop; alarm_writer_add copies the transition into a bounded
 * queue. One job at a time takes up to batch_max of them to a db thread, which stores them in
 * order with alarm_apply (each its own small transaction). A transition the database refuses
 * for good (an unknown tenant, a bad value) is counted as failed and logged, and the queue moves
 * on. When the database is unreachable (IOT_EDB) or busy, the job keeps its place and is retried
 * after retry_ms: nothing is dropped for an outage, only when the queue is full, and then the
 * oldest queued transition goes (counted, logged). Since alarm_apply is idempotent (a raise of an
 * open alarm, a clear of a closed one are no-ops), a transition whose commit was in doubt when a
 * connection died may safely be stored again.
 *
 * Everything here runs on the main loop (the loop whose inbox receives the completions).
 */
#ifndef IOTD_ALARM_WRITER_H
#define IOTD_ALARM_WRITER_H

#include "alarm/engine.h"
#include "db/db.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct alarm_writer alarm_writer_t;

struct alarm_writer_options {
    size_t capacity;   /* transitions queued at most; 0: 4096 */
    size_t batch_max;  /* transitions per db job; 0: 64 */
    unsigned retry_ms; /* wait before retrying after an outage; 0: 1000 */
    /* Once per transition, in order, when it is stored (status 0, alarm_id = the alarm's id,
     * 0 for a clear of an alarm that was not open) or refused for good (status < 0). This is
     * where the caller learns the id to show on streams. May be NULL. */
    void (*applied)(const struct alarm_transition *t, uint64_t alarm_id, int status, void *arg);
    /* Once the writer is gone after alarm_writer_stop: arg is no longer used. May be NULL. */
    void (*released)(void *arg);
    void *arg;
};

/* o may be NULL (defaults). IOT_ENOMEM. */
int alarm_writer_start(alarm_writer_t **out, uv_loop_t *loop, inbox_t *main_inbox, db_pool_t *db,
                       const struct alarm_writer_options *o);
/* Queue a copy of t (see above for a full queue). */
void alarm_writer_add(alarm_writer_t *w, const struct alarm_transition *t);

struct alarm_writer_stats {
    size_t queued;    /* waiting, not counting those at the database */
    size_t in_flight; /* at the database (or waiting for a retry) */
    size_t capacity;
    uint64_t written; /* stored */
    uint64_t failed;  /* refused for good */
    uint64_t dropped; /* pushed out of a full queue, or left over at stop */
    uint64_t retries; /* jobs retried after an outage */
};
void alarm_writer_stats(const alarm_writer_t *w, struct alarm_writer_stats *out);

/* Write what is queued (retrying no more once the database fails), then free; released runs
 * then. Call before db_pool_stop, and keep the loop running until released. */
void alarm_writer_stop(alarm_writer_t *w);

#endif
