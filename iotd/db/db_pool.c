/*
 * db_pool.c - the db threads: a bounded FIFO of jobs served by N threads, each owning one
 * MYSQL connection.
 *
 * A thread opens its connection lazily, on its first job, and drops it when a job reports
 * IOT_EDB (the server went away, was restarted, or killed the session); it then reconnects
 * and runs that job once more, so a single lost connection costs a retry, not an error. If
 * the database stays unreachable the job completes with IOT_EDB and the next job tries again.
 *
 * Completion goes back to the submitter's loop through its inbox with inbox_push_wait: the
 * db thread may block on a full inbox (backpressure), never the loop. One mutex guards the
 * queue and the counters; the number of live connections is an atomic so stats can read it
 * without waking anyone.
 */
#include "db/db.h"

#include "iot_error.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* signalled when a job is queued or the pool stops */
    fifo_t queue;        /* the jobs waiting for a thread, linked through db_job.link */
    uint64_t done, failed;
    bool stopping;
    atomic_uint connected;
    struct db_target target;
    unsigned nthreads, started;
    atomic_uint next_index;
    struct db_thread_info *info; /* per thread, for stats */
    pthread_t threads[];
};

/* Hand a finished job back: to its submitter's inbox, or to its destructor. */
static void job_deliver(db_job_t *job)
{
    if (job->reply_to != NULL && inbox_push_wait(job->reply_to, &job->done) == 0)
        return;
    /* Nobody waits, or the inbox is closing and refused it: the pool still owns the job. */
    if (job->destroy != NULL)
        job->destroy(job);
}

/* Run one job with a live connection, reconnecting once if the connection is lost. */
static int job_run(db_pool_t *pool, db_job_t *job, MYSQL **conn)
{
    char err[256];
    int rc = IOT_EDB;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*conn == NULL) {
            if (db_connect(&pool->target, false, conn, err, sizeof err) != 0)
                return IOT_EDB;
            atomic_fetch_add(&pool->connected, 1);
        }
        rc = job->run(job, *conn);
        if (rc != IOT_EDB)
            return rc;
        /* The session may be dead or in an unknown state: never reuse it. */
        mysql_close(*conn);
        *conn = NULL;
        atomic_fetch_sub(&pool->connected, 1);
    }
    return rc;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *db_thread(void *arg)
{
    db_pool_t *pool = arg;
    MYSQL *conn = NULL;
    unsigned index = atomic_fetch_add(&pool->next_index, 1);
    struct db_thread_info *info = &pool->info[index];
    char name[16];
    snprintf(name, sizeof(name), "db%u", index);
    pthread_setname_np(pthread_self(), name);
    atomic_store(&info->tid, (int)syscall(SYS_gettid));
    mysql_thread_init();
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->queue.depth == 0 && !pool->stopping)
            pthread_cond_wait(&pool->work, &pool->lock);
        struct fifo_link *link = fifo_pop(&pool->queue);
        if (link == NULL)
            break; /* stopping and drained */
        db_job_t *job = (db_job_t *)((char *)link - offsetof(db_job_t, link));
        pthread_mutex_unlock(&pool->lock);

        uint64_t started = monotonic_ns();
        job->status = job_run(pool, job, &conn);
        int status = job->status;
        atomic_fetch_add(&info->busy_ns, monotonic_ns() - started);
        /* After delivery the job belongs to someone else: read nothing from it. */
        job_deliver(job);

        pthread_mutex_lock(&pool->lock);
        if (status < 0)
            pool->failed++;
        else
            pool->done++;
    }
    pthread_mutex_unlock(&pool->lock);
    if (conn != NULL) {
        mysql_close(conn);
        atomic_fetch_sub(&pool->connected, 1);
    }
    mysql_thread_end();
    return NULL;
}

int db_pool_start(db_pool_t **out, const struct db_target *target, unsigned nthreads,
                  size_t capacity)
{
    int rc = IOT_ENOMEM;
    db_pool_t *pool = NULL;
    *out = NULL;
    if (nthreads == 0 || capacity == 0 || nthreads > 1024)
        return IOT_EINVAL;
    /* Initialize the client library here, on one thread, before any db thread uses it. */
    if (mysql_library_init(0, NULL, NULL) != 0)
        return IOT_EDB;
    pool = calloc(1, sizeof *pool + nthreads * sizeof(pthread_t));
    if (pool == NULL)
        goto out;
    fifo_init(&pool->queue, capacity);
    pool->nthreads = nthreads;
    pool->info = calloc(nthreads, sizeof(*pool->info));
    if (pool->info == NULL) {
        free(pool);
        pool = NULL;
        goto out;
    }
    atomic_init(&pool->connected, 0);
    if (db_target_copy(target, &pool->target) != 0) {
        free(pool);
        pool = NULL;
        goto out;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    for (; pool->started < nthreads; pool->started++) {
        if (pthread_create(&pool->threads[pool->started], NULL, db_thread, pool) != 0) {
            rc = IOT_EINTERNAL;
            goto out;
        }
    }
    *out = pool;
    pool = NULL;
    rc = 0;
out:
    if (pool != NULL)
        db_pool_stop(pool); /* joins the threads that did start */
    return rc;
}

int db_pool_submit(db_pool_t *pool, db_job_t *job)
{
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping)
        rc = IOT_EINVAL;
    else if (fifo_push(&pool->queue, &job->link) < 0)
        rc = IOT_EBUSY;
    else
        pthread_cond_signal(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void db_pool_stats(db_pool_t *pool, size_t *depth, size_t *high_water, size_t *capacity,
                   uint64_t *done, uint64_t *failed, unsigned *connected)
{
    pthread_mutex_lock(&pool->lock);
    *depth = pool->queue.depth;
    *high_water = pool->queue.high_water;
    *capacity = pool->queue.capacity;
    *done = pool->done;
    *failed = pool->failed;
    pthread_mutex_unlock(&pool->lock);
    *connected = atomic_load(&pool->connected);
}

void db_pool_stop(db_pool_t *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->started; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    db_target_free(&pool->target);
    free(pool->info);
    free(pool);
}

unsigned db_pool_threads(const db_pool_t *pool)
{
    return pool->nthreads;
}

const struct db_thread_info *db_pool_thread(const db_pool_t *pool, unsigned i)
{
    return &pool->info[i];
}
