/*
 * audit.c - the relay audit (see audit.h).
 *
 * A batch is stored with one bulk INSERT per chunk (insert_rows): at tens of thousands of
 * messages a second, one round trip per row would make the audit, not the relay, the limit.
 */
#include "relay/audit.h"

#include "base/log.h"
#include "db/batch.h"
#include "db/partitions.h"
#include "db/stmt_cache.h"
#include "db/sql_stmt.h"
#include "ctl_time.h"
#include "iot_error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records per chunk: one transaction, a few blocks. MariaDB's price is per transaction more than
 * per row: at 140k audited messages a second, chunks of 2,048 (7 commits per 100 ms flush) cost
 * 10-15% of the relay's throughput with 16 in flight, chunks of 16,384 (one commit) 2-3%. */
#define AUDIT_BATCH            16384
#define AUDIT_COLUMNS          7
#define AUDIT_CAPACITY         65536         /* ~0.5 s of relay traffic: records are ~340 bytes */
#define AUDIT_BULK_ROWS        256           /* blocks per bulk INSERT */
#define AUDIT_BULK_BYTES       (1024 * 1024) /* bodies per bulk INSERT: under max_allowed_packet */
#define AUDIT_OUTCOMES_TEXT    96 /* "ok,denied,...": every outcome name, comma-separated */
#define AUDIT_MAINTENANCE_MS   (3600 * 1000)
#define AUDIT_PARTITIONS_AHEAD 7
/* A batch the database could not take is held and written again after 0.5 s, backing off to
 * 4 s (db/batch.h): an outage holds senders (relay_audit_backlogged), it drops nothing. */
#define AUDIT_RETRY_MS 500

/* One audited message, as the io thread writes it into the batch's buffer (a fixed size, but
 * only the bytes up to each name's NUL are written: a slot holds an old record's bytes past
 * them). The names' lengths come with them, so that the db thread, which turns a chunk of
 * records into blocks (insert_chunk), neither measures nor hashes whole names again. */
enum { AUDIT_TENANT, AUDIT_SENDER, AUDIT_DEVICE, AUDIT_MESSAGE, AUDIT_NAMES };
struct audit_record {
    int64_t at_ms;
    uint32_t latency_us;
    uint8_t outcome;          /* enum relay_outcome */
    uint8_t len[AUDIT_NAMES]; /* strlen of each name below */
    char tenant[65];
    char sender[129];
    char device[65];
    char message[65];
};

struct relay_audit {
    enum relay_audit_mode mode;
    unsigned retention_days;
    batch_t *batch;
    /* Last partition maintenance. Atomic: at stop, the last batch may be written while the
     * one before it still is, on another db thread. */
    _Atomic int64_t maintained_ms;
};

/* What relay_audit_record measured, for fill_record to write under the batch's lock. */
struct record_source {
    int64_t at_ms;
    uint32_t latency_us;
    uint8_t outcome;
    const char *name[AUDIT_NAMES];
    uint8_t len[AUDIT_NAMES];
};

/* The name fields of a record, by AUDIT_* (their sizes bound the lengths). */
static char *record_name(struct audit_record *r, int i)
{
    char *const names[AUDIT_NAMES] = {r->tenant, r->sender, r->device, r->message};
    return names[i];
}

static const size_t record_name_size[AUDIT_NAMES] = {65, 129, 65, 65};

/* batch_add_fill's fill: the record straight into its slot (no copy through the stack). */
static void fill_record(void *slot, const void *arg)
{
    struct audit_record *r = slot;
    const struct record_source *src = arg;
    r->at_ms = src->at_ms;
    r->latency_us = src->latency_us;
    r->outcome = src->outcome;
    for (int i = 0; i < AUDIT_NAMES; i++) {
        char *dst = record_name(r, i);
        memcpy(dst, src->name[i], src->len[i]);
        dst[src->len[i]] = '\0';
        r->len[i] = src->len[i];
    }
}

void relay_audit_record(relay_audit_t *a, const char *tenant, const char *sender,
                        const char *device, const char *message, enum relay_outcome outcome,
                        uint64_t latency_ns, int64_t at_ms)
{
    if (!a || a->mode == RELAY_AUDIT_NONE ||
        (a->mode == RELAY_AUDIT_DENIED && outcome != RELAY_DENIED))
        return;
    uint64_t us = latency_ns / 1000;
    struct record_source src = {.at_ms = at_ms ? at_ms : ctl_wall_ms(),
                                .latency_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us,
                                .outcome = (uint8_t)outcome,
                                .name = {tenant, sender, device, message}};
    /* Measured here, outside the lock; a name too long for its field is cut, as before. */
    for (int i = 0; i < AUDIT_NAMES; i++) {
        if (!src.name[i])
            src.name[i] = "";
        src.len[i] = (uint8_t)strnlen(src.name[i], record_name_size[i] - 1);
    }
    batch_add_fill(a->batch, fill_record, &src);
}

/* ---- blocks (sql/008) ----
 *
 * A chunk of records becomes one row per (tenant, sender, device) it holds: one pass groups
 * the records by that key (a hash table; arrival order within a group), and each group is
 * written as a block whose body lists its messages in arrival order. MariaDB's per-row cost,
 * not the bytes, was the audit's price; a relay's traffic is a few senders to a few devices
 * per 100 ms, so a chunk of 16,384 records is typically a handful of rows. This runs on a db
 * thread of iotd's, beside the io threads: it stays linear and free of printf. */

enum { BLOCK_TENANT, BLOCK_SENDER, BLOCK_DEVICE, BLOCK_OUTCOMES, BLOCK_BODY, BLOCK_TEXTS };
/* fill_block takes a block's first three texts' lengths from the record's len[]. */
_Static_assert((int)BLOCK_TENANT == (int)AUDIT_TENANT && (int)BLOCK_SENDER == (int)AUDIT_SENDER &&
                   (int)BLOCK_DEVICE == (int)AUDIT_DEVICE,
               "block texts and record names in the same order");

/* The columns of up to AUDIT_BULK_ROWS blocks, bound column-wise (one array per column:
 * strings as pointers and lengths, which row-wise binding cannot carry for a variable body). */
struct block_columns {
    MYSQL_TIME at[AUDIT_BULK_ROWS];
    MYSQL_TIME *at_ptr[AUDIT_BULK_ROWS]; /* column-wise, a DATETIME goes by pointer */
    uint32_t records[AUDIT_BULK_ROWS];
    char *text[BLOCK_TEXTS][AUDIT_BULK_ROWS];
    unsigned long len[BLOCK_TEXTS][AUDIT_BULK_ROWS];
    char outcomes[AUDIT_BULK_ROWS][AUDIT_OUTCOMES_TEXT];
};

/* The bodies of one chunk: a buffer sized for the worst case up front (every record's
 * element at its longest), so that pointers into it stay valid while the chunk is bound. */
struct body_buffer {
    char *p;
    size_t len;
};

/* The records of one key: a list through next[] in arrival order. */
struct group {
    uint32_t first, last, count;
};

static const char insert_sql[] = "INSERT INTO relay_audit_block (at, tenant, sender, device, "
                                 "outcomes, records, body) VALUES (?, ?, ?, ?, ?, ?, ?)";

static bool same_key(const struct audit_record *a, const struct audit_record *b)
{
    return a->len[AUDIT_DEVICE] == b->len[AUDIT_DEVICE] &&
           a->len[AUDIT_SENDER] == b->len[AUDIT_SENDER] &&
           a->len[AUDIT_TENANT] == b->len[AUDIT_TENANT] &&
           memcmp(a->device, b->device, a->len[AUDIT_DEVICE]) == 0 &&
           memcmp(a->sender, b->sender, a->len[AUDIT_SENDER]) == 0 &&
           memcmp(a->tenant, b->tenant, a->len[AUDIT_TENANT]) == 0;
}

/* Up to the last 8 bytes of a name of len bytes, as a number: where device and sender names
 * of one fleet differ ("dev-00017", "ops3@acme" share their beginnings more than their ends). */
static uint64_t name_tail(const char *name, size_t len)
{
    uint64_t w = 0;
    if (len >= 8)
        memcpy(&w, name + len - 8, 8);
    else
        memcpy(&w, name, len);
    return w;
}

/* The grouping key's hash: the three lengths and the tails of device, sender and tenant, mixed
 * by multiplication. Cheaper than hashing whole names (a tenth of the audit's instructions on
 * the db thread); names that collide only cost a comparison in same_key. */
static uint64_t key_hash(const struct audit_record *r)
{
    uint64_t h = (uint64_t)r->len[AUDIT_TENANT] | (uint64_t)r->len[AUDIT_SENDER] << 8 |
                 (uint64_t)r->len[AUDIT_DEVICE] << 16;
    h = (h ^ name_tail(r->device, r->len[AUDIT_DEVICE])) * 0x9e3779b97f4a7c15ull;
    h = (h ^ name_tail(r->sender, r->len[AUDIT_SENDER])) * 0xc2b2ae3d27d4eb4full;
    h = (h ^ name_tail(r->tenant, r->len[AUDIT_TENANT])) * 0x165667b19e3779f9ull;
    return h ^ (h >> 29);
}

static void body_put(struct body_buffer *b, const char *text, size_t n)
{
    memcpy(b->p + b->len, text, n);
    b->len += n;
}

static void body_put_uint(struct body_buffer *b, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        b->p[b->len++] = digits[--n];
}

/* A JSON string of text (len bytes; quoted, escaped) appended to b, which has room. */
static void body_put_string(struct body_buffer *b, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    b->p[b->len++] = '"';
    for (const unsigned char *c = (const unsigned char *)text;
         c < (const unsigned char *)text + len; c++) {
        if (*c == '"' || *c == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)*c;
        } else if (*c < 0x20) {
            body_put(b, "\\u00", 4);
            b->p[b->len++] = hex[*c >> 4];
            b->p[b->len++] = hex[*c & 15];
        } else {
            b->p[b->len++] = (char)*c;
        }
    }
    b->p[b->len++] = '"';
}

/* The longest element one record can add to a body: ,[ms,"message","outcome",latency], with
 * every byte of the message escaped as \u00XX. */
#define BODY_ELEMENT_MAX (2 + 20 + 1 + (6 * 64 + 2) + 1 + (16 + 2) + 1 + 10 + 1)

/* The outcomes' names and lengths, looked up once per chunk rather than once per record. */
struct outcome_names {
    const char *name[RELAY_OUTCOME_COUNT + 1];
    size_t len[RELAY_OUTCOME_COUNT + 1];
};

static void outcome_names_init(struct outcome_names *o)
{
    for (int i = 0; i <= RELAY_OUTCOME_COUNT; i++) {
        o->name[i] = relay_outcome_name((enum relay_outcome)i);
        o->len[i] = strlen(o->name[i]);
    }
}

/* Fill row k of cols with the block of group g (its records r[...] through next[]). */
static void fill_block(struct block_columns *cols, size_t k, const struct audit_record *r,
                       const uint32_t *next, const struct group *g, struct body_buffer *body,
                       const struct outcome_names *names)
{
    const struct audit_record *first = &r[g->first];
    int64_t newest = first->at_ms;
    unsigned seen = 0; /* bit per outcome already in the outcomes list */
    char *outcomes = cols->outcomes[k];
    size_t olen = 0;
    uint32_t i = g->first;
    for (uint32_t left = g->count; left > 0; left--, i = next[i])
        if (r[i].at_ms > newest)
            newest = r[i].at_ms;

    char *start = body->p + body->len;
    body->p[body->len++] = '[';
    i = g->first;
    for (uint32_t left = g->count; left > 0; left--, i = next[i]) {
        unsigned o = r[i].outcome <= RELAY_OUTCOME_COUNT ? r[i].outcome : RELAY_OUTCOME_COUNT;
        const char *outcome = names->name[o];
        size_t outcome_len = names->len[o];
        body_put(body, left == g->count ? "[" : ",[", left == g->count ? 1 : 2);
        body_put_uint(body, (uint64_t)(newest - r[i].at_ms));
        body->p[body->len++] = ',';
        body_put_string(body, r[i].message, r[i].len[AUDIT_MESSAGE]);
        body_put(body, ",\"", 2);
        body_put(body, outcome, outcome_len);
        body_put(body, "\",", 2);
        body_put_uint(body, r[i].latency_us);
        body->p[body->len++] = ']';
        unsigned bit = 1u << (r[i].outcome % 32);
        if (!(seen & bit) && olen + outcome_len + 2 <= AUDIT_OUTCOMES_TEXT) {
            seen |= bit;
            if (olen)
                outcomes[olen++] = ',';
            memcpy(outcomes + olen, outcome, outcome_len);
            olen += outcome_len;
        }
    }
    body->p[body->len++] = ']';

    sql_time_from_ms(newest, &cols->at[k]);
    cols->at_ptr[k] = &cols->at[k];
    cols->records[k] = g->count;
    char *texts[BLOCK_TEXTS] = {(char *)first->tenant, (char *)first->sender, (char *)first->device,
                                outcomes, start};
    for (int t = 0; t < BLOCK_TEXTS; t++) {
        cols->text[t][k] = texts[t];
        cols->len[t][k] = t == BLOCK_BODY       ? (unsigned long)(body->p + body->len - start)
                          : t == BLOCK_OUTCOMES ? (unsigned long)olen
                                                : (unsigned long)first->len[t]; /* AUDIT_* */
    }
}

/* Store rows 0..n of cols (n >= 1) with the cached bulk INSERT, in one round trip. */
static int insert_blocks(MYSQL *conn, struct block_columns *cols, unsigned n, char *err,
                         size_t errlen)
{
    static const char stmt_key = 0;
    MYSQL_STMT *stmt = stmt_cache_find(conn, &stmt_key);
    int rc = IOT_OK;
    if (!stmt && (rc = stmt_cache_prepare(conn, &stmt_key, insert_sql, sizeof(insert_sql) - 1,
                                          &stmt, err, errlen)) != IOT_OK)
        return rc;

    static const int column_of[BLOCK_TEXTS] = {1, 2, 3, 4, 6}; /* the text's ? in insert_sql */
    MYSQL_BIND bind[AUDIT_COLUMNS];
    memset(bind, 0, sizeof(bind));
    bind[0].buffer_type = MYSQL_TYPE_DATETIME;
    bind[0].buffer = cols->at_ptr;
    for (int t = 0; t < BLOCK_TEXTS; t++) {
        MYSQL_BIND *b = &bind[column_of[t]];
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = cols->text[t];
        b->length = cols->len[t];
    }
    bind[5].buffer_type = MYSQL_TYPE_LONG;
    bind[5].buffer = cols->records;
    bind[5].is_unsigned = 1;

    if (mysql_stmt_attr_set(stmt, STMT_ATTR_ARRAY_SIZE, &n) != 0 ||
        mysql_stmt_bind_param(stmt, bind) != 0 || mysql_stmt_execute(stmt) != 0) {
        rc = db_error_from_errno(mysql_stmt_errno(stmt));
        rc = rc ? rc : IOT_EINTERNAL;
        snprintf(err, errlen, "%s", mysql_stmt_error(stmt));
        stmt_cache_drop(conn, &stmt_key); /* prepared again next time */
    }
    return rc;
}

/* The chunk r[0..n) as blocks, in bulk INSERTs of up to AUDIT_BULK_ROWS blocks; one goes as soon
 * as its bodies reach AUDIT_BULK_BYTES, so that a packet stays well under the server's
 * max_allowed_packet (16 MB by default, sometimes set lower). */
static int insert_chunk(MYSQL *conn, const struct audit_record *r, size_t n, char *err,
                        size_t errlen)
{
    size_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    uint32_t *next = malloc(n * sizeof(*next));
    uint32_t *table = calloc(slots, sizeof(*table)); /* group index + 1; 0: free */
    struct group *groups = malloc(n * sizeof(*groups));
    struct block_columns *cols = malloc(sizeof(*cols));
    struct body_buffer body = {.p = malloc(n * BODY_ELEMENT_MAX + 2)};
    uint32_t ngroups = 0;
    int rc = IOT_OK;
    if (!next || !table || !groups || !cols || !body.p) {
        snprintf(err, errlen, "out of memory writing the relay audit");
        rc = IOT_ENOMEM;
        goto done;
    }
    struct outcome_names names;
    outcome_names_init(&names);
    for (uint32_t i = 0; i < n; i++) {
        size_t s = key_hash(&r[i]) & (slots - 1);
        while (table[s] && !same_key(&r[groups[table[s] - 1].first], &r[i]))
            s = (s + 1) & (slots - 1);
        if (!table[s]) {
            groups[ngroups] = (struct group){.first = i, .last = i, .count = 1};
            table[s] = ++ngroups;
        } else {
            struct group *g = &groups[table[s] - 1];
            next[g->last] = i;
            g->last = i;
            g->count++;
        }
    }

    unsigned rows = 0;
    for (uint32_t g = 0; g < ngroups && rc == IOT_OK; g++) {
        fill_block(cols, rows++, r, next, &groups[g], &body, &names);
        if (rows == AUDIT_BULK_ROWS || body.len >= AUDIT_BULK_BYTES || g + 1 == ngroups) {
            rc = insert_blocks(conn, cols, rows, err, errlen);
            rows = 0;
            body.len = 0; /* the rows just written no longer point into it */
        }
    }
done:
    free(body.p);
    free(cols);
    free(groups);
    free(table);
    free(next);
    return rc;
}

/* The day partitions (sql/007, sql/008): created ahead and dropped past the retention by the writer
 * itself, at its first batch and then hourly, so no other job touches the table. */
static void maintain(MYSQL *conn, relay_audit_t *a)
{
    int64_t now = ctl_wall_ms();
    int64_t last = atomic_load(&a->maintained_ms);
    if ((last && now - last < AUDIT_MAINTENANCE_MS) ||
        !atomic_compare_exchange_strong(&a->maintained_ms, &last, now))
        return;
    unsigned created = 0, dropped = 0;
    char err[256] = "";
    int rc = db_partitions_maintain(conn, "relay_audit_block", now, a->retention_days,
                                    AUDIT_PARTITIONS_AHEAD, &created, &dropped, err, sizeof err);
    if (rc != IOT_OK)
        log_warn("relay audit: partition maintenance failed (%s): %s; retrying in an hour",
                 iot_error_name(rc), err);
    if (dropped)
        log_info("relay audit: dropped %u day partitions older than %u days", dropped,
                 a->retention_days);
}

/* On a db thread: a chunk of up to AUDIT_BATCH records in one transaction, in bulk INSERTs of
 * AUDIT_BULK_ROWS (2,048-row executes measured 15% less relay throughput with 16 in flight). */
static int write_records(MYSQL *conn, void *records, size_t n, void *arg)
{
    relay_audit_t *a = arg;
    struct audit_record *r = records;
    char err[256] = "";
    maintain(conn, a);
    int rc = sql_begin(conn, false, err, sizeof(err));
    if (rc == IOT_OK)
        rc = insert_chunk(conn, r, n, err, sizeof(err));
    if (rc == IOT_OK)
        rc = sql_commit(conn, err, sizeof(err));
    if (rc != IOT_OK) {
        sql_rollback(conn);
        if (rc != IOT_EDB)
            log_warn("relay audit: %s", err);
    }
    return rc;
}

static void release_audit(void *arg)
{
    free(arg);
}

/* Main loop: what the batch writer wants an operator to know (db/batch.h). */
static void note_audit(enum batch_note what, int status, uint64_t n, void *arg)
{
    (void)arg;
    if (what == BATCH_HELD)
        log_warn("relay audit: the database cannot take the audit (%s); holding %llu records "
                 "and retrying, senders are held once the backlog reaches %d",
                 iot_error_name(status), (unsigned long long)n, AUDIT_CAPACITY / 2);
    else if (what == BATCH_RESUMED)
        log_info("relay audit: the database takes the audit again (%llu held records written)",
                 (unsigned long long)n);
    else
        log_error("relay audit: %llu audit records dropped (see the relay stats' audit drops)",
                  (unsigned long long)n);
}

int relay_audit_start(relay_audit_t **out, const char *mode_name, unsigned retention_days,
                      uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db)
{
    enum relay_audit_mode mode;
    if (strcmp(mode_name, "all") == 0)
        mode = RELAY_AUDIT_ALL;
    else if (strcmp(mode_name, "denied") == 0)
        mode = RELAY_AUDIT_DENIED;
    else if (strcmp(mode_name, "none") == 0)
        mode = RELAY_AUDIT_NONE;
    else
        return IOT_EINVAL;
    relay_audit_t *a = calloc(1, sizeof(*a));
    if (!a)
        return IOT_ENOMEM;
    a->mode = mode;
    a->retention_days = retention_days;
    struct batch_options o = {.record_size = sizeof(struct audit_record),
                              .capacity = AUDIT_CAPACITY,
                              .batch_max = AUDIT_BATCH,
                              .flush_ms = 100,
                              .write = write_records,
                              .release = release_audit,
                              .arg = a,
                              .retry_ms = AUDIT_RETRY_MS,
                              .note = note_audit};
    int rc = batch_start(&a->batch, main_loop, main_inbox, db, &o);
    if (rc != 0) {
        free(a);
        return rc;
    }
    *out = a;
    return IOT_OK;
}

bool relay_audit_backlogged(const relay_audit_t *a)
{
    return a && a->mode != RELAY_AUDIT_NONE && batch_backlogged(a->batch);
}

void relay_audit_stats(relay_audit_t *a, uint64_t *written, uint64_t *dropped, size_t *pending)
{
    batch_stats(a->batch, written, dropped, pending);
}

void relay_audit_stop(relay_audit_t *a)
{
    batch_stop(a->batch); /* a is freed by release_audit once the last batch is back */
}
