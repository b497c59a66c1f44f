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

/* What the answer needs to explain itself, beside the relay's answer: the origin's cookie. */
struct send_context {
    struct control_conn *conn;
    uint32_t requested_ms; /* --timeout, 0 when not given */
    uint32_t timeout_ms;   /* what the relay waited: the catalogue's bound, maybe shortened */
    char message[65];
};

/* The answer of a device's ERROR, "code=C [msg=M]" (iot-protocol(7)), as "the device answered
 * ERROR code C: M"; args that are not code= or msg= follow as they came. */
static void device_error_text(const struct relay_answer *a, char *text, size_t len)
{
    const char *code = NULL, *msg = NULL;
    size_t used = 0;
    text[0] = '\0';
    for (unsigned i = 0; i < a->nargs; i++) {
        const char *arg = relay_arg(a->args, a->args_len, i, a->nargs);
        if (strncmp(arg, "code=", 5) == 0 && !code)
            code = arg + 5;
        else if (strncmp(arg, "msg=", 4) == 0 && !msg)
            msg = arg + 4;
    }
    used = (size_t)snprintf(text, len, "the device answered ERROR code %s%s%s",
                            code && *code ? code : "(none)", msg ? ": " : "", msg ? msg : "");
    for (unsigned i = 0; i < a->nargs && used < len - 1; i++) {
        const char *arg = relay_arg(a->args, a->args_len, i, a->nargs);
        if ((code && arg + 5 == code) || (msg && arg + 4 == msg))
            continue;
        used += (size_t)snprintf(text + used, len - used, " %s", arg);
    }
}

static void on_send_answer(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    struct send_context *ctx = a->origin.cookie;
    struct control_conn *conn = ctx->conn;
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
            char text[512] = "";
            if (a->outcome == RELAY_ERROR)
                device_error_text(a, text, sizeof text);
            else if (a->outcome == RELAY_TIMEOUT && ctx->requested_ms > ctx->timeout_ms)
                snprintf(text, sizeof text,
                         "no answer within %u ms: --timeout %u was shortened to the most "
                         "%s may wait (its catalogue timeout, or [devices] max_timeout_ms)",
                         ctx->timeout_ms, ctx->requested_ms, ctx->message);
            else if (a->outcome == RELAY_TIMEOUT)
                snprintf(text, sizeof text, "no answer from the device within %u ms",
                         ctx->timeout_ms);
            else if (a->why[0])
                snprintf(text, sizeof text, "%s", a->why);
            control_send_error(conn, a->origin.id, relay_outcome_code(a->outcome),
                               text[0] ? text : NULL);
        }
    }
    control_conn_unref(conn);
    free(ctx);
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
    /* The operator may know what a user sender could not: name the real cause (iotctl(8),
     * send). A user named by --as that does not exist, and a device missing from the
     * operator's tenant, are not_found; with --as, the user's own view (denied) stands. */
    struct registry_user_info user;
    struct registry_device_info target;
    int refusal = IOT_OK;
    if (as && registry_user_lookup(snap, as, &user) != 0) {
        refusal = IOT_ENOTFOUND;
        snprintf(why, sizeof why, "no such user %s", as);
    } else if (tenant && registry_device_lookup(snap, device, &target) != 0) {
        refusal = IOT_ENOTFOUND;
        snprintf(why, sizeof why, "no such device %s", device);
    } else if (tenant && strcmp(target.tenant, tenant) != 0) {
        refusal = IOT_ECROSS;
        snprintf(why, sizeof why, "device %s is not in tenant %s", device, tenant);
    }
    if (refusal != IOT_OK) {
        registry_release(snap);
        control_send_error(conn, id, refusal, why);
        return;
    }
    enum relay_outcome outcome =
        relay_check(snap, as, tenant, device, message, argc, argv, (uint32_t)requested,
                    srv->deps.max_timeout_ms, &timeout_ms, why, sizeof(why));
    /* The audit's tenant is the sender's: the operator's --tenant, or the user's own. */
    char sender_tenant[65] = "";
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
    struct send_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        control_send_error(conn, id, IOT_ENOMEM, NULL);
        return;
    }
    *ctx = (struct send_context){
        .conn = conn, .requested_ms = (uint32_t)requested, .timeout_ms = timeout_ms};
    relay_copy(ctx->message, sizeof ctx->message, message);
    struct relay_origin origin = {
        .inbox = srv->deps.inbox, .on_answer = on_send_answer, .cookie = ctx, .id = id};
    /* The operator is "iotd" to the device; a user is itself. */
    struct relay_request *req = relay_request_new(&origin, sender, sender_tenant, device, message,
                                                  argc, argv, timeout_ms, NULL, uv_hrtime());
    outcome = req ? sessions_relay(srv->deps.sessions, -1, req) : RELAY_INTERNAL;
    if (outcome != RELAY_OK) {
        free(req);
        free(ctx);
        srv->outcomes[outcome]++;
        relay_audit_record(srv->deps.audit, sender_tenant, sender, device, message, outcome, 0, 0);
        control_send_error(conn, id, relay_outcome_code(outcome), NULL);
        return;
    }
    conn->refs++; /* until the answer comes back */
}
