/*
 * alarm_db.h - alarm rules and the alarm lifecycle in MariaDB (sql/005_alarms.sql).
 *
 * Every function runs on a db thread with its connection, uses prepared statements only, and
 * returns 0 or a negative IOT_E* with a sentence in err: unknown names or ids IOT_ENOTFOUND,
 * duplicates IOT_EEXIST, bad values IOT_EINVAL, a lost connection IOT_EDB (the caller retries).
 * A change of several rows is one transaction.
 *
 * Choices:
 *  - alarm_apply is idempotent in the engine's vocabulary: raising an alarm that is open is a
 *    no-op returning the open alarm's id, clearing one that is not open is a no-op returning
 *    id 0. A raise after a clear inserts a new row (an alarm row is one occurrence).
 *  - alarm_ack: raised -> acknowledged. Acknowledging a cleared alarm records who saw it
 *    (acked_at, acked_by) and leaves it cleared. Acknowledging twice is IOT_EEXIST naming who
 *    acknowledged it first: an operator learns that a colleague got there before them.
 *  - alarm_rule_remove clears the rule's open alarms in the same transaction ("rule removed"),
 *    so the database is consistent even before the engine's own clear arrives (a no-op then).
 *  - rule add/remove write an admin_audit row in the same transaction when actor is given.
 */
#ifndef IOTD_ALARM_DB_H
#define IOTD_ALARM_DB_H

#include "alarm/engine.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

#define ALARM_FOR_MS_MAX    86400000u /* one day */
#define ALARM_SILENCE_S_MAX 2592000u  /* thirty days */
#define ALARM_LIST_DEFAULT  100
#define ALARM_LIST_MAX      10000

/* Add a rule to tenant (r->tenant and r->id are ignored; r->enabled is stored). Checks: the
 * name (CTL_ARG_NAME); the target exists in the tenant (a device, a group of devices, a type;
 * none for scope tenant); an event named r->event with direction 'event' exists in the
 * catalogue of the target's type (scope device or type) or of some type of the tenant (group,
 * tenant); a threshold rule has a field, an op, a finite threshold, hysteresis >= 0 (0 for ==
 * and !=) and for_ms <= ALARM_FOR_MS_MAX; a silence rule has 0 < silence_s <=
 * ALARM_SILENCE_S_MAX and no field, op, hysteresis or for_ms. A duplicate name is IOT_EEXIST.
 * actor (may be NULL: no audit row) is who asks, for admin_audit and created_by. */
int alarm_rule_add(MYSQL *conn, const char *tenant, const struct alarm_rule *r, const char *actor,
                   uint64_t *id, char *err, size_t errlen);
/* Remove the rule named name (or, when name is NULL, the rule id) of tenant, clearing its open
 * alarms. *removed_id (may be NULL) gets its id. IOT_ENOTFOUND when there is no such rule. */
int alarm_rule_remove(MYSQL *conn, const char *tenant, const char *name, uint64_t id,
                      const char *actor, uint64_t *removed_id, char *err, size_t errlen);
/* Every rule of every tenant, for alarm_engine_set_rules. *rules is malloc'ed (free()). */
int alarm_rules_load(MYSQL *conn, struct alarm_rule **rules, size_t *n, char *err, size_t errlen);
/* The rules of tenant as a JSON array of {"id","name","scope","target","event","field","op",
 * "threshold","hysteresis","for_ms","silence_s","severity","enabled","created_at",
 * "created_by"} ordered by name (null for unset values). */
int alarm_rules_list(MYSQL *conn, const char *tenant, cJSON **rows, char *err, size_t errlen);

/* Store one transition of the engine (see the choices above). *alarm_id (may be NULL) gets the
 * alarm's id, 0 for a clear of an alarm that is not open. IOT_ENOTFOUND for an unknown tenant. */
int alarm_apply(MYSQL *conn, const struct alarm_transition *t, uint64_t *alarm_id, char *err,
                size_t errlen);

/* Acknowledge alarm id of tenant as by (who, e.g. "alice@acme"). IOT_ENOTFOUND for an unknown
 * id or an alarm of another tenant, IOT_EEXIST when already acknowledged. *row (may be NULL)
 * gets the alarm as alarm_list shows it, after the change. */
int alarm_ack(MYSQL *conn, const char *tenant, uint64_t id, const char *by, cJSON **row, char *err,
              size_t errlen);

enum alarm_state_filter {
    ALARM_FILTER_OPEN, /* raised or acknowledged */
    ALARM_FILTER_RAISED,
    ALARM_FILTER_ACKNOWLEDGED,
    ALARM_FILTER_CLEARED,
    ALARM_FILTER_ALL,
};
/* "open", "raised", "acknowledged", "cleared", "all"; false for others. */
bool alarm_state_filter_parse(const char *name, enum alarm_state_filter *out);

struct alarm_filter {
    enum alarm_state_filter state;
    const char *device; /* NULL: every device */
    int64_t since_ms;   /* raised at or after; 0: any time */
    unsigned limit;     /* 0: ALARM_LIST_DEFAULT; at most ALARM_LIST_MAX */
    uint64_t before_id; /* keyset paging: only alarms with a smaller id; 0: from the newest */
    bool *more;         /* not NULL: set to whether alarms follow the last one returned */
};
/* The alarms of tenant (NULL: of every tenant), newest first, as a JSON array of
 * {"id","device","source","rule","name",
 * "severity","state","raised_at","acked_at","acked_by","cleared_at","value","message",
 * "clear_value","clear_message","tenant"}; times are RFC 3339 UTC with milliseconds, null when
 * unset; "rule" is the rule's id (null for device alarms and removed rules). */
int alarm_list(MYSQL *conn, const char *tenant, const struct alarm_filter *f, cJSON **rows,
               char *err, size_t errlen);

/* Every open alarm, for alarm_engine_restore. *open is malloc'ed (free()). */
int alarm_open_load(MYSQL *conn, struct alarm_open **open, size_t *n, char *err, size_t errlen);

#endif
