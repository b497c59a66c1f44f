/*
 * audit.h - every relayed message (who, device, type, outcome, latency) written to MariaDB
 * asynchronously in batches by the db threads (db/batch.h). [relay] audit chooses what is
 * kept: all, denied (only the outcome denied), or none. A chunk of records is stored as one
 * block per sender and device (sql/008: a row whose body lists the messages), since MariaDB's
 * cost is per row; the view relay_audit shows a row per message. The blocks are partitioned
 * by day; the writer drops the days older than the retention.
 *
 * A database outage loses nothing: a batch the database cannot take is held and retried
 * (db/batch.h retry_ms) while new records wait in memory, and once half of that room is used
 * relay_audit_backlogged holds the senders back. Records are dropped only when stopping with
 * the database still away, or past the bound; either is logged and counted (stats: drops).
 */
#ifndef IOTD_RELAY_AUDIT_H
#define IOTD_RELAY_AUDIT_H

#include "db/db.h"
#include "relay/relay.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct relay_audit relay_audit_t;

enum relay_audit_mode { RELAY_AUDIT_ALL, RELAY_AUDIT_DENIED, RELAY_AUDIT_NONE };

/* mode_name: "all", "denied" or "none" (IOT_EINVAL otherwise); retention_days: days of audit
 * kept, 0 forever. */
int relay_audit_start(relay_audit_t **out, const char *mode_name, unsigned retention_days,
                      uv_loop_t *main_loop, inbox_t *main_inbox, db_pool_t *db);
/* Thread-safe and cheap (a copy into a ring); latency_ns 0 when there was no round trip; at_ms
 * the wall clock time of the outcome (ctl_wall_ms()), 0 for now. */
void relay_audit_record(relay_audit_t *a, const char *tenant, const char *sender,
                        const char *device, const char *message, enum relay_outcome outcome,
                        uint64_t latency_ns, int64_t at_ms);
/* True while the database falls behind the audit (thread-safe, cheap): senders should be
 * held back (not read from) until it catches up, so that no relayed message goes unaudited.
 * Always false without an audit or in mode none. */
bool relay_audit_backlogged(const relay_audit_t *a);
void relay_audit_stats(relay_audit_t *a, uint64_t *written, uint64_t *dropped, size_t *pending);
/* Flush what is left and free once the last batch is back. Before the db pool stops. */
void relay_audit_stop(relay_audit_t *a);

#endif
