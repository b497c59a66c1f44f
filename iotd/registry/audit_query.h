/*
 * audit_query.h - reading the relay audit (iotctl audit): the newest messages that match, out
 * of the blocks the audit writer stores (sql/008: one row per sender, device and batch, its
 * messages in a JSON body).
 *
 * The blocks are read newest first, a page at a time, and their messages kept in a bounded
 * heap of the newest `limit`; reading stops at the first block whose newest message is older
 * than all of those, so a query touches about as many blocks as its answer spans, however
 * long the table is.
 */
#ifndef IOTD_REGISTRY_AUDIT_QUERY_H
#define IOTD_REGISTRY_AUDIT_QUERY_H

#include <cJSON.h>
#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

/* Every field but limit may be NULL/0: no condition. */
struct audit_filter {
    const char *tenant, *device, *sender, *outcome;
    int64_t since_s; /* messages at or after this time (seconds since the epoch) */
    unsigned limit;  /* at most this many, >= 1 */
};

/* On a db thread: append the matching messages to list, newest first, as objects {at, tenant,
 * sender, device, message, outcome, latency_ms}. IOT_OK, IOT_ENOMEM, or a database error with
 * a sentence in err. */
int audit_query(MYSQL *conn, const struct audit_filter *f, cJSON *list, char *err, size_t errlen);

#endif
