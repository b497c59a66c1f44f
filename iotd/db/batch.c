/*
 * batch.c - batched writes off the producers' threads (see batch.h).
 *
 * Two buffers: producers append to the filling one while the other is at the database. A
 * flush swaps them under the lock, so neither the swap nor the producers ever copy or wait
 * behind a batch: copying a busy second's 2,000 records (700 KB) under the lock stalled every
 * relayed message behind it, and showed as the relay's tail latency.
 *
 * The buffers are sized for bursts (a reconnect storm's worth of history), so they are mapped,
 * not malloc'ed: pages become resident only as records are written, and once a flush finds
 * nothing to do, the pages a burst touched are given back (madvise). A storm of 10,000
 * connects thus does not leave megabytes resident that look like memory per device, while
 * steady traffic keeps its pages instead of faulting them in again every flush.
 *
 * A held batch (retry_ms, see batch.h) keeps its job busy, so flush() hands nothing else over
 * until it went through: batches reach the database in order, and the filling buffer's count
 * is what makes batch_backlogged rise and the producers wait.
 */
#include "db/batch.h"

#include "iot_error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A buffer at the database. Each buffer has its job: it is at the database at most once. */
struct batch_job {
    db_job_t job;
    batch_t *batch;
    unsigned char *records;
    size_t count;
    size_t stored;  /* records written so far: a retried run goes on from here */
    size_t counted; /* of those, already added to the batch's written */
    bool busy;      /* submitted or held, completion not handled yet */
    bool held;      /* failed, waiting for the retry timer to be submitted again */
};

struct batch {
    struct batch_options o;
    pthread_mutex_t lock;
    unsigned char *map; /* both buffers: 2 * buffer_bytes */
    size_t buffer_bytes;
    unsigned char *buffer[2];
    size_t touched[2]; /* records written into each buffer since its pages were released */
    unsigned fill;     /* the buffer producers append to */
    size_t count;      /* records in it */
    uint64_t written, dropped;
    bool stopped;             /* batch_stop ran: producers' records are dropped */
    atomic_bool backlogged;   /* count reached capacity / 2 (see batch_backlogged) */
    struct batch_job jobs[2]; /* jobs[i] carries buffer[i] */
    uv_timer_t timer;
    uv_timer_t retry_timer;
    unsigned retry_delay_ms; /* the next retry's delay: retry_ms doubling up to 8 times it */
    bool holding;            /* a batch is held: BATCH_HELD was noted, BATCH_RESUMED is due */
    uint64_t dropped_noted;  /* dropped as of the last BATCH_DROPPED note */
    uint64_t drop_noted_ms;  /* when that note was (uv_now) */
    uv_loop_t *loop;
    inbox_t *inbox;
    db_pool_t *db;
    int open_timers;
};

void batch_add_fill(batch_t *b, void (*fill)(void *slot, const void *arg), const void *arg)
{
    pthread_mutex_lock(&b->lock);
    if (b->count == b->o.capacity || b->stopped) {
        b->dropped++;
    } else {
        fill(b->buffer[b->fill] + b->count * b->o.record_size, arg);
        if (++b->count > b->touched[b->fill])
            b->touched[b->fill] = b->count;
        if (b->count == b->o.capacity / 2)
            atomic_store_explicit(&b->backlogged, true, memory_order_relaxed);
    }
    pthread_mutex_unlock(&b->lock);
}

struct copy_arg {
    const void *record;
    size_t size;
};

static void fill_copy(void *slot, const void *arg)
{
    const struct copy_arg *c = arg;
    memcpy(slot, c->record, c->size);
}

void batch_add(batch_t *b, const void *record)
{
    struct copy_arg c = {record, b->o.record_size};
    batch_add_fill(b, fill_copy, &c);
}

/* On a db thread: the buffer in chunks of batch_max records, one write() (transaction) each. */
static int batch_job_run(db_job_t *job, MYSQL *conn)
{
    struct batch_job *bj = container_of(job, struct batch_job, job);
    batch_t *b = bj->batch;
    while (bj->stored < bj->count) {
        size_t n = bj->count - bj->stored;
        if (n > b->o.batch_max)
            n = b->o.batch_max;
        int rc = b->o.write(conn, bj->records + bj->stored * b->o.record_size, n, b->o.arg);
        if (rc != 0)
            return rc;
        bj->stored += n;
    }
    return IOT_OK;
}

static void batch_free(batch_t *b)
{
    void (*release)(void *) = b->o.release;
    void *arg = b->o.arg;
    pthread_mutex_destroy(&b->lock);
    if (b->map)
        munmap(b->map, 2 * b->buffer_bytes);
    free(b);
    if (release)
        release(arg);
}

/* Give back the pages of buffer i beyond the first few (the usual trickle stays resident).
 * Nobody may be writing into it: the caller holds the lock, or it is not the filling one. */
static void release_pages(batch_t *b, unsigned i)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t keep = 16 * page;
    size_t used = (b->touched[i] * b->o.record_size + page - 1) / page * page;
    if (used > keep && madvise(b->buffer[i] + keep, used - keep, MADV_DONTNEED) == 0)
        b->touched[i] = keep / b->o.record_size;
}

static void batch_job_done(inbox_msg_t *msg, void *loop_data);
static void job_finished(batch_t *b, struct batch_job *bj, int status);

/* Hand a busy job to the db pool; a refusal (queue full, pool stopping) completes it as a
 * failure at once. Main loop. */
static void job_submit(batch_t *b, struct batch_job *bj)
{
    bj->held = false;
    bj->job = (db_job_t){.run = batch_job_run, .reply_to = b->inbox};
    bj->job.done.handle = batch_job_done;
    if (db_pool_submit(b->db, &bj->job) != 0)
        job_finished(b, bj, IOT_EBUSY);
}

/* Submit the filling buffer (under the lock, which is released). */
static void submit_locked(batch_t *b)
{
    struct batch_job *bj = &b->jobs[b->fill];
    bj->records = b->buffer[b->fill];
    bj->count = b->count;
    bj->stored = bj->counted = 0;
    bj->busy = true;
    b->fill ^= 1;
    b->count = 0;
    atomic_store_explicit(&b->backlogged, false, memory_order_relaxed);
    pthread_mutex_unlock(&b->lock);
    job_submit(b, bj);
}

#define DROP_NOTE_MS 10000

/* Tell the owner about records dropped since the last note, at most once per DROP_NOTE_MS
 * unless now. Main loop. */
static void note_drops(batch_t *b, bool now)
{
    pthread_mutex_lock(&b->lock);
    uint64_t dropped = b->dropped;
    pthread_mutex_unlock(&b->lock);
    uint64_t t = uv_now(b->loop);
    if (dropped == b->dropped_noted || !b->o.note ||
        (!now && b->drop_noted_ms && t - b->drop_noted_ms < DROP_NOTE_MS))
        return;
    b->o.note(BATCH_DROPPED, IOT_OK, dropped - b->dropped_noted, b->o.arg);
    b->dropped_noted = dropped;
    b->drop_noted_ms = t;
}

/* Hand the filling buffer to a db thread and switch producers to the other one, unless that
 * one is still at the database. Main loop. */
static void flush(batch_t *b)
{
    note_drops(b, false);
    pthread_mutex_lock(&b->lock);
    if (b->jobs[b->fill ^ 1].busy || b->count == 0) {
        /* Idle for a whole flush period: a past burst's pages are not needed any more. */
        if (b->count == 0 && !b->jobs[0].busy && !b->jobs[1].busy) {
            release_pages(b, 0);
            release_pages(b, 1);
        }
        pthread_mutex_unlock(&b->lock);
        return;
    }
    submit_locked(b);
}

static void free_when_idle(batch_t *b)
{
    if (b->open_timers == 0 && !b->jobs[0].busy && !b->jobs[1].busy) {
        note_drops(b, true);
        batch_free(b);
    }
}

static void on_retry(uv_timer_t *timer)
{
    batch_t *b = timer->data;
    for (int i = 0; i < 2; i++)
        if (b->jobs[i].held)
            job_submit(b, &b->jobs[i]);
}

/* A job came back (or was refused) with status. Main loop. */
static void job_finished(batch_t *b, struct batch_job *bj, int status)
{
    pthread_mutex_lock(&b->lock);
    b->written += bj->stored - bj->counted;
    bj->counted = bj->stored;
    bool stopped = b->stopped;
    bool hold =
        status != IOT_OK && b->o.retry_ms && !stopped && (status == IOT_EDB || status == IOT_EBUSY);
    if (!hold) {
        b->dropped += bj->count - bj->stored;
        bj->busy = false;
    }
    pthread_mutex_unlock(&b->lock);
    if (hold) {
        /* The database is away: keep the records, try again later (batch.h). */
        bj->held = true;
        if (!b->holding && b->o.note)
            b->o.note(BATCH_HELD, status, bj->count - bj->stored, b->o.arg);
        b->holding = true;
        unsigned delay = b->retry_delay_ms ? b->retry_delay_ms : b->o.retry_ms;
        b->retry_delay_ms = delay * 2 > b->o.retry_ms * 8 ? b->o.retry_ms * 8 : delay * 2;
        uv_timer_start(&b->retry_timer, on_retry, delay, 0);
        return;
    }
    if (status == IOT_OK && b->holding) {
        b->holding = false;
        b->retry_delay_ms = 0;
        if (b->o.note)
            b->o.note(BATCH_RESUMED, IOT_OK, bj->count, b->o.arg);
    }
    if (status != IOT_OK)
        note_drops(b, stopped);
    free_when_idle(b);
}

static void batch_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct batch_job *bj = container_of(msg, struct batch_job, job.done);
    (void)loop_data;
    job_finished(bj->batch, bj, bj->job.status);
}

static void on_flush(uv_timer_t *timer)
{
    flush(timer->data);
}

int batch_start(batch_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                const struct batch_options *o)
{
    batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return IOT_ENOMEM;
    b->o = *o;
    b->buffer_bytes = o->capacity * o->record_size;
    b->map =
        mmap(NULL, 2 * b->buffer_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->map == MAP_FAILED) {
        free(b);
        return IOT_ENOMEM;
    }
    b->buffer[0] = b->map;
    b->buffer[1] = b->map + b->buffer_bytes;
    b->jobs[0].batch = b->jobs[1].batch = b;
    pthread_mutex_init(&b->lock, NULL);
    b->loop = main_loop;
    b->inbox = main_inbox;
    b->db = db;
    uv_timer_init(main_loop, &b->timer);
    uv_timer_init(main_loop, &b->retry_timer);
    b->timer.data = b->retry_timer.data = b;
    b->open_timers = 2;
    uv_timer_start(&b->timer, on_flush, o->flush_ms, o->flush_ms);
    *out = b;
    return IOT_OK;
}

bool batch_backlogged(const batch_t *b)
{
    return atomic_load_explicit(&b->backlogged, memory_order_relaxed);
}

void batch_stats(batch_t *b, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    pthread_mutex_lock(&b->lock);
    *written = b->written;
    *dropped = b->dropped;
    *pending = b->count;
    for (int i = 0; i < 2; i++)
        *pending += b->jobs[i].busy ? b->jobs[i].count : 0;
    pthread_mutex_unlock(&b->lock);
}

static void on_timer_closed(uv_handle_t *handle)
{
    batch_t *b = handle->data;
    b->open_timers--;
    free_when_idle(b);
}

/* The last records go now, even with the other buffer still at the database: producers are
 * done (stopped), so nothing needs a buffer to fill any more. Nothing is submitted after this
 * (the pool stops next). */
void batch_stop(batch_t *b)
{
    pthread_mutex_lock(&b->lock);
    b->stopped = true;
    pthread_mutex_unlock(&b->lock);
    /* A held batch goes first, once more (a failure now drops it: nobody retries). */
    uv_timer_stop(&b->retry_timer);
    uv_close((uv_handle_t *)&b->timer, on_timer_closed);
    uv_close((uv_handle_t *)&b->retry_timer, on_timer_closed);
    for (int i = 0; i < 2; i++)
        if (b->jobs[i].held)
            job_submit(b, &b->jobs[i]);
    pthread_mutex_lock(&b->lock);
    if (b->count > 0)
        submit_locked(b);
    else
        pthread_mutex_unlock(&b->lock);
}
