/*
 * alarm_writer.c - ordered, retrying delivery of alarm transitions to MariaDB (see
 * alarm_writer.h).
 *
 * A ring holds the queued transitions; a job holds those at the database. A job remembers how
 * far it got (done): the pool runs a job a second time after reconnecting, and the retry timer
 * resubmits the same job, and both resume where the last attempt stopped, so a transition is
 * never stored out of order nor skipped. Completions arrive through the main loop's inbox; the
 * writer itself is touched only on the main loop, so it needs no lock.
 */
#include "alarm/alarm_writer.h"

#include "alarm/alarm_db.h"
#include "base/log.h"
#include "iot_error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct writer_item {
    struct alarm_transition t;
    uint64_t alarm_id;
    int status;
    char err[200]; /* why it failed for good */
};

struct writer_job {
    db_job_t job;
    alarm_writer_t *w;
    size_t count;    /* items */
    size_t done;     /* items run() has finished with (stored or failed for good) */
    size_t reported; /* items the main loop has accounted for */
    char err[200];   /* the last outage's message */
    struct writer_item items[];
};

struct alarm_writer {
    struct alarm_writer_options o;
    uv_timer_t timer;
    inbox_t *inbox;
    db_pool_t *db;
    struct alarm_transition *ring;
    size_t head, count;
    struct writer_job *job; /* at the database, or waiting for the retry timer */
    bool at_db;             /* job is submitted */
    bool stopping, timer_closed;
    uint64_t written, failed, dropped, retries;
};

static int writer_job_run(db_job_t *job, MYSQL *conn)
{
    struct writer_job *wj = container_of(job, struct writer_job, job);
    for (; wj->done < wj->count; wj->done++) {
        struct writer_item *it = &wj->items[wj->done];
        it->err[0] = '\0';
        int rc = alarm_apply(conn, &it->t, &it->alarm_id, it->err, sizeof(it->err));
        if (rc == IOT_EDB || rc == IOT_EBUSY) {
            memcpy(wj->err, it->err, sizeof(wj->err));
            return rc; /* keeps its place: retried */
        }
        it->status = rc;
    }
    return IOT_OK;
}

static void writer_free(alarm_writer_t *w)
{
    void (*released)(void *) = w->o.released;
    void *arg = w->o.arg;
    if (w->count)
        log_warn("alarms: %zu transitions not written at shutdown", w->count);
    free(w->job);
    free(w->ring);
    free(w);
    if (released)
        released(arg);
}

static void pump(alarm_writer_t *w);
static void job_done(inbox_msg_t *msg, void *loop_data);
static void on_retry(uv_timer_t *timer);

static void retry_later(alarm_writer_t *w)
{
    w->retries++;
    if (w->stopping || w->timer_closed)
        return;
    uv_timer_start(&w->timer, on_retry, w->o.retry_ms, 0);
}

/* Hand w->job (new, or back from a failed attempt) to the pool; a full pool is an outage too. */
static void submit(alarm_writer_t *w)
{
    struct writer_job *wj = w->job;
    wj->job = (db_job_t){.run = writer_job_run, .reply_to = w->inbox};
    wj->job.done.handle = job_done;
    wj->err[0] = '\0';
    w->at_db = true;
    if (db_pool_submit(w->db, &wj->job) == IOT_OK)
        return;
    w->at_db = false;
    if (!w->stopping) {
        snprintf(wj->err, sizeof(wj->err), "the database queue is full");
        retry_later(w);
        return;
    }
    /* Stopping, and the pool takes no more: what is left is lost. */
    w->dropped += wj->count - wj->done + w->count;
    log_warn("alarms: %zu transitions not written at shutdown: the database queue refused them",
             wj->count - wj->done + w->count);
    w->count = 0;
    free(wj);
    w->job = NULL;
}

static void on_retry(uv_timer_t *timer)
{
    alarm_writer_t *w = timer->data;
    if (w->job && !w->at_db)
        submit(w);
    else
        pump(w);
}

/* Start the next job if none is out. */
static void pump(alarm_writer_t *w)
{
    if (w->job || w->count == 0)
        return;
    size_t n = w->count < w->o.batch_max ? w->count : w->o.batch_max;
    if (w->stopping)
        n = w->count; /* the last chance: everything in one job */
    struct writer_job *wj = calloc(1, sizeof(*wj) + n * sizeof(wj->items[0]));
    if (!wj) {
        retry_later(w);
        return;
    }
    wj->w = w;
    wj->count = n;
    for (size_t i = 0; i < n; i++)
        wj->items[i].t = w->ring[(w->head + i) % w->o.capacity];
    w->head = (w->head + n) % w->o.capacity;
    w->count -= n;
    w->job = wj;
    submit(w);
}

static void job_done(inbox_msg_t *msg, void *loop_data)
{
    struct writer_job *wj = container_of(msg, struct writer_job, job.done);
    alarm_writer_t *w = wj->w;
    (void)loop_data;
    w->at_db = false;
    for (; wj->reported < wj->done; wj->reported++) {
        struct writer_item *it = &wj->items[wj->reported];
        if (it->status == IOT_OK) {
            w->written++;
        } else {
            w->failed++;
            log_warn("alarms: %s of %s on %s not stored: %s",
                     it->t.kind == ALARM_RAISE ? "raise" : "clear", it->t.name, it->t.device,
                     it->err);
        }
        if (w->o.applied)
            w->o.applied(&it->t, it->alarm_id, it->status, w->o.arg);
    }
    if (wj->done < wj->count && !wj->err[0]) /* the pool could not even connect */
        snprintf(wj->err, sizeof(wj->err), "%s", iot_strerror(wj->job.status));
    if (wj->done < wj->count && !w->stopping) {
        if (w->retries % 60 == 0)
            log_warn("alarms: %zu transitions waiting for the database: %s",
                     wj->count - wj->done + w->count, wj->err);
        retry_later(w);
        return;
    }
    if (wj->done < wj->count) { /* stopping and the database failed: give up */
        w->dropped += wj->count - wj->done;
        log_warn("alarms: %zu transitions not written at shutdown: %s", wj->count - wj->done,
                 wj->err);
    }
    free(wj);
    w->job = NULL;
    pump(w);
    if (w->stopping && w->timer_closed && !w->job)
        writer_free(w);
}

int alarm_writer_start(alarm_writer_t **out, uv_loop_t *loop, inbox_t *main_inbox, db_pool_t *db,
                       const struct alarm_writer_options *o)
{
    alarm_writer_t *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w)
        return IOT_ENOMEM;
    if (o)
        w->o = *o;
    if (!w->o.capacity)
        w->o.capacity = 4096;
    if (!w->o.batch_max)
        w->o.batch_max = 64;
    if (!w->o.retry_ms)
        w->o.retry_ms = 1000;
    w->ring = calloc(w->o.capacity, sizeof(*w->ring));
    if (!w->ring) {
        free(w);
        return IOT_ENOMEM;
    }
    w->inbox = main_inbox;
    w->db = db;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    *out = w;
    return IOT_OK;
}

void alarm_writer_add(alarm_writer_t *w, const struct alarm_transition *t)
{
    if (w->count == w->o.capacity) { /* full: the oldest queued one goes */
        w->head = (w->head + 1) % w->o.capacity;
        w->count--;
        if (w->dropped++ % 1000 == 0)
            log_warn("alarms: transition queue full (%zu): dropped the oldest (%llu so far)",
                     w->o.capacity, (unsigned long long)w->dropped);
    }
    w->ring[(w->head + w->count) % w->o.capacity] = *t;
    w->count++;
    pump(w);
}

void alarm_writer_stats(const alarm_writer_t *w, struct alarm_writer_stats *out)
{
    *out = (struct alarm_writer_stats){.queued = w->count,
                                       .in_flight = w->job ? w->job->count - w->job->done : 0,
                                       .capacity = w->o.capacity,
                                       .written = w->written,
                                       .failed = w->failed,
                                       .dropped = w->dropped,
                                       .retries = w->retries};
}

static void on_timer_closed(uv_handle_t *handle)
{
    alarm_writer_t *w = handle->data;
    w->timer_closed = true;
    if (!w->job)
        writer_free(w);
}

void alarm_writer_stop(alarm_writer_t *w)
{
    w->stopping = true;
    uv_timer_stop(&w->timer);
    if (w->job && !w->at_db)
        submit(w); /* the one waiting for a retry gets a last try */
    else
        pump(w);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}
