/*
 * store.h - the durable event store: every EVENT and ALARM a device pushes is stored exactly
 * once in MariaDB, or in the on-disk spool while MariaDB is unreachable, before it is
 * acknowledged.
 *
 * Producers (sessions, on any thread) hand events to event_store_add: a short mutex and a
 * bounded queue. A timer on the main loop (every flush_ms, or at once when batch_max events
 * wait) closes a batch and hands it to ONE operation in flight at a time, so batches are
 * durable in the order they were added:
 *  - a db job stores the batch in one transaction: it locks the event_seq rows of the batch's
 *    devices, marks the events whose seq is <= the device's high-water as duplicates, inserts
 *    the others with multi-row prepared INSERTs, raises the high-waters, commits (group commit:
 *    one commit, one redo-log flush, for the whole batch);
 *  - if the database is unreachable (IOT_EDB after the pool's retry) or the transaction fails
 *    otherwise, the same batch is appended to the spool and fdatasync'ed (in libuv's thread
 *    pool, off the loop);
 *  - while the spool holds events not yet replayed, every new batch goes to the spool too
 *    (order), and a retry timer (1 s, backing off to 5 s) submits replay jobs that store the
 *    spool's records in order through the same dedup transaction, then truncate it.
 *  - every db job has a deadline (deadline_ms): a write the database has not answered by then
 *    (hung: SIGSTOPped, a full disk, a network black hole) is not waited for; its batch goes
 *    to the spool as if the write had failed, and a replay past it is left to finish alone
 *    (no other replay starts before it is back). Should the late write commit after all,
 *    the spooled copy meets the dedup at replay: stored once. The log says when the database
 *    misses a deadline and when it answers again.
 * Then, on the main loop, done() gets the durable batch (stored, duplicate, or spooled) and the
 * store drops its references. Events replayed from the spool were handed to done() once, when
 * they were spooled (that is when they were acknowledged and streamed); replay does not call
 * done() again, and their events.id is never reported.
 *
 * While spooling, an in-memory map device -> highest durable seq (filled from what the store
 * wrote, read or spooled) marks retransmissions of already durable events as duplicates, so
 * they are not spooled again; the database's dedup on replay is what correctness rests on.
 *
 * Backpressure: event_store_add returns IOT_EBUSY when queue_max events wait in memory, or,
 * while the spool is in use, when the spool file would exceed spool_max_bytes (it may exceed
 * it by at most the events already accepted when the database failed: accepted events are
 * never dropped). The session then answers ERROR code=busy retry=event_store_retry_s().
 */
#ifndef IOTD_EVENTS_STORE_H
#define IOTD_EVENTS_STORE_H

#include "db/db.h"
#include "events/event.h"
#include "loop/inbox.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct event_store event_store_t;

struct event_store_options {
    const char *spool_path;    /* required, e.g. state_dir/events.spool (copied) */
    uint64_t spool_max_bytes;  /* 0: 256 MiB */
    size_t queue_max;          /* events waiting in memory; 0: 65536 */
    size_t batch_max;          /* events per transaction; 0: 1000 (1: one event per transaction) */
    unsigned flush_ms;         /* longest a batch stays open; 0: 5 */
    unsigned retention_days;   /* days of events kept; 0 = forever */
    unsigned partitions_ahead; /* day partitions created ahead of today; 0: 7 */
    bool no_maintenance;       /* tests: do not run partition maintenance */
    unsigned deadline_ms;      /* longest wait for a db job before spooling; 0: 5000 */
    /* Main loop, may be NULL: the store has stopped and is freed (after event_store_stop);
     * gets the done callback's arg. Until then keep the main loop running and the db pool
     * up: the store may still submit jobs (the queue is drained a batch at a time). */
    void (*stopped)(void *arg);
};

/* Main loop; the events are durable (stored, duplicate, or spooled); the store unrefs them
 * after it returns (take a reference to keep one). */
typedef void (*event_store_done_fn)(struct event *const *events, size_t n, void *arg);

/* Open (creating) the spool, cut a torn tail off it, schedule its replay when it is not empty,
 * start the timers and the partition maintenance (now, then hourly). IOT_EINVAL, IOT_EIO,
 * IOT_ENOMEM with a sentence in err. Call on the main loop's thread. */
int event_store_start(event_store_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                      const struct event_store_options *o, event_store_done_fn done, void *arg,
                      char *err, size_t errlen);

/* Any thread. Queue ev (the store takes its own reference). IOT_EBUSY when the queue or the
 * spool is full (the caller answers busy), IOT_EINVAL once stopping. */
int event_store_add(event_store_t *st, struct event *ev);

/* Any thread: the delay, in seconds (>= 1), to suggest to a device told busy. */
uint32_t event_store_retry_s(const event_store_t *st);

struct event_store_stats {
    size_t queued, high_water, capacity; /* the in-memory queue */
    uint64_t stored;                     /* events inserted into MariaDB (incl. replayed) */
    uint64_t duplicates;                 /* acknowledged, not stored again */
    uint64_t batches;                    /* transactions committed */
    uint64_t spooled;                    /* events written to the spool */
    uint64_t replayed;                   /* spooled events stored by replay */
    uint64_t spool_bytes;                /* size of the spool file */
    uint64_t spool_pending;              /* spooled events not yet replayed */
    uint64_t db_errors;                  /* failed store or replay jobs */
    uint64_t busy;                       /* event_store_add refusals */
    size_t last_batch;                   /* events in the last committed batch */
    const char *state;                   /* "db", "spool" or "replay" (static string) */
};
/* Any thread. */
void event_store_stats(event_store_t *st, struct event_store_stats *out);

/* Main loop. Write (or spool) what is queued, wait for the operation in flight, then free and
 * call o->stopped: the main loop and the db pool must keep running until then (stop the pool
 * only after stopped ran; a pool that refuses jobs meanwhile makes the rest go to the spool).
 * A replay in progress stops after its batch; the rest is replayed at the next start. */
void event_store_stop(event_store_t *st);

/* History. */
enum event_query_kind { EVENT_QUERY_ANY, EVENT_QUERY_EVENT, EVENT_QUERY_ALARM };
struct event_query {
    const char *tenant; /* required */
    const char *device; /* NULL: any */
    const char *name;   /* NULL: any */
    enum event_query_kind kind;
    int64_t since_ms; /* received at or after; 0: open */
    int64_t until_ms; /* received before; 0: open */
    unsigned limit;   /* 0: 100; at most 10000 */
    /* Keyset paging: only rows after (after_ms, after_id) in the answer's order; after_id 0:
     * from the start. */
    int64_t after_ms;
    uint64_t after_id;
    bool *more; /* not NULL: set to whether rows follow the last one returned */
};
#define EVENT_QUERY_DEFAULT_LIMIT 100
#define EVENT_QUERY_MAX_LIMIT     10000

/* Runs on a db thread. *rows gets a JSON array, oldest first (by received_at, then id), of
 * {"id","time" (RFC 3339 UTC, ms),"ts_ms","device","seq","kind","name","fields":{...}};
 * the caller frees it. IOT_EINVAL (no tenant, limit too large), IOT_EDB, IOT_ENOMEM... with a
 * sentence in err. */
int event_store_query(MYSQL *conn, const struct event_query *q, cJSON **rows, char *err,
                      size_t errlen);

/* Runs on a db thread: store events in one transaction with the dedup by (device, seq), as the
 * store's jobs do; sets each event's duplicate and id (0 when ids cannot be derived). Exposed
 * for tests and benchmarks. */
int event_store_write(MYSQL *conn, struct event *const *events, size_t n, char *err, size_t errlen);
/* The same, leaving the events untouched: dup[i] and ids[i] (arrays of n) get what
 * event_store_write would set, for a caller that applies them on another thread (the store,
 * whose batch may be spooled meanwhile when the database misses its deadline). */
int event_store_write_out(MYSQL *conn, struct event *const *events, size_t n, bool *dup,
                          uint64_t *ids, char *err, size_t errlen);

/* Close the prepared statements this thread cached for its connection (they are otherwise
 * freed when the thread exits). For threads that close their own connection (tests). */
void event_store_thread_release(void);

#endif
