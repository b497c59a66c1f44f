/*
 * control_dispatch.c - a request line to its executor (see control_dispatch.h): parse, check
 * against the command table, look the executor up in control_executors and run it where the
 * table says; for CONTROL_ON_DB, the job that carries the command to a db thread and its reply
 * back. Also the executors that hand a command to another module: status (the daemon), the
 * registry's queries (with presence added) and changes, and the events commands.
 */
#include "control/control_dispatch.h"

#include "base/log.h"
#include "control/control_events.h"
#include "ctl_proto.h"
#include "ctl_time.h"
#include "iot_error.h"
#include "iot_text.h"
#include "registry/admin.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int control_route(const char *line, size_t len, const struct control_executor *table,
                  struct control_route *out, cJSON **reply)
{
    char err[256];
    const char *why = NULL;
    uint32_t id = 0;
    int rc = IOT_EPROTO;
    cJSON *req = NULL;
    cJSON *args = NULL;

    memset(out, 0, sizeof(*out));
    *reply = NULL;
    /* Before parsing: cJSON would cut a string at an escaped NUL, and validation could not
     * tell afterwards. */
    if (ctl_request_check(line, len, err, sizeof(err)) != 0) {
        rc = IOT_EINVAL;
        why = err;
        goto out;
    }
    req = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(req)) {
        why = "request is not a JSON object";
        goto out;
    }
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (!cJSON_IsNumber(jid) || jid->valuedouble < 0 || jid->valuedouble > UINT32_MAX ||
        jid->valuedouble != (double)(uint32_t)jid->valuedouble) {
        why = "\"id\" must be an integer from 0 to 4294967295";
        goto out;
    }
    id = (uint32_t)jid->valuedouble;
    const char *name = ctl_get_string(req, "cmd");
    const struct ctl_command *cmd = ctl_command_by_name(name);
    if (!cmd) {
        char shown[64];
        iot_text_escape(shown, sizeof(shown), name ? name : "", name ? strlen(name) : 0);
        snprintf(err, sizeof(err), "unknown command '%s'", shown);
        why = err;
        goto out;
    }
    rc = IOT_EINVAL;
    args = cJSON_DetachItemFromObjectCaseSensitive(req, "args");
    if (!args)
        args = cJSON_CreateObject();
    if (!args || ctl_args_validate(cmd, args, err, sizeof(err)) != 0) {
        why = args ? err : NULL;
        goto out;
    }
    if (table[cmd->id].where == CONTROL_NOWHERE) {
        snprintf(err, sizeof(err), "%s has no executor in this iotd", cmd->name);
        why = err;
        goto out;
    }
    *out = (struct control_route){.id = id, .cmd = cmd, .executor = &table[cmd->id], .args = args};
    args = NULL;
    rc = IOT_OK;
out:
    if (rc != IOT_OK)
        *reply = ctl_reply_error(id, rc, why);
    cJSON_Delete(args);
    cJSON_Delete(req);
    return rc;
}

/* ---- CONTROL_ON_DB: a job to a db thread and back ---- */

struct control_job {
    db_job_t job;
    struct control_conn *conn;
    const struct control_executor *executor;
    struct control_call call;
    uint32_t id;
    cJSON *args;
    cJSON *result;
    char actor[CONTROL_ACTOR_LEN];
    char err[256];
};

/* Runs on a db thread. */
static int control_job_run(db_job_t *job, MYSQL *db)
{
    struct control_job *cj = container_of(job, struct control_job, job);
    cj->err[0] = '\0';
    cJSON_Delete(cj->result);
    cj->result = NULL;
    return cj->executor->run(db, &cj->call, &cj->result, cj->err, sizeof(cj->err));
}

/* The job is done and whatever it changes has happened: answer, log, free. */
static void control_job_answer(struct control_job *cj)
{
    struct control_conn *conn = cj->conn;
    const struct ctl_command *cmd = cj->call.cmd;

    if (!conn->closed) {
        if (cj->job.status == 0) {
            control_send(conn, ctl_reply_ok(cj->id, cj->result));
            cj->result = NULL;
        } else {
            control_send_error(conn, cj->id, cj->job.status, cj->err[0] ? cj->err : NULL);
        }
    }
    if (cj->job.status == 0 && (cmd->flags & CTL_MUTATES))
        log_info("control: %s by %s", cmd->name, cj->actor);

    cJSON_Delete(cj->args);
    cJSON_Delete(cj->result);
    control_conn_unref(conn);
    free(cj);
}

/* The sessions the change cut off are closed: now it may be answered. */
static void on_sessions_ended(size_t ended, void *arg)
{
    struct control_job *cj = arg;
    log_info("control: %s %s: %zu session%s ended", cj->call.cmd->name,
             ctl_get_string(cj->args, cj->executor->ends), ended, ended == 1 ? "" : "s");
    if (cj->result)
        cJSON_AddNumberToObject(cj->result, "sessions_ended", (double)ended);
    /* A device removed, disabled or rekeyed loses its leases too; a kicked one keeps them (it
     * may come straight back, and gets its start commands again). */
    const char *who = ctl_get_string(cj->args, cj->executor->ends);
    const struct control_deps *deps = &cj->call.srv->deps;
    if (!cj->executor->ends_tenant && who && !strchr(who, '@') &&
        strcmp(cj->executor->ends_reason, "kicked") != 0 && deps->hub)
        hub_release_device(deps->hub, who);
    /* A user cut off must not come back through a browser's cookie either. */
    if (!cj->executor->ends_tenant && who && strchr(who, '@') && deps->revoke_user)
        deps->revoke_user(deps->revoke_arg, who);
    if (cj->executor->ends_tenant && who && deps->revoke_tenant)
        deps->revoke_tenant(deps->revoke_arg, who);
    control_job_answer(cj);
}

/* The change holds on every node: end the sessions it cut off here, then answer. */
static void control_job_cut_off(void *arg)
{
    struct control_job *cj = arg;
    control_server_t *srv = cj->call.srv;
    const struct control_executor *ex = cj->executor;
    const char *principal = ex->ends ? ctl_get_string(cj->args, ex->ends) : NULL;
    if (principal && srv->deps.sessions && !srv->stopping) {
        int rc = sessions_end(srv->deps.sessions, srv->deps.inbox,
                              ex->ends_tenant ? SESSIONS_OF_TENANT : SESSIONS_OF_PRINCIPAL,
                              principal, ex->ends_reason, on_sessions_ended, cj);
        if (rc == IOT_OK)
            return; /* answered by on_sessions_ended */
        log_error("control: %s %s: cannot end its sessions now: %s", cj->call.cmd->name, principal,
                  iot_strerror(rc));
    }
    control_job_answer(cj);
}

/* Runs on the main loop when the db thread is done. */
static void control_job_done(inbox_msg_t *msg, void *loop_data)
{
    struct control_job *cj = container_of(msg, struct control_job, job.done);
    control_server_t *srv = cj->call.srv;
    const struct control_executor *ex = cj->executor;
    (void)loop_data;

    if (cj->job.status != 0 || srv->stopping) {
        control_job_answer(cj);
        return;
    }
    if (ex->after)
        ex->after(&cj->call, cj->result);
    bool registry = cj->call.cmd->flags & CTL_MUTATES;
    if (srv->deps.changed && (registry || ex->after)) {
        /* In a cluster: the other nodes have it (and cut off the same sessions) first. */
        srv->deps.changed(srv->deps.changed_arg, registry,
                          ex->ends ? ctl_get_string(cj->args, ex->ends) : NULL, ex->ends_tenant,
                          ex->ends_reason, control_job_cut_off, cj);
        return;
    }
    control_job_cut_off(cj);
}

/* Hand the request to a db thread; args become the job's. */
static void submit_job(struct control_conn *conn, const struct control_route *route)
{
    control_server_t *srv = conn->srv;
    struct control_job *cj = calloc(1, sizeof(*cj));
    if (!cj) {
        cJSON_Delete(route->args);
        control_send_error(conn, route->id, IOT_ENOMEM, NULL);
        return;
    }
    cj->conn = conn;
    cj->executor = route->executor;
    cj->id = route->id;
    cj->args = route->args;
    snprintf(cj->actor, sizeof(cj->actor), "%s", conn->actor);
    cj->call =
        (struct control_call){.srv = srv, .cmd = route->cmd, .args = cj->args, .actor = cj->actor};
    cj->job.run = control_job_run;
    cj->job.reply_to = srv->deps.inbox;
    cj->job.done.handle = control_job_done;
    int rc = db_pool_submit(srv->deps.db, &cj->job);
    if (rc != 0) {
        cJSON_Delete(cj->args);
        free(cj);
        control_send_error(conn, route->id, rc == IOT_EBUSY ? IOT_EBUSY : IOT_EDB, NULL);
        return;
    }
    conn->refs++; /* and through it the server, which a connection references */
}

void control_dispatch_line(struct control_conn *conn, const char *line, size_t len)
{
    struct control_route route;
    cJSON *error = NULL;
    if (control_route(line, len, control_executors, &route, &error) != IOT_OK) {
        control_send(conn, error); /* NULL when out of memory: nothing to send */
        return;
    }
    switch (route.executor->where) {
    case CONTROL_ON_LOOP:
        route.executor->answer(conn, route.id, route.cmd, route.args);
        cJSON_Delete(route.args);
        break;
    case CONTROL_STREAM:
        route.executor->start(conn, route.id, route.cmd, route.args);
        break;
    case CONTROL_ON_DB:
        submit_job(conn, &route);
        break;
    case CONTROL_NOWHERE:
        break; /* control_route refuses it */
    }
}

/* ---- executors that hand the command to another module ---- */

void control_status(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                    const cJSON *args)
{
    control_server_t *srv = conn->srv;
    (void)cmd, (void)args;
    control_send(conn, ctl_reply_ok(id, srv->deps.status(srv->deps.status_arg)));
}

static void replace_string(cJSON *obj, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddStringToObject(obj, key, value);
}

/* The registry says what a device is; presence says whether and where it is connected. */
static void add_presence(presence_t *presence, cJSON *device)
{
    const char *id = ctl_get_string(device, "id");
    struct presence_entry e;
    char when[CTL_TIME_LEN], address[PEER_ADDR_TEXT];
    bool seen = id && presence_lookup(presence, id, &e);

    cJSON_DeleteItemFromObjectCaseSensitive(device, "online");
    cJSON_AddBoolToObject(device, "online", seen && e.online);
    if (!seen)
        return;
    char node[33];
    if (e.online && presence_node_name(presence, e.node, node))
        replace_string(device, "node", node); /* in a cluster: the node it is connected to */
    if (e.online) {
        ctl_format_time_ms(e.since_ms, when, sizeof(when));
        replace_string(device, "online_since", when);
        replace_string(device, "address", peer_addr_format(&e.address, address));
        replace_string(device, "transport", e.transport);
    }
    /* Fresher than the database's last_seen, which is written in batches. */
    ctl_format_time_ms(e.last_seen_ms, when, sizeof(when));
    replace_string(device, "last_seen", when);
    replace_string(device, "last_address", peer_addr_format(&e.address, address));
}

static void add_presence_to_result(control_server_t *srv, const struct ctl_command *cmd,
                                   cJSON *result)
{
    if (!srv->deps.presence)
        return;
    if (cmd->id == CTL_DEVICE_SHOW) {
        add_presence(srv->deps.presence, result);
    } else if (cmd->id == CTL_DEVICE_LIST) {
        cJSON *device;
        cJSON_ArrayForEach(device, cJSON_GetObjectItemCaseSensitive(result, cmd->list_key))
            add_presence(srv->deps.presence, device);
    }
}

static bool device_online(void *ctx, const char *device_id)
{
    struct presence_entry e;
    return ctx && presence_lookup(ctx, device_id, &e) && e.online;
}

/* Answered from the current snapshot, no database round trip (registry/query.c). */
void control_registry_query(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                            const cJSON *args)
{
    control_server_t *srv = conn->srv;
    char err[256] = "";
    cJSON *result = NULL;
    struct registry_presence presence = {device_online, srv->deps.presence};
    registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
    int rc = registry_query_present(snap, cmd, args, &presence, &result, err, sizeof(err));
    registry_release(snap);
    if (rc == 0) {
        add_presence_to_result(srv, cmd, result);
        control_send(conn, ctl_reply_ok(id, result));
    } else {
        control_send_error(conn, id, rc, err[0] ? err : NULL);
    }
}

/* On a db thread: a change (committed, then the registry published) or a read of the
 * database's logs (registry/admin.h). */
int control_run_admin(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                      size_t errlen)
{
    const struct control_deps *deps = &call->srv->deps;
    struct admin_ctx ctx = {.secret_key = deps->secret_key, .actor = call->actor};
    return admin_apply(deps->registry, db, &ctx, call->cmd, call->args, result, err, errlen);
}

/* On a db thread: the event store and the alarm tables (control_events.h). */
int control_run_events(MYSQL *db, const struct control_call *call, cJSON **result, char *err,
                       size_t errlen)
{
    registry_snapshot_t *snap = registry_acquire(call->srv->deps.registry);
    int rc =
        control_events_execute(db, snap, call->cmd, call->args, call->actor, result, err, errlen);
    registry_release(snap);
    return rc;
}

/* What an events or alarm command changes beyond its own reply: rules reloaded into the
 * engine, an acknowledgement published on the streams. */
void control_after_events(const struct control_call *call, const cJSON *result)
{
    control_server_t *srv = call->srv;
    hub_t *hub = srv->deps.hub;
    if (!hub)
        return;
    control_events_after(hub, srv->deps.registry, call->cmd, call->args, result);
}
