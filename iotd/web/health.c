/*
 * health.c - /healthz on the main loop: 200 "ok" when the database answers a ping, the
 * listeners accept and the event spool is not in use, else 503 with one line per reason.
 *
 * The database is asked, not assumed: a ping runs as a db job (so it waits behind the queue
 * like real work would), at most one at a time; requests arriving meanwhile share its answer.
 * A ping not answered within WEB_HEALTH_TIMEOUT_MS is a failure; while it still hangs, later
 * requests are answered at once with that failure rather than queueing more pings.
 */
#include "web/web_internal.h"

#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct health_probe {
    db_job_t job;
    web_t *web;
};

static int probe_run(db_job_t *job, MYSQL *conn)
{
    (void)job;
    return mysql_ping(conn) == 0 ? 0 : IOT_EDB;
}

/* The pool could not hand the probe back (the main inbox is closing). */
static void probe_destroy(db_job_t *job)
{
    free(container_of(job, struct health_probe, job));
}

/* Append the reasons iotd knows without asking the database. */
static void local_reasons(web_t *w, struct web_buf *why)
{
    const struct web_deps *d = &w->deps;
    if (d->mariadb && mariadb_local_pid(d->mariadb) == 0)
        web_buf_puts(why, "database: the local mariadbd is down (being restarted)\n");
    if (d->events) {
        struct event_store_stats es;
        event_store_stats(d->events, &es);
        if (strcmp(es.state, "spool") == 0)
            web_buf_printf(why,
                           "spool: events go to the disk spool (%llu waiting to be replayed)\n",
                           (unsigned long long)es.spool_pending);
        if (d->spool_max_bytes && es.spool_bytes >= d->spool_max_bytes / 10 * 9)
            web_buf_printf(why, "spool: %llu of %llu bytes used\n",
                           (unsigned long long)es.spool_bytes,
                           (unsigned long long)d->spool_max_bytes);
    }
    for (unsigned i = 0; i < d->listener_count; i++) {
        struct net_listener_counters lc;
        net_listener_counters(d->listeners[i], &lc);
        if (lc.accept_errors > w->listener_errors_seen[i])
            web_buf_printf(why,
                           "listener: port %u failed to accept %llu times since the last check\n",
                           net_listener_port(d->listeners[i]),
                           (unsigned long long)(lc.accept_errors - w->listener_errors_seen[i]));
        w->listener_errors_seen[i] = lc.accept_errors;
    }
}

/* Answer every waiting ask; db_problem is the database's sentence or NULL. */
static void health_finish(web_t *w, const char *db_problem)
{
    struct web_buf why = {0};
    if (db_problem)
        web_buf_printf(&why, "database: %s\n", db_problem);
    if (!w->stopping)
        local_reasons(w, &why);
    bool ok = why.len == 0 && !web_buf_failed(&why);
    while (w->health_waiters) {
        struct web_ask *a = w->health_waiters;
        w->health_waiters = a->next;
        a->status = ok ? 200 : 503;
        a->content_type = "text/plain; charset=utf-8";
        if (ok)
            web_buf_puts(&a->body, "ok\n");
        else if (web_buf_failed(&why))
            web_buf_puts(&a->body, "out of memory\n");
        else
            web_buf_append(&a->body, why.data, why.len);
        web_ask_reply(a);
    }
    web_buf_free(&why);
}

static void on_probe_done(inbox_msg_t *msg, void *loop_data)
{
    struct health_probe *p = container_of(msg, struct health_probe, job.done);
    web_t *w = p->web;
    int status = p->job.status;
    (void)loop_data;
    free(p);
    w->probe = NULL;
    if (w->stopping || !uv_is_active((uv_handle_t *)&w->health_timer))
        return; /* the timeout answered already */
    uv_timer_stop(&w->health_timer);
    health_finish(w, status == 0 ? NULL : "no answer to a ping (unreachable)");
}

static void on_health_timeout(uv_timer_t *timer)
{
    health_finish(timer->data, "no answer to a ping within 3 s");
}

void health_ask(web_t *w, struct web_ask *a)
{
    a->next = w->health_waiters;
    w->health_waiters = a;
    if (w->probe) {
        if (!uv_is_active((uv_handle_t *)&w->health_timer))
            health_finish(w, "a ping has been waiting for an answer for more than 3 s");
        return; /* else the probe in flight answers it */
    }
    struct health_probe *p = calloc(1, sizeof(*p));
    if (!p) {
        health_finish(w, "out of memory");
        return;
    }
    p->web = w;
    p->job.done.handle = on_probe_done;
    p->job.reply_to = w->deps.main_inbox;
    p->job.run = probe_run;
    p->job.destroy = probe_destroy;
    int rc = db_pool_submit(w->deps.db, &p->job);
    if (rc != 0) {
        free(p);
        health_finish(w, rc == IOT_EBUSY ? "the job queue is full" : "the pool is stopping");
        return;
    }
    w->probe = p;
    uv_timer_start(&w->health_timer, on_health_timeout, WEB_HEALTH_TIMEOUT_MS, 0);
}

void health_stop(web_t *w)
{
    uv_timer_stop(&w->health_timer);
    health_finish(w, "iotd is shutting down");
}
