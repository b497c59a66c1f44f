/*
 * audit_query.h - reading the relay audit (iotctl audit): the newest messages that match, out
 * of the blocks the audit writer stores (sql/008: one row per sender, device and batch, its
 * messages in a JSON body).
 *
 * The blocks are read newest first, a page at a time, and their messages kept in a bounded
 * heap of the newest `limit`; reading stops at the first block whose newest message is older
 * than all of those, so a query touches about as many blocks as its answer spans, however
 * long the table is. A page after a cursor reads the same way, keeping only the messages
 * below the cursor: a block's messages may be older than the block (a batch held through an
 * outage), so every block newer than the cursor is still looked at, and a deep page costs
 * what the pages before it did.
 */
#ifndef IOTD_REGISTRY_AUDIT_QUERY_H
#define IOTD_REGISTRY_AUDIT_QUERY_H

#include <cJSON.h>
#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

/* A cursor: "AT_US.BLOCK.SEQ", the last message's place in the order of the answer. */
#define AUDIT_CURSOR_LEN 64

/* Every field but limit may be NULL/0: no condition. */
struct audit_filter {
    const char *tenant, *device, *sender, *outcome;
    int64_t since_s;   /* messages at or after this time (seconds since the epoch) */
    unsigned limit;    /* at most this many, >= 1 */
    const char *after; /* keyset paging: only messages after this cursor (a "next") */
    char *next;        /* not NULL: AUDIT_CURSOR_LEN bytes that get the cursor of the last
                        * message when more follow it, else "" */
};

/* On a db thread: append the matching messages to list, newest first, as objects {at, tenant,
 * sender, device, message, outcome, latency_ms}. IOT_OK, IOT_EINVAL (a cursor that is not
 * one), IOT_ENOMEM, or a database error with a sentence in err. */
int audit_query(MYSQL *conn, const struct audit_filter *f, cJSON *list, char *err, size_t errlen);

#endif
