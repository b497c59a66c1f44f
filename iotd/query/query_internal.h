/*
 * query_internal.h - what the files of iotd/query share: the page being built (query_page.c),
 * the executors by what= (query_registry.c from the snapshot, query_db.c on a db thread), and
 * the service (query.c, with the ACK in query_ack.c). Nothing outside iotd/query includes it
 * but the module's unit tests.
 */
#ifndef IOTD_QUERY_INTERNAL_H
#define IOTD_QUERY_INTERNAL_H

#include "query/query.h"

#include "iotp/iotp.h"

#include <mysql.h>

struct query_service {
    struct query_deps deps;
    sessions_t *sessions; /* main loop only */
};

/* Who asked, copied out of the session (valid off its thread). */
struct query_origin {
    unsigned io;
    uint32_t slot;
    uint64_t serial;
    uint32_t id;
    char principal[IOTP_MAX_ADDRESS_LEN + 1];
    char tenant[65];
    bool admin; /* role admin: every device of its tenant */
};

/* A page of frames for one session: ROWs, then the final OK (or one ERROR instead). */
struct query_page {
    const struct query_origin *who;
    uint8_t *buf;
    size_t len, cap;
    size_t rows;   /* ROW frames in buf */
    size_t frames; /* all frames in buf */
    bool full;     /* limit reached or QUERY_PAGE_BYTES passed: no more rows */
    unsigned limit;
    int error; /* IOT_ENOMEM once a row could not be kept */
};

void query_page_init(struct query_page *p, const struct query_origin *who, unsigned limit);
/* Append a ROW of n arguments. A row that does not fit a frame (IOTP_MAX_FRAME bytes,
 * IOTP_MAX_ARGS arguments) loses arguments from its end until it does and ends with
 * truncated=1. Returns false once the page is full (the row is then not added). */
bool query_page_row(struct query_page *p, const char *const *args, unsigned n);
/* Append the final OK rows=N [next=cursor] (next NULL or "": the last page). */
void query_page_ok(struct query_page *p, const char *next);
/* Append an OK with no arguments (the answer to an ACK). */
void query_page_done(struct query_page *p);
/* Replace whatever the page holds by one ERROR code= [retry=] msg=. */
void query_page_error(struct query_page *p, const char *code, uint32_t retry_s, const char *msg);
/* Hand the page to its session (it becomes the session layer's), or free it when sessions is
 * NULL. */
void query_page_send(struct query_page *p, sessions_t *sessions);
void query_page_free(struct query_page *p);

/* query_registry.c: devices and catalogue from the snapshot, into p (ROWs and the final OK,
 * or an ERROR). */
void query_registry_run(const struct query_request *r, const struct query_origin *who,
                        const registry_snapshot_t *snap, presence_t *presence,
                        struct query_page *p);

/* Whether a device= given to what= may be named by who: it exists, is of who's tenant and is
 * visible to who. */
bool query_device_named(const registry_snapshot_t *snap, const struct query_origin *who,
                        const char *device);

/* query_db.c: history, alarms and commands on a db thread, into p. Returns 0, or IOT_EDB
 * (the pool reconnects and runs it again) or another IOT_E* with a sentence in err. snap is
 * held by the caller for the access decisions. */
int query_db_run(MYSQL *conn, const struct query_request *r, const struct query_origin *who,
                 const registry_snapshot_t *snap, struct query_page *p, char *err, size_t errlen);

/* query_ack.c: a client's ACK alarm=<id>. */
void query_ack(query_t *q, const struct session_origin *o, const struct iotp_frame *f);
/* Send a single ERROR to o's session now (from its io thread). */
void query_reply_error(const struct session_origin *o, const char *code, uint32_t retry_s,
                       const char *msg);
void query_origin_copy(struct query_origin *to, const struct session_origin *o,
                       const registry_snapshot_t *snap);

#endif
