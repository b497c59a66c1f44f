/*
 * audit_query.c - reading the relay audit out of its blocks (see audit_query.h).
 */
#include "audit_query.h"

#include "ctl_page.h"
#include "ctl_time.h"
#include "db/sql_stmt.h"
#include "iot_error.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_BLOCKS 32 /* blocks per query: a block's body is up to ~60 KB of JSON */

/* A message's place in the order of the answer: newer time first, then the newer block, then
 * the later message of a block (the order the relay saw them in). */
struct audit_key {
    int64_t at_us;
    long long block;
    int seq;
};

struct heap_item {
    struct audit_key key;
    cJSON *obj;
};

struct audit_read {
    const struct audit_filter *f;
    struct heap_item *heap; /* a min-heap of the newest cap messages so far */
    unsigned n, cap;        /* cap: the page and one more, to know whether more follow */
    bool has_after;
    struct audit_key after;
    bool done; /* the rest of the blocks are all older than the heap's oldest */
    unsigned rows;
    /* the last block read: where the next page starts */
    char cursor_at[32];
    long long cursor_id;
};

static int key_cmp(const struct audit_key *a, const struct audit_key *b)
{
    if (a->at_us != b->at_us)
        return a->at_us < b->at_us ? -1 : 1;
    if (a->block != b->block)
        return a->block < b->block ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static void heap_swap(struct heap_item *h, unsigned i, unsigned j)
{
    struct heap_item t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_up(struct heap_item *h, unsigned i)
{
    while (i > 0 && key_cmp(&h[i].key, &h[(i - 1) / 2].key) < 0) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct heap_item *h, unsigned n, unsigned i)
{
    for (;;) {
        unsigned l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key_cmp(&h[l].key, &h[m].key) < 0)
            m = l;
        if (r < n && key_cmp(&h[r].key, &h[m].key) < 0)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

/* Would a message with key k be among the answer? */
static bool wanted(const struct audit_read *q, const struct audit_key *k)
{
    if (q->has_after && key_cmp(k, &q->after) >= 0)
        return false;
    return q->n < q->cap || key_cmp(k, &q->heap[0].key) > 0;
}

static void keep(struct audit_read *q, const struct audit_key *k, cJSON *obj)
{
    if (q->n < q->cap) {
        q->heap[q->n] = (struct heap_item){*k, obj};
        heap_up(q->heap, q->n++);
        return;
    }
    cJSON_Delete(q->heap[0].obj);
    q->heap[0] = (struct heap_item){*k, obj};
    heap_down(q->heap, q->n, 0);
}

static cJSON *message_object(const struct sql_row *r, int64_t at_us, const cJSON *e)
{
    const cJSON *message = cJSON_GetArrayItem(e, 1), *outcome = cJSON_GetArrayItem(e, 2),
                *latency = cJSON_GetArrayItem(e, 3);
    cJSON *o = cJSON_CreateObject();
    char at[48];
    ctl_format_time_ms(at_us / 1000, at, sizeof(at));
    bool ok = o && cJSON_AddStringToObject(o, "at", at) &&
              cJSON_AddStringToObject(o, "tenant", sql_row_str(r, 3)) &&
              cJSON_AddStringToObject(o, "sender", sql_row_str(r, 4)) &&
              cJSON_AddStringToObject(o, "device", sql_row_str(r, 5)) &&
              cJSON_AddStringToObject(o, "message", cJSON_GetStringValue(message)) &&
              cJSON_AddStringToObject(o, "outcome", cJSON_GetStringValue(outcome));
    if (ok && cJSON_IsNumber(latency))
        ok = cJSON_AddNumberToObject(o, "latency_ms", latency->valuedouble / 1000.0) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* One block: its messages into the heap. Columns: UNIX_TIMESTAMP(at), at, id, tenant, sender,
 * device, body. */
static int block_row(void *ctx, const struct sql_row *r)
{
    struct audit_read *q = ctx;
    int64_t block_at = sql_row_micros(r, 0);
    long long id = sql_row_int(r, 2, 0);
    q->rows++;
    snprintf(q->cursor_at, sizeof(q->cursor_at), "%s", sql_row_str(r, 1));
    q->cursor_id = id;
    if (q->done)
        return IOT_OK;
    if (q->n == q->cap && block_at < q->heap[0].key.at_us) {
        q->done = true; /* every later block is older still */
        return IOT_OK;
    }
    size_t len = 0;
    const uint8_t *text = sql_row_blob(r, 6, &len);
    cJSON *body = text ? cJSON_ParseWithLength((const char *)text, len) : NULL;
    if (!body)
        return cJSON_GetErrorPtr() ? IOT_EINTERNAL : IOT_ENOMEM;
    int rc = IOT_OK, seq = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, body)
    {
        const cJSON *before = cJSON_GetArrayItem(e, 0);
        const char *outcome = cJSON_GetStringValue(cJSON_GetArrayItem(e, 2));
        int this_seq = seq++;
        if (!cJSON_IsNumber(before) || !outcome || !cJSON_GetStringValue(cJSON_GetArrayItem(e, 1)))
            continue; /* not written by iotd: skipped rather than failing the whole query */
        struct audit_key k = {
            .at_us = block_at - (int64_t)before->valuedouble * 1000, .block = id, .seq = this_seq};
        if ((q->f->outcome && strcmp(outcome, q->f->outcome) != 0) ||
            k.at_us < q->f->since_s * 1000000 || !wanted(q, &k))
            continue;
        cJSON *o = message_object(r, k.at_us, e);
        if (!o) {
            rc = IOT_ENOMEM;
            break;
        }
        keep(q, &k, o);
    }
    cJSON_Delete(body);
    return rc;
}

static int newest_first(const void *x, const void *y)
{
    return key_cmp(&((const struct heap_item *)y)->key, &((const struct heap_item *)x)->key);
}

int audit_query(MYSQL *conn, const struct audit_filter *f, cJSON *list, char *err, size_t errlen)
{
    struct audit_read q = {.f = f, .cap = f->limit + 1};
    unsigned long long key[3];
    bool first = true;
    if (f->next)
        f->next[0] = '\0';
    if (f->after) {
        if (!ctl_cursor_parse(f->after, key, 3) || key[0] > INT64_MAX || key[1] > LLONG_MAX ||
            key[2] > INT_MAX) {
            snprintf(err, errlen, "%s", CTL_CURSOR_BAD);
            return IOT_EINVAL;
        }
        q.has_after = true;
        q.after = (struct audit_key){(int64_t)key[0], (long long)key[1], (int)key[2]};
    }
    q.heap = calloc(q.cap, sizeof(struct heap_item));
    int rc = q.heap ? IOT_OK : IOT_ENOMEM;
    while (rc == IOT_OK && !q.done) {
        q.rows = 0;
        /* Keyset paging on (at, id), the order of the indexes (a secondary index ends with the
         * primary key): each page starts below the last block of the one before. */
        const char *cursor = first ? NULL : q.cursor_at;
        rc = sql_query(
            conn,
            "SELECT UNIX_TIMESTAMP(at), at, id, tenant, sender, device, body "
            "FROM relay_audit_block WHERE (? IS NULL OR tenant = ?) AND (? IS NULL OR device = ?) "
            "AND (? IS NULL OR sender = ?) AND (? IS NULL OR FIND_IN_SET(?, outcomes)) "
            "AND at >= FROM_UNIXTIME(?) AND (? IS NULL OR at < ? OR (at = ? AND id < ?)) "
            "ORDER BY at DESC, id DESC LIMIT ?",
            SQL_PARAMS(sql_str(f->tenant), sql_str(f->tenant), sql_str(f->device),
                       sql_str(f->device), sql_str(f->sender), sql_str(f->sender),
                       sql_str(f->outcome), sql_str(f->outcome), sql_int(f->since_s),
                       sql_str(cursor), sql_str(cursor), sql_str(cursor), sql_int(q.cursor_id),
                       sql_int(PAGE_BLOCKS)),
            block_row, &q, err, errlen);
        if (rc == IOT_EINTERNAL && !err[0])
            snprintf(err, errlen, "a relay audit block holds no valid JSON");
        first = false;
        if (q.rows < PAGE_BLOCKS)
            q.done = true;
    }
    if (rc == IOT_OK) {
        qsort(q.heap, q.n, sizeof(*q.heap), newest_first);
        if (q.n > f->limit && f->next) {
            const struct audit_key *last = &q.heap[f->limit - 1].key;
            key[0] = (unsigned long long)last->at_us;
            key[1] = (unsigned long long)last->block;
            key[2] = (unsigned long long)last->seq;
            ctl_cursor_format(f->next, AUDIT_CURSOR_LEN, key, 3);
        }
        for (unsigned i = 0; i < q.n && i < f->limit; i++) {
            if (!cJSON_AddItemToArray(list, q.heap[i].obj)) {
                rc = IOT_ENOMEM;
                break;
            }
            q.heap[i].obj = NULL;
        }
    }
    for (unsigned i = 0; q.heap && i < q.n; i++)
        cJSON_Delete(q.heap[i].obj);
    free(q.heap);
    return rc;
}
