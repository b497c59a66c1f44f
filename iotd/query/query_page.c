/*
 * query_page.c - a query's answer as frames: ROWs, then the final OK, or one ERROR.
 *
 * The frames are encoded here (the firmware's writer, so a row is exactly what the protocol's
 * parser accepts) into one growing buffer that the session layer writes in one go. A page is
 * bounded three ways: limit rows, QUERY_PAGE_BYTES, and rows that fit a frame: a row is never
 * dropped or refused for its size (the client would see a gap in a list it pages through);
 * it loses arguments from its end until it fits, and says so with truncated=1.
 */
#include "query/query_internal.h"

#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void query_page_init(struct query_page *p, const struct query_origin *who, unsigned limit)
{
    memset(p, 0, sizeof(*p));
    p->who = who;
    p->limit = limit;
}

/* Room for one more frame at the end of the buffer. */
static uint8_t *reserve(struct query_page *p)
{
    if (p->cap - p->len >= IOTP_MAX_FRAME)
        return p->buf + p->len;
    size_t want = p->len + IOTP_MAX_FRAME, cap = p->cap ? p->cap : 8192;
    while (cap < want)
        cap *= 2;
    uint8_t *buf = realloc(p->buf, cap);
    if (!buf) {
        p->error = IOT_ENOMEM;
        return NULL;
    }
    p->buf = buf;
    p->cap = cap;
    return p->buf + p->len;
}

/* Encode `iotd <principal> TYPE id args...` at the end; the length, or a negative code. */
static int encode(struct query_page *p, uint8_t *at, enum iotp_type type, const char *const *args,
                  unsigned n, bool truncated)
{
    struct iotp_writer w;
    iotp_writer_begin(&w, at, IOTP_MAX_FRAME, IOTP_SERVER_ADDRESS, p->who->principal,
                      iotp_type_name(type), p->who->id);
    for (unsigned i = 0; i < n; i++)
        iotp_writer_arg(&w, args[i]);
    if (truncated)
        iotp_writer_arg(&w, "truncated=1");
    return iotp_writer_end(&w);
}

bool query_page_row(struct query_page *p, const char *const *args, unsigned n)
{
    if (p->full || p->error || p->rows >= p->limit || p->len >= QUERY_PAGE_BYTES) {
        p->full = true;
        return false;
    }
    uint8_t *at = reserve(p);
    if (!at)
        return false;
    int len = encode(p, at, IOTP_TYPE_ROW, args, n, false);
    /* Too long or too many: shorten from the end (at least the first argument stays). */
    for (unsigned keep = n; len <= 0 && keep > 1; keep--)
        len = encode(p, at, IOTP_TYPE_ROW, args, keep - 1, true);
    if (len <= 0)
        return true; /* a single argument too long for a frame: cannot happen with bounded names */
    p->len += (size_t)len;
    p->rows++;
    p->frames++;
    return true;
}

void query_page_ok(struct query_page *p, const char *next)
{
    char rows[32], nextarg[128];
    const char *args[2] = {rows, nextarg};
    uint8_t *at = reserve(p);
    if (!at)
        return;
    snprintf(rows, sizeof(rows), "rows=%zu", p->rows);
    snprintf(nextarg, sizeof(nextarg), "next=%s", next ? next : "");
    int len = encode(p, at, IOTP_TYPE_OK, args, next && next[0] ? 2 : 1, false);
    if (len > 0) {
        p->len += (size_t)len;
        p->frames++;
    }
}

void query_page_done(struct query_page *p)
{
    uint8_t *at = reserve(p);
    int len = at ? encode(p, at, IOTP_TYPE_OK, NULL, 0, false) : -1;
    if (len > 0) {
        p->len += (size_t)len;
        p->frames++;
    }
}

void query_page_error(struct query_page *p, const char *code, uint32_t retry_s, const char *msg)
{
    p->len = p->rows = p->frames = 0;
    p->error = 0;
    uint8_t *at = reserve(p);
    if (!at)
        return;
    if (retry_s == 0 && strcmp(code, "busy") == 0)
        retry_s = 1; /* every busy says when to come back */
    int len = iotp_frame_write_error(at, IOTP_MAX_FRAME, IOTP_SERVER_ADDRESS, p->who->principal,
                                     p->who->id, code, retry_s, msg);
    if (len > 0) {
        p->len = (size_t)len;
        p->frames = 1;
    }
}

void query_page_send(struct query_page *p, sessions_t *sessions)
{
    if (p->error == IOT_ENOMEM)
        query_page_error(p, "busy", 1, "out of memory");
    if (sessions && p->frames > 0) {
        sessions_send_frames(sessions, p->who->io, p->who->slot, p->who->serial, p->who->id, p->buf,
                             p->len, p->frames);
        p->buf = NULL;
    }
    query_page_free(p);
}

void query_page_free(struct query_page *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = p->rows = p->frames = 0;
}
