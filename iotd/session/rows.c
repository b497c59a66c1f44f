/*
 * rows.c - the sessions table and the waiting requests iottop shows: each io thread sorts its
 * own sessions and cuts them to the top, the main loop merges the threads' answers.
 */
#include "iot_error.h"
#include "session/session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW_CMP(field)                                                                             \
    static int cmp_##field(const void *a, const void *b)                                           \
    {                                                                                              \
        const struct session_row *x = a, *y = b;                                                   \
        return (x->field < y->field) - (x->field > y->field); /* descending */                     \
    }
ROW_CMP(frames_in)
ROW_CMP(frames_out)
ROW_CMP(bytes_out)
ROW_CMP(output_bytes)
ROW_CMP(since_ms)
ROW_CMP(last_activity_ms)
ROW_CMP(in_flight)
#undef ROW_CMP

session_row_cmp session_row_comparator(const char *name)
{
    static const struct {
        const char *name;
        session_row_cmp cmp;
    } keys[] = {{"frames_in", cmp_frames_in}, {"frames_out", cmp_frames_out},
                {"bytes_out", cmp_bytes_out}, {"output_bytes", cmp_output_bytes},
                {"since", cmp_since_ms},      {"last_activity", cmp_last_activity_ms},
                {"in_flight", cmp_in_flight}};
    for (size_t i = 0; name && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].name, name) == 0)
            return keys[i].cmp;
    return NULL;
}

struct gather_part {
    inbox_msg_t msg;
    struct gather *g;
    unsigned index;
    struct session_row *rows;
    size_t n, total;
    struct request_row *requests;
    size_t nrequests;
};

struct gather {
    inbox_msg_t done;
    sessions_t *all;
    session_row_cmp cmp;
    size_t top;
    atomic_uint pending;
    inbox_t *reply_to;
    sessions_collect_fn fn;
    void *arg;
    struct gather_part parts[];
};

static void session_to_row(struct session *s, struct session_row *r)
{
    const struct conn_info *ci = conn_info(s->conn);
    memset(r, 0, sizeof(*r));
    snprintf(r->principal, sizeof(r->principal), "%s", s->principal);
    snprintf(r->tenant, sizeof(r->tenant), "%s", s->hs ? "" : s->tenant);
    r->kind = s->kind == SESSION_USER ? "user" : "device";
    r->state = s->state == SESSION_ESTABLISHED ? "online" : "handshake";
    snprintf(r->transport, sizeof(r->transport), "%s", conn_transport_name(ci->transport));
    peer_addr_format(&ci->peer, r->address);
    r->since_ms = s->since_ms;
    r->last_activity_ms = s->last_activity_ms;
    r->output_bytes = conn_pending(s->conn);
    r->bytes_out = ci->bytes_out;
    r->frames_in = s->frames_in;
    r->frames_out = s->frames_out;
    r->in_flight = relay_in_flight(s->env->relay, s->slot, s->serial);
}

static int cmp_request_age(const void *a, const void *b)
{
    const struct request_row *x = a, *y = b;
    return (x->age_ms < y->age_ms) - (x->age_ms > y->age_ms); /* oldest first */
}

static void gather_free(struct gather *g)
{
    for (unsigned i = 0; i < g->all->deps.io_count; i++) {
        free(g->parts[i].rows);
        free(g->parts[i].requests);
    }
    free(g);
}

/* On the main loop once every thread answered: merge, sort, keep the top, report. */
static void on_gather_done(inbox_msg_t *msg, void *loop_data)
{
    struct gather *g = container_of(msg, struct gather, done);
    size_t n = 0, total = 0;
    (void)loop_data;
    for (unsigned i = 0; i < g->all->deps.io_count; i++)
        n += g->parts[i].n, total += g->parts[i].total;
    size_t nreq = 0;
    for (unsigned i = 0; i < g->all->deps.io_count; i++)
        nreq += g->parts[i].nrequests;
    struct session_row *rows = n ? malloc(n * sizeof(*rows)) : NULL;
    struct request_row *reqs = nreq ? malloc(nreq * sizeof(*reqs)) : NULL;
    size_t k = 0, kr = 0;
    for (unsigned i = 0; i < g->all->deps.io_count; i++) {
        if (rows && g->parts[i].n) {
            memcpy(rows + k, g->parts[i].rows, g->parts[i].n * sizeof(*rows));
            k += g->parts[i].n;
        }
        if (reqs && g->parts[i].nrequests) {
            memcpy(reqs + kr, g->parts[i].requests, g->parts[i].nrequests * sizeof(*reqs));
            kr += g->parts[i].nrequests;
        }
    }
    if (rows)
        qsort(rows, k, sizeof(*rows), g->cmp);
    if (reqs)
        qsort(reqs, kr, sizeof(*reqs), cmp_request_age);
    g->fn(rows, k < g->top ? k : g->top, total, reqs, kr < g->top ? kr : g->top, g->arg);
    free(rows);
    free(reqs);
    gather_free(g);
}

/* On each io thread: its own sessions, sorted, cut to the top. */
static void on_gather_part(inbox_msg_t *msg, void *loop_data)
{
    struct gather_part *p = container_of(msg, struct gather_part, msg);
    struct gather *g = p->g;
    struct session_env *env = &g->all->envs[((io_thread_t *)loop_data)->index];
    size_t live = atomic_load(&env->counters.sessions);

    p->rows = live ? malloc(live * sizeof(*p->rows)) : NULL;
    for (uint32_t i = 0; p->rows && i < env->nslots && p->n < live; i++)
        if (env->slots[i] && env->slots[i]->state != SESSION_CLOSING)
            session_to_row(env->slots[i], &p->rows[p->n++]);
    p->total = p->n;
    if (p->rows) {
        qsort(p->rows, p->n, sizeof(*p->rows), g->cmp);
        if (p->n > g->top)
            p->n = g->top;
    }
    /* The requests waiting at this thread's devices, oldest first, cut to the top. */
    size_t waiting = relay_waiting(env->relay);
    p->requests = waiting ? malloc(waiting * sizeof(*p->requests)) : NULL;
    if (p->requests)
        p->nrequests = relay_request_rows(env->relay, p->requests, waiting, uv_hrtime());
    if (p->requests) {
        qsort(p->requests, p->nrequests, sizeof(*p->requests), cmp_request_age);
        if (p->nrequests > g->top)
            p->nrequests = g->top;
    }
    if (atomic_fetch_sub(&g->pending, 1) == 1 && inbox_push_wait(g->reply_to, &g->done) != 0)
        gather_free(g); /* the main loop is stopping: nobody waits for the result */
}

int sessions_collect(sessions_t *all, inbox_t *reply_to, session_row_cmp cmp, size_t top,
                     sessions_collect_fn fn, void *arg)
{
    unsigned n = all->deps.io_count;
    struct gather *g = calloc(1, sizeof(*g) + n * sizeof(g->parts[0]));
    if (!g)
        return IOT_ENOMEM;
    g->done.handle = on_gather_done;
    g->all = all;
    g->cmp = cmp;
    g->top = top;
    g->reply_to = reply_to;
    g->fn = fn;
    g->arg = arg;
    atomic_init(&g->pending, n);
    for (unsigned i = 0; i < n; i++) {
        g->parts[i] = (struct gather_part){.msg.handle = on_gather_part, .g = g, .index = i};
        if (inbox_push(&all->deps.io[i].inbox, &g->parts[i].msg) != 0) {
            /* Threads already asked will still answer: count this one as answered, empty. */
            if (atomic_fetch_sub(&g->pending, n - i) == n - i) {
                gather_free(g);
                return IOT_EBUSY;
            }
            return IOT_OK;
        }
    }
    return IOT_OK;
}
