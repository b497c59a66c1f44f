/*
 * stats_json.c - a stats sample as JSON (see stats_json.h).
 *
 * Every key comes from the schema (common/stats_schema.h) through put_number / put_text, and
 * every container through section(), so the daemon cannot write a key iottop does not read by
 * the same name. The order of the keys is the order the daemon has always sent.
 */
#include "stats/stats_json.h"

#include "stats_schema.h"

#include <stdio.h>

static void put_number(cJSON *obj, enum stats_field f, double value)
{
    cJSON_AddNumberToObject(obj, stats_key(f), value);
}

static void put_text(cJSON *obj, enum stats_field f, const char *text)
{
    cJSON_AddStringToObject(obj, stats_key(f), text);
}

/* A section added to parent: an object, or the array of its rows. */
static cJSON *section(cJSON *parent, enum stats_section s)
{
    const char *key = stats_section_key(s);
    if (stats_section_info(s)->shape == STATS_ROWS)
        return cJSON_AddArrayToObject(parent, key);
    return cJSON_AddObjectToObject(parent, key);
}

/* A new row appended to a section's array; NULL on ENOMEM (writing to NULL is a no-op). */
static cJSON *row(cJSON *rows)
{
    cJSON *r = cJSON_CreateObject();
    if (r && !cJSON_AddItemToArray(rows, r)) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static void add_thread(cJSON *threads, const struct stats_thread *t)
{
    cJSON *o = row(threads);
    put_text(o, STATS_THREAD_NAME, t->name);
    put_text(o, STATS_THREAD_ROLE, t->role);
    put_number(o, STATS_THREAD_TID, t->tid);
    put_number(o, STATS_THREAD_CPU_NS, (double)t->cpu_ns);
    put_number(o, STATS_THREAD_BUSY_NS, (double)t->busy_ns);
    if (!t->io)
        return;
    put_number(o, STATS_THREAD_SESSIONS, (double)t->sessions);
    put_number(o, STATS_THREAD_FRAMES_IN, (double)t->frames_in);
    put_number(o, STATS_THREAD_FRAMES_OUT, (double)t->frames_out);
    put_number(o, STATS_THREAD_BYTES_IN, (double)t->bytes_in);
    put_number(o, STATS_THREAD_BYTES_OUT, (double)t->bytes_out);
}

static void add_queue(cJSON *queues, const struct stats_queue *q)
{
    cJSON *o = row(queues);
    put_text(o, STATS_QUEUE_NAME, q->name);
    put_number(o, STATS_QUEUE_DEPTH, (double)q->depth);
    put_number(o, STATS_QUEUE_HIGH_WATER, (double)q->high_water);
    put_number(o, STATS_QUEUE_CAPACITY, (double)q->capacity);
    put_number(o, STATS_QUEUE_ENQUEUED, (double)q->enqueued);
    put_number(o, STATS_QUEUE_DEQUEUED, (double)q->dequeued);
    put_number(o, STATS_QUEUE_DROPS, (double)q->drops);
}

/* totals.events: what the store, the hub and the subscribers did. Items to user sessions are
 * counted on the io threads; those to control streams by the hub. */
static void add_event_totals(cJSON *totals, const struct stats_sample *s)
{
    uint64_t delivered = s->items_delivered, dropped = s->items_dropped;
    cJSON *ev = section(totals, STATS_SECTION_EVENT_TOTALS);
    if (!ev)
        return;
    if (s->store) {
        const struct event_store_stats *es = s->store;
        put_text(ev, STATS_STORE_STATE, es->state);
        put_number(ev, STATS_STORE_STORED, (double)es->stored);
        put_number(ev, STATS_STORE_DUPLICATES, (double)es->duplicates);
        put_number(ev, STATS_STORE_BATCHES, (double)es->batches);
        put_number(ev, STATS_STORE_SPOOLED, (double)es->spooled);
        put_number(ev, STATS_STORE_SPOOL_BYTES, (double)es->spool_bytes);
        put_number(ev, STATS_STORE_REPLAYED, (double)es->replayed);
        put_number(ev, STATS_STORE_BUSY, (double)es->busy);
        /* iottop's events/s: every event made durable (stored or spooled). */
        put_number(totals, STATS_EVENTS_STORED, (double)(es->stored + es->spooled));
    }
    if (s->hub) {
        put_number(ev, STATS_HUB_ALARM_CHANGES, (double)s->hub->alarms);
        put_number(ev, STATS_HUB_SUBSCRIBERS, (double)s->hub->subscribers);
        put_number(ev, STATS_HUB_LEASES, (double)s->hub->leases);
        delivered += s->hub->delivered;
        dropped += s->hub->dropped;
    }
    put_number(ev, STATS_ITEMS_DELIVERED, (double)delivered);
    put_number(ev, STATS_ITEMS_DROPPED, (double)dropped);
}

static void add_totals(cJSON *sample, const struct stats_sample *s)
{
    cJSON *totals = section(sample, STATS_SECTION_TOTALS);
    cJSON *conns = section(totals, STATS_SECTION_CONNECTIONS);
    put_number(conns, STATS_CONNECTIONS_DEVICE, (double)s->devices);
    put_number(conns, STATS_CONNECTIONS_USER, (double)s->users);
    put_number(conns, STATS_CONNECTIONS_CONTROL, (double)s->control_clients);
    put_number(totals, STATS_AUTH_FAILURES, (double)s->auth_failures);
    put_number(totals, STATS_RATE_LIMITED, (double)s->rate_limited);
    /* iottop's names: the relay's outcomes, with internal failures counted as "internal". */
    cJSON *oc = cJSON_AddObjectToObject(totals, stats_key(STATS_OUTCOMES));
    for (unsigned k = 0; k < RELAY_OUTCOME_COUNT; k++) {
        const char *name = k == RELAY_INTERNAL ? "internal" : relay_outcome_name(k);
        cJSON_AddNumberToObject(oc, name, (double)s->outcomes[k]);
    }
    add_event_totals(totals, s);
}

static void copy_section(cJSON *parent, enum stats_section s, const cJSON *from);

/* The fields of section s, and its subsections, found in from: what another module reports
 * (the cluster's status) held to the schema's keys, so that the sample has no key of its own
 * making. */
static void copy_fields(cJSON *to, enum stats_section s, const cJSON *from)
{
    if (!to)
        return;
    for (int f = 0; f < STATS_FIELD_COUNT; f++) {
        const struct stats_field_info *fi = stats_field_info((enum stats_field)f);
        const cJSON *v = fi->section == s ? cJSON_GetObjectItemCaseSensitive(from, fi->key) : NULL;
        if (fi->value == STATS_TEXT ? cJSON_IsString(v) : cJSON_IsNumber(v))
            cJSON_AddItemToObject(to, fi->key, cJSON_Duplicate(v, false));
    }
    for (int sub = 1; sub < STATS_SECTION_COUNT; sub++) {
        const struct stats_section_info *si = stats_section_info((enum stats_section)sub);
        const cJSON *v = si->parent == s ? cJSON_GetObjectItemCaseSensitive(from, si->key) : NULL;
        if (v)
            copy_section(to, (enum stats_section)sub, v);
    }
}

static void copy_section(cJSON *parent, enum stats_section s, const cJSON *from)
{
    cJSON *to = section(parent, s);
    const cJSON *r;
    if (stats_section_info(s)->shape != STATS_ROWS) {
        copy_fields(to, s, from);
        return;
    }
    cJSON_ArrayForEach(r, from)
    {
        copy_fields(row(to), s, r);
    }
}

cJSON *stats_sample_json(const struct stats_sample *s)
{
    cJSON *sample = cJSON_CreateObject();
    if (!sample)
        return NULL;
    put_number(sample, STATS_TIME_MS, (double)s->time_ms);
    put_number(sample, STATS_UPTIME_S, (double)s->uptime_s);
    put_text(sample, STATS_VERSION, s->version);
    put_number(sample, STATS_PID, s->pid);
    put_number(sample, STATS_RSS_BYTES, (double)s->rss_bytes);
    cJSON *threads = section(sample, STATS_SECTION_THREADS);
    cJSON *queues = section(sample, STATS_SECTION_QUEUES);
    for (size_t i = 0; i < s->thread_count; i++)
        add_thread(threads, &s->threads[i]);
    for (size_t i = 0; i < s->queue_count; i++)
        add_queue(queues, &s->queues[i]);
    add_totals(sample, s);
    section(sample, STATS_SECTION_EVENTS);
    if (s->cluster)
        copy_section(sample, STATS_SECTION_CLUSTER, s->cluster);
    return sample;
}

void stats_json_add_sessions(cJSON *sample, const char *sort, const struct session_row *rows,
                             size_t n, size_t total, const struct request_row *requests,
                             size_t nrequests)
{
    cJSON *sessions = section(sample, STATS_SECTION_SESSIONS);
    put_number(sessions, STATS_SESSIONS_TOTAL, (double)total);
    put_text(sessions, STATS_SESSIONS_SORT, sort);
    cJSON *top = section(sessions, STATS_SECTION_SESSION_ROWS);
    for (size_t i = 0; i < n; i++) {
        const struct session_row *r = &rows[i];
        cJSON *o = row(top);
        put_text(o, STATS_SESSION_PRINCIPAL, r->principal);
        put_text(o, STATS_SESSION_TENANT, r->tenant);
        put_text(o, STATS_SESSION_KIND, r->kind);
        put_text(o, STATS_SESSION_STATE, r->state);
        put_text(o, STATS_SESSION_TRANSPORT, r->transport);
        put_text(o, STATS_SESSION_ADDRESS, r->address);
        put_number(o, STATS_SESSION_SINCE_MS, (double)r->since_ms);
        put_number(o, STATS_SESSION_LAST_ACTIVITY_MS, (double)r->last_activity_ms);
        put_number(o, STATS_SESSION_IN_FLIGHT, r->in_flight);
        put_number(o, STATS_SESSION_OUTPUT_BYTES, (double)r->output_bytes);
        put_number(o, STATS_SESSION_BYTES_OUT, (double)r->bytes_out);
        put_number(o, STATS_SESSION_FRAMES_IN, (double)r->frames_in);
        put_number(o, STATS_SESSION_FRAMES_OUT, (double)r->frames_out);
    }
    cJSON *reqs = section(sample, STATS_SECTION_REQUESTS);
    for (size_t i = 0; i < nrequests; i++) {
        cJSON *o = row(reqs);
        put_text(o, STATS_REQUEST_ORIGIN, requests[i].origin);
        put_text(o, STATS_REQUEST_DEVICE, requests[i].device);
        put_text(o, STATS_REQUEST_TYPE, requests[i].type);
        put_number(o, STATS_REQUEST_AGE_MS, (double)requests[i].age_ms);
        put_number(o, STATS_REQUEST_DEADLINE_MS, (double)requests[i].deadline_ms);
    }
}

static cJSON *events_array(cJSON *sample)
{
    return cJSON_GetObjectItemCaseSensitive(sample, stats_section_key(STATS_SECTION_EVENTS));
}

void stats_json_add_connection_event(cJSON *sample, int64_t at_ms, const char *event,
                                     const char *device_id, const char *address, const char *reason)
{
    cJSON *e = row(events_array(sample));
    put_number(e, STATS_EVENT_TIME_MS, (double)at_ms);
    put_text(e, STATS_EVENT_KIND, event);
    put_text(e, STATS_EVENT_PRINCIPAL, device_id);
    put_text(e, STATS_EVENT_ADDRESS, address);
    put_text(e, STATS_EVENT_REASON, reason);
}

void stats_json_add_item(cJSON *sample, const struct event *item)
{
    char detail[512];
    size_t len = (size_t)snprintf(detail, sizeof(detail), "%s", item->name);
    for (unsigned i = 0; i < item->nfields && len < sizeof(detail); i++)
        len += (size_t)snprintf(detail + len, sizeof(detail) - len, " %s", event_field_at(item, i));
    cJSON *e = row(events_array(sample));
    put_number(e, STATS_EVENT_TIME_MS, (double)item->ts_ms);
    put_text(e, STATS_EVENT_KIND, event_kind_name(item->kind));
    put_text(e, STATS_EVENT_PRINCIPAL, item->device);
    put_text(e, STATS_EVENT_TENANT, item->tenant);
    put_text(e, STATS_EVENT_MESSAGE, detail);
}
