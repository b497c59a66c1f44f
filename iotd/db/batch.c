/*
 * batch.c - batched writes off the producers' threads (see batch.h).
 *
 * The ring is sized for bursts (a reconnect storm's worth of history), so it is mapped, not
 * malloc'ed: pages become resident only as records are written, and once the ring has drained
 * after a burst, the pages the burst touched are given back (madvise), so a storm of 10,000
 * connects does not leave megabytes resident that look like memory per device.
 */
#include "db/batch.h"

#include "iot_error.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct batch_job {
    db_job_t job;
    batch_t *batch;
    size_t count;
    unsigned char records[]; /* count * record_size */
};

struct batch {
    struct batch_options o;
    pthread_mutex_t lock;
    unsigned char *ring; /* mapped: ring_bytes */
    size_t ring_bytes;
    size_t head, count;
    size_t touched; /* records written since the ring was last empty at its start */
    uint64_t written, dropped;
    uv_timer_t timer;
    inbox_t *inbox;
    db_pool_t *db;
    bool in_flight;
    bool timer_closed;
};

void batch_add(batch_t *b, const void *record)
{
    pthread_mutex_lock(&b->lock);
    if (b->count == b->o.capacity) {
        b->dropped++;
    } else {
        size_t slot = (b->head + b->count) % b->o.capacity;
        memcpy(b->ring + slot * b->o.record_size, record, b->o.record_size);
        if (slot + 1 > b->touched)
            b->touched = slot + 1;
        b->count++;
    }
    pthread_mutex_unlock(&b->lock);
}

static int batch_job_run(db_job_t *job, MYSQL *conn)
{
    struct batch_job *bj = container_of(job, struct batch_job, job);
    return bj->batch->o.write(conn, bj->records, bj->count, bj->batch->o.arg);
}

static void batch_free(batch_t *b)
{
    void (*release)(void *) = b->o.release;
    void *arg = b->o.arg;
    pthread_mutex_destroy(&b->lock);
    if (b->ring)
        munmap(b->ring, b->ring_bytes);
    free(b);
    if (release)
        release(arg);
}

static void batch_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct batch_job *bj = container_of(msg, struct batch_job, job.done);
    batch_t *b = bj->batch;
    (void)loop_data;
    pthread_mutex_lock(&b->lock);
    if (bj->job.status == 0)
        b->written += bj->count;
    else
        b->dropped += bj->count;
    b->in_flight = false;
    pthread_mutex_unlock(&b->lock);
    free(bj);
    if (b->timer_closed)
        batch_free(b); /* stopped while this batch was at the database */
}

/* The ring is empty: give back the pages a burst touched beyond the first few (the next
 * records land at the start again). Under the lock; the memcpy into the job is done. */
static void release_pages(batch_t *b)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t keep = 16 * page; /* the usual trickle stays resident */
    size_t used = (b->touched * b->o.record_size + page - 1) / page * page;
    if (used > keep && madvise(b->ring + keep, used - keep, MADV_DONTNEED) == 0)
        b->touched = keep / b->o.record_size;
}

/* Move up to a batch out of the ring into a new job (NULL if nothing to do). */
static struct batch_job *take(batch_t *b)
{
    struct batch_job *bj = NULL;
    pthread_mutex_lock(&b->lock);
    if (b->count == 0 || b->in_flight)
        goto out;
    size_t n = b->count < b->o.batch_max ? b->count : b->o.batch_max;
    bj = malloc(sizeof(*bj) + n * b->o.record_size);
    if (!bj)
        goto out;
    bj->batch = b;
    bj->count = n;
    for (size_t i = 0; i < n; i++)
        memcpy(bj->records + i * b->o.record_size,
               b->ring + ((b->head + i) % b->o.capacity) * b->o.record_size, b->o.record_size);
    b->head = (b->head + n) % b->o.capacity;
    b->count -= n;
    /* An empty ring starts over at its beginning: the pages it touches then follow the largest
     * backlog, not the number of records ever written (a ring sized for bursts would otherwise
     * become resident page by page, which looks like memory growing per device). */
    if (b->count == 0) {
        b->head = 0;
        release_pages(b);
    }
    b->in_flight = true;
out:
    pthread_mutex_unlock(&b->lock);
    return bj;
}

static void on_flush(uv_timer_t *timer)
{
    batch_t *b = timer->data;
    struct batch_job *bj = take(b);
    if (!bj)
        return;
    bj->job = (db_job_t){.run = batch_job_run, .reply_to = b->inbox};
    bj->job.done.handle = batch_job_done;
    if (db_pool_submit(b->db, &bj->job) != 0) {
        pthread_mutex_lock(&b->lock);
        b->dropped += bj->count;
        b->in_flight = false;
        pthread_mutex_unlock(&b->lock);
        free(bj);
    }
}

int batch_start(batch_t **out, uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db,
                const struct batch_options *o)
{
    batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return IOT_ENOMEM;
    b->o = *o;
    b->ring_bytes = o->capacity * o->record_size;
    b->ring = mmap(NULL, b->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->ring == MAP_FAILED) {
        b->ring = NULL;
        free(b);
        return IOT_ENOMEM;
    }
    pthread_mutex_init(&b->lock, NULL);
    b->inbox = main_inbox;
    b->db = db;
    uv_timer_init(main_loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, on_flush, o->flush_ms, o->flush_ms);
    *out = b;
    return IOT_OK;
}

void batch_stats(batch_t *b, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    pthread_mutex_lock(&b->lock);
    *written = b->written;
    *dropped = b->dropped;
    *pending = b->count;
    pthread_mutex_unlock(&b->lock);
}

static void on_timer_closed(uv_handle_t *handle)
{
    batch_t *b = handle->data;
    b->timer_closed = true;
    if (!b->in_flight)
        batch_free(b);
}

void batch_stop(batch_t *b)
{
    on_flush(&b->timer);
    uv_close((uv_handle_t *)&b->timer, on_timer_closed);
}
