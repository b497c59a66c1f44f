/*
 * control_send.c - "send": the control connection as a relay sender. The request is checked
 * like a user's message (access map, catalogue, args, timeout), recorded in the relay audit,
 * handed to the device's session, and answered when the device answers or the timeout fires.
 * The operator is "iotd" to the device; --as USER@TENANT sends as that user.
 */
#include "control/control_dispatch.h"

#include "ctl_proto.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_send_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    struct control_conn *conn = a->origin.cookie;
    (void)loop_data;
    conn->srv->outcomes[a->outcome < RELAY_OUTCOME_COUNT ? a->outcome : RELAY_INTERNAL]++;

    if (!conn->closed) {
        if (a->outcome == RELAY_OK) {
            cJSON *result = cJSON_CreateObject();
            cJSON_AddStringToObject(result, "outcome", "ok");
            cJSON_AddStringToObject(result, "device", a->device);
            cJSON *args = cJSON_AddArrayToObject(result, "args");
            for (unsigned i = 0; i < a->nargs; i++)
                cJSON_AddItemToArray(
                    args, cJSON_CreateString(relay_arg(a->args, a->args_len, i, a->nargs)));
            cJSON_AddNumberToObject(result, "latency_ms", (double)a->latency_ns / 1e6);
            control_send(conn, ctl_reply_ok(a->origin.id, result));
        } else {
            /* The device's own ERROR keeps its words (code=..., msg=...) as the message. */
            char text[512] = "";
            size_t used = 0;
            for (unsigned i = 0; i < a->nargs && used < sizeof(text) - 1; i++)
                used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? " " : "",
                                         relay_arg(a->args, a->args_len, i, a->nargs));
            if (a->outcome == RELAY_ERROR && !text[0])
                snprintf(text, sizeof(text), "the device answered ERROR");
            control_send_error(conn, a->origin.id, relay_outcome_code(a->outcome),
                               a->outcome == RELAY_ERROR ? text : (a->why[0] ? a->why : NULL));
        }
    }
    control_conn_unref(conn);
    free(a);
}

void control_send_message(struct control_conn *conn, uint32_t id, const struct ctl_command *cmd,
                          const cJSON *args)
{
    control_server_t *srv = conn->srv;
    const char *as = ctl_get_string(args, "as");
    const char *tenant = ctl_get_string(args, "tenant");
    const char *device = ctl_get_string(args, "device");
    const char *message = ctl_get_string(args, "message");
    long long requested = ctl_get_int(args, "timeout_ms", 0);
    const char *argv[CTL_MAX_REST];
    unsigned argc = 0;
    char why[128];
    uint32_t timeout_ms = 0;
    (void)cmd;

    if (!srv->deps.sessions) {
        control_send_error(conn, id, IOT_EINVAL, "send is not served by this daemon");
        return;
    }
    if ((!as) == (!tenant)) {
        control_send_error(conn, id, IOT_EINVAL, "give either --as USER@TENANT or --tenant TENANT");
        return;
    }
    if (requested < 0 || requested > UINT32_MAX) {
        control_send_error(conn, id, IOT_EINVAL,
                           "--timeout must be a positive number of milliseconds");
        return;
    }
    const cJSON *word;
    cJSON_ArrayForEach(word, cJSON_GetObjectItemCaseSensitive(args, "args")) argv[argc++] =
        word->valuestring;

    registry_snapshot_t *snap = registry_acquire(srv->deps.registry);
    enum relay_outcome outcome =
        relay_check(snap, as, tenant, device, message, argc, argv, (uint32_t)requested,
                    srv->deps.max_timeout_ms, &timeout_ms, why, sizeof(why));
    /* The audit's tenant is the sender's: the operator's --tenant, or the user's own. */
    char sender_tenant[65] = "";
    struct registry_user_info user;
    if (tenant)
        snprintf(sender_tenant, sizeof(sender_tenant), "%s", tenant);
    else if (registry_user_lookup(snap, as, &user) == 0)
        snprintf(sender_tenant, sizeof(sender_tenant), "%s", user.tenant);
    registry_release(snap);
    const char *sender = as ? as : "iotd";
    if (outcome != RELAY_OK) {
        srv->outcomes[outcome]++;
        relay_audit_record(srv->deps.audit, sender_tenant, sender, device, message, outcome, 0, 0);
        control_send_error(conn, id, relay_outcome_code(outcome), why);
        return;
    }
    struct relay_origin origin = {
        .inbox = srv->deps.inbox, .on_answer = on_send_answer, .cookie = conn, .id = id};
    /* The operator is "iotd" to the device; a user is itself. */
    struct relay_request *req = relay_request_new(&origin, sender, sender_tenant, device, message,
                                                  argc, argv, timeout_ms, NULL, uv_hrtime());
    outcome = req ? sessions_relay(srv->deps.sessions, -1, req) : RELAY_INTERNAL;
    if (outcome != RELAY_OK) {
        free(req);
        srv->outcomes[outcome]++;
        relay_audit_record(srv->deps.audit, sender_tenant, sender, device, message, outcome, 0, 0);
        control_send_error(conn, id, relay_outcome_code(outcome), NULL);
        return;
    }
    conn->refs++; /* until the answer comes back */
}
