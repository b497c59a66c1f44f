/*
 * query.c - the query service: the hooks sessions call for QUERY (and ACK, query_ack.c), and
 * the jobs that take a query to the db pool and its page back (see query.h).
 *
 * A QUERY is parsed on the session's io thread. devices and catalogue are answered there from
 * the snapshot; the others become a db job whose completion arrives on the main loop, which
 * alone knows whether the sessions are still there (query_set_sessions), and hands the page to
 * the session's thread. A database that is down fails the job after the pool's connect and
 * read timeouts: the client gets ERROR code=busy retry=5, never silence.
 */
#include "query/query_internal.h"

#include "base/log.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A database that did not answer: come back in this many seconds. */
#define QUERY_DB_RETRY_S 5

void query_origin_copy(struct query_origin *to, const struct session_origin *o,
                       const registry_snapshot_t *snap)
{
    struct registry_user_info u;
    memset(to, 0, sizeof(*to));
    to->io = o->io;
    to->slot = o->slot;
    to->serial = o->serial;
    to->id = o->id;
    snprintf(to->principal, sizeof(to->principal), "%s", o->principal);
    snprintf(to->tenant, sizeof(to->tenant), "%s", o->tenant);
    to->admin = snap && registry_user_lookup(snap, o->principal, &u) == 0 &&
                strcmp(u.role, "admin") == 0 && strcmp(u.tenant, o->tenant) == 0;
}

void query_reply_error(const struct session_origin *o, const char *code, uint32_t retry_s,
                       const char *msg)
{
    struct query_origin who;
    struct query_page p;
    query_origin_copy(&who, o, NULL);
    query_page_init(&p, &who, 1);
    query_page_error(&p, code, retry_s, msg);
    query_page_send(&p, o->sessions);
}

/* ---- history, alarms, commands: a job on the db pool ---- */

struct query_job {
    db_job_t job;
    query_t *q;
    struct query_request r;
    struct query_origin who;
    struct query_page page;
    char err[256];
};

/* On a db thread. */
static int query_job_run(db_job_t *job, MYSQL *conn)
{
    struct query_job *qj = container_of(job, struct query_job, job);
    registry_snapshot_t *snap = registry_acquire(qj->q->deps.registry);
    qj->page.who = &qj->who;
    qj->err[0] = '\0';
    int rc = query_db_run(conn, &qj->r, &qj->who, snap, &qj->page, qj->err, sizeof(qj->err));
    registry_release(snap);
    return rc;
}

/* On the main loop: the page (or why there is none) to the session. */
static void query_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct query_job *qj = container_of(msg, struct query_job, job.done);
    (void)loop_data;
    qj->page.who = &qj->who;
    if (qj->job.status == IOT_EDB)
        query_page_error(&qj->page, "busy", QUERY_DB_RETRY_S, "the database is unreachable");
    else if (qj->job.status != IOT_OK) {
        log_warn("query %s for %s: %s", query_what_name(qj->r.what), qj->who.principal,
                 qj->err[0] ? qj->err : iot_strerror(qj->job.status));
        query_page_error(&qj->page, "internal", 0, "the query failed");
    }
    query_page_send(&qj->page, qj->q->sessions);
    free(qj);
}

static void query_job_destroy(db_job_t *job)
{
    struct query_job *qj = container_of(job, struct query_job, job);
    query_page_free(&qj->page);
    free(qj);
}

static void submit(query_t *q, const struct session_origin *o, const struct query_request *r,
                   const struct query_origin *who)
{
    struct query_job *qj = q->deps.db ? calloc(1, sizeof(*qj)) : NULL;
    if (!qj) {
        query_reply_error(o, q->deps.db ? "busy" : "internal", 1,
                          q->deps.db ? "out of memory" : "no database");
        return;
    }
    qj->q = q;
    qj->r = *r;
    qj->who = *who;
    query_page_init(&qj->page, &qj->who, r->limit);
    qj->job.run = query_job_run;
    qj->job.destroy = query_job_destroy;
    qj->job.reply_to = q->deps.inbox;
    qj->job.done.handle = query_job_done;
    int rc = db_pool_submit(q->deps.db, &qj->job);
    if (rc != IOT_OK) {
        free(qj);
        query_reply_error(o, "busy", 1, "the database queue is full");
    }
}

/* ---- the hooks (io threads) ---- */

static void on_query(void *arg, const struct session_origin *o, const struct iotp_frame *f)
{
    query_t *q = arg;
    struct query_request r;
    struct query_origin who;
    char why[160];
    if (query_parse(f, &r, why, sizeof(why)) != IOT_OK) {
        query_reply_error(o, "bad_args", 0, why);
        return;
    }
    registry_snapshot_t *snap = registry_acquire(q->deps.registry);
    query_origin_copy(&who, o, snap);
    if (r.what == QUERY_DEVICES || r.what == QUERY_CATALOGUE) {
        struct query_page p;
        query_page_init(&p, &who, r.limit);
        query_registry_run(&r, &who, snap, q->deps.presence, &p);
        query_page_send(&p, o->sessions);
    } else {
        submit(q, o, &r, &who);
    }
    registry_release(snap);
}

static void on_ack(void *arg, const struct session_origin *o, const struct iotp_frame *f)
{
    query_ack(arg, o, f);
}

int query_start(query_t **out, const struct query_deps *deps)
{
    query_t *q = calloc(1, sizeof(*q));
    if (!q)
        return IOT_ENOMEM;
    q->deps = *deps;
    *out = q;
    return IOT_OK;
}

struct session_query_hooks query_session_hooks(query_t *q)
{
    return (struct session_query_hooks){.arg = q, .query = on_query, .ack = on_ack};
}

void query_set_sessions(query_t *q, sessions_t *sessions)
{
    if (q)
        q->sessions = sessions;
}

void query_free(query_t *q)
{
    free(q);
}
