/*
 * query_db.c - what=history, what=alarms and what=commands: one bounded statement each, on a
 * db thread, read with keyset cursors (never OFFSET: a page costs the same however deep).
 *
 * history: the events the user may read are known before the statement (the device's
 * catalogue, each event asked of the access map), so the statement selects only those names
 * and every row it returns belongs on the page. alarms: whether a user may read an alarm
 * depends on its rule's event, so rows are read (at most QUERY_SCAN_MAX) and filtered here;
 * a page that read that many without filling ends with next= where it stopped. commands: the
 * user's own rows of the relay audit (sql/008's view).
 */
#include "query/query_internal.h"

#include "ctl_time.h"
#include "db/sql_stmt.h"
#include "iot_error.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_OF(col) "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " col ") DIV 1000"

/* A statement being put together: its text and its parameters. */
struct stmt {
    char sql[2048];
    size_t len;
    struct sql_param params[80];
    size_t n;
};

static void add(struct stmt *s, const char *text)
{
    s->len += (size_t)snprintf(s->sql + s->len, sizeof(s->sql) - s->len, "%s", text);
}

static void param(struct stmt *s, struct sql_param p)
{
    if (s->n < sizeof(s->params) / sizeof(s->params[0]))
        s->params[s->n++] = p;
}

/* " WHERE (a, b, c) < (key)" for a page in descending order, spelled out so that it reads as
 * the keyset it is (MariaDB does not use an index for a row comparison anyway). */
static void before(struct stmt *s, const char *a, const char *b, const char *c,
                   const int64_t key[3])
{
    s->len += (size_t)snprintf(s->sql + s->len, sizeof(s->sql) - s->len,
                               " WHERE (%s < ? OR (%s = ? AND (%s < ? OR (%s = ? AND %s < ?))))", a,
                               a, b, b, c);
    for (unsigned i = 0; i < 5; i++)
        param(s, sql_int(key[i / 2]));
}

struct scan {
    const struct query_request *r;
    const struct query_origin *who;
    const registry_snapshot_t *snap;
    struct query_page *page;
    int64_t last[3];    /* key of the last row on the page */
    int64_t scanned[3]; /* key of the last row read */
    unsigned read;      /* rows read */
    bool more;
};

static const char *str_or(const struct sql_row *row, unsigned col)
{
    const char *s = sql_row_str(row, col);
    return s ? s : "";
}

/* Read one more row than the page holds (that one says whether there is a next page), then
 * end the page: OK rows=N, with next= the last row's key when there is more. For statements
 * whose every row belongs on the page. */
static int read_page(MYSQL *conn, struct stmt *s, sql_row_fn fn, struct scan *sc, char *err,
                     size_t errlen)
{
    char next[96];
    add(s, " LIMIT ?");
    param(s, sql_int((long long)sc->r->limit + 1));
    int rc = sql_query(conn, s->sql, s->params, s->n, fn, sc, err, errlen);
    if (rc != IOT_OK && rc != 1) /* 1: a row callback stopped at the full page */
        return rc;
    query_cursor_format(sc->r->what, NULL, sc->last, next, sizeof(next));
    query_page_ok(sc->page, sc->more ? next : NULL);
    return IOT_OK;
}

/* ---- history ---- */

/* Columns: at, id, seq, name, fields. */
static int history_row(void *ctx, const struct sql_row *row)
{
    struct scan *sc = ctx;
    char at[32], seq[16], *fields[IOTP_MAX_ARGS];
    const char *args[IOTP_MAX_ARGS + 3];
    unsigned n = 0, nfields = 0;
    int64_t key[3] = {sql_row_int(row, 0, 0), sql_row_int(row, 1, 0), 0};
    snprintf(at, sizeof(at), "%lld", (long long)key[0]);
    snprintf(seq, sizeof(seq), "%lld", sql_row_int(row, 2, 0));
    args[n++] = str_or(row, 3);
    args[n++] = at;
    args[n++] = seq;
    cJSON *json = cJSON_Parse(str_or(row, 4)), *item;
    cJSON_ArrayForEach(item, json)
    {
        if (nfields == IOTP_MAX_ARGS)
            break; /* the row is cut to the frame's arguments anyway */
        const char *v = cJSON_IsString(item) ? item->valuestring : "";
        size_t len = strlen(item->string) + strlen(v) + 2;
        if (!(fields[nfields] = malloc(len)))
            break;
        snprintf(fields[nfields], len, "%s=%s", item->string, v);
        args[n++] = fields[nfields++];
    }
    bool added = query_page_row(sc->page, args, n);
    for (unsigned i = 0; i < nfields; i++)
        free(fields[i]);
    cJSON_Delete(json);
    if (!added) {
        sc->more = true;
        return 1; /* stop: the page is full */
    }
    memcpy(sc->last, key, sizeof(key));
    return IOT_OK;
}

struct readable {
    const registry_snapshot_t *snap;
    const struct query_origin *who;
    const char *device, *only;
    const char *names[64];
    size_t n;
};

static void readable_event(const struct registry_message_info *m, void *arg)
{
    struct readable *rd = arg;
    if (!m->event || rd->n == sizeof(rd->names) / sizeof(rd->names[0]) ||
        (rd->only[0] && strcmp(rd->only, m->name) != 0))
        return;
    if (registry_access_allows_read(rd->snap, rd->who->principal, rd->device, m->name))
        rd->names[rd->n++] = m->name;
}

static int history(MYSQL *conn, struct scan *sc, char *err, size_t errlen)
{
    const struct query_request *r = sc->r;
    struct registry_device_info d;
    struct readable rd = {.snap = sc->snap, .who = sc->who, .device = r->device, .only = r->event};
    struct stmt s = {0};
    if (!query_device_named(sc->snap, sc->who, r->device) ||
        registry_device_lookup(sc->snap, r->device, &d) != 0)
        return query_page_error(sc->page, "denied", 0, "no such device in your tenant"), IOT_OK;
    if (r->event[0] && !registry_event_defined(sc->snap, sc->who->tenant, d.type, r->event))
        return query_page_error(sc->page, "bad_args", 0, "event= names no event of the device"),
               IOT_OK;
    registry_catalogue_foreach(sc->snap, sc->who->tenant, d.type, readable_event, &rd);
    if (r->event[0] && rd.n == 0)
        return query_page_error(sc->page, "denied", 0,
                                "the access map does not let you read this event"),
               IOT_OK;
    if (rd.n == 0) {
        query_page_ok(sc->page, NULL); /* nothing of this device the user may read */
        return IOT_OK;
    }
    int64_t until = r->until_ms ? r->until_ms : 0;
    int64_t since =
        r->since_ms ? r->since_ms : (until ? until : ctl_wall_ms()) - QUERY_HISTORY_DEFAULT_MS;
    add(&s,
        "SELECT " MS_OF(
            "received_at") ", id, seq, name, fields FROM events "
                           "WHERE device_id = ? AND tenant = ? AND kind = 'event' AND name IN (");
    param(&s, sql_str(r->device));
    param(&s, sql_str(sc->who->tenant));
    for (size_t i = 0; i < rd.n; i++) {
        add(&s, i ? ",?" : "?");
        param(&s, sql_str(rd.names[i]));
    }
    /* FROM_UNIXTIME of ms / 1000 is exact to the ms (a decimal), in UTC (the session's zone). */
    add(&s, ") AND received_at >= FROM_UNIXTIME(? / 1000)");
    param(&s, sql_int(since));
    if (until) {
        add(&s, " AND received_at < FROM_UNIXTIME(? / 1000)");
        param(&s, sql_int(until));
    }
    if (r->has_cursor) {
        add(&s, " AND (received_at > FROM_UNIXTIME(? / 1000) OR "
                "(received_at = FROM_UNIXTIME(? / 1000) AND id > ?))");
        param(&s, sql_int(r->cursor_num[0]));
        param(&s, sql_int(r->cursor_num[0]));
        param(&s, sql_int(r->cursor_num[1]));
    }
    add(&s, " ORDER BY received_at, id");
    return read_page(conn, &s, history_row, sc, err, errlen);
}

/* ---- alarms ---- */

/* Columns: open, raised_at, id, name, device, severity, state, value, message, acked_by,
 * acked_at, cleared_at, watched event (the rule's, or NULL). */
static int alarm_row(void *ctx, const struct sql_row *row)
{
    struct scan *sc = ctx;
    int64_t key[3] = {sql_row_int(row, 0, 0), sql_row_int(row, 1, 0), sql_row_int(row, 2, 0)};
    const char *device = str_or(row, 4);
    const char *watched = sql_row_null(row, 12) ? str_or(row, 3) : str_or(row, 12);
    sc->read++;
    if (!sc->who->admin &&
        !registry_access_allows_read(sc->snap, sc->who->principal, device, watched)) {
        memcpy(sc->scanned, key, sizeof(key));
        return IOT_OK;
    }
    char id[40], name[80], dev[80], severity[40], state[40], raised[40], value[80], msg[300],
        by[300], acked[40], cleared[40];
    snprintf(id, sizeof(id), "alarm=%lld", (long long)key[2]);
    snprintf(name, sizeof(name), "name=%s", str_or(row, 3));
    snprintf(dev, sizeof(dev), "device=%s", device);
    snprintf(severity, sizeof(severity), "severity=%s", str_or(row, 5));
    snprintf(state, sizeof(state), "state=%s", str_or(row, 6));
    snprintf(raised, sizeof(raised), "raised_at=%lld", (long long)key[1]);
    snprintf(value, sizeof(value), "value=%s", str_or(row, 7));
    snprintf(msg, sizeof(msg), "msg=%s", str_or(row, 8));
    snprintf(by, sizeof(by), "acked_by=%s", str_or(row, 9));
    snprintf(acked, sizeof(acked), "acked_at=%s", str_or(row, 10));
    snprintf(cleared, sizeof(cleared), "cleared_at=%s", str_or(row, 11));
    const char *args[] = {id, name, dev, severity, state, raised, value, msg, by, acked, cleared};
    if (!query_page_row(sc->page, args, sizeof(args) / sizeof(args[0]))) {
        sc->more = true;
        return 1;
    }
    memcpy(sc->last, key, sizeof(key));
    memcpy(sc->scanned, key, sizeof(key));
    return IOT_OK;
}

static int alarms(MYSQL *conn, struct scan *sc, char *err, size_t errlen)
{
    static const struct {
        const char *name, *where;
    } states[] = {
        {"open", " AND a.state <> 'cleared'"},
        {"raised", " AND a.state = 'raised'"},
        {"acknowledged", " AND a.state = 'acknowledged'"},
        {"cleared", " AND a.state = 'cleared'"},
        {"all", ""},
    };
    const struct query_request *r = sc->r;
    struct stmt s = {0};
    if (r->device[0] && !query_device_named(sc->snap, sc->who, r->device))
        return query_page_error(sc->page, "denied", 0, "no such device in your tenant"), IOT_OK;
    add(&s, "SELECT o, ms, id, name, device_id, severity, state, value, message, acked_by, "
            "acked_ms, cleared_ms, event FROM (SELECT a.state <> 'cleared' AS o, " MS_OF(
                "a.raised_at") " AS ms, a.id, a.name, a.device_id, a.severity, a.state, a.value, "
                               "a.message, a.acked_by, " MS_OF("a.acked_at") " AS acked_ms, " MS_OF(
                                   "a.cleared_at") " AS cleared_ms, r.event FROM alarms a "
                                                   "JOIN tenants t ON t.id = a.tenant_id "
                                                   "LEFT JOIN alarm_rules r ON r.id = a.rule_id "
                                                   "WHERE t.name = ?");
    param(&s, sql_str(sc->who->tenant));
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(states[i].name, r->state[0] ? r->state : "open") == 0)
            add(&s, states[i].where);
    if (r->device[0]) {
        add(&s, " AND a.device_id = ?");
        param(&s, sql_str(r->device));
    }
    add(&s, ") x");
    if (r->has_cursor)
        before(&s, "o", "ms", "id", r->cursor_num);
    /* An admin reads every row: one more than the page tells whether there is a next. */
    unsigned scan = sc->who->admin ? r->limit + 1 : QUERY_SCAN_MAX;
    add(&s, " ORDER BY o DESC, ms DESC, id DESC LIMIT ?");
    param(&s, sql_int(scan));
    int rc = sql_query(conn, s.sql, s.params, s.n, alarm_row, sc, err, errlen);
    if (rc != IOT_OK && rc != 1)
        return rc;
    char next[96];
    if (sc->more)
        query_cursor_format(QUERY_ALARMS, NULL, sc->last, next, sizeof(next));
    else if (sc->read == scan) /* read all it may without filling the page: go on from there */
        query_cursor_format(QUERY_ALARMS, NULL, sc->scanned, next, sizeof(next));
    else
        next[0] = '\0';
    query_page_ok(sc->page, next);
    return IOT_OK;
}

/* ---- commands ---- */

/* Columns: at, block, seq, device, message, outcome, latency_us. */
static int command_row(void *ctx, const struct sql_row *row)
{
    struct scan *sc = ctx;
    int64_t key[3] = {sql_row_int(row, 0, 0), sql_row_int(row, 1, 0), sql_row_int(row, 2, 0)};
    char at[40], device[80], message[80], outcome[40], latency[40];
    snprintf(at, sizeof(at), "at=%lld", (long long)key[0]);
    snprintf(device, sizeof(device), "device=%s", str_or(row, 3));
    snprintf(message, sizeof(message), "message=%s", str_or(row, 4));
    snprintf(outcome, sizeof(outcome), "outcome=%s", str_or(row, 5));
    snprintf(latency, sizeof(latency), "latency_us=%s", str_or(row, 6));
    /* The audit keeps outcomes, not the device's own error codes: code= stays empty. */
    const char *args[] = {at, device, message, outcome, latency, "code="};
    if (!query_page_row(sc->page, args, sizeof(args) / sizeof(args[0]))) {
        sc->more = true;
        return 1;
    }
    memcpy(sc->last, key, sizeof(key));
    return IOT_OK;
}

static int commands(MYSQL *conn, struct scan *sc, char *err, size_t errlen)
{
    const struct query_request *r = sc->r;
    struct stmt s = {0};
    if (r->device[0] && !query_device_named(sc->snap, sc->who, r->device))
        return query_page_error(sc->page, "denied", 0, "no such device in your tenant"), IOT_OK;
    add(&s, "SELECT ms, block, seq, device, message, outcome, latency_us FROM (SELECT " MS_OF(
                "at") " AS ms, block, seq, device, message, outcome, latency_us FROM relay_audit "
                      "WHERE tenant = ? AND sender = ?");
    param(&s, sql_str(sc->who->tenant));
    param(&s, sql_str(sc->who->principal));
    if (r->device[0]) {
        add(&s, " AND device = ?");
        param(&s, sql_str(r->device));
    }
    add(&s, ") x");
    if (r->has_cursor)
        before(&s, "ms", "block", "seq", r->cursor_num);
    add(&s, " ORDER BY ms DESC, block DESC, seq DESC");
    return read_page(conn, &s, command_row, sc, err, errlen);
}

int query_db_run(MYSQL *conn, const struct query_request *r, const struct query_origin *who,
                 const registry_snapshot_t *snap, struct query_page *p, char *err, size_t errlen)
{
    struct scan sc = {.r = r, .who = who, .snap = snap, .page = p};
    query_page_free(p); /* a retry after a lost connection starts the page again */
    p->error = 0;
    p->full = false;
    switch (r->what) {
    case QUERY_HISTORY:
        return history(conn, &sc, err, errlen);
    case QUERY_ALARMS:
        return alarms(conn, &sc, err, errlen);
    case QUERY_COMMANDS:
        return commands(conn, &sc, err, errlen);
    default:
        snprintf(err, errlen, "not a database query");
        return IOT_EINTERNAL;
    }
}
