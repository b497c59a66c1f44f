/*
 * store.c - the durable event store's main-loop side (see store.h for the design).
 *
 * One operation is in flight at a time (st->op): a write (db job), a spool append (libuv work
 * item: fdatasync must not block the loop, and the db pool cannot run a job without a
 * connection) or a replay (db job that reads the spool). That single slot is what keeps
 * batches, spool appends and replays in order. pump() starts the next operation whenever the
 * slot is free: from the flush timer, the kick (batch_max events waiting), a completion, or the
 * retry timer. The queue and the counters are shared with producers and stats readers under
 * st->lock; everything else is touched only on the main loop (the spool, while an operation
 * runs, only by that operation's thread).
 */
#include "events/store.h"

#include "base/log.h"
#include "db/partitions.h"
#include "events/seq_cache.h"
#include "events/spool.h"
#include "ctl_time.h"
#include "iot_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SPOOL_MAX   (256ull << 20)
#define DEFAULT_QUEUE_MAX   65536
#define DEFAULT_BATCH_MAX   1000
#define DEFAULT_FLUSH_MS    5
#define DEFAULT_AHEAD       7
#define RETRY_FIRST_MS      1000
#define RETRY_MAX_MS        5000
#define MAINTENANCE_MS      (3600 * 1000)
#define STOP_SPOOL_ATTEMPTS 3
#define DEFAULT_DEADLINE_MS 5000

enum op_kind { OP_WRITE, OP_SPOOL, OP_REPLAY };

struct store_op {
    db_job_t job;
    uv_work_t work;
    event_store_t *st;
    enum op_kind kind;
    struct event **events;
    size_t n;
    int status;
    char err[256];
    /* db jobs: what the write found, applied to the events on the main loop (on_db_done) */
    bool *dup;
    uint64_t *ids;
    bool late; /* missed its deadline: spooled meanwhile, its completion only frees it */
    /* replay */
    uint64_t end, epoch;
    size_t records;
    bool drained;
};

struct maint_job {
    db_job_t job;
    event_store_t *st;
    char err[256];
    unsigned created, dropped;
};

struct event_store {
    struct event_store_options o;
    char *spool_path;
    uv_loop_t *loop;
    inbox_t *inbox;
    db_pool_t *db;
    event_store_done_fn done;
    void *arg;

    pthread_mutex_t lock; /* guards the queue, the counters and the flags producers read */
    struct event **ring;
    size_t head, count, high_water;
    uint64_t queued_bytes; /* spool bytes the queued events would take */
    bool stopping;
    bool spool_active;    /* the spool holds events: new batches go there too */
    uint64_t spool_bytes; /* mirror of spool_size for producers and stats */
    uint64_t spool_pending;
    const char *state;
    uint64_t stored, duplicates, batches, spooled, replayed, db_errors, busy;
    size_t last_batch;
    _Atomic unsigned backoff_ms;

    /* main loop only */
    spool_t *spool;
    seq_cache_t *cache;
    struct store_op *op;   /* in flight */
    struct store_op *held; /* a batch whose spool append failed, retried first */
    unsigned held_attempts;
    /* maint_due: partition maintenance waits for the operation in flight (see pump) */
    bool replay_due, replay_turn, maint_due, maint_in_flight, closing;
    /* Deadlines: db jobs that missed theirs and have not come back (late), one of them a
     * replay (no other replay starts until it is back: it still uses the spool); stalled
     * from the first miss until a db job succeeds again (one log line each way). */
    unsigned late_ops;
    bool late_replay, stalled;
    uint64_t stalled_at;
    uv_timer_t flush_timer, retry_timer, maint_timer, deadline_timer;
    uv_async_t kick;
    int open_handles;
};

static void pump(event_store_t *st);
static void on_flush(uv_timer_t *t);
static void maybe_finish(event_store_t *st);

/* --- producers --------------------------------------------------------------------------- */

int event_store_add(event_store_t *st, struct event *ev)
{
    int rc = IOT_OK;
    bool kick = false;
    uint64_t bytes = spool_record_size(ev);
    pthread_mutex_lock(&st->lock);
    if (st->stopping) {
        rc = IOT_EINVAL;
    } else if (st->count == st->o.queue_max ||
               (st->spool_active &&
                st->spool_bytes + st->queued_bytes + bytes > st->o.spool_max_bytes)) {
        st->busy++;
        rc = IOT_EBUSY;
    } else {
        st->ring[(st->head + st->count) % st->o.queue_max] = event_ref(ev);
        st->count++;
        st->queued_bytes += bytes;
        if (st->count > st->high_water)
            st->high_water = st->count;
        /* Wake the main loop when a batch opens (it arms the flush timer) and when it is full;
         * the events in between cost no wake-up. */
        kick = st->count == 1 || st->count == st->o.batch_max;
    }
    pthread_mutex_unlock(&st->lock);
    if (kick)
        uv_async_send(&st->kick);
    return rc;
}

uint32_t event_store_retry_s(const event_store_t *st)
{
    unsigned ms = atomic_load(&((event_store_t *)st)->backoff_ms);
    return ms < 1000 ? 1 : (ms + 999) / 1000;
}

void event_store_stats(event_store_t *st, struct event_store_stats *out)
{
    pthread_mutex_lock(&st->lock);
    *out = (struct event_store_stats){
        .queued = st->count,
        .high_water = st->high_water,
        .capacity = st->o.queue_max,
        .stored = st->stored,
        .duplicates = st->duplicates,
        .batches = st->batches,
        .spooled = st->spooled,
        .replayed = st->replayed,
        .spool_bytes = st->spool_bytes,
        .spool_pending = st->spool_pending,
        .db_errors = st->db_errors,
        .busy = st->busy,
        .last_batch = st->last_batch,
        .state = st->state,
    };
    pthread_mutex_unlock(&st->lock);
}

/* --- operations -------------------------------------------------------------------------- */

static struct store_op *op_new(event_store_t *st, enum op_kind kind)
{
    struct store_op *op = calloc(1, sizeof(*op));
    if (op) {
        op->st = st;
        op->kind = kind;
    }
    return op;
}

static void op_free(struct store_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->n; i++)
        event_unref(op->events[i]);
    free(op->events);
    free(op->dup);
    free(op->ids);
    free(op);
}

/* Move up to batch_max queued events into a new operation (NULL: none, or out of memory). */
static struct store_op *take(event_store_t *st, enum op_kind kind)
{
    struct store_op *op = op_new(st, kind);
    if (!op)
        return NULL;
    pthread_mutex_lock(&st->lock);
    size_t n = st->count < st->o.batch_max ? st->count : st->o.batch_max;
    if (n)
        op->events = malloc(n * sizeof(*op->events));
    if (!op->events) {
        pthread_mutex_unlock(&st->lock);
        free(op);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct event *ev = st->ring[(st->head + i) % st->o.queue_max];
        op->events[i] = ev;
        st->queued_bytes -= spool_record_size(ev);
    }
    st->head = (st->head + n) % st->o.queue_max;
    st->count -= n;
    op->n = n;
    pthread_mutex_unlock(&st->lock);
    return op;
}

/* Hand a durable batch to the user, then drop it. */
static void complete(event_store_t *st, struct store_op *op)
{
    if (st->done && op->n)
        st->done(op->events, op->n, st->arg);
    op_free(op);
}

static void set_state(event_store_t *st, const char *state)
{
    pthread_mutex_lock(&st->lock);
    st->state = state;
    st->spool_bytes = spool_size(st->spool);
    st->spool_pending = spool_pending(st->spool);
    st->spool_active = st->spool_bytes > 0;
    pthread_mutex_unlock(&st->lock);
}

static void on_retry(uv_timer_t *t);

/* Try again later: 1 s, doubling up to 5 s while failures go on. */
static void schedule_retry(event_store_t *st)
{
    unsigned ms = atomic_load(&st->backoff_ms);
    ms = ms == 0 ? RETRY_FIRST_MS : (ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ms * 2);
    atomic_store(&st->backoff_ms, ms);
    uv_timer_start(&st->retry_timer, on_retry, ms, 0);
}

static void on_db_done(inbox_msg_t *msg, void *loop_data);
static void spool_work(uv_work_t *w);
static void on_spool_done(uv_work_t *w, int status);

/* On a db thread. The events are only read here (they may be spooled and acknowledged on
 * the main loop meanwhile, if this misses its deadline); what the write finds goes to
 * op->dup and op->ids. */
static int db_run(db_job_t *job, MYSQL *conn)
{
    struct store_op *op = container_of(job, struct store_op, job);
    event_store_t *st = op->st;
    if (op->kind == OP_REPLAY && !op->events) {
        /* The spool is this operation's alone until it completes (or misses its deadline:
         * then the epoch keeps a late consume from recording the wrong thing). The pool may
         * run us twice (reconnect): the events are read once. */
        int rc = spool_read_epoch(st->spool, st->o.batch_max, &op->events, &op->n, &op->end,
                                  &op->records, &op->epoch);
        if (rc != IOT_OK) {
            snprintf(op->err, sizeof op->err, "events: spool read failed");
            return rc;
        }
    }
    if (!op->dup) {
        op->dup = calloc(op->n ? op->n : 1, sizeof(*op->dup));
        op->ids = calloc(op->n ? op->n : 1, sizeof(*op->ids));
        if (!op->dup || !op->ids) {
            snprintf(op->err, sizeof op->err, "events: out of memory");
            return IOT_ENOMEM;
        }
    }
    op->err[0] = '\0';
    int rc =
        event_store_write_out(conn, op->events, op->n, op->dup, op->ids, op->err, sizeof op->err);
    if (rc == IOT_OK && op->kind == OP_REPLAY) {
        op->drained = op->end >= spool_size(st->spool);
        if (spool_consume_epoch(st->spool, op->epoch, op->end, op->records) != IOT_OK) {
            snprintf(op->err, sizeof op->err, "events: spool offset update failed");
            return IOT_EIO; /* stored; replaying it again only meets the dedup */
        }
    }
    return rc;
}

static void on_deadline(uv_timer_t *t);

static void submit_db(event_store_t *st, struct store_op *op)
{
    op->job = (db_job_t){.run = db_run, .reply_to = st->inbox};
    op->job.done.handle = on_db_done;
    st->op = op;
    uv_timer_start(&st->deadline_timer, on_deadline, st->o.deadline_ms, 0);
    if (db_pool_submit(st->db, &op->job) != 0) {
        /* The pool is full or stopping: for a write, that is "database unavailable". */
        op->job.status = IOT_EBUSY;
        snprintf(op->err, sizeof op->err, "events: the db queue refused the job");
        on_db_done(&op->job.done, NULL);
    }
}

/* Mark the batch's retransmissions of durable events (known to the cache, or earlier in the
 * batch) as duplicates: they are acknowledged without being spooled. */
static void mark_cached_duplicates(event_store_t *st, struct store_op *op)
{
    seq_cache_t *batch = seq_cache_new(); /* this batch's running maxima */
    for (size_t i = 0; i < op->n; i++) {
        struct event *ev = op->events[i];
        uint32_t last;
        bool known = seq_cache_get(st->cache, ev->device, ev->incarnation, &last);
        uint32_t in_batch;
        if (batch && seq_cache_get(batch, ev->device, ev->incarnation, &in_batch) &&
            (!known || in_batch > last)) {
            last = in_batch;
            known = true;
        }
        ev->duplicate = known && ev->seq <= last;
        ev->id = 0;
        if (!ev->duplicate && batch)
            seq_cache_raise(batch, ev->device, ev->incarnation, ev->seq);
    }
    seq_cache_free(batch);
}

static void submit_spool(event_store_t *st, struct store_op *op)
{
    op->kind = OP_SPOOL;
    op->status = 0;
    mark_cached_duplicates(st, op);
    op->work.data = op;
    st->op = op;
    uv_queue_work(st->loop, &op->work, spool_work, on_spool_done);
}

static void spool_work(uv_work_t *w)
{
    struct store_op *op = w->data;
    size_t n = 0;
    struct event **keep = malloc((op->n ? op->n : 1) * sizeof(*keep));
    if (!keep) {
        op->status = IOT_ENOMEM;
        return;
    }
    for (size_t i = 0; i < op->n; i++)
        if (!op->events[i]->duplicate)
            keep[n++] = op->events[i];
    op->records = n;
    op->status = spool_append(op->st->spool, keep, n);
    free(keep);
}

/* A batch the database took: the cache learns each device's mark from it. A stored event's
 * seq WAS above its incarnation's mark and is the mark now (a device's stored seqs rise within
 * a batch, so the last one wins): set, even lower than the cache's value. An event of an
 * earlier incarnation changes nothing (seq_cache_set ignores it, sql/011). A duplicate only
 * says the mark is at least its seq. */
static void count_batch(event_store_t *st, struct store_op *op, bool replay)
{
    size_t dups = 0;
    for (size_t i = 0; i < op->n; i++) {
        const struct event *ev = op->events[i];
        dups += ev->duplicate;
        if (ev->duplicate)
            seq_cache_raise(st->cache, ev->device, ev->incarnation, ev->seq);
        else
            seq_cache_set(st->cache, ev->device, ev->incarnation, ev->seq);
    }
    pthread_mutex_lock(&st->lock);
    st->stored += op->n - dups;
    st->duplicates += dups;
    st->batches++;
    st->last_batch = op->n;
    if (replay)
        st->replayed += op->n - dups;
    pthread_mutex_unlock(&st->lock);
}

static void on_spool_done(uv_work_t *w, int status)
{
    struct store_op *op = w->data;
    event_store_t *st = op->st;
    (void)status;
    st->op = NULL;
    if (op->status != IOT_OK) {
        /* Not durable, so not acknowledged: hold the batch and try again; it goes first. */
        st->held = op;
        st->held_attempts++;
        log_error("events: spool append of %zu events failed (%s); retrying", op->n,
                  iot_strerror(op->status));
        if (st->stopping && st->held_attempts >= STOP_SPOOL_ATTEMPTS) {
            log_error("events: stopping with %zu events neither stored nor spooled (never "
                      "acknowledged; their devices retransmit them)",
                      op->n);
            st->held = NULL;
            op_free(op);
        } else {
            schedule_retry(st);
        }
        maybe_finish(st);
        return;
    }
    st->held_attempts = 0;
    size_t dups = 0;
    for (size_t i = 0; i < op->n; i++) {
        dups += op->events[i]->duplicate;
        seq_cache_raise(st->cache, op->events[i]->device, op->events[i]->incarnation,
                        op->events[i]->seq);
    }
    pthread_mutex_lock(&st->lock);
    st->spooled += op->n - dups;
    st->duplicates += dups;
    pthread_mutex_unlock(&st->lock);
    set_state(st, st->state == NULL || strcmp(st->state, "db") == 0 ? "spool" : st->state);
    complete(st, op);
    pump(st);
    maybe_finish(st);
}

static void on_retry(uv_timer_t *t)
{
    event_store_t *st = t->data;
    if (st->spool_active && !st->held)
        st->replay_due = true;
    pump(st);
}

/* The db job in flight missed its deadline: the database is hung or far too slow. Stop
 * waiting for it: a write's batch goes to the spool now (acknowledged from there; should the
 * late write commit after all, the replay finds its events stored and drops them as
 * duplicates), a replay is left to finish alone, and new batches go to the spool. */
static void on_deadline(uv_timer_t *t)
{
    event_store_t *st = t->data;
    struct store_op *op = st->op, *copy = NULL;
    if (!op || (op->kind != OP_WRITE && op->kind != OP_REPLAY))
        return;
    if (op->kind == OP_WRITE) {
        copy = op_new(st, OP_SPOOL);
        if (copy && !(copy->events = malloc((op->n ? op->n : 1) * sizeof(*copy->events)))) {
            free(copy);
            copy = NULL;
        }
        if (!copy) { /* out of memory: keep waiting, try again in a second */
            uv_timer_start(&st->deadline_timer, on_deadline, 1000, 0);
            return;
        }
        for (size_t i = 0; i < op->n; i++)
            copy->events[i] = event_ref(op->events[i]);
        copy->n = op->n;
    }
    op->late = true;
    st->late_ops++;
    st->late_replay |= op->kind == OP_REPLAY;
    st->op = NULL;
    pthread_mutex_lock(&st->lock);
    st->db_errors++;
    pthread_mutex_unlock(&st->lock);
    if (!st->stalled) {
        st->stalled = true;
        st->stalled_at = uv_now(st->loop) - st->o.deadline_ms;
        log_warn("events: the database has not answered %s of %zu events within %u ms "
                 "([database] timeout_ms): hung or overloaded; events go to the spool until it "
                 "answers again",
                 op->kind == OP_WRITE ? "a batch" : "the replay", op->n, st->o.deadline_ms);
    }
    set_state(st, "spool");
    schedule_retry(st);
    if (copy)
        submit_spool(st, copy); /* keeps the slot: order */
    else
        pump(st);
}

/* A db job succeeded: if the database had missed a deadline, it is back. */
static void db_answered(event_store_t *st)
{
    if (!st->stalled)
        return;
    st->stalled = false;
    log_info("events: the database answers again (stalled for %llu ms)",
             (unsigned long long)(uv_now(st->loop) - st->stalled_at));
}

/* A db job that missed its deadline came back at last. Main loop. */
static void on_late_done(event_store_t *st, struct store_op *op, int status)
{
    st->late_ops--;
    if (op->kind == OP_REPLAY) {
        /* Next replay: now if this one went through, else after the retry's backoff (not
         * at once: a replay in the slot holds new batches up until its deadline). */
        st->late_replay = false;
        st->replay_due = status == IOT_OK;
        if (status != IOT_OK)
            schedule_retry(st);
        /* It may have replayed the spool to its end (and emptied it). */
        bool drained = status == IOT_OK && spool_size(st->spool) == 0;
        set_state(st, drained ? "db" : st->state);
        if (drained)
            log_info("events: spool replayed, storing in the database again");
    }
    if (status == IOT_OK) {
        log_info("events: a late %s of %zu events was stored after all%s",
                 op->kind == OP_WRITE ? "batch" : "replay", op->n,
                 op->kind == OP_WRITE ? " (its copy in the spool is a duplicate at replay)" : "");
        db_answered(st);
    }
    op_free(op);
    pump(st);
    maybe_finish(st);
}

static void on_db_done(inbox_msg_t *msg, void *loop_data)
{
    struct store_op *op = container_of(msg, struct store_op, job.done);
    event_store_t *st = op->st;
    int status = op->job.status;
    (void)loop_data;
    if (op->late) {
        on_late_done(st, op, status);
        return;
    }
    uv_timer_stop(&st->deadline_timer);
    st->op = NULL;
    if (status == IOT_OK) {
        for (size_t i = 0; i < op->n; i++) {
            op->events[i]->duplicate = op->dup[i];
            op->events[i]->id = op->ids[i];
        }
        db_answered(st);
    }
    if (status != IOT_OK) {
        pthread_mutex_lock(&st->lock);
        st->db_errors++;
        pthread_mutex_unlock(&st->lock);
    }
    if (op->kind == OP_WRITE) {
        if (status == IOT_OK) {
            count_batch(st, op, false);
            complete(st, op);
        } else {
            log_warn("events: storing a batch of %zu failed (%s: %s); spooling it", op->n,
                     iot_error_name(status), op->err[0] ? op->err : "cannot connect");
            set_state(st, "spool");
            schedule_retry(st);   /* the replay that will drain the spool */
            submit_spool(st, op); /* keeps the slot: order */
            return;
        }
    } else { /* OP_REPLAY: these events were acknowledged when they were spooled */
        if (status == IOT_OK) {
            count_batch(st, op, true);
            atomic_store(&st->backoff_ms, 0);
            st->replay_due = !op->drained;
            set_state(st, op->drained ? "db" : "replay");
            if (op->drained)
                log_info("events: spool replayed, storing in the database again");
        } else {
            if (status != IOT_EDB)
                log_warn("events: replay failed (%s: %s); retrying", iot_error_name(status),
                         op->err);
            st->replay_due = false;
            set_state(st, "spool");
            schedule_retry(st);
        }
        op_free(op);
    }
    pump(st);
    maybe_finish(st);
}

static void maint_submit(event_store_t *st);

/* Start the next operation if the slot is free. Partition maintenance takes the slot alone,
 * so that its ALTER TABLE never runs beside this store's INSERTs: once (test_store, under load)
 * a batch INSERT that ran as maintenance finished failed with a duplicate AUTO_INCREMENT id
 * (MariaDB 10.11, partitioned table), and so did every retry of it. Not reproduced since;
 * serialized, the two cannot meet, and the ALTER would have held the INSERTs up anyway. */
static void pump(event_store_t *st)
{
    if (st->op || st->closing || st->maint_in_flight)
        return;
    if (st->maint_due) {
        maint_submit(st);
        if (st->maint_in_flight)
            return;
    }
    if (st->held) {
        struct store_op *op = st->held;
        st->held = NULL;
        submit_spool(st, op);
        return;
    }
    pthread_mutex_lock(&st->lock);
    bool have = st->count > 0, stopping = st->stopping;
    pthread_mutex_unlock(&st->lock);
    if (st->spool_active) {
        if (st->replay_due && !stopping && !st->late_replay && (!have || st->replay_turn)) {
            struct store_op *op = op_new(st, OP_REPLAY);
            if (!op)
                return;
            st->replay_turn = false;
            st->replay_due = false;
            submit_db(st, op);
            return;
        }
        if (have) {
            struct store_op *op = take(st, OP_SPOOL);
            if (op) {
                st->replay_turn = true;
                submit_spool(st, op);
            }
        }
        return;
    }
    if (have) {
        struct store_op *op = take(st, OP_WRITE);
        if (op)
            submit_db(st, op);
    }
}

/* The flush timer is one-shot, armed when a batch opens: an idle store does not wake the main
 * loop every flush_ms. */
static void arm_flush(event_store_t *st)
{
    if (!st->closing && !uv_is_active((uv_handle_t *)&st->flush_timer))
        uv_timer_start(&st->flush_timer, on_flush, st->o.flush_ms, 0);
}

static bool waiting(event_store_t *st, bool *full)
{
    pthread_mutex_lock(&st->lock);
    bool have = st->count > 0;
    *full = st->count >= st->o.batch_max;
    pthread_mutex_unlock(&st->lock);
    return have;
}

static void on_flush(uv_timer_t *t)
{
    event_store_t *st = t->data;
    bool full;
    pump(st);
    /* Still waiting with the slot free (pump could not take them): try again later. With an
     * operation in flight, its completion pumps. */
    if (!st->op && waiting(st, &full))
        arm_flush(st);
}

static void on_kick(uv_async_t *a)
{
    event_store_t *st = a->data;
    bool full;
    if (!waiting(st, &full))
        return;
    if (full)
        pump(st);
    else
        arm_flush(st);
}

/* --- partition maintenance --------------------------------------------------------------- */

static int maint_run(db_job_t *job, MYSQL *conn)
{
    struct maint_job *m = container_of(job, struct maint_job, job);
    event_store_t *st = m->st;
    return db_partitions_maintain(conn, "events", ctl_wall_ms(), st->o.retention_days,
                                  st->o.partitions_ahead, &m->created, &m->dropped, m->err,
                                  sizeof m->err);
}

static void on_maint_done(inbox_msg_t *msg, void *loop_data)
{
    struct maint_job *m = container_of(msg, struct maint_job, job.done);
    event_store_t *st = m->st;
    (void)loop_data;
    if (m->job.status != IOT_OK)
        log_warn("events: partition maintenance failed (%s): %s; retrying in an hour",
                 iot_error_name(m->job.status), m->err);
    if (m->created)
        log_info("events: created %u day partitions up to %u days ahead", m->created,
                 st->o.partitions_ahead);
    if (m->dropped)
        log_info("events: dropped %u day partitions older than %u days", m->dropped,
                 st->o.retention_days);
    free(m);
    st->maint_in_flight = false;
    pump(st);
    maybe_finish(st);
}

/* From pump, with the slot free: maintenance now (maint_in_flight), unless it cannot start. */
static void maint_submit(event_store_t *st)
{
    st->maint_due = false;
    pthread_mutex_lock(&st->lock);
    bool stopping = st->stopping;
    pthread_mutex_unlock(&st->lock);
    if (stopping)
        return; /* the next start does it */
    struct maint_job *m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->st = st;
    m->job = (db_job_t){.run = maint_run, .reply_to = st->inbox};
    m->job.done.handle = on_maint_done;
    if (db_pool_submit(st->db, &m->job) != 0) {
        free(m);
        return;
    }
    st->maint_in_flight = true;
}

static void on_maint_timer(uv_timer_t *t)
{
    event_store_t *st = t->data;
    if (st->maint_in_flight || st->o.no_maintenance)
        return;
    st->maint_due = true;
    pump(st);
}

/* --- start and stop ---------------------------------------------------------------------- */

static void store_free(event_store_t *st)
{
    void (*stopped)(void *) = st->o.stopped;
    void *arg = st->arg;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->count; i++)
        event_unref(st->ring[(st->head + i) % st->o.queue_max]);
    pthread_mutex_unlock(&st->lock);
    op_free(st->held);
    spool_close(st->spool);
    seq_cache_free(st->cache);
    pthread_mutex_destroy(&st->lock);
    free(st->ring);
    free(st->spool_path);
    free(st);
    if (stopped)
        stopped(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    event_store_t *st = h->data;
    if (--st->open_handles == 0)
        store_free(st);
}

static void maybe_finish(event_store_t *st)
{
    pthread_mutex_lock(&st->lock);
    bool idle = st->stopping && st->count == 0;
    pthread_mutex_unlock(&st->lock);
    if (!idle || st->op || st->held || st->maint_in_flight || st->late_ops || st->closing)
        return;
    st->closing = true;
    uv_close((uv_handle_t *)&st->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&st->flush_timer, on_handle_closed);
    uv_close((uv_handle_t *)&st->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&st->maint_timer, on_handle_closed);
    uv_close((uv_handle_t *)&st->kick, on_handle_closed);
}

int event_store_start(event_store_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                      const struct event_store_options *o, event_store_done_fn done, void *arg,
                      char *err, size_t errlen)
{
    int rc = IOT_ENOMEM;
    *out = NULL;
    if (!o->spool_path || !*o->spool_path) {
        snprintf(err, errlen, "events: a spool path is required");
        return IOT_EINVAL;
    }
    event_store_t *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "events: out of memory");
        return IOT_ENOMEM;
    }
    st->o = *o;
    if (!st->o.spool_max_bytes)
        st->o.spool_max_bytes = DEFAULT_SPOOL_MAX;
    if (!st->o.queue_max)
        st->o.queue_max = DEFAULT_QUEUE_MAX;
    if (!st->o.batch_max)
        st->o.batch_max = DEFAULT_BATCH_MAX;
    if (!st->o.flush_ms)
        st->o.flush_ms = DEFAULT_FLUSH_MS;
    if (!st->o.partitions_ahead)
        st->o.partitions_ahead = DEFAULT_AHEAD;
    if (!st->o.deadline_ms)
        st->o.deadline_ms = DEFAULT_DEADLINE_MS;
    if (st->o.batch_max > st->o.queue_max)
        st->o.batch_max = st->o.queue_max;
    st->spool_path = strdup(o->spool_path);
    st->o.spool_path = st->spool_path;
    st->ring = calloc(st->o.queue_max, sizeof(*st->ring));
    st->cache = seq_cache_new();
    if (!st->spool_path || !st->ring || !st->cache) {
        snprintf(err, errlen, "events: out of memory");
        goto fail;
    }
    if ((rc = spool_open(&st->spool, st->spool_path, err, errlen)) != IOT_OK)
        goto fail;
    pthread_mutex_init(&st->lock, NULL);
    st->loop = main_loop;
    st->inbox = main_inbox;
    st->db = db;
    st->done = done;
    st->arg = arg;
    atomic_init(&st->backoff_ms, 0);
    set_state(st, "db");
    if (st->spool_active) {
        log_info("events: replaying %llu spooled events (%llu bytes) before anything else",
                 (unsigned long long)st->spool_pending, (unsigned long long)st->spool_bytes);
        st->replay_due = true;
        set_state(st, "replay");
    }
    uv_timer_init(main_loop, &st->flush_timer);
    uv_timer_init(main_loop, &st->retry_timer);
    uv_timer_init(main_loop, &st->maint_timer);
    uv_timer_init(main_loop, &st->deadline_timer);
    uv_async_init(main_loop, &st->kick, on_kick);
    st->flush_timer.data = st->retry_timer.data = st->maint_timer.data = st->kick.data = st;
    st->deadline_timer.data = st;
    st->open_handles = 5;
    if (!st->o.no_maintenance)
        uv_timer_start(&st->maint_timer, on_maint_timer, 0, MAINTENANCE_MS);
    pump(st);
    *out = st;
    return IOT_OK;
fail:
    spool_close(st->spool);
    seq_cache_free(st->cache);
    free(st->ring);
    free(st->spool_path);
    free(st);
    return rc;
}

void event_store_stop(event_store_t *st)
{
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_mutex_unlock(&st->lock);
    uv_timer_stop(&st->maint_timer);
    /* The flush timer keeps pumping until the queue is drained (a batch at a time). */
    pump(st);
    maybe_finish(st);
}
