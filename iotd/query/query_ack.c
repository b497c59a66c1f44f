/*
 * query_ack.c - a client acknowledges an alarm: `ACK <id> alarm=<alarm id>`.
 *
 * The same acknowledgement as `iotctl alarm ack` (alarm_ack, then control_ack_item published
 * through the hub, so every alarm subscriber sees state=acknowledged by=<user>), held to the
 * client's rights: a viewer may not (checked at once on the io thread), and an alarm is
 * acknowledged only by a user who may read it, by the subscription's rule (the access map on
 * its rule's event, or for a device's own alarm its name). An alarm of another tenant, one the
 * user may not read and one that does not exist all get the same ERROR code=denied, so an id
 * tells nothing about what it is not the user's to see. Acknowledged twice: code=exists
 * msg=acknowledged by <who>. The acknowledgement is recorded as the user (acked_by) and in the
 * admin audit (action alarm.ack, target alarm:<id>, like the rules' alarm.rule.add).
 */
#include "query/query_internal.h"

#include "alarm/alarm_db.h"
#include "base/log.h"
#include "control/control_events.h"
#include "ctl_proto.h"
#include "db/sql_stmt.h"
#include "iot_error.h"
#include "iot_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ack_job {
    db_job_t job;
    query_t *q;
    struct query_origin who;
    uint64_t alarm;
    cJSON *row; /* the alarm after the change */
    const char *code;
    char msg[256];
};

struct alarm_subject {
    bool found;
    char device[65], watched[65];
};

/* Columns: device_id, name, the rule's event (NULL for a device's own alarm). */
static int subject_row(void *ctx, const struct sql_row *row)
{
    struct alarm_subject *a = ctx;
    const char *watched = sql_row_null(row, 2) ? sql_row_str(row, 1) : sql_row_str(row, 2);
    a->found = true;
    snprintf(a->device, sizeof(a->device), "%s", sql_row_str(row, 0) ? sql_row_str(row, 0) : "");
    snprintf(a->watched, sizeof(a->watched), "%s", watched ? watched : "");
    return IOT_OK;
}

/* On a db thread. */
static int ack_job_run(db_job_t *job, MYSQL *conn)
{
    struct ack_job *aj = container_of(job, struct ack_job, job);
    struct alarm_subject a = {0};
    char err[256] = "";
    aj->code = NULL;
    cJSON_Delete(aj->row);
    aj->row = NULL;
    int rc = sql_query(conn,
                       "SELECT a.device_id, a.name, r.event FROM alarms a "
                       "JOIN tenants t ON t.id = a.tenant_id "
                       "LEFT JOIN alarm_rules r ON r.id = a.rule_id WHERE a.id = ? AND t.name = ?",
                       SQL_PARAMS(sql_int((long long)aj->alarm), sql_str(aj->who.tenant)),
                       subject_row, &a, err, sizeof(err));
    if (rc != IOT_OK)
        goto out;
    registry_snapshot_t *snap = registry_acquire(aj->q->deps.registry);
    bool readable = a.found && (aj->who.admin || registry_access_allows_read(
                                                     snap, aj->who.principal, a.device, a.watched));
    registry_release(snap);
    if (!readable) {
        aj->code = "denied";
        snprintf(aj->msg, sizeof(aj->msg), "no such alarm");
        goto out;
    }
    rc = alarm_ack(conn, aj->who.tenant, aj->alarm, aj->who.principal, &aj->row, err, sizeof(err));
    if (rc == IOT_EEXIST) {
        /* "alarm 7 was acknowledged by bob@acme at <time>": who, as the contract says it. */
        const char *by = strstr(err, "acknowledged by ");
        const char *at = by ? strstr(by, " at ") : NULL;
        aj->code = "exists";
        snprintf(aj->msg, sizeof(aj->msg), "%.*s", by ? (int)(at ? at - by : (long)strlen(by)) : 0,
                 by ? by : "");
        rc = IOT_OK;
        goto out;
    }
    if (rc != IOT_OK)
        goto out;
    char target[32];
    snprintf(target, sizeof(target), "alarm:%llu", (unsigned long long)aj->alarm);
    if (sql_exec(conn,
                 "INSERT INTO admin_audit (actor, tenant, action, target) VALUES (?, ?, ?, ?)",
                 SQL_PARAMS(sql_str(aj->who.principal), sql_str(aj->who.tenant),
                            sql_str("alarm.ack"), sql_str(target)),
                 NULL, NULL, err, sizeof(err)) != IOT_OK)
        log_warn("alarm %llu acknowledged by %s, not in the admin audit: %s",
                 (unsigned long long)aj->alarm, aj->who.principal, err);
out:
    if (rc != IOT_OK && rc != IOT_EDB)
        log_warn("ACK of alarm %llu by %s: %s", (unsigned long long)aj->alarm, aj->who.principal,
                 err);
    return rc;
}

/* On the main loop: publish the change, answer. */
static void ack_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct ack_job *aj = container_of(msg, struct ack_job, job.done);
    query_t *q = aj->q;
    struct query_page p;
    (void)loop_data;
    query_page_init(&p, &aj->who, 1);
    if (aj->job.status == IOT_EDB)
        query_page_error(&p, "busy", 5, "the database is unreachable");
    else if (aj->job.status != IOT_OK)
        query_page_error(&p, "internal", 0, "the acknowledgement failed");
    else if (aj->code)
        query_page_error(&p, aj->code, 0, aj->msg);
    else {
        if (aj->row && q->deps.hub) {
            registry_snapshot_t *snap = registry_acquire(q->deps.registry);
            long long rule = ctl_get_int(aj->row, "rule", 0);
            struct event *item = control_ack_item(
                snap, aj->who.tenant, aj->row,
                rule > 0 ? hub_alarm_rule_event(q->deps.hub, (uint64_t)rule) : NULL);
            registry_release(snap);
            if (item)
                hub_publish(q->deps.hub, item);
            event_unref(item);
        }
        query_page_done(&p);
    }
    query_page_send(&p, q->sessions);
    cJSON_Delete(aj->row);
    free(aj);
}

static void ack_job_destroy(db_job_t *job)
{
    struct ack_job *aj = container_of(job, struct ack_job, job);
    cJSON_Delete(aj->row);
    free(aj);
}

/* alarm=<id>, a positive decimal, and nothing else. */
static bool parse_alarm_id(const struct iotp_frame *f, uint64_t *id)
{
    return f->nargs == 1 && strncmp(f->args[0], "alarm=", 6) == 0 &&
           iot_text_decimal(f->args[0] + 6, INT64_MAX, id) && *id > 0;
}

void query_ack(query_t *q, const struct session_origin *o, const struct iotp_frame *f)
{
    struct registry_user_info u;
    uint64_t id = 0;
    char why[96];
    if (!parse_alarm_id(f, &id)) {
        query_reply_error(o, "bad_args", 0, "ACK takes alarm=<id> (a positive number)");
        return;
    }
    registry_snapshot_t *snap = registry_acquire(q->deps.registry);
    bool known = registry_user_lookup(snap, o->principal, &u) == 0;
    bool may_act = known && u.may_act;
    snprintf(why, sizeof(why), "role %s may not acknowledge alarms", known ? u.role : "?");
    struct ack_job *aj = may_act && q->deps.db ? calloc(1, sizeof(*aj)) : NULL;
    if (aj)
        query_origin_copy(&aj->who, o, snap);
    registry_release(snap);
    if (!may_act) {
        query_reply_error(o, "denied", 0, why);
        return;
    }
    if (!aj) {
        query_reply_error(o, q->deps.db ? "busy" : "internal", 1,
                          q->deps.db ? "out of memory" : "no database");
        return;
    }
    aj->q = q;
    aj->alarm = id;
    aj->job.run = ack_job_run;
    aj->job.destroy = ack_job_destroy;
    aj->job.reply_to = q->deps.inbox;
    aj->job.done.handle = ack_job_done;
    if (db_pool_submit(q->deps.db, &aj->job) != IOT_OK) {
        free(aj);
        query_reply_error(o, "busy", 1, "the database queue is full");
    }
}
