/*
 * cluster_relay.c - relay_deliver's remote path: a request for a device online on another node.
 *
 * The sender's node has made every check (tenant, catalogue, arguments, access map) before
 * relay_deliver, as for a local device. The request then comes here (cluster_deliver, on the
 * sender's thread), goes through the main loop's inbox to NATS as iotd.n.<node>.relay, and
 * waits on the main loop under its own id and a deadline: the request's timeout plus
 * ANSWER_GRACE_MS (the device's node times the device out itself and answers timeout; the
 * grace covers the way back). The device's node hands it to its own relay as if a local
 * sender had asked (with audited_elsewhere, so that it is audited once, here) and sends the
 * outcome back on iotd.n.<sender>.answer. Here the answer, or the deadline (timeout), or the
 * node's death (offline) finishes the request: audited, answered to its origin, freed.
 */
#include "cluster/cluster_internal.h"

#include "base/log.h"
#include "iot_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_GRACE_MS 250

/* Audit req's outcome here, answer its origin and free it (main loop). */
static void finish(cluster_t *c, struct relay_request *req, enum relay_outcome outcome,
                   const char *why, unsigned nargs, const char *const *args)
{
    uint64_t now = uv_hrtime();
    uint64_t latency_ns = now > req->started_ns ? now - req->started_ns : 0;
    relay_audit_record(c->deps.audit, req->tenant, req->from, req->device, req->type, outcome,
                       latency_ns, 0);
    struct relay_answer *a = relay_answer_new(&req->origin, outcome, req->device, why, nargs, args);
    if (a) {
        a->latency_ns = latency_ns;
        relay_answer_send(a, c->deps.inbox);
    }
    if (deadline_list_contains(&c->requests_out, &req->deadline))
        deadline_list_remove(&c->requests_out, &req->deadline);
    free(req);
}

static void on_deadline(uv_timer_t *timer);

static void deadline_arm(cluster_t *c)
{
    const struct deadline_node *head = c->requests_out.head;
    if (!head || c->stopping) {
        uv_timer_stop(&c->deadline);
        return;
    }
    uint64_t now = uv_now(c->deps.loop);
    uv_timer_start(&c->deadline, on_deadline, head->at > now ? head->at - now : 0, 0);
}

static void on_deadline(uv_timer_t *timer)
{
    cluster_t *c = timer->data;
    uint64_t now = uv_now(c->deps.loop);
    while (c->requests_out.head && c->requests_out.head->at <= now) {
        struct relay_request *req =
            container_of(c->requests_out.head, struct relay_request, deadline);
        c->traffic.timeouts++;
        finish(c, req, RELAY_TIMEOUT, "its node did not answer in time", 0, NULL);
    }
    deadline_arm(c);
}

/* A request on its way from the sender's thread to the main loop. */
struct request_out {
    inbox_msg_t msg;
    cluster_t *c;
    struct relay_request *req;
};

static cJSON *args_array(const struct relay_request *req)
{
    cJSON *args = cJSON_CreateArray();
    for (unsigned i = 0; args && i < req->nargs; i++)
        cJSON_AddItemToArray(
            args, cJSON_CreateString(relay_arg(req->args, req->args_len, i, req->nargs)));
    return args;
}

/* On the main loop: send req to the node its device is on now, or deliver it here if the
 * device came here meanwhile. */
static void on_request_out(inbox_msg_t *msg, void *loop_data)
{
    struct request_out *out = container_of(msg, struct request_out, msg);
    cluster_t *c = out->c;
    struct relay_request *req = out->req;
    struct presence_entry e;
    char node[33], subject[CLUSTER_SUBJECT_LEN], reply[CLUSTER_SUBJECT_LEN];
    (void)loop_data;
    free(out);

    if (c->stopping) {
        finish(c, req, RELAY_OFFLINE, "this node is stopping", 0, NULL);
        return;
    }
    if (!presence_lookup(c->presence, req->device, &e) || !e.online) {
        finish(c, req, RELAY_OFFLINE, NULL, 0, NULL);
        return;
    }
    if (e.node == 0) {
        enum relay_outcome o = sessions_relay(c->deps.sessions, -1, req);
        if (o != RELAY_OK)
            finish(c, req, o, NULL, 0, NULL);
        return;
    }
    if (!cluster_peer_by_id(c, e.node) || !presence_node_name(c->presence, e.node, node)) {
        finish(c, req, RELAY_OFFLINE, "its node is gone", 0, NULL);
        return;
    }
    uint64_t now_ms = uv_now(c->deps.loop);
    uint64_t elapsed_ms = (uv_hrtime() - req->started_ns) / 1000000;
    uint32_t left = elapsed_ms < req->timeout_ms ? req->timeout_ms - (uint32_t)elapsed_ms : 1;
    do
        req->relay_id = ++c->next_request_id;
    while (req->relay_id == 0);
    req->device_io = e.node;

    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "node", c->node);
    cJSON_AddNumberToObject(body, "id", req->relay_id);
    cJSON_AddStringToObject(body, "from", req->from);
    cJSON_AddStringToObject(body, "tenant", req->tenant);
    cJSON_AddStringToObject(body, "device", req->device);
    cJSON_AddStringToObject(body, "type", req->type);
    cJSON_AddNumberToObject(body, "timeout_ms", left);
    cJSON_AddItemToObject(body, "args", args_array(req));
    snprintf(subject, sizeof(subject), "iotd.n.%s.relay", node);
    snprintf(reply, sizeof(reply), "iotd.n.%s.answer", c->node);
    req->deadline.prev = req->deadline.next = NULL;
    if (!cluster_publish(c, subject, reply, body)) {
        finish(c, req, RELAY_OFFLINE, "the cluster link is down", 0, NULL);
        return;
    }
    c->traffic.requests_out++;
    deadline_list_insert(&c->requests_out, &req->deadline, now_ms + left + ANSWER_GRACE_MS);
    deadline_arm(c);
}

/* relay_remote.deliver: any thread. */
static enum relay_outcome cluster_deliver(void *arg, uint16_t node, struct relay_request *req)
{
    cluster_t *c = arg;
    (void)node; /* looked up again on the main loop, where the node table is */
    if (!c->deps.inbox || c->stopping)
        return RELAY_OFFLINE;
    struct request_out *out = malloc(sizeof(*out));
    if (!out)
        return RELAY_BUSY;
    *out = (struct request_out){.msg.handle = on_request_out, .c = c, .req = req};
    if (inbox_push(c->deps.inbox, &out->msg) != 0) {
        free(out);
        return RELAY_BUSY;
    }
    return RELAY_OK;
}

struct relay_remote cluster_relay_remote(cluster_t *c)
{
    return (struct relay_remote){.arg = c, .deliver = cluster_deliver};
}

static enum relay_outcome outcome_named(const char *name)
{
    for (unsigned k = 0; name && k < RELAY_OUTCOME_COUNT; k++)
        if (strcmp(relay_outcome_name(k), name) == 0)
            return k;
    return RELAY_INTERNAL;
}

void cluster_on_relay_answer(cluster_t *c, const cJSON *body)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
    if (!cJSON_IsNumber(id))
        return;
    for (struct deadline_node *n = c->requests_out.head; n; n = n->next) {
        struct relay_request *req = container_of(n, struct relay_request, deadline);
        if (req->relay_id != (uint32_t)id->valuedouble)
            continue;
        const char *args[64];
        unsigned nargs = cluster_strings(cJSON_GetObjectItemCaseSensitive(body, "args"), args, 64);
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "why"));
        enum relay_outcome o =
            outcome_named(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "outcome")));
        c->traffic.answers_in++;
        c->traffic.latency_ns_sum += uv_hrtime() - req->started_ns;
        finish(c, req, o, why && why[0] ? why : NULL, nargs, args);
        deadline_arm(c);
        return;
    }
    /* Too late: timed out here already. */
}

void cluster_relay_node_gone(cluster_t *c, uint16_t id)
{
    struct deadline_node *n = c->requests_out.head;
    while (n) {
        struct deadline_node *next = n->next;
        struct relay_request *req = container_of(n, struct relay_request, deadline);
        if (id == 0 || req->device_io == id) {
            c->traffic.node_gone++;
            finish(c, req, RELAY_OFFLINE, "its node is gone", 0, NULL);
        }
        n = next;
    }
    if (c->started)
        deadline_arm(c);
}

void cluster_relay_stop(cluster_t *c)
{
    cluster_relay_node_gone(c, 0);
}

/* ---- the device's side: a request from another node ---- */

/* The origin of a request from another node: its answers come back to the main loop here,
 * where on_answer_back sends them to that node. slot: the node's presence id. */
static void answer_back(cluster_t *c, uint16_t node_id, uint32_t id, enum relay_outcome outcome,
                        const char *why, unsigned nargs, const char *args, size_t args_len)
{
    char node[33], subject[CLUSTER_SUBJECT_LEN];
    if (!presence_node_name(c->presence, node_id, node))
        return;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "node", c->node);
    cJSON_AddNumberToObject(body, "id", id);
    cJSON_AddStringToObject(body, "outcome", relay_outcome_name(outcome));
    if (why && why[0])
        cJSON_AddStringToObject(body, "why", why);
    cJSON *list = cJSON_AddArrayToObject(body, "args");
    for (unsigned i = 0; i < nargs; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(relay_arg(args, args_len, i, nargs)));
    snprintf(subject, sizeof(subject), "iotd.n.%s.answer", node);
    cluster_publish(c, subject, NULL, body);
}

static void on_answer_back(inbox_msg_t *msg, void *loop_data)
{
    struct relay_answer *a = container_of(msg, struct relay_answer, msg);
    cluster_t *c = a->origin.cookie;
    (void)loop_data;
    answer_back(c, (uint16_t)a->origin.slot, a->origin.id, a->outcome, a->why, a->nargs, a->args,
                a->args_len);
    free(a);
}

void cluster_on_relay_request(cluster_t *c, const cJSON *body)
{
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "node"));
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "from"));
    const char *tenant = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "tenant"));
    const char *device = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "device"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "type"));
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(body, "timeout_ms");
    const char *args[64];
    unsigned nargs = cluster_strings(cJSON_GetObjectItemCaseSensitive(body, "args"), args, 64);
    struct cluster_peer *p = node ? cluster_peer_seen(c, node) : NULL;
    if (!p || !cJSON_IsNumber(id) || !from || !tenant || !device || !type ||
        !cJSON_IsNumber(timeout))
        return;
    uint32_t rid = (uint32_t)id->valuedouble;
    struct presence_entry e;
    /* Only for a device of ours: a request that raced the device's move is not sent on (it would
     * be audited twice); the sender hears offline and its next request finds the device. */
    if (!presence_lookup(c->presence, device, &e) || !e.online || e.node != 0) {
        answer_back(c, p->id, rid, RELAY_OFFLINE, "device not on this node", 0, NULL, 0);
        return;
    }
    struct relay_origin origin = {
        .inbox = c->deps.inbox, .on_answer = on_answer_back, .slot = p->id, .cookie = c, .id = rid};
    struct relay_request *req =
        relay_request_new(&origin, from, tenant, device, type, nargs, args,
                          (uint32_t)timeout->valuedouble, NULL, uv_hrtime());
    if (!req) {
        answer_back(c, p->id, rid, RELAY_INTERNAL, "out of memory", 0, NULL, 0);
        return;
    }
    req->audited_elsewhere = true;
    c->traffic.requests_in++;
    enum relay_outcome o = sessions_relay(c->deps.sessions, -1, req);
    if (o != RELAY_OK) {
        answer_back(c, p->id, rid, o, NULL, 0, NULL, 0);
        free(req);
    }
}
